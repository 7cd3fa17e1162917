"""The optimizer rule: decay on matrices only, linear warmup from 0 then linear decay to 0; the
update (``optim.step``): unscale, clip, step, schedule, clear."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from linkbert.optim import adamw, decays, linear_schedule, step


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


def _sgd_with_gradients(gradients: list[list[float]], lr: float = 1.0):
    """Parameters at 0 whose gradients are ``gradients`` (one more without a gradient), plain SGD
    (a step moves each by -lr x its gradient) and a constant schedule."""
    parameters = [torch.nn.Parameter(torch.zeros(len(g))) for g in gradients]
    for parameter, gradient in zip(parameters, gradients):
        parameter.grad = torch.tensor(gradient)
    frozen = torch.nn.Parameter(torch.zeros(2))  # no gradient: left out of the norm and the step
    optimizer = torch.optim.SGD([*parameters, frozen], lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    return parameters, frozen, optimizer, scheduler


def test_step_clips_the_global_norm_and_returns_it_before_clipping():
    parameters, frozen, optimizer, scheduler = _sgd_with_gradients([[3.0, 0.0], [0.0, 4.0]])  # norm 5
    grad_norm = step(optimizer, scheduler, [*parameters, frozen], max_grad_norm=1.0)
    assert isinstance(grad_norm, torch.Tensor) and grad_norm.ndim == 0
    assert float(grad_norm) == pytest.approx(5.0)
    # scaled by 1/5 (up to clip_grad_norm_'s epsilon): a norm-1 update
    assert torch.cat([p.detach() for p in parameters]).tolist() == pytest.approx([-0.6, 0.0, 0.0, -0.8], abs=1e-6)
    assert frozen.detach().tolist() == [0.0, 0.0]
    assert all(p.grad is None for p in parameters)  # cleared, set to None
    assert scheduler.last_epoch == 1


def test_step_without_clipping_still_measures_the_norm():
    parameters, frozen, optimizer, scheduler = _sgd_with_gradients([[3.0, 0.0], [0.0, 4.0]], lr=0.5)
    grad_norm = step(optimizer, scheduler, [*parameters, frozen], max_grad_norm=0)
    assert float(grad_norm) == pytest.approx(5.0)
    assert torch.cat([p.detach() for p in parameters]).tolist() == [-1.5, 0.0, 0.0, -2.0]  # the whole gradient
    # a norm below the limit is not touched either
    parameters, frozen, optimizer, scheduler = _sgd_with_gradients([[0.3, 0.4]])
    assert float(step(optimizer, scheduler, parameters, max_grad_norm=1.0)) == pytest.approx(0.5)
    assert parameters[0].detach().tolist() == pytest.approx([-0.3, -0.4])


def test_step_with_no_gradient_at_all_gives_a_zero_norm():
    parameter = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    assert float(step(optimizer, scheduler, [parameter], max_grad_norm=1.0)) == 0.0
    assert parameter.detach().tolist() == [1.0, 1.0]


def test_step_through_a_gradient_scaler_unscales_before_clipping():
    """fp16's loss scaling (a CPU GradScaler works the same way): the norm, the clipping and the
    update are those of the true gradients; a step whose gradients overflowed is skipped."""
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    weight = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([weight], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    loss = (weight * torch.tensor([6.0, 8.0])).sum()  # gradient (6, 8): norm 10
    scaler.scale(loss).backward()
    assert weight.grad.tolist() == [6144.0, 8192.0]  # scaled
    grad_norm = step(optimizer, scheduler, [weight], max_grad_norm=2.0, scaler=scaler)
    assert float(grad_norm) == pytest.approx(10.0)
    assert weight.detach().tolist() == pytest.approx([-1.2, -1.6], abs=1e-5)  # clipped to norm 2
    assert weight.grad is None and scheduler.last_epoch == 1

    scaler.scale((weight * torch.tensor([float("inf"), 1.0])).sum()).backward()
    before = weight.detach().clone()
    step(optimizer, scheduler, [weight], max_grad_norm=0, scaler=scaler)
    assert torch.equal(weight.detach(), before)  # overflow: the update is skipped
    assert scaler.get_scale() == 512.0  # and the scale backs off
