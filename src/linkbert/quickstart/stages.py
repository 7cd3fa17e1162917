"""The quickstart's five stages in order (prepare, pretrain, evaluate, fine-tune, report), each
announced with what it does and timed: :func:`run`."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from pathlib import Path

from linkbert import settings
from linkbert.corpus.labels import document_labels
from linkbert.quickstart.classification import finetune_all, finetune_skip_reason
from linkbert.quickstart.config import QuickstartConfig
from linkbert.quickstart.corpus import corpus_reader_options, corpus_source, link_builder, subset_corpus
from linkbert.quickstart.figures import (
    baseline_figures,
    commonest_token_share,
    corpus_figures,
    not_learned,
    prepare_line,
    pretrain_figures,
)
from linkbert.quickstart.output import BASELINE_FOLDER, claim_output_folder
from linkbert.quickstart.pipeline import input_paths, prepare_corpus
from linkbert.quickstart.pretraining import OBJECTIVE_NAMES, evaluation_line, pretrain_models, pretrain_stage_line
from linkbert.quickstart.report import duration, write_metrics, write_report


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


def prepare_stage(config: QuickstartConfig, fmt: str, path: Path, reader_options: dict[str, str],
                  out: Path) -> tuple[Path, dict, dict[str, str]]:
    """Stage 1: the corpus (its subset, for ``--smoke``/``--max-documents``) prepared into
    ``out/data``, read with ``reader_options`` (prepare's ``--id-field``, ``--edges``, ...); its
    labels read now, so that a malformed label stops the run before pretraining. Returns ``(the
    corpus file read, prepare's statistics, {document id: label})``."""
    corpus_file = subset_corpus(fmt, path, config, out / "work") if config.max_documents else path
    stats = prepare_corpus(fmt, corpus_file, out / "data", workers=config.workers,
                           link_builder=link_builder(config, fmt), segment_budget=(config.max_length - 3) // 2,
                           vocab_size=config.vocab_size, reader_options=reader_options, skip_bad=config.skip_bad)
    return corpus_file, stats, document_labels(fmt, corpus_file, **reader_options)


def run(config: QuickstartConfig) -> dict:
    """All stages; returns what ``report/metrics.json`` holds."""
    settings.check(config)
    config = config.resolved()
    out = Path(config.out)
    fmt, path = corpus_source(config)
    reader_options = corpus_reader_options(config, fmt, path)
    claim_output_folder(out, inputs=input_paths(path, reader_options), overwrite=config.overwrite)
    stages = Stages(5)
    started = time.perf_counter()

    with stages("prepare", f"read {fmt} corpus {path}, train a {config.vocab_size}-token WordPiece vocabulary, "
                           f"{'recover links from title mentions' if link_builder(config, fmt) == 'title-mention' else 'resolve its links'}, "
                           "write the segment store and document graph"):
        corpus_file, stats, labels = prepare_stage(config, fmt, path, reader_options, out)
    print(prepare_line(stats), flush=True)

    with stages("pretrain", pretrain_stage_line(config)):
        summaries = pretrain_models(config, out)

    with stages("evaluate", "held-out documents: masked-token accuracy and relation accuracy per class (chance 1/3"
                            + ("; BERT's next-sentence prediction: 1/2)" if "bert" in summaries else ")")):
        mlm_floor = commonest_token_share(out / "data")
        for name, summary in summaries.items():
            print(evaluation_line(name, summary["eval"]), flush=True)
            reasons = not_learned(summary["eval"], mlm_floor)
            if reasons:
                print(f"{OBJECTIVE_NAMES[name]} has not learned anything measurable yet: {'; '.join(reasons)}. Its "
                      "comparisons below say nothing about pretraining; train longer (--steps)", flush=True)

    skipped = finetune_skip_reason(labels)
    with stages("fine-tune", f"{skipped}: skipped" if skipped else
                f"classify documents by label from the pretrained encoder{'s' if len(summaries) > 1 else ''} "
                "and from the same architecture without pretraining"):
        finetuned = {} if skipped else finetune_all(config, out, summaries, fmt, corpus_file, labels,
                                                           reader_options)
    if skipped:
        for folder in ("models", "finetune"):  # a previous run's, which no longer match this report
            shutil.rmtree(out / folder, ignore_errors=True)

    with stages("report", f"metrics, plots and an HTML page in {out / 'report'}"):
        metrics = {"corpus": {"format": fmt, "path": str(path), **corpus_figures(stats)},
                   "pretrain": pretrain_figures(summaries["linkbert"], config, "linkbert", mlm_floor),
                   "baseline": baseline_figures(summaries, config, mlm_floor), "finetune": finetuned,
                   "config": dataclasses.asdict(config), "stage_seconds": stages.seconds}
        metrics["total_seconds"] = round(time.perf_counter() - started, 1)
        page = write_report(metrics, out / "data", out / "pretrain", out / "report",
                            baseline_dir=out / BASELINE_FOLDER if "bert" in summaries else None)
    metrics["total_seconds"] = round(time.perf_counter() - started, 1)
    write_metrics(metrics, out / "report")  # again, now with the report stage's own time
    print(f"\nquickstart finished in {duration(time.perf_counter() - started)}; open {page}", flush=True)
    return metrics
