"""The fine-tuning loop: the step plan (updates per epoch, warmup, max_steps) and gradient
accumulation across epochs, as the released runs' HF Trainer counts them."""

from __future__ import annotations

from linkbert import optim
from linkbert.finetune.loop import plan_steps, update_after
from linkbert.finetune.run import FinetuneConfig


def plan(num_batches: int, **values) -> tuple[int, int]:
    config = FinetuneConfig(**values)
    return plan_steps(num_batches, grad_accum_steps=config.grad_accum_steps, epochs=config.epochs,
                      max_steps=config.max_steps, warmup_ratio=config.warmup_ratio, warmup_steps=config.warmup_steps)


def test_step_plan():
    # 2 updates per epoch: whole accumulation groups, as the released runs' HF Trainer counts them
    assert plan(5, epochs=2, grad_accum_steps=2, warmup_ratio=0.1) == (4, 1)
    assert plan(3, epochs=2, grad_accum_steps=4) == (2, 0)  # an epoch shorter than a group: one update
    assert plan(5, epochs=1, max_steps=4, warmup_steps=10) == (4, 4)
    assert plan(10, epochs=0.5) == (5, 0)


def test_updates_after_whole_groups_or_a_short_epochs_last_batch():
    assert update_after(5, 2) == {1, 3} and update_after(4, 2) == {1, 3}
    assert update_after(3, 4) == {2} and update_after(4, 1) == {0, 1, 2, 3}


def test_a_partial_group_joins_the_next_epochs_first_update(monkeypatch):
    """5 batches a epoch, groups of 2, 2 epochs: updates {b0,b1} {b2,b3} {b4 + the next epoch's
    first two} {two more}, the second epoch's last batch dropped. Batch i's loss is w * 2**i, so
    the gradient of an update (times the group size) tells which batches it holds."""
    import types

    import torch

    from linkbert.finetune import loop

    class Scalar(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return types.SimpleNamespace(loss=(self.w * x).sum())

    task = types.SimpleNamespace(collate=lambda features: {"x": torch.tensor([f["x"] for f in features])})
    model = Scalar()
    seen, real_step = [], optim.step

    def record(*args, **kwargs):
        seen.append(round(float(model.w.grad) * 2))
        return real_step(*args, **kwargs)

    monkeypatch.setattr(optim, "step", record)
    result = loop.train(model, task, [{"x": 2.0 ** i} for i in range(5)], torch.device("cpu"),
                              batch_size=1, grad_accum_steps=2, epochs=2, max_steps=-1, warmup_ratio=0.0,
                              warmup_steps=0, lr=1e-3, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.999,
                              adam_eps=1e-8, max_grad_norm=0.0, seed=0, log_every=100, dtype=None)
    assert result["steps"] == 4 and len(seen) == 4
    assert [bin(g).count("1") for g in seen] == [2, 2, 3, 2]  # the third update holds three batches
    assert seen[0] + seen[1] + seen[2] - 31 + seen[3] < 31  # the second epoch: one batch left out
