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
  user's own ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` always wins (``docs/performance.md``).
* **The allocator.** :func:`retain_freed_memory` keeps glibc from handing large freed blocks
  back to the kernel, so per-step buffers are not zero-filled and page-faulted again.
* **Precision.** ``auto`` is bf16 where the device computes it natively (CUDA with bf16, CPUs
  with AVX512-BF16 or AMX), fp16 with a gradient scaler on older GPUs, fp32 on other CPUs.
* **Distributed.** :func:`setup_distributed` reads torchrun's environment (a process group
  even on one process with ``mode=always``), :func:`data_parallel` wraps a model in DDP, and
  every collective goes through this module, on the group's device. A failure on one rank stops
  every rank with its one-line message (:func:`together`), where a barrier would wait for ever.
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

from linkbert.errors import ConfigError, LinkbertError, describe_os_error, is_environment_error

if TYPE_CHECKING:
    import torch

SPIN_COUNT = 10_000
SAMPLES = 10  # looks at the run queue this many times, 10 ms apart, so a passing task does not count
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
USER_COMPILE_CACHE = os.environ.get("TORCHINDUCTOR_CACHE_DIR")  # the user's: torch.compile sets its default there


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


class Readback:
    """A device tensor's values on their way to the host: the copy is queued now, behind the work
    that computes them; :meth:`values` later waits for it only, not for work queued after it (a
    plain ``.tolist()`` then would wait for everything queued). On a CPU they are there at once."""

    def __init__(self, values: torch.Tensor):
        import torch

        self.ready = None
        if values.device.type == "cuda":
            self.host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            self.host.copy_(values, non_blocking=True)
            self.ready = torch.cuda.Event()
            self.ready.record()
        else:
            self.host = values

    def values(self) -> list:
        """The values, as a (nested) list: the one readback."""
        if self.ready is not None:
            self.ready.synchronize()
        return self.host.tolist()


def set_compile_cache(folder: Path | None) -> None:
    """torch.compile's cache (``TORCHINDUCTOR_CACHE_DIR``, read as it compiles) in ``folder``, for
    the rest of the process (None: left as it is). Set before ``torch.compile``, which sets its
    default there (:data:`USER_COMPILE_CACHE` keeps the user's own)."""
    if folder is not None:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(folder).absolute())


def host_to_device(tensor, device: torch.device):
    """A host tensor on ``device`` without making the host wait: to a GPU through pinned memory,
    copied asynchronously (a plain ``.to(cuda)`` of pageable memory synchronises the stream:
    found by benchmarks/gpu_step_timeline.py on an H200)."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


# -- distributed -----------------------------------------------------------------------------------

DISTRIBUTED = ("auto", "always")
# How long a collective waits for the other ranks: longer than one rank alone may work while they
# wait (rank 0 saving, a node's first rank hashing a checkpoint, ranks compiling at their own
# speed: seconds to minutes for base). A failing rank tells the others at once (fail_together):
# this bounds a rank that hangs. NCCL's own default, given to gloo (30 minutes) as well.
TIMEOUT_MINUTES = 10.0


def _cpu_device():
    import torch

    return torch.device("cpu")


@dataclass
class Dist:
    """This process's place in the job: rank, world size, local rank, its device, and its process
    group's backend (``nccl``, ``gloo``; "": none, and every collective returns at once)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=_cpu_device)
    backend: str = ""

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def group(self) -> bool:
        """Whether a process group exists: every collective runs, even on one process."""
        return bool(self.backend)


def setup_distributed(mode: str = "auto", timeout_minutes: float = TIMEOUT_MINUTES) -> Dist:
    """Read torchrun's environment; one process per GPU (NCCL) or per CPU process group (gloo).

    ``mode`` ``auto`` makes a process group where there are several processes; ``always`` makes
    one on a single process too (an in-process store where torchrun did not set ``MASTER_ADDR``),
    so one GPU runs DDP, ``no_sync`` and every collective as a multi-GPU job does.
    ``timeout_minutes`` bounds every collective (:data:`TIMEOUT_MINUTES`). An NCCL group is bound
    to its device (``device_id``: its communicator forms at once: a broken set-up fails here)."""
    import datetime

    import torch

    if mode not in DISTRIBUTED:
        raise ConfigError(f"distributed must be one of {', '.join(DISTRIBUTED)} (got {mode!r})")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = rank_device(local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    backend = ("nccl" if device.type == "cuda" else "gloo") if world > 1 or mode == "always" else ""
    if backend and not torch.distributed.is_initialized():
        options = {"backend": backend,
                   "timeout": datetime.timedelta(minutes=timeout_minutes),
                   "device_id": device if device.type == "cuda" else None}
        if world == 1 and "MASTER_ADDR" not in os.environ:  # one process, not started by torchrun
            options.update(store=torch.distributed.HashStore(), rank=0, world_size=1)
        torch.distributed.init_process_group(**options)
    return Dist(int(os.environ.get("RANK", "0")), world, local_rank, device, backend)


def rank_device(local_rank: int, local_world: int = 1) -> torch.device:
    """This process's device: CPU without CUDA; else CUDA device ``LOCAL_RANK`` of the visible
    ones, or the only one a rank sees (a launcher giving each rank its own by ``CUDA_VISIBLE_DEVICES``:
    ``LOCAL_RANK % 1``). Refused in one line where ranks would share one (NCCL cannot)."""
    import torch

    if not torch.cuda.is_available():
        return torch.device("cpu")
    count = torch.cuda.device_count()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    processes = max(local_world, local_rank + 1)
    if processes > count and (count > 1 or visible is None):
        raise ConfigError(f"{processes} processes on this node (LOCAL_RANK {local_rank}) but {count} visible CUDA "
                          f"device{'s' if count > 1 else ''} (CUDA_VISIBLE_DEVICES={visible or 'unset'}): ranks cannot "
                          f"share a GPU; start at most {count} per node (torchrun --nproc_per_node {count})")
    device = torch.device("cuda", local_rank % count)
    torch.cuda.set_device(device)
    return device


def data_parallel(model, dist: Dist):
    """``model`` in ``DistributedDataParallel`` on the group's device. Gradients are views into
    the all-reduce buckets (no copy between them, one gradient-sized buffer less). Buffers are
    not broadcast before every forward: these models' buffers (BERT's ``position_ids`` and
    ``token_type_ids``, rotary frequencies) are constants built from the config, never changed
    by training (no BatchNorm statistics); DDP still broadcasts rank 0's once, as it wraps."""
    import inspect

    from torch.nn.parallel import DistributedDataParallel as ddp

    options = {"gradient_as_bucket_view": True}
    if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters:  # torch >= 2.13
        options["forward_sync_buffers"] = False
    else:
        options["broadcast_buffers"] = False
    device_ids = [dist.device.index] if dist.device.type == "cuda" else None
    return ddp(model, device_ids=device_ids, **options)


def _on_group_device(values: torch.Tensor, dist: Dist, what: str) -> torch.Tensor:
    """``values``, refused when it is not on the process group's device: NCCL has no CPU backend
    and gloo, which has, would hide the mistake on a CPU test machine until the first GPU run."""
    if values.device != dist.device:
        raise RuntimeError(f"{what}: a tensor on {values.device} handed to a collective of a process group "
                           f"on {dist.device}; create it on the group's device")
    return values


def all_reduce_sum(values: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Sum ``values`` (on the group's device) over the ranks, in place (a no-op without a group)."""
    import torch

    _on_group_device(values, dist, "all_reduce_sum")
    if dist.group:
        torch.distributed.all_reduce(values)
    return values


def any_rank(flag: bool, dist: Dist) -> bool:
    """Whether ``flag`` holds on any rank (one all-reduce on the group's device, one readback)."""
    import torch

    if not dist.group:
        return flag
    value = torch.tensor([int(flag)], dtype=torch.int32, device=dist.device)
    torch.distributed.all_reduce(_on_group_device(value, dist, "any_rank"), op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def all_gather_objects(value, dist: Dist) -> list:
    """Every rank's ``value`` (picklable), in rank order, on every rank (torch moves the pickled
    bytes through the group's device itself: ``torch.cuda.set_device`` was called in setup)."""
    import torch

    if not dist.group:
        return [value]
    gathered = [None] * dist.world
    torch.distributed.all_gather_object(gathered, value)
    return gathered


def shutdown(dist: Dist) -> None:
    """Leave the process group, every rank together (after a barrier): destroying a gloo group
    while a peer is busy hung one CI run at exit (pytorch/pytorch#75097)."""
    import torch

    if dist.group and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


# -- failing together ------------------------------------------------------------------------------

class RankFailed(LinkbertError):
    """Another rank failed: its one-line message, exactly as that rank reports its own error."""


def describe_failure(error: BaseException) -> str:
    """``error`` in the one line the command line prints for it (``linkbert.cli``): a user's
    mistake and a machine's fault as they are printed, anything else by its type and first line."""
    if isinstance(error, LinkbertError):
        return str(error)
    if is_environment_error(error):
        return describe_os_error(error)
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def fail_together(error: BaseException | None, dist: Dist) -> None:
    """Every rank says whether it failed (``error``; one all-reduce); if any did, every rank
    raises (:func:`raise_failure`). Where a barrier would wait for a rank that will never come,
    this tells the others at once."""
    if any_rank(error is not None, dist):
        raise_failure(error, dist)


def raise_failure(error: BaseException | None, dist: Dist) -> None:
    """Called by every rank once all know that some rank failed: a rank that failed raises its
    own ``error`` (a bug keeps its traceback), the others :class:`RankFailed` with the message of
    the first rank that failed (one gather of the messages)."""
    messages = all_gather_objects(None if error is None else describe_failure(error), dist)
    if error is not None:
        raise error
    failed = next(rank for rank, message in enumerate(messages) if message is not None)
    import logging

    logging.getLogger("linkbert.runtime").warning("rank %d stops: rank %d failed", dist.rank, failed)
    raise RankFailed(messages[failed])


@contextlib.contextmanager
def together(dist: Dist):
    """Run a block that no collective is inside (rank 0 writing a file, every rank opening its
    input) on every rank, then :func:`fail_together`: if it raised on any rank, it raises on
    every rank."""
    try:
        yield
    except Exception as error:  # raised again, on this rank unchanged, once all know
        fail_together(error, dist)
        raise
    fail_together(None, dist)


def ends_here() -> bool:
    """Whether :func:`end_process` ends the process: under torchrun (several ranks), or where a
    process group is still up (``distributed=always``, stopped by an error)."""
    torch = sys.modules.get("torch")
    group_left = torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or group_left


def end_process(code: int) -> None:
    """End the process here where :func:`ends_here`, its output flushed, without Python's
    teardown; else return. Freeing a gloo process group (the last reference is DDP's reducer, as
    the run is freed) joins gloo's worker thread with the GIL held, while that thread may need the
    GIL to free a finished collective's tensors: CI saw a rank stuck for good in
    ``~ProcessGroupGloo``. The caller keeps its run referenced until this call."""
    import logging

    if ends_here():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def unwrap(model):
    """The model inside ``torch.compile`` and ``DistributedDataParallel`` wrappers."""
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)      # DistributedDataParallel
