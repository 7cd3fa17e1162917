"""Training checkpoints: written atomically, found, loaded and pruned.

Layout of a run folder's ``checkpoints/``::

    step-00000500/          one checkpoint: the model (``save_pretrained``, safetensors), its
                            tokenizer, trainer.pt (optimizer, schedule, RNG states; tensors only,
                            loaded with ``weights_only=True``) and trainer_state.json (step,
                            settings, history)
    latest                  the name of the newest complete checkpoint

A checkpoint is written into a temporary folder, flushed to disk and renamed when complete,
then ``latest`` is replaced: a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from linkbert.files import fsync_folder
from linkbert.runtime import unwrap

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TRAINER = "trainer.pt"
STATE = "trainer_state.json"


def save(run_dir: Path, step: int, *, model, tokenizer, trainer: dict, state: dict, keep: int) -> Path:
    """Write ``run_dir/checkpoints/step-N``: ``model`` and ``tokenizer`` (``save_pretrained``),
    ``trainer`` (state dicts and tensors, e.g. :func:`rng_state`) and ``state`` (JSON: the step
    is added); then keep the ``keep`` newest step checkpoints. Returns the checkpoint folder."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    unwrap(model).save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    torch.save(trainer, tmp / TRAINER)
    (tmp / STATE).write_text(json.dumps({"step": step, **state}, indent=2))
    fsync_folder(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(final.name + "\n")
    os.replace(pointer, root / LATEST)
    prune(root, keep, protect=final.name)
    return final


def prune(root: Path, keep: int, protect: str) -> None:
    """Delete all but the ``keep`` newest ``step-*`` folders of ``root`` (never ``protect``)."""
    steps = sorted(p for p in Path(root).glob("step-*") if p.is_dir())
    for old in steps[:-max(1, keep)]:
        if old.name != protect:
            shutil.rmtree(old, ignore_errors=True)


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run folder, or None."""
    pointer = Path(run_dir) / CHECKPOINTS / LATEST
    if not pointer.exists():
        return None
    path = Path(run_dir) / CHECKPOINTS / pointer.read_text().strip()
    return path if path.is_dir() else None


def load(path: Path, model) -> tuple[dict, dict]:
    """Load a checkpoint's weights into ``model`` (tied weights re-tied); returns its trainer
    state (tensors, on the CPU) and its JSON state."""
    from safetensors.torch import load_file

    path = Path(path)
    unwrap(model).load_state_dict(load_file(path / "model.safetensors"), strict=False)
    unwrap(model).tie_weights()
    trainer = torch.load(path / TRAINER, weights_only=True, map_location="cpu")
    return trainer, json.loads((path / STATE).read_text())


def rng_state() -> dict:
    """The torch generators' states (CPU, and CUDA where present), for :func:`set_rng_state`."""
    state = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng"])
