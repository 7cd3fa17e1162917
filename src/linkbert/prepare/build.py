"""The three steps of ``linkbert prepare`` into the output folder (:func:`prepare`).

1. read + tokenize (``workers.record_outcomes``): the outcomes, in input order, appended to the
   segment store; raw link targets (and, for a link builder, the texts) spooled to temporary files;
2. links: every raw target resolved to a document, or links built from the texts;
3. ``graph/`` and ``stats.json``.

The folder is built beside ``config.out`` (``files.building``) and renamed into place when
complete.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from linkbert import files, prepared, settings
from linkbert.corpus import Document, open_reader
from linkbert.corpus.io import SURROGATE
from linkbert.errors import BadInput
from linkbert.graph import DocGraph, clean_row
from linkbert.links import LinkTable
from linkbert.prepare.settings import MIN_DOCUMENTS, PrepareConfig, input_paths, reader_options
from linkbert.prepare.workers import record_outcomes
from linkbert.store import SegmentStoreWriter


# -- step 1: read + tokenize (the reading and tokenizing: workers.py) -------------------------

class _Corpus:
    """What step 1 writes and counts: the store, the link table, and spooled links/texts."""

    def __init__(self, reader, vocab_size: int, folder: Path, spool: Path, *, keep_text: bool, skip_bad: bool):
        self.reader = reader
        self.skip_bad = skip_bad
        self.store = SegmentStoreWriter(folder, vocab_size)
        self.table = LinkTable()
        self.skipped: Counter = Counter()
        self.records = 0
        self.redirects = 0
        self.links_file = open(spool / "links.jsonl", "w", encoding="utf-8")
        self.texts_file = open(spool / "texts.jsonl", "w", encoding="utf-8") if keep_text else None

    def take(self, outcome: tuple) -> None:
        self.records += 1
        kind = outcome[0]
        if kind == "doc":
            self._take_document(*outcome[1:])
        elif kind == "empty":
            self.skipped["empty"] += 1
            self.table.add_skipped(outcome[1])
        elif kind == "redirect":
            self.redirects += 1
            self.table.add_redirect(outcome[1], outcome[2])
        elif kind == "skip":
            self.skipped[outcome[1]] += 1
        else:
            error: BadInput = outcome[1]
            if not self.skip_bad:
                raise error
            self.skipped[error.reason] += 1

    def _take_document(self, doc_id, title, links, keys, tokens, lengths, text) -> None:
        if keys and self.table.claims(keys[0]):
            self.skipped["duplicate_id"] += 1
            return
        index = self.store.add(doc_id, title, tokens, lengths)
        self.table.add_document(keys, index)
        self.links_file.write(json.dumps(links, ensure_ascii=False) + "\n")
        if self.texts_file is not None:
            self.texts_file.write(json.dumps(text, ensure_ascii=False) + "\n")

    def close(self) -> dict:
        self.links_file.close()
        if self.texts_file is not None:
            self.texts_file.close()
        return self.store.close()


# -- step 2: links -----------------------------------------------------------------------------

def _resolved_rows(corpus: _Corpus, spool: Path, link_counts: Counter) -> Iterator[np.ndarray]:
    """Each document's resolved targets (sorted, unique, no self-link), counting every raw target."""
    with open(spool / "links.jsonl", encoding="utf-8") as f:
        for source, line in enumerate(f):
            targets = []
            for raw in json.loads(line):
                link_counts["links_raw"] += 1
                target, how = corpus.table.resolve(corpus.reader.link_keys(raw))
                if target is None:
                    link_counts[how] += 1
                else:
                    link_counts["via_redirect"] += how == "redirect"
                    targets.append(target)
            row, n_self, n_duplicate = clean_row(source, targets)
            link_counts["self"] += n_self
            link_counts["duplicate"] += n_duplicate
            yield row


def _built_rows(config: PrepareConfig, spool: Path, store_dir: Path, link_counts: Counter) -> Iterator[np.ndarray]:
    """Rows from a link builder run on the spooled texts, in store order."""
    from linkbert import link_builders
    from linkbert.store import SegmentStore

    def texts() -> Iterator[str]:
        with open(spool / "texts.jsonl", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)

    if config.link_builder == "title-mention":
        titles = [name["title"] for name in SegmentStore(store_dir).document_names()]
        indptr, indices = link_builders.title_mention_links(titles, texts())
    else:
        indptr, indices = link_builders.tfidf_links(texts(), k=config.tfidf_k)
    # the builders give no self-links and no duplicates; rows only need DocGraph's sorted order
    for i in range(len(indptr) - 1):
        row = np.sort(indices[indptr[i]:indptr[i + 1]])
        link_counts["links_raw"] += len(row)
        yield row


# -- all steps -----------------------------------------------------------------------------------

def prepare(config: PrepareConfig) -> dict:
    """Run all steps; returns the statistics also written to ``OUT/stats.json``.

    ``OUT`` must be new or empty, or ``config.overwrite`` given; it is built beside and renamed
    into place when complete. Raises ``ConfigError`` (settings, the output folder, the
    tokenizer) or ``BadInput`` (the corpus, or one that keeps fewer than two documents).
    """
    started = time.perf_counter()
    settings.check(config)
    out = Path(config.out)
    files.check_output_folder(out, overwrite=config.overwrite, inputs=input_paths(config.input, reader_options(config)))
    _check_writable(out)
    reader = open_reader(config.format, config.input, max_record_bytes=config.max_record_bytes,
                         **reader_options(config))
    tokenizer = _tokenizer(config, reader)
    with files.naming_output(out), files.building(out) as folder:
        return _build(config, reader, tokenizer, folder, started)


def _build(config: PrepareConfig, reader, tokenizer, folder: Path, started: float) -> dict:
    """Steps 1 to 3 into ``folder``; the statistics."""
    from linkbert.tokenization import plain_backend

    tokenizer.save_pretrained(prepared.tokenizer_dir(folder))
    backend = plain_backend(tokenizer)
    keep_text = config.link_builder != "none"
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(dir=folder, prefix=".spool-") as spool_name:
        spool = Path(spool_name)
        corpus = _Corpus(reader, backend.get_vocab_size(with_added_tokens=True), folder, spool, keep_text=keep_text,
                         skip_bad=config.skip_bad)
        outcomes = record_outcomes(reader, backend.to_str(), budget=config.segment_budget, workers=config.workers,
                                   chunk_bytes=config.chunk_bytes, keep_text=keep_text, skip_bad=config.skip_bad,
                                   counts=corpus.skipped, warn=functools.partial(_warn, warnings))
        with _progress(config, "documents") as bar:
            for outcome in outcomes:
                corpus.take(outcome)
                bar.update(outcome[0] == "doc")
        store_meta = corpus.close()
        _check_enough_documents(config, corpus, store_meta["documents"])
        link_counts: Counter = Counter()
        rows = (_resolved_rows(corpus, spool, link_counts) if config.link_builder == "none"
                else _built_rows(config, spool, folder, link_counts))
        graph = DocGraph.from_rows(rows, store_meta["documents"])
    graph.save(prepared.graph_dir(folder))
    if graph.num_edges == 0:
        _warn(warnings, _no_links_warning(config, link_counts))
    stats = _stats(config, store_meta, corpus, graph, link_counts, time.perf_counter() - started)
    stats["warnings"] = warnings
    stats["fingerprint"] = prepared.compute_fingerprint(folder)
    files.write_json(prepared.stats_path(folder), stats, indent=2)
    return stats


def _check_enough_documents(config: PrepareConfig, corpus: _Corpus, documents: int) -> None:
    """Fewer than two documents cannot make a pretraining pair: a ``BadInput`` naming the input,
    with what was read and why the rest was skipped."""
    if documents >= MIN_DOCUMENTS:
        return
    skipped = ", ".join(f"{reason} {count:,}" for reason, count in sorted(corpus.skipped.items())) or "none"
    redirects = f", redirects {corpus.redirects:,}" if corpus.redirects else ""
    hint = ""
    if corpus.records == 0:
        hint = f"; is it really a {config.format} corpus? (--format)"
    raise BadInput(config.input, "", "too_few_documents",
                   f"{documents} document{'s' if documents != 1 else ''} kept, at least {MIN_DOCUMENTS} needed "
                   f"(a pretraining pair takes segments of two documents): read {corpus.records:,} "
                   f"record{'s' if corpus.records != 1 else ''}; "
                   f"skipped: {skipped}{redirects}{hint}", fatal=True)


def _no_links_warning(config: PrepareConfig, link_counts: Counter) -> str:
    fallback = "pretraining pairs will be contiguous or random only, never linked"
    if config.link_builder != "none":
        return f"the {config.link_builder} link builder found no links: {fallback}"
    raw = link_counts["links_raw"]
    found = f"none of its {raw:,} link targets resolved to another document" if raw else "its documents have no links"
    return f"the corpus has no links ({found}): {fallback}; --link-builder title-mention or tfidf builds links from the texts"


def _warn(warnings: list[str], message: str) -> None:
    warnings.append(message)
    print(f"linkbert prepare: warning: {message}", file=sys.stderr)


def _check_writable(out: Path) -> None:
    """Fail now, not after hours of work, where the output folder cannot be built: it is built
    beside ``out`` (in its parent, or the nearest folder above that exists) and an existing
    ``out`` is moved away at the end (which needs write permission on it)."""
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    for folder, what in ((parent, f"cannot build the output folder {out} here"),
                         (out, "cannot replace this output folder")):
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            code = errno.EROFS if _read_only(folder) else errno.EACCES
            raise OSError(code, f"{os.strerror(code)}: {what}", str(folder))


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _tokenizer(config: PrepareConfig, reader):
    from linkbert.tokenization import load_tokenizer, train_wordpiece

    if config.tokenizer != "train":
        return load_tokenizer(config.tokenizer)
    return train_wordpiece(lambda: (doc.text for doc in parsed_documents(reader, config.skip_bad)),
                           vocab_size=config.vocab_size, lowercase=not config.cased)


def parsed_documents(reader, skip_bad: bool) -> Iterator[Document]:
    """The corpus's documents parsed in this process, as prepare keeps them (its pass for
    vocabulary training; the quickstart's for its classification data). A text
    the tokenizer cannot read (a lone surrogate) is left out here; the tokenizing pass reports it.
    A fatal input error ends the pass (with ``skip_bad``, as the tokenizing pass will)."""
    records = reader.records()
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except BadInput as e:
            if skip_bad and e.reason != "missing_path":
                return
            raise
        try:
            parsed = reader.parse(record)
        except BadInput:
            if skip_bad:
                continue
            raise
        if isinstance(parsed, Document) and not SURROGATE.search(parsed.text):
            yield parsed


def _stats(config: PrepareConfig, store_meta: dict, corpus: _Corpus, graph: DocGraph, link_counts: Counter,
           seconds: float) -> dict:
    dropped = {key: link_counts[key] for key in ("dangling", "to_skipped_document", "redirect_loop", "self", "duplicate")
               if link_counts[key]}
    graph_stats = graph.stats()
    return {
        "format": config.format,
        "input": str(config.input),
        "tokenizer": config.tokenizer,
        "link_builder": config.link_builder,
        "segment_budget": config.segment_budget,
        "max_record_bytes": config.max_record_bytes,
        "records_read": corpus.records,
        "documents": store_meta["documents"],
        "documents_skipped": dict(sorted(corpus.skipped.items())),
        "redirects": corpus.redirects,
        "segments": store_meta["segments"],
        "tokens": store_meta["tokens"],
        "vocab_size": store_meta["vocab_size"],
        "token_dtype": store_meta["dtype"],
        "links_raw": link_counts["links_raw"],
        "links_resolved": graph.num_edges,
        "links_dangling": link_counts["dangling"],
        "links_via_redirect": link_counts["via_redirect"],
        "links_dropped": dropped,
        "key_collisions": corpus.table.collisions,
        "docs_without_outlinks": graph_stats["docs_without_outlinks"],
        "docs_without_inlinks": graph_stats["docs_without_inlinks"],
        "graph": graph_stats,
        "workers": config.workers,
        "seconds": round(seconds, 2),
    }


def _progress(config: PrepareConfig, unit: str):
    from tqdm import tqdm

    return tqdm(unit=f" {unit}", disable=not config.progress, file=sys.stderr, dynamic_ncols=True, smoothing=0.1)

