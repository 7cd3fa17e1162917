"""``experiments/first_stage.py``: the masked-LM first stage, trained at smoke size on CPU. It is
shared by every variant of every seed, and what it was trained on is checked: the prepared corpus
with a graph of no link (so no withheld link), masked LM only, and no evaluation set (the QA and
HotpotQA questions never reach its corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import build_tiny_bert
from test_ablation import make_tiny_data
from test_graph_experiment import TOPICS, write_corpus

from linkbert.experiments import first_stage
from linkbert.experiments.ablation import assets as ablation_assets
from linkbert.experiments.ablation import cell as ablation_cell
from linkbert.experiments.ablation.grid import MODES as ABLATION_MODES
from linkbert.experiments.ablation.grid import Context as AblationContext
from linkbert.experiments.graph import assets, cell
from linkbert.experiments.graph.grid import MODES, VARIANTS, Context
from linkbert.graph import DocGraph


@pytest.fixture(scope="module")
def tiny_vocab(tmp_path_factory) -> Path:
    texts = [f"Paper {i} on {t}. {s}" for t, s in TOPICS.items() for i in range(40)]
    return build_tiny_bert(tmp_path_factory.mktemp("vocab") / "bert", texts + ["[UNK]"])


@pytest.fixture
def ctx(tmp_path, tiny_vocab) -> Context:
    """A smoke graph benchmark whose init is the first stage (the tokenizer: a tiny BERT's vocabulary)."""
    return Context(out=tmp_path / "bench", corpus_path=write_corpus(tmp_path / "corpus.jsonl"),
                   init=first_stage.FIRST_STAGE, init_source=first_stage.FIRST_STAGE, tokenizer=str(tiny_vocab),
                   mode=MODES["smoke"], mode_name="smoke", device="cpu")


def train_first_stage(ctx: Context, steps: int = 2) -> Path:
    return first_stage.first_stage_once(ctx, cell.pretrain_config(ctx, "linkbert", 0, steps, init="scratch"), steps)


def pairs_of(graph: DocGraph) -> set:
    src, dst = graph.edges()
    return {frozenset(p) for p in zip(src.tolist(), dst.tolist())}


def test_the_first_stage_is_masked_lm_on_the_corpus_without_its_links(ctx):
    assets.prepare_assets(ctx, list(VARIANTS))
    checkpoint = train_first_stage(ctx)
    record = first_stage.trained_on(ctx)
    run = yaml.safe_load((ctx.first_stage_dir / "run" / "config.yaml").read_text())
    # what it trained: masked LM only, from scratch, no linked pair drawn
    assert (run["objective"], run["init"], run["p_linked"]) == ("mlm-only", "scratch", 0.0)
    assert run["seed"] not in range(ctx.mode.seeds)  # its own seed, none of the cells'
    # what it read: the prepared corpus and a graph with no link at all, so never a withheld one
    assert Path(run["graph"]) == ctx.graph_dir("none").resolve() and record["graph"] == run["graph"]
    empty = DocGraph.load(run["graph"])
    assert empty.num_edges == 0 == record["graph_links"] and empty.num_nodes == ctx.corpus().store.num_documents
    withheld = {frozenset(p) for p in np.load(ctx.withheld_file).tolist()}
    assert withheld and not pairs_of(empty) & withheld
    assert record["corpus"] == str(ctx.prepared.resolve())
    # and no evaluation set: the prepared corpus holds each document's id, title and tokens, no label,
    # and neither input lies in eval/ (the few-shot sets, the link-prediction queries)
    assert {key for names in ctx.corpus().store.document_names() for key in names} <= {"id", "title"}
    eval_dir = ctx.eval_dir.resolve()
    inputs = (Path(record["corpus"]), Path(record["graph"]))
    assert not any(path == eval_dir or eval_dir in path.parents for path in inputs)
    assert record["steps"] == 2 and record["tokens"] > 0 and checkpoint == Path(record["checkpoint"])


def test_every_variant_of_every_seed_continues_the_one_first_stage(ctx, monkeypatch):
    assets.prepare_assets(ctx, list(VARIANTS))
    with pytest.raises(RuntimeError, match="the first stage must be trained before a cell continues it"):
        cell.pretrain_config(ctx, "linkbert", 0, 3)
    checkpoint = str(train_first_stage(ctx).resolve())
    starts = {(variant, seed): cell.pretrain_config(ctx, variant, seed, 3).init
              for variant in VARIANTS for seed in range(3)}
    assert set(starts.values()) == {checkpoint}, starts
    # asked again (a resumed grid, a --curve in the same folder), it is read back, whatever the steps
    monkeypatch.setattr(first_stage, "pretrain_once", lambda *a, **k: pytest.fail("the first stage was retrained"))
    assert str(train_first_stage(ctx, steps=7).resolve()) == checkpoint


def test_the_ablations_first_stage_never_reads_an_evaluation_question(tmp_path, tiny_vocab):
    data = make_tiny_data(tmp_path / "data")
    ctx = AblationContext(out=tmp_path / "grid", wikispeedia=data / "wikispeedia", squad=data / "squad.json",
                          minilm=None, mode=ABLATION_MODES["smoke"], mode_name="smoke", device="cpu",
                          hotpotqa=data / "hotpotqa" / "hotpot_distractor_1450.jsonl", tokenizer=str(tiny_vocab))
    ablation_assets.prepare_assets(ctx)
    config = ablation_cell.pretrain_config(ctx, first_stage.FIRST_STAGE, "linkbert", 0, 2, start="scratch")
    checkpoint = str(first_stage.first_stage_once(ctx, config, 2).resolve())
    record = first_stage.trained_on(ctx)
    assert record["graph_links"] == 0 and record["corpus"] == str(ctx.prepared.resolve())
    corpus = ctx.corpus()
    tokenizer, store = corpus.tokenizer(), corpus.store
    text = " ".join(tokenizer.decode(np.asarray(store.segment(s)).tolist()) for s in range(store.num_segments))
    questions = [json.loads(line)["question"] for name in ("qa/train.json", "qa/test.json", "hotpotqa/train.json",
                                                           "hotpotqa/test.json")
                 for line in (ctx.eval_dir / name).read_text().splitlines()]
    assert questions and text
    assert not [q for q in questions if tokenizer.decode(tokenizer(q, add_special_tokens=False)["input_ids"]) in text]
    for variant in ("bert", "linkbert", "random-links", "no-drp", "init"):
        for seed in (0, 1):
            assert ablation_cell.pretrain_config(ctx, first_stage.FIRST_STAGE, variant, seed, 3).init == checkpoint


# -- end to end (slow): the gpu modes' path at smoke size on CPU ---------------------------------------


def pretrained_starts(out: Path) -> set[str]:
    """The ``init`` every pretrained cell's run recorded (its config.yaml stays when the weights go)."""
    return {yaml.safe_load(p.read_text())["init"] for p in out.glob("**/seed-*/pretrain/config.yaml")}


@pytest.mark.slow
def test_the_graph_benchmark_from_a_first_stage_on_an_openalex_snapshot(tmp_path, capsys):
    from linkbert.cli import main

    snapshot = Path(__file__).parent.parent / "data" / "openalex" / "snapshot"
    out = tmp_path / "bench"
    args = ["experiment", "graph", "--corpus", f"openalex:{snapshot}", "--label-field",
            "primary_topic.field.display_name", "--shots", "1", "--out", str(out), "--mode", "smoke", "--init",
            "first-stage", "--tokenizer", "train", "--budget-minutes", "5", "--device", "cpu"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.index("] plan (smoke, init first-stage") < printed.index("[first stage") < printed.index("cell 1/")
    record = first_stage.trained_on(out_layout(out))
    assert record["graph_links"] == 0 and pretrained_starts(out) == {record["checkpoint"]}
    written = json.loads((out / "results.json").read_text())
    assert written["init"] == {"name": "first-stage", "first_stage": record}
    assert written["plan"]["first_stage_steps"] == record["steps"] and written["plan"]["measured"]["probe"]["steps"] == 2
    assert set(written["learned"]) == {"bert", "linkbert", "random-links"}
    text = (out / "results.md").read_text()
    assert "Init `first-stage` (a `tiny` BERT trained here with masked LM only" in text
    assert "## Did the pretraining learn?" in text and "## linkbert against bert, paired by seed" in text
    assert not (out / "probe" / "model").exists()  # the probe's weights go like a cell's


def out_layout(out: Path):
    from linkbert.experiments.layout import GridLayout

    layout = GridLayout()
    layout.out = out
    return layout


@pytest.mark.slow
def test_the_ablation_from_a_first_stage(tmp_path, tiny_vocab, capsys):
    from linkbert.cli import main

    data = make_tiny_data(tmp_path / "data")
    (data / "squad").mkdir()
    (data / "squad" / "dev-v1.1-part-a.json").write_text((data / "squad.json").read_text())
    out = tmp_path / "grid"
    args = ["experiment", "ablation", "--data-root", str(data), "--out", str(out), "--mode", "smoke", "--inits",
            "first-stage", "--variants", "bert,linkbert,random-links", "--seeds", "2", "--tokenizer", str(tiny_vocab),
            "--budget-minutes", "5", "--device", "cpu"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.index("] plan (smoke") < printed.index("[first stage") < printed.index("cell 1/")
    record = first_stage.trained_on(out_layout(out))
    assert pretrained_starts(out) == {record["checkpoint"]}
    written = json.loads((out / "results.json").read_text())
    assert written["first_stage"] == record and len(written["cells"]) == 6
    assert all(c["metrics"]["hotpot_f1"] is not None for c in written["cells"])  # a trained start: HotpotQA runs
    assert set(written["comparisons"]["first-stage"]) == {"linkbert vs bert", "linkbert vs random-links"}
    assert "Init `first-stage`: a `tiny` BERT trained here" in (out / "results.md").read_text()
