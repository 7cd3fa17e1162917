"""linkbert export: a pretraining checkpoint becomes a plain BERT folder that AutoModel* loads."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
)

from linkbert.cli import main as cli_main
from linkbert.errors import BadInput, ConfigError
from linkbert.export import export
from linkbert.model.loading import init_model
from linkbert.tokenization import train_wordpiece

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TEXTS = ["the cat sat on the mat", "a dog ran in the park", "links join documents to documents"] * 10
MLM_HEAD = {"cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
            "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias"}
POOLER = {"bert.pooler.dense.weight", "bert.pooler.dense.bias"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A trainer-like run folder: checkpoint/ (model) and a sibling tokenizer/."""
    root = tmp_path_factory.mktemp("run")
    tokenizer = train_wordpiece(TEXTS, vocab_size=60)
    tokenizer.save_pretrained(root / "tokenizer")
    torch.manual_seed(0)
    model = init_model("tiny", vocab_size=len(tokenizer), num_relations=3, **SMALL)
    model.save_pretrained(root / "checkpoint")
    return root, model.eval(), tokenizer


def _bert_outputs(model, inputs):
    """BertModel's outputs as the pretraining model computes them (its pooler is BERT's)."""
    hidden = model.mlm.bert(**inputs).last_hidden_state
    return hidden, model.pooler(hidden[:, 0])


@pytest.fixture(scope="module")
def exported(run):
    root, _, _ = run
    summary = export(root / "checkpoint", root / "exported")
    return root / "exported", summary


def _inputs(tokenizer):
    return tokenizer(["the cat sat", "a dog ran in the park"], ["on the mat", "links"],
                     padding=True, return_tensors="pt")


def test_export_writes_a_plain_bert_folder(run, exported):
    root, _, _ = run
    out, summary = exported
    assert summary["dropped"] == ["relation_head.bias", "relation_head.weight"]
    assert summary["architecture"] == "BertForMaskedLM"
    assert summary["tokenizer"] == str(root / "tokenizer")
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertForMaskedLM"]
    assert not {"num_relations", "linkbert_format", "linkbert_backend"} & set(config)
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert all(k.startswith(("bert.", "cls.predictions.")) for k in keys)
    assert MLM_HEAD | POOLER <= keys


def test_auto_model_reproduces_the_encoder_exactly(run, exported):
    _, model, tokenizer = run
    out, _ = exported
    inputs = _inputs(tokenizer)
    auto = AutoModel.from_pretrained(out).eval()
    with torch.no_grad():
        got, (hidden, pooled) = auto(**inputs), _bert_outputs(model, inputs)
    assert torch.equal(got.last_hidden_state, hidden)
    assert torch.equal(got.pooler_output, pooled)


def test_auto_model_for_masked_lm_reproduces_the_mlm_logits(run, exported):
    _, model, tokenizer = run
    out, _ = exported
    inputs = _inputs(tokenizer)
    mlm = AutoModelForMaskedLM.from_pretrained(out).eval()
    assert mlm.cls.predictions.decoder.weight is mlm.bert.embeddings.word_embeddings.weight
    assert model.config.vocab_size == 64 and mlm.config.vocab_size == len(tokenizer) == 60  # trained padded
    with torch.no_grad():
        assert torch.equal(mlm(**inputs).logits, model.mlm(**inputs).logits[..., :60])


@pytest.mark.parametrize("auto_class, head, unused", [
    (AutoModel, set(), MLM_HEAD),
    (AutoModelForMaskedLM, set(), POOLER),
    (AutoModelForSequenceClassification, {"classifier.weight", "classifier.bias"}, MLM_HEAD),
    (AutoModelForMultipleChoice, {"classifier.weight", "classifier.bias"}, MLM_HEAD),
    (AutoModelForTokenClassification, {"classifier.weight", "classifier.bias"}, MLM_HEAD | POOLER),
    (AutoModelForQuestionAnswering, {"qa_outputs.weight", "qa_outputs.bias"}, MLM_HEAD | POOLER),
])
def test_auto_classes_load_with_only_the_task_head_fresh(exported, auto_class, head, unused):
    out, _ = exported
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        _, info = auto_class.from_pretrained(out, output_loading_info=True)
    finally:
        transformers.logging.set_verbosity(verbosity)
    assert set(info["missing_keys"]) == head
    assert set(info["unexpected_keys"]) == unused  # what loading bert-base-uncased reports too
    assert not info["mismatched_keys"]


def test_exported_tokenizer_loads_and_matches(run, exported):
    _, _, tokenizer = run
    out, _ = exported
    loaded = AutoTokenizer.from_pretrained(out)
    assert loaded.get_vocab() == tokenizer.get_vocab()
    vocab = (out / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab == sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)


def test_export_errors(run, tmp_path):
    root, _, _ = run
    with pytest.raises(ConfigError, match="not empty"):
        export(root / "checkpoint", root / "tokenizer")
    with pytest.raises(BadInput, match="no config.json"):
        export(root / "tokenizer", tmp_path / "a")
    words = " ".join(a + b for a in "abcdefghijklmnopqrstuvwxyz" for b in "aeiou")
    other = train_wordpiece([words] * 3, vocab_size=120)  # 120 tokens: not this model's 60, nor 60 padded (64)
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(BadInput, match="the tokenizer has 120 tokens but the model's vocabulary is 64"):
        export(root / "checkpoint", tmp_path / "b", tokenizer=tmp_path / "other")


def test_cli_export(run, tmp_path, capsys):
    root, _, _ = run
    assert cli_main(["export", str(root / "checkpoint"), str(tmp_path / "out")]) == 0
    assert "dropped (pretraining only): relation_head.bias, relation_head.weight" in capsys.readouterr().out
    assert cli_main(["export", str(root / "checkpoint"), str(tmp_path / "out")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_a_run_folder_exports_its_latest_checkpoint(run, tmp_path):
    """``linkbert export RUN OUT`` (as in the README): the checkpoint RUN/checkpoints/latest names."""
    import shutil

    from linkbert.checkpoint import CHECKPOINTS, LATEST

    root, model, _ = run
    checkpoints = tmp_path / "run" / CHECKPOINTS
    older = init_model("tiny", vocab_size=model.config.vocab_size, num_relations=3, **SMALL)  # other weights
    older.save_pretrained(checkpoints / "step-00000001")
    shutil.copytree(root / "checkpoint", checkpoints / "step-00000002")
    for step in ("step-00000001", "step-00000002"):
        shutil.copytree(root / "tokenizer", checkpoints / step / "tokenizer")
    (checkpoints / LATEST).write_text("step-00000002\n")
    assert cli_main(["export", str(tmp_path / "run"), str(tmp_path / "out")]) == 0
    exported = AutoModel.from_pretrained(tmp_path / "out")
    assert torch.equal(exported.embeddings.word_embeddings.weight,
                       model.mlm.bert.embeddings.word_embeddings.weight[:len(exported.embeddings.word_embeddings.weight)])


def _pretrain_run(run, folder):
    """A run folder as ``linkbert pretrain`` writes it: checkpoints at steps 1 and 2, with manifests."""
    from linkbert import checkpoint

    root, model, tokenizer = run
    older = init_model("tiny", vocab_size=model.config.vocab_size, num_relations=3, **SMALL)  # other weights
    for step, weights in ((1, older), (2, model)):
        checkpoint.save(folder, step, model=weights, tokenizer=tokenizer, trainer={}, state={}, keep=2)
    return folder / "checkpoints"


def test_a_damaged_checkpoint_is_not_exported(run, tmp_path, capsys):
    checkpoints = _pretrain_run(run, tmp_path / "run")
    data = bytearray((checkpoints / "step-00000002" / "model.safetensors").read_bytes())
    data[-4096:] = bytes(b ^ 0xFF for b in data[-4096:])
    (checkpoints / "step-00000002" / "model.safetensors").write_bytes(bytes(data))
    capsys.readouterr()
    assert cli_main(["export", str(checkpoints / "step-00000002"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "model.safetensors: does not match its checksum" in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()


def test_a_run_folder_exports_its_newest_good_checkpoint(run, tmp_path, caplog):
    _, model, _ = run
    checkpoints = _pretrain_run(run, tmp_path / "run")
    import os

    os.truncate(checkpoints / "step-00000001" / "model.safetensors", 100)  # the older one: not used
    assert export(tmp_path / "run", tmp_path / "newest")["kept"] > 0
    exported = AutoModel.from_pretrained(tmp_path / "newest")
    assert torch.equal(exported.embeddings.word_embeddings.weight,
                       model.mlm.bert.embeddings.word_embeddings.weight[:len(exported.embeddings.word_embeddings.weight)])
    os.truncate(checkpoints / "step-00000002" / "trainer.pt", 10)
    with pytest.raises(BadInput, match="no usable checkpoint: step-00000002 .*step-00000001"):
        export(tmp_path / "run", tmp_path / "none")


def test_a_malformed_config_is_one_line(run, tmp_path, capsys):
    import shutil

    root, _, _ = run
    shutil.copytree(root / "checkpoint", tmp_path / "bad")
    (tmp_path / "bad" / "config.json").write_text("{not json")
    assert cli_main(["export", str(tmp_path / "bad"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "config.json, line 1: not valid JSON" in err and "\n" not in err, err


# -- hostile checkpoints and outputs (issue 24) ---------------------------------------------------------

def _edited_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("damage, words", [
    (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:3000]),
     "model.safetensors: not a readable safetensors file"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\x01" * 3000), "model.safetensors: not a readable"),
    (lambda d: _edited_config(d, model_type="nonesuch"), "config.json: not a config transformers knows"),
    (lambda d: _edited_config(d, intermediate_size=16), "model.safetensors: tensor bert.encoder.layer.0.intermediate"),
    (lambda d: (d / "config.json").write_text('{"a": ' + "[" * 100000 + "]" * 100000 + "}"), "nested too deeply"),
])
def test_a_checkpoint_without_a_manifest_is_checked_before_it_is_exported(run, tmp_path, capsys, damage, words):
    """A checkpoint without a manifest (an older run's, a copy) is checked only by reading it.
    Before: shapes its config does not make were exported as they were: a model that does not load."""
    import shutil

    root, _, _ = run
    shutil.copytree(root / "checkpoint", tmp_path / "checkpoint")
    damage(tmp_path / "checkpoint")
    code = cli_main(["export", str(tmp_path / "checkpoint"), str(tmp_path / "out"), "--tokenizer",
                     str(root / "tokenizer")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and words in err, err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_overwrite_replaces_the_whole_folder(run, tmp_path):
    root, _, _ = run
    out = tmp_path / "out"
    out.mkdir()
    (out / "vocab.txt").write_text("[PAD]\nstale\n")
    (out / "pytorch_model.bin").write_bytes(b"an earlier export's weights")
    export(root / "checkpoint", out, overwrite=True)
    assert "pytorch_model.bin" not in {p.name for p in out.iterdir()}
    assert (out / "vocab.txt").read_text().splitlines() == [
        t for t, _ in sorted(AutoTokenizer.from_pretrained(out).get_vocab().items(), key=lambda item: item[1])]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # nothing left beside it


@pytest.mark.parametrize("where", ["the checkpoint", "the run folder", "inside the run folder", "around the run"])
def test_an_out_that_overlaps_the_checkpoint_or_its_run_is_refused(run, tmp_path, where):
    checkpoints = _pretrain_run(run, tmp_path / "run")
    step = checkpoints / "step-00000002"
    source, out = {"the checkpoint": (step, step), "the run folder": (tmp_path / "run", tmp_path / "run"),
                   "inside the run folder": (tmp_path / "run", tmp_path / "run" / "model"),
                   "around the run": (step, tmp_path)}[where]
    before = sorted((p.relative_to(tmp_path), p.stat().st_size) for p in (tmp_path / "run").rglob("*"))
    with pytest.raises(ConfigError, match="overlaps the input"):
        export(source, out, overwrite=True)
    assert sorted((p.relative_to(tmp_path), p.stat().st_size) for p in (tmp_path / "run").rglob("*")) == before


def test_a_full_disk_names_the_output_and_leaves_nothing(run, tmp_path, monkeypatch, capsys):
    import errno

    from linkbert import export as export_module

    def full(tensors, path, metadata=None):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("safetensors.torch.save_file", full)
    root, _, _ = run
    out = tmp_path / "disk" / "model"
    assert cli_main(["export", str(root / "checkpoint"), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"linkbert export: error: {out}: No space left on device (writing model.safetensors); free some "
                   "space or write elsewhere"), err
    assert export_module.Path(tmp_path / "disk").exists() and list((tmp_path / "disk").iterdir()) == []
