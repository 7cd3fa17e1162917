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
3. write ``graph/`` (CSR) and ``stats.json`` (every count, including what was skipped and why,
   and the corpus's ``fingerprint``: ``prepared.compute_fingerprint``).

The output folder is built beside ``--out`` and renamed into place only when complete, so a
failed run leaves whatever was there as it was; a non-empty ``--out`` is replaced only with
``--overwrite``. A corpus that keeps fewer than two documents is an error (pretraining pairs
segments of two documents); one without any link gets a warning. A document the tokenizer cannot
read (a lone surrogate in its text) is a ``BadInput`` naming it (``invalid_text``), which
``--skip-bad`` counts and skips. A very long document is encoded in pieces (bounded memory) when
the tokenizer allows it (``tokenization.splits_at_spaces``); the tokens are the same.
"""

from __future__ import annotations

import errno
import json
import os
import re
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

from linkbert import files, prepared, settings
from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, READERS, Document, Redirect, open_reader
from linkbert.errors import BadInput
from linkbert.graph import DocGraph, clean_row
from linkbert.links import LinkTable
from linkbert.segment import (DEFAULT_BUDGET, encoding_offsets, segment_lengths, sentence_token_starts,
                              sentence_token_starts_from_offsets)
from linkbert.settings import setting
from linkbert.store import SegmentStoreWriter, token_dtype

LINK_BUILDERS = ("none", "title-mention", "tfidf")
MIN_DOCUMENTS = 2  # a pretraining pair takes segments of two documents

# a document longer than this (characters) is encoded in pieces of about this size, PIECE_GROUP
# at a time, when the tokenizer allows it: the tokenizer's working memory (about 150 bytes per
# character) then stays that of a few pieces, not of the whole document
PIECE_CHARS = 1 << 18
PIECE_GROUP = 4

_SURROGATE = re.compile("[\ud800-\udfff]")


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
    overwrite: bool = setting(False, "replace what a non-empty --out holds (else it is refused); the old folder goes "
                                     "only once the new one is complete")
    max_record_bytes: int = setting(DEFAULT_MAX_RECORD_BYTES, "the most raw bytes one record (a line, a page, a "
                                                              "file) may take; a larger one is malformed "
                                                              "(skipped with --skip-bad)", minimum=1)


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

    from linkbert.tokenization import continuation_mask, splits_at_spaces

    backend = Tokenizer.from_str(tokenizer_json)
    _worker.update(reader=reader, backend=backend, continuation=continuation_mask(backend), split=splits_at_spaces(backend),
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
            unwritable = _unwritable_field(parsed)
            if unwritable:
                outcomes.append(("bad", _invalid_text(parsed, unwritable)))
                continue
            documents.append((len(outcomes), parsed))
            outcomes.append(None)
        elif isinstance(parsed, Redirect):
            outcomes.append(("redirect", parsed.key, parsed.target))
        else:
            outcomes.append(("skip", parsed.reason))
    encoded = _encode([doc for _, doc in documents])
    for (slot, doc), encoding in zip(documents, encoded):
        outcomes[slot] = ("bad", encoding) if isinstance(encoding, BadInput) else _segment_document(doc, encoding, reader)
    return outcomes


def _encode(documents: list[Document]) -> list:
    """Each document's tokens: a ``tokenizers.Encoding``, or ``(ids, offsets)`` arrays for a long
    text encoded in pieces, or a ``BadInput`` for a text the tokenizer cannot read.

    The chunk's documents are encoded in one batch; if the tokenizer fails on the batch, one by
    one, so that only the document it cannot read is lost.
    """
    backend = _worker["backend"]
    results: list = [None] * len(documents)
    whole = []
    for i, doc in enumerate(documents):
        if _worker["split"] and len(doc.text) > PIECE_CHARS:
            results[i] = _encode_in_pieces(doc)
        else:
            whole.append(i)
    try:
        encodings = backend.encode_batch([documents[i].text for i in whole], add_special_tokens=False)
    except BaseException as e:
        if not _tokenizer_error(e):
            raise
        encodings = [_encode_alone(documents[i]) for i in whole]
    for i, encoding in zip(whole, encodings):
        results[i] = encoding
    return results


def _encode_alone(doc: Document):
    try:
        return _worker["backend"].encode_batch([doc.text], add_special_tokens=False)[0]
    except BaseException as e:
        if not _tokenizer_error(e):
            raise
        return _invalid_text(doc, "text", e)


def _encode_in_pieces(doc: Document):
    """``(ids, offsets)`` of a long text, encoded piece by piece (``tokenization.piece_starts``)."""
    from linkbert.tokenization import piece_starts

    text, dtype = doc.text, _worker["dtype"]
    bounds = [*piece_starts(text, PIECE_CHARS), len(text)]
    ids, offsets = [], []
    try:
        for first in range(0, len(bounds) - 1, PIECE_GROUP):
            group = range(first, min(first + PIECE_GROUP, len(bounds) - 1))
            encodings = _worker["backend"].encode_batch([text[bounds[k]:bounds[k + 1]] for k in group],
                                                        add_special_tokens=False)
            for k, encoding in zip(group, encodings):
                ids.append(np.asarray(encoding.ids, dtype=dtype))
                offsets.append(encoding_offsets(encoding) + bounds[k])
            del encodings
    except BaseException as e:
        if not _tokenizer_error(e):
            raise
        return _invalid_text(doc, "text", e)
    return np.concatenate(ids), np.concatenate(offsets)


def _tokenizer_error(error: BaseException) -> bool:
    """An error of the tokenizer on a text (a ``TypeError`` for a lone surrogate, a Rust panic),
    not of the machine (memory) or the user (Ctrl-C)."""
    if type(error).__name__ == "PanicException":
        return True
    return isinstance(error, Exception) and not isinstance(error, (MemoryError, OSError))


def _unwritable_field(doc: Document) -> str | None:
    """The field of ``doc`` that UTF-8 cannot write (a lone surrogate), if any; the text is the
    tokenizer's to refuse."""
    if _SURROGATE.search(doc.id):
        return "id"
    if _SURROGATE.search(doc.title):
        return "title"
    if any(_SURROGATE.search(link) for link in doc.links):
        return "links"
    return None


def _invalid_text(doc: Document, field: str, error: BaseException | None = None) -> BadInput:
    value = {"id": doc.id, "title": doc.title, "text": doc.text, "links": "".join(doc.links)}[field]
    found = _SURROGATE.search(value)
    if found:
        detail = (f"its {field} holds a lone surrogate (U+{ord(found.group()):04X}, at character {found.start()}), "
                  "which is not Unicode text")
    else:
        message = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else type(error).__name__
        detail = f"the tokenizer cannot read its {field} ({message})"
    return BadInput(_worker["reader"].path, f"document {doc.id!r}", "invalid_text", detail)


def _segment_document(doc: Document, encoding, reader) -> tuple:
    keys = tuple(reader.document_keys(doc))
    if isinstance(encoding, tuple):  # a long text, encoded in pieces
        tokens, offsets = encoding
    else:
        tokens, offsets = np.asarray(encoding.ids, dtype=_worker["dtype"]), None
    if len(tokens) == 0:
        return ("empty", keys)
    starts = (sentence_token_starts(encoding, doc.text) if offsets is None
              else sentence_token_starts_from_offsets(doc.text, offsets))
    lengths = segment_lengths(starts, _worker["continuation"][tokens], _worker["budget"])
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


def _outcomes(config: PrepareConfig, reader, tokenizer_json: str, keep_text: bool, counts: Counter,
              warnings: list[str]) -> Iterator[tuple]:
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
        _warn(warnings, f"{error}; stopped reading there, keeping what came before")


class _Corpus:
    """What step 1 writes and counts: the store, the link table, and spooled links/texts."""

    def __init__(self, config: PrepareConfig, reader, vocab_size: int, folder: Path, spool: Path, keep_text: bool):
        self.config = config
        self.reader = reader
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
    """Run all steps; returns the statistics also written to ``OUT/stats.json``.

    ``OUT`` must be new or empty, or ``config.overwrite`` given; it is built beside and renamed
    into place when complete. Raises ``ConfigError`` (settings, the output folder, the
    tokenizer) or ``BadInput`` (the corpus, or one that keeps fewer than two documents).
    """
    started = time.perf_counter()
    settings.check(config)
    out = Path(config.out)
    files.check_output_folder(out, overwrite=config.overwrite, inputs=[config.input])
    _check_writable(out)
    reader = open_reader(config.format, config.input, max_record_bytes=config.max_record_bytes)
    tokenizer = _tokenizer(config, reader)
    try:
        with files.building(out) as folder:
            return _build(config, reader, tokenizer, folder, started)
    except OSError as e:
        named = _naming_output(e, out)
        if named is e:
            raise
        raise named from e


def _build(config: PrepareConfig, reader, tokenizer, folder: Path, started: float) -> dict:
    """Steps 1 to 3 into ``folder``; the statistics."""
    from linkbert.tokenization import plain_backend

    tokenizer.save_pretrained(prepared.tokenizer_dir(folder))
    backend = plain_backend(tokenizer)
    keep_text = config.link_builder != "none"
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(dir=folder, prefix=".spool-") as spool_name:
        spool = Path(spool_name)
        corpus = _Corpus(config, reader, backend.get_vocab_size(with_added_tokens=True), folder, spool, keep_text)
        with _progress(config, "documents") as bar:
            for outcome in _outcomes(config, reader, backend.to_str(), keep_text, corpus.skipped, warnings):
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


# what the machine, not the program, got wrong (as linkbert.cli reports them)
_ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


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


def _naming_output(error: OSError, out: Path) -> OSError:
    """An error writing the output (a full disk: ``write`` names no file; a file of the hidden
    folder it is built in) as one naming ``out``, so that the one line the CLI prints says
    which folder; any other error as it is."""
    if error.errno not in _ENVIRONMENT_ERRORS:
        return error
    name = str(error.filename or "")
    building = f".{out.name}.building-"
    if name and building not in name:
        return error
    inside = name.split(building, 1)[1].partition(os.sep)[2] if name else ""
    what = f" (writing {inside})" if inside else ""
    return OSError(error.errno, f"{error.strerror or error}{what}", str(out))


def _tokenizer(config: PrepareConfig, reader):
    from linkbert.tokenization import load_tokenizer, train_wordpiece

    if config.tokenizer != "train":
        return load_tokenizer(config.tokenizer)
    return train_wordpiece(lambda: (doc.text for doc in _documents(reader, config.skip_bad)),
                           vocab_size=config.vocab_size, lowercase=not config.cased)


def _documents(reader, skip_bad: bool) -> Iterator[Document]:
    """The corpus's documents parsed in this process (a pass for vocabulary training). A text
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
        if isinstance(parsed, Document) and not _SURROGATE.search(parsed.text):
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
