"""``linkbert prepare``: a corpus of linked documents -> document graph + segment store.

    linkbert prepare --format wikispeedia --input data/wikispeedia \\
        --tokenizer bert-base-uncased --out prepared/wikispeedia --workers 2

Three steps, each streaming in constant memory (apart from the key -> document table that
link resolution needs):

1. read + tokenize: the reader's records go, in chunks, to worker processes that parse them and
   tokenize each document once into sentence-aware segments; the main process appends the
   results to the segment store in input order, so the output is byte-identical whatever the
   number of workers. Raw link targets are spooled to a temporary file.
2. link: every raw target is resolved to a document (ids, normalised titles, redirects), or
   links are built from the texts (``--link-builder title-mention|tfidf``).
3. write ``graph/`` (CSR) and ``stats.json`` (every count, including what was skipped and why).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import multiprocessing as mp
import numpy as np

from linkbert import prepared, settings
from linkbert.corpus import READERS, Document, Redirect, open_reader
from linkbert.errors import BadInput
from linkbert.graph import DocGraph, clean_row
from linkbert.links import LinkTable
from linkbert.segment import DEFAULT_BUDGET, segment_lengths, sentence_token_starts
from linkbert.settings import setting
from linkbert.store import SegmentStoreWriter, token_dtype

LINK_BUILDERS = ("none", "title-mention", "tfidf")


@dataclass
class PrepareConfig:
    """Every setting of ``linkbert prepare``; each is a ``--flag`` of the command."""

    format: str = setting(None, "corpus format", choices=sorted(READERS), required=True)
    input: str = setting(None, "corpus file or folder, as the format expects", required=True)
    tokenizer: str = setting(None, 'local tokenizer folder, hub name (online), or "train" to train a WordPiece '
                                   "vocabulary on the corpus", required=True)
    out: str = setting(None, "output folder: the prepared corpus", required=True)
    workers: int = setting(1, "parsing/tokenizing processes; 1: in this process", minimum=1)
    link_builder: str = setting("none", "none: the corpus's own links; title-mention or tfidf: links built from "
                                        "the texts", choices=LINK_BUILDERS)
    tfidf_k: int = setting(5, "targets per document for --link-builder tfidf (the paper's ablation: 5)", minimum=1)
    skip_bad: bool = setting(False, "count and skip malformed records (reported in stats.json) instead of stopping")
    segment_budget: int = setting(DEFAULT_BUDGET, "most tokens per segment; pretraining's max_length must be at "
                                                  "least 2 x this + 3", minimum=1)
    vocab_size: int = setting(30522, "vocabulary size for --tokenizer train", minimum=16)
    cased: bool = setting(False, "keep case when training a vocabulary (--tokenizer train)")
    chunk_bytes: int = setting(1 << 20, "raw bytes of records per worker task (about 1 MB balances load and "
                                        "overhead)", minimum=1)
    progress: bool = setting(True, "show a progress bar")


# -- step 1: read + tokenize -------------------------------------------------------------------

_worker: dict = {}


def _init_worker(reader, tokenizer_json: str, budget: int, keep_text: bool, parallel_tokenizer: bool) -> None:
    """Set up a worker (or this process): the reader, the tokenizer rebuilt from JSON, settings.

    In worker processes the tokenizer runs single-threaded: the processes are the parallelism,
    and Rayon threads in each would only compete for the same cores.
    """
    if not parallel_tokenizer:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer

    from linkbert.tokenization import continuation_mask

    backend = Tokenizer.from_str(tokenizer_json)
    _worker.update(reader=reader, backend=backend, continuation=continuation_mask(backend),
                   budget=budget, keep_text=keep_text, dtype=token_dtype(backend.get_vocab_size(with_added_tokens=True)))


def _process_chunk(records: list) -> list[tuple]:
    """Parse and tokenize a chunk of records; one outcome tuple per record, in order.

    ("doc", id, title, links, keys, tokens, segment lengths, text or None) | ("empty", keys) |
    ("redirect", key, target) | ("skip", reason) | ("bad", BadInput)
    """
    reader = _worker["reader"]
    outcomes: list[tuple] = []
    documents: list[tuple[int, Document]] = []
    for record in records:
        try:
            parsed = reader.parse(record)
        except BadInput as e:
            outcomes.append(("bad", e))
            continue
        if isinstance(parsed, Document):
            documents.append((len(outcomes), parsed))
            outcomes.append(None)
        elif isinstance(parsed, Redirect):
            outcomes.append(("redirect", parsed.key, parsed.target))
        else:
            outcomes.append(("skip", parsed.reason))
    encodings = _worker["backend"].encode_batch([doc.text for _, doc in documents], add_special_tokens=False)
    for (slot, doc), encoding in zip(documents, encodings):
        outcomes[slot] = _segment_document(doc, encoding, reader)
    return outcomes


def _segment_document(doc: Document, encoding, reader) -> tuple:
    keys = tuple(reader.document_keys(doc))
    tokens = np.asarray(encoding.ids, dtype=_worker["dtype"])
    if len(tokens) == 0:
        return ("empty", keys)
    lengths = segment_lengths(sentence_token_starts(encoding, doc.text), _worker["continuation"][tokens],
                              _worker["budget"])
    text = doc.text if _worker["keep_text"] else None
    return ("doc", doc.id, doc.title, doc.links, keys, tokens, np.asarray(lengths, np.int64), text)


def _chunks(records: Iterable, chunk_bytes: int, failure: list) -> Iterator[list]:
    """Records grouped into chunks of about ``chunk_bytes``.

    A fatal input error (a truncated archive) ends the chunks after the records read before
    it; the error goes to ``failure`` so the caller can decide once everything before it is done.
    """
    chunk, size = [], 0
    try:
        for record in records:
            chunk.append(record)
            size += _record_size(record)
            if size >= chunk_bytes:
                yield chunk
                chunk, size = [], 0
    except BadInput as e:
        failure.append(e)
    if chunk:
        yield chunk


def _record_size(record) -> int:
    if isinstance(record, (bytes, str)):
        return len(record)
    if isinstance(record, tuple):
        return sum(_record_size(field) for field in record)
    return 64


def _outcomes(config: PrepareConfig, reader, tokenizer_json: str, keep_text: bool, counts: Counter) -> Iterator[tuple]:
    """Every record's outcome in input order, parsed by ``config.workers`` processes.

    At most two chunks per worker are in flight, so reading never runs ahead of tokenizing
    (a plain ``Pool.imap`` would read the whole input into its queue). A fatal input error
    (truncated archive) ends the reading; everything read before it is processed first, then
    the error is raised, or with ``skip_bad`` counted.
    """
    failure: list[BadInput] = []
    chunks = _chunks(reader.records(), config.chunk_bytes, failure)
    init_args = (reader, tokenizer_json, config.segment_budget, keep_text)
    if config.workers <= 1:
        _init_worker(*init_args, parallel_tokenizer=True)
        for chunk in chunks:
            yield from _process_chunk(chunk)
    else:
        context = mp.get_context("spawn")  # fork would copy the parent's tokenizer threads and locks
        with ProcessPoolExecutor(config.workers, mp_context=context, initializer=_init_worker,
                                 initargs=(*init_args, False)) as pool:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.submit(_process_chunk, chunk))
                if len(pending) >= 2 * config.workers:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
    for error in failure:
        if not (config.skip_bad and error.reason != "missing_path"):
            raise error
        counts[error.reason] += 1
        print(f"linkbert prepare: warning: {error}; stopped reading there, keeping what came before", file=sys.stderr)


class _Corpus:
    """What step 1 writes and counts: the store, the link table, and spooled links/texts."""

    def __init__(self, config: PrepareConfig, reader, vocab_size: int, spool: Path, keep_text: bool):
        self.config = config
        self.reader = reader
        self.store = SegmentStoreWriter(config.out, vocab_size)
        self.table = LinkTable()
        self.skipped: Counter = Counter()
        self.redirects = 0
        self.links_file = open(spool / "links.jsonl", "w", encoding="utf-8")
        self.texts_file = open(spool / "texts.jsonl", "w", encoding="utf-8") if keep_text else None

    def take(self, outcome: tuple) -> None:
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
            if not self.config.skip_bad:
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


# -- the command -------------------------------------------------------------------------------

def prepare(config: PrepareConfig) -> dict:
    """Run all steps; returns the statistics also written to ``OUT/stats.json``."""
    started = time.perf_counter()
    settings.check(config)
    reader = open_reader(config.format, config.input)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(config, reader)
    tokenizer.save_pretrained(prepared.tokenizer_dir(out))
    from linkbert.tokenization import plain_backend

    backend = plain_backend(tokenizer)
    keep_text = config.link_builder != "none"
    with tempfile.TemporaryDirectory(dir=out, prefix=".spool-") as spool_name:
        spool = Path(spool_name)
        corpus = _Corpus(config, reader, backend.get_vocab_size(with_added_tokens=True), spool, keep_text)
        with _progress(config, "documents") as bar:
            for outcome in _outcomes(config, reader, backend.to_str(), keep_text, corpus.skipped):
                corpus.take(outcome)
                bar.update(outcome[0] == "doc")
        store_meta = corpus.close()
        link_counts: Counter = Counter()
        rows = (_resolved_rows(corpus, spool, link_counts) if config.link_builder == "none"
                else _built_rows(config, spool, out, link_counts))
        graph = DocGraph.from_rows(rows, store_meta["documents"])
    graph.save(prepared.graph_dir(out))
    stats = _stats(config, store_meta, corpus, graph, link_counts, time.perf_counter() - started)
    prepared.stats_path(out).write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    return stats


def _tokenizer(config: PrepareConfig, reader):
    from linkbert.tokenization import load_tokenizer, train_wordpiece

    if config.tokenizer != "train":
        return load_tokenizer(config.tokenizer)
    texts = (doc.text for doc in _documents(reader, config.skip_bad))
    return train_wordpiece(texts, vocab_size=config.vocab_size, lowercase=not config.cased)


def _documents(reader, skip_bad: bool) -> Iterator[Document]:
    """The corpus's documents parsed in this process (a first pass for vocabulary training)."""
    for record in reader.records():
        try:
            parsed = reader.parse(record)
        except BadInput:
            if skip_bad:
                continue
            raise
        if isinstance(parsed, Document):
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


def configure(parser) -> None:
    settings.add_flags(parser, PrepareConfig)


def main(args) -> int:
    config = settings.from_flags(PrepareConfig, args)
    stats = prepare(config)
    print(summary(stats, config.out))
    return 0


def summary(stats: dict, out: str) -> str:
    skipped = ", ".join(f"{k} {v:,}" for k, v in stats["documents_skipped"].items()) or "none"
    dropped = ", ".join(f"{k} {v:,}" for k, v in stats["links_dropped"].items()) or "none"
    lines = [
        f"prepared {stats['documents']:,} documents in {stats['seconds']:.1f}s -> {out}",
        f"  skipped documents: {skipped}; redirects: {stats['redirects']:,}",
        f"  segments {stats['segments']:,}, tokens {stats['tokens']:,} ({stats['token_dtype']})",
        f"  links: raw {stats['links_raw']:,}, resolved {stats['links_resolved']:,} (dropped: {dropped})",
        f"  documents without out-links: {stats['docs_without_outlinks']:,}",
    ]
    return "\n".join(lines)
