"""The bert-cpu backend's written-out encoder against BertModel: outputs and gradients with every
padding layout, and the model's losses against the dense computation."""

from __future__ import annotations

import pytest
import torch
from model_helpers import make_batch, padded, small_model

from linkbert.model.bert_cpu import _token_rows, encode
from linkbert.objectives import IGNORE_INDEX


def _encode(model, **inputs):
    """``(hidden, pooled first token)`` of the written-out encoder, as ``model.encode`` pools it."""
    hidden, first = encode(model.mlm.bert, training=model.training, **inputs)
    return hidden, model.pooler(first)


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
    reference = model.mlm.bert(**inputs).last_hidden_state
    real = inputs["attention_mask"].bool()
    assert torch.allclose(hidden[real], reference[real], atol=1e-6)
    assert torch.allclose(pooled, model.pooler(reference[:, 0]), atol=1e-6)
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
    hidden, pooled = _encode(model, **inputs)
    rows, pooled_rows = _encode(model, **inputs, positions=positions)
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
        if forward == "encode":
            out = model.encode(**inputs)
        else:
            hidden = model.mlm.bert(**inputs).last_hidden_state
            out = hidden, model.pooler(hidden[:, 0])
        (out[0][real].square().sum() + out[1].sum()).backward()
        grads.append(dict(model.named_parameters()))
    for name, param in grads[0].items():
        if param.grad is not None:
            assert torch.allclose(param.grad, grads[1][name].grad, atol=1e-5), name


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
