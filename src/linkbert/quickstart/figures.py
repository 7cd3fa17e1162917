"""The figures ``report/metrics.json`` holds of each stage (corpus, pretraining runs, the BERT
baseline beside LinkBERT), with a binomial 95% interval for every accuracy, and the line the
prepare stage prints."""

from __future__ import annotations

from linkbert.quickstart.config import QuickstartConfig
from linkbert.quickstart.report import wilson_interval


def corpus_figures(stats: dict) -> dict:
    keys = ("documents", "documents_skipped", "segments", "tokens", "vocab_size", "link_builder", "links_raw",
            "links_resolved", "links_dropped", "docs_without_outlinks", "docs_without_inlinks", "graph", "seconds")
    return {k: stats[k] for k in keys if k in stats}


def pretrain_figures(summary: dict, config: QuickstartConfig, objective: str) -> dict:
    evaluation = summary["eval"]
    figures = {"objective": objective, "preset": config.preset, "steps": summary["step"],
               "stop_reason": summary["stop_reason"], "train_seconds": summary["train_seconds"],
               "tokens": summary["tokens"], "eval": evaluation}
    if "relation_confusion" in evaluation:
        pairs = sum(map(sum, evaluation["relation_confusion"]))
        figures["relation_accuracy_interval95"] = list(wilson_interval(
            round(evaluation["relation_accuracy"] * pairs), pairs))
    return figures


def baseline_figures(summaries: dict, config: QuickstartConfig) -> dict:
    """BERT's run, and the one relation figure LinkBERT's head shares with BERT's NSP head."""
    if "bert" not in summaries:
        return {}
    return {"objective": "bert", "pretrain": pretrain_figures(summaries["bert"], config, "bert"),
            "linkbert_on_nsp_pairs": nsp_pairs_accuracy(summaries["linkbert"]["eval"])}


def nsp_pairs_accuracy(evaluation: dict) -> dict:
    """LinkBERT's held-out accuracy on the contiguous and random pairs alone, the two classes
    BERT's NSP head also answers (a "linked" answer counts as wrong): its overall 3-way accuracy,
    chance 1/3, and NSP's 2-way one, chance 1/2, measure different tasks. Linked pairs have no
    counterpart at all: NSP never sees them."""
    if "relation_confusion" not in evaluation:
        return {}
    rows = evaluation["relation_confusion"][:2]
    correct, pairs = rows[0][0] + rows[1][1], sum(map(sum, rows))
    return {"accuracy": correct / max(pairs, 1), "pairs": pairs, "interval95": list(wilson_interval(correct, pairs))}


def prepare_line(stats: dict) -> str:
    return (f"{stats['documents']:,} documents, {stats['segments']:,} segments, {stats['tokens']:,} tokens, "
            f"{stats['links_resolved']:,} links ({stats['docs_without_outlinks']:,} documents without any)")
