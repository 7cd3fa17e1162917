"""The quickstart: its corpus option, its data split and labels, its BERT baseline, its report, end to
end (its default corpus reader: tests/corpus/test_vital_articles.py; labels: corpus/labels.py's tests)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import TOPICS, summaries

from linkbert.corpus.labels import document_labels
from linkbert.errors import ConfigError
from linkbert.quickstart import (
    MARKER,
    QuickstartConfig,
    claim_output_folder,
    corpus_source,
    finetune_skip_reason,
    majority_accuracy,
    nsp_pairs_accuracy,
    run,
    split_of,
    write_classification_data,
)
from linkbert.report import render_html, wilson_interval


# -- corpus option ----------------------------------------------------------------------------------

def test_corpus_option_must_be_format_colon_path():
    assert corpus_source(QuickstartConfig(corpus="jsonl:some/file.jsonl")) == ("jsonl", Path("some/file.jsonl"))
    for bad in ("some/file.jsonl", "nosuchformat:x", "jsonl:"):
        with pytest.raises(ConfigError, match="FORMAT:PATH"):
            corpus_source(QuickstartConfig(corpus=bad))


# -- fine-tuning data ---------------------------------------------------------------------------------

def test_split_is_a_stable_80_10_10_by_id():
    ids = [str(i) for i in range(5000)]
    counts = Counter(split_of(i) for i in ids)
    assert abs(counts["train"] / 5000 - 0.8) < 0.03 and abs(counts["test"] / 5000 - 0.1) < 0.02
    # pinned: a sha256 of the id, so the same on every machine, Python version and file order; a
    # change here moves documents between train and test (and every figure in docs/quickstart.md)
    assert [split_of(i) for i in ids[:12]] == ["train"] * 6 + ["dev"] + ["train"] * 4 + ["test"]


def _jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_jsonl_classification_data_has_the_labelled_records_split_by_id(tmp_path):
    # titles empty or repeated, as JSONL allows: the split follows the id
    records = [{"id": i, "title": "" if i % 3 else "Same title", "text": f"text of document {i}",
                **({"label": ["theory", "methods"][i % 2]} if i % 4 else {})} for i in range(200)]
    corpus = _jsonl(tmp_path / "c.jsonl", records)
    labels = document_labels("jsonl", corpus)
    counts = write_classification_data("jsonl", corpus, labels, tmp_path / "data")
    rows = {name: [json.loads(line) for line in open(tmp_path / "data" / f"{name}.json")] for name in counts}
    ids = sorted(row["id"] for r in rows.values() for row in r)
    assert ids == sorted(str(i) for i in range(200) if i % 4) and sum(counts.values()) == 150
    assert all(split_of(row["id"]) == name and row["label"] == labels[row["id"]] and row["sentence"]
               for name, r in rows.items() for row in r)


def test_labels_that_make_no_classification_task_skip_fine_tuning_saying_why():
    assert finetune_skip_reason({}) == "no document labels in this corpus"
    assert "same label (a)" in finetune_skip_reason({str(i): "a" for i in range(50)})
    assert "5 labelled documents for 3 labels, fewer than 2 a label" in finetune_skip_reason(
        {"1": "a", "2": "b", "3": "c", "4": "a", "5": "b"})
    train_only = {i: "ab"[n % 2] for n, i in enumerate(i for i in map(str, range(100)) if split_of(i) == "train")}
    assert "leaves no test documents" in finetune_skip_reason(dict(list(train_only.items())[:6]))
    assert finetune_skip_reason({str(i): "ab"[i % 2] for i in range(40)}) == ""


def test_classification_data_has_every_labelled_document_once(summaries_file, tmp_path):
    labels = document_labels("vital-articles", summaries_file)
    counts = write_classification_data("vital-articles", summaries_file, labels, tmp_path / "topics")
    rows = {name: [json.loads(line) for line in open(tmp_path / "topics" / f"{name}.json")] for name in counts}
    assert {name: len(r) for name, r in rows.items()} == counts
    ids = [row["id"] for r in rows.values() for row in r]
    assert sorted(ids) == sorted(labels) and all(row["label"] == labels[row["id"]] for r in rows.values() for row in r)
    assert all(split_of(row["id"]) == name for name, r in rows.items() for row in r)


def test_majority_accuracy_uses_the_training_majority(tmp_path):
    for name, labels in {"train": ["a", "a", "b"], "dev": ["b"], "test": ["a", "b", "b", "b"]}.items():
        (tmp_path / f"{name}.json").write_text("".join(json.dumps({"label": x}) + "\n" for x in labels))
    assert majority_accuracy(tmp_path) == 0.25


# -- noise: intervals and what can be compared --------------------------------------------------------

def test_wilson_interval_matches_hand_worked_numbers():
    # 50 of 100: centre (0.5 + z²/200) / (1 + z²/100) = 0.5, half width z / 1.0384 * sqrt(0.0025 + z²/40000)
    assert wilson_interval(50, 100) == (0.4038, 0.5962)
    # 8 of 10: centre 0.7167, half width 0.2266; 0 of 10: upper bound z² / (10 + z²)
    assert wilson_interval(8, 10) == (0.4902, 0.9433)
    assert wilson_interval(0, 10) == (0.0, 0.2775) and wilson_interval(10, 10) == (0.7225, 1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_linkbert_is_compared_with_nsp_on_contiguous_and_random_pairs_only():
    # rows: true contiguous, random, linked; a "linked" answer on a contiguous pair counts as wrong
    evaluation = {"relation_confusion": [[30, 5, 5], [10, 25, 5], [0, 0, 40]]}
    shared = nsp_pairs_accuracy(evaluation)
    assert shared["pairs"] == 80 and shared["accuracy"] == 55 / 80
    assert shared["interval95"] == list(wilson_interval(55, 80))


def _metrics_with_baseline() -> dict:
    def run(objective: str, classes: list[str]) -> dict:
        return {"objective": objective, "preset": "tiny", "steps": 10, "stop_reason": "max_steps",
                "train_seconds": 5.0, "tokens": 1000, "relation_accuracy_interval95": [0.5, 0.7],
                "eval": {"pairs": 100, "mlm_accuracy": 0.1, "mlm_loss": 6.0, "relation_accuracy": 0.6,
                         "relation_chance": 1 / len(classes), "relation_labels": classes,
                         "relation_accuracy_per_class": {c: 0.6 for c in classes}}}

    def model(accuracy: float, interval: list[float]) -> dict:
        return {"dev_accuracy": accuracy, "test_accuracy": accuracy, "test_interval95": interval, "seconds": 3.0,
                "train_examples": 80}

    corpus = {"format": "jsonl", "path": "c.jsonl", "documents": 100, "segments": 300, "tokens": 9000,
              "vocab_size": 500, "link_builder": "none", "links_resolved": 200, "docs_without_outlinks": 0,
              "docs_without_inlinks": 3}
    return {"corpus": corpus, "pretrain": run("linkbert", ["contiguous", "random", "linked"]),
            "baseline": {"objective": "bert", "pretrain": run("bert", ["contiguous", "random"]),
                         "linkbert_on_nsp_pairs": {"accuracy": 0.55, "pairs": 66, "interval95": [0.43, 0.67]}},
            "finetune": {"pretrained": model(0.7, [0.6, 0.78]), "bert": model(0.65, [0.55, 0.74]),
                         "untrained": model(0.4, [0.31, 0.5]), "majority_test_accuracy": 0.3,
                         "documents": {"train": 80, "dev": 10, "test": 100}, "labels": ["a", "b", "c"],
                         "differences": {"pretrained - bert": {"points": 5.0, "intervals_overlap": True},
                                         "pretrained - untrained": {"points": 30.0, "intervals_overlap": False}}},
            "config": {}, "stage_seconds": {"prepare": 1.0}, "total_seconds": 10.0}


def test_the_report_sets_bert_beside_linkbert_and_says_what_is_noise():
    page = render_html(_metrics_with_baseline(), {})
    for text in ("<th>LinkBERT</th><th>BERT</th>", "3-way, chance 0.333", "2-way, chance 0.500",
                 "— (no such class)", "not comparable", "0.550 [0.430–0.670] of 66 pairs",
                 "pretrained BERT", "0.550–0.740", "100 test documents",
                 "against pretrained BERT: +5.0 points; the intervals overlap",
                 "against untrained: +30.0 points; the intervals do not overlap"):
        assert text in page, text


# -- end to end -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_smoke_run_writes_a_complete_report(summaries_file, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "qs"
    metrics = run(QuickstartConfig(corpus=f"vital-articles:{summaries_file}", out=str(out), smoke=True,
                                   budget_minutes=0.1))
    saved = json.loads((out / "report" / "metrics.json").read_text())
    assert saved["corpus"]["documents"] == 120 and saved["corpus"]["links_resolved"] > 100
    evaluation = saved["pretrain"]["eval"]
    assert sum(map(sum, evaluation["relation_confusion"])) == evaluation["pairs"]
    assert 0 <= evaluation["relation_accuracy"] <= 1 and saved["pretrain"]["steps"] >= 2
    finetune = saved["finetune"]
    assert set(finetune["documents"]) == {"train", "dev", "test"} and finetune["labels"] == sorted(TOPICS)
    for name in ("pretrained", "untrained"):
        lower, upper = finetune[name]["test_interval95"]
        assert 0 <= lower <= finetune[name]["test_accuracy"] <= upper <= 1
    assert "bert" not in finetune and metrics["baseline"] == {}
    assert list(saved["stage_seconds"]) == ["prepare", "pretrain", "evaluate", "fine-tune", "report"]
    page = (out / "report" / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 4  # curves, degrees, confusion, fine-tuning
    for name in ("training_curves", "relation_confusion", "degree_distribution", "finetune"):
        assert (out / "report" / f"{name}.png").stat().st_size > 1000
    assert metrics["finetune"]["pretrained"] == finetune["pretrained"]


@pytest.mark.slow
def test_any_corpus_runs_and_skips_fine_tuning_without_labels(tmp_path):
    pytest.importorskip("matplotlib")
    corpus = tmp_path / "corpus.jsonl"
    entries = summaries(60)
    titles = list(entries)
    with open(corpus, "w", encoding="utf-8") as f:
        for i, title in enumerate(titles):  # real links this time: each document links to the next two
            f.write(json.dumps({"id": i, "title": title, "text": entries[title]["extract"],
                                "links": [titles[(i + 1) % 60], titles[(i + 2) % 60]]}) + "\n")
    out = tmp_path / "qs"
    metrics = run(QuickstartConfig(corpus=f"jsonl:{corpus}", out=str(out), smoke=True, budget_minutes=0.05))
    assert metrics["corpus"]["link_builder"] == "none" and metrics["corpus"]["links_resolved"] == 120
    assert metrics["finetune"] == {} and not (out / "finetune").exists()
    page = (out / "report" / "index.html").read_text()
    assert "Fine-tuning" not in page and page.count("data:image/png") == 3
    # a quickstart folder is the quickstart's to redo: its stage folders are replaced
    (out / "pretrain" / "stale.txt").write_text("from the first run")
    assert run(QuickstartConfig(corpus=f"jsonl:{corpus}", out=str(out), smoke=True, budget_minutes=0.05))
    assert not (out / "pretrain" / "stale.txt").exists() and (out / MARKER).is_file()


@pytest.mark.slow
def test_a_labelled_jsonl_corpus_gets_the_fine_tuning_stage(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    entries = summaries(90)
    records = [{"id": f"doc-{i}", "title": "", "text": entries[title]["extract"],  # no titles: the split uses ids
                **({"label": TOPICS[i % 3]} if i % 5 else {})}  # a fifth without a label
               for i, title in enumerate(entries)]
    for i, record in enumerate(records):
        record["links"] = [records[(i + 1) % 90]["id"]]
    corpus = _jsonl(tmp_path / "labelled.jsonl", records)
    metrics = run(QuickstartConfig(corpus=f"jsonl:{corpus}", out=str(tmp_path / "qs"), smoke=True,
                                   budget_minutes=0.05))
    finetune = metrics["finetune"]
    assert finetune["labels"] == sorted(TOPICS) and sum(finetune["documents"].values()) == 72
    assert 0 <= finetune["pretrained"]["test_accuracy"] <= 1 and "bert" not in finetune
    assert "[4/5] fine-tune: classify documents by label" in capsys.readouterr().out


@pytest.mark.slow
def test_a_bert_baseline_is_reported_beside_linkbert(summaries_file, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "qs"
    run(QuickstartConfig(corpus=f"vital-articles:{summaries_file}", out=str(out), smoke=True, budget_minutes=0.05,
                         baseline="bert"))
    printed = capsys.readouterr().out
    assert "budget each, twice the time" in printed and "BERT: masked-token accuracy" in printed
    saved = json.loads((out / "report" / "metrics.json").read_text())
    bert = saved["baseline"]["pretrain"]
    assert bert["objective"] == "bert" and bert["steps"] == saved["pretrain"]["steps"]
    assert bert["eval"]["relation_labels"] == ["contiguous", "random"] and bert["eval"]["relation_chance"] == 0.5
    assert saved["baseline"]["linkbert_on_nsp_pairs"]["pairs"] > 0
    finetune = saved["finetune"]
    assert {"pretrained", "bert", "untrained"} <= set(finetune)
    assert set(finetune["differences"]) == {"pretrained - bert", "pretrained - untrained"}
    page = (out / "report" / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 6  # and the baseline curves and NSP confusion
    assert "<th>LinkBERT</th><th>BERT</th>" in page and "pretrained BERT" in page and "not comparable" in page
    assert (out / "pretrain-bert" / "summary.json").is_file() and (out / "models" / "bert").is_dir()
    # a rerun without the baseline leaves none of it behind
    metrics = run(QuickstartConfig(corpus=f"vital-articles:{summaries_file}", out=str(out), smoke=True,
                                   budget_minutes=0.05))
    assert metrics["baseline"] == {} and not (out / "pretrain-bert").exists() and not (out / "models" / "bert").exists()


# -- the output folder: a user's folder is never deleted unasked --------------------------------------

def _user_folder(tmp_path) -> Path:
    """A folder the quickstart did not write, with a ``data/`` of the user's own."""
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "data" / "precious.txt").write_text("keep me")
    return out


def test_a_folder_not_written_by_the_quickstart_is_refused(tmp_path, summaries_file, capsys):
    from linkbert.cli import main

    out = _user_folder(tmp_path)
    assert main(["quickstart", "--corpus", f"vital-articles:{summaries_file}", "--out", str(out), "--smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linkbert quickstart: error:") and "\n" not in err, err
    assert "was not written by the quickstart" in err and "--overwrite" in err
    assert (out / "data" / "precious.txt").read_text() == "keep me" and not (out / MARKER).exists()


def test_overwrite_claims_a_folder_and_a_quickstart_folder_is_reused(tmp_path, summaries_file):
    out = _user_folder(tmp_path)
    (out / "notes.txt").write_text("mine")
    claim_output_folder(out, corpus=summaries_file, overwrite=True)
    assert (out / MARKER).is_file() and (out / "notes.txt").read_text() == "mine"
    claim_output_folder(out, corpus=summaries_file, overwrite=False)  # now a quickstart folder
    claim_output_folder(tmp_path / "new", corpus=summaries_file, overwrite=False)
    assert (tmp_path / "new" / MARKER).is_file()


def test_the_corpus_may_not_lie_in_a_stage_folder(tmp_path, summaries_file):
    out = tmp_path / "qs"
    (out / "work").mkdir(parents=True)
    corpus = out / "work" / "corpus.json"
    corpus.write_text(summaries_file.read_text())
    with pytest.raises(ConfigError, match="overlaps the input"):
        claim_output_folder(out, corpus=corpus, overwrite=True)
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        claim_output_folder(corpus, corpus=summaries_file, overwrite=True)


@pytest.mark.parametrize("flag, message", [
    (["--batch-size", "0"], "batch_size must be at least 1 (got 0)"),
    (["--max-length", "4"], "max_length must be at least 8 (got 4)"),
    (["--budget-minutes", "0"], "budget_minutes must be above 0"),
])
def test_a_bad_setting_is_one_line(tmp_path, capsys, flag, message):
    from linkbert.cli import main

    assert main(["quickstart", "--out", str(tmp_path / "qs"), *flag]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linkbert quickstart: error:") and message in err and "\n" not in err, err
    assert not (tmp_path / "qs").exists()
