"""Which precisions a benchmark times: ``precision: auto`` by default (``runtime.resolve_precision``:
bf16 on a GPU with it and on CPUs with native bf16, AVX512-BF16 or AMX; fp32 on other CPUs,
whose emulated bf16 matmuls run at about 1 GFLOP/s against 87 for fp32 on this project's AVX2
machine). A precision asked for by name is timed; one that ``auto`` leaves out is named with the
reason, printed and kept in the JSON (``skipped``), never timed into a misleading figure.
"""

from __future__ import annotations

import torch

from linkbert import runtime

KNOWN = ("fp32", "bf16", "fp16")


def choose_precisions(requested: str, device: str) -> dict:
    """``{"requested", "timed": [...], "skipped": {precision: why}}`` for a comma-separated list
    of ``auto``, ``fp32``, ``bf16`` and ``fp16`` on ``device`` (``cpu`` or ``cuda``)."""
    names = [name.strip() for name in requested.split(",") if name.strip()]
    unknown = [name for name in names if name not in ("auto", *KNOWN)]
    if unknown or not names:
        raise SystemExit(f"--precisions: {', '.join(unknown) or 'nothing given'}: choose from auto, {', '.join(KNOWN)}")
    timed = []
    for name in names:
        chosen = runtime.resolve_precision("auto", torch.device(device)) if name == "auto" else name
        if chosen == "fp16" and device != "cuda":
            raise SystemExit("--precisions fp16 needs CUDA; use fp32 or bf16 on a CPU")
        if chosen not in timed:
            timed.append(chosen)
    skipped = {}
    if "auto" in names:
        for other in KNOWN:
            if other not in timed and (other != "fp16" or device == "cuda"):
                skipped[other] = _why_not(other, device)
    return {"requested": requested, "timed": timed, "skipped": skipped}


def _why_not(precision: str, device: str) -> str:
    if device == "cuda":
        return f"auto takes {runtime.resolve_precision('auto', torch.device(device))} on this GPU; ask for " \
               f"{precision} by name to time it"
    if precision == "bf16":
        return ("this CPU has no native bf16 (AVX512-BF16 or AMX): its bf16 matmuls are emulated, about 100x "
                "slower than fp32, so a bf16 figure would time the emulation; ask for bf16 by name to time it anyway")
    return f"auto takes bf16 on this CPU (native bf16); ask for {precision} by name to time it"


def describe(choice: dict) -> str:
    """One line for the output: what is timed, and why anything is not."""
    line = f"precisions: {', '.join(choice['timed'])} (asked: {choice['requested']})"
    for precision, why in choice["skipped"].items():
        line += f"; {precision} skipped: {why}"
    return line
