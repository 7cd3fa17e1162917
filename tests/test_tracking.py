"""Run tracking (tracking.py): TensorBoard, W&B offline, or none, each with the same scalars."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import tensorboard_tags, wandb_file

from linkbert.errors import ConfigError
from linkbert.tracking import open_tracker, tracking

SCALARS = [(1, "train", {"loss": 2.5, "lr": 1e-3, "note": "not a number", "flag": True}),
           (2, "train", {"loss": 2.0, "lr": 9e-4}), (2, "eval", {"mlm_accuracy": 0.25, "per_class": {"a": 1.0}})]


def test_tensorboard_and_wandb_get_the_same_scalars(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline by default
    for kind in ("tensorboard", "wandb"):
        with tracking(kind, tmp_path / kind, name="t", config={"lr": 1e-3}) as tracker:
            for step, what, scalars in SCALARS:
                tracker.log(step, what, scalars)
    tags = tensorboard_tags(tmp_path / "tensorboard")
    assert tags == {"train/loss", "train/lr", "eval/mlm_accuracy"}  # numbers only, named kind/key
    written = wandb_file(tmp_path / "wandb")
    assert all(tag.encode() in written for tag in tags)
    assert b"train/note" not in written and b"eval/per_class" not in written


def test_none_imports_neither_library(tmp_path):
    code = ("import sys; from linkbert.tracking import tracking\n"
            f"with tracking('none', {str(tmp_path)!r}, name='t', config={{}}) as t: t.log(1, 'train', {{'loss': 1.0}})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('wandb', 'tensorboard') "
            "or m.startswith('torch.utils.tensorboard')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_tracker_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="tracker must be one of tensorboard, wandb, none"):
        open_tracker("mlflow", tmp_path, name="t", config={})
