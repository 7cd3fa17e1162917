"""A prepared corpus folder, what ``linkbert prepare --out`` writes and everything else reads.

Layout::

    tokens.bin, segments.bin, documents.bin, documents.jsonl, store.json
                    the segment store (``store.py`` owns these files)
    graph/          the document graph (``graph.py``: CSR arrays and graph.json); absent
                    for a corpus without links
    tokenizer/      the tokenizer the segments were written with (a transformers folder)
    stats.json      what prepare read, skipped and wrote, and the settings it wrote with
                    (among them ``segment_budget``, the most tokens a segment may hold), and
                    the corpus's ``fingerprint`` (:func:`compute_fingerprint`)

:class:`PreparedCorpus` opens such a folder: its store, graph, tokenizer, statistics and
fingerprint, and the facts of its tokenizer a pair's layout depends on. What pretraining builds
from it (pair samplers, the collator) is ``pretrain/data.py``'s. Opening it checks the store's and
the graph's bounds (``SegmentStore.check``, ``DocGraph.check_bounds``), once per process and
folder: a damaged corpus is a ``BadInput`` naming its file before any work starts.

Example::

    >>> corpus = PreparedCorpus("prepared/wikispeedia")
    >>> corpus.store.num_documents, corpus.segment_budget, corpus.pair_overhead
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np

from linkbert.errors import BadInput, ConfigError
from linkbert.store import FILES as STORE_FILES
from linkbert.store import META, SegmentStore

GRAPH = "graph"
TOKENIZER = "tokenizer"
STATS = "stats.json"
PAIR_OVERHEAD = 3  # [CLS] A [SEP] B [SEP]


def graph_dir(folder: str | Path) -> Path:
    return Path(folder) / GRAPH


def tokenizer_dir(folder: str | Path) -> Path:
    return Path(folder) / TOKENIZER


def stats_path(folder: str | Path) -> Path:
    return Path(folder) / STATS


def is_prepared(folder: str | Path) -> bool:
    return (Path(folder) / META).is_file()


FINGERPRINT_VERSION = 1
# the files a corpus's identity rests on: the segment store and the graph's arrays (graph.json
# and in_degree.npy follow from these), then the tokenizer's vocabulary
FINGERPRINT_FILES = (*STORE_FILES, f"{GRAPH}/indptr.npy", f"{GRAPH}/indices.npy")


def compute_fingerprint(folder: str | Path) -> str:
    """SHA-256 (hex) of what pretraining reads from a prepared folder: every byte of the segment
    store (tokens, segment and document offsets, document ids and titles, store.json), of the
    graph's CSR arrays, and the tokenizer's vocabulary (token and id, in id order). Two folders
    have the same fingerprint exactly when they hold the same corpus, tokenized the same way
    with the same vocabulary and linked the same way, wherever and however often they were
    prepared; any change to the data changes it. Reads every file once (about a second per GB).
    """
    folder = Path(folder)
    total = hashlib.sha256(f"linkbert prepared corpus {FINGERPRINT_VERSION}\n".encode())
    for name in FINGERPRINT_FILES:
        path = folder / name
        if path.is_file():
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            total.update(f"{name} {path.stat().st_size} {digest}\n".encode())
        else:
            total.update(f"{name} absent\n".encode())
    total.update(f"vocabulary {_vocabulary_digest(tokenizer_dir(folder))}\n".encode())
    return total.hexdigest()


def _vocabulary_digest(folder: Path) -> str:
    """SHA-256 of a tokenizer folder's vocabulary: ``[token, id]`` pairs in id order, as JSON
    (from tokenizer.json, else vocab.txt's bytes): the same whichever library version saved it."""
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        vocab = Tokenizer.from_file(str(folder / "tokenizer.json")).get_vocab(with_added_tokens=True)
        pairs = sorted(vocab.items(), key=lambda item: item[1])
        return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode("utf-8")).hexdigest()
    if (folder / "vocab.txt").is_file():
        return hashlib.sha256((folder / "vocab.txt").read_bytes()).hexdigest()
    return "absent"


# the folders (and the state of their files) whose bounds this process checked: once is enough
_CHECKED: set[tuple] = set()


def _checked_once(folder: Path, check) -> None:
    """Run ``check()`` unless this process ran it on ``folder`` with its files as they are now."""
    key = (str(folder.resolve()), *((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                    for p in sorted(folder.iterdir()) if p.is_file()))
    if key not in _CHECKED:
        check()
        _CHECKED.add(key)


class PreparedCorpus:
    """A prepared corpus folder: its store, graph, tokenizer and statistics."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not is_prepared(self.folder):
            raise ConfigError(f"{self.folder} is not a prepared corpus (no {META}): run `linkbert prepare` first")
        self.store = SegmentStore(self.folder)
        _checked_once(self.folder, self.store.check)

    @property
    def graph_dir(self) -> Path:
        return graph_dir(self.folder)

    @property
    def tokenizer_dir(self) -> Path:
        return tokenizer_dir(self.folder)

    @cached_property
    def stats(self) -> dict:
        """``stats.json`` (empty for a folder written before prepare recorded it)."""
        from linkbert.json_input import load_file

        path = stats_path(self.folder)
        stats = load_file(path) if path.is_file() else {}
        if not isinstance(stats, dict):
            raise BadInput(str(path), "", "damaged_corpus", "not a JSON object: the prepared corpus is damaged")
        return stats

    @cached_property
    def fingerprint(self) -> str:
        """The corpus's identity (:func:`compute_fingerprint`): as prepare recorded it in
        stats.json, or, for a folder prepared before it did, computed from the files (once)."""
        return self.stats.get("fingerprint") or compute_fingerprint(self.folder)

    @property
    def has_graph(self) -> bool:
        return (self.graph_dir / "graph.json").is_file()

    def graph(self, other: str | Path | None = None):
        """The corpus's own document graph (None without links), or ``other``: another graph over
        the same documents (an ablation's TF-IDF or random links)."""
        from linkbert.graph import DocGraph

        folder = Path(other) if other else self.graph_dir
        if not other and not self.has_graph:
            return None
        graph = DocGraph.load(folder)
        _checked_once(folder, lambda: graph.check_bounds(folder))
        return graph

    def tokenizer(self):
        from linkbert.tokenization import load_tokenizer

        return load_tokenizer(str(self.tokenizer_dir))

    @cached_property
    def longest_segment(self) -> int:
        """Tokens in the corpus's longest segment."""
        offsets = np.asarray(self.store.segment_offsets)
        return int(np.diff(offsets).max()) if len(offsets) > 1 else 0

    @property
    def segment_budget(self) -> int:
        """The most tokens a segment may hold, as prepare was told (or, for a folder written
        before prepare recorded it, its longest segment)."""
        return int(self.stats.get("segment_budget") or self.longest_segment)

    @property
    def separators_between(self) -> int:
        """Separators between a pair's segments in the tokenizer's layout (``tokenization.separators_between``)."""
        from linkbert.tokenization import separators_between

        return separators_between(self.tokenizer())

    @property
    def pair_overhead(self) -> int:
        """Special tokens a pair adds to its two segments: 3 for BERT's layout, 4 for RoBERTa's."""
        return PAIR_OVERHEAD - 1 + self.separators_between
