"""The quickstart: its corpus option, its data split and labels, its report, end to end (its default
corpus reader: tests/corpus/test_vital_articles.py)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from conftest import TOPICS, summaries

from linkbert.errors import ConfigError
from linkbert.quickstart import (
    MARKER,
    QuickstartConfig,
    claim_output_folder,
    corpus_source,
    document_labels,
    majority_accuracy,
    run,
    split_of,
    write_classification_data,
)


# -- corpus option ----------------------------------------------------------------------------------

def test_corpus_option_must_be_format_colon_path():
    assert corpus_source(QuickstartConfig(corpus="jsonl:some/file.jsonl")) == ("jsonl", Path("some/file.jsonl"))
    for bad in ("some/file.jsonl", "nosuchformat:x", "jsonl:"):
        with pytest.raises(ConfigError, match="FORMAT:PATH"):
            corpus_source(QuickstartConfig(corpus=bad))


# -- fine-tuning data ---------------------------------------------------------------------------------

def test_split_is_a_stable_80_10_10_by_title():
    titles = [f"title {i}" for i in range(5000)]
    counts = Counter(split_of(t) for t in titles)
    assert abs(counts["train"] / 5000 - 0.8) < 0.03 and abs(counts["test"] / 5000 - 0.1) < 0.02
    assert [split_of(t) for t in titles[:50]] == [split_of(t) for t in titles[:50]]


def test_classification_data_has_every_labelled_document_once(summaries_file, tmp_path):
    labels = document_labels("vital-articles", summaries_file)
    counts = write_classification_data(summaries_file, labels, tmp_path / "topics")
    rows = {name: [json.loads(line) for line in open(tmp_path / "topics" / f"{name}.json")] for name in counts}
    assert {name: len(r) for name, r in rows.items()} == counts
    ids = [row["id"] for r in rows.values() for row in r]
    assert sorted(ids) == sorted(labels) and all(row["label"] == labels[row["id"]] for r in rows.values() for row in r)
    assert all(split_of(row["id"]) == name for name, r in rows.items() for row in r)


def test_majority_accuracy_uses_the_training_majority(tmp_path):
    for name, labels in {"train": ["a", "a", "b"], "dev": ["b"], "test": ["a", "b", "b", "b"]}.items():
        (tmp_path / f"{name}.json").write_text("".join(json.dumps({"label": x}) + "\n" for x in labels))
    assert majority_accuracy(tmp_path) == 0.25


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
    assert set(finetune["documents"]) == {"train", "dev", "test"} and finetune["topics"] == sorted(TOPICS)
    for name in ("pretrained", "untrained"):
        assert 0 <= finetune[name]["test_accuracy"] <= 1
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
