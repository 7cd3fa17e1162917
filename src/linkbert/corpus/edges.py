"""Links kept apart from the documents: an edge table, and the on-disk join that hands each
document its links as it is read.

An edge table (``prepare --edges FILE``) has one link a row, from the document named in its source
column to the one named in its target column (``--edges-source``/``--edges-target``, default
``src``/``tgt``): a parquet file (``.parquet``), a CSV file (``.csv``, with a header row; ``.tsv``
tab-separated) or JSON lines (``.jsonl``/``.json``), each optionally ``.gz``/``.bz2``/``.zst``
compressed (parquet excepted). OGB-style citation graphs and many datasets come this way.

A document's links must travel with it (``prepare`` resolves each document's link list), but an
edge table is in no particular order. ``KeyedSpool`` joins them without holding the table in
memory: the rows go, streamed, into a SQLite file in a temporary folder (indexed by key once
loaded), and the main process asks it for each document's rows as it reads the documents. Memory
stays SQLite's page cache (a few MB) whatever the table's size; the disk holds about twice the
table. A row whose source never turns up as a document is counted (``Skipped``, by reason), as
is every row that cannot be read (a ``BadRecord``: ``--skip-bad``).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import tempfile
from typing import Iterable, Iterator

from linkbert.corpus import Skipped
from linkbert.corpus.io import (BadRecord, bounded_lines, decode_utf8, open_binary, reading, require_path, too_large)
from linkbert.errors import BadInput, ConfigError

DEFAULT_SOURCE, DEFAULT_TARGET = "src", "tgt"
EDGE_SUFFIXES = (".parquet", ".csv", ".tsv", ".jsonl", ".json")
# rows inserted per SQLite transaction while loading
INSERT_BATCH = 10_000


def edge_options(edges, edges_source, edges_target) -> tuple[str | None, str, str]:
    """The edge table and its columns as a reader takes them: column names without a table are a
    ``ConfigError`` (they would silently do nothing)."""
    if not edges and (edges_source or edges_target):
        raise ConfigError("--edges-source/--edges-target name the columns of an edge table: give --edges FILE")
    return (str(edges) if edges else None), edges_source or DEFAULT_SOURCE, edges_target or DEFAULT_TARGET


class EdgeTable:
    """The rows of an edge table, streamed: ``(location, source, target)`` or a ``BadRecord``."""

    def __init__(self, path: str, source: str = DEFAULT_SOURCE, target: str = DEFAULT_TARGET, *,
                 max_record_bytes: int):
        self.path, self.source, self.target, self.max_record_bytes = str(path), source, target, max_record_bytes

    def rows(self) -> Iterator[tuple[str, str, str] | BadRecord]:
        path = require_path(self.path, "edge table")
        if path.is_dir():
            raise BadInput(str(path), "", "not_a_file", "an edge table is one file (parquet, CSV or JSON lines)",
                           fatal=True)
        kind = _kind(path.name)
        if kind == "parquet":
            from linkbert.corpus.arrow import table_rows

            for where, row in table_rows(path, [self.source, self.target], self.max_record_bytes, "edge table"):
                yield row if isinstance(row, BadRecord) else self._edge(row, where)
            return
        with reading(self.path), open_binary(path) as f:
            if kind == "json":
                for line_no, raw in bounded_lines(f, self.max_record_bytes):
                    if raw is None:
                        yield too_large(self.path, f"line {line_no}", self.max_record_bytes)
                    elif raw.strip():
                        yield self._json_edge(raw, f"line {line_no}")
            else:
                yield from self._csv_rows(f, "\t" if kind == "tsv" else ",")

    def _json_edge(self, raw: bytes, where: str):
        try:
            row = json.loads(decode_utf8(raw, self.path, where))
        except BadInput as e:
            return BadRecord.of(e)
        except (ValueError, RecursionError):
            return BadRecord(self.path, where, "malformed_json", "not a valid JSON object")
        if not isinstance(row, dict):
            return BadRecord(self.path, where, "malformed_json", f"expected a JSON object, found {type(row).__name__}")
        return self._edge(row, where)

    def _csv_rows(self, f, delimiter: str):
        lines = _text_lines(f, self.path, self.max_record_bytes)
        header = next(lines, None)
        if header is None:
            return
        if isinstance(header, BadRecord):
            raise header.error()
        names = next(csv.reader([header[1]], delimiter=delimiter))
        missing = [c for c in (self.source, self.target) if c not in names]
        if missing:
            raise BadInput(self.path, "line 1", "missing_field",
                           f"no column {', '.join(map(repr, missing))} in the header ({', '.join(names)}); "
                           "--edges-source/--edges-target name them", fatal=True)
        for item in lines:
            if isinstance(item, BadRecord):
                yield item
                continue
            line_no, text = item
            if not text.strip():
                continue
            values = next(csv.reader([text], delimiter=delimiter))
            yield self._edge(dict(zip(names, values)), f"line {line_no}")

    def _edge(self, row: dict, where: str):
        values = []
        for column in (self.source, self.target):
            value = row.get(column)
            if value is None or value == "":
                return BadRecord(self.path, where, "missing_field", f'edge without a "{column}" value')
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                return BadRecord(self.path, where, "wrong_type",
                                 f'"{column}" must be a document id (a string or an integer), found {type(value).__name__}')
            values.append(str(value))
        return where, values[0], values[1]


def _kind(name: str) -> str:
    stem = name
    for suffix in (".gz", ".bz2", ".zst"):
        stem = stem.removesuffix(suffix)
    for suffix, kind in ((".parquet", "parquet"), (".csv", "csv"), (".tsv", "tsv"), (".jsonl", "json"), (".json", "json")):
        if stem.endswith(suffix):
            if kind == "parquet" and stem != name:
                raise ConfigError(f"{name}: a parquet file compresses itself; give it uncompressed")
            return kind
    raise ConfigError(f"--edges {name}: expected a {', '.join(EDGE_SUFFIXES)} file (optionally .gz, .bz2, .zst)")


def _text_lines(f, path: str, limit: int) -> Iterator[tuple[int, str] | BadRecord]:
    for line_no, raw in bounded_lines(f, limit):
        if raw is None:
            yield too_large(path, f"line {line_no}", limit)
            continue
        try:
            yield line_no, decode_utf8(raw, path, f"line {line_no}").rstrip("\r\n")
        except BadInput as e:
            yield BadRecord.of(e)


class KeyedSpool:
    """Rows ``(key, value)`` on disk, read back by key in the order they were added.

    A context manager: the SQLite file lives in a temporary folder (``folder``, else the system's)
    removed on exit. ``get`` remembers the keys it was asked for, so that ``unclaimed`` can count
    the rows nobody asked for (a link from a document that is not in the corpus).
    """

    def __init__(self, folder: str | None = None):
        self._folder = tempfile.TemporaryDirectory(prefix="linkbert-join-", dir=folder)
        # any thread: a reader's records() generator holds the spool, and whoever consumes it may resume it
        # from another thread (tokenizers' train_from_iterator does, past its first batch of texts). A
        # generator runs in one thread at a time, so the connection is still used by one at a time
        self._db = sqlite3.connect(os.path.join(self._folder.name, "join.sqlite"), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = OFF")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("CREATE TABLE rows (key TEXT NOT NULL, value TEXT NOT NULL)")
        self._db.execute("CREATE TABLE asked (key TEXT PRIMARY KEY) WITHOUT ROWID")
        self._batch: list[tuple[str, str]] = []
        self.rows = 0

    def __enter__(self) -> KeyedSpool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, key: str, value: str) -> None:
        self._batch.append((key, value))
        self.rows += 1
        if len(self._batch) >= INSERT_BATCH:
            self._flush()

    def index(self) -> None:
        """Done adding: index the rows by key (call once, before ``get``)."""
        self._flush()
        self._db.execute("CREATE INDEX rows_by_key ON rows (key)")

    def get(self, key: str) -> list[str]:
        self._db.execute("INSERT OR IGNORE INTO asked VALUES (?)", (key,))
        return [value for (value,) in self._db.execute("SELECT value FROM rows WHERE key = ? ORDER BY rowid", (key,))]

    def unclaimed(self) -> int:
        """How many rows have a key nobody asked for."""
        (count,) = self._db.execute("SELECT COUNT(*) FROM rows WHERE key NOT IN (SELECT key FROM asked)").fetchone()
        return count

    def close(self) -> None:
        self._db.close()
        self._folder.cleanup()

    def _flush(self) -> None:
        if self._batch:
            with self._db:
                self._db.executemany("INSERT INTO rows VALUES (?, ?)", self._batch)
            self._batch.clear()


def load_edges(table: EdgeTable, spool: KeyedSpool) -> Iterator[BadRecord]:
    """Every readable row of ``table`` into ``spool`` (source -> target); the unreadable ones, yielded."""
    for row in table.rows():
        if isinstance(row, BadRecord):
            yield row
        else:
            spool.add(row[1], row[2])
    spool.index()


def unclaimed_edges(spool: KeyedSpool, reason: str) -> Iterable[Skipped]:
    """A ``Skipped(reason)`` for each row whose source never turned up."""
    return (Skipped(reason) for _ in range(spool.unclaimed()))
