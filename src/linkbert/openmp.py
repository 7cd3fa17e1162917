"""How PyTorch's OpenMP threads wait between parallel regions; set before torch is imported.

A training step of a small model is thousands of short parallel operations. Between them the
threads of libgomp (PyTorch's OpenMP on Linux) either spin or sleep, and the choice matters
both ways, measured on a 2-core machine with a tiny model (bf16, batch 32 x 128):

    waiting                          machine idle    one other busy process
    passive (sleep at once)          0.134 s/step    0.19 s/step
    spin 10,000 times, then sleep    0.104 s/step    0.27 s/step
    spin 100,000 times               0.100 s/step    0.87 s/step
    libgomp's default (300,000)      0.100 s/step    0.36 s/step

Waking a sleeping thread costs tens of microseconds per operation, which an idle machine need
not pay; but a thread that spins while the other cores are taken steals the time slice of the
thread it waits for. So :func:`configure_waiting` looks at the machine as the process starts: if
no other task is running it lets threads spin briefly (``GOMP_SPINCOUNT=10000``, tens of
microseconds), else they wait passively (``OMP_WAIT_POLICY=PASSIVE``). A user's own
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` always wins. libgomp reads these once, when torch
loads it, so a machine that gets busy later keeps the choice made at start.

Example::

    >>> configure_waiting()            # in a command's entry point, before ``import torch``
    'spin briefly (GOMP_SPINCOUNT=10000): no other task was running'
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, MutableMapping

SPIN_COUNT = 10_000
SAMPLES = 10  # looks at the run queue this many times, 10 ms apart, so a passing task does not count


def configure_waiting(environ: MutableMapping[str, str] | None = None,
                      other_running: Callable[[], int | None] | None = None) -> str:
    """Choose libgomp's waiting for this process (see the module docstring); returns why.

    ``environ`` defaults to ``os.environ``; ``other_running`` (for tests) returns how many
    other tasks are running, or None where that cannot be known (then: passive, the safe side).
    """
    environ = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return describe(environ) + ": set in the environment"
    others = (other_running or _other_running)()
    if others == 0:
        environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
        return describe(environ) + ": no other task was running"
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    reason = "cannot see the run queue" if others is None else f"{others} other task(s) running"
    return describe(environ) + f": {reason}"


def describe(environ: MutableMapping[str, str] | None = None) -> str:
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
