"""The benchmark's results: every cell's figures, mean ± std per variant, whether each variant's
pretraining learned at all, the seed-paired comparisons of ``linkbert`` with ``bert`` and
``random-links`` (``experiments.paired``: Holm's adjustment, a plain-language verdict per metric,
none for a variant too short to learn), and the compute curve's gap; ``results.json`` and
``results.md``."""

from __future__ import annotations

import json
import time

import numpy as np

from linkbert.experiments import first_stage
from linkbert.experiments.graph.grid import BOW, COMPARISONS, CURVE_VARIANTS, VARIANTS, Context
from linkbert.experiments.paired import (compare, comparison_lines, curve_summary, curve_unit, learning_check,
                                         learning_lines, summarise, unjudged_metrics)
from linkbert.files import write_json, write_text
from linkbert.objectives import OBJECTIVES

HEAD_METRICS = ("lp_head_mrr", "lp_head_hits1")
LINK_METRICS = (("lp_head_mrr", "link MRR (head)"), ("lp_head_hits1", "link hits@1 (head)"),
                ("lp_emb_mrr", "link MRR (embedding)"), ("lp_emb_hits1", "link hits@1 (embedding)"))


def class_metrics(shots) -> list[tuple[str, str]]:
    """(key, title) of the few-shot figures, for each k."""
    out = []
    for how, name in (("ft", "fine-tuned"), ("probe", "probe")):
        for k in shots:
            out += [(f"{how}_k{k}_acc", f"{name} k={k} acc."), (f"{how}_k{k}_f1", f"{name} k={k} macro-F1")]
    return out


def compared_metrics(shots, classify: bool) -> list[tuple[str, str]]:
    return (class_metrics(shots) if classify else []) + list(LINK_METRICS)


def load_cells(ctx: Context) -> tuple[list[dict], list[dict], list[dict]]:
    """(grid cells, ``--curve`` cells, in-grid curve cells): every ``result.json`` there is."""
    def read(pattern: str) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(ctx.out.glob(pattern))]

    return (read("cells/*/seed-*/result.json"), read("curve/*/*/seed-*/result.json"),
            read("curve-steps/*/*/seed-*/result.json"))


def learning_checks(summary: dict) -> dict:
    """``experiments.paired.learning_check`` of every pretrained variant."""
    return {v: learning_check(row, OBJECTIVES[VARIANTS[v].objective]) for v, row in summary.items()
            if v in VARIANTS and VARIANTS[v].pretrain}


def write_results(ctx: Context, assets: dict) -> dict:
    """Collect every finished cell into ``results.json`` and ``results.md``; returns the summary."""
    classify = assets["labels"] is not None
    keys = compared_metrics(ctx.mode.shots, classify)
    grid, curve, grid_curve = load_cells(ctx)
    summary = summarise(grid)
    checks = learning_checks(summary)
    comparisons = {f"{a} vs {b}": compare(summary, a, b, keys, unjudged_metrics(checks, (a, b), keys, HEAD_METRICS))
                   for a, b in COMPARISONS if a in summary and b in summary}
    trend = curve_summary(curve, keys)  # --curve's, by minutes per cell
    # the in-grid curve: its points, then the grid's own linkbert and bert cells at the plan's steps
    steps_trend = (curve_summary(grid_curve + [c for c in grid if c["variant"] in CURVE_VARIANTS], keys, by="steps")
                   if grid_curve else {})
    plan = _read(ctx.out / "plan.json") or _read(ctx.out / "curve_plan.json") or {}
    record = first_stage.trained_on(ctx)
    write_json(ctx.out / "results.json", {"plan": plan, "curve_plan": _read(ctx.out / "curve_plan.json"),
                                          "init": {"name": plan.get("init", ctx.init), "first_stage": record},
                                          "assets": assets, "summary": summary, "learned": checks,
                                          "comparisons": comparisons, "curve": trend, "steps_curve": steps_trend,
                                          "cells": grid, "curve_cells": curve + grid_curve})
    write_text(ctx.out / "results.md", render_markdown(ctx, assets, plan, summary, comparisons, trend, grid, checks,
                                                       steps_trend))
    return {"summary": summary, "comparisons": comparisons, "curve": trend, "steps_curve": steps_trend}


def _read(path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


# -- results.md --------------------------------------------------------------------------------------

def render_markdown(ctx: Context, assets: dict, plan: dict, summary: dict, comparisons: dict, trend: dict,
                    cells: list[dict], checks: dict | None = None, steps_trend: dict | None = None) -> str:
    classify = assets["labels"] is not None
    out = _header(ctx, assets, plan, cells)
    out += learning_lines(checks or {}, summary)
    if classify:
        out += _table("Few-shot classification (%, mean ± std over seeds)", summary, class_metrics(ctx.mode.shots))
    else:
        out += ["", "**No document labels in this corpus: few-shot classification was skipped**; "
                    "link prediction only."]
    out += _table("Link prediction of the withheld links (%, mean ± std over seeds)", summary, LINK_METRICS)
    out += _chance(assets["linkpred"]["candidates"] + 1)
    for name, result in comparisons.items():
        out += comparison_lines(*name.split(" vs "), result, compared_metrics(ctx.mode.shots, classify))
    if steps_trend:
        out += _curve(steps_trend, compared_metrics(ctx.mode.shots, classify))
    elif any(note.startswith("no compute curve") for note in plan.get("notes", [])):
        out += ["", "## Compute curve", "", next(n for n in plan["notes"] if n.startswith("no compute curve")) + "."]
    if trend:
        out += _curve(trend, compared_metrics(ctx.mode.shots, classify))
    out += _notes(len(plan.get("seeds", [])))
    return "\n".join(out) + "\n"


def _header(ctx: Context, assets: dict, plan: dict, cells: list[dict]) -> list[str]:
    labels, graphs = assets["labels"], assets["graphs"]
    expected = plan.get("cells", 0)
    done = sum(1 for c in cells if c["variant"] != BOW)
    lines = ["# Did the links help? The link benchmark", "",
             f"Corpus `{assets['corpus']['file']}`: {graphs['full']['nodes']} documents, {graphs['full']['edges']} "
             f"links, {graphs['withheld_pairs']} linked pairs withheld from every pretraining graph (both directions). "
             f"Init `{plan.get('init', ctx.init)}`{_init_note(ctx, plan)}; {plan.get('steps', 'n/a')} pretraining "
             f"steps of {ctx.mode.batch_size} x {ctx.mode.max_length} tokens per cell (<= "
             f"{_tokens(plan.get('steps'), ctx)} tokens); {len(plan.get('seeds', []))} seeds; {done} of {expected} "
             f"grid cells done; mode `{plan.get('mode', ctx.mode_name)}` on {plan.get('device', ctx.device)}. "
             f"Generated {time.strftime('%Y-%m-%d %H:%M')}.", ""]
    lines += [f"Plan: {note}." for note in plan.get("notes", []) if not note.startswith("no compute curve")]
    if labels:
        lines.append(f"Few-shot: {len(labels['classes'])} classes, k = {', '.join(map(str, ctx.mode.shots))} labelled "
                     f"documents per class (fixed per seed, the same for every variant), {ctx.mode.test_docs} other "
                     "labelled documents as the test set; fine-tuned (seqcls) and a linear probe (logistic regression "
                     "on frozen mean-pooled embeddings); the document's first "
                     f"{ctx.mode.max_length} tokens.")
    lines.append(f"Link prediction: {assets['linkpred']['queries']} withheld links, the true target ranked among "
                 f"{assets['linkpred']['candidates']} unlinked documents by the relation head's log P(linked) "
                 "(`bert`: NSP's log P(isNext); `no-drp` has no head; `init`: an untrained head) and by the cosine of "
                 "mean-pooled embeddings of the first segments.")
    lines.append(f"Floors: `init` (the initial model) and `{BOW}` (TF-IDF + logistic regression in the probe "
                 "columns, TF-IDF cosine in the embedding columns).")
    return lines


def _init_note(ctx: Context, plan: dict) -> str:
    if plan.get("init", ctx.init) == first_stage.FIRST_STAGE:
        return f" ({first_stage.describe(first_stage.trained_on(ctx))})"
    return ""


def _tokens(steps, ctx: Context) -> str:
    return f"{steps * ctx.mode.batch_size * ctx.mode.max_length:,}" if isinstance(steps, int) else "n/a"


def _rows(summary: dict) -> list[str]:
    return [v for v in (*VARIANTS, BOW) if v in summary]


def _table(title: str, summary: dict, keys) -> list[str]:
    out = ["", f"## {title}", "", "| variant | " + " | ".join(t for _, t in keys) + " |", "|---|" + "---|" * len(keys)]
    for variant in _rows(summary):
        out.append(f"| {variant} | " + " | ".join(_fmt(summary[variant].get(k)) for k, _ in keys) + " |")
    return out


def _chance(m: int) -> list[str]:
    mrr = 100 * float(np.mean(1.0 / np.arange(1, m + 1)))
    return ["", f"Chance ({m} candidates, the true one included): MRR {mrr:.1f}, hits@1 {100 / m:.1f}."]


def _curve(trend: dict, keys) -> list[str]:
    points, unit = trend["points"], curve_unit(trend.get("by", "minutes"))
    if unit == "min":
        head = ["", "## Compute curve: the linkbert - bert gap against minutes of pretraining per cell", "",
                "Steps: " + ", ".join(f"{m} min = {trend['steps'][m]}" for m in points) + ". Gap: mean ± std over "
                "seeds (paired t-test p against 0)."]
    else:
        head = ["", "## Compute curve: the linkbert - bert gap against pretraining steps per cell", "",
                "The grid's own cells are the last point. Gap: mean ± std over seeds (paired t-test p against 0)."]
    out = head + ["",
           "| metric | " + " | ".join(f"{m} {unit}" for m in points) + " | does the gap grow? |",
           "|---|" + "---|" * (len(points) + 1)]
    for key, title in keys:
        entry = trend["metrics"].get(key)
        if entry:
            cells = [_gap(entry["gap"].get(m)) for m in points]
            growth = (entry.get("growth") or {}).get("verdict", "n/a")
            out.append(f"| {title} | " + " | ".join(cells) + f" | {growth} |")
    return out


def _gap(g: dict | None) -> str:
    if not g:
        return "n/a"
    return f"{g['mean']:+.1f} ± {g['std']:.1f} (p={_num(g.get('t_p'), 3)})"


def _notes(seeds: int) -> list[str]:
    floor = f"{2 / 2 ** seeds:.3g}" if seeds else "n/a"
    return ["", "Notes: a verdict is the paired t-test (the Wilcoxon test where every seed's difference is the same) "
                "at p < 0.05 after Holm's adjustment over the metrics of its table; \"suggestive\" marks a p below "
                f"0.05 that does not survive it. With {seeds} seeds the Wilcoxon test cannot go below p = {floor}. "
                "See docs/graph_experiment.md."]


def _fmt(s: dict | None) -> str:
    if s is None:
        return "n/a"
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s["n"] > 1 else f"{s['mean']:.1f}"


def _num(x, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}" if digits == 3 else f"{x:.{digits}f}"
