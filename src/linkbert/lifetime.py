"""How a process ends, beyond finishing its work: stop requests and the processes it started.

* **Stop requests.** Clusters and preemptible machines warn a job before they end it: SIGTERM
  (SLURM, Kubernetes, spot instances, torchrun passing on its own), SIGUSR1 (SLURM's
  ``--signal``, sent ahead of the end). :class:`StopRequests` records them instead of letting them
  end the process, so a training loop can finish its step, save it and exit.
* **Helper processes.** DataLoader workers and their fork server must not outlive the trainer
  that started them, however it ends (kill -9 included): :func:`die_with_parent`. They ignore
  the stop signals (:func:`ignore_stop_signals`), which a scheduler may send to every process of
  the job, since the trainer that handles them still needs its workers for the step it saves.
"""

from __future__ import annotations

import sys
from typing import Self

STOP_SIGNALS = ("SIGTERM", "SIGUSR1")  # what clusters send before they stop a job (SIGUSR1: ahead of time)


class StopRequests:
    """While installed (``with StopRequests() as stops``), SIGTERM and SIGUSR1 are recorded
    instead of ending the process: ``stops.received`` is the first one's name (None before); the
    caller decides when to stop. The previous handlers come back on leaving."""

    def __init__(self):
        self.received: str | None = None
        self._previous: dict = {}

    def _record(self, number, frame) -> None:
        import signal

        if self.received is None:
            self.received = signal.Signals(number).name

    def __enter__(self) -> Self:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():  # Python runs handlers there only
            for name in STOP_SIGNALS:
                number = getattr(signal, name)
                self._previous[number] = signal.signal(number, self._record)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}


def ignore_stop_signals() -> None:
    """A helper process (a DataLoader worker, their fork server) ignores the stop signals: a
    scheduler may send them to every process of the job, and the trainer, which handles them,
    still needs its workers to finish the step it saves."""
    import signal

    for name in STOP_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_IGN)


def die_with_parent() -> bool:
    """Have the kernel kill this process (SIGKILL) when its parent ends, however the parent ends,
    kill -9 included (Linux ``prctl(PR_SET_PDEATHSIG)``; the parent is the thread that started
    this process). Returns False where the platform has no such thing. A parent that ended
    before the call is not noticed: the caller checks ``os.getppid()`` where that can happen."""
    import ctypes
    import ctypes.util
    import signal

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return False
    pr_set_pdeathsig = 1  # <sys/prctl.h>
    return libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0) == 0
