"""What every cell shares, built once and kept in ``--out``: the prepared corpus, the withheld
links and the pretraining graphs, the link-prediction queries, and each seed's few-shot sets.

Each builder returns its statistics, or, when its output exists already, what it recorded then.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from linkbert.corpus.texts import document_texts
from linkbert.errors import ConfigError
from linkbert.experiments.frame import say
from linkbert.experiments.graph.grid import VARIANTS, Context
from linkbert.experiments.steps import linkpred_queries_once
from linkbert.files import write_json, write_jsonl


def prepare_assets(ctx: Context, variants) -> dict:
    """Everything the cells of ``variants`` need but the per-seed few-shot sets; each piece once."""
    corpus = check_corpus_identity(ctx)
    prepare_corpus(ctx)
    graphs = build_graphs(ctx, {VARIANTS[v].graph for v in variants if VARIANTS[v].graph})
    labels = label_stats(ctx)
    queries = linkpred_queries_once(ctx, ctx.mode.lp_queries, ctx.mode.lp_candidates, refuse_empty=True)
    return {"corpus": corpus, "graphs": graphs, "labels": labels,
            "linkpred": {"queries": len(queries["queries"]), "candidates": queries["candidates"]}}


def check_corpus_identity(ctx: Context) -> dict:
    """``corpus.json``: the corpus's format, path, size and sha256 (of the file; of a folder, every
    file under it by name; an edge table's too), recorded at the first run; a rerun on another
    corpus is refused, since every cell would mix two corpora."""
    path = ctx.out / "corpus.json"
    files = corpus_files(ctx)
    digest = hashlib.sha256()
    if ctx.corpus_format != "jsonl" or ctx.reader_options:  # how it is read is part of what it is
        digest.update(json.dumps([ctx.corpus_format, sorted(ctx.reader_options.items())]).encode())
    for file in files:
        if len(files) > 1:  # a single file's digest is its bytes' alone (as before folders were read)
            inside = ctx.corpus_path.is_dir() and file.is_relative_to(ctx.corpus_path)
            digest.update(f"\0{file.relative_to(ctx.corpus_path) if inside else file.name}\0".encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    identity = {"file": str(ctx.corpus_path.resolve()), "format": ctx.corpus_format,
                "options": dict(sorted(ctx.reader_options.items())), "files": len(files),
                "bytes": sum(file.stat().st_size for file in files), "sha256": digest.hexdigest()}
    if path.exists():
        recorded = json.loads(path.read_text())
        if recorded["sha256"] != identity["sha256"]:
            raise ConfigError(f"{ctx.out} holds the benchmark of another corpus ({recorded['file']}); "
                             "use another --out")
        return recorded
    write_json(path, identity)
    return identity


def corpus_files(ctx: Context) -> list[Path]:
    """The files the corpus is read from: the corpus file, or every regular file under its folder
    (by name), and the edge table when ``--edges`` gives one."""
    root = ctx.corpus_path
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()) if root.is_dir() else [root]
    edges = ctx.reader_options.get("edges")
    return files + [Path(edges)] if edges else files


def read_texts(ctx: Context, store) -> list[str]:
    """Every prepared document's text, read again from the corpus (``corpus.texts.document_texts``)."""
    return document_texts(ctx.corpus_format, ctx.corpus_path, store, **ctx.reader_options)


def prepare_corpus(ctx: Context) -> None:
    """The corpus prepared once with the init's tokenizer (prepare builds beside and renames in,
    so an existing folder is a complete one); a corpus without links is refused here."""
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig
    from linkbert.prepared import is_prepared

    if not is_prepared(ctx.prepared):
        say("graph", f"preparing {ctx.corpus_format}:{ctx.corpus_path} (segments of <= {ctx.mode.segment_budget} "
                     f"tokens, tokenizer {ctx.tokenizer})")
        prepare(PrepareConfig(format=ctx.corpus_format, input=str(ctx.corpus_path), tokenizer=ctx.tokenizer,
                              out=str(ctx.prepared), segment_budget=ctx.mode.segment_budget, progress=False,
                              overwrite=ctx.prepared.exists(), workers=ctx.mode.prepare_workers, **ctx.reader_options))
    graph = ctx.corpus().graph()
    if graph is None or graph.num_edges == 0:
        raise ConfigError(f"{ctx.corpus_path} has no links between its documents: the benchmark withholds some "
                         'of them and asks whether the rest helped (give each record a "links" list, or '
                         "name the links' field or edge table: --links-field, --edges)")


# -- graphs ----------------------------------------------------------------------------------------

def build_graphs(ctx: Context, names) -> dict:
    """The withheld links (``DocGraph.withhold_pairs``: a pair linked both ways counts once) and
    the pretraining graphs ``names`` (of links, random, tfidf), each built once, none holding a
    withheld pair in either direction; their statistics."""
    from linkbert.graph import DocGraph
    from linkbert.link_builders import random_links, tfidf_links

    stats_file = ctx.out / "graphs" / "stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    corpus = ctx.corpus()
    if not ctx.withheld_file.exists():
        full = corpus.graph()
        links, withheld = full.withhold_pairs(ctx.mode.withheld_fraction)
        if len(withheld) == 0:
            raise ConfigError(f"{ctx.corpus_path} has too few links to withhold {ctx.mode.withheld_fraction:.0%} "
                             f"of them ({full.num_edges} links)")
        links.save(ctx.graph_dir("links"))
        np.save(ctx.withheld_file, withheld)
        stats.update(full=full.stats(), withheld_pairs=len(withheld), links=links.stats())
    withheld = np.load(ctx.withheld_file)
    for name in sorted(set(names) - {"links"} - set(stats)):
        if name == "random":
            degrees = DocGraph.load(ctx.graph_dir("links")).out_degree
            graph = DocGraph(*random_links(degrees, exclude=withheld))
        else:
            texts = read_texts(ctx, corpus.store)
            graph = DocGraph(*tfidf_links(texts, k=ctx.mode.tfidf_k)).without_pairs(withheld)
        graph.save(ctx.graph_dir(name))
        stats[name] = graph.stats()
    write_json(stats_file, stats)
    return stats


# -- few-shot classification ----------------------------------------------------------------------

def store_labels(ctx: Context, store) -> dict[int, str]:
    """``{document index: label}`` of the labelled documents (``corpus.labels.document_labels``)."""
    from linkbert.corpus.labels import document_labels

    labels = document_labels(ctx.corpus_format, ctx.corpus_path, **ctx.reader_options)
    return {d: labels[n["id"]] for d, n in enumerate(store.document_names()) if n["id"] in labels}


def label_stats(ctx: Context) -> dict | None:
    """The classes and their sizes, checked against the shots; None for a corpus without labels."""
    labels = store_labels(ctx, ctx.corpus().store)
    if not labels:
        return None
    counts = check_shots(labels, ctx.mode.shots)
    return {"documents": len(labels), "classes": counts}


def check_shots(labels: dict[int, str], shots) -> dict[str, int]:
    """Documents per class, refused when a class has fewer than the largest ``k`` of ``shots``
    or nothing would be left to test on."""
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label] = counts.get(label, 0) + 1
    if len(counts) < 2:
        raise ConfigError(f"every labelled document has the same label ({next(iter(counts))!r}, {len(labels)} "
                          "documents): few-shot classification needs at least two classes; label documents of "
                          "another class too, or remove the labels to skip classification")
    k = max(shots)
    small = {label: n for label, n in sorted(counts.items()) if n < k}
    if small:
        listed = ", ".join(f"{label} ({n})" for label, n in small.items())
        raise ConfigError(f"too few labelled documents per class for {k}-shot sets: {listed}; lower --shots")
    if len(labels) <= k * len(counts):
        raise ConfigError(f"{len(labels)} labelled documents leave none to test on after {k} per class; lower --shots")
    return dict(sorted(counts.items()))


def fewshot_split(labels: dict[int, str], shots, test_docs: int, seed: int) -> dict:
    """``{"train": {k: [documents]}, "test": [documents]}`` of one seed: each class's documents
    in an order drawn by ``seed``, its first ``k`` in the k-shot set (so smaller sets nest in
    larger ones), and ``test_docs`` of the documents in no training set as the test set (all
    of them when fewer). A function of (labels, seed) alone: every variant of a seed sees the same."""
    rng = np.random.default_rng((seed, 5309))
    by_class: dict[str, list[int]] = {}
    for d, label in sorted(labels.items()):
        by_class.setdefault(label, []).append(d)
    order = {label: [docs[i] for i in rng.permutation(len(docs))] for label, docs in sorted(by_class.items())}
    train = {k: sorted(d for docs in order.values() for d in docs[:k]) for k in sorted(shots)}
    pool = set(train[max(shots)])
    rest = np.array([d for d in sorted(labels) if d not in pool], dtype=np.int64)
    test = rest if test_docs < 0 or test_docs >= len(rest) else rng.choice(rest, test_docs, replace=False)
    return {"train": train, "test": sorted(int(d) for d in test)}


def build_fewshot_data(ctx: Context, seed: int) -> dict:
    """``eval/fewshot/seed-<s>/``: ``split.json`` (document indices) and ``k<k>/{train,test}.json``
    in the fine-tuning format (``{"id", "sentence", "label"}``; the text is cut to max_length
    by the fine-tuning tokenizer). Returns the split."""
    folder = ctx.fewshot_dir(seed)
    if (folder / "split.json").exists():
        return _int_keys(json.loads((folder / "split.json").read_text()))
    corpus = ctx.corpus()
    labels = store_labels(ctx, corpus.store)
    split = fewshot_split(labels, ctx.mode.shots, ctx.mode.test_docs, seed)
    texts, names = read_texts(ctx, corpus.store), corpus.store.document_names()

    def records(docs):
        return [{"id": names[d]["id"], "sentence": texts[d], "label": labels[d]} for d in docs]

    for k, docs in split["train"].items():
        write_jsonl(folder / f"k{k}" / "train.json", records(docs))
        write_jsonl(folder / f"k{k}" / "test.json", records(split["test"]))
    used = sorted({*split["test"], *split["train"][max(split["train"])]})
    write_json(folder / "split.json", {**split, "labels": {str(d): labels[d] for d in used}})
    return split


def _int_keys(split: dict) -> dict:
    return {"train": {int(k): v for k, v in split["train"].items()}, "test": split["test"]}


def split_labels(ctx: Context, seed: int) -> dict[int, str]:
    """The labels recorded with a seed's split (``{document index: label}``)."""
    stored = json.loads((ctx.fewshot_dir(seed) / "split.json").read_text())["labels"]
    return {int(d): label for d, label in stored.items()}


def first_tokens(store, documents, length: int) -> list[np.ndarray]:
    """Each document's first ``length`` tokens: what a model reads of it when classifying."""
    return [np.asarray(store.document_tokens(int(d))[:length]) for d in documents]


def fewshot_path(ctx: Context, seed: int, k: int) -> Path:
    return ctx.fewshot_dir(seed) / f"k{k}"
