"""Training checkpoints: written atomically, verified, found, loaded and pruned.

Layout of a run folder's ``checkpoints/``::

    step-00000500/          one checkpoint: the model (``save_pretrained``, safetensors), its
                            tokenizer, trainer.pt (optimizer, schedule, RNG states; tensors only,
                            loaded with ``weights_only=True``), trainer_state.json (step,
                            settings, history) and manifest.json (size and sha256 of every other
                            file, written last)
    latest                  the name of the newest checkpoint written

Why each rule:

* A checkpoint is written into ``.tmp-step-N``, flushed, its manifest written last, and only then
  renamed into place; ``latest`` is replaced after. A kill at any moment leaves every earlier
  checkpoint intact. Saving a step that exists (after a resume skipped a damaged one) renames
  the old folder aside first, the new one into place, then deletes the old: there is never a
  moment without one of them, and a failed rename puts the old one back.
* A checkpoint is verified before it is used (:func:`verify`): a file that is missing, truncated
  or has flipped bytes does not match the manifest, and resuming from it would train garbage to
  NaN. A checkpoint without a manifest (written before checksums) is accepted as it loads.
* Resuming takes the newest checkpoint that verifies and loads (:func:`load_newest`), logging
  each one skipped and why; ``latest`` naming a missing folder is logged, not taken as "no
  checkpoint" (that would silently restart from step 0). When checkpoints exist but none is
  good, that is an error, not a fresh start.
* Pruning deletes only checkpoints older than the one just written and verified.
* A full or read-only disk is an ``OSError`` naming the file being written (:func:`naming`):
  torch and safetensors report it without a file name, or not as an ``OSError`` at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from linkbert.errors import BadInput
from linkbert.files import fsync_folder, naming, publish_folder, write_text
from linkbert.runtime import unwrap

log = logging.getLogger("linkbert.checkpoint")

CHECKPOINTS = "checkpoints"
LATEST = "latest"
TRAINER = "trainer.pt"
STATE = "trainer_state.json"
MANIFEST = "manifest.json"
WEIGHTS = "model.safetensors"
STEP = re.compile(r"step-(\d+)")


class Damaged(BadInput):
    """A checkpoint whose files do not match its manifest or cannot be read."""

    def __init__(self, path: Path, detail: str):
        super().__init__(str(path), "", "damaged_checkpoint", detail)


# -- writing ---------------------------------------------------------------------------------------

def save(run_dir: Path, step: int, *, model, tokenizer, trainer: dict, state: dict, keep: int) -> Path:
    """Write ``run_dir/checkpoints/step-N``: ``model`` and ``tokenizer`` (``save_pretrained``),
    ``trainer`` (state dicts and tensors, e.g. :func:`rng_state`), ``state`` (JSON: the step is
    added) and the manifest; point ``latest`` at it; keep the ``keep`` newest step checkpoints
    up to it. On any error the temporary folder goes and the earlier checkpoints and ``latest``
    stay as they were. Returns the checkpoint folder."""
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root)
    final = folder_of(run_dir, step)
    tmp = root / f".tmp-{final.name}"
    try:
        _write(tmp, step, model=model, tokenizer=tokenizer, trainer=trainer, state=state)
        aside = publish_folder(tmp, final, aside=root / f".old-{final.name}")  # deleted once latest moves on
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _point_latest(root, final.name)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    prune(root, keep, protect=final.name)
    return final


def _write(folder: Path, step: int, *, model, tokenizer, trainer: dict, state: dict) -> None:
    folder.mkdir()
    with naming(folder / WEIGHTS):
        unwrap(model).save_pretrained(folder, safe_serialization=True)
    with naming(folder):
        tokenizer.save_pretrained(folder)
    save_torch(trainer, folder / TRAINER)
    write_text(folder / STATE, json.dumps({"step": step, **state}, indent=2))
    write_manifest(folder)
    with naming(folder):
        fsync_folder(folder)


def _point_latest(root: Path, name: str) -> None:
    pointer = root / f".{LATEST}.tmp"
    write_text(pointer, name + "\n")
    os.replace(pointer, root / LATEST)
    _fsync_dir(root)


def _remove_leftovers(root: Path) -> None:
    """Folders of saves killed half-way (``.tmp-step-*``, ``.old-step-*``): never a checkpoint
    that is not also complete elsewhere, since the rename into place comes after the manifest."""
    for leftover in [*root.glob(".tmp-step-*"), *root.glob(".old-step-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (a power cut must not undo them)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(root: Path, keep: int, protect: str) -> None:
    """Delete all but the ``keep`` newest ``step-*`` folders up to ``protect`` (just written and
    verified, never deleted). Newer folders are left: they are damaged ones a resume skipped,
    replaced when training reaches their step."""
    limit = _step_of(Path(protect))
    older = [p for p in steps(root) if _step_of(p) < limit]  # newest first
    for old in older[max(1, keep) - 1:]:
        shutil.rmtree(old, ignore_errors=True)


# -- verifying -------------------------------------------------------------------------------------

def write_manifest(folder: Path) -> None:
    """``manifest.json``: size and sha256 of every other file of ``folder``, written last."""
    files = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    write_text(folder / MANIFEST, json.dumps({"format": 1, "files": files}, indent=1))


def verify(folder: Path, checksums: bool = True) -> bool:
    """Check every file of the manifest, sizes first (a truncated file fails without hashing),
    then (``checksums``) their sha256; raises :class:`Damaged` naming the first bad file. Returns
    False for a checkpoint written without a manifest, which can only be checked by loading it.
    Without ``checksums``, for a reader of a checkpoint another process has just verified."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return False
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Damaged(folder / MANIFEST, f"unreadable manifest ({_first_line(e)})") from None
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise Damaged(path, "missing from the checkpoint")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise Damaged(path, f"{size} bytes, {expected['bytes']} expected (truncated?)")
    if not checksums:
        return True
    for name, expected in files.items():
        if _sha256(folder / name) != expected["sha256"]:
            raise Damaged(folder / name, "does not match its checksum (corrupted)")
    return True


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


# -- finding ---------------------------------------------------------------------------------------

def steps(root: Path) -> list[Path]:
    """The ``step-N`` folders of a ``checkpoints/`` folder, newest first."""
    found = [p for p in Path(root).glob("step-*") if p.is_dir() and STEP.fullmatch(p.name)]
    return sorted(found, key=_step_of, reverse=True)


def _step_of(path: Path) -> int:
    return int(STEP.fullmatch(path.name).group(1))


def latest(run_dir: Path) -> Path | None:
    """The checkpoint ``latest`` names, else the newest ``step-*`` folder, else None; not
    verified (:func:`newest_good` is)."""
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / LATEST
    if pointer.is_file():
        path = root / pointer.read_text().strip()
        if path.is_dir() and STEP.fullmatch(path.name):
            return path
    found = steps(root)
    return found[0] if found else None


def newest_good(run_dir: Path) -> Path | None:
    """The newest checkpoint whose files match its manifest (one without a manifest is taken as
    it is), for reading its model (export); as :func:`load_newest`, skipped ones are logged, and
    checkpoints of which none is good are an error."""
    root = Path(run_dir) / CHECKPOINTS
    _log_missing_pointer(root)
    skipped = []
    for path in steps(root):
        try:
            verify(path)
            return path
        except Damaged as e:
            _skip(path, e, skipped)
    _none_good(root, skipped)
    return None


@dataclass
class Loaded:
    """A checkpoint read into memory: its folder, JSON state, model weights and trainer state."""

    path: Path
    state: dict
    weights: dict
    trainer: dict


def load_newest(run_dir: Path, check: Callable[[Path, dict], None] | None = None) -> Loaded | None:
    """The newest checkpoint of ``run_dir`` that verifies and loads, newest first.

    ``check(path, state)`` sees its JSON state before any tensor is read (a run refusing other
    settings raises there, and that error stops the search). Each checkpoint skipped is logged
    with the reason; None when the run has no checkpoint; :class:`BadInput` when it has some and
    none is good (restarting from step 0 would throw the run away without a word)."""
    root = Path(run_dir) / CHECKPOINTS
    _log_missing_pointer(root)
    skipped = []
    for path in steps(root):
        try:
            return read(path, check=check)
        except Damaged as e:
            _skip(path, e, skipped)
    _none_good(root, skipped)
    return None


def read(path: Path, *, check: Callable[[Path, dict], None] | None = None, checksums: bool = True) -> Loaded:
    """One checkpoint, verified (without ``checksums``: its files' sizes only, for a process
    reading what another has just verified), its JSON state seen by ``check`` before any tensor
    is read; :class:`Damaged` where it is not good."""
    state = read_state(path, checksums=checksums)
    if check:
        check(path, state)
    return Loaded(Path(path), state, *read_tensors(path))


def folder_of(run_dir: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` is (or would be) in ``run_dir``."""
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}"


def _skip(path: Path, error: Damaged, skipped: list[str]) -> None:
    log.warning("checkpoint %s is not usable: %s; trying an older one", path.name, error)
    skipped.append(f"{path.name} ({error})")


def _none_good(root: Path, skipped: list[str]) -> None:
    """Checkpoints exist (or ``latest`` says they did) and none is good: an error, since
    starting again from step 0 would throw the run away without a word."""
    if skipped or (root / LATEST).is_file():
        found = "; ".join(skipped) or f"{LATEST} names a checkpoint, but no step-* folder is left"
        raise BadInput(str(root), "", "damaged_checkpoint",
                       f"no usable checkpoint: {found}. Move {root} aside to start again from step 0, "
                       "or use a new --out")


def _log_missing_pointer(root: Path) -> None:
    pointer = root / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if not (root / name).is_dir():
            log.warning("%s names %s, which is missing: looking for the newest good checkpoint", pointer, name)


def read_state(path: Path, checksums: bool = True) -> dict:
    """A verified checkpoint's ``trainer_state.json`` (:func:`verify`'s ``checksums``)."""
    verified = verify(path, checksums=checksums)
    try:
        state = json.loads((Path(path) / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise Damaged(Path(path) / STATE, f"cannot be read: {_first_line(e)}") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise Damaged(Path(path) / STATE, "no step")
    if not verified:
        log.warning("%s has no %s (written before checksums): it is checked only by loading it", path, MANIFEST)
    return state


def read_tensors(path: Path) -> tuple[dict, dict]:
    """``(model weights, trainer state)`` of a checkpoint, on the CPU; :class:`Damaged` when a
    file does not load or a weight is not finite (which only an unverified checkpoint can be)."""
    from safetensors.torch import load_file

    path = Path(path)
    try:
        weights = load_file(path / WEIGHTS)
    except Exception as e:  # safetensors reports a bad header or a short file as its own error
        raise Damaged(path / WEIGHTS, f"cannot be read: {_first_line(e)}") from None
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise Damaged(path / WEIGHTS, f"{name} holds NaN or infinite values")
    try:
        trainer = torch.load(path / TRAINER, weights_only=True, map_location="cpu")
    except Exception as e:  # a truncated zip, a bad pickle: torch raises several kinds
        raise Damaged(path / TRAINER, f"cannot be read: {_first_line(e)}") from None
    return weights, trainer


def apply_weights(model, weights: dict, path: Path) -> None:
    """Load the weights of the checkpoint at ``path`` into ``model`` (whichever format wrote
    them: ``model.pretraining.upgrade_weights``); weights that do not fit it (another
    architecture) are a ConfigError, not a model left half at its initial values."""
    from linkbert.model.pretraining import read_config_dict

    unwrap(model).load_checkpoint_weights(weights, read_config_dict(path))


def load(path: Path, model) -> tuple[dict, dict]:
    """Verify a checkpoint and load its weights into ``model``; returns its trainer state
    (tensors, on the CPU) and its JSON state."""
    state = read_state(path)
    weights, trainer = read_tensors(path)
    apply_weights(model, weights, path)
    return trainer, state


def rng_state() -> dict:
    """This process's torch generators' states (CPU, and CUDA where present), for
    :func:`set_rng_state`. Every rank has its own: its dropout masks are its own."""
    state = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda_rng"])


def rank_rng_state(trainer: dict, rank: int, world: int) -> dict | None:
    """Rank ``rank``'s generator states from a checkpoint's trainer state: its own, saved by
    every rank (``rng_per_rank``); or, from a checkpoint of one process (or written before each
    rank saved its own), that one's for rank 0. None where the checkpoint has none for this rank
    (another number of ranks): the caller seeds it afresh."""
    states = trainer.get("rng_per_rank")
    if states is not None:
        return states[rank] if len(states) == world else None
    return trainer if rank == 0 and "torch_rng" in trainer else None


class _RecordingWriter:
    """A file for ``torch.save`` that keeps the ``OSError`` of a failed write: torch replaces
    it with a RuntimeError that says nothing of the disk."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.file.flush()


def save_torch(value, path: Path) -> None:
    """``torch.save(value, path)``; a failed write is an ``OSError`` naming ``path``."""
    with naming(path), open(path, "wb") as f:
        writer = _RecordingWriter(f)
        try:
            torch.save(value, writer)
        except RuntimeError:
            if writer.error is None:
                raise
            raise writer.error from None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
