"""``linkbert prepare``: a corpus of linked documents -> document graph + segment store.

    linkbert prepare --format wikispeedia --input data/wikispeedia \\
        --tokenizer bert-base-uncased --out prepared/wikispeedia --workers 2

Three steps, each streaming in constant memory (apart from the key -> document table that
link resolution needs):

1. read + tokenize: the reader's records go, in chunks, to worker processes that parse them and
   tokenize each document once into sentence-aware segments; the main process appends the
   results to the segment store in input order, so the output is byte-identical whatever the
   number of workers (``prepare_workers.py``). Raw link targets are spooled to a temporary file.
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
import functools
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from linkbert import files, prepared, settings
from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, READERS, Document, open_reader
from linkbert.corpus.io import SURROGATE
from linkbert.errors import BadInput
from linkbert.graph import DocGraph, clean_row
from linkbert.links import LinkTable
from linkbert.prepare_workers import record_outcomes
from linkbert.segment import DEFAULT_BUDGET
from linkbert.settings import setting
from linkbert.store import SegmentStoreWriter

LINK_BUILDERS = ("none", "title-mention", "tfidf")
MIN_DOCUMENTS = 2  # a pretraining pair takes segments of two documents
# settings handed to the reader when given ("", the default, leaves the format's own: corpus.open_reader)
READER_OPTIONS = ("id_field", "title_field", "text_field", "links_field", "label_field", "edges", "edges_source",
                  "edges_target")


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
    # how the corpus names its fields (jsonl, parquet; label_field also openalex): "" is the format's default
    id_field: str = setting("", "field holding a document's id, a dotted path for nested fields (jsonl, parquet; "
                                "default id)")
    title_field: str = setting("", "field holding the title (jsonl, parquet; default title)")
    text_field: str = setting("", "field holding the text (jsonl, parquet; default text)")
    links_field: str = setting("", "field holding the list of linked ids or titles (jsonl, parquet; default links)")
    label_field: str = setting("", "field holding a document label, read by the experiments and the quickstart, not "
                                   "by prepare (jsonl, parquet: default label; openalex: none unless given, e.g. "
                                   "primary_topic.field.display_name)")
    edges: str = setting("", "edge table with the links, one a row: parquet, CSV or JSON lines (jsonl, parquet)")
    edges_source: str = setting("", "--edges column naming the linking document (default src)")
    edges_target: str = setting("", "--edges column naming the linked document (default tgt)")


# -- step 1: read + tokenize (the reading and tokenizing: prepare_workers.py) ----------------

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
    reader = open_reader(config.format, config.input, max_record_bytes=config.max_record_bytes,
                         **{name: getattr(config, name) for name in READER_OPTIONS if getattr(config, name)})
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
            warn = functools.partial(_warn, warnings)
            for outcome in record_outcomes(config, reader, backend.to_str(), keep_text, corpus.skipped, warn):
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
