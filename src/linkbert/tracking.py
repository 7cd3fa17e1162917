"""Run tracking where people look: TensorBoard, Weights & Biases, or none.

:func:`open_tracker` returns a :class:`Tracker` whose ``log(step, kind, scalars)`` writes the
same scalars to whichever was chosen, named ``kind/key`` (``train/loss``, ``eval/mlm_accuracy``);
pretraining (``pretrain/run_log.py``) and fine-tuning both log through it. Nothing is imported
unless chosen: ``none`` imports neither library.

* ``tensorboard``: event files in ``FOLDER/tensorboard`` (``torch.utils.tensorboard``); without
  the ``tensorboard`` package, a log line and no scalars (the run's own files hold them all).
* ``wandb``: a W&B run in ``FOLDER/wandb``, with the run's settings as its config. Its mode is
  ``WANDB_MODE`` where set, else ``offline`` (files only: a batch job never waits on a login or
  the network; ``wandb sync FOLDER/wandb/offline-run-*`` uploads them later). Without the
  ``wandb`` package it is a ConfigError saying what to install.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from linkbert.errors import ConfigError

TRACKERS = ("tensorboard", "wandb", "none")
log = logging.getLogger("linkbert.tracking")


class Tracker:
    """Writes nothing (``none``); the base of the others."""

    def log(self, step: int, kind: str, scalars: dict) -> None:
        pass

    def close(self) -> None:
        pass


def _numbers(kind: str, scalars: dict) -> dict:
    return {f"{kind}/{key}": value for key, value in scalars.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


class TensorBoardTracker(Tracker):
    def __init__(self, folder: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder / "tensorboard"))

    def log(self, step: int, kind: str, scalars: dict) -> None:
        for name, value in _numbers(kind, scalars).items():
            self.writer.add_scalar(name, value, step)

    def close(self) -> None:
        self.writer.close()


class WandbTracker(Tracker):
    def __init__(self, folder: Path, *, name: str, config: dict, project: str):
        try:
            import wandb
        except ImportError:
            raise ConfigError('tracker=wandb needs the wandb package: pip install wandb (or pip install -e ".[tracking]")'
                              ) from None
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(project=project, name=name, dir=str(folder), config=config,
                              mode=os.environ.get("WANDB_MODE", "offline"), reinit="create_new")

    def log(self, step: int, kind: str, scalars: dict) -> None:
        self.run.log(_numbers(kind, scalars), step=step)

    def close(self) -> None:
        self.run.finish()


def open_tracker(kind: str, folder: str | Path, *, name: str, config: dict, project: str = "linkbert") -> Tracker:
    """The tracker ``kind`` (:data:`TRACKERS`) writing beside a run's own files in ``folder``."""
    folder = Path(folder)
    if kind == "tensorboard":
        try:
            return TensorBoardTracker(folder)
        except ImportError:
            log.info("tensorboard is not installed: no TensorBoard scalars (the run's own files have them all)")
            return Tracker()
    if kind == "wandb":
        return WandbTracker(folder, name=name, config=config, project=project)
    if kind == "none":
        return Tracker()
    raise ConfigError(f"tracker must be one of {', '.join(TRACKERS)} (got {kind!r})")


@contextlib.contextmanager
def tracking(kind: str, folder: str | Path, *, name: str, config: dict, project: str = "linkbert"):
    """:func:`open_tracker` for the length of a block; closed whatever happens in it."""
    tracker = open_tracker(kind, folder, name=name, config=config, project=project)
    try:
        yield tracker
    finally:
        tracker.close()
