"""Resuming a pretraining run: which checkpoint every rank continues from, and each rank's own
random streams.

The first rank of each node (``LOCAL_RANK`` 0) finds the newest checkpoint that verifies and
loads (``checkpoint.load_newest``: every file hashed against its manifest); the ranks compare what
their nodes found, and the other ranks read that checkpoint with its files' sizes checked, not
hashed again: a 64-rank job hashes a 1.3 GB checkpoint once per node, not 64 times. A failure on
any rank (a damaged checkpoint, a refused resume, a file that cannot be read) stops every rank
with its one-line message; nodes that found different checkpoints (no shared storage) stop
naming both. What may and may not change on a resume is ``run_folder.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from linkbert import checkpoint, runtime
from linkbert.errors import ConfigError

log = logging.getLogger("linkbert.pretrain")


def agreed_checkpoint(out: Path, dist: runtime.Dist,
                      check: Callable[[Path, dict], None]) -> checkpoint.Loaded | None:
    """The newest good checkpoint of the run folder ``out``, the same on every rank (None: the
    run starts afresh); ``check(path, state)`` refuses one of another run before its tensors are
    read."""
    verifies = dist.local_rank == 0
    found = None
    with runtime.together(dist):
        if verifies:
            found = checkpoint.load_newest(out, check=check)
    verdicts = runtime.all_gather_objects((str(out), (found.path.name if found else "") if verifies else None), dist)
    names = {name for _, name in verdicts if name is not None}
    if len(names) > 1:
        found_by = ", ".join(f"{folder}: {name or 'none'} (rank {rank})"
                             for rank, (folder, name) in enumerate(verdicts) if name is not None)
        raise ConfigError(f"the nodes found different checkpoints ({found_by}): every node must read the same run "
                          "folder (shared storage), or copy it to each node first")
    name = names.pop() if names else ""
    with runtime.together(dist):
        if not verifies and name:
            found = checkpoint.read(Path(out) / checkpoint.CHECKPOINTS / name, check=check, checksums=False)
    return found


def restore_rng(trainer: dict, dist: runtime.Dist, *, seed: int, step: int) -> None:
    """This rank's own generator states, as saved; a checkpoint of another number of ranks has
    none for it: it is seeded from (seed, rank, step), so its dropout differs from the other
    ranks' but the run is not exact (said in the log)."""
    state = checkpoint.rank_rng_state(trainer, dist.rank, dist.world)
    if state is not None:
        checkpoint.set_rng_state(state)
        return
    torch.manual_seed(hash((seed, dist.rank, step)) & 0x7FFFFFFF)
    log.warning("rank %d: the checkpoint holds no random-number state for it (%d ranks now): its dropout is "
                "reseeded, so this resume is not bit-exact", dist.rank, dist.world)
