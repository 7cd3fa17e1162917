"""Checkpoints: written atomically with a manifest of checksums, verified, the newest good one
found, old ones pruned, everything loaded back; a damaged one skipped, a full disk named."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from linkbert import checkpoint
from linkbert.errors import BadInput


class _Tokenizer:
    def save_pretrained(self, folder):
        (folder / "tokenizer.json").write_text("{}")


def _model(seed: int):
    from linkbert.model.pretraining import LinkPretrainingModel

    torch.manual_seed(seed)
    return LinkPretrainingModel(BertForMaskedLM(BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1,
                                                           num_attention_heads=2, intermediate_size=16)), 3)


def test_save_latest_prune_and_load(tmp_path):
    model = _model(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[1, 2, 3]])).loss.backward()
    optimizer.step()
    torch.manual_seed(7)
    for step in (2, 4, 6):
        path = checkpoint.save(tmp_path, step, model=model, tokenizer=_Tokenizer(),
                               trainer={"optimizer": optimizer.state_dict(), **checkpoint.rng_state()},
                               state={"history": {"tokens": step}}, keep=2)
    assert path.name == "step-00000006" and checkpoint.latest(tmp_path) == path
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*")) == ["step-00000004", "step-00000006"]
    expected_draw = torch.rand(3)

    other = _model(1)
    trainer, state = checkpoint.load(path, other)
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name
    assert state == {"step": 6, "history": {"tokens": 6}}
    restored = torch.optim.AdamW(other.parameters(), lr=0.1)
    restored.load_state_dict(trainer["optimizer"])
    assert restored.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    checkpoint.set_rng_state(trainer)
    assert torch.equal(torch.rand(3), expected_draw)


def test_an_unfinished_save_is_not_the_latest(tmp_path):
    model = _model(0)
    first = checkpoint.save(tmp_path, 1, model=model, tokenizer=_Tokenizer(), trainer={}, state={}, keep=3)
    (tmp_path / "checkpoints" / ".tmp-step-00000002").mkdir()  # a save killed half-way
    assert checkpoint.latest(tmp_path) == first
    assert checkpoint.latest(tmp_path / "elsewhere") is None


# -- verification: every file checked against the manifest written last ------------------------------

def _three(tmp_path, keep=3):
    """Checkpoints at steps 2, 4 and 6 of one model, each with its optimizer state."""
    model = _model(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    for step in (2, 4, 6):
        checkpoint.save(tmp_path, step, model=model, tokenizer=_Tokenizer(),
                        trainer={"optimizer": optimizer.state_dict(), **checkpoint.rng_state()},
                        state={"history": {"tokens": step}}, keep=keep)
    return tmp_path / "checkpoints"


def _flip(path, offset=None, length=4096):
    data = bytearray(path.read_bytes())
    start = len(data) // 2 if offset is None else offset
    for i in range(start, min(start + length, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_checkpoint_has_a_manifest_of_every_file(tmp_path):
    root = _three(tmp_path)
    manifest = json.loads((root / "step-00000006" / "manifest.json").read_text())
    assert set(manifest["files"]) == {"model.safetensors", "config.json", "tokenizer.json", "trainer.pt",
                                      "trainer_state.json"}
    assert checkpoint.verify(root / "step-00000006") is True
    assert not list(root.glob(".*step*"))  # no temporary folder left


@pytest.mark.parametrize("damage, reason", [
    (lambda folder: _flip(folder / "model.safetensors"), "model.safetensors: does not match its checksum"),
    (lambda folder: _flip(folder / "trainer.pt", length=16), "trainer.pt: does not match its checksum"),
    (lambda folder: os.truncate(folder / "trainer.pt", 100), "trainer.pt: 100 bytes"),
    (lambda folder: (folder / "model.safetensors").unlink(), "model.safetensors: missing"),
    (lambda folder: (folder / "manifest.json").write_text("{"), "manifest.json: unreadable manifest"),
])
def test_a_damaged_checkpoint_is_skipped_for_the_newest_good_one(tmp_path, caplog, damage, reason):
    root = _three(tmp_path)
    damage(root / "step-00000006")
    with pytest.raises(checkpoint.Damaged, match=reason):
        checkpoint.verify(root / "step-00000006")
    with caplog.at_level(logging.WARNING, logger="linkbert.checkpoint"):
        loaded = checkpoint.load_newest(tmp_path)
    assert loaded.path.name == "step-00000004" and loaded.state["step"] == 4
    assert "step-00000006 is not usable" in caplog.text and reason in caplog.text


def test_without_a_manifest_a_truncated_file_is_caught_by_loading(tmp_path, caplog):
    """A checkpoint written before checksums is checked by loading it: a short file is a
    Damaged checkpoint (skipped), not a traceback."""
    root = _three(tmp_path)
    for step in ("step-00000004", "step-00000006"):
        (root / step / "manifest.json").unlink()
    os.truncate(root / "step-00000006" / "model.safetensors", 1000)
    with caplog.at_level(logging.WARNING, logger="linkbert.checkpoint"):
        assert checkpoint.load_newest(tmp_path).path.name == "step-00000004"
    assert "model.safetensors: cannot be read" in caplog.text
    os.truncate(root / "step-00000004" / "trainer.pt", 1000)
    assert checkpoint.load_newest(tmp_path).path.name == "step-00000002"


def test_non_finite_weights_are_a_damaged_checkpoint(tmp_path):
    from safetensors.torch import load_file, save_file

    root = _three(tmp_path)
    folder = root / "step-00000006"
    (folder / "manifest.json").unlink()  # as a checkpoint written before checksums
    weights = load_file(folder / "model.safetensors")
    name = next(iter(weights))
    weights[name][0] = float("nan")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(checkpoint.Damaged, match=f"{name} holds NaN"):
        checkpoint.read_tensors(folder)


def test_latest_naming_a_missing_folder_finds_the_newest_good_one(tmp_path, caplog):
    root = _three(tmp_path)
    shutil.rmtree(root / "step-00000006")  # latest still names it
    with caplog.at_level(logging.WARNING, logger="linkbert.checkpoint"):
        assert checkpoint.load_newest(tmp_path).path.name == "step-00000004"
    assert "names step-00000006, which is missing" in caplog.text
    assert checkpoint.latest(tmp_path).name == "step-00000004"


def test_no_good_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    root = _three(tmp_path)
    for folder in checkpoint.steps(root):
        _flip(folder / "model.safetensors", length=64)
    with pytest.raises(BadInput, match="no usable checkpoint: step-00000006 .*step-00000002"):
        checkpoint.load_newest(tmp_path)
    for folder in checkpoint.steps(root):
        shutil.rmtree(folder)
    with pytest.raises(BadInput, match="latest names a checkpoint, but no step-\\* folder is left"):
        checkpoint.load_newest(tmp_path)
    assert checkpoint.load_newest(tmp_path / "new") is None


def test_a_settings_check_sees_the_state_before_any_tensor(tmp_path, monkeypatch):
    _three(tmp_path)
    monkeypatch.setattr(checkpoint, "read_tensors", lambda path: pytest.fail("tensors read before the check"))

    def refuse(path, state):
        raise ValueError(f"other settings at step {state['step']}")

    with pytest.raises(ValueError, match="other settings at step 6"):
        checkpoint.load_newest(tmp_path, check=refuse)


# -- saving: nothing lost on a fault -------------------------------------------------------------------

def test_a_full_disk_names_the_file_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = _model(0)
    first = checkpoint.save(tmp_path, 2, model=model, tokenizer=_Tokenizer(), trainer={}, state={}, keep=1)

    def full(value, file):
        file.write(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as failure:
        checkpoint.save(tmp_path, 4, model=model, tokenizer=_Tokenizer(), trainer={}, state={}, keep=1)
    assert failure.value.errno == errno.ENOSPC
    assert failure.value.filename.endswith("trainer.pt")
    assert checkpoint.latest(tmp_path) == first and checkpoint.verify(first)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", "step-00000002"]


def test_a_write_error_inside_torch_save_names_the_file(tmp_path, monkeypatch):
    """torch.save turns a failed write into "RuntimeError: unexpected pos": the OSError under it
    comes back, with the file's name."""
    real_open = open

    class FullFile:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

    monkeypatch.setattr("builtins.open", lambda path, mode="r", *a, **k: FullFile(real_open(path, mode, *a, **k))
                        if str(path).endswith("trainer.pt") else real_open(path, mode, *a, **k))
    with pytest.raises(OSError) as failure:
        checkpoint.save_torch({"a": torch.zeros(1000)}, tmp_path / "trainer.pt")
    assert failure.value.errno == errno.ENOSPC and failure.value.filename == str(tmp_path / "trainer.pt")


def test_a_safetensors_write_error_names_the_file(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    model = _model(0)

    def full(*args, **kwargs):
        raise SafetensorError('Error while serializing: I/O error: No space left on device (os error 28)')

    monkeypatch.setattr(type(model), "save_pretrained", full)
    with pytest.raises(OSError) as failure:
        checkpoint.save(tmp_path, 2, model=model, tokenizer=_Tokenizer(), trainer={}, state={}, keep=1)
    assert failure.value.errno == errno.ENOSPC and failure.value.filename.endswith("model.safetensors")
    assert checkpoint.latest(tmp_path) is None and not list((tmp_path / "checkpoints").iterdir())


def test_saving_a_step_again_replaces_it_safely(tmp_path, monkeypatch):
    root = _three(tmp_path)
    _flip(root / "step-00000004" / "model.safetensors")  # a damaged one, saved again after a resume
    model = _model(5)
    again = checkpoint.save(tmp_path, 4, model=model, tokenizer=_Tokenizer(), trainer={}, state={}, keep=3)
    assert checkpoint.verify(again) and checkpoint.latest(tmp_path) == again
    assert not list(root.glob(".*step*"))
    # a failed rename into place puts the old folder back
    real_rename = os.rename

    def failing(src, dst):
        if ".tmp-step" in str(src):
            raise OSError(errno.EACCES, "Permission denied", str(dst))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError):
        checkpoint.save(tmp_path, 4, model=_model(6), tokenizer=_Tokenizer(), trainer={}, state={}, keep=3)
    assert checkpoint.verify(root / "step-00000004")
    other = checkpoint.read_tensors(root / "step-00000004")[0]
    assert all(torch.equal(other[k], v) for k, v in model.state_dict().items() if k in other)


def test_pruning_keeps_the_checkpoint_just_written_and_newer_ones(tmp_path):
    root = _three(tmp_path, keep=3)
    checkpoint.prune(root, 1, protect="step-00000004")
    assert [p.name for p in checkpoint.steps(root)] == ["step-00000006", "step-00000004"]
    checkpoint.prune(root, 1, protect="step-00000006")
    assert [p.name for p in checkpoint.steps(root)] == ["step-00000006"]


def test_a_checkpoint_verified_elsewhere_is_read_without_hashing_but_its_sizes_checked(tmp_path, monkeypatch):
    """A resume hashes a checkpoint once per node; the node's other ranks read it with its files'
    sizes checked only (a truncated file is still refused)."""
    root = _three(tmp_path)
    path = checkpoint.folder_of(tmp_path, 2)
    assert path == root / "step-00000002"
    monkeypatch.setattr(checkpoint, "_sha256", lambda path: pytest.fail("hashed"))
    loaded = checkpoint.read(path, checksums=False)
    assert loaded.path == path and loaded.state["step"] == 2 and loaded.weights
    os.truncate(path / checkpoint.TRAINER, 10)
    with pytest.raises(checkpoint.Damaged, match="10 bytes"):
        checkpoint.read(path, checksums=False)
