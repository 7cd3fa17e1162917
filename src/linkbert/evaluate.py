"""``linkbert evaluate``: score SQuAD predictions, compute a BLURB score, collect fine-tuning runs.

* ``squad DATASET.json PREDICTIONS.json``: the official SQuAD v1.1 script's arguments and output
  (``{"exact_match", "f1"}``).
* ``blurb SCORES.json``: ``{task: score}`` for the 13 BLURB tasks -> BLURB score and type means.
* ``runs RUNS_DIR [--out DIR]``: every ``RUNS_DIR/**/metrics.json`` written by ``linkbert finetune``
  (``{"dataset", "task", "metric", "dev": {..., "main"}, "test": {..., "main"}, "model", "seconds"}``,
  ``main`` on 0-100) -> mean ± std over the runs (seeds) of each (model, dataset), in a BLURB
  table, an MRQA table and a MedQA/MMLU table beside the paper's numbers; writes ``tables.md``
  and ``tables.json`` and prints the markdown.

Each subcommand's settings are a dataclass (``settings.add_arguments``). Every score a user reads
(the printed JSON of ``squad`` and ``blurb``, the tables' cells) has :data:`DIGITS` decimals, as
the tables; ``tables.json`` keeps full precision.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from linkbert import metrics, settings
from linkbert.errors import BadInput
from linkbert.json_input import load_file
from linkbert.paper import PAPER_RESULTS
from linkbert.settings import setting

MRQA_TASKS = ("squad", "hotpot", "triviaqa", "searchqa", "naturalqa", "newsqa")
MEDICAL_QA_TASKS = ("medqa_usmle", "mmlu")
SPLITS = ("test", "dev")
DIGITS = 2  # decimals of our scores wherever a user reads them: the tables and the printed JSON

# The one table of dataset names, for `evaluate blurb` and `evaluate runs` alike: other spellings
# (the BLURB leaderboard's, the released data folders', the source datasets') -> our name.
# Matching is case-insensitive, so the leaderboard's ChemProt, PubMedQA, BioASQ need no entry.
_ALIASES = {"medqa": "medqa_usmle", "mmlu_professional_medicine": "mmlu", "professional_medicine": "mmlu",
            "pico": "ebmnlp", "ebm-pico": "ebmnlp", "ebm pico": "ebmnlp", "bc5-chem": "BC5CDR-chem",
            "bc5-disease": "BC5CDR-disease", "hotpotqa": "hotpot", "naturalquestions": "naturalqa"}
_CANONICAL = {name.lower(): name for name in (*metrics.BLURB_TASKS, *MRQA_TASKS, *MEDICAL_QA_TASKS)}
_CANONICAL.update(_ALIASES)


@dataclass
class SquadSettings:
    """``linkbert evaluate squad``: the official SQuAD v1.1 script's two arguments."""

    dataset_file: str = setting(None, "dataset in the official SQuAD v1.1 JSON schema", required=True)
    prediction_file: str = setting(None, 'predictions: {"question id": "answer text"}', required=True)


@dataclass
class BlurbSettings:
    """``linkbert evaluate blurb``."""

    scores_file: str = setting(None, 'JSON {"task name": score} for the 13 BLURB tasks', required=True)


@dataclass
class RunsSettings:
    """``linkbert evaluate runs``."""

    runs_dir: str = setting(None, "folder searched for **/metrics.json", required=True)
    out: str = setting("", "where tables.md and tables.json go; empty: RUNS_DIR")


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="evaluate_command", metavar="WHAT", required=True)
    for name, (settings_class, positional, _, help_text) in SUBCOMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        settings.add_arguments(command, settings_class, positional=positional)


def main(args: argparse.Namespace) -> int:
    settings_class, _, command, _ = SUBCOMMANDS[args.evaluate_command]
    return command(**dataclasses.asdict(settings.from_arguments(settings_class, args)))


def _load_json(path) -> object:
    return load_file(path)


# ---------------------------------------------------------------- squad


def read_squad_golds(path) -> dict[str, list[str]]:
    """``{question id: [gold answer texts]}`` from a file in the official SQuAD v1.1 schema."""
    dataset = _load_json(path)
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise BadInput(path, "", "wrong_schema", 'expected the SQuAD schema {"version", "data": [articles]}')
    if dataset.get("version") != "1.1":  # the official script warns and goes on
        print(f"Evaluation expects v-1.1, but got dataset with v-{dataset.get('version')}", file=sys.stderr)
    golds: dict[str, list[str]] = {}
    for a, article in enumerate(dataset["data"]):
        for p, paragraph in enumerate(_field(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            for q, qa in enumerate(_field(paragraph, "qas", list, path, where)):
                qid, answers = _squad_question(qa, path, f"{where}.qas[{q}]")
                if qid in golds:
                    raise BadInput(path, f"{where}.qas[{q}]", "duplicate_id", f"question id {qid!r} repeats")
                golds[qid] = answers
    if not golds:
        raise BadInput(path, "", "empty_split", "no questions in the dataset")
    return golds


def _field(record, name: str, kind: type, path, where: str):
    if not isinstance(record, dict) or not isinstance(record.get(name), kind):
        raise BadInput(path, where, "missing_field", f"expected a field {name!r} of type {kind.__name__}")
    return record[name]


def _squad_question(qa, path, where: str) -> tuple[str, list[str]]:
    qid = _field(qa, "id", str, path, where)
    answers = _field(qa, "answers", list, path, where)
    texts = [_field(answer, "text", str, path, f"{where}.answers[{i}]") for i, answer in enumerate(answers)]
    if not texts:
        raise BadInput(path, where, "missing_answer", f"question {qid!r} has no gold answer")
    return qid, texts


def read_squad_predictions(path) -> dict[str, str]:
    predictions = _load_json(path)
    if not isinstance(predictions, dict):
        raise BadInput(path, "", "wrong_schema", 'expected predictions {"question id": "answer text"}')
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise BadInput(path, f"question {qid}", "wrong_schema", f"answer is {type(text).__name__}, not text")
    return predictions


def score_squad(dataset_file: str, prediction_file: str) -> int:
    """``linkbert evaluate squad``: EM and F1 as the official script's JSON, to :data:`DIGITS` decimals."""
    golds = read_squad_golds(dataset_file)
    predictions = read_squad_predictions(prediction_file)
    scores = metrics.squad_scores(golds, predictions)
    warning = coverage_warning(golds, predictions, dataset_file, prediction_file)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(json.dumps(rounded(scores)))
    return 0


def rounded(scores):
    """Every number in ``scores`` (nested dicts too) to :data:`DIGITS` decimals: what a user reads
    of a mean has no float noise (``83.38949999999998`` is 83.39)."""
    if isinstance(scores, dict):
        return {key: rounded(value) for key, value in scores.items()}
    if isinstance(scores, float):
        return round(scores, DIGITS)
    return scores


def coverage_warning(golds: dict, predictions: dict, dataset_file, prediction_file) -> str | None:
    """One line on how the predictions cover the questions, when they do not exactly: a file of
    another dataset (no id in common) scores 0 and would otherwise pass for a model that failed."""
    answered = sum(qid in predictions for qid in golds)
    extra = len(predictions) - answered
    if answered == 0:
        example = f" (ids such as {next(iter(predictions))!r})" if predictions else ""
        return (f"{prediction_file}: none of its {len(predictions)} predictions is for a question of {dataset_file}"
                f"{example}: all {len(golds)} questions score 0; predictions of another dataset?")
    if answered < len(golds) or extra:
        return (f"{answered} of the {len(golds)} questions answered ({len(golds) - answered} score 0); "
                f"{extra} predictions match no question (ignored)")
    return None


# ---------------------------------------------------------------- blurb


# the scores a BLURB task can have, on 0-100: Pearson's r for BIOSSES (-100 to 100), else F1 or accuracy
SIGNED_TASKS = ("BIOSSES",)


def score_blurb(scores_file: str) -> int:
    """``linkbert evaluate blurb``: the BLURB score and its task-type means, to :data:`DIGITS` decimals.
    Each score must be a finite number on the 0-100 scale (-100 to 100 for BIOSSES's Pearson r)."""
    path = scores_file
    scores = _load_json(path)
    if not isinstance(scores, dict):
        raise BadInput(path, "", "wrong_schema", 'expected {"task name": score}')
    named = {}
    for task, value in scores.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadInput(path, f"task {task}", "wrong_schema", f"score is {value!r}, not a number")
        name = canonical_dataset(task)
        if name not in metrics.BLURB_TASKS:
            raise BadInput(path, f"task {task}", "unknown_task",
                           f"not a BLURB task name; accepted (any case): {', '.join(blurb_names())}")
        if name in named:
            raise BadInput(path, f"task {task}", "duplicate_task", f"{name} is given twice")
        low = -100 if name in SIGNED_TASKS else 0
        if not math.isfinite(value) or not low <= value <= 100:
            raise BadInput(path, f"task {task}", "bad_score", f"score {value!r} is not a number from {low} to 100 "
                                                              "(scores are on BLURB's 0-100 scale)")
        named[name] = value
    missing = [task for task in metrics.BLURB_TASKS if task not in named]
    if missing:
        raise BadInput(path, "", "missing_tasks", f"BLURB score needs all 13 tasks; missing: {', '.join(missing)}")
    print(json.dumps(rounded(metrics.blurb_score(named)), indent=2))
    return 0


# ---------------------------------------------------------------- runs


def blurb_names() -> list[str]:
    """Every accepted spelling of the 13 BLURB tasks: our names, then the other spellings."""
    return [*metrics.BLURB_TASKS, *(alias for alias, name in _ALIASES.items() if name in metrics.BLURB_TASKS)]


def canonical_dataset(name: str) -> str:
    """Our name for a dataset (``BioASQ`` -> ``bioasq``, ``medqa`` -> ``medqa_usmle``); unknown names stay."""
    return _CANONICAL.get(name.lower(), name)


def read_run(path: Path) -> dict:
    """One ``metrics.json``: dataset, model and the headline ``main`` of each split present."""
    record = _load_json(path)
    dataset = _field(record, "dataset", str, path, "")
    run = {"path": str(path), "dataset": canonical_dataset(dataset),
           "model": str(record.get("model") or "(model not recorded)"), "seconds": record.get("seconds")}
    for split in SPLITS:
        if split in record:
            main = _field(record, split, dict, path, "").get("main")
            if isinstance(main, bool) or not isinstance(main, (int, float)) or not math.isfinite(main):
                raise BadInput(path, split, "missing_field", f'expected a number "main" in "{split}", got {main!r}')
            run[split] = float(main)
    if not any(split in run for split in SPLITS):
        raise BadInput(path, "", "missing_field", 'neither "dev" nor "test" results')
    return run


def _summary(values: list[float]) -> dict | None:
    if not values:
        return None
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None  # sample std over seeds
    return {"mean": float(np.mean(values)), "std": std, "n": len(values)}


def summarize(runs: list[dict]) -> dict[str, dict[str, dict]]:
    """``{model: {dataset: {split: {mean, std, n}}}}`` over the runs of each (model, dataset)."""
    values = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for run in runs:
        for split in SPLITS:
            if split in run:
                values[run["model"]][run["dataset"]][split].append(run[split])
    return {model: {ds: {split: _summary(v.get(split, [])) for split in SPLITS} for ds, v in by_ds.items()}
            for model, by_ds in sorted(values.items())}


def _blurb_aggregate(task_means: dict[str, float]) -> dict | None:
    """BLURB score of the tasks present; ``partial`` when some of the 13 are missing."""
    present = {t: v for t, v in task_means.items() if t in metrics.BLURB_TASKS}
    if not present:
        return None
    by_type = metrics.blurb_type_means(present)
    return {"score": float(np.mean(list(by_type.values()))), "by_type": by_type,
            "partial": len(present) < len(metrics.BLURB_TASKS), "n_tasks": len(present)}


def build_tables(runs: list[dict]) -> dict:
    ours = summarize(runs)
    models = list(ours)
    task_type = {t: kind for kind, tasks in metrics.BLURB_TASK_TYPES.items() for t in tasks}
    known = {*metrics.BLURB_TASKS, *MRQA_TASKS, *MEDICAL_QA_TASKS}

    def rows(datasets, benchmark):
        paper = PAPER_RESULTS.get(benchmark, {})
        return [{"dataset": ds, "type": task_type.get(ds),
                 "ours": {m: ours[m].get(ds, {s: None for s in SPLITS}) for m in models},
                 "paper": {name: numbers.get(ds) for name, numbers in paper.items()}}
                for ds in datasets]

    blurb_score = {m: {s: _blurb_aggregate({ds: v[s]["mean"] for ds, v in ours[m].items() if v[s]})
                       for s in SPLITS} for m in models}
    others = sorted({run["dataset"] for run in runs} - known)
    return {
        "models": models,
        "blurb": {"rows": rows(metrics.BLURB_TASKS, "blurb"), "score": blurb_score,
                  "paper_score": {n: v["score"] for n, v in PAPER_RESULTS["blurb"].items()}},
        "mrqa": {"rows": rows(MRQA_TASKS, "mrqa")},
        "medqa": {"rows": rows(MEDICAL_QA_TASKS, "medqa")},
        "other": {"rows": rows(others, "")},
        "runs": runs,
    }


# ---------------------------------------------------------------- markdown


def _cell(summary: dict | None) -> str:
    if not summary:
        return "—"
    spread = f" ± {summary['std']:.{DIGITS}f}" if summary["std"] is not None else ""
    return f"{summary['mean']:.{DIGITS}f}{spread} ({summary['n']})"


def _number(value, digits: int = DIGITS) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _markdown_table(title: str, section: dict, models: list[str], paper_models: list[str], extra=(),
                    paper_digits: int = 1) -> list[str]:
    """One benchmark's table; paper numbers keep the precision the paper printed them with."""
    header = ["dataset"] + [f"{m} {s}" for m in models for s in SPLITS] + [f"paper {p}" for p in paper_models]
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in section["rows"]:
        cells = [row["dataset"]] + [_cell(row["ours"][m][s]) for m in models for s in SPLITS]
        cells += [_number(row["paper"].get(p), paper_digits) for p in paper_models]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["| " + " | ".join(cells) + " |" for cells in extra]
    return lines + [""]


def _blurb_score_cells(tables: dict) -> list[str]:
    cells = ["**BLURB score**"]
    for model in tables["models"]:
        for split in SPLITS:
            agg = tables["blurb"]["score"][model][split]
            if agg is None:
                cells.append("—")
            else:
                note = f" (partial: {agg['n_tasks']}/13 tasks)" if agg["partial"] else ""
                cells.append(f"{agg['score']:.{DIGITS}f}{note}")
    return cells + [_number(v) for v in tables["blurb"]["paper_score"].values()]


def render_markdown(tables: dict) -> str:
    models = tables["models"]
    lines = ["# Fine-tuning results", "",
             "Ours: mean ± sample std over runs (number of runs), headline metric on 0-100; "
             "— where there is no run. Paper: LinkBERT (ACL 2022).", ""]
    lines += _markdown_table("BLURB", tables["blurb"], models, list(PAPER_RESULTS["blurb"]),
                             extra=[_blurb_score_cells(tables)], paper_digits=2)
    lines += _markdown_table("MRQA (F1)", tables["mrqa"], models, list(PAPER_RESULTS["mrqa"]))
    lines += _markdown_table("MedQA-USMLE / MMLU professional medicine (accuracy)", tables["medqa"],
                             models, list(PAPER_RESULTS["medqa"]))
    if tables["other"]["rows"]:
        lines += _markdown_table("Other datasets", tables["other"], models, [])
    return "\n".join(lines)


def collect_runs(runs_dir) -> list[dict]:
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise BadInput(runs_dir, "", "missing_file", "not a folder", fatal=True)
    paths = sorted(runs_dir.rglob("metrics.json"))
    if not paths:
        raise BadInput(runs_dir, "", "empty_split", "no metrics.json anywhere below this folder")
    return [read_run(path) for path in paths]


def collect_tables(runs_dir: str, out: str) -> int:
    """``linkbert evaluate runs``: ``tables.md`` and ``tables.json`` (full precision) into ``out``
    (``runs_dir`` when empty); prints the markdown."""
    tables = build_tables(collect_runs(runs_dir))
    folder = Path(out or runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    markdown = render_markdown(tables)
    (folder / "tables.md").write_text(markdown, encoding="utf-8")
    (folder / "tables.json").write_text(json.dumps(tables, indent=2) + "\n", encoding="utf-8")
    print(markdown)
    return 0


# name -> (its settings, those of them that are positional, what runs it, its help)
SUBCOMMANDS = {
    "squad": (SquadSettings, ("dataset_file", "prediction_file"), score_squad,
              "SQuAD v1.1 EM/F1 of a predictions file (official script's arguments)"),
    "blurb": (BlurbSettings, ("scores_file",), score_blurb, "BLURB score from per-task scores"),
    "runs": (RunsSettings, ("runs_dir",), collect_tables, "collect fine-tuning runs into BLURB / MRQA tables"),
}
