"""Shared by the fine-tuning tests (tests/finetune/): hand-written examples of every task type, the
``tiny_model`` fixture (a tiny BERT built in the test, no downloads, whose vocab covers them),
``linkbert finetune`` run in-process and the checks of what a run writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import build_tiny_bert

from linkbert.cli import main

FAST = ["epochs=1", "batch_size=4", "eval_batch_size=8", "log_every=1"]


# ---------------------------------------------------------------- tiny model and data helpers


def texts_of(record: dict) -> list[str]:
    """Every string in a record (nested lists and dicts included)."""
    if isinstance(record, str):
        return [record]
    if isinstance(record, dict):
        return [t for v in record.values() for t in texts_of(v)]
    if isinstance(record, list):
        return [t for v in record for t in texts_of(v)]
    return []


def write_split(folder: Path, name: str, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.json", "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def write_data(folder: Path, splits: dict[str, list[dict]]) -> Path:
    for name, records in splits.items():
        write_split(folder, name, records)
    return folder


def finetune(*args: str) -> int:
    """``linkbert finetune ARGS`` in-process, on one CPU thread: on a busy shared machine torch's
    thread pool waits far longer than a tiny model computes (KEY=VALUE settings come last)."""
    return main(["finetune", *map(str, args), "threads=1"])


def check_run(out: Path, task: str, dataset: str, metric: str, counts: dict[str, int], trained: bool = True) -> dict:
    """The agreed ``metrics.json`` schema, one prediction per example, the resolved config."""
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["dataset"], metrics["task"], metrics["metric"]) == (dataset, task, metric)
    assert isinstance(metrics["model"], str) and metrics["model"]
    assert isinstance(metrics["seconds"], float) and metrics["seconds"] > 0
    assert isinstance(metrics["train_examples"], int)
    for split in ("dev", "test"):
        if split not in counts:
            assert split not in metrics and not (out / f"predictions_{split}.json").exists()
            continue
        main_score = metrics[split]["main"]
        assert isinstance(main_score, float)
        assert math.isnan(main_score) or 0.0 <= main_score <= 100.0 or metric == "pearsonr"
        predictions = json.loads((out / f"predictions_{split}.json").read_text())
        assert len(predictions) == counts[split]
        assert metrics["eval_examples"][split] == counts[split]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["task"] == task and config["max_length"] > 0
    assert (out / "model.safetensors").exists() == (trained and config["save_model"])
    return metrics


# ---------------------------------------------------------------- hand-written examples

DRUGS = ["aspirin", "insulin", "heparin", "warfarin", "metformin", "statin", "ibuprofen", "codeine"]
EFFECTS = [("reduce", "reduced", "yes"), ("raise", "did not change", "no"), ("cure", "may cure", "maybe")]


def pair_examples(n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        drug, (verb, result, label) = DRUGS[i % len(DRUGS)], EFFECTS[i % len(EFFECTS)]
        rows.append({"id": f"{prefix}{i}", "sentence1": f"does {drug} {verb} pain ?",
                     "sentence2": f"in trials {drug} {result} pain in patients .", "label": label})
    return rows


def multilabel_examples(n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "sentence": f"{DRUGS[i % 8]} affects growth and {DRUGS[(i + 3) % 8]} .",
             "label": [i % 2, (i // 2) % 2, 1 - i % 2]} for i in range(n)]


def regression_examples(n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "sentence1": f"{DRUGS[i % 8]} lowers pain .",
             "sentence2": f"{DRUGS[(i * 3) % 8]} lowers pain .", "label": float(i % 5) + 0.5} for i in range(n)]


def relation_examples(n: int, prefix: str) -> list[dict]:
    labels = ["0", "CPR:3", "CPR:4"]
    return [{"id": f"{prefix}{i}", "sentence": f"@CHEMICAL$ binds @GENE$ near {DRUGS[i % 8]} .",
             "label": labels[i % 3]} for i in range(n)]


def ner_examples(n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        drug = DRUGS[i % 8]
        tokens = ["secondary", "hyperparathyroidism", "after", drug, "in", "renal", "failure", "."]
        tags = ["B", "I", "O", "O", "O", "B", "I", "O"] if i % 2 else ["O", "B", "O", "O", "O", "O", "O", "O"]
        rows.append({"tokens": tokens, "ner_tags": tags, "id": f"{prefix}{i}"})
    return rows


def qa_examples(n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        drug = DRUGS[i % 8]
        filler = " ".join(f"{DRUGS[(i + k) % 8]} was studied in year {1990 + k} ." for k in range(6))
        context = f"{filler} the trial of {drug} ended in {2000 + i} with good results ."
        answer = f"{2000 + i}"
        rows.append({"id": f"{prefix}{i}", "question": f" when did the trial of {drug} end ?",
                     "context": context, "answers": {"text": [answer], "answer_start": [context.index(answer)]}})
    return rows


def mc_examples(n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "sent1": f"which drug treats pain number {i} ?", "sent2": "",
             **{f"ending{k}": DRUGS[(i + k) % 8] for k in range(4)}, "label": i % 4} for i in range(n)]


def splits_of(make, train=8, dev=4, test=4) -> dict[str, list[dict]]:
    return {"train": make(train, "tr"), "dev": make(dev, "dv"), "test": make(test, "te")}


ALL_MAKERS = [pair_examples, multilabel_examples, regression_examples, relation_examples, ner_examples,
              qa_examples, mc_examples]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny BERT whose vocab covers every hand-written example. A test module takes the fixture
    with ``tiny_model = finetune_helpers.tiny_model`` (imported by name, linters call it unused)."""
    texts = [t for make in ALL_MAKERS for record in make(8, "x") for t in texts_of(record)]
    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", texts + ["@", "$", ":"])


def fails_with(capsys, *args) -> str:
    """The error of ``linkbert finetune ARGS``: exit status 2, the message as stderr's last line
    (before it, only what libraries print while loading the model), no traceback."""
    assert finetune(*args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("linkbert finetune: error: "), err
    return err


def one_line_error(err: str) -> str:
    """A settings error is all of stderr: one line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linkbert finetune: error: "), err
    return lines[0]
