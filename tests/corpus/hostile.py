"""Helpers for the readers' hostile-input tests: time limits, memory peaks, every record's outcome."""

from __future__ import annotations

import contextlib
import signal
import tracemalloc
from typing import Iterator

from linkbert.errors import BadInput


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail, rather than hang the test run, if the block takes longer than ``seconds``
    (a reader opening a FIFO blocks forever)."""

    def expired(*_):
        raise TimeoutError(f"took longer than {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def peak_bytes(function) -> tuple[object, int]:
    """``function()``'s result and the most memory Python allocated while it ran."""
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def outcomes(reader) -> list:
    """Every record's outcome, as ``prepare --skip-bad`` sees it: the parsed value, or the
    ``BadInput`` that ``parse()`` raised (any other exception fails the test)."""
    results = []
    for record in reader.records():
        try:
            results.append(reader.parse(record))
        except BadInput as e:
            results.append(e)
    return results


def bad(results: list) -> list[BadInput]:
    return [r for r in results if isinstance(r, BadInput)]


def small_reader(fmt: str, path, limit: int = 1000):
    """A reader as ``open_reader`` makes it, with a small ``max_record_bytes``."""
    from linkbert.corpus import open_reader

    return open_reader(fmt, str(path), max_record_bytes=limit)
