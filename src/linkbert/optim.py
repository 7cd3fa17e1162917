"""The optimizer rule of every training loop: AdamW without decay on 1-D parameters, a linear
warmup followed by a linear decay to zero, and the update itself (:func:`step`: unscale, clip,
step, advance the schedule, clear the gradients).

Pretraining and fine-tuning both build theirs here. The schedule is transformers'
``get_linear_schedule_with_warmup``, the one the released LinkBERT fine-tuning ran (through the
HF Trainer): the learning rate climbs from 0 at update 0 to the peak at ``warmup_steps``, then
falls to 0 at ``total_steps``.
"""

from __future__ import annotations

import typing

import torch


def decays(parameter: torch.Tensor) -> bool:
    """Weight decay applies to matrices (projections, embeddings), not to biases and norm
    weights: for BERT the same split as the HF Trainer's by name (``bias``, ``LayerNorm``),
    and it holds for any encoder whatever it calls its norms."""
    return parameter.ndim >= 2


def adamw(model: torch.nn.Module, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999),
          eps: float = 1e-8, fused: bool = True) -> torch.optim.AdamW:
    """AdamW over ``model``'s trainable parameters, decaying only where :func:`decays` says.

    ``fused``: one kernel for the whole update, its step counts on the parameters' device (the
    unfused update reads every parameter's step count back to the host: a sync per parameter on
    a GPU); on a CPU too it is the faster update (docs/performance.md)."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if decays(parameter) else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=fused or None)


def linear_schedule(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int):
    """Linear warmup over ``warmup_steps`` updates, then linear decay to 0 at ``total_steps``."""
    from transformers import get_linear_schedule_with_warmup

    return get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)


def retarget(optimizer: torch.optim.Optimizer, scheduler, *, lr: float, weight_decay: float,
             betas: tuple[float, float], eps: float) -> None:
    """Give a restored ``adamw`` optimizer and its ``linear_schedule`` new hyperparameters, from
    the schedule's current step on (a resumed run whose settings changed). The schedule's shape
    (its warmup and total steps) is the scheduler's; the peak becomes ``lr``. Unchanged values
    are recomputed bit for bit as the scheduler computed them."""
    groups = optimizer.param_groups
    for group in groups:
        group.update(betas=betas, eps=eps, initial_lr=lr)
    groups[0]["weight_decay"] = weight_decay  # adamw: group 0 decays, group 1 does not
    scheduler.base_lrs = [lr] * len(groups)
    for group, rule in zip(groups, scheduler.lr_lambdas, strict=True):
        group["lr"] = lr * rule(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in groups]


def step(optimizer: torch.optim.Optimizer, scheduler, parameters: typing.Iterable[torch.Tensor], *,
         max_grad_norm: float, scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One update from the gradients the backward passes left: unscale them (fp16's ``scaler``),
    clip their global norm to ``max_grad_norm`` (0: no clipping), step the optimizer (through
    the scaler, which skips a step whose gradients overflowed), advance the schedule and clear
    the gradients.

    Returns the global L2 norm of the (unscaled) gradients before clipping, over the
    ``parameters`` that have one, as a 0-d tensor on their device: not read back, so the host
    does not wait for the device unless the caller logs it."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    with_grad = [p for p in parameters if p.grad is not None]
    if max_grad_norm > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(with_grad, max_grad_norm)
    else:  # the norm alone: the gradients are left as they are
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in with_grad])
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm
