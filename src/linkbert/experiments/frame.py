"""The frame of a grid command (``linkbert experiment graph``, ``linkbert experiment ablation``):
the settings both have (``device_setting``, ``keep_models_setting``), comma lists of choices
(``csv_choices``), progress lines (``say``), an evaluation's seconds (``timed``), the card a grid
ran on (``device_name``) and ``command_main`` around the command's body.

A user's mistake is a ``LinkbertError`` raised where it is found; the CLI prints it as one line.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

from linkbert.errors import ConfigError
from linkbert.settings import setting


def device_setting():
    """The ``device`` field of a grid command's settings."""
    return setting("auto", "auto (CUDA when available), cpu, cuda")


def keep_models_setting():
    """The ``keep_models`` field of a grid command's settings."""
    return setting(False, "keep each cell's checkpoint and exported model")


def say(grid: str, message: str) -> None:
    print(f"[{grid} {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def timed(seconds: dict | None, name: str):
    """Adds the wall-clock seconds of the block to ``seconds[name]`` (nothing when ``seconds`` is None)."""
    started = time.time()
    yield
    if seconds is not None:
        seconds[name] = round(seconds.get(name, 0.0) + time.time() - started, 2)


def seconds_breakdown(seconds: dict | None) -> str:
    """`` (finetuned 1.3 s, link prediction 0.2 s)`` of ``timed``'s ``{name: seconds}``; "" when empty."""
    if not seconds:
        return ""
    return " (" + ", ".join(f"{name.replace('_', ' ')} {s:.1f} s" for name, s in seconds.items()) + ")"


def csv_choices(text: str, choices, what: str) -> list[str]:
    """``"a,b"`` -> ``["a", "b"]``, every item one of ``choices``; a ConfigError names the others."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in choices]
    if unknown or not items:
        raise ConfigError(f"unknown {what}: {', '.join(unknown) or '(none)'}; choose from {', '.join(choices)}")
    return list(dict.fromkeys(items))


def quiet_transformers() -> None:
    """Every cell loads models with fresh heads: transformers' reports of that are expected, not news."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def command_main(body) -> int:
    """A grid command's frame around ``body()``: warnings and worse on stderr, transformers
    quiet. It catches nothing: a user's mistake is already a ``LinkbertError``, a bug a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    quiet_transformers()
    body()
    return 0


def device_name(device: str) -> str:
    """The card a grid ran on (``NVIDIA H100 80GB HBM3``), or the CPU's core count: for results.md."""
    import os

    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({os.cpu_count()} cores)"
