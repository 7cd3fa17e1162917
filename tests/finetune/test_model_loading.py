"""Loading a fine-tuning run's model: safetensors weights only, a missing folder or an unloadable
hub name said in one line, ``max_length`` against the tokenizer's special tokens."""

from __future__ import annotations

import shutil

import finetune_helpers
import pytest
from finetune_helpers import fails_with, mc_examples, ner_examples, one_line_error, splits_of, write_data

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


def test_model_folder_without_safetensors(tmp_path, tiny_model, capsys):
    model = tmp_path / "pickled"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    data = write_data(tmp_path / "d", splits_of(mc_examples))
    err = fails_with(capsys, "--task", "mc", "--model", model, "--data", data, "--out", tmp_path / "o")
    assert "no *.safetensors weights" in err


# ---------------------------------------------------------------- user mistakes: one line, status 2


@pytest.mark.parametrize("model, message", [
    ("{tmp}/no/such/model", "no such model folder"),
    ("runs/nothing/model", "no such model folder"),
    ("./model", "no such model folder"),
    ("{tmp}/file.txt", "is a file: --model takes a model folder or a hub name"),
])
def test_a_model_path_that_does_not_exist_is_said_so(tmp_path, capsys, model, message):
    (tmp_path / "file.txt").write_text("x")
    data = write_data(tmp_path / "mc", splits_of(mc_examples))
    err = fails_with(capsys, "--task", "mc", "--model", model.format(tmp=tmp_path), "--data", data,
                     "--out", tmp_path / "o")
    line = one_line_error(err.splitlines()[-1])
    assert message in line and "Repo id" not in line, line


def test_a_hub_name_that_cannot_be_loaded_is_one_line(tmp_path, capsys, monkeypatch):
    # offline: huggingface_hub reads HF_HUB_OFFLINE when imported, so set its constant (else the
    # lookup retries the unreachable hub for about 20 seconds)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    data = write_data(tmp_path / "mc", splits_of(mc_examples))
    err = fails_with(capsys, "--task", "mc", "--model", "nobody/no-such-model-xyz", "--data", data,
                     "--out", tmp_path / "o")
    assert "no such folder here, and from the Hugging Face hub" in one_line_error(err.splitlines()[-1])


@pytest.mark.parametrize("task, make, max_length, needed", [
    ("mc", mc_examples, 4, 5), ("tokcls", ner_examples, 2, 3), ("seqcls", mc_examples, 1, 5)])
def test_a_max_length_too_short_for_a_pair_is_one_line(tmp_path, tiny_model, capsys, task, make, max_length, needed):
    if task == "seqcls":
        make = finetune_helpers.pair_examples
    data = write_data(tmp_path / "d", splits_of(make))
    err = fails_with(capsys, "--task", task, "--model", tiny_model, "--data", data, "--out", tmp_path / "o",
                     f"max_length={max_length}")
    line = one_line_error(err.splitlines()[-1])
    assert f"max_length {max_length} is too short for {task}" in line and f"max_length >= {needed}" in line, line
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------- damaged or foreign folders (issue 24)

def _edit_config(folder, **changes):
    import json

    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _edit_weights(folder, edit):
    from safetensors.torch import load_file, save_file

    save_file(edit(load_file(str(folder / "model.safetensors"))), str(folder / "model.safetensors"))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:5000])


@pytest.mark.parametrize("damage, words", [
    (lambda d: _truncate(d / "model.safetensors"), "model.safetensors: not a readable safetensors file"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 4000), "model.safetensors: not a readable"),
    (lambda d: (d / "config.json").write_text('{"a": ' + "[" * 100000 + "]" * 100000 + "}"),
     "config.json: JSON arrays or objects nested too deeply"),
    (lambda d: (d / "config.json").write_text("[1]"), "config.json: a JSON list, not a model config"),
    (lambda d: _edit_config(d, model_type="nonesuch"), "config.json: model_type 'nonesuch' is not an architecture"),
    (lambda d: _edit_config(d, intermediate_size=8), "model.safetensors: tensor encoder.layer.0.intermediate"),
    (lambda d: _edit_weights(d, lambda w: {f"x.{k}": v for k, v in w.items()}), "none of its"),
    (lambda d: _edit_weights(d, lambda w: {k: v * float("nan") if "word_embeddings" in k else v for k, v in w.items()}),
     "hold NaN or infinity (embeddings.word_embeddings.weight)"),
    (lambda d: [(d / name).unlink(missing_ok=True) for name in ("tokenizer.json", "vocab.txt")],
     "no tokenizer in the model folder"),
])
def test_a_damaged_or_foreign_model_folder_is_one_line_naming_it(tmp_path, tiny_model, capsys, damage, words):
    """Before: safetensors' and transformers' tracebacks, and exit 0 for weights that match nothing
    (trained from random) or a folder without tokenizer files (trained on [UNK])."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    damage(model)
    data = write_data(tmp_path / "d", splits_of(mc_examples))
    err = fails_with(capsys, "--task", "mc", "--model", model, "--data", data, "--out", tmp_path / "o")
    line = one_line_error(err.splitlines()[-1])
    assert words in line and str(model) in line, line
    assert not (tmp_path / "o").exists()


def test_a_tokenizer_that_reads_the_text_as_unknown_is_refused(tmp_path, tiny_model, capsys):
    """A folder whose tokenizer is not the model's: the training text comes out as [UNK]."""
    import json

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "tokenizer.json").unlink(missing_ok=True)
    (model / "vocab.txt").write_text("".join(f"{t}\n" for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "zzz")))
    data = write_data(tmp_path / "d", splits_of(ner_examples))
    err = fails_with(capsys, "--task", "tokcls", "--model", model, "--data", data, "--out", tmp_path / "o")
    line = one_line_error(err.splitlines()[-1])
    assert "of the training text as [UNK]" in line and str(model) in line, line
    assert json.loads((tiny_model / "config.json").read_text())["model_type"] == "bert"
