"""The process and its devices: OpenMP waiting, the allocator, device, precision, distributed setup.

Both pretraining and fine-tuning set up their process here, and ``linkbert.cli.main`` calls
:func:`configure_process` first, before any command imports torch. That is also why torch is
imported inside the functions of this module: libgomp reads its waiting policy from the
environment once, when torch loads it.

* **OpenMP waiting.** A small model's CPU step is about a thousand short parallel operations.
  Between them libgomp's threads either spin or sleep: waking a sleeping thread costs tens of
  microseconds per operation, which an idle machine need not pay, but a thread that spins while
  the other cores are taken steals the time slice of the thread it waits for.
  :func:`configure_waiting` looks at the run queue as the process starts: no other task
  running, threads spin briefly (``GOMP_SPINCOUNT=10000``); otherwise they wait passively. A
  user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` always wins. (Measurements:
  ``docs/performance.md``.)
* **The allocator.** :func:`retain_freed_memory` keeps glibc from handing large freed blocks
  back to the kernel, so per-step buffers are not zero-filled and page-faulted again.
* **Precision.** ``auto`` is bf16 where the device computes it natively (CUDA with bf16, CPUs
  with AVX512-BF16 or AMX), fp16 with a gradient scaler on older GPUs, fp32 on other CPUs.
* **Distributed.** :func:`setup_distributed` reads torchrun's environment; collectives go
  through :func:`all_reduce_sum`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from linkbert.errors import ConfigError

if TYPE_CHECKING:
    import torch

SPIN_COUNT = 10_000
SAMPLES = 10  # looks at the run queue this many times, 10 ms apart, so a passing task does not count
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# -- the process -----------------------------------------------------------------------------------

def configure_process() -> str:
    """What every command's process needs before torch loads; returns the OpenMP choice, in words."""
    return configure_waiting()


def configure_waiting(environ: MutableMapping[str, str] | None = None,
                      other_running: Callable[[], int | None] | None = None) -> str:
    """Choose libgomp's waiting for this process (see the module docstring); returns why.

    ``environ`` defaults to ``os.environ``; ``other_running`` (for tests) returns how many
    other tasks are running, or None where that cannot be known (then: passive, the safe side).

    Example::

        >>> configure_waiting()            # before ``import torch``
        'spin briefly (GOMP_SPINCOUNT=10000): no other task was running'
    """
    environ = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return describe_waiting(environ) + ": set in the environment"
    others = (other_running or _other_running)()
    if others == 0:
        environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
        return describe_waiting(environ) + ": no other task was running"
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    reason = "cannot see the run queue" if others is None else f"{others} other task(s) running"
    return describe_waiting(environ) + f": {reason}"


def describe_waiting(environ: MutableMapping[str, str] | None = None) -> str:
    """The waiting the environment asks for, in words."""
    environ = os.environ if environ is None else environ
    if "GOMP_SPINCOUNT" in environ:
        return f"spin briefly (GOMP_SPINCOUNT={environ['GOMP_SPINCOUNT']})"
    if "OMP_WAIT_POLICY" in environ:
        return f"OMP_WAIT_POLICY={environ['OMP_WAIT_POLICY']}"
    return "the OpenMP runtime's default"


def _other_running() -> int | None:
    """Median over a few looks of the tasks running besides this one (Linux ``/proc/loadavg``)."""
    counts = []
    for i in range(SAMPLES):
        try:
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])  # "0.52 0.58 0.59 2/81 12345"
        except (OSError, IndexError, ValueError):
            return None
        counts.append(running - 1)  # this process is running while it reads
        if i + 1 < SAMPLES:
            time.sleep(0.01)
    return sorted(counts)[len(counts) // 2]


def retain_freed_memory(retain: bool = True) -> bool:
    """Ask glibc's malloc to keep freed memory instead of returning it to the kernel.

    PyTorch's CPU allocator has no cache: every step allocates and frees the same large buffers
    (the tied word embedding's fp32 gradient and its bf16 copy, the MLM logits). Above 128 KB
    glibc serves them with fresh ``mmap``s, so each step zero-fills and page-faults them again.
    Raising the mmap and trim thresholds makes freed blocks reusable; the cost is that the
    process keeps its peak heap. ``retain=False`` puts back glibc's initial values (128 KB;
    glibc's own dynamic raising of the mmap threshold stays off), for benchmarks. Returns False
    where malloc is not glibc's.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mmap_threshold, trim_threshold = (1 << 30, (1 << 31) - 1) if retain else (128 * 1024, 128 * 1024)
    return bool(mallopt(m_mmap_threshold, mmap_threshold) and mallopt(m_trim_threshold, trim_threshold))


@contextlib.contextmanager
def cpu_threads(n: int):
    """Use ``n`` torch CPU threads inside the block (``n`` = 0: leave the setting alone)."""
    import torch

    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def set_seed(seed: int) -> None:
    """Seed Python's, numpy's and torch's (every device's) global generators."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# -- device and precision --------------------------------------------------------------------------

def pick_device(name: str = "auto") -> torch.device:
    """``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N (got {name!r})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA device is available")
    return device


def cpu_has_fast_bf16() -> bool:
    """bf16 pays off on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere it is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``precision`` with ``auto`` decided for ``device``: fp32, bf16 or fp16."""
    import torch

    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return precision


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (``auto`` resolved) on ``device``; None: fp32."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[resolve_precision(precision, device)]


def autocast(dtype: torch.dtype | None, device: torch.device):
    """The mixed-precision context of the forward pass (disabled for fp32)."""
    import torch

    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(dtype: torch.dtype | None, device: torch.device):
    """A gradient scaler for fp16 (whose small gradients underflow unscaled), else None."""
    import torch

    return torch.amp.GradScaler(device.type) if dtype == torch.float16 else None


def host_to_device(tensor, device: torch.device):
    """A host tensor on ``device`` without making the host wait: to a GPU through pinned memory,
    copied asynchronously (a plain ``.to(cuda)`` of pageable memory synchronises the stream:
    found by benchmarks/gpu_step_timeline.py on an H200)."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


# -- distributed -----------------------------------------------------------------------------------

def _cpu_device():
    import torch

    return torch.device("cpu")


@dataclass
class Dist:
    """This process's place in the job: rank, world size, local rank and its device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=_cpu_device)

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Read torchrun's environment; one process per GPU (NCCL) or per CPU process group (gloo)."""
    import torch

    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
    return Dist(int(os.environ.get("RANK", "0")), world, local_rank, device)


def _on_group_device(values: torch.Tensor, dist: Dist, what: str) -> torch.Tensor:
    """``values``, refused when it is not on the process group's device: NCCL has no CPU backend
    ("No backend type associated with device type cpu") and gloo, which has, would hide the
    mistake on a CPU test machine until the first GPU run."""
    if values.device != dist.device:
        raise RuntimeError(f"{what}: a tensor on {values.device} handed to a collective of a process group "
                           f"on {dist.device}; create it on the group's device")
    return values


def all_reduce_sum(values: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Sum ``values`` (on the group's device) over the ranks, in place (a no-op on one process)."""
    import torch

    _on_group_device(values, dist, "all_reduce_sum")
    if dist.world > 1:
        torch.distributed.all_reduce(values)
    return values


def any_rank(flag: bool, dist: Dist) -> bool:
    """Whether ``flag`` holds on any rank (one all-reduce on the group's device, one readback)."""
    import torch

    if dist.world == 1:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32, device=dist.device)
    torch.distributed.all_reduce(_on_group_device(value, dist, "any_rank"), op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def all_gather_objects(value, dist: Dist) -> list:
    """Every rank's ``value`` (picklable), in rank order, on every rank (torch moves the pickled
    bytes through the group's device itself: ``torch.cuda.set_device`` was called in setup)."""
    import torch

    if dist.world == 1:
        return [value]
    gathered = [None] * dist.world
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def min_max(value: int, dist: Dist) -> tuple[int, int]:
    """The smallest and the largest of every rank's integer ``value`` (one all-reduce on the
    process group's device)."""
    import torch

    if dist.world == 1:
        return value, value
    both = torch.tensor([value, -value], dtype=torch.int64, device=dist.device)
    torch.distributed.all_reduce(_on_group_device(both, dist, "min_max"), op=torch.distributed.ReduceOp.MAX)
    high, negative_low = both.tolist()
    return -negative_low, high


def barrier(dist: Dist) -> None:
    """Every rank waits for the others (a no-op on one process)."""
    import torch

    if dist.world > 1:
        torch.distributed.barrier()


def shutdown(dist: Dist) -> None:
    """Leave the process group, every rank together: destroying a gloo group while a peer is
    still busy hung one CI run at exit (pytorch/pytorch#75097)."""
    import torch

    if dist.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def end_process(code: int) -> None:
    """Under torchrun (several ranks): end the process here, its output flushed, without Python's
    teardown; on one process: return. Freeing a gloo process group (the last reference is
    DistributedDataParallel's reducer, when the run is freed) joins gloo's worker thread with the
    GIL held, while that thread may need the GIL to free a finished collective's tensors: CI saw
    a rank stuck for good in ``~ProcessGroupGloo``, its ``pt_gloo_runloop`` thread waiting for
    the GIL in ``~AsyncAllgatherWork``. The caller keeps its run referenced until this call."""
    import logging

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def unwrap(model):
    """The model inside ``torch.compile`` and ``DistributedDataParallel`` wrappers."""
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)      # DistributedDataParallel
