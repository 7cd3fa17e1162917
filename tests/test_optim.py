"""The optimizer rule: decay on matrices only, linear warmup from 0 then linear decay to 0."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from linkbert.optim import adamw, decays, linear_schedule


def test_no_decay_on_biases_and_norm_weights_of_a_bert():
    model = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32, num_labels=3))
    no_decay = {name for name, p in model.named_parameters() if not decays(p)}
    by_name = {name for name, _ in model.named_parameters() if name.endswith("bias") or "LayerNorm" in name}
    assert no_decay == by_name  # the HF Trainer's rule, by name, for BERT
    optimizer = adamw(model, lr=1e-3, weight_decay=0.01, betas=(0.9, 0.98), eps=1e-6)
    decayed, plain = optimizer.param_groups
    assert (decayed["weight_decay"], plain["weight_decay"]) == (0.01, 0.0)
    assert (decayed["betas"], decayed["eps"]) == ((0.9, 0.98), 1e-6)
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_frozen_parameters_are_left_out():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    optimizer = adamw(model, lr=1e-3, weight_decay=0.0)
    assert sum(len(group["params"]) for group in optimizer.param_groups) == 2


@pytest.mark.parametrize("warmup, total", [(4, 10), (0, 5), (1, 3)])
def test_linear_warmup_then_decay(warmup, total):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=2.0)
    schedule = linear_schedule(optimizer, warmup_steps=warmup, total_steps=total)
    seen = []
    for _ in range(total + 1):
        seen.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    expected = [2.0 * (s / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))
                for s in range(total + 1)]
    assert seen == pytest.approx(expected)
    assert seen[-1] == 0.0 and max(seen) == pytest.approx(2.0)
