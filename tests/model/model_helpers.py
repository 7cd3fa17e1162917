"""Small models and batches for the model's tests (no downloads)."""

from __future__ import annotations

import torch
from transformers import BertConfig

from transformers import BertForMaskedLM

from linkbert.model.presets import preset_config
from linkbert.model.pretraining import LinkPretrainingModel
from linkbert.objectives import IGNORE_INDEX

VOCAB = 100


SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


def small_config(**overrides) -> BertConfig:
    return preset_config("tiny", VOCAB, **{**SMALL, **overrides})


def small_model(num_relations: int = 3, backend: str = "bert-cpu", **overrides) -> LinkPretrainingModel:
    """A small BERT pretraining model, the same weights whichever ``backend`` computes it."""
    torch.manual_seed(0)
    return LinkPretrainingModel(BertForMaskedLM(small_config(**overrides)), num_relations, backend)


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
