"""Attention without padding (``model/attention.py``): the pairs of a batch flattened into one row
compute what the padded batch computes, for BERT, RoBERTa and ModernBERT (whose local layers
see a sliding window), on the CPU's exact stand-in for the variable-length kernel."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from linkbert.collator import flatten_pairs
from linkbert.model.attention import padded_attention, rows_as_sequences, token_places
from linkbert.model.pretraining import LinkPretrainingModel
from linkbert.objectives import IGNORE_INDEX

VOCAB, PAD = 60, 1


def _mlm(kind: str):
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        ModernBertConfig,
        ModernBertForMaskedLM,
        RobertaConfig,
        RobertaForMaskedLM,
    )

    torch.manual_seed(0)
    geometry = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
                    intermediate_size=48, pad_token_id=PAD)
    dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config = {"bert": lambda: BertConfig(**geometry, **dropout),
              "roberta": lambda: RobertaConfig(**geometry, **dropout, max_position_embeddings=40),
              # a local window of 6 (3 each side) on sequences of up to 24 tokens: layers 1 and 2 are local
              "modernbert": lambda: ModernBertConfig(**geometry, bos_token_id=2, eos_token_id=3, cls_token_id=2,
                                                     sep_token_id=3, local_attention=6, global_attn_every_n_layers=3,
                                                     embedding_dropout=0.0, mlp_dropout=0.0, attention_dropout=0.0),
              }[kind]()
    config._attn_implementation = "sdpa"
    mlm = {"bert": BertForMaskedLM, "roberta": RobertaForMaskedLM, "modernbert": ModernBertForMaskedLM}[kind](config)
    return mlm


def _models(kind: str) -> tuple[LinkPretrainingModel, LinkPretrainingModel]:
    """The same weights twice: with SDPA on padded batches, and with varlen on flattened ones."""
    padded = LinkPretrainingModel(_mlm(kind), 3, "transformers")
    flat = copy.deepcopy(padded)
    flat.mlm.config._attn_implementation = "varlen"
    assert flat.takes_flattened_pairs and not padded.takes_flattened_pairs
    return padded, flat


def _padded_batch(kind: str, lengths=(24, 9, 17, 20), seed: int = 0) -> dict:
    """Right-padded pairs of ragged lengths, 20% of the real tokens masked."""
    g = torch.Generator().manual_seed(seed)
    batch, seq = len(lengths), max(lengths)
    real = torch.arange(seq) < torch.tensor(lengths)[:, None]
    input_ids = torch.where(real, torch.randint(5, VOCAB, (batch, seq), generator=g), PAD)
    labels = torch.where(real & (torch.rand(batch, seq, generator=g) < 0.2), input_ids, IGNORE_INDEX)
    labels[:, 1] = input_ids[:, 1]  # every pair has one
    token_type_ids = ((torch.arange(seq) >= torch.tensor(lengths)[:, None] // 2) & real).long()
    out = {"input_ids": input_ids, "attention_mask": real.long(), "labels": labels,
           "relation_labels": torch.arange(batch) % 3}
    if kind == "bert":
        out["token_type_ids"] = token_type_ids
    return out


def _flattened(batch: dict, max_length: int) -> dict:
    types = batch.get("token_type_ids", torch.zeros_like(batch["input_ids"]))
    flat = flatten_pairs(batch["input_ids"].numpy(), types.numpy(), batch["attention_mask"].numpy(),
                         batch["labels"].numpy(), pad_id=PAD, max_length=max_length)
    if "token_type_ids" not in batch:
        flat.pop("token_type_ids")
    return {**flat, "relation_labels": batch["relation_labels"]}


@pytest.mark.parametrize("kind", ["bert", "roberta", "modernbert"])
def test_the_flattened_layout_computes_what_the_padded_batch_does(kind):
    """Hidden states at the real tokens, both losses and every gradient: the same within float32
    rounding (the projections and feed-forward blocks are matmuls over other row sets, so their
    sums may round differently; attention is the same SDPA on the same padded rows)."""
    padded, flat = _models(kind)
    batch = _padded_batch(kind)
    flattened = _flattened(batch, max_length=24)
    assert flattened["input_ids"].shape[1] > int(batch["attention_mask"].sum())  # a tail of padding

    hidden, pooled = padded.encode(**batch)
    flat_hidden, flat_first = flat._encode(flattened["input_ids"], flattened.get("token_type_ids"), None,
                                           flattened["position_ids"], flattened["cu_seqlens"], 24)
    real = batch["attention_mask"].bool()
    torch.testing.assert_close(flat_hidden[0, :int(real.sum())], hidden[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(flat.pooler(flat_first), pooled, rtol=1e-5, atol=1e-5)

    for max_predictions in (0, 8):
        a = padded(**batch, max_predictions=max_predictions)
        b = flat(**flattened, max_predictions=max_predictions, max_length=24)
        assert int(a.mlm_count) == int(b.mlm_count) == int((batch["labels"] != IGNORE_INDEX).sum())
        for field in ("loss", "mlm_loss_sum", "relation_loss_sum"):
            torch.testing.assert_close(getattr(b, field), getattr(a, field), rtol=1e-5, atol=1e-5)
    padded.zero_grad()
    flat.zero_grad()
    padded(**batch, max_predictions=8).loss.backward()
    flat(**flattened, max_predictions=8, max_length=24).loss.backward()
    grads = dict(padded.named_parameters())
    for name, parameter in flat.named_parameters():
        if parameter.grad is not None or grads[name].grad is not None:
            torch.testing.assert_close(parameter.grad, grads[name].grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("kind", ["bert", "roberta", "modernbert"])
def test_a_padded_batch_is_flattened_as_it_is(kind):
    """A model whose attention reads the flattened layout takes padded batches too (evaluation,
    ``encode``): each row's real tokens and its padding two sequences, nothing moved. For BERT
    that is the padded computation bit for bit."""
    padded, flat = _models(kind)
    batch = _padded_batch(kind)
    real = batch["attention_mask"].bool()
    hidden, pooled = padded.encode(**batch)
    flat_hidden, flat_pooled = flat.encode(**batch)
    torch.testing.assert_close(flat_hidden[real], hidden[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(flat_pooled, pooled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(flat(**batch, max_predictions=8).loss, padded(**batch, max_predictions=8).loss)
    if kind == "bert":
        assert torch.equal(flat_hidden[real], hidden[real])


def test_the_cpu_stand_in_is_sdpa_per_sequence_with_its_window():
    g = torch.Generator().manual_seed(0)
    lengths = [5, 0, 11, 3]
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    q, k, v = (torch.randn(sum(lengths), 2, 8, generator=g) for _ in range(3))
    for window in (-1, 2):
        out = padded_attention(q, k, v, cu_seqlens, longest=12, scale=0.3, window=window)
        for start, n in zip(cu_seqlens[:-1].tolist(), lengths):
            if not n:
                continue
            part = slice(start, start + n)
            places = torch.arange(n)
            mask = None if window < 0 else (places[:, None] - places[None, :]).abs() <= window
            expected = F.scaled_dot_product_attention(*(x[part].transpose(0, 1) for x in (q, k, v)), attn_mask=mask,
                                                      scale=0.3).transpose(0, 1)
            torch.testing.assert_close(out[part], expected, rtol=1e-6, atol=1e-6)


def test_token_places_and_rows_as_sequences():
    sequence, position = token_places(torch.tensor([0, 3, 3, 5], dtype=torch.int32), 5)
    assert sequence.tolist() == [0, 0, 0, 2, 2] and position.tolist() == [0, 1, 2, 0, 1]
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    cu_seqlens, positions = rows_as_sequences(mask, mask.shape)
    assert cu_seqlens.tolist() == [0, 3, 4, 8, 8] and cu_seqlens.dtype == torch.int32
    assert positions.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3]]


def test_the_varlen_attention_refuses_what_it_cannot_compute():
    padded, flat = _models("bert")
    flat.mlm.config.attention_probs_dropout_prob = 0.1
    for layer in flat.mlm.bert.encoder.layer:
        layer.attention.self.dropout.p = 0.1
    with pytest.raises(RuntimeError, match="no dropout"):
        flat(**_padded_batch("bert"))
    with pytest.raises(RuntimeError, match="takes padded batches"):
        padded(**_flattened(_padded_batch("bert"), 24))
