"""LinkBertForPreTraining: parameter names, heads, losses against the dense computation, save/load."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_helpers import make_batch, small_config, small_model
from transformers import BertForPreTraining

from linkbert.model import LinkBertForPreTraining, preset_config
from linkbert.model.modeling import classification_stats
from linkbert.objectives import IGNORE_INDEX
from linkbert.errors import ConfigError


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
    with pytest.raises(ConfigError, match="unknown preset"):
        preset_config("huge", 30522)


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
