"""Precision and recall of the title-mention link builder against Wikispeedia's real hyperlinks.

    python benchmarks/title_mention_quality.py [--input $LINKBERT_DATA/wikispeedia] [--examples 5]

The articles are read as ``linkbert prepare --format wikispeedia`` reads them (the reader's
``records()``/``parse()``, documents numbered in input order, empty texts and repeated ids
skipped) and linked as ``--link-builder title-mention`` links them: ``TitleMentionLinker``
with its default settings over the document titles, run on the article texts (what
``title_mention_links(titles, texts)`` does; the linker is built here to read its skip
counts). The gold links are ``links.tsv`` resolved to the same document positions through
``LinkTable``, as prepare resolves a corpus's own links; ``compare_links`` drops their
self-links (``links.tsv`` has real ones, e.g. Athens -> Athens) and duplicates, and says how
many.

Two diagnostics make the figures interpretable:

* the recall ceiling: the fraction of gold links whose target's title (normalised as the
  linker does: disambiguation dropped, case and punctuation folded) occurs in the source
  text at all; no mention-based builder can find the others;
* the figures against only those mentioned gold links (the precision is the same, since a
  predicted link is always a mention).

Missed gold links are split by cause: title not mentioned, mentioned but the title skipped
(short or numeric), mentioned but its key owned by another document (a collision: an
unqualified title wins a shared key, otherwise the first document in input order keeps it,
so of "Mercury (planet)" and "Mercury (element)" only the first is ever linked), or
mentioned but hidden inside a longer overlapping match. False positives are summed up by
their most frequent targets. A human-readable table is printed, and as the last line
one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from linkbert.corpus import Document, Redirect, open_reader
from linkbert.link_builders import (
    TitleMentionLinker,
    compare_links,
    normalise,
    title_key,
)
from linkbert.links import LinkTable


@dataclass
class Corpus:
    """Wikispeedia as prepare numbers it: titles and texts by document position, raw gold targets resolved."""

    titles: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    gold: tuple[np.ndarray, np.ndarray] | None = None  # CSR, self-links and duplicates kept (compare_links drops them)
    counts: Counter = field(default_factory=Counter)


def load(path: str) -> Corpus:
    """Read the articles in input order and resolve ``links.tsv`` to document positions, as prepare does.

    Prepare skips a document whose text tokenizes to nothing; here, one whose text is blank.
    """
    reader = open_reader("wikispeedia", path)
    corpus, table, raw_links = Corpus(), LinkTable(), []
    for record in reader.records():
        parsed = reader.parse(record)
        if isinstance(parsed, Redirect):
            table.add_redirect(parsed.key, parsed.target)
            continue
        if not isinstance(parsed, Document):
            corpus.counts[f"skipped_{parsed.reason}"] += 1
            continue
        keys = tuple(reader.document_keys(parsed))
        if not parsed.text.strip():
            corpus.counts["skipped_empty"] += 1
            table.add_skipped(keys)
            continue
        if keys and table.claims(keys[0]):
            corpus.counts["skipped_duplicate_id"] += 1
            continue
        table.add_document(keys, len(corpus.titles))
        corpus.titles.append(parsed.title)
        corpus.texts.append(parsed.text)
        raw_links.append(parsed.links)
    indptr, indices = [0], []
    for targets in raw_links:
        for raw in targets:
            corpus.counts["links_raw"] += 1
            target, how = table.resolve(reader.link_keys(raw))
            if target is None:
                corpus.counts[f"links_{how}"] += 1
            else:
                indices.append(target)
        indptr.append(len(indices))
    corpus.gold = (np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int32))
    return corpus


def pairs(graph: tuple[np.ndarray, np.ndarray]) -> set[tuple[int, int]]:
    """A CSR graph's distinct (source, target) pairs, self-links dropped."""
    indptr, indices = graph
    return {(s, int(t)) for s in range(len(indptr) - 1) for t in indices[indptr[s]:indptr[s + 1]] if s != t}


def to_csr(edges: set[tuple[int, int]], n: int) -> tuple[np.ndarray, np.ndarray]:
    ordered = sorted(edges)
    sources = np.array([s for s, _ in ordered], dtype=np.int64)
    indptr = np.searchsorted(sources, np.arange(n + 1)).astype(np.int64)
    return indptr, np.array([t for _, t in ordered], dtype=np.int32)


def random_precision(predicted: tuple[np.ndarray, np.ndarray], gold_edges: set[tuple[int, int]], n: int) -> float:
    """Expected micro precision of links drawn uniformly among the other documents, with the predicted out-degrees."""
    pred_out = np.diff(predicted[0])
    gold_out = np.bincount(np.array([s for s, _ in gold_edges], dtype=np.int64), minlength=n)
    return float((pred_out * gold_out).sum() / (n - 1) / pred_out.sum()) if pred_out.sum() and n > 1 else 0.0


def evaluate(corpus: Corpus, examples: int = 5, seed: int = 0) -> dict:
    n = len(corpus.titles)
    started = time.perf_counter()
    linker = TitleMentionLinker(corpus.titles)  # the defaults prepare's title_mention_links(titles, texts) uses
    predicted = linker.csr(corpus.texts)
    link_seconds = time.perf_counter() - started

    overall = compare_links(predicted, corpus.gold)
    gold_edges, pred_edges = pairs(corpus.gold), pairs(predicted)

    # Which gold links are mentioned at all, and which targets the linker can link at all.
    keys = [title_key(title) for title in corpus.titles]
    normalised = [normalise(text) for text in corpus.texts]
    mentioned = {(s, t) for s, t in gold_edges if keys[t] in normalised[s]}
    # A title alone matches its own key first when it has one; otherwise its key was skipped
    # (short, numeric: nothing matches) or belongs to another document (a collision).
    owner = [(linker.links(title, source=-1) or [None])[0] for title in corpus.titles]
    restricted = compare_links(predicted, to_csr(mentioned, n))

    missed = gold_edges - pred_edges
    false_positives = pred_edges - gold_edges
    miss_causes = Counter(
        "not_mentioned" if (s, t) not in mentioned
        else "title_skipped" if owner[t] is None
        else "title_key_owned_by_another_document" if owner[t] != t
        else "inside_longer_match" for s, t in missed)
    fp_by_target = Counter(t for _, t in false_positives)
    top_share = sum(c for _, c in fp_by_target.most_common(100)) / len(false_positives) if false_positives else 0.0
    rng = np.random.default_rng(seed)

    def sample(edges: set) -> list[list[str]]:
        ordered = sorted(edges)
        picks = rng.choice(len(ordered), size=min(examples, len(ordered)), replace=False) if ordered else []
        return [[corpus.titles[ordered[i][0]], corpus.titles[ordered[i][1]]] for i in sorted(picks)]

    def top_targets(edges: set) -> list[list]:
        return [[corpus.titles[t], c] for t, c in Counter(t for _, t in edges).most_common(examples)]

    return {
        "documents": n,
        "corpus": dict(sorted(corpus.counts.items())),
        "linker": {"keys": linker.n_keys, "skipped_short": linker.skipped_short,
                   "skipped_numeric": linker.skipped_numeric, "collisions": linker.collisions,
                   "seconds": round(link_seconds, 2)},
        "overall": overall,
        "recall_ceiling": len(mentioned) / len(gold_edges) if gold_edges else 0.0,
        "gold_mentioned": len(mentioned),
        "against_mentioned_gold": restricted,
        "random_precision": random_precision(predicted, gold_edges, n),
        "missed_by_cause": dict(miss_causes.most_common()),
        "false_positives": len(false_positives),
        "false_positive_share_of_top_100_targets": top_share,
        "examples": {
            "false_positives": sample(false_positives),
            "false_negatives_mentioned": sample(missed & mentioned),
            "false_negatives_not_mentioned": sample(missed - mentioned),
            "top_false_positive_targets": top_targets(false_positives),
            "top_missed_mentioned_targets": top_targets(missed & mentioned),
        },
    }


def report(figures: dict) -> str:
    o, r = figures["overall"], figures["against_mentioned_gold"]
    lk = figures["linker"]
    lines = [
        f"Wikispeedia: {figures['documents']} documents; corpus counts {figures['corpus']}",
        (f"gold: {o['gold']} distinct links after dropping {o['gold_self']} self-links and "
         f"{o['gold_duplicates']} duplicates"),
        (f"linker: {lk['keys']} title keys; skipped {lk['skipped_short']} short, {lk['skipped_numeric']} numeric, "
         f"{lk['collisions']} collisions; linked in {lk['seconds']} s"),
        "",
        f"{'against':<22}{'gold':>8}{'pred':>8}{'tp':>8}{'P':>8}{'R':>8}{'F1':>8}{'macroP':>8}{'macroR':>8}",
    ]
    for name, m in (("all gold links", o), ("mentioned gold only", r)):
        lines.append(f"{name:<22}{m['gold']:>8}{m['predicted']:>8}{m['tp']:>8}{m['precision']:>8.3f}"
                     f"{m['recall']:>8.3f}{m['f1']:>8.3f}{m['macro_precision']:>8.3f}{m['macro_recall']:>8.3f}")
    lines += [
        "",
        (f"recall ceiling (gold target's title occurs in the source text): {figures['recall_ceiling']:.3f} "
         f"({figures['gold_mentioned']} of {o['gold']})"),
        f"precision of random links with the same out-degrees: {figures['random_precision']:.4f}",
        f"missed gold links by cause: {figures['missed_by_cause']}",
        (f"false positives: {figures['false_positives']}, "
         f"{figures['false_positive_share_of_top_100_targets']:.1%} of them to the 100 most frequent targets"),
    ]
    for name, rows in figures["examples"].items():
        lines.append(f"{name.replace('_', ' ')}:")
        lines += [f"    {a}  ->  {b}" if isinstance(b, str) else f"    {a}: {b}" for a, b in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("LINKBERT_DATA")
    parser.add_argument("--input", default=str(Path(data) / "wikispeedia") if data else None,
                        help="the Wikispeedia folder (default $LINKBERT_DATA/wikispeedia)")
    parser.add_argument("--examples", type=int, default=5, help="examples of each kind of error")
    parser.add_argument("--seed", type=int, default=0, help="seed for picking the examples")
    args = parser.parse_args()
    if not args.input:
        sys.exit("give --input or set LINKBERT_DATA to the shared data folder")
    started = time.perf_counter()
    corpus = load(args.input)
    read_seconds = time.perf_counter() - started
    figures = evaluate(corpus, examples=args.examples, seed=args.seed)
    figures["read_seconds"] = round(read_seconds, 2)
    figures["total_seconds"] = round(time.perf_counter() - started, 2)
    print(report(figures))
    print(f"read {figures['read_seconds']} s, total {figures['total_seconds']} s")
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
