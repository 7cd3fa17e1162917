"""Pretraining step time of the working tree's model against another revision's, in one process.

    python benchmarks/compare_revisions.py --rev 3f5baa8                       # tiny and mini, precision auto
    python benchmarks/compare_revisions.py --rev HEAD~3 --configs mini --data prepared/wikispeedia

The other revision's ``src/linkbert`` package is taken with ``git archive`` and imported under
another name (``linkbert_at_revision``, its own imports rewritten to match), so that a revision
whose model spans several modules is compared whole. Both models start from the same seed and
train on the same batches (forward, backward, AdamW), alternating rounds, so that a busy or
noisy machine slows both alike. Reported per configuration: each one's median seconds per step
and the ratio (``speedup`` > 1: the working tree is faster). The last line printed is one JSON
object. Precision follows ``precision: auto`` (bf16 on a CPU with native bf16, else fp32; a
precision left out is named with the reason: ``benchmark_precisions.py``).

Only the model is swapped: the batches, the optimizer and the allocator setting are this tree's
(``pretrain_throughput.py``'s ``Trainer``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from linkbert.runtime import configure_waiting  # imports no torch

OPENMP_WAITING = configure_waiting()  # before torch loads libgomp, as `linkbert pretrain` does

import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_precisions import choose_precisions, describe  # noqa: E402
from pretrain_throughput import Trainer  # noqa: E402
from throughput_batches import CONFIGS, config_batches  # noqa: E402

from linkbert.runtime import retain_freed_memory  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "src/linkbert"
ALIAS = "linkbert_at_revision"
# where a revision keeps its model: the model package, or the single modeling.py of early revisions
MODEL_MODULES = ("model", "modeling")


def build_model(package: str, preset: str, vocab: int):
    """The pretraining model of ``preset`` as the package ``package`` (``linkbert`` or the
    revision's alias) builds it for a CPU run: ``model.loading.init_model`` with the bert-cpu
    backend since both backends share one model (``model/pretraining.py``), else the revision's
    ``LinkBertForPreTraining``."""
    if importlib.util.find_spec(f"{package}.model.pretraining") is not None:
        loading = importlib.import_module(f"{package}.model.loading")
        return loading.init_model(preset, vocab_size=vocab, num_relations=3, backend="bert-cpu")
    for name in MODEL_MODULES:
        if importlib.util.find_spec(f"{package}.{name}") is not None:
            module = importlib.import_module(f"{package}.{name}")
            return module.LinkBertForPreTraining(module.preset_config(preset, vocab, num_relations=3))
    raise SystemExit(f"{package}: no model module ({', '.join(MODEL_MODULES)})")


def own_loss(model, batch: dict):
    return model(**batch).loss


def load_revision(rev: str, folder: Path) -> str:
    """``src/linkbert`` as it was at ``rev``, importable as ``linkbert_at_revision``; its name."""
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", rev, PACKAGE], cwd=ROOT, check=True,
                                 capture_output=True).stdout
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"git archive {rev} {PACKAGE} failed: {error.stderr.decode().strip()}") from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    package = folder / ALIAS
    (folder / PACKAGE).rename(package)
    for source in package.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        source.write_text(re.sub(r"^(\s*(?:from|import)\s+)linkbert\b", rf"\1{ALIAS}", text, flags=re.MULTILINE),
                          encoding="utf-8")
    sys.path.insert(0, str(folder))
    return ALIAS


def compare(name: str, precision: str, batches: list[dict], vocab: int, packages: dict, rounds: int,
            warmup: int) -> dict:
    trainers = {}
    for key, package in packages.items():
        torch.manual_seed(0)
        trainers[key] = Trainer(build_model(package, CONFIGS[name][0], vocab), own_loss, precision, "cpu")
        trainers[key].run(batches[:warmup])
    seconds = {key: [] for key in trainers}
    for _ in range(rounds):
        for key, trainer in trainers.items():
            seconds[key].append(trainer.run(batches) / len(batches))
    median = {key: statistics.median(values) for key, values in seconds.items()}
    result = {f"{key}_s_per_step": round(value, 4) for key, value in median.items()}
    result["speedup"] = round(median["revision"] / median["working_tree"], 3)
    result.update({f"{key}_rounds": [round(v, 4) for v in values] for key, values in seconds.items()})
    print(f"{name:>5} {precision}: revision {median['revision']:.4f} s/step, working tree "
          f"{median['working_tree']:.4f} s/step, x{result['speedup']:.3f}", flush=True)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="git revision of the model to compare against")
    parser.add_argument("--configs", default="tiny,mini", help="comma-separated, from tiny, mini")
    parser.add_argument("--precisions", default="auto", help="comma-separated: auto (precision: auto's choice), "
                                                             "fp32, bf16")
    parser.add_argument("--steps", type=int, default=4, help="steps per round")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--data", help="a prepared corpus folder instead of synthetic batches")
    args = parser.parse_args(argv)
    retain_freed_memory()  # as `linkbert pretrain` runs on CPU
    precisions = choose_precisions(args.precisions, "cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OpenMP waiting: {OPENMP_WAITING}; "
          f"working tree against {args.rev}", flush=True)
    print(describe(precisions), flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        packages = {"revision": load_revision(args.rev, Path(folder)), "working_tree": "linkbert"}
        for name in args.configs.split(","):
            batches, vocab = config_batches(name, args.steps, args.data)
            for precision in precisions["timed"]:
                results[f"{name}/{precision}"] = compare(name, precision, batches, vocab, packages, args.rounds,
                                                         args.warmup)
    results["_meta"] = {"revision": args.rev, "threads": torch.get_num_threads(), "openmp_waiting": OPENMP_WAITING,
                        "precisions": precisions}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
