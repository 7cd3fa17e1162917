"""The benchmark's results: every cell's figures, mean ± std per variant, the seed-paired
comparisons of ``linkbert`` with ``bert`` and ``random-links`` (``metrics.paired_comparison``)
with a plain-language verdict per metric, and the compute curve's gap; ``results.json`` and
``results.md``."""

from __future__ import annotations

import json
import time

import numpy as np

from linkbert.experiments.graph.grid import BOW, COMPARISONS, CURVE_VARIANTS, VARIANTS, Context
from linkbert.files import write_json, write_text
from linkbert.metrics import holm, paired_comparison

ALPHA = 0.05
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


def load_cells(ctx: Context) -> tuple[list[dict], list[dict]]:
    """(grid cells, compute-curve cells): every ``result.json`` there is."""
    grid = [json.loads(p.read_text()) for p in sorted((ctx.out / "cells").glob("*/seed-*/result.json"))]
    curve = [json.loads(p.read_text()) for p in sorted((ctx.out / "curve").glob("*/*/seed-*/result.json"))]
    return grid, curve


def write_results(ctx: Context, assets: dict) -> dict:
    """Collect every finished cell into ``results.json`` and ``results.md``; returns the summary."""
    classify = assets["labels"] is not None
    keys = compared_metrics(ctx.mode.shots, classify)
    grid, curve = load_cells(ctx)
    summary = summarise(grid)
    comparisons = {f"{a} vs {b}": compare(summary, a, b, keys) for a, b in COMPARISONS
                   if a in summary and b in summary}
    trend = curve_summary(curve, keys)
    plan = _read(ctx.out / "plan.json") or _read(ctx.out / "curve_plan.json") or {}
    write_json(ctx.out / "results.json", {"plan": plan, "curve_plan": _read(ctx.out / "curve_plan.json"),
                                          "assets": assets, "summary": summary, "comparisons": comparisons,
                                          "curve": trend, "cells": grid, "curve_cells": curve})
    write_text(ctx.out / "results.md", render_markdown(ctx, assets, plan, summary, comparisons, trend, grid))
    return {"summary": summary, "comparisons": comparisons, "curve": trend}


def _read(path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


# -- figures ---------------------------------------------------------------------------------------

def summarise(cells: list[dict]) -> dict:
    """``{variant: {metric: {"mean", "std", "n", "by_seed": {seed: value}}}}``."""
    table: dict = {}
    for cell in cells:
        row = table.setdefault(cell["variant"], {})
        for key, value in cell["metrics"].items():
            if value is not None:
                row.setdefault(key, {})[str(cell["seed"])] = float(value)
    return {variant: {key: stat(by_seed) for key, by_seed in row.items()} for variant, row in table.items()}


def stat(by_seed: dict) -> dict:
    values = list(by_seed.values())
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "n": len(values), "by_seed": by_seed}


def paired(a: dict, b: dict) -> dict | None:
    """``paired_comparison`` of two ``{seed: value}`` over the seeds both have (None: none)."""
    seeds = sorted(set(a) & set(b), key=int)
    return paired_comparison([a[s] for s in seeds], [b[s] for s in seeds]) if seeds else None


def compare(summary: dict, a: str, b: str, keys) -> dict:
    """``{metric: paired statistics + "p" (the test's), "holm_p" + "verdict"}`` of variant ``a``
    against ``b``. ``p`` is the paired t-test's, or the Wilcoxon test's where the t statistic is
    undefined (every seed's difference the same); ``holm_p`` adjusts it for the family of
    metrics compared (Holm), since one metric in twenty passes p < 0.05 by chance alone."""
    out = {}
    for key, _ in keys:
        if key in summary[a] and key in summary[b]:
            result = paired(summary[a][key]["by_seed"], summary[b][key]["by_seed"])
            if result:
                test_p = result["t_p"] if result["t_p"] is not None else (
                    result["wilcoxon_p"] if result["n"] > 1 else None)
                out[key] = {**result, "p": test_p}
    for key, adjusted in zip(list(out), holm([r["p"] for r in out.values()])):
        out[key]["holm_p"] = adjusted
        out[key]["verdict"] = verdict(a, b, out[key])
    return out


def verdict(a: str, b: str, result: dict, alpha: float = ALPHA) -> str:
    """"a beats b" when the difference holds at ``alpha`` after Holm's adjustment over the
    metrics; "suggestive" when only the unadjusted p is below it; else "no resolvable
    difference". Every metric here is higher-is-better."""
    if result.get("p") is None:
        return "too few paired seeds to tell"
    figures = f"p={result['p']:.3g}, Holm p={result['holm_p']:.3g}, d_z={_num(result['d_z'])}"
    if result["mean_diff"] != 0 and result["p"] < alpha:
        winner, loser = (a, b) if result["mean_diff"] > 0 else (b, a)
        if result["holm_p"] < alpha:
            return f"{winner} beats {loser} ({figures})"
        return f"suggestive: {winner} ahead of {loser}, not after Holm's correction ({figures})"
    return f"no resolvable difference ({figures})"


def curve_summary(cells: list[dict], keys) -> dict:
    """Per metric: the ``linkbert - bert`` gap at each compute point (paired over seeds), and
    whether it grows: the per-seed gap at the most minutes against the gap at the fewest."""
    a, b = "linkbert", "bert"
    points = sorted({c["minutes"] for c in cells if c["variant"] in CURVE_VARIANTS})
    if not points:
        return {}
    by_point = {m: summarise([c for c in cells if c["minutes"] == m]) for m in points}
    steps = {f"{m:g}": max(c["steps"] for c in cells if c["minutes"] == m) for m in points}
    out = {"points": [f"{m:g}" for m in points], "steps": steps, "metrics": {}}
    for key, _ in keys:
        gaps = {}
        for m in points:
            s = by_point[m]
            if key in s.get(a, {}) and key in s.get(b, {}):
                by_seed_a, by_seed_b = s[a][key]["by_seed"], s[b][key]["by_seed"]
                gaps[f"{m:g}"] = {seed: by_seed_a[seed] - by_seed_b[seed] for seed in by_seed_a if seed in by_seed_b}
        if not gaps:
            continue
        entry = {"gap": {m: {**stat(g), **(paired_comparison(list(g.values()), [0.0] * len(g)) if g else {})}
                         for m, g in gaps.items() if g}}
        first, last = f"{points[0]:g}", f"{points[-1]:g}"
        if first != last and gaps.get(first) and gaps.get(last):
            growth = paired(gaps[last], gaps[first])
            entry["growth"] = {**growth, "verdict": trend_verdict(growth, first, last)} if growth else None
        out["metrics"][key] = entry
    return out


MIN_TREND_SEEDS = 3  # a t-test of 2 pairs has 1 degree of freedom: two near-equal gaps give any p at all


def trend_verdict(result: dict, first: str, last: str, alpha: float = ALPHA) -> str:
    p = result["t_p"] if result["t_p"] is not None else (result["wilcoxon_p"] if result["n"] > 1 else None)
    if p is None or result["n"] < MIN_TREND_SEEDS:
        return (f"too few paired seeds to tell (n={result['n']}; {first} -> {last} min: "
                f"{result['mean_b']:+.1f} -> {result['mean_a']:+.1f})")
    figures = f"{first} -> {last} min: {result['mean_b']:+.1f} -> {result['mean_a']:+.1f}, p={p:.3g}"
    if p < alpha and result["mean_diff"] != 0:
        return f"the gap {'grows' if result['mean_diff'] > 0 else 'shrinks'} with compute ({figures})"
    return f"no resolvable change of the gap with compute ({figures})"


# -- results.md --------------------------------------------------------------------------------------

def render_markdown(ctx: Context, assets: dict, plan: dict, summary: dict, comparisons: dict, trend: dict,
                    cells: list[dict]) -> str:
    classify = assets["labels"] is not None
    out = _header(ctx, assets, plan, cells)
    if classify:
        out += _table("Few-shot classification (%, mean ± std over seeds)", summary, class_metrics(ctx.mode.shots))
    else:
        out += ["", "**No document labels in this corpus: few-shot classification was skipped**; "
                    "link prediction only."]
    out += _table("Link prediction of the withheld links (%, mean ± std over seeds)", summary, LINK_METRICS)
    out += _chance(assets["linkpred"]["candidates"] + 1)
    for name, result in comparisons.items():
        out += _comparison(name, result, compared_metrics(ctx.mode.shots, classify))
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
             f"Init `{plan.get('init', ctx.init)}`; {plan.get('steps', 'n/a')} pretraining steps of "
             f"{ctx.mode.batch_size} x {ctx.mode.max_length} tokens per cell; {done} of {expected} grid cells done. "
             f"Generated {time.strftime('%Y-%m-%d %H:%M')}.", ""]
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


def _comparison(name: str, result: dict, keys) -> list[str]:
    a, b = name.split(" vs ")
    out = ["", f"## {a} against {b}, paired by seed", "",
           f"Difference = {a} - {b} (points of %); 95% CI of the mean difference; paired t-test and Wilcoxon "
           "signed-rank p (two-sided); Holm p: the test's p adjusted over the metrics of this table; Cohen's d_z = "
           "mean difference / std of the differences.", "",
           "| metric | mean diff [95% CI] | t-test p | Wilcoxon p | Holm p | d_z | n | verdict |",
           "|---|---|---|---|---|---|---|---|"]
    for key, title in keys:
        r = result.get(key)
        if r:
            ci = f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
            out.append(f"| {title} | {r['mean_diff']:+.2f} {ci} | {_num(r['t_p'], 3)} | {_num(r['wilcoxon_p'], 3)} | "
                       f"{_num(r.get('holm_p'), 3)} | {_num(r['d_z'])} | {r['n']} | {r['verdict']} |")
    return out


def _curve(trend: dict, keys) -> list[str]:
    points = trend["points"]
    out = ["", "## Compute curve: the linkbert - bert gap against minutes of pretraining per cell", "",
           "Steps: " + ", ".join(f"{m} min = {trend['steps'][m]}" for m in points) + ". Gap: mean ± std over seeds "
           "(paired t-test p against 0).", "",
           "| metric | " + " | ".join(f"{m} min" for m in points) + " | does the gap grow? |",
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
