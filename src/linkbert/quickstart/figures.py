"""The figures ``report/metrics.json`` holds of each stage (corpus, pretraining runs, the BERT
baseline beside LinkBERT), with a binomial 95% interval for every accuracy, whether a run has
learned anything measurable yet (:func:`not_learned`), and the line the prepare stage prints."""

from __future__ import annotations

from pathlib import Path

from linkbert.quickstart.config import QuickstartConfig
from linkbert.quickstart.report import wilson_interval

# masked-token accuracy within this of always answering the corpus's commonest token: not learned
MLM_MARGIN = 0.02


def commonest_token_share(data_dir: Path) -> float:
    """The share of the prepared corpus's commonest token: the masked-token accuracy of a model
    that always answers it, the floor of any model that has learned more than that."""
    import numpy as np

    from linkbert.prepared import PreparedCorpus

    tokens = np.asarray(PreparedCorpus(data_dir).store.tokens)
    counts = np.bincount(tokens)
    return float(counts.max() / max(counts.sum(), 1))


def not_learned(evaluation: dict, mlm_floor: float) -> list[str]:
    """Why a run's held-out figures show nothing learned yet (none: it has learned): a relation
    accuracy whose 95% interval does not clear always answering the commonest relation of the
    held-out pairs, a masked-token accuracy within :data:`MLM_MARGIN` of always answering the
    commonest token. A comparison built on such a model says nothing about pretraining."""
    reasons = []
    if "relation_confusion" in evaluation:
        counts = list((evaluation.get("relation_distribution") or {}).values())
        pairs = sum(counts)
        if pairs:
            majority = max(counts) / pairs
            low, _ = wilson_interval(round(evaluation["relation_accuracy"] * pairs), pairs)
            if low <= majority:
                reasons.append(f"its relation accuracy {evaluation['relation_accuracy']:.3f} (95% interval from "
                               f"{low:.3f}) is not above always answering the commonest relation ({majority:.3f})")
    if evaluation["mlm_accuracy"] < mlm_floor + MLM_MARGIN:
        reasons.append(f"its masked-token accuracy {evaluation['mlm_accuracy']:.3f} is within "
                       f"{100 * MLM_MARGIN:.0f} points of always answering the commonest token ({mlm_floor:.3f})")
    return reasons


def corpus_figures(stats: dict) -> dict:
    keys = ("documents", "documents_skipped", "segments", "tokens", "vocab_size", "link_builder", "links_raw",
            "links_resolved", "links_dropped", "docs_without_outlinks", "docs_without_inlinks", "graph", "seconds")
    return {k: stats[k] for k in keys if k in stats}


def pretrain_figures(summary: dict, config: QuickstartConfig, objective: str, mlm_floor: float) -> dict:
    evaluation = summary["eval"]
    reasons = not_learned(evaluation, mlm_floor)
    figures = {"objective": objective, "preset": config.preset, "steps": summary["step"],
               "stop_reason": summary["stop_reason"], "train_seconds": summary["train_seconds"],
               "tokens": summary["tokens"], "eval": evaluation, "learned": not reasons, "not_learned": reasons,
               "mlm_floor": round(mlm_floor, 4)}
    if "relation_confusion" in evaluation:
        pairs = sum(map(sum, evaluation["relation_confusion"]))
        figures["relation_accuracy_interval95"] = list(wilson_interval(
            round(evaluation["relation_accuracy"] * pairs), pairs))
    return figures


def baseline_figures(summaries: dict, config: QuickstartConfig, mlm_floor: float) -> dict:
    """BERT's run, and the one relation figure LinkBERT's head shares with BERT's NSP head."""
    if "bert" not in summaries:
        return {}
    return {"objective": "bert", "pretrain": pretrain_figures(summaries["bert"], config, "bert", mlm_floor),
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
    skipped = stats.get("documents_skipped") or {}
    return (f"{stats['documents']:,} documents, {stats['segments']:,} segments, {stats['tokens']:,} tokens, "
            f"{stats['links_resolved']:,} links ({stats['docs_without_outlinks']:,} documents without any)"
            + ("; skipped: " + ", ".join(f"{reason} {n:,}" for reason, n in skipped.items()) if skipped else ""))
