"""Step 1 of ``linkbert prepare``, read + tokenize: the reader's records, in chunks of about
``chunk_bytes``, go to worker processes (or this process, with one worker) that parse them,
tokenize each document once (a very long one in pieces) and cut it into sentence-aware segments;
the outcomes come back in input order (``record_outcomes``), whatever the number of workers.

The worker side is top-level functions (the pool pickles them by name) over one module global,
``_worker`` (the reader, the tokenizer, the settings), set up by ``_init_worker`` in each
process: a spawned worker imports this module and reads its own copy. It takes flat arguments
and imports nothing else of ``linkbert.prepare`` (a worker loads only what it runs);
``build.py`` writes what comes back.

A worker ends with the process that started it, however that one ended (``_die_with_parent``,
on ``lifetime.die_with_parent``):
killed (SIGKILL, or SIGTERM, whose default action gives no chance to shut the pool down), it
would otherwise leave its workers waiting on their task queue for ever, and with them
multiprocessing's resource tracker, which ends only when the last of them has.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator

import multiprocessing as mp
import numpy as np

from linkbert.corpus import Document, Redirect
from linkbert.corpus.io import SURROGATE
from linkbert.errors import BadInput
from linkbert.segment import encoding_offsets, segment_lengths, sentence_token_starts, sentence_token_starts_from_offsets
from linkbert.store import token_dtype

# a document longer than this (characters) is encoded in pieces of about this size, PIECE_GROUP
# at a time, when the tokenizer allows it: the tokenizer's working memory (about 150 bytes per
# character) then stays that of a few pieces, not of the whole document
PIECE_CHARS = 1 << 18
PIECE_GROUP = 4

_worker: dict = {}


def _init_worker(reader, tokenizer_json: str, budget: int, keep_text: bool, parallel_tokenizer: bool,
                 parent: int | None = None) -> None:
    """Set up a worker (or this process): the reader, the tokenizer rebuilt from JSON, settings;
    a worker process (``parent``: the pid of the process that started it) ends when its parent does.

    In worker processes the tokenizer runs single-threaded: the processes are the parallelism,
    and Rayon threads in each would only compete for the same cores.
    """
    if parent is not None:
        _die_with_parent(parent)
    if not parallel_tokenizer:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    from tokenizers import Tokenizer

    from linkbert.tokenization import continuation_mask, splits_at_spaces

    backend = Tokenizer.from_str(tokenizer_json)
    _worker.update(reader=reader, backend=backend, continuation=continuation_mask(backend), split=splits_at_spaces(backend),
                   budget=budget, keep_text=keep_text, dtype=token_dtype(backend.get_vocab_size(with_added_tokens=True)))


def _die_with_parent(parent: int) -> None:
    """End this process when ``parent`` ends: on Linux at once (``lifetime.die_with_parent``: the
    kernel's parent-death signal), elsewhere within a second (a thread that watches the parent pid
    change, as it does when the parent is gone and this process is handed to init)."""
    from linkbert.lifetime import die_with_parent

    immediate = die_with_parent()
    if os.getppid() != parent:  # the parent ended before the signal was asked for
        os._exit(1)
    if immediate:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


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
    if SURROGATE.search(doc.id):
        return "id"
    if SURROGATE.search(doc.title):
        return "title"
    if any(SURROGATE.search(link) for link in doc.links):
        return "links"
    return None


def _invalid_text(doc: Document, field: str, error: BaseException | None = None) -> BadInput:
    value = {"id": doc.id, "title": doc.title, "text": doc.text, "links": "".join(doc.links)}[field]
    found = SURROGATE.search(value)
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


def record_outcomes(reader, tokenizer_json: str, *, budget: int, workers: int, chunk_bytes: int, keep_text: bool,
                    skip_bad: bool, counts: Counter, warn: Callable[[str], None]) -> Iterator[tuple]:
    """Every record's outcome in input order, parsed by ``workers`` processes (1: this one) in
    chunks of about ``chunk_bytes``; documents cut into segments of at most ``budget`` tokens,
    with their text when ``keep_text`` (for a link builder).

    At most two chunks per worker are in flight, so reading never runs ahead of tokenizing
    (a plain ``Pool.imap`` would read the whole input into its queue). A fatal input error
    (truncated archive) ends the reading; everything read before it is processed first, then
    the error is raised, or with ``skip_bad`` counted in ``counts`` and said through ``warn``.
    """
    failure: list[BadInput] = []
    chunks = _chunks(reader.records(), chunk_bytes, failure)
    init_args = (reader, tokenizer_json, budget, keep_text)
    if workers <= 1:
        _init_worker(*init_args, parallel_tokenizer=True)
        for chunk in chunks:
            yield from _process_chunk(chunk)
    else:
        context = mp.get_context("spawn")  # fork would copy the parent's tokenizer threads and locks
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(*init_args, False, os.getpid())) as pool:
            pending: deque = deque()
            for chunk in chunks:
                pending.append(pool.submit(_process_chunk, chunk))
                if len(pending) >= 2 * workers:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
    for error in failure:
        if not (skip_bad and error.reason != "missing_path"):
            raise error
        counts[error.reason] += 1
        warn(f"{error}; stopped reading there, keeping what came before")
