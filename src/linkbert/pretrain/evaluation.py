"""A pretraining run's held-out evaluation: MLM loss and accuracy, relation accuracy overall and
per class, and the confusion matrix, over ``eval_pairs`` pairs of the held-out documents' anchors,
every rank taking its share (``run.py`` calls it every ``eval_every`` steps and at the end).
"""

from __future__ import annotations

import numpy as np
import torch

from linkbert import runtime
from linkbert.objectives import OBJECTIVES, relation_names


@torch.no_grad()
def evaluate(model, heldout, collator, dist: runtime.Dist, *, micro_batch_size: int, eval_pairs: int, objective: str,
             autocast_dtype: torch.dtype | None, forward_options: dict) -> dict:
    """The figures of ``model`` (any wrapper: its inner module runs) on the first ``eval_pairs``
    pairs of the ``heldout`` sampler (epoch 0), collated by ``collator``, ``micro_batch_size`` at a
    time, rank ``r`` taking every ``world``-th batch; {} without held-out documents."""
    if heldout is None:
        return {}
    model.eval()
    n = min(eval_pairs, len(heldout))
    n_rel = OBJECTIVES[objective] or 3
    device = dist.device
    confusion = torch.zeros(n_rel * n_rel, dtype=torch.int64, device=device)
    totals = torch.zeros(3, dtype=torch.float64, device=device)  # mlm loss, mlm correct, mlm count
    for start in range(dist.rank * micro_batch_size, n, micro_batch_size * dist.world):
        pairs = [heldout.pair(0, i) for i in range(start, min(start + micro_batch_size, n))]
        batch = {k: v.to(device) for k, v in collator(pairs).items()}
        with runtime.autocast(autocast_dtype, device):
            output = runtime.unwrap(model)(**batch, **forward_options)
        totals += torch.stack([statistic(output.mlm_loss_sum, totals), statistic(output.mlm_correct, totals),
                               statistic(output.mlm_count, totals)])
        if output.relation_logits is not None:
            cells = batch["relation_labels"] * n_rel + output.relation_logits.argmax(-1)
            confusion += torch.bincount(cells, minlength=n_rel * n_rel)
    totals = runtime.all_reduce_sum(totals, dist).tolist()
    confusion = runtime.all_reduce_sum(confusion, dist).view(n_rel, n_rel).cpu().numpy()
    totals = {"mlm_loss": totals[0], "mlm_correct": totals[1], "mlm_count": max(totals[2], 1)}
    result = {"pairs": n, "mlm_loss": totals["mlm_loss"] / totals["mlm_count"],
              "mlm_accuracy": totals["mlm_correct"] / totals["mlm_count"]}
    if objective != "mlm-only":
        names = relation_names(n_rel)
        per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
        result.update(relation_accuracy=float(confusion.diagonal().sum() / max(confusion.sum(), 1)),
                      relation_accuracy_per_class=dict(zip(names, per_class.round(4).tolist())),
                      relation_chance=1 / n_rel, relation_confusion=confusion.tolist(),
                      relation_labels=names, relation_distribution=dict(zip(names, confusion.sum(1).tolist())))
    return result


def statistic(value: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A statistic of a forward pass as a scalar of ``like``'s dtype on ``like``'s device (0 where
    the model has none, e.g. no relation head), without reading it back to the host."""
    if value is None:
        return torch.zeros((), dtype=like.dtype, device=like.device)
    return value.detach().to(like.dtype)
