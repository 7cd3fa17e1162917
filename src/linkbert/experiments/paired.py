"""The seed-paired comparison both grids make, and when they must not make it.

* ``summarise`` / ``stat``: per variant and metric, the figure of every seed, mean ± std;
* ``compare``: variant ``a`` against ``b`` on the seeds both have (``metrics.paired_comparison``),
  with Holm's adjustment over the metrics compared and a plain-language ``verdict`` per metric;
* ``curve_summary``: the gap between two variants at each point of a compute curve, and whether
  it grows;
* ``learning_check``: whether a variant's pretraining learned anything at all (its held-out MLM
  accuracy, its relation head's accuracy against chance). A comparison of variants that did not
  learn says so in place of a verdict: a "no resolvable difference" between two models at chance
  is no evidence about links.

Every metric here is higher-is-better and in %.
"""

from __future__ import annotations

import numpy as np

from linkbert.metrics import holm, paired_comparison

ALPHA = 0.05
# Below this held-out MLM accuracy (%) a model has not learned language modelling yet: predicting
# the most frequent tokens scores about 5% (the from-scratch CPU cells of docs/graph_experiment.md).
MIN_MLM_ACCURACY = 10.0
# A relation head within this many points of chance (1/3 for LinkBERT's 3 classes, 1/2 for NSP)
# has learned nothing its link-prediction scores could rest on.
RELATION_MARGIN = 5.0


def stat(by_seed: dict) -> dict:
    """``{"mean", "std", "n", "by_seed"}`` of ``{seed: value}`` (std with ddof 1; 0 for one seed)."""
    values = list(by_seed.values())
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "n": len(values), "by_seed": by_seed}


def summarise(cells: list[dict]) -> dict:
    """``{variant: {metric: stat}}`` over the cells' ``metrics`` (None values left out)."""
    table: dict = {}
    for cell in cells:
        row = table.setdefault(cell["variant"], {})
        for key, value in cell["metrics"].items():
            if value is not None:
                row.setdefault(key, {})[str(cell["seed"])] = float(value)
    return {variant: {key: stat(by_seed) for key, by_seed in row.items()} for variant, row in table.items()}


def paired(a: dict, b: dict) -> dict | None:
    """``paired_comparison`` of two ``{seed: value}`` over the seeds both have (None: none)."""
    seeds = sorted(set(a) & set(b), key=int)
    return paired_comparison([a[s] for s in seeds], [b[s] for s in seeds]) if seeds else None


def compare(summary: dict, a: str, b: str, keys, unjudged: dict | None = None) -> dict:
    """``{metric: paired statistics + "p" (the test's), "holm_p" + "verdict"}`` of variant ``a``
    against ``b``. ``p`` is the paired t-test's, or the Wilcoxon test's where the t statistic is
    undefined (every seed's difference the same); ``holm_p`` adjusts it for the family of
    metrics compared (Holm), since one metric in twenty passes p < 0.05 by chance alone.

    ``unjudged``: ``{metric: why}`` for the metrics whose verdict is withheld (a variant too
    short to learn: ``learning_check``); their figures are still computed and shown."""
    unjudged = unjudged or {}
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
        out[key]["verdict"] = (f"not judged: {unjudged[key]}" if key in unjudged else verdict(a, b, out[key]))
        out[key]["judged"] = key not in unjudged
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


def learning_check(row: dict, relation_classes: int) -> dict:
    """Whether one variant's pretraining learned, from its summary ``row`` (``heldout_mlm_acc``
    and ``heldout_relation_acc`` in %, mean over seeds): ``{"mlm": why | None, "relation": why |
    None}``, a ``why`` naming the figure that is near chance. ``relation_classes``: the size of
    its relation head (0: none, nothing to check). A figure the row lacks is not judged."""
    out = {"mlm": None, "relation": None}
    mlm = row.get("heldout_mlm_acc")
    if mlm is not None and mlm["mean"] < MIN_MLM_ACCURACY:
        out["mlm"] = (f"held-out MLM accuracy {mlm['mean']:.1f}% (below {MIN_MLM_ACCURACY:g}%: predicting frequent "
                      "tokens scores about 5%)")
    relation = row.get("heldout_relation_acc")
    if relation_classes and relation is not None:
        chance = 100 / relation_classes
        if relation["mean"] < chance + RELATION_MARGIN:
            out["relation"] = (f"held-out relation accuracy {relation['mean']:.1f}% (chance {chance:.1f}%, "
                               f"less than {RELATION_MARGIN:g} points above it)")
    return out


def unjudged_metrics(checks: dict[str, dict], variants, keys, head_keys) -> dict[str, str]:
    """``{metric: why}`` for a comparison of ``variants``: every metric when one of them did not
    learn masked LM, the relation head's metrics (``head_keys``) when a head is near chance."""
    out: dict[str, str] = {}
    for variant in variants:
        check = checks.get(variant) or {}
        if check.get("mlm"):
            for key, _ in keys:
                out.setdefault(key, f"{variant} too short to learn (masked LM near chance)")
        elif check.get("relation"):
            for key in head_keys:
                out.setdefault(key, f"{variant}'s relation head too short to learn (near chance)")
    return out


# -- results.md ----------------------------------------------------------------------------------

def comparison_lines(a: str, b: str, result: dict, keys, heading: str = "##") -> list[str]:
    """The markdown table of ``compare(summary, a, b, keys)``'s ``result``, one row per metric."""
    out = ["", f"{heading} {a} against {b}, paired by seed", "",
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


def learning_lines(checks: dict, summary: dict, heading: str = "##") -> list[str]:
    """The markdown table of whether each pretrained variant learned (``learning_check``'s), and
    what follows for its comparisons; nothing without a pretrained variant."""
    if not checks:
        return []
    out = ["", f"{heading} Did the pretraining learn?", "",
           "| variant | held-out MLM acc. | held-out relation acc. | learned? |", "|---|---|---|---|"]
    for variant, check in checks.items():
        row = summary[variant]
        reasons = [why for why in (check.get("mlm"), check.get("relation")) if why]
        out.append(f"| {variant} | {_mean_std(row.get('heldout_mlm_acc'))} | "
                   f"{_mean_std(row.get('heldout_relation_acc'))} | "
                   + ("no: " + "; ".join(reasons) if reasons else "yes") + " |")
    if any(c.get("mlm") or c.get("relation") for c in checks.values()):
        out += ["", "**Some cells were too short to learn**: where a compared variant's masked LM is near chance no "
                    "metric of its comparisons gets a verdict, and where its relation head is near chance its "
                    "link-prediction-by-head figures get none (\"not judged\" below). Their figures are shown, but "
                    "they say nothing about links: the grid needs more compute."]
    return out


def _mean_std(s: dict | None) -> str:
    if s is None:
        return "n/a"
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s["n"] > 1 else f"{s['mean']:.1f}"


# -- the compute curve -----------------------------------------------------------------------------

def curve_summary(cells: list[dict], keys, by: str = "minutes", a: str = "linkbert", b: str = "bert") -> dict:
    """Per metric: the ``a - b`` gap at each compute point (paired over seeds), and whether it
    grows: the per-seed gap at the largest point against the gap at the smallest.
    ``by``: what a point is, ``minutes`` of pretraining per cell (``--curve``) or ``steps`` (the
    in-grid curve)."""
    points = sorted({c[by] for c in cells if c["variant"] in (a, b)})
    if not points:
        return {}
    by_point = {m: summarise([c for c in cells if c[by] == m]) for m in points}
    steps = {f"{m:g}": max(c["steps"] for c in cells if c[by] == m) for m in points}
    out = {"by": by, "points": [f"{m:g}" for m in points], "steps": steps, "metrics": {}}
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
            entry["growth"] = ({**growth, "verdict": trend_verdict(growth, first, last, unit=curve_unit(by))} if growth
                               else None)
        out["metrics"][key] = entry
    return out


MIN_TREND_SEEDS = 3  # a t-test of 2 pairs has 1 degree of freedom: two near-equal gaps give any p at all


def curve_unit(by: str) -> str:
    return "min" if by == "minutes" else "steps"


def trend_verdict(result: dict, first: str, last: str, alpha: float = ALPHA, unit: str = "min") -> str:
    p = result["t_p"] if result["t_p"] is not None else (result["wilcoxon_p"] if result["n"] > 1 else None)
    if p is None or result["n"] < MIN_TREND_SEEDS:
        return (f"too few paired seeds to tell (n={result['n']}; {first} -> {last} {unit}: "
                f"{result['mean_b']:+.1f} -> {result['mean_a']:+.1f})")
    figures = f"{first} -> {last} {unit}: {result['mean_b']:+.1f} -> {result['mean_a']:+.1f}, p={p:.3g}"
    if p < alpha and result["mean_diff"] != 0:
        return f"the gap {'grows' if result['mean_diff'] > 0 else 'shrinks'} with compute ({figures})"
    return f"no resolvable change of the gap with compute ({figures})"


def _num(x, digits: int = 2) -> str:
    if x is None:
        return "n/a"
    return f"{x:.{digits}g}" if digits == 3 else f"{x:.{digits}f}"
