"""The fine-tuning loop and prediction, in plain PyTorch: AdamW with a linear warmup then linear
decay (``linkbert.optim``, as pretraining), gradient accumulation counted as the released
runs' HF Trainer counts it, clipping and fp16 loss scaling in ``optim.step``; autocast for
bf16/fp16; per-feature outputs when predicting, and the best epoch on dev when asked."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from linkbert import optim, runtime
from linkbert.finetune.data import Split
from linkbert.finetune.task_base import Task

log = logging.getLogger("linkbert.finetune")


def updates_per_epoch(num_batches: int, grad_accum_steps: int) -> int:
    """Optimizer updates in one pass, as the released runs' HF Trainer counts them: whole
    accumulation groups (at least one). The schedule, and so the learning rate at every update,
    is then the released one."""
    return max(1, num_batches // grad_accum_steps)


def update_after(num_batches: int, grad_accum_steps: int) -> set[int]:
    """The batch indices of an epoch after which the optimizer steps: the end of every whole
    accumulation group, or the epoch's last batch when the epoch is shorter than one group.
    The batches of a last, partial group are back-propagated and their gradients join the next
    epoch's first update (the last epoch's are dropped): the HF Trainer of the released runs."""
    if num_batches <= grad_accum_steps:
        return {num_batches - 1}
    return {i for i in range(num_batches) if (i + 1) % grad_accum_steps == 0}


def plan_steps(num_batches: int, *, grad_accum_steps: int, epochs: float, max_steps: int, warmup_ratio: float,
               warmup_steps: int) -> tuple[int, int]:
    """``(total updates, warmup updates)``; ``max_steps`` wins over ``epochs``."""
    per_epoch = updates_per_epoch(num_batches, grad_accum_steps)
    total = max_steps if max_steps > 0 else max(1, math.ceil(epochs * per_epoch))
    warmup = warmup_steps if warmup_steps > 0 else math.ceil(warmup_ratio * total)
    return total, min(warmup, total)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def backward(model, batch: dict, scaler, device, *, dtype, grad_accum_steps: int) -> float:
    """Back-propagate one batch's loss, divided by ``grad_accum_steps`` (whatever the size of
    the group it lands in, as the HF Trainer); returns that share of the loss."""
    model.train()
    with runtime.autocast(dtype, device):
        loss = model(**to_device(batch, device)).loss / grad_accum_steps
    (scaler.scale(loss) if scaler else loss).backward()
    return loss.item()


def train(model, task: Task, features: list[dict], device, *, batch_size: int, grad_accum_steps: int,
          epochs: float, max_steps: int, warmup_ratio: float, warmup_steps: int, lr: float, weight_decay: float,
          adam_beta1: float, adam_beta2: float, adam_eps: float, max_grad_norm: float, seed: int, log_every: int,
          dtype, on_epoch_end: Callable[[int], None] | None = None,
          record: Callable[[int, str, dict], None] | None = None) -> dict:
    """Fine-tune ``model`` in place; ``on_epoch_end(epoch)`` runs after every (partial) epoch;
    ``record(step, "train", {"loss", "lr", "epoch"})`` at every logged update (a tracker's log).
    ``seed`` fixes the data order, independently of the global generators (dropout)."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(features, batch_size=batch_size, shuffle=True, generator=generator, collate_fn=task.collate)
    total, warmup = plan_steps(len(loader), grad_accum_steps=grad_accum_steps, epochs=epochs, max_steps=max_steps,
                               warmup_ratio=warmup_ratio, warmup_steps=warmup_steps)
    optimizer = optim.adamw(model, lr=lr, weight_decay=weight_decay, betas=(adam_beta1, adam_beta2), eps=adam_eps)
    scheduler = optim.linear_schedule(optimizer, warmup_steps=warmup, total_steps=total)
    scaler = runtime.grad_scaler(dtype, device)
    steps_at = update_after(len(loader), grad_accum_steps)
    log.info("training: %d features, %d updates (warmup %d), update batch %d", len(features), total, warmup,
             batch_size * grad_accum_steps)
    step, epoch, recent, loss = 0, 0, [], 0.0
    progress = tqdm(total=total, desc="train", disable=None)
    while step < total:
        for index, batch in enumerate(loader):
            loss += backward(model, batch, scaler, device, dtype=dtype, grad_accum_steps=grad_accum_steps)
            if index not in steps_at:
                continue
            optim.step(optimizer, scheduler, model.parameters(), max_grad_norm=max_grad_norm, scaler=scaler)
            step, recent, loss = step + 1, recent + [loss], 0.0
            progress.update(1)
            if step % log_every == 0 or step == total:
                mean, lr = float(np.mean(recent)), scheduler.get_last_lr()[0]
                log.info("step %d/%d epoch %d loss %.4f lr %.3g", step, total, epoch + 1, mean, lr)
                if record:
                    record(step, "train", {"loss": mean, "lr": lr, "epoch": epoch + 1})
                recent = []
            if step >= total:
                break
        epoch += 1
        if on_epoch_end:
            on_epoch_end(epoch)
    progress.close()
    return {"steps": step, "epochs_run": epoch, "warmup_steps": warmup}


@torch.no_grad()
def predict(model, task: Task, features: list[dict], device, *, eval_batch_size: int, dtype) -> list:
    """Per-feature model outputs, in feature order."""
    model.eval()
    loader = DataLoader(features, batch_size=eval_batch_size, shuffle=False, collate_fn=task.collate)
    outputs = []
    for batch in tqdm(loader, desc="predict", disable=None):
        with runtime.autocast(dtype, device):
            out = model(**to_device(batch, device))
        outputs += task.outputs(out, batch)
    return outputs


def evaluate(model, task: Task, split: Split, features: list[dict], device, *, eval_batch_size: int,
             dtype) -> tuple[dict, dict]:
    """``(scores, predictions)`` of ``model`` on one split."""
    outputs = predict(model, task, features, device, eval_batch_size=eval_batch_size, dtype=dtype)
    predictions = task.decode(split, features, outputs)
    scores = task.score(split, predictions)
    log.info("%s: %s", split.name, ", ".join(f"{k} {v:.4g}" for k, v in scores.items()
                                              if isinstance(v, (int, float))))
    return scores, predictions


class BestOnDev:
    """Keeps a copy of the weights of the epoch with the best dev ``main`` score;
    ``score()`` evaluates the model on dev."""

    def __init__(self, model, score: Callable[[], dict]):
        self.model, self.score = model, score
        self.best, self.epoch, self.state = -math.inf, 0, None

    def __call__(self, epoch: int) -> None:
        main = self.score()["main"]
        if main > self.best:
            self.best, self.epoch = main, epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)
            log.info("restored epoch %d (best dev main %.4g)", self.epoch, self.best)
