"""``linkbert experiment ablation``: distractors, the resume rule, results.md, and (slow) the whole tool
end to end on a tiny Wikispeedia-format corpus.

The library parts it uses are tested with their modules: withheld links in test_graph.py, random
links in test_link_builders.py, rank metrics in test_metrics.py, the pair batch in
test_collator.py, the link-prediction scorers in test_link_prediction.py."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from conftest import TINY_TEXTS, build_tiny_bert

from linkbert.experiments.ablation import cell, results, run
from linkbert.experiments.ablation.assets import add_distractors
from linkbert.experiments.ablation.grid import MODES, Context
from linkbert.files import write_json
from linkbert.graph import DocGraph


# -- distractors ---------------------------------------------------------------------------------


def test_distractors_come_from_other_articles_and_keep_the_answers():
    paragraphs = {"A": ["Alpha one.", "Alpha two."], "B": ["Beta one.", "Beta two."], "C": ["Gamma."]}
    records = [{"id": f"q{i}", "title": "A", "question": "Which?", "context": "The answer is forty two.",
                "answers": {"answer_start": [14], "text": ["forty two"]}} for i in range(12)]
    out = add_distractors(records, paragraphs)
    assert out == add_distractors(records, paragraphs)  # deterministic
    counts = set()
    for original, record in zip(records, out):
        start = record["answers"]["answer_start"][0]
        assert record["context"][start:start + 9] == "forty two"
        parts = record["context"].split("\n\n")
        assert original["context"] in parts and len(parts) == 1 + record["distractors"]
        others = [p for p in parts if p != original["context"]]
        assert all(p in paragraphs["B"] + paragraphs["C"] for p in others)  # never the own article
        counts.add((record["distractors"], parts.index(original["context"]) > 0))
    assert {n for n, _ in counts} == {1, 2} and {before for _, before in counts} == {True, False}


# -- the resume rule -----------------------------------------------------------------------------


def smoke_context(out: Path, data: Path | None = None, minilm: Path | None = None) -> Context:
    data = data or out
    return Context(out=out, wikispeedia=data / "wikispeedia", squad=data / "squad.json", minilm=minilm,
                   mode=MODES["smoke"], mode_name="smoke", device="cpu")


def test_a_cell_with_result_json_is_never_recomputed(tmp_path, monkeypatch):
    ctx = smoke_context(tmp_path)
    folder = ctx.cell_dir("scratch", "linkbert", 0)
    stored = {"init": "scratch", "variant": "linkbert", "seed": 0, "steps": 3, "metrics": {"qa_f1": 1.0}}
    write_json(folder / "result.json", stored)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(cell, "pretrain_cell", must_not_run)
    monkeypatch.setattr(cell, "evaluate_cell", must_not_run)
    assert cell.run_cell(ctx, "scratch", "linkbert", 0, steps=3) == stored
    assert not list(folder.parent.glob(".*tmp"))  # written atomically, nothing left behind


def test_ordering_line_and_paper_table_are_labelled():
    cells = [{"init": "scratch", "variant": v, "seed": s, "metrics": {"qa_f1": f + s}}
             for v, f in (("linkbert", 20.0), ("tfidf", 10.0), ("random-links", 10.5)) for s in (0, 1)]
    summary = results.summarise(cells)
    assert summary["scratch"]["linkbert"]["qa_f1"]["mean"] == 20.5
    assert results.ordering(summary["scratch"], "qa_f1", True) == "linkbert > random-links ≈ tfidf"
    plan = {"mode": "smoke", "cells": 6, "steps": {"scratch": 3}}
    text = results.render_markdown(summary, plan, {"category": {"majority_baseline": 50.0}}, cells)
    assert "NOT our numbers" in text and "54.6" in text
    assert "| linkbert | 20.5 ± 0.7 |" in text


# -- end to end (slow) ---------------------------------------------------------------------------


def make_tiny_data(root: Path, n_docs: int = 20) -> Path:
    """A Wikispeedia-format folder (tarball, links.tsv, categories.tsv) and a SQuAD-format file."""
    folder = root / "wikispeedia"
    folder.mkdir(parents=True)
    names = [f"Doc_{i}" for i in range(n_docs)]
    with tarfile.open(folder / "plaintext_articles.tar.gz", "w:gz") as tar:
        for i, name in enumerate(names):
            body = "\n\n".join("   " + TINY_TEXTS[(i + j) % 5] for j in range(2 + i % 3))
            text = f"#copyright\n\n{name}\n\n2007 Schools Wikipedia Selection. Related subjects: Things\n\n{body}\n"
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"plaintext_articles/{quote(name)}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    links = [(i, (i + d) % n_docs) for i in range(n_docs) for d in (1, 3, 7)]
    (folder / "links.tsv").write_text("# links\n\n" + "".join(f"{names[a]}\t{names[b]}\n" for a, b in links))
    (folder / "categories.tsv").write_text("# categories\n\n" + "".join(
        f"{name}\tsubject.{'Science' if i % 2 else 'History'}.Sub\n" for i, name in enumerate(names)))
    articles = []
    for a in range(6):
        paragraphs = []
        for p in range(2):
            context = f"{TINY_TEXTS[(a + p) % 5]} The number is {a}{p}."
            qas = [{"id": f"{a}-{p}-{q}", "question": "What is the number?" if q else "Which capital?",
                    "answers": [{"text": f"{a}{p}", "answer_start": context.index(f"{a}{p}.")}] if q else
                    [{"text": "number", "answer_start": context.index("number")}]} for q in range(2)]
            paragraphs.append({"context": context, "qas": qas})
        articles.append({"title": f"Article_{a}", "paragraphs": paragraphs})
    (root / "squad.json").write_text(json.dumps({"version": "1.1", "data": articles}))
    return root


@pytest.mark.slow
def test_the_whole_grid_runs_resumes_and_writes_results(tmp_path, monkeypatch):
    from linkbert.cli import main

    data = make_tiny_data(tmp_path / "data")
    squad_texts = [p["context"] + " " + q["question"] for a in json.loads((data / "squad.json").read_text())["data"]
                   for p in a["paragraphs"] for q in p["qas"]]
    minilm = build_tiny_bert(tmp_path / "minilm", TINY_TEXTS + squad_texts + ["history science things doc"])
    (data / "squad").mkdir()
    (data / "squad" / "dev-v1.1-part-a.json").write_text((data / "squad.json").read_text())
    out = tmp_path / "grid"
    args = ["experiment", "ablation", "--data-root", str(data), "--out", str(out), "--mode", "smoke",
            "--minilm", str(minilm), "--budget-minutes", "5", "--seeds", "1", "--variants", "bert,linkbert,no-drp,init"]
    assert main(args) == 0
    written = json.loads((out / "results.json").read_text())
    assert len(written["cells"]) == 8  # 4 variants x 2 inits x 1 seed
    for result in written["cells"]:
        metrics = result["metrics"]
        assert result["steps"] == (0 if result["variant"] == "init" else written["plan"]["steps"][result["init"]])
        assert 0 <= metrics["qa_f1"] <= 100 and 0 <= metrics["category_acc"] <= 100
        assert (metrics["linkpred_mrr"] is None) == (result["variant"] == "no-drp")
    text = (out / "results.md").read_text()
    assert "## Ours: init `scratch`" in text and "## Ours: init `minilm`" in text and "NOT our numbers" in text
    assert not list(out.glob("cells/*/*/seed-0/model"))  # weights are not kept by default
    # the withheld links are absent from every pretraining graph
    withheld = {tuple(p) for p in np.load(out / "graphs" / "withheld.npy").tolist()}
    for name in ("hyperlinks", "tfidf", "random"):
        src, dst = DocGraph.load(out / "graphs" / name).edges()
        assert not set(zip(src.tolist(), dst.tolist())) & withheld

    def must_not_run(*a, **k):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(cell, "pretrain_cell", must_not_run)
    monkeypatch.setattr(cell, "evaluate_cell", must_not_run)
    monkeypatch.setattr(run, "measure_step_seconds", must_not_run)
    assert main(args) == 0  # everything done: nothing is recomputed, the results are rewritten
    assert json.loads((out / "results.json").read_text())["plan"]["steps"] == written["plan"]["steps"]
