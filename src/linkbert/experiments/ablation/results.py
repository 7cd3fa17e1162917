"""The grid's results: every cell's figures (``results.json``), and ``results.md``: per init, the
table of every variant, whether each variant's pretraining learned at all, the seed-paired
comparisons of ``linkbert`` with ``bert``, ``random-links`` and ``no-drp`` (``experiments.paired``:
Holm's adjustment, a verdict per metric, none for a variant too short to learn), the compute
curve where the plan had one, and the paper's table beside ours."""

from __future__ import annotations

import json
import time


from linkbert.experiments import first_stage
from linkbert.experiments.ablation.grid import COMPARISONS, EVALUATIONS, VARIANTS, Context
from linkbert.experiments.paired import (compare, comparison_lines, curve_summary, learning_check, learning_lines, stat,
                                         unjudged_metrics)
from linkbert.files import write_json
from linkbert.objectives import OBJECTIVES

METRICS = (  # key, column title, higher is better, the evaluation it comes from (None: pretraining's own)
    ("qa_f1", "QA F1", True, "qa"),
    ("qa_distract_f1", "QA+distractors F1", True, "qa"),
    ("qa_distract_drop", "distractor drop", False, "qa"),
    ("fewshot_f1", "few-shot QA F1", True, "qa"),
    ("hotpot_f1", "HotpotQA F1", True, "hotpotqa"),
    ("hotpot_bridge_f1", "bridge F1", True, "hotpotqa"),
    ("hotpot_comparison_f1", "comparison F1", True, "hotpotqa"),
    ("category_acc", "category acc. (control)", True, "category"),
    ("linkpred_mrr", "link MRR (head)", True, "linkpred"),
    ("linkpred_hits1", "link hits@1 (head)", True, "linkpred"),
    ("linkpred_emb_mrr", "link MRR (embedding)", True, "linkpred"),
    ("heldout_mlm_acc", "held-out MLM acc.", True, None),
)
# also summarised over seeds in results.json, not in the tables
SUMMARY_ONLY = ("qa_em", "hotpot_em", "hotpot_bridge_em", "hotpot_comparison_em", "heldout_relation_acc",
                "linkpred_emb_hits1")
# the family each seed-paired comparison adjusts over (Holm): the evaluations' higher-is-better
# figures; not the distractor drop (a difference of two of them), the single-document control,
# or the pretraining's own held-out accuracy
COMPARED = (*((key, title) for key, title, higher, evaluation in METRICS
               if higher and evaluation not in (None, "category")), ("linkpred_emb_hits1", "link hits@1 (embedding)"))
HEAD_METRICS = ("linkpred_mrr", "linkpred_hits1")
CURVE = ("linkbert", "bert")

# The paper's ablation figures (SPEC §2; Yasunaga et al. 2022), shown beside ours, never mixed in.
PAPER_ABLATION = {
    "caption": "LinkBERT-tiny pretrained on Wikipedia + BookCorpus, MRQA F1 (the paper's numbers, SPEC §2)",
    "columns": ("HotpotQA", "TriviaQA", "NaturalQ", "SQuAD"),
    "rows": {
        "linkbert": (54.6, 50.0, 60.3, 58.0),
        "no-diversity": (53.5, 48.0, 60.0, 57.8),
        "tfidf": (50.0, 48.2, 59.6, 57.6),
        "random-links": (49.8, 43.4, 58.9, 56.6),
    },
    "notes": ("random links = BERT-tiny in the paper.",
              "No DRP (base models): HotpotQA 78.2 -> 76.5, SQuAD 90.1 -> 89.3, SQuAD with distractors 89.6 -> 87.0.",
              "Distractors (base): BERT-base loses 2.8 F1, LinkBERT-base 0.5.",
              "Few-shot (10% of the training data, base): LinkBERT +3 to +7 F1 over BERT."),
}
PAPER_ORDER = ("linkbert", "no-diversity", "tfidf", "random-links")  # best first, on every MRQA column


def write_results(ctx: Context, plan: dict, assets: dict) -> dict:
    """Collect every finished cell into ``results.json`` and ``results.md``; returns the summary."""
    results = [_with_chance(path) for path in sorted((ctx.out / "cells").glob("*/*/seed-*/result.json"))]
    curve_files = sorted((ctx.out / "curve-steps").glob("*/*/*/seed-*/result.json"))
    curve_cells = [json.loads(p.read_text()) for p in curve_files]
    summary = summarise(results)
    checks = {init: learning_checks(cells) for init, cells in summary.items()}
    comparisons = {init: {f"{a} vs {b}": compare(cells, a, b, COMPARED,
                                                   unjudged_metrics(checks[init], (a, b), COMPARED, HEAD_METRICS))
                          for a, b in COMPARISONS if a in cells and b in cells}
                   for init, cells in summary.items()}
    curves = {init: curve_summary([c for c in curve_cells + results if c["init"] == init and c["variant"] in CURVE],
                                  COMPARED, by="steps")
              for init in {c["init"] for c in curve_cells}}
    record = first_stage.trained_on(ctx)
    write_json(ctx.out / "results.json", {"plan": plan, "assets": assets, "first_stage": record, "summary": summary,
                                          "learned": checks, "comparisons": comparisons, "curve": curves,
                                          "cells": results, "curve_cells": curve_cells,
                                          "paper_ablation": PAPER_ABLATION})
    text = render_markdown(summary, plan, assets, results, comparisons=comparisons, checks=checks, curves=curves,
                           first_stage_record=record)
    (ctx.out / "results.md").write_text(text, encoding="utf-8")
    return summary


def _with_chance(path) -> dict:
    """A cell's result, with the chance level of its link-prediction queries."""
    result = json.loads(path.read_text())
    linkpred = path.parent / "linkpred.json"
    if linkpred.exists():
        head = json.loads(linkpred.read_text()).get("embedding") or {}
        result["linkpred_chance"] = {k: head.get(k) for k in ("chance_mrr", "chance_hits1", "candidates")}
    return result


def learning_checks(cells: dict) -> dict:
    """``experiments.paired.learning_check`` of every pretrained variant of one init."""
    return {v: learning_check(row, OBJECTIVES[VARIANTS[v].objective]) for v, row in cells.items()
            if VARIANTS[v].pretrain}


def summarise(results: list[dict]) -> dict:
    """{init: {variant: {metric: {"mean", "std", "n", "values", "by_seed"}}}} over seeds."""
    table: dict = {}
    for r in results:
        cell = table.setdefault(r["init"], {}).setdefault(r["variant"], {})
        for key in [k for k, *_ in METRICS] + list(SUMMARY_ONLY):
            value = r["metrics"].get(key)
            if value is not None:
                cell.setdefault(key, {})[str(r["seed"])] = float(value)
    for variants in table.values():
        for variant, metrics in variants.items():
            variants[variant] = {k: _stat(by_seed) for k, by_seed in metrics.items()}
    return table


def _stat(by_seed: dict) -> dict:
    return {**stat(by_seed), "values": list(by_seed.values())}


def ordering(cells: dict, key: str, higher: bool) -> str:
    """Variants by mean, best first; ">" when the gap exceeds both stds, else "≈"."""
    rows = [(v, m[key]) for v, m in cells.items() if key in m]
    rows.sort(key=lambda row: row[1]["mean"], reverse=higher)
    text = ""
    for i, (variant, stat) in enumerate(rows):
        if i:
            previous = rows[i - 1][1]
            gap = abs(previous["mean"] - stat["mean"])
            text += " > " if gap > max(previous["std"], stat["std"]) and min(previous["n"], stat["n"]) > 1 else " ≈ "
        text += variant
    return text


# -- results.md ------------------------------------------------------------------------------------

def render_markdown(summary: dict, plan: dict, assets: dict, results: list[dict], *, comparisons: dict | None = None,
                    checks: dict | None = None, curves: dict | None = None,
                    first_stage_record: dict | None = None) -> str:
    metrics = [m for m in METRICS if m[3] is None or m[3] in plan.get("evaluations", EVALUATIONS)]
    out = _header(plan, assets, results, first_stage_record)
    for init, cells in summary.items():
        out += _init_section(init, cells, plan, results, metrics)
        out += learning_lines((checks or {}).get(init, {}), cells, heading="###")
        keys = [(k, t) for k, t in COMPARED if any(k in row for row in cells.values())]
        for name, result in (comparisons or {}).get(init, {}).items():
            out += comparison_lines(*name.split(" vs "), result, keys, heading="###")
        trend = (curves or {}).get(init)
        if trend:
            out += _curve(trend, keys)
        elif init in plan.get("steps", {}) and any(n.startswith("no compute curve") for n in plan.get("notes", [])):
            why = next(n for n in plan["notes"] if n.startswith("no compute curve"))
            out += ["", "### Compute curve", "", why + "."]
    out += _paper_section()
    return "\n".join(out) + "\n"


def _header(plan: dict, assets: dict, results: list[dict], record: dict | None = None) -> list[str]:
    done = sum(1 for r in results if r["init"] in plan.get("inits", [r["init"]])
               and r["variant"] in plan.get("variants", [r["variant"]]) and r["seed"] in plan.get("seeds", [r["seed"]]))
    evaluations = plan.get("evaluations", EVALUATIONS)
    described = []
    if "qa" in evaluations:
        described.append("SQuAD F1 on held-out articles (plain, with 1–2 distracting paragraphs, few-shot with 10% "
                         "of the training questions)")
    if "category" in evaluations:
        described.append("Wikispeedia top-level category accuracy (single-document control, majority baseline "
                         f"{assets['category']['majority_baseline']}%)")
    if "linkpred" in evaluations:
        described.append("zero-shot link prediction on withheld hyperlinks, MRR and hits@1 in % (relation head: log "
                         "P(linked); `bert`: NSP log P(isNext); `no-drp` has no head: n/a; `init`: untrained head, "
                         "chance; embedding: cosine of mean-pooled first segments, every variant)")
    if "hotpotqa" in evaluations:
        described.append("HotpotQA (distractor setting: 10 paragraphs, yes/no questions dropped) F1 on held-out "
                         "questions, overall and per question type (bridge, comparison), for the inits that start "
                         "from a trained model (`scratch`: n/a, too little compute to learn multi-hop QA in a cell)"
                         + _hotpot_note(assets.get("hotpotqa")))
    seeds = plan.get("seeds")
    lines = ["# Link ablations on Wikispeedia (ours) beside the paper's", "",
             f"Mode `{plan['mode']}`" + (f" on {plan['device']}" if plan.get("device") else "")
             + f", {done} of {plan['cells']} cells done"
             + (f", {len(seeds)} seeds" if seeds else "") + "; steps per pretraining cell: "
             + ", ".join(f"{i} {s}" for i, s in plan["steps"].items())
             + f". Values: mean ± std over seeds (n in results.json). Generated {time.strftime('%Y-%m-%d %H:%M')}.",
             "", "Metrics: " + "; ".join(described) + "."]
    if first_stage.FIRST_STAGE in plan.get("inits", []):
        lines += ["", f"Init `{first_stage.FIRST_STAGE}`: {first_stage.describe(record)}."]
    lines += [f"Plan: {note}." for note in plan.get("notes", []) if not note.startswith("no compute curve")]
    return lines


def _hotpot_note(hotpot: dict | None) -> str:
    if not hotpot:
        return ""
    if hotpot.get("skipped"):
        return f"; skipped in this grid: {hotpot['skipped']}"
    types = hotpot.get("test_types", {})
    return (f"; {hotpot['train']} fine-tuning / {hotpot['test']} test questions (test: "
            + ", ".join(f"{n} {kind}" for kind, n in types.items()) + ")")


def _init_section(init: str, cells: dict, plan: dict, results: list[dict], metrics) -> list[str]:
    """One init's table, its link-prediction chance level and the ordering lines."""
    chance = next((r["chance"] for r in _linkpred_chance(results) if r["init"] == init), None)
    steps = plan["steps"].get(init, 0)
    tokens = f", <= {steps * plan['tokens_per_step']:,} tokens" if plan.get("tokens_per_step") else ""
    out = ["", f"## Ours: init `{init}` ({steps} steps per cell{tokens})", ""]
    out.append("| variant | " + " | ".join(title for _, title, *_ in metrics) + " |")
    out.append("|---|" + "---|" * len(metrics))
    for variant in [v for v in VARIANTS if v in cells]:
        out.append(f"| {variant} | " + " | ".join(_fmt(cells[variant].get(k)) for k, *_ in metrics) + " |")
    if chance:
        out.append(f"\nChance: link MRR {100 * chance['chance_mrr']:.1f}, hits@1 {100 * chance['chance_hits1']:.1f} "
                   f"({chance['candidates']} candidates).")
    out += ["", "Ordering (best first; `>` gap larger than both stds, `≈` otherwise; `init` excluded):", ""]
    trained = {v: m for v, m in cells.items() if v != "init"}
    for key, title, higher, _ in metrics:
        line = ordering(trained, key, higher)
        if line:  # a metric no variant of this init has (HotpotQA for scratch) gets no line
            out.append(f"- {title}{'' if higher else ' (lower is better)'}: {line}")
    for key, title in (("qa_f1", "QA F1"), ("hotpot_f1", "HotpotQA F1")):
        agree = _paper_order_agreement(trained, key)
        if agree:
            out.append(f"- {title} ordering of linkbert > no-diversity > tfidf > random-links as in the paper: {agree}")
    return out


def _curve(trend: dict, keys) -> list[str]:
    points = trend["points"]
    out = ["", "### Compute curve: the linkbert - bert gap against pretraining steps per cell", "",
           "The grid's own cells are the last point. Gap: mean ± std over seeds.", "",
           "| metric | " + " | ".join(f"{m} steps" for m in points) + " | does the gap grow? |",
           "|---|" + "---|" * (len(points) + 1)]
    for key, title in keys:
        entry = trend["metrics"].get(key)
        if entry:
            cells = [f"{g['mean']:+.1f} ± {g['std']:.1f}" if (g := entry["gap"].get(m)) else "n/a" for m in points]
            growth = (entry.get("growth") or {}).get("verdict", "n/a")
            out.append(f"| {title} | " + " | ".join(cells) + f" | {growth} |")
    return out


def _paper_section() -> list[str]:
    out = ["", "## The paper's ablation table (NOT our numbers)", "", PAPER_ABLATION["caption"] + ":", ""]
    out.append("| variant | " + " | ".join(PAPER_ABLATION["columns"]) + " |")
    out.append("|---|" + "---|" * len(PAPER_ABLATION["columns"]))
    for variant, row in PAPER_ABLATION["rows"].items():
        out.append(f"| {variant} | " + " | ".join(f"{x:.1f}" for x in row) + " |")
    out += [""] + [f"- {note}" for note in PAPER_ABLATION["notes"]]
    out += ["", ("Scale: the paper pretrains LinkBERT-tiny for 10k steps of 2048 x 512 tokens on Wikipedia + "
            "BookCorpus; ours pretrain a few hundred steps on 4,598 Wikispeedia articles, so only the ordering of "
            "variants is comparable, never the absolute numbers.")]
    return out


def _fmt(stat: dict | None) -> str:
    if stat is None:
        return "n/a"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if stat["n"] > 1 else f"{stat['mean']:.1f}"


def _linkpred_chance(results: list[dict]):
    for r in results:
        if r.get("linkpred_chance"):
            yield {"init": r["init"], "chance": r["linkpred_chance"]}


def _paper_order_agreement(cells: dict, key: str) -> str | None:
    present = [v for v in PAPER_ORDER if v in cells and key in cells[v]]
    if len(present) < 2:
        return None
    ours = sorted(present, key=lambda v: -cells[v][key]["mean"])
    return "yes" if ours == present else f"no (ours: {' > '.join(ours)})"
