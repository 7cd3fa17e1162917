"""The segment store: every segment's token ids in one flat memory-mapped file, plus an index.

Layout of a prepared folder (all little-endian, raw arrays readable with ``np.memmap``)::

    tokens.bin          token ids of all segments, back to back, dtype ``store.json:dtype``
    segments.bin        int64, n_segments + 1 offsets into tokens.bin (segment s = tokens[o[s]:o[s+1]])
    documents.bin       int64, n_documents + 1 offsets into segments (document d = segments [o[d], o[d+1]))
    documents.jsonl     one {"id", "title"} per document, in store order
    store.json          counts, dtype, vocabulary size

The writer appends as documents arrive (constant memory); the reader maps the files, so any
number of processes can share one copy through the page cache (the Megatron/OLMo pattern).

A damaged store (a truncated or edited file, a ``store.json`` that is not what prepare wrote) is a
``BadInput`` naming the file when it is opened, never an error deep in a data step:
:class:`SegmentStore` checks ``store.json`` and every file's size (cheap: each worker process opens
the store again), :meth:`SegmentStore.check` the arrays' bounds once (a pass over the offsets and
the tokens, chunked: about a second per GB of tokens read from the page cache, docs/performance.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from linkbert.errors import BadInput

TOKENS = "tokens.bin"
SEGMENTS = "segments.bin"
DOCUMENTS = "documents.bin"
DOCUMENT_NAMES = "documents.jsonl"
META = "store.json"
FILES = (META, TOKENS, SEGMENTS, DOCUMENTS, DOCUMENT_NAMES)  # every file of a store
TOKEN_DTYPES = ("uint8", "uint16", "uint32")
COUNTS = ("documents", "segments", "tokens")
SCAN_CHUNK = 1 << 24  # elements per step of the bounds checks: small temporaries


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type that holds every token id."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"vocabulary of {vocab_size} tokens does not fit 32 bits")


class SegmentStoreWriter:
    """Appends documents, each a list of segments (1-D integer arrays), to a store folder."""

    def __init__(self, out_dir: str | Path, vocab_size: int):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.vocab_size = vocab_size
        self.dtype = token_dtype(vocab_size)
        self._tokens = open(self.dir / TOKENS, "wb")
        self._segments = open(self.dir / SEGMENTS, "wb")
        self._documents = open(self.dir / DOCUMENTS, "wb")
        self._names = open(self.dir / DOCUMENT_NAMES, "w", encoding="utf-8")
        self.n_tokens = 0
        self.n_segments = 0
        self.n_documents = 0
        self._segments.write(np.zeros(1, np.int64).tobytes())
        self._documents.write(np.zeros(1, np.int64).tobytes())

    def add(self, doc_id: str, title: str, tokens: np.ndarray, lengths: np.ndarray) -> int:
        """Append one document: ``tokens`` (n,) cut into segments of ``lengths``; returns its index."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if int(lengths.sum()) != len(tokens) or (lengths <= 0).any():
            raise ValueError(f"document {doc_id!r}: segment lengths must be positive and sum to its token count")
        if len(tokens) and int(tokens.max()) >= self.vocab_size:
            raise ValueError(f"document {doc_id!r}: token id {int(tokens.max())} outside the vocabulary of {self.vocab_size}")
        self._tokens.write(np.asarray(tokens, dtype=self.dtype).tobytes())
        self._segments.write((self.n_tokens + np.cumsum(lengths)).tobytes())
        self.n_tokens += len(tokens)
        self.n_segments += len(lengths)
        self._documents.write(np.int64(self.n_segments).tobytes())
        self._names.write(json.dumps({"id": doc_id, "title": title}, ensure_ascii=False) + "\n")
        self.n_documents += 1
        return self.n_documents - 1

    def close(self) -> dict:
        for f in (self._tokens, self._segments, self._documents, self._names):
            f.close()
        meta = {"format": 1, "dtype": self.dtype.name, "vocab_size": self.vocab_size,
                "documents": self.n_documents, "segments": self.n_segments, "tokens": self.n_tokens}
        (self.dir / META).write_text(json.dumps(meta, indent=2) + "\n")
        return meta


class SegmentStore:
    """Read-only view of a prepared store; cheap to open, safe to share across processes."""

    def __init__(self, store_dir: str | Path):
        self.dir = Path(store_dir)
        meta_path = self.dir / META
        if not meta_path.exists():
            raise FileNotFoundError(f"{self.dir} is not a prepared corpus (no {META}); run `linkbert prepare` first")
        self.meta = read_meta(meta_path)
        self.dtype = np.dtype(self.meta["dtype"])
        self.vocab_size = int(self.meta["vocab_size"])
        self.tokens = _map(self.dir / TOKENS, self.dtype, self.meta["tokens"])
        self.segment_offsets = _map(self.dir / SEGMENTS, np.int64, self.meta["segments"] + 1)
        self.document_offsets = _map(self.dir / DOCUMENTS, np.int64, self.meta["documents"] + 1)

    def __reduce__(self):
        # a worker process re-maps the files: pickling the arrays would copy the whole corpus
        return (SegmentStore, (str(self.dir),))

    @property
    def num_documents(self) -> int:
        return len(self.document_offsets) - 1

    @property
    def num_segments(self) -> int:
        return len(self.segment_offsets) - 1

    def segment(self, s: int) -> np.ndarray:
        """Token ids of segment ``s`` (a view into the memory map)."""
        return self.tokens[self.segment_offsets[s]:self.segment_offsets[s + 1]]

    def document_segments(self, d: int) -> range:
        """The segment indices of document ``d``, in document order."""
        return range(int(self.document_offsets[d]), int(self.document_offsets[d + 1]))

    def document_tokens(self, d: int) -> np.ndarray:
        segments = self.document_segments(d)
        return self.tokens[self.segment_offsets[segments.start]:self.segment_offsets[segments.stop]]

    def segment_document(self, s: int | np.ndarray) -> int | np.ndarray:
        """The document that segment(s) ``s`` belong to."""
        return np.searchsorted(self.document_offsets, s, side="right") - 1

    def document_names(self) -> list[dict]:
        """[{"id", "title"}] for every document (reads documents.jsonl: not for hot paths)."""
        with open(self.dir / DOCUMENT_NAMES, encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    def check(self) -> None:
        """The arrays' bounds: segment offsets rise from 0 to the token count, document offsets
        from 0 to the segment count, every token id lies in the vocabulary; a ``BadInput``
        naming the first file that breaks one. One chunked pass over each array."""
        _check_offsets(self.dir / SEGMENTS, self.segment_offsets, self.meta["tokens"], "tokens", strict=True)
        _check_offsets(self.dir / DOCUMENTS, self.document_offsets, self.meta["segments"], "segments", strict=False)
        if self.vocab_size <= np.iinfo(self.dtype).max:  # else every value of the type is a token id
            for start in range(0, len(self.tokens), SCAN_CHUNK):
                highest = int(self.tokens[start:start + SCAN_CHUNK].max())
                if highest >= self.vocab_size:
                    raise damaged(self.dir / TOKENS, f"token id {highest} (near token {start:,}) is outside the "
                                                     f"vocabulary of {self.vocab_size}")


def damaged(path: Path, detail: str) -> BadInput:
    """The error of a prepared corpus's damaged file."""
    return BadInput(str(path), "", "damaged_corpus", f"{detail}: the prepared corpus is damaged; prepare it again")


def read_meta(path: Path) -> dict:
    """``store.json``, checked: the counts, a token type and a vocabulary size prepare could write."""
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
        detail = "nested too deeply" if isinstance(e, RecursionError) else str(e).splitlines()[0]
        raise damaged(path, f"not valid JSON ({detail})") from None
    if not isinstance(meta, dict):
        raise damaged(path, "not a JSON object")
    for key in (*COUNTS, "vocab_size"):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "vocab_size" else 0):
            raise damaged(path, f"{key} is {value!r}, not a count")
    if meta.get("dtype") not in TOKEN_DTYPES:
        raise damaged(path, f"dtype is {meta.get('dtype')!r}, not one of {', '.join(TOKEN_DTYPES)}")
    return meta


def _check_offsets(path: Path, offsets: np.ndarray, end: int, what: str, *, strict: bool) -> None:
    """Offsets must start at 0, rise (``strict``: a segment is never empty; a document may be)
    and end at ``end``."""
    if offsets[0] != 0 or offsets[-1] != end:
        raise damaged(path, f"offsets run from {int(offsets[0])} to {int(offsets[-1])}, not from 0 to the "
                            f"{end:,} {what} of store.json")
    for start in range(0, len(offsets) - 1, SCAN_CHUNK):
        steps = np.diff(offsets[start:start + SCAN_CHUNK + 1])
        falls = steps <= 0 if strict else steps < 0
        if falls.any():
            at = start + int(np.argmax(falls))
            raise damaged(path, f"offset {at + 1} ({int(offsets[at + 1])}) is below the one before it "
                                f"({int(offsets[at])})" if not strict or steps[at - start] < 0 else
                                f"offset {at + 1} ({int(offsets[at + 1])}) repeats the one before it")


def _map(path: Path, dtype, count: int) -> np.ndarray:
    expected = count * np.dtype(dtype).itemsize
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise damaged(path, "missing") from None
    if size != expected:
        raise damaged(path, f"{size:,} bytes where store.json's counts make {expected:,} (a truncated copy?)")
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))
