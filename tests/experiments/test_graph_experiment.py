"""``linkbert experiment graph``: the withheld links absent from every pretraining graph, the
few-shot sets, the resume rule, the verdicts, the one-line errors, and (slow) the whole benchmark
end to end on a small synthetic labelled, linked corpus. The paired statistics themselves are
tested in test_metrics.py, the withholding of pairs in test_graph.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_bert

from linkbert.errors import ConfigError
from linkbert.experiments.graph import assets, cell, evaluate, plan, results, run
from linkbert.experiments.graph.grid import MODES, VARIANTS, Context
from linkbert.files import write_json
from linkbert.graph import DocGraph

TOPICS = {
    "birds": "Birds fly over the lake. Eagles and owls hunt small animals at night.",
    "ships": "Ships sail across the ocean. Sailors steer the boats through storms and waves.",
    "stars": "Stars shine in the night sky. Telescopes show planets and distant galaxies.",
}


def write_corpus(path: Path, per_class: int = 8, labelled: bool = True, linked: bool = True) -> Path:
    """A small JSON-lines corpus: documents of three topics, each citing two of its own topic
    and one of another, listed both ways (as Cora lists citations)."""
    names = sorted(TOPICS)
    n = per_class * len(names)
    links: dict[int, set] = {i: set() for i in range(n)}
    for i in range(n):
        topic = i % len(names)
        for j in ((i + 3) % n, (i + 6) % n, (i + 1) % n):  # +3, +6 keep the topic, +1 changes it
            links[i].add(j)
            links[j].add(i)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            topic = names[i % len(names)]
            record = {"id": f"d{i}", "title": f"Paper {i} on {topic}",
                      "text": f"Paper {i} on {topic}. " + " ".join([TOPICS[topic]] * (2 + i % 3)),
                      "links": [f"d{j}" for j in sorted(links[i])] if linked else []}
            if labelled:
                record["label"] = topic
            f.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny_init(tmp_path_factory) -> Path:
    texts = [f"Paper {i} on {t}. {s}" for t, s in TOPICS.items() for i in range(40)]
    return build_tiny_bert(tmp_path_factory.mktemp("init") / "bert", texts + ["[UNK]"])


def smoke_context(out: Path, corpus: Path, init: Path) -> Context:
    return Context(out=out, corpus_path=corpus, init=str(init), init_source=str(init), tokenizer=str(init),
                   mode=MODES["smoke"], mode_name="smoke", device="cpu")


@pytest.fixture
def ctx(tmp_path, tiny_init) -> Context:
    return smoke_context(tmp_path / "bench", write_corpus(tmp_path / "corpus.jsonl"), tiny_init)


# -- the withheld links ------------------------------------------------------------------------------


def pairs_of(graph: DocGraph) -> set:
    src, dst = graph.edges()
    return {frozenset(p) for p in zip(src.tolist(), dst.tolist())}


def test_withheld_links_are_in_no_pretraining_graph(ctx):
    found = assets.prepare_assets(ctx, list(VARIANTS))
    withheld = {frozenset(p) for p in np.load(ctx.withheld_file).tolist()}
    assert len(withheld) == found["graphs"]["withheld_pairs"] > 0
    assert withheld <= pairs_of(ctx.corpus().graph())  # they are real links of the corpus
    for variant in VARIANTS:
        config = cell.pretrain_config(ctx, variant, seed=0, steps=3)
        assert config.graph, f"{variant} would pretrain on the prepared corpus's own graph"
        assert not pairs_of(DocGraph.load(config.graph)) & withheld, variant
    queries = json.loads((ctx.eval_dir / "linkpred.json").read_text())["queries"]
    full = pairs_of(ctx.corpus().graph())
    for q in queries:
        assert frozenset((q["source"], q["target"])) in withheld
        assert not any(frozenset((q["source"], c)) in full for c in q["candidates"])


# -- the few-shot sets -----------------------------------------------------------------------------


def test_fewshot_sets_are_fixed_per_seed_nested_and_disjoint_from_the_test_set():
    labels = {d: "abc"[d % 3] for d in range(60)}
    split = assets.fewshot_split(labels, (2, 5), test_docs=20, seed=4)
    assert split == assets.fewshot_split(labels, (2, 5), test_docs=20, seed=4)
    assert split != assets.fewshot_split(labels, (2, 5), test_docs=20, seed=5)
    for k in (2, 5):
        counts = {c: sum(labels[d] == c for d in split["train"][k]) for c in "abc"}
        assert counts == {"a": k, "b": k, "c": k}
        assert not set(split["train"][k]) & set(split["test"])
    assert set(split["train"][2]) <= set(split["train"][5]) and len(split["test"]) == 20


def test_every_variant_of_a_seed_reads_the_same_fewshot_files(ctx):
    assets.prepare_assets(ctx, ["linkbert"])
    first = assets.build_fewshot_data(ctx, 0)
    files = {p.relative_to(ctx.fewshot_dir(0)): p.read_text() for p in ctx.fewshot_dir(0).rglob("*.json")}
    assert assets.build_fewshot_data(ctx, 0) == first  # read back, not drawn again
    for k in ctx.mode.shots:
        train = [json.loads(line) for line in files[Path(f"k{k}/train.json")].splitlines()]
        test = [json.loads(line) for line in files[Path(f"k{k}/test.json")].splitlines()]
        assert len(train) == 3 * k and not {r["id"] for r in train} & {r["id"] for r in test}
    assert files[Path("k1/test.json")] == files[Path("k2/test.json")]


def test_too_few_documents_per_class_is_refused():
    with pytest.raises(ConfigError, match="too few labelled documents per class for 5-shot sets: b \\(3\\)"):
        assets.check_shots({**{d: "a" for d in range(10)}, **{d: "b" for d in range(10, 13)}}, (1, 5))


def test_one_class_is_refused_before_pretraining_in_words_a_user_can_act_on():
    """Before: accepted, then sklearn's "needs samples of at least 2 classes" after pretraining."""
    with pytest.raises(ConfigError, match="every labelled document has the same label \\('a', 30 documents\\): "
                                          "few-shot classification needs at least two classes"):
        assets.check_shots({d: "a" for d in range(30)}, (1, 5))


# -- the resume rule -------------------------------------------------------------------------------


def fake_pipeline(monkeypatch, calls: dict) -> None:
    """Pretraining, evaluation and the step measurement replaced by counters."""

    def pretrain_cell(ctx, variant, seed, steps, folder, init=None):
        calls["pretrain"] = calls.get("pretrain", 0) + 1
        return folder, {"step": steps if VARIANTS[variant].pretrain else 0}

    def evaluate_model(ctx, checkpoint, folder, seed, classify, seconds=None):
        calls["evaluate"] = calls.get("evaluate", 0) + 1
        keys = [k for k, _ in results.compared_metrics(ctx.mode.shots, classify)]
        return {k: float(seed + len(folder.parent.name)) for k in keys}

    monkeypatch.setattr(cell, "pretrain_cell", pretrain_cell)
    monkeypatch.setattr(evaluate, "evaluate_model", evaluate_model)
    monkeypatch.setattr(plan, "measure_step_seconds", lambda ctx: 0.01)


def test_a_finished_cell_is_never_recomputed(ctx, monkeypatch):
    calls: dict = {}
    fake_pipeline(monkeypatch, calls)
    variants, seeds = ["bert", "linkbert", "random-links", "init"], [0, 1]
    run.run_grid(ctx, variants, seeds, budget_minutes=5)
    written = json.loads((ctx.out / "results.json").read_text())
    points = written["plan"]["curve_steps"]  # the smoke mode's in-grid compute curve: linkbert and bert at each
    assert points and calls == {"pretrain": 8 + 4 * len(points), "evaluate": 8 + 4 * len(points)}  # every cell once
    assert set(written["comparisons"]) == {"linkbert vs bert", "linkbert vs random-links"}
    calls.clear()
    run.run_grid(ctx, variants, seeds, budget_minutes=5)
    assert calls == {}  # everything was done: nothing is recomputed
    assert json.loads((ctx.out / "plan.json").read_text())["steps"] == written["plan"]["steps"]


def test_an_unfinished_cell_keeps_its_pretraining_and_evaluations(ctx, monkeypatch):
    import linkbert.pretrain.run

    folder = ctx.cell_dir("linkbert", 0)
    write_json(folder / "pretrain" / "summary.json", {"step": 3})
    (folder / "pretrain" / "checkpoints" / "step-00000003").mkdir(parents=True)
    monkeypatch.setattr(linkbert.pretrain.run, "pretrain", lambda *a: pytest.fail("finished pretraining was rerun"))
    checkpoint, summary = cell.pretrain_cell(ctx, "linkbert", 0, 3, folder / "pretrain")
    assert summary["step"] == 3 and checkpoint.name == "step-00000003"
    write_json(folder / "linkpred.json", {"head": None, "embedding": {"mrr": 0.5, "hits1": 0.25}})
    assets.prepare_assets(ctx, ["linkbert"])
    monkeypatch.setattr(evaluate, "load_pretraining_model", lambda *a: pytest.fail("a kept evaluation was redone"))
    metrics = evaluate.evaluate_model(ctx, checkpoint, folder, 0, classify=False)
    assert metrics["lp_emb_mrr"] == 50.0 and metrics["lp_head_mrr"] is None


def test_a_corpus_without_labels_gets_link_prediction_only(tmp_path, tiny_init, monkeypatch):
    ctx = smoke_context(tmp_path / "bench", write_corpus(tmp_path / "c.jsonl", labelled=False), tiny_init)
    fake_pipeline(monkeypatch, {})
    run.run_grid(ctx, ["bert", "linkbert", "init"], [0, 1], budget_minutes=5)
    text = (ctx.out / "results.md").read_text()
    assert "No document labels in this corpus: few-shot classification was skipped" in text
    comparison = json.loads((ctx.out / "results.json").read_text())["comparisons"]["linkbert vs bert"]
    assert set(comparison) == {"lp_head_mrr", "lp_head_hits1", "lp_emb_mrr", "lp_emb_hits1"}


# -- verdicts --------------------------------------------------------------------------------------


def test_verdicts_name_the_winner_or_say_no_resolvable_difference():
    cells = [{"variant": v, "seed": s, "metrics": {"lp_emb_mrr": base + s + (0.1 * s if v == "linkbert" else 0)}}
             for v, base in (("linkbert", 52.0), ("bert", 50.0), ("random-links", 52.0)) for s in range(5)]
    summary = results.summarise(cells)
    keys = [("lp_emb_mrr", "link MRR (embedding)")]
    versus_bert = results.compare(summary, "linkbert", "bert", keys)["lp_emb_mrr"]
    assert versus_bert["verdict"].startswith("linkbert beats bert (p=")
    assert versus_bert["mean_diff"] == pytest.approx(2.2)
    flipped = results.compare(summary, "bert", "linkbert", keys)["lp_emb_mrr"]
    assert flipped["verdict"].startswith("linkbert beats bert")
    noisy = [{"variant": v, "seed": s, "metrics": {"m": x}} for v, xs in (("a", [1, 5, 2, 6, 3]), ("b", [2, 4, 3, 5, 2]))
             for s, x in enumerate(xs)]
    verdict = results.compare(results.summarise(noisy), "a", "b", [("m", "m")])["m"]["verdict"]
    assert verdict.startswith("no resolvable difference")


def test_the_curve_reports_whether_the_gap_grows():
    cells = [{"variant": v, "seed": s, "minutes": m, "steps": int(m * 10),
              "metrics": {"lp_emb_mrr": 50 + s + (gap if v == "linkbert" else 0)}}
             for m, gap in ((2, 1.0), (8, 3.0), (32, 6.0)) for v in ("linkbert", "bert") for s in range(4)
             for gap in [gap + 0.1 * s * (m == 32)]]
    trend = results.curve_summary(cells, [("lp_emb_mrr", "t")])
    entry = trend["metrics"]["lp_emb_mrr"]
    assert trend["points"] == ["2", "8", "32"] and entry["gap"]["8"]["mean"] == pytest.approx(3.0)
    assert entry["growth"]["verdict"].startswith("the gap grows with compute")


# -- one-line errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("corpus, message", [
    ("cora.jsonl", "--corpus must be FORMAT:PATH with FORMAT one of jsonl, "),
    ("csv:data.csv", "--corpus must be FORMAT:PATH"),
    ("jsonl:/nonexistent/cora.jsonl", "no such file or folder"),
])
def test_a_bad_corpus_argument_is_one_line(corpus, message, tmp_path, capsys):
    from linkbert.cli import main

    assert main(["experiment", "graph", "--corpus", corpus, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("flag, value, message", [
    ("--variants", "bert,nope", "unknown variant: nope; choose from bert"),
    ("--curve", "2,x", "--curve must be a comma list of positive numbers, got '2,x'"),
    ("--shots", "1.5", "--shots must be whole numbers"),
    ("--init", "/nonexistent/bert", "expected scratch, minilm, first-stage or a BERT checkpoint folder"),
    ("--seeds", "-1", "seeds must be at least 0"),
    ("--mode", "fast", "mode must be one of cpu, gpu, smoke (got 'fast')"),
])
def test_a_bad_setting_is_one_line(flag, value, message, tmp_path, tiny_init, capsys):
    from linkbert.cli import main

    corpus = write_corpus(tmp_path / "c.jsonl")
    args = ["experiment", "graph", "--corpus", f"jsonl:{corpus}", "--out", str(tmp_path / "o"),
            "--init", str(tiny_init), flag, value]
    try:
        assert main(args) == 2
    except SystemExit as e:  # argparse's own check of a choice
        assert e.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1], err
    assert not (tmp_path / "o" / "prepared-62").exists()  # refused before any work


def test_a_corpus_without_links_is_one_line(tmp_path, tiny_init, capsys):
    from linkbert.cli import main

    corpus = write_corpus(tmp_path / "c.jsonl", linked=False)
    args = ["experiment", "graph", "--corpus", f"jsonl:{corpus}", "--out", str(tmp_path / "o"), "--mode", "smoke",
            "--init", str(tiny_init)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "has no links between its documents" in err[-1]


# -- end to end (slow) -------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_smoke_grid_and_curve_run_end_to_end(tmp_path, tiny_init, monkeypatch):
    from linkbert.cli import main

    corpus = write_corpus(tmp_path / "corpus.jsonl")
    out = tmp_path / "bench"
    args = ["experiment", "graph", "--corpus", f"jsonl:{corpus}", "--out", str(out), "--mode", "smoke",
            "--init", str(tiny_init), "--budget-minutes", "5", "--variants", "all"]
    assert main(args) == 0
    written = json.loads((out / "results.json").read_text())
    assert {"plan", "assets", "summary", "comparisons", "curve", "cells"} <= set(written)
    assert set(written["summary"]) == {*VARIANTS, "bow"}
    keys = {k for k, _ in results.compared_metrics((1, 2), True)}
    for result in written["cells"]:
        assert result["steps"] == (written["plan"]["steps"] if VARIANTS.get(result["variant"], VARIANTS["init"]).pretrain
                                   else 0)
        values = {k: v for k, v in result["metrics"].items() if v is not None}
        assert all(0 <= v <= 100 for v in values.values())
        if result["variant"] not in ("bow", "no-drp", "init"):
            assert keys <= set(values), result["variant"]
    for name in ("linkbert vs bert", "linkbert vs random-links"):
        entry = written["comparisons"][name]["ft_k2_acc"]
        assert {"mean_diff", "ci_low", "ci_high", "t_p", "wilcoxon_p", "d_z", "verdict"} <= set(entry)
    text = (out / "results.md").read_text()
    assert "## linkbert against bert, paired by seed" in text and "| bow |" in text
    assert not list(out.glob("cells/*/seed-*/model"))  # weights are not kept by default

    monkeypatch.setattr(cell, "pretrain_cell", lambda *a, **k: pytest.fail("a finished cell was recomputed"))
    monkeypatch.setattr(plan, "measure_step_seconds", lambda *a: pytest.fail("a saved plan was re-measured"))
    assert main(args) == 0
    monkeypatch.undo()
    assert main(args[:6] + ["--mode", "smoke", "--init", str(tiny_init), "--seeds", "2", "--curve", "0.05,0.1"]) == 0
    curve = json.loads((out / "results.json").read_text())["curve"]
    assert curve["points"] == ["0.05", "0.1"] and "growth" in curve["metrics"]["lp_emb_mrr"]
    assert "## Compute curve" in (out / "results.md").read_text()


# -- any corpus format prepare reads -----------------------------------------------------------------

OPENALEX = Path(__file__).parent.parent / "data" / "openalex" / "snapshot"  # 41 real works, 24 citations among 30
TOPIC_FIELD = "primary_topic.field.display_name"


def test_the_benchmark_reads_an_openalex_snapshot_with_labels_from_a_field(tmp_path, tiny_init):
    from linkbert.corpus.labels import document_labels

    ctx = Context(out=tmp_path / "bench", corpus_path=OPENALEX, init=str(tiny_init), init_source=str(tiny_init),
                  tokenizer=str(tiny_init), mode=dataclasses.replace(MODES["smoke"], shots=(1,)), mode_name="smoke",
                  device="cpu", corpus_format="openalex", reader_options={"label_field": TOPIC_FIELD})
    found = assets.prepare_assets(ctx, ["bert", "linkbert", "random-links"])
    assert found["corpus"]["format"] == "openalex" and found["corpus"]["files"] == 1
    assert found["graphs"]["full"]["nodes"] == 30 and found["graphs"]["withheld_pairs"] > 0
    labels = document_labels("openalex", OPENALEX, label_field=TOPIC_FIELD)
    assert found["labels"]["documents"] == 30 and set(found["labels"]["classes"]) <= set(labels.values())
    split = assets.build_fewshot_data(ctx, 0)
    train = [json.loads(line) for line in (ctx.fewshot_dir(0) / "k1" / "train.json").read_text().splitlines()]
    assert len(train) == len(found["labels"]["classes"]) == len(split["train"][1])
    for record in train:  # the work's title and abstract (rebuilt from its inverted index), its field as label
        assert record["label"] == labels[record["id"]] and len(record["sentence"].split()) > 20
    assert assets.check_corpus_identity(ctx) == found["corpus"]  # read back on a rerun


@pytest.mark.parametrize("args, message", [
    (["--corpus", f"openalex:{OPENALEX}", "--title-field", "name"],
     "--title-field does not apply to --format openalex (it does to jsonl, parquet)"),
    (["--corpus", f"jsonl:{OPENALEX}", "--edges", "/nonexistent/edges.csv"], "--edges /nonexistent/edges.csv: no such"),
])
def test_a_field_option_the_format_does_not_take_is_one_line(args, message, tmp_path, tiny_init, capsys):
    from linkbert.cli import main

    assert main(["experiment", "graph", "--out", str(tmp_path / "o"), "--init", str(tiny_init), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
