"""Imported first by the DataLoader workers' fork server as it starts (``data.worker_context``
preloads it): the server ends with the training process that started it, however that ends
(kill -9 included), and ignores the stop signals the trainer handles (``linkbert.lifetime``).

Without it a killed trainer leaves its fork server, workers and resource tracker alive for good:
each worker holds the server's "alive" pipe open (a forked child keeps it, to start processes of
its own), so the server never sees the trainer go; and each worker's DataLoader watchdog watches
its own parent, the server. Imported anywhere but in a fork server, this module does nothing.
"""

from __future__ import annotations

import sys

from linkbert import lifetime


def _in_fork_server() -> bool:
    """Whether ``multiprocessing.forkserver.main`` is importing this module (its preload)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "main" and frame.f_globals.get("__name__") == "multiprocessing.forkserver":
            return True
        frame = frame.f_back
    return False


if _in_fork_server():
    lifetime.die_with_parent()
    lifetime.ignore_stop_signals()
