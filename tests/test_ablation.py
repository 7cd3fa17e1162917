"""``linkbert experiment ablation``: link withholding, ablation graphs, distractors, the link-prediction
scorer, the resume rule, and (slow) the whole tool end to end on a tiny Wikispeedia-format corpus."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
import torch
from conftest import TINY_TEXTS

from linkbert.experiments import ablation as A
from linkbert.graph import DocGraph


def small_graph(n: int = 40, seed: int = 1) -> DocGraph:
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n), 6)
    dst = rng.integers(0, n, size=len(src))
    return DocGraph.from_edges(src, dst, n)


def edges(graph: DocGraph) -> set[tuple[int, int]]:
    src = np.repeat(np.arange(graph.num_nodes), graph.out_degree)
    return set(zip(src.tolist(), np.asarray(graph.indices).tolist()))


# -- graphs --------------------------------------------------------------------------------------


def test_withheld_links_and_their_reverse_are_absent_from_pretraining():
    graph = small_graph()
    train, withheld = A.withhold_links(graph, 0.1)
    assert len(withheld) == round(0.1 * graph.num_edges)
    full, kept = edges(graph), edges(train)
    pairs = {tuple(p) for p in withheld.tolist()}
    assert pairs <= full  # withheld links are real links
    assert not kept & (pairs | {(b, a) for a, b in pairs})  # neither direction is left to pretrain on
    assert kept == {e for e in full if e not in pairs and e[::-1] not in pairs}  # nothing else is lost
    train.validate()
    again_train, again = A.withhold_links(graph, 0.1)  # deterministic
    assert np.array_equal(again, withheld) and edges(again_train) == kept
    assert not np.array_equal(A.withhold_links(graph, 0.1, seed=5)[1], withheld)


def test_random_links_keep_out_degrees_and_avoid_withheld_pairs():
    graph = small_graph()
    train, withheld = A.withhold_links(graph, 0.2)
    random_links = A.random_graph(train.out_degree, seed=0, exclude=withheld)
    random_links.validate()  # no self-link, no duplicate
    assert np.array_equal(random_links.out_degree, train.out_degree)
    pairs = {tuple(p) for p in withheld.tolist()}
    assert not edges(random_links) & (pairs | {(b, a) for a, b in pairs})
    assert edges(random_links) != edges(train)
    assert edges(A.random_graph(train.out_degree, seed=0, exclude=withheld)) == edges(random_links)


def test_tfidf_graph_without_withheld_pairs():
    from linkbert.link_builders import tfidf_links

    texts = [f"{TINY_TEXTS[i % 5]} {TINY_TEXTS[(i + 1) % 5]}" for i in range(10)]
    indptr, indices = tfidf_links(texts, k=3, min_df=1, max_df=1.0)
    full = DocGraph(indptr, indices)
    some = np.array([[s, int(full.neighbors(s)[0])] for s in (0, 3) if len(full.neighbors(s))])
    graph = A.without_pairs(indptr, indices, some)
    assert (graph.out_degree <= 3).all()
    assert edges(graph) == {e for e in edges(full) if e not in {tuple(p) for p in some.tolist()}
                            and e[::-1] not in {tuple(p) for p in some.tolist()}}


# -- distractors ---------------------------------------------------------------------------------


def test_distractors_come_from_other_articles_and_keep_the_answers():
    paragraphs = {"A": ["Alpha one.", "Alpha two."], "B": ["Beta one.", "Beta two."], "C": ["Gamma."]}
    records = [{"id": f"q{i}", "title": "A", "question": "Which?", "context": "The answer is forty two.",
                "answers": {"answer_start": [14], "text": ["forty two"]}} for i in range(12)]
    out = A.add_distractors(records, paragraphs)
    assert out == A.add_distractors(records, paragraphs)  # deterministic
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


# -- link prediction -----------------------------------------------------------------------------


def test_rank_metrics_on_a_hand_made_case():
    true = np.array([0.9, 0.5, 0.1, 0.3])
    negatives = np.array([[0.1, 0.2], [0.6, 0.1], [0.5, 0.7], [0.3, 0.0]])  # ranks 1, 2, 3, 2 (a tie counts against)
    m = A.rank_metrics(true, negatives)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    assert m["hits1"] == 0.25 and m["hits3"] == 1.0 and m["candidates"] == 3
    assert m["chance_mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3) and m["chance_hits1"] == pytest.approx(1 / 3)
    constant = A.rank_metrics(np.zeros(4), np.zeros((4, 2)))
    assert constant["hits1"] == 0.0 and constant["mrr"] == pytest.approx(1 / 3)


class _FakeStore:
    """Documents of one segment each: document d is the segment [10 + d, 10 + d]."""

    def __init__(self, n):
        self.document_offsets = np.arange(n + 1)

    def segment(self, s):
        return np.array([10 + s, 10 + s])


class _LinkedIfSameParity(torch.nn.Module):
    """A relation head that says 'linked' when A's and B's first tokens have the same parity;
    embeddings: one-hot of the token's parity."""

    relation_head = torch.nn.Linear(1, 3)

    def forward(self, input_ids, token_type_ids, attention_mask):
        a = input_ids[:, 1]
        b = input_ids[torch.arange(len(input_ids)), (token_type_ids == 1).int().argmax(1)]
        logits = torch.zeros(len(input_ids), 3)
        logits[:, 2] = 5.0 * ((a % 2) == (b % 2)).float()
        return type("Out", (), {"relation_logits": logits})

    def encode(self, ids, types, mask):
        hidden = torch.nn.functional.one_hot(ids % 2, 2).float()
        return hidden, None


def test_link_prediction_scorer_ranks_with_the_relation_head_and_embeddings():
    special = {"cls_id": 1, "sep_id": 2, "pad_id": 0}
    # source 0 (even): the target 2 is even, the candidates odd -> rank 1; source 1 (odd): target 4 even -> last
    queries = [{"source": 0, "target": 2, "candidates": [1, 3, 5]}, {"source": 1, "target": 4, "candidates": [3, 5, 7]}]
    result = A.score_link_prediction(_LinkedIfSameParity(), _FakeStore(8), queries, special, max_length=16)
    assert result["head"]["hits1"] == 0.5 and result["head"]["mrr"] == pytest.approx((1 + 1 / 4) / 2)
    # the [CLS]/[SEP] ids (1, 2) dilute the parity one-hot the same way for every candidate
    assert result["embedding"]["hits1"] == 0.5
    no_head = _LinkedIfSameParity()
    no_head.relation_head = None
    assert A.score_link_prediction(no_head, _FakeStore(8), queries, special, max_length=16)["head"] is None


def test_pair_batch_matches_the_pretraining_layout():
    batch = A.pair_batch([np.array([5, 6, 7])], [np.array([8, 9])], cls_id=1, sep_id=2, pad_id=0, max_length=7)
    assert batch["input_ids"].tolist() == [[1, 5, 6, 2, 8, 9, 2]]  # A cut first: the longer one
    assert batch["token_type_ids"][0, -1].item() == 1 and batch["token_type_ids"][0, 0].item() == 0


# -- the resume rule -----------------------------------------------------------------------------


def smoke_context(out: Path, data: Path | None = None, minilm: Path | None = None) -> A.Context:
    data = data or out
    return A.Context(out=out, wikispeedia=data / "wikispeedia", squad=data / "squad.json", minilm=minilm,
                     mode=A.MODES["smoke"], mode_name="smoke", device="cpu")


def test_a_cell_with_result_json_is_never_recomputed(tmp_path, monkeypatch):
    ctx = smoke_context(tmp_path)
    folder = ctx.cell_dir("scratch", "linkbert", 0)
    stored = {"init": "scratch", "variant": "linkbert", "seed": 0, "steps": 3, "metrics": {"qa_f1": 1.0}}
    A.write_json_atomic(folder / "result.json", stored)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(A, "pretrain_cell", must_not_run)
    monkeypatch.setattr(A, "evaluate_cell", must_not_run)
    assert A.run_cell(ctx, "scratch", "linkbert", 0, steps=3) == stored
    assert not list(folder.parent.glob(".*tmp"))  # written atomically, nothing left behind


def test_ordering_line_and_paper_table_are_labelled():
    results = [{"init": "scratch", "variant": v, "seed": s, "metrics": {"qa_f1": f + s}}
               for v, f in (("linkbert", 20.0), ("tfidf", 10.0), ("random-links", 10.5)) for s in (0, 1)]
    summary = A.summarise(results)
    assert summary["scratch"]["linkbert"]["qa_f1"]["mean"] == 20.5
    assert A.ordering(summary["scratch"], "qa_f1", True) == "linkbert > random-links ≈ tfidf"
    plan = {"mode": "smoke", "cells": 6, "steps": {"scratch": 3}}
    text = A.render_markdown(summary, plan, {"category": {"majority_baseline": 50.0}}, results)
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
    from test_finetune_run import build_tiny_bert

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
    results = json.loads((out / "results.json").read_text())
    assert len(results["cells"]) == 8  # 4 variants x 2 inits x 1 seed
    for cell in results["cells"]:
        metrics = cell["metrics"]
        assert cell["steps"] == (0 if cell["variant"] == "init" else results["plan"]["steps"][cell["init"]])
        assert 0 <= metrics["qa_f1"] <= 100 and 0 <= metrics["category_acc"] <= 100
        assert (metrics["linkpred_mrr"] is None) == (cell["variant"] == "no-drp")
    text = (out / "results.md").read_text()
    assert "## Ours: init `scratch`" in text and "## Ours: init `minilm`" in text and "NOT our numbers" in text
    assert not list(out.glob("cells/*/*/seed-0/model"))  # weights are not kept by default
    # the withheld links are absent from every pretraining graph
    withheld = {tuple(p) for p in np.load(out / "graphs" / "withheld.npy").tolist()}
    for name in ("hyperlinks", "tfidf", "random"):
        assert not edges(DocGraph.load(out / "graphs" / name)) & withheld

    def must_not_run(*a, **k):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(A, "pretrain_cell", must_not_run)
    monkeypatch.setattr(A, "evaluate_cell", must_not_run)
    monkeypatch.setattr(A, "measure_step_seconds", must_not_run)
    assert main(args) == 0  # everything done: nothing is recomputed, the results are rewritten
    assert json.loads((out / "results.json").read_text())["plan"]["steps"] == results["plan"]["steps"]
