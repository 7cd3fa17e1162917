"""The Python half of ``benchmarks/gpu_check.sh``: its ``env`` and ``runs`` sections and the
synthetic corpus they share. The thresholds and the summary are ``gpu_check_summary.py``'s.

    python benchmarks/gpu_check.py env                     # one JSON line: the device, its peak, the libraries
    python benchmarks/gpu_check.py corpus WORK BUDGET [TOKENIZER]   # a prepared synthetic corpus; prints its folder
    python benchmarks/gpu_check.py runs WORK DATA CONFIG [key=value ...]   # kill and resume; one rank under NCCL

**runs**: three ``linkbert pretrain`` processes of a shipped config (``configs/pretrain/tiny.yaml``
on a GPU: compiled, flattened pairs, ``max_predictions: auto``, DataLoader workers), logging every
step, sharing one inductor cache (``TORCHINDUCTOR_CACHE_DIR``), so that only the first and the
DDP-wrapped one compile from nothing:

* ``killed``: SIGKILL once a checkpoint is written and at least two steps past it are logged;
* ``resumed``: the same command again: it resumes from the last checkpoint the killed process
  completed and runs to the end. The steps the killed process logged past its checkpoint run
  again from bit-identical weights, optimiser state, data order and random streams, so the first
  of them must give the same loss (``first_step_rel_diff``; later ones drift by the
  nondeterministic order of CUDA's atomic adds in some backward kernels: ``max_rel_diff``);
* ``nccl``: ``distributed=always``: a real process group on one process (NCCL on a GPU, gloo on a
  CPU), DDP, ``no_sync`` over two micro-batches a step and ``torch.compile`` under DDP; its logged
  steps against the killed process's own (the plain run, uninterrupted until the kill): the
  first step's loss (``first_step_rel_diff``: the same weights and batch; DDP's split of the
  compiled graph only changes rounding) and the largest difference over the compared steps.

A low learning rate (``lr=2e-4``, 2 warm-up steps) keeps the runs' rounding from growing into
chaos over the compared steps; what is compared is the path, not the recipe. The last line
printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def env() -> dict:
    """The device, its datasheet peak, the libraries the check's paths need."""
    import platform

    import torch
    import transformers

    from throughput_models import liger_available
    from training_flops import datasheet_peak

    from linkbert.model.attention import has_varlen_kernel
    from linkbert.runtime import cpu_has_fast_bf16

    cuda = torch.cuda.is_available()
    result = {"cuda": cuda, "torch": torch.__version__, "cuda_version": torch.version.cuda,
              "transformers": transformers.__version__, "python": platform.python_version(),
              "cores": os.cpu_count(), "varlen_kernel": has_varlen_kernel(),
              "liger": liger_available() or "imports"}
    if cuda:
        name = torch.cuda.get_device_name(0)
        peak, source = datasheet_peak(name)
        result.update(device=name, capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                      memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1),
                      bf16=torch.cuda.is_bf16_supported(), peak_tflops=peak, peak_source=source)
    else:
        result.update(device="cpu", cpu_fast_bf16=cpu_has_fast_bf16())
    return result


def corpus(work: Path, budget: int, tokenizer: str | None = None) -> Path:
    """A prepared synthetic corpus of segments of at most ``budget`` tokens (the timeline's and
    the runs'); ``tokenizer`` by default MiniLM's installed vocabulary, else one trained on it."""
    from device_step_profile import synthetic_corpus

    if not tokenizer:
        from linkbert.experiments.grid import default_minilm

        tokenizer = str(default_minilm() or "train")
    folder = work / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    return synthetic_corpus(folder, tokenizer, budget)


def train_lines(path: Path) -> list[dict]:
    """The ``train`` lines of a run's metrics.jsonl, in the order written."""
    if not path.exists():
        return []
    return [line for line in map(json.loads, path.read_text().splitlines()) if line.get("kind") == "train"]


def latest_step(run: Path) -> int:
    """The step of the run's last complete checkpoint (0: none)."""
    pointer = run / "checkpoints" / "latest"
    return int(pointer.read_text().strip().split("-")[-1]) if pointer.exists() else 0


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def compare_steps(reference: dict[int, dict], other: dict[int, dict], steps: list[int]) -> dict:
    """Loss differences of ``other`` against ``reference`` at ``steps`` (both logged there)."""
    if not steps:
        return {"steps": [], "first_step_rel_diff": None, "max_rel_diff": None}
    diffs = {s: max(relative(other[s][k], reference[s][k]) for k in ("loss", "mlm_loss")) for s in steps}
    first = steps[0]
    return {"steps": steps, "first_step": first, "first_step_rel_diff": diffs[first],
            "first_step_loss": [reference[first]["loss"], other[first]["loss"]],
            "first_step_bit_equal": reference[first]["loss"] == other[first]["loss"],
            "max_rel_diff": max(diffs.values()), "rel_diff_by_step": {str(s): diffs[s] for s in steps}}


def runs(work: Path, data: str, config: str, overrides: list[str], poll_s: float = 0.01) -> dict:
    """The killed, resumed and nccl runs (see the module docstring); their figures."""
    settings = ["log_every=1", "progress=false", "tracker=none", "lr=2e-4", "warmup_steps=2", "keep_checkpoints=2",
                *overrides]
    env_vars = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(work / "inductor-cache"), "PYTHONUNBUFFERED": "1"}
    cli = [sys.executable, "-m", "linkbert.cli", "pretrain", "--config", config, "--data", data]
    result, logs = {}, work / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def launch(name: str, out: str, extra: list[str]) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "w")
        return subprocess.Popen(cli + ["--out", str(work / out), *settings, *extra], stdout=log, stderr=log, env=env_vars)

    started = time.time()
    killed_run = work / "killed"
    process = launch("killed", "killed", [])
    while process.poll() is None:  # kill once a checkpoint is written and two steps past it are logged
        saved, logged = latest_step(killed_run), [line["step"] for line in train_lines(killed_run / "metrics.jsonl")]
        if saved and logged and max(logged) >= saved + 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(poll_s)
    process.wait()
    result["killed"] = {"returncode": process.returncode, "seconds": round(time.time() - started, 1),
                        "checkpoint": latest_step(killed_run)}
    logged_before = train_lines(killed_run / "metrics.jsonl")
    before = {line["step"]: line for line in logged_before}
    started = time.time()
    resumed = launch("resumed", "killed", [])
    resumed.wait()  # it appends to the same metrics.jsonl
    after = {line["step"]: line for line in train_lines(killed_run / "metrics.jsonl")[len(logged_before):]}
    summary = json.loads((killed_run / "summary.json").read_text()) if (killed_run / "summary.json").exists() else {}
    checkpoint = result["killed"]["checkpoint"]
    result["resume"] = {"returncode": resumed.returncode, "seconds": round(time.time() - started, 1),
                        "from_step": checkpoint, "steps_before_kill": max(before, default=0),
                        "ended_at_step": summary.get("step"), "eval": summary.get("eval", {}).get("mlm_loss"),
                        **compare_steps(before, after, sorted(s for s in before if s > checkpoint and s in after))}
    started = time.time()
    nccl = launch("nccl", "nccl", ["distributed=always"])
    nccl.wait()
    group = next((line.split("process group: ", 1)[1].split(",")[0] for line in
                  (logs / "nccl.log").read_text().splitlines() if "process group: " in line), None)
    distributed = {line["step"]: line for line in train_lines(work / "nccl" / "metrics.jsonl")}
    summary = json.loads((work / "nccl" / "summary.json").read_text()) if (work / "nccl" / "summary.json").exists() else {}
    result["nccl"] = {"returncode": nccl.returncode, "seconds": round(time.time() - started, 1), "group": group,
                      "ended_at_step": summary.get("step"), "eval": summary.get("eval", {}).get("mlm_loss"),
                      **compare_steps(before, distributed, sorted(s for s in before if s in distributed))}
    for name in ("killed", "resumed", "nccl"):  # what went wrong, if anything did, in the section's file
        tail = (logs / f"{name}.log").read_text().splitlines()[-3:]
        result[name if name != "resumed" else "resume"]["log_tail"] = tail
    return result


def main(argv: list[str]) -> int:
    command, *rest = argv or ["env"]
    if command == "env":
        print(json.dumps(env()))
    elif command == "corpus":
        work, budget, *tokenizer = rest
        print(corpus(Path(work), int(budget), tokenizer[0] if tokenizer else None))
    elif command == "runs":
        work, data, config, *overrides = rest
        print(json.dumps(runs(Path(work), data, config, overrides)))
    else:
        raise SystemExit(f"unknown command {command!r}: env, corpus or runs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
