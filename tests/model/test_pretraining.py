"""The pretraining model (``model/pretraining.py``): what it is (names, heads, ties), its two
backends computing the same function, its checkpoint format (and the formats before it), and
tiny in-process RoBERTa and ModernBERT checkpoints pretrained, resumed, exported and loaded back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import TINY_TEXTS
from model_helpers import VOCAB, make_batch, small_model
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, BertForPreTraining

from linkbert.errors import ConfigError
from linkbert.model.pretraining import PRETRAINING_CONFIG_KEYS, LinkPretrainingModel
from linkbert.objectives import IGNORE_INDEX

TEXTS = [text + " " + TINY_TEXTS[(i + 1) % 5] for i, text in enumerate(TINY_TEXTS)] * 4
LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_checkpoints"
BACKENDS = ("bert-cpu", "transformers")


def _batch(vocab_size: int, batch: int = 4, seq: int = 24, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab_size, (batch, seq), generator=g)
    attention_mask = torch.ones(batch, seq, dtype=torch.long)
    attention_mask[1, 18:] = 0
    labels = torch.where(torch.rand(batch, seq, generator=g) < 0.2, input_ids, IGNORE_INDEX)
    labels[attention_mask == 0] = IGNORE_INDEX
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, seq // 2:] = 1
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
            "labels": labels, "relation_labels": torch.tensor([0, 1, 2, IGNORE_INDEX])[:batch]}


# -- what the model is --------------------------------------------------------------------------------

def test_a_checkpoints_names_are_bert_for_pretrainings():
    """The masked-LM model's own names, its pooler as BERT's, and the relation head beside."""
    ours = small_model()
    stock = BertForPreTraining(ours.config)
    names = set(ours.checkpoint_weights())
    stock_names = {n for n, _ in stock.named_parameters() if not n.startswith("cls.seq_relationship")}
    assert names == (stock_names - {"cls.predictions.decoder.weight"}) | {"relation_head.weight", "relation_head.bias"}
    assert ours.relation_head.out_features == 3
    # tied as in BERT: the decoder is the word embedding matrix, its bias cls.predictions.bias
    assert ours.mlm.cls.predictions.decoder.weight is ours.mlm.bert.embeddings.word_embeddings.weight
    assert ours.mlm.cls.predictions.decoder.bias is ours.mlm.cls.predictions.bias


def test_relation_head_sizes_and_mlm_only():
    assert small_model(num_relations=2).relation_head.out_features == 2
    model = small_model(num_relations=0)
    assert model.relation_head is None
    assert not any(p.requires_grad for p in model.pooler.parameters())  # nothing trains it
    out = model(**make_batch())
    assert out.relation_logits is None and out.relation_loss is None
    assert torch.equal(out.loss, out.mlm_loss)
    out.loss.backward()


def test_tiny_preset_has_the_papers_parameter_count():
    from linkbert.model.loading import init_model

    model = init_model("tiny", vocab_size=30522, num_relations=3)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 4.4
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sparse_and_dense_mlm_heads_give_the_same_loss(backend):
    model = small_model(backend=backend).eval()
    batch = make_batch()
    sparse = model(**batch)
    dense = model(**batch, dense_mlm=True)
    assert torch.allclose(sparse.mlm_loss, dense.mlm_loss, rtol=0, atol=1e-6)
    assert torch.allclose(sparse.loss, dense.loss, rtol=0, atol=1e-6)
    assert sparse.mlm_count == dense.mlm_count == (batch["labels"] != IGNORE_INDEX).sum()
    assert sparse.mlm_correct == dense.mlm_correct
    grads = []
    for dense_mlm in (False, True):
        model.zero_grad()
        model(**batch, dense_mlm=dense_mlm).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name


def test_both_backends_compute_the_same_function():
    """The same weights, the same losses, logits and gradients, whichever backend computes them
    (the fixed-shape gather too); so a run may change backend between resumes."""
    batch = _batch(VOCAB)
    outputs, grads = [], []
    for backend, options in (("bert-cpu", {}), ("transformers", {}), ("transformers", {"max_predictions": 8})):
        model = small_model(backend=backend).eval()
        out = model(**batch, **options)
        out.loss.backward()
        outputs.append(out)
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    for out, grad in zip(outputs[1:], grads[1:]):
        assert int(out.mlm_count) == int(outputs[0].mlm_count)
        torch.testing.assert_close(out.mlm_loss_sum, outputs[0].mlm_loss_sum, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out.relation_logits, outputs[0].relation_logits, rtol=1e-5, atol=1e-5)
        assert grad.keys() == grads[0].keys()
        for name in grad:
            torch.testing.assert_close(grad[name], grads[0][name], rtol=1e-4, atol=1e-5, msg=name)


def test_the_bert_cpu_backend_is_for_bert_only():
    from transformers import RobertaConfig, RobertaForMaskedLM

    mlm = RobertaForMaskedLM(RobertaConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                           intermediate_size=32, max_position_embeddings=40, pad_token_id=1))
    with pytest.raises(ConfigError, match="bert-cpu backend is BERT's forward"):
        LinkPretrainingModel(mlm, 3, "bert-cpu")
    model = LinkPretrainingModel(mlm, 3)
    with pytest.raises(ConfigError, match="bert-cpu"):
        model.backend = "bert-cpu"
    with pytest.raises(ConfigError, match="backend must be one of"):
        model.backend = "hf"


def test_forward_relation_loss_and_accuracy():
    model = small_model()
    batch = make_batch()
    out = model(**batch)
    logits = out.relation_logits
    assert logits.shape == (4, 3)
    expected = F.cross_entropy(logits, batch["relation_labels"])
    assert torch.allclose(out.relation_loss, expected)
    accuracy = (logits.argmax(1) == batch["relation_labels"]).float().mean()
    assert torch.allclose(out.relation_accuracy, accuracy)
    assert out.relation_count == 4 and torch.allclose(out.relation_loss_sum, expected * 4)
    assert torch.allclose(out.loss, out.mlm_loss + out.relation_loss)
    assert torch.allclose(out.mlm_loss, out.mlm_loss_sum / out.mlm_count)
    bare = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])  # logits only
    assert bare.loss is None and bare.relation_logits.shape == (4, 3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bf16_autocast_forward_and_backward_on_cpu(backend):
    model = small_model(backend=backend)
    batch = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch)
    assert torch.isfinite(out.loss) and out.loss.dtype == torch.float32
    out.loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        fp32 = model(**batch).mlm_loss
    assert abs(out.mlm_loss.item() - fp32.item()) < 0.1  # dropout and rounding only


def test_bf16_training_step_gives_the_dense_heads_embedding_gradient():
    """Under autocast the bert-cpu forward takes the tied node; the plain dense head does not."""
    batch = make_batch()
    model = small_model().eval()  # no dropout
    grads = []
    for dense in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch, dense_mlm=dense).loss
        (grad,) = torch.autograd.grad(loss, model.mlm.bert.embeddings.word_embeddings.weight)
        grads.append(grad)
    assert torch.allclose(grads[0], grads[1], atol=2e-3, rtol=2e-2)
    assert (grads[0] - grads[1]).abs().max() < 0.05 * grads[1].abs().max()


@pytest.mark.parametrize("kind", ["bert", "roberta", "modernbert"])
@pytest.mark.parametrize("tied", [True, False])
def test_every_trained_parameter_gets_a_gradient(kind, tied):
    """What DistributedDataParallel needs at every step: no trainable parameter outside the
    forward. BERT's and RoBERTa's untied heads keep a ``bias`` the decoder does not use: frozen."""
    model = LinkPretrainingModel(_mlm(kind, tied), 3)
    batch = _batch(60, batch=2, seq=16)
    batch.pop("token_type_ids", None)
    model(**batch).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert frozen == ([] if tied or kind == "modernbert" else
                      [{"bert": "mlm.cls.predictions.bias", "roberta": "mlm.lm_head.bias"}[kind]])


def _mlm(kind: str, tied: bool = True):
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        ModernBertConfig,
        ModernBertForMaskedLM,
        RobertaConfig,
        RobertaForMaskedLM,
    )

    torch.manual_seed(0)
    geometry = dict(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                    tie_word_embeddings=tied)
    return {"bert": lambda: BertForMaskedLM(BertConfig(**geometry)),
            "roberta": lambda: RobertaForMaskedLM(RobertaConfig(**geometry, max_position_embeddings=40,
                                                                pad_token_id=1)),
            "modernbert": lambda: ModernBertForMaskedLM(ModernBertConfig(
                **geometry, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2))}[kind]()


# -- the checkpoint format ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["bert", "roberta", "modernbert"])
@pytest.mark.parametrize("tied", [True, False])
def test_a_checkpoint_loads_back_whole_and_as_the_masked_lm_model(kind, tied, tmp_path):
    """save_pretrained drops only tied copies that really share storage; from_pretrained gives
    back every weight; AutoModelForMaskedLM reads the same folder as the architecture it is."""
    model = LinkPretrainingModel(_mlm(kind, tied), 3).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == kind and config["linkbert_format"] == 2 and config["num_relations"] == 3
    stored = load_file(tmp_path / "model.safetensors")
    assert not any(name.startswith(("mlm.", "pooler.")) for name in stored)
    loaded = LinkPretrainingModel.from_pretrained(tmp_path)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    batch = _batch(60, batch=2, seq=16)
    batch.pop("token_type_ids")
    with torch.no_grad():
        assert torch.equal(model(**batch).loss, loaded.eval()(**batch).loss)
        mlm = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
        torch.testing.assert_close(mlm(**inputs).logits, model.mlm(**inputs).logits)


def test_weights_of_another_architecture_are_refused(tmp_path):
    small_model().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    other = LinkPretrainingModel(_mlm("roberta"), 3)
    with pytest.raises(ConfigError, match="do not fit this RobertaForMaskedLM"):
        other.load_checkpoint_weights(weights)


@pytest.mark.parametrize("folder", ["bert-cpu-format", "hf-format"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoints_of_the_earlier_formats_load_and_compute_what_they_did(folder, backend, tmp_path):
    """Checkpoints written by the two backends before they shared a format (tests/data/
    legacy_checkpoints, written by that code, with its outputs) load on either backend and
    give the outputs that code gave; saved again they are in this format."""
    expected = json.loads((LEGACY / "outputs.json").read_text())
    batch = {k: torch.tensor(v) for k, v in expected["batch"].items()}
    model = LinkPretrainingModel.from_pretrained(LEGACY / folder, backend=backend).eval()
    with torch.no_grad():
        out = model(**batch)
    assert out.mlm_loss_sum.item() == pytest.approx(expected[folder]["mlm_loss_sum"], rel=1e-5)
    torch.testing.assert_close(out.relation_logits, torch.tensor(expected[folder]["relation_logits"]),
                               rtol=1e-5, atol=1e-5)
    model.save_pretrained(tmp_path)
    again = LinkPretrainingModel.from_pretrained(tmp_path, backend=backend).eval()
    with torch.no_grad():
        assert torch.equal(again(**batch).relation_logits, out.relation_logits)


def test_a_checkpoint_moves_between_backends(tmp_path):
    """What a CPU run (bert-cpu) saved, a GPU run (transformers) loads, and the reverse."""
    from linkbert.model.loading import load_checkpoint

    batch = _batch(VOCAB)
    for first, second in (("bert-cpu", "transformers"), ("transformers", "bert-cpu")):
        model = small_model(backend=first).eval()
        model.save_pretrained(tmp_path / first)
        moved = LinkPretrainingModel.from_pretrained(tmp_path / first, backend=second).eval()
        assert moved.backend == second
        with torch.no_grad():
            torch.testing.assert_close(moved(**batch).loss, model(**batch).loss, rtol=1e-5, atol=1e-5)
    assert load_checkpoint(tmp_path / "transformers").backend == "bert-cpu"  # auto, on a CPU


def test_a_tokenizers_pair_layout_is_read_from_it(tmp_path):
    from linkbert.tokenization import separators_between

    assert separators_between(roberta_tokenizer(tmp_path / "r")) == 2
    assert separators_between(wordpiece_tokenizer(tmp_path / "w")) == 1


# -- tiny RoBERTa and ModernBERT checkpoints, end to end ---------------------------------------------

def roberta_tokenizer(folder):
    """A byte-level BPE tokenizer in RoBERTa's layout (``<s> A </s></s> B </s>``), trained here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(TEXTS, trainers.BpeTrainer(vocab_size=260, special_tokens=specials,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    backend.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                        sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>")
    tokenizer.save_pretrained(folder)
    return tokenizer


def wordpiece_tokenizer(folder):
    from linkbert.tokenization import train_wordpiece

    tokenizer = train_wordpiece(TEXTS * 10, vocab_size=200)
    tokenizer.save_pretrained(folder)
    return tokenizer


def tiny_checkpoint(kind: str, folder):
    """A randomly initialised masked-LM checkpoint folder of ``kind`` with its tokenizer."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM, RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    if kind == "roberta":
        tokenizer = roberta_tokenizer(folder)
        config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64, max_position_embeddings=130, type_vocab_size=1,
                               pad_token_id=tokenizer.pad_token_id, bos_token_id=0, eos_token_id=2)
        model = RobertaForMaskedLM(config)
    else:
        tokenizer = wordpiece_tokenizer(folder)
        config = ModernBertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                                  pad_token_id=tokenizer.pad_token_id, cls_token_id=tokenizer.cls_token_id,
                                  sep_token_id=tokenizer.sep_token_id, bos_token_id=tokenizer.cls_token_id,
                                  eos_token_id=tokenizer.sep_token_id, global_attn_every_n_layers=2,
                                  local_attention=16)
        model = ModernBertForMaskedLM(config)
    model.save_pretrained(folder)
    return folder


def _prepare(tokenizer_dir, out):
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    corpus = out.parent / f"{out.name}.jsonl"
    docs = [{"id": str(i), "title": f"doc {i}", "text": " ".join(TEXTS[(i + j) % len(TEXTS)] for j in range(3)),
             "links": [str((i * 3 + 1) % 24), str((i * 5 + 2) % 24)]} for i in range(24)]
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    prepare(PrepareConfig(format="jsonl", input=str(corpus), tokenizer=str(tokenizer_dir), out=str(out),
                          segment_budget=20, progress=False))
    return out


def _pretrain(data, out, init, extra=()):
    settings = ["preset=tiny", f"init={init}", "max_length=64", "batch_size=8", "warmup_steps=1", "lr=0.003",
                "log_every=1", "save_every=3", "eval_pairs=16", "progress=false", "tracker=none",
                "precision=fp32", "heldout_fraction=0.1", "max_predictions=12", *extra]
    result = subprocess.run([sys.executable, "-m", "linkbert.cli", "pretrain", "--data", str(data), "--out", str(out),
                             *settings], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["roberta", "modernbert"])
def test_a_non_bert_checkpoint_pretrains_resumes_exports_and_loads(kind, tmp_path):
    from transformers import AutoModel, AutoModelForMaskedLM

    from linkbert.checkpoint import latest

    init = tiny_checkpoint(kind, tmp_path / "init")
    data = _prepare(init, tmp_path / "prepared")
    _pretrain(data, tmp_path / "straight", init, ["max_steps=6"])
    # the run as a kill after step 3 leaves it: its step-3 checkpoint, no later one, no summary
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    checkpoints = tmp_path / "resumed" / "checkpoints"
    shutil.rmtree(checkpoints / "step-00000006")
    (checkpoints / "latest").write_text("step-00000003")
    (tmp_path / "resumed" / "summary.json").unlink()
    resumed = _pretrain(data, tmp_path / "resumed", init, ["max_steps=6"])
    assert "resumed from" in resumed.stderr
    straight_weights = load_file(latest(tmp_path / "straight") / "model.safetensors")
    resumed_weights = load_file(latest(tmp_path / "resumed") / "model.safetensors")
    assert straight_weights.keys() == resumed_weights.keys()
    assert all(torch.equal(straight_weights[k], resumed_weights[k]) for k in straight_weights)
    lines = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert any(line["kind"] == "eval" and "relation_accuracy" in line for line in lines)

    exported = tmp_path / "exported"
    result = subprocess.run([sys.executable, "-m", "linkbert.cli", "export", str(tmp_path / "straight"), str(exported)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((exported / "config.json").read_text())
    assert config["model_type"] == kind and not set(PRETRAINING_CONFIG_KEYS) & set(config)
    card = (exported / "README.md").read_text()
    assert card.startswith("---\n") and "pipeline_tag: fill-mask" in card and "base_model:" in card

    wrapper = LinkPretrainingModel.from_pretrained(latest(tmp_path / "straight")).eval()
    mlm = AutoModelForMaskedLM.from_pretrained(exported).eval()
    encoder = AutoModel.from_pretrained(exported).eval()
    batch = _batch(wrapper.config.vocab_size, seq=20)
    with torch.no_grad():
        hidden, _ = wrapper.encode(batch["input_ids"], attention_mask=batch["attention_mask"])
        loaded = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        logits = mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ours = wrapper.mlm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(loaded[real], hidden[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits[real], ours[real], rtol=1e-5, atol=1e-5)




@pytest.mark.parametrize("kind", ["bert", "roberta", "modernbert"])
def test_the_chunked_mlm_loss_trains_as_the_plain_one(kind):
    """mlm_loss=chunked (the transformers backend's decoder and cross-entropy a chunk at a time):
    the same losses, counts and gradients as the plain loss, within float32 rounding."""
    model = LinkPretrainingModel(_mlm(kind), 3).eval()  # no dropout: two passes compute the same
    batch = _batch(60)
    if kind != "bert":
        batch.pop("token_type_ids")
    grads = {}
    for loss in ("plain", "chunked"):
        model.zero_grad()
        out = model(**batch, max_predictions=8, mlm_loss=loss)
        out.loss.backward()
        grads[loss] = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        grads[loss]["_stats"] = torch.stack([out.mlm_loss_sum, out.mlm_count.float(), out.mlm_correct.float()])
    assert grads["plain"].keys() == grads["chunked"].keys()
    for name, grad in grads["plain"].items():
        torch.testing.assert_close(grads["chunked"][name], grad, rtol=1e-4, atol=1e-6, msg=name)
    with pytest.raises(ConfigError, match="mlm_loss must be one of plain, chunked"):
        model(**batch, mlm_loss="fused")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["roberta", "modernbert"])
def test_a_non_bert_checkpoint_trains_on_flattened_pairs_as_on_padded_ones(kind, tmp_path):
    """RoBERTa's ``<s> A </s></s> B </s>`` pairs and ModernBERT's local window, flattened for
    attention=varlen (its exact CPU stand-in): the same training figures as SDPA on padded batches."""
    init = tiny_checkpoint(kind, tmp_path / "init")
    data = _prepare(init, tmp_path / "prepared")
    logs = {}
    for attention in ("sdpa", "varlen"):
        _pretrain(data, tmp_path / attention, init, ["max_steps=3", "dropout=0", "attention_dropout=0",
                                                     f"attention={attention}", "max_predictions=auto"])
        logs[attention] = [json.loads(line) for line in (tmp_path / attention / "metrics.jsonl").read_text().splitlines()]
    for a, b in zip(logs["sdpa"], logs["varlen"], strict=True):
        assert (a["step"], a["kind"]) == (b["step"], b["kind"])
        for key in ("loss", "mlm_loss", "mlm_accuracy", "relation_accuracy"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (a["step"], key)
