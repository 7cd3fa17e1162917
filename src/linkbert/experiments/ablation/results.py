"""The grid's results: every cell's figures (``results.json``) and the tables beside the paper's (``results.md``)."""

from __future__ import annotations

import json
import time

import numpy as np

from linkbert.experiments.ablation.grid import VARIANTS, Context
from linkbert.files import write_json

METRICS = (  # key, column title, higher is better
    ("qa_f1", "QA F1", True),
    ("qa_distract_f1", "QA+distractors F1", True),
    ("qa_distract_drop", "distractor drop", False),
    ("fewshot_f1", "few-shot QA F1", True),
    ("hotpot_f1", "HotpotQA F1", True),
    ("hotpot_bridge_f1", "bridge F1", True),
    ("hotpot_comparison_f1", "comparison F1", True),
    ("category_acc", "category acc. (control)", True),
    ("linkpred_mrr", "link MRR (head)", True),
    ("linkpred_hits1", "link hits@1 (head)", True),
    ("linkpred_emb_mrr", "link MRR (embedding)", True),
    ("heldout_mlm_acc", "held-out MLM acc.", True),
)
# also summarised over seeds in results.json, not in the tables
SUMMARY_ONLY = ("qa_em", "hotpot_em", "hotpot_bridge_em", "hotpot_comparison_em")

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
    results = []
    for path in sorted((ctx.out / "cells").glob("*/*/seed-*/result.json")):
        result = json.loads(path.read_text())
        linkpred = path.parent / "linkpred.json"
        if linkpred.exists():
            head = json.loads(linkpred.read_text()).get("embedding") or {}
            result["linkpred_chance"] = {k: head.get(k) for k in ("chance_mrr", "chance_hits1", "candidates")}
        results.append(result)
    summary = summarise(results)
    write_json(ctx.out / "results.json", {"plan": plan, "assets": assets, "summary": summary, "cells": results,
                                          "paper_ablation": PAPER_ABLATION})
    (ctx.out / "results.md").write_text(render_markdown(summary, plan, assets, results), encoding="utf-8")
    return summary


def summarise(results: list[dict]) -> dict:
    """{init: {variant: {metric: {"mean", "std", "n", "values"}}}} over seeds."""
    table: dict = {}
    for r in results:
        cell = table.setdefault(r["init"], {}).setdefault(r["variant"], {})
        for key in [k for k, _, _ in METRICS] + list(SUMMARY_ONLY):
            value = r["metrics"].get(key)
            if value is not None:
                cell.setdefault(key, []).append(float(value))
    for variants in table.values():
        for variant, metrics in variants.items():
            variants[variant] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                                     "n": len(v), "values": v} for k, v in metrics.items()}
    return table


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

def render_markdown(summary: dict, plan: dict, assets: dict, results: list[dict]) -> str:
    out = _header(plan, assets, results)
    for init, cells in summary.items():
        out += _init_section(init, cells, plan, results)
    out += _paper_section()
    return "\n".join(out) + "\n"


def _header(plan: dict, assets: dict, results: list[dict]) -> list[str]:
    done = sum(1 for r in results if r["init"] in plan.get("inits", [r["init"]])
               and r["variant"] in plan.get("variants", [r["variant"]]) and r["seed"] in plan.get("seeds", [r["seed"]]))
    return ["# Link ablations on Wikispeedia (ours) beside the paper's", "",
            f"Mode `{plan['mode']}`, {done} of {plan['cells']} cells done; steps per pretraining cell: "
            + ", ".join(f"{i} {s}" for i, s in plan["steps"].items())
            + f". Values: mean ± std over seeds (n in results.json). Generated {time.strftime('%Y-%m-%d %H:%M')}.",
            "", ("Metrics: SQuAD F1 on held-out articles (plain, with 1–2 distracting paragraphs, few-shot with 10% "
                 "of the training questions); Wikispeedia top-level category accuracy (single-document control, "
                 f"majority baseline {assets['category']['majority_baseline']}%); zero-shot link prediction on "
                 "withheld hyperlinks, MRR and hits@1 in % (relation head: log P(linked); `bert`: NSP log P(isNext); "
                 "`no-drp` has no head: n/a; `init`: untrained head, chance; embedding: cosine of mean-pooled first "
                 "segments, every variant). HotpotQA (distractor setting: 10 paragraphs, yes/no questions dropped) "
                 "F1 on held-out questions, overall and per question type (bridge, comparison), for the "
                 "continued-pretraining init only (`scratch`: n/a, too little compute to learn multi-hop QA in a "
                 "cell)" + _hotpot_note(assets.get("hotpotqa")) + ".")]


def _hotpot_note(hotpot: dict | None) -> str:
    if not hotpot:
        return ""
    if hotpot.get("skipped"):
        return f"; skipped in this grid: {hotpot['skipped']}"
    types = hotpot.get("test_types", {})
    return (f"; {hotpot['train']} fine-tuning / {hotpot['test']} test questions (test: "
            + ", ".join(f"{n} {kind}" for kind, n in types.items()) + ")")


def _init_section(init: str, cells: dict, plan: dict, results: list[dict]) -> list[str]:
    """One init's table, its link-prediction chance level and the ordering lines."""
    chance = next((r["chance"] for r in _linkpred_chance(results) if r["init"] == init), None)
    out = ["", f"## Ours: init `{init}` ({plan['steps'].get(init, 0)} steps per cell)", ""]
    out.append("| variant | " + " | ".join(title for _, title, _ in METRICS) + " |")
    out.append("|---|" + "---|" * len(METRICS))
    for variant in [v for v in VARIANTS if v in cells]:
        out.append(f"| {variant} | " + " | ".join(_fmt(cells[variant].get(k)) for k, _, _ in METRICS) + " |")
    if chance:
        out.append(f"\nChance: link MRR {100 * chance['chance_mrr']:.1f}, hits@1 {100 * chance['chance_hits1']:.1f} "
                   f"({chance['candidates']} candidates).")
    out += ["", "Ordering (best first; `>` gap larger than both stds, `≈` otherwise; `init` excluded):", ""]
    trained = {v: m for v, m in cells.items() if v != "init"}
    for key, title, higher in METRICS:
        line = ordering(trained, key, higher)
        if line:  # a metric no variant of this init has (HotpotQA for scratch) gets no line
            out.append(f"- {title}{'' if higher else ' (lower is better)'}: {line}")
    for key, title in (("qa_f1", "QA F1"), ("hotpot_f1", "HotpotQA F1")):
        agree = _paper_order_agreement(trained, key)
        if agree:
            out.append(f"- {title} ordering of linkbert > no-diversity > tfidf > random-links as in the paper: {agree}")
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
