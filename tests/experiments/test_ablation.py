"""``linkbert experiment ablation``: distractors, the HotpotQA split, the resume rule (HotpotQA
scores included), results.md, and (slow) the whole tool end to end on a tiny Wikispeedia-format
corpus.

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

from linkbert.experiments.ablation import cell, results
from linkbert.experiments.ablation import plan as planner
from linkbert.experiments.ablation.assets import add_distractors, build_hotpotqa_data, hotpot_part
from linkbert.experiments.ablation.grid import MODES, Context
from linkbert.files import write_json
from linkbert.finetune.convert_qa import hotpotqa_records
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


# -- HotpotQA ------------------------------------------------------------------------------------


def write_tiny_hotpot(path: Path, n_train: int = 4, n_dev: int = 24) -> Path:
    """HotpotQA-schema JSON lines, the shared excerpt's layout (``hotpot_split`` tags train/dev
    questions): 10 paragraphs each, every third question a comparison, plus two yes/no questions."""
    records = []
    for i in range(n_train + n_dev + 2):
        paragraphs = [[f"Title {i} {j}", [TINY_TEXTS[(i + j) % 5], f" The number is {i}{j}."]] for j in range(10)]
        records.append({"_id": f"h{i:03d}", "question": f"Which number has question {i}?",
                        "answer": f"{i}3" if i < n_train + n_dev else ("yes", "no")[i % 2],
                        "type": "comparison" if i % 3 == 0 else "bridge", "level": "hard",
                        "supporting_facts": [[f"Title {i} 3", 1]], "context": paragraphs,
                        "hotpot_split": "train" if i < n_train else "dev"})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_hotpotqa_eval_data_has_a_fixed_disjoint_split(tmp_path):
    source = write_tiny_hotpot(tmp_path / "hotpot.jsonl")
    built = []
    for name in ("a", "b"):
        ctx = smoke_context(tmp_path / name)
        ctx.hotpotqa = source
        stats = build_hotpotqa_data(ctx)
        folder = ctx.eval_dir / "hotpotqa"
        built.append({split: read_jsonl(folder / f"{split}.json") for split in ("train", "test")})
        assert stats["dropped"] == {"yes_no": 2} and stats["questions"] == {"train": 4, "dev": 24}
        assert stats["pool"]["train_from_hotpot_train"] == 4
        assert stats["pool"]["train"] + stats["pool"]["test"] == 28
        assert (stats["train"], stats["test"]) == (MODES["smoke"].hotpot_train, MODES["smoke"].hotpot_test)
    assert built[0] == built[1]  # fixed: the same files from the same input
    train, test = built[0]["train"], built[0]["test"]
    assert not {r["id"] for r in train} & {r["id"] for r in test}  # disjoint
    assert all(int(r["id"][1:]) >= 4 and hotpot_part(r["id"]) == "test" for r in test)  # held-out dev questions
    assert all(int(r["id"][1:]) < 4 or hotpot_part(r["id"]) == "train" for r in train)
    assert {r["type"] for r in test} == {"bridge", "comparison"}  # both types kept for the per-type scores
    for r in train + test:  # MRQA's context over all 10 paragraphs, the answer inside it
        assert r["context"].count("[PAR]") == 10
        start = r["answers"]["answer_start"][0]
        assert r["context"][start:start + len(r["answers"]["text"][0])] == r["answers"]["text"][0]


def test_hotpotqa_is_skipped_with_a_line_when_its_file_is_absent(tmp_path, capsys):
    ctx = smoke_context(tmp_path)
    ctx.hotpotqa = tmp_path / "data" / "hotpotqa" / "hotpot_distractor_1450.jsonl"
    stats = build_hotpotqa_data(ctx)
    assert "not found" in stats["skipped"]
    assert "HotpotQA evaluation is skipped" in capsys.readouterr().out
    assert not cell.runs_hotpotqa(ctx, "minilm")
    assert cell.hotpotqa_metrics(ctx, "minilm", tmp_path, tmp_path / "h", 0) == dict.fromkeys(cell.HOTPOT_KEYS)


@pytest.mark.data
def test_hotpotqa_split_of_the_shared_file(shared_data, tmp_path):
    source = shared_data / "hotpotqa" / "hotpot_distractor_1450.jsonl"
    if not source.exists():
        pytest.skip(f"missing {source}")
    ctx = smoke_context(tmp_path)
    ctx.hotpotqa, ctx.mode = source, MODES["gpu"]  # gpu: every question of both parts
    stats = build_hotpotqa_data(ctx)
    assert stats["questions"] == {"dev": 1265, "train": 91} and stats["dropped"] == {"yes_no": 94}
    assert stats["pool"] == {"train": 738, "train_from_hotpot_train": 91, "train_from_hotpot_dev": 647, "test": 618}
    assert stats["test_types"] == {"bridge": 508, "comparison": 110}
    folder = ctx.eval_dir / "hotpotqa"
    train, test = ({r["id"] for r in read_jsonl(folder / f"{s}.json")} for s in ("train", "test"))
    assert len(train) == 738 and len(test) == 618 and not train & test


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


def test_a_resumed_cell_does_not_recompute_finished_hotpotqa_scores(tmp_path, monkeypatch):
    """An interrupted cell (no result.json) whose fine-tuning runs finished reads every score back,
    HotpotQA's included; the scratch init has no HotpotQA figures."""
    import linkbert.finetune.run

    ctx = smoke_context(tmp_path)
    write_json(ctx.eval_dir / "qa" / "stats.json", {"fewshot": 1})
    write_json(ctx.eval_dir / "hotpotqa" / "stats.json", {"train": 8, "test": 6})
    squad = {"dev": {"main": 25.0}, "test": {"main": 30.0, "exact_match": 20.0, "f1": 30.0}, "seconds": 5.0}
    hotpot = {"test": {"exact_match": 10.0, "f1": 15.0, "main": 15.0, "by_type": {
        "bridge": {"exact_match": 12.0, "f1": 18.0, "n": 4}, "comparison": {"exact_match": 5.0, "f1": 9.0, "n": 2}}},
        "seconds": 42.0}
    for init in ("minilm", "scratch"):
        folder = ctx.cell_dir(init, "linkbert", 0)
        write_json(folder / "model" / "config.json", {})  # exported before the interruption
        for name in ("qa", "qa-fewshot"):
            write_json(folder / name / "metrics.json", squad)
        write_json(folder / "category" / "metrics.json", {"test": {"main": 40.0}, "seconds": 1.0})
        write_json(folder / "linkpred.json", {"head": {"mrr": 0.5, "hits1": 0.3}, "embedding": {"mrr": 0.4, "hits1": 0.2}})
    write_json(ctx.cell_dir("minilm", "linkbert", 0) / "hotpotqa" / "metrics.json", hotpot)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished evaluation was recomputed")

    monkeypatch.setattr(cell, "pretrain_cell", lambda ctx, init, variant, seed, steps, folder, start=None: (
        folder, {"step": 3}))
    monkeypatch.setattr(linkbert.finetune.run, "run", must_not_run)
    result = cell.run_cell(ctx, "minilm", "linkbert", 0, steps=3)
    assert {k: result["metrics"][k] for k in cell.HOTPOT_KEYS} == {
        "hotpot_f1": 15.0, "hotpot_em": 10.0, "hotpot_bridge_f1": 18.0, "hotpot_bridge_em": 12.0,
        "hotpot_comparison_f1": 9.0, "hotpot_comparison_em": 5.0}
    assert result["hotpotqa_seconds"] == 42.0 and result["metrics"]["qa_f1"] == 30.0
    scratch = cell.run_cell(ctx, "scratch", "linkbert", 0, steps=3)
    assert all(scratch["metrics"][k] is None for k in cell.HOTPOT_KEYS) and scratch["hotpotqa_seconds"] is None


def test_results_md_has_the_hotpotqa_columns():
    hotpot = {"hotpot_f1": 12.0, "hotpot_bridge_f1": 10.0, "hotpot_comparison_f1": 20.0, "hotpot_em": 8.0}
    cells = [{"init": init, "variant": v, "seed": 0,
              "metrics": {"qa_f1": 5.0 + k, **(hotpot if init == "minilm" else dict.fromkeys(hotpot))}}
             for init in ("minilm", "scratch") for k, v in enumerate(("linkbert", "random-links"))]
    summary = results.summarise(cells)
    assert summary["minilm"]["linkbert"]["hotpot_em"]["mean"] == 8.0  # EM: in results.json's summary
    assert "hotpot_f1" not in summary["scratch"]["linkbert"]
    plan = {"mode": "smoke", "cells": 4, "steps": {"minilm": 3, "scratch": 3}}
    assets = {"category": {"majority_baseline": 50.0},
              "hotpotqa": {"train": 96, "test": 128, "test_types": {"bridge": 105, "comparison": 23}}}
    text = results.render_markdown(summary, plan, assets, cells)
    assert "| QA F1 | QA+distractors F1 | distractor drop | few-shot QA F1 | HotpotQA F1 | bridge F1 | comparison F1 |" in text
    assert "| linkbert | 5.0 | n/a | n/a | n/a | 12.0 | 10.0 | 20.0 |" in text  # minilm
    assert "| linkbert | 5.0 | n/a | n/a | n/a | n/a | n/a | n/a |" in text  # scratch: not evaluated
    assert text.count("- HotpotQA F1: ") == 1  # an ordering line for minilm only
    assert "96 fine-tuning / 128 test questions (test: 105 bridge, 23 comparison)" in text
    skipped = results.render_markdown(summary, plan, {**assets, "hotpotqa": {"skipped": "x not found"}}, cells)
    assert "skipped in this grid: x not found" in skipped


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


# -- one-line errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["--inits", "scratch,big"], "unknown init: big; choose from scratch, minilm"),
    (["--variants", "linkbert,x"], "unknown variant: x"),
    (["--inits", "scratch"], "missing input"),
    (["--budget-minutes", "-5"], "budget_minutes must be at least 0"),
])
def test_a_bad_setting_or_a_missing_input_is_one_line(extra, message, tmp_path, capsys):
    from linkbert.cli import main

    args = ["experiment", "ablation", "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
            "--mode", "smoke", *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


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
    write_tiny_hotpot(root / "hotpotqa" / "hotpot_distractor_1450.jsonl")
    return root


@pytest.mark.slow
def test_the_whole_grid_runs_resumes_and_writes_results(tmp_path, monkeypatch):
    from linkbert.cli import main

    data = make_tiny_data(tmp_path / "data")
    squad_texts = [p["context"] + " " + q["question"] for a in json.loads((data / "squad.json").read_text())["data"]
                   for p in a["paragraphs"] for q in p["qas"]]
    hotpot_texts = [r["question"] + " " + r["context"] for split in
                    hotpotqa_records(data / "hotpotqa" / "hotpot_distractor_1450.jsonl")[0].values() for r in split]
    minilm = build_tiny_bert(tmp_path / "minilm", TINY_TEXTS + squad_texts + hotpot_texts + ["history science things doc"])
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
        if result["init"] == "minilm":  # HotpotQA for the continued-pretraining init only
            assert 0 <= metrics["hotpot_f1"] <= 100 and result["hotpotqa_seconds"] > 0
            assert metrics["hotpot_bridge_f1"] is not None and metrics["hotpot_comparison_f1"] is not None
        else:
            assert metrics["hotpot_f1"] is None and result["hotpotqa_seconds"] is None
    # the planner's per-cell evaluation time of minilm is its init cell's, HotpotQA included
    reference = next(r for r in written["cells"] if r["init"] == "minilm" and r["variant"] == "init")
    assert written["plan"]["measured"]["minilm"]["eval_seconds"] >= reference["hotpotqa_seconds"]
    assert written["assets"]["hotpotqa"]["test"] == MODES["smoke"].hotpot_test
    text = (out / "results.md").read_text()
    assert "| HotpotQA F1 | bridge F1 | comparison F1 |" in text
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
    monkeypatch.setattr(planner, "measure_step_seconds", must_not_run)
    assert main(args) == 0  # everything done: nothing is recomputed, the results are rewritten
    assert json.loads((out / "results.json").read_text())["plan"]["steps"] == written["plan"]["steps"]
