"""``experiments/ablation/plan.py``: the gpu mode's plan from costs measured on the device (made up
here; measured in the slow end-to-end test and the gpu_evidence.sh smoke) and what it prints
before any training; ``results.md`` saying which init the figures used."""

from __future__ import annotations

import time
from pathlib import Path

from linkbert.experiments.ablation import plan, results
from linkbert.experiments.ablation.grid import MODES, Context
from linkbert.experiments.first_stage import FIRST_STAGE

ASSETS = {"qa": {"skipped": "not evaluated in mode gpu"}, "category": {"skipped": "not evaluated in mode gpu"},
          "hotpotqa": {"train": 738, "test": 618, "windows": {"train": 3700, "test": 3100},
                       "test_types": {"bridge": 508, "comparison": 110}},
          "linkpred": {"queries": 1000, "candidates": 9}}


def gpu_context(out: Path) -> Context:
    return Context(out=out, wikispeedia=out / "wikispeedia", squad=out / "squad.json", minilm=None,
                   mode=MODES["gpu"], mode_name="gpu", device="cpu")


def test_the_gpu_plan_is_the_first_stage_and_the_comparison_printed_before_training(tmp_path, monkeypatch):
    ctx = gpu_context(tmp_path)
    mode = MODES["gpu"]
    measured = {"step_seconds": 0.025, "eval_seconds": 8.0, "run_overhead_seconds": 3.0,
                "evaluation_seconds": {"link_prediction": 1.5, "hotpotqa": 6.5}, "probe": {"steps": 30, "metrics": {}}}
    monkeypatch.setattr(plan, "measure_init", lambda ctx, init, seed: measured)
    made = plan.load_or_make_plan(ctx, list(mode.inits), list(mode.variants), list(range(mode.seeds)), 6,
                                  time.time(), fewer_seeds=True, optional=mode.optional_variants)
    assert made["inits"] == [FIRST_STAGE] and made["evaluations"] == ["linkpred", "hotpotqa"]
    assert {"bert", "linkbert", "random-links"} <= set(made["variants"]) and "init" not in made["variants"]
    assert 3 <= len(made["seeds"]) <= 5 and made["steps"][FIRST_STAGE] >= mode.min_steps
    assert made["first_stage_steps"] > made["steps"][FIRST_STAGE] and made["expected_minutes"] <= 6
    text = plan.describe_plan(made, ctx, ASSETS)
    for expected in (f"first-stage: {made['steps'][FIRST_STAGE]} pretraining steps per cell (batch 256 x 128 tokens",
                     "evaluation ~8 s per cell (link prediction 1.5 s, hotpotqa 6.5 s)",
                     f"first stage: {made['first_stage_steps']} steps of masked LM only (mini, Wikispeedia without",
                     "HotpotQA distractor (inits minilm, first-stage): 738 fine-tuning questions (3700 windows)",
                     "link prediction: 1000 withheld links x 10 candidates", "expected: "):
        assert expected in text, text
    assert "QA:" not in text and "category:" not in text  # the gpu mode does not run them
    assert bool(made["curve_steps"]) != any(n.startswith("no compute curve") for n in made["notes"])


def test_results_md_names_the_init_the_card_and_leaves_out_what_was_not_evaluated():
    record = {"preset": "mini", "steps": 1500, "batch_size": 256, "max_length": 128, "tokens": 45_000_000,
              "heldout_mlm_acc": 38.2}
    cells = [{"init": FIRST_STAGE, "variant": v, "seed": s,
              "metrics": {"hotpot_f1": 10.0 + s + k, "linkpred_mrr": 40.0 + s + 2 * k, "heldout_mlm_acc": 35.0,
                          "heldout_relation_acc": 70.0 if v == "linkbert" else 80.0}}
             for k, v in enumerate(("bert", "linkbert")) for s in range(5)]
    summary = results.summarise(cells)
    made = {"mode": "gpu", "cells": 10, "steps": {FIRST_STAGE: 400}, "inits": [FIRST_STAGE], "seeds": list(range(5)),
            "evaluations": ["linkpred", "hotpotqa"], "device": "NVIDIA H100 80GB HBM3", "tokens_per_step": 32768,
            "notes": ["no compute curve: its 20 more cells would leave 0 steps per cell instead of 400"]}
    checks = {FIRST_STAGE: results.learning_checks(summary[FIRST_STAGE])}
    comparisons = {FIRST_STAGE: {"linkbert vs bert": results.compare(summary[FIRST_STAGE], "linkbert", "bert",
                                                                      results.COMPARED)}}
    text = results.render_markdown(summary, made, ASSETS, cells, comparisons=comparisons, checks=checks,
                                   first_stage_record=record)
    assert "Mode `gpu` on NVIDIA H100 80GB HBM3, 10 of 10 cells done, 5 seeds" in text
    assert "Init `first-stage`: a `mini` BERT trained here with masked LM only for 1500 steps" in text
    assert "held-out MLM accuracy 38.2%" in text and "(400 steps per cell, <= 13,107,200 tokens)" in text
    ours = text.split("## The paper")[0]
    assert "| QA F1" not in ours and "SQuAD" not in ours and "category" not in ours
    assert "| HotpotQA F1 | bridge F1 | comparison F1 | link MRR (head) |" in text
    assert "### linkbert against bert, paired by seed" in text and "| link MRR (head) | +2.00" in text
    assert "### Compute curve\n\nno compute curve: its 20 more cells" in text
