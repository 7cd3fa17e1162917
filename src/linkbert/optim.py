"""The optimizer rule of every training loop: AdamW without decay on 1-D parameters, and a
linear warmup followed by a linear decay to zero.

Pretraining and fine-tuning both build theirs here. The schedule is transformers'
``get_linear_schedule_with_warmup``, the one the released LinkBERT fine-tuning ran (through the
HF Trainer): the learning rate climbs from 0 at update 0 to the peak at ``warmup_steps``, then
falls to 0 at ``total_steps``.
"""

from __future__ import annotations

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
