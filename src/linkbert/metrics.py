"""Metrics of the paper's downstream tasks, each its own function, as the released code computes them,
the ranking metrics of zero-shot link prediction (``rank_metrics``), and the seed-paired
comparison of two systems (``paired_comparison``: mean difference, CI, t and Wilcoxon p, d_z).

Scales: ``squad_scores`` returns 0-100 like the official SQuAD v1.1 script; every other function
returns fractions in 0-1 (as seqeval, scikit-learn and the released ``compute_metrics`` do). The
BLURB score is computed from whatever scale the per-task numbers are given on (the paper's 0-100).

Label conventions are the callers' business: for ChemProt, DDI and GAD the converter
(``linkbert.finetune.convert``) already rewrites every label containing "false" to "0", so
``prf1`` only needs to know the negative class ("0").
"""

from __future__ import annotations

import math
import re
import string
import sys
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

# ---------------------------------------------------------------- SQuAD v1.1 (official definition)

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """Lowercase, drop ASCII punctuation, drop whole-word articles, collapse whitespace.

    The order is the official script's: punctuation goes before articles, so "the-end" becomes
    "theend" (no article left), and articles are replaced by a space, so "a cat" -> " cat" -> "cat".
    """
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _max_over_golds(score, prediction: str, ground_truths: Sequence[str]) -> float:
    if not ground_truths:  # the official script would crash on max([]): say why instead
        raise ValueError("no gold answers to compare the prediction with")
    return max(score(prediction, gold) for gold in ground_truths)


def _exact_one(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _f1_one(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:  # v1.1: two empty answers also score 0 (v2.0 changed that, not us)
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, ground_truths: Sequence[str]) -> float:
    """1.0 if the normalized prediction equals any normalized gold answer, else 0.0."""
    return _max_over_golds(_exact_one, prediction, ground_truths)


def f1(prediction: str, ground_truths: Sequence[str]) -> float:
    """Bag-of-tokens F1 of the normalized answers, best over the gold answers."""
    return _max_over_golds(_f1_one, prediction, ground_truths)


def squad_scores(golds: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict:
    """Mean EM and F1 (0-100) over every gold question; an unanswered question scores 0.

    Predictions for ids that are not gold questions are ignored, as in the official script.
    """
    if not golds:
        raise ValueError("no gold questions")
    em_total = f1_total = 0.0
    for qid, answers in golds.items():
        if qid not in predictions:
            print(f"Unanswered question {qid} will receive score 0.", file=sys.stderr)
            continue
        em_total += exact_match(predictions[qid], answers)
        f1_total += f1(predictions[qid], answers)
    return {"exact_match": 100.0 * em_total / len(golds), "f1": 100.0 * f1_total / len(golds)}


# ---------------------------------------------------------------- token classification (seqeval)


def _check_sequences(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} gold sequences but {len(pred)} predicted")
    for i, (t, p) in enumerate(zip(true, pred)):
        if len(t) != len(p):
            raise ValueError(f"sequence {i}: {len(t)} gold tags but {len(p)} predicted")


def seqeval_f1(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Entity-level micro P/R/F1, seqeval's default (conlleval-like) mode as run_ner uses it.

    Bare BLURB tags ``B``/``I``/``O`` work: seqeval reads ``B`` and ``I`` as chunks without a type.
    """
    from seqeval.metrics import f1_score, precision_score, recall_score

    _check_sequences(true, pred)
    true, pred = [list(s) for s in true], [list(s) for s in pred]
    return {
        "precision": float(precision_score(true, pred, zero_division=0)),
        "recall": float(recall_score(true, pred, zero_division=0)),
        "f1": float(f1_score(true, pred, zero_division=0)),
    }


def _inside_to_begin(tags: Sequence[str]) -> list[str]:
    return ["B-" + tag[2:] if tag.startswith("I-") else tag for tag in tags]


def pico_macro_f1(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """EBM-PICO word-level macro F1: every ``I-X`` becomes ``B-X``, so each word is its own
    entity; the score is the mean of the per-type F1 of seqeval's report (types seen in the gold
    or the predictions), as run_ner's ``return_macro_metrics`` computes it."""
    from seqeval.metrics import classification_report

    _check_sequences(true, pred)
    report = classification_report(
        [_inside_to_begin(s) for s in true], [_inside_to_begin(s) for s in pred],
        output_dict=True, zero_division=0,
    )
    by_type = {name: row for name, row in report.items() if not name.endswith(" avg")}
    if not by_type:
        raise ValueError("no entities in the gold tags or the predictions")
    return {
        "precision": float(np.mean([row["precision"] for row in by_type.values()])),
        "recall": float(np.mean([row["recall"] for row in by_type.values()])),
        "f1": float(np.mean([row["f1-score"] for row in by_type.values()])),
        "by_type": {name: float(row["f1-score"]) for name, row in by_type.items()},
    }


# ---------------------------------------------------------------- sequence classification


def _check_lengths(true, pred) -> None:
    if len(true) != len(pred):
        raise ValueError(f"{len(true)} gold labels but {len(pred)} predicted")
    if len(true) == 0:
        raise ValueError("no examples")


def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f}


def prf1(true_labels: Sequence, pred_labels: Sequence, negative="0") -> dict:
    """Micro P/R/F1 over every label except the negative class (ChemProt, DDI, GAD).

    A prediction counts as a true positive when it equals the gold label and is not negative;
    precision is over non-negative predictions, recall over non-negative gold labels. Labels
    containing "false" (ChemProt "false", DDI "DDI-false") must already be "0": the converter
    ``linkbert.finetune.convert.relation_records`` writes them so.
    """
    _check_lengths(true_labels, pred_labels)
    pairs = list(zip(true_labels, pred_labels))
    tp = sum(1 for t, p in pairs if t == p and p != negative)
    n_pred = sum(1 for _, p in pairs if p != negative)
    n_gold = sum(1 for t, _ in pairs if t != negative)
    return _prf(tp, n_pred, n_gold)


def hoc_f1(ids: Sequence[str], true, pred) -> dict:
    """HoC: OR the 0/1 label rows of each abstract (id prefix before "_"), then micro P/R/F1
    over the (abstract, class) cells that are 1."""
    true, pred = np.asarray(true, dtype=int), np.asarray(pred, dtype=int)
    if true.shape != pred.shape or true.ndim != 2 or len(ids) != len(true):
        raise ValueError(f"shapes differ: {len(ids)} ids, gold {true.shape}, predicted {pred.shape}")
    abstracts = sorted({str(i).split("_")[0] for i in ids})
    row_of = {key: r for r, key in enumerate(abstracts)}
    gold_cells = np.zeros((len(abstracts), true.shape[1]), dtype=bool)
    pred_cells = np.zeros_like(gold_cells)
    for example_id, t, p in zip(ids, true, pred):
        r = row_of[str(example_id).split("_")[0]]
        gold_cells[r] |= t == 1
        pred_cells[r] |= p == 1
    tp = int((gold_cells & pred_cells).sum())
    return {**_prf(tp, int(pred_cells.sum()), int(gold_cells.sum())), "n_abstracts": len(abstracts)}


def pearson(true: Sequence[float], pred: Sequence[float]) -> float:
    """Pearson correlation (BIOSSES), scipy's; NaN when either side is constant."""
    from scipy.stats import pearsonr

    _check_lengths(true, pred)
    if len(true) < 2:
        raise ValueError("Pearson correlation needs at least 2 examples")
    return float(pearsonr(np.asarray(true, dtype=float), np.asarray(pred, dtype=float))[0])


def accuracy(true: Sequence, pred: Sequence) -> float:
    """Fraction of examples whose predicted label equals the gold label."""
    _check_lengths(true, pred)
    return sum(1 for t, p in zip(true, pred) if t == p) / len(true)


# ---------------------------------------------------------------- ranking (link prediction)


def rank_metrics(true_scores, negative_scores) -> dict:
    """MRR and hits@1/@3 of each true candidate among its row of negatives, with their chance levels.

    ``true_scores``: ``(n,)``, one per query; ``negative_scores``: ``(n, k)``, higher = more
    likely. A tie counts against the true candidate, so a constant scorer ranks it last and
    cannot look better than chance. Returns ``mrr``, ``hits1``, ``hits3`` (fractions), ``n``
    (queries), ``candidates`` (k + 1), ``chance_mrr`` and ``chance_hits1`` (a uniformly random
    ranking's expected values).
    """
    true_scores = np.asarray(true_scores, dtype=np.float64)
    negative_scores = np.asarray(negative_scores, dtype=np.float64)
    ranks = 1 + (negative_scores >= true_scores[:, None]).sum(1)
    m = negative_scores.shape[1] + 1
    return {"mrr": float((1.0 / ranks).mean()), "hits1": float((ranks == 1).mean()), "hits3": float((ranks <= 3).mean()),
            "n": len(ranks), "candidates": int(m),
            "chance_mrr": float(np.mean(1.0 / np.arange(1, m + 1))), "chance_hits1": 1.0 / m}


def scores_by_type(records: list[dict], predictions: dict[str, str]) -> dict[str, dict]:
    """``{type: {"exact_match", "f1", "n"}}`` (EM and F1 on 0–100) over the QA records of each
    non-empty string ``type``, in order of first appearance; an unanswered question scores 0
    (as in :func:`squad_scores`); ``{}`` when no record has a type."""
    totals: dict[str, list[float]] = {}
    for record in records:
        kind = record.get("type")
        if not isinstance(kind, str) or not kind:
            continue
        em_f1_n = totals.setdefault(kind, [0.0, 0.0, 0])
        prediction = predictions.get(str(record["id"]))
        if prediction is not None:
            answers = list(record["answers"]["text"])
            em_f1_n[0] += exact_match(prediction, answers)
            em_f1_n[1] += f1(prediction, answers)
        em_f1_n[2] += 1
    return {kind: {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n, "n": n}
            for kind, (em, f1, n) in totals.items()}


# ---------------------------------------------------------------- seed-paired comparison


def paired_comparison(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Compare two systems scored on the same seeds: ``a[i]`` and ``b[i]`` share seed ``i`` (the
    same initial weights, data order and evaluation sets), so the per-seed differences
    ``d = a - b`` cancel what the seed does to both, and are what is tested.

    Returns ``n``, ``mean_a``, ``mean_b``, ``mean_diff`` (mean of d), ``std_diff`` (its sample
    std, ddof 1), ``ci_low``/``ci_high`` (the t interval of the mean difference at
    ``confidence``), ``t_p`` (two-sided paired t-test), ``wilcoxon_p`` (two-sided Wilcoxon
    signed-rank test, exact for small n; zero differences dropped, as scipy's default does)
    and ``d_z`` (Cohen's d_z: mean_diff / std_diff).

    What is undefined is None: with one pair, everything but the means and ``mean_diff``; when
    every difference is the same non-zero value, ``t_p`` and ``d_z`` (the t statistic is x/0:
    two seeds that both gain one test document are no proof; the Wilcoxon p still says how
    rare that sign pattern is). Equal scores on every seed give p-values of 1 and ``d_z`` 0.
    Note that with 5 pairs the smallest possible Wilcoxon p is 2/32 = 0.0625: only the t-test
    can reach 0.05 there.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores must be two lists of the same length, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("no pairs to compare")
    d = a - b
    n, mean = len(d), float(d.mean())
    out = {"n": n, "mean_a": float(a.mean()), "mean_b": float(b.mean()), "mean_diff": mean, "std_diff": None,
           "ci_low": None, "ci_high": None, "t_p": None, "wilcoxon_p": None, "d_z": None}
    if n < 2:
        return out
    std = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    out.update(std_diff=std, ci_low=mean - half, ci_high=mean + half)
    if std == 0.0:  # every difference equal: the tests' statistics are 0/0 or x/0
        out.update(t_p=1.0 if mean == 0 else None, wilcoxon_p=1.0 if mean == 0 else _wilcoxon_p(d),
                   d_z=0.0 if mean == 0 else None)
        return out
    out.update(t_p=float(stats.ttest_rel(a, b).pvalue), wilcoxon_p=_wilcoxon_p(d), d_z=mean / std)
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None stays None and is not counted):
    the k-th smallest of m is multiplied by m - k + 1, then made non-decreasing, capped at 1.
    Controls the chance of any false "difference" across the family at the nominal level."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided signed-rank p of the differences ``d``; 1.0 when all of them are zero."""
    from scipy import stats

    if not np.any(d != 0):
        return 1.0
    return float(stats.wilcoxon(d).pvalue)


# ---------------------------------------------------------------- BLURB aggregate

BLURB_TASK_TYPES: dict[str, tuple[str, ...]] = {
    "NER": ("BC5CDR-chem", "BC5CDR-disease", "NCBI-disease", "BC2GM", "JNLPBA"),
    "PICO": ("ebmnlp",),
    "relation extraction": ("chemprot", "DDI", "GAD"),
    "sentence similarity": ("BIOSSES",),
    "document classification": ("HoC",),
    "question answering": ("pubmedqa", "bioasq"),
}
BLURB_TASKS: tuple[str, ...] = tuple(t for tasks in BLURB_TASK_TYPES.values() for t in tasks)


def blurb_type_means(scores: Mapping[str, float]) -> dict[str, float]:
    """Mean score of each task type over the tasks of that type present in ``scores``."""
    means = {}
    for task_type, tasks in BLURB_TASK_TYPES.items():
        present = [float(scores[t]) for t in tasks if t in scores]
        if present:
            means[task_type] = float(np.mean(present))
    return means


def blurb_score(scores: Mapping[str, float]) -> dict:
    """BLURB score: the mean over the 6 task types of each type's mean task score.

    Averaging per type first keeps the five NER tasks from outweighing the single-task types.
    """
    missing = [t for t in BLURB_TASKS if t not in scores]
    if missing:
        unknown = sorted(set(scores) - set(BLURB_TASKS))
        hint = f" (also given, not BLURB task names: {', '.join(unknown)})" if unknown else ""
        raise ValueError(f"BLURB score needs all 13 tasks; missing: {', '.join(missing)}{hint}")
    by_type = blurb_type_means(scores)
    return {"score": float(np.mean(list(by_type.values()))), "by_type": by_type}
