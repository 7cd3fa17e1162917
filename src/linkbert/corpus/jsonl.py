"""JSON lines, the format users bring: one document per line.

Schema (one object a line; UTF-8; ``.jsonl``, ``.jsonl.gz``, ``.jsonl.bz2`` or ``.jsonl.zst``; a
folder is read file by file in name order)::

    {"id": "Q42", "title": "Douglas Adams", "text": "Douglas Noël Adams was ...", "links": ["Q5", "Towel Day"]}

* ``id`` (string or integer, required): unique within the corpus.
* ``text`` (string, required): the document's plain text; paragraphs separated by blank lines.
* ``title`` (string, optional, default ""): used to resolve links given by title.
* ``label`` (string or integer, optional): a document label (a subject, a class) for the
  experiments and the quickstart's fine-tuning stage (``corpus/labels.py``); pretraining ignores it.
* ``links`` (list of strings or integers, optional): each an ``id`` or a ``title`` of another
  document; ids are tried first, then exact titles. Unknown targets are counted as dangling.

Fields named otherwise are mapped with ``--id-field``, ``--title-field``, ``--text-field``,
``--links-field``, ``--label-field`` (dotted paths into nested objects; ``fields.py``, which also
says what ``null`` means); links kept in a separate table come with ``--edges`` (``edges.py``).

Blank lines are ignored. Any other deviation is an error naming the file and line: a line that
is not UTF-8 or not a JSON object, a missing or mistyped field, a lone surrogate (``"\\ud800"``,
which is no text), JSON nested too deeply or a number too long for Python to read, and a line
longer than ``max_record_bytes`` (skipped without being read into memory). In a folder, entries
that are not regular files, or symlinks leading out of the folder, are skipped and counted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterable, Iterator

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document, Skipped
from linkbert.corpus import fields as field_map
from linkbert.corpus.edges import EdgeTable, KeyedSpool, edge_options, load_edges, unclaimed_edges
from linkbert.corpus.io import (BadRecord, FolderEntry, bounded_lines, decode_utf8, file_records, folder_files,
                                open_binary, reading, require_path, settle, too_large)
from linkbert.errors import BadInput

SUFFIXES = tuple(f"{stem}{compression}" for stem in (".jsonl", ".json") for compression in ("", ".gz", ".bz2", ".zst"))

# (file, line number, raw line), and with an edge table (..., the links it gives this line's document)
Record = tuple[str, int, bytes] | tuple[str, int, bytes, tuple]


class JsonlReader:
    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str, *, id_field=None, title_field=None, text_field=None, links_field=None,
                 label_field=None, edges=None, edges_source=None, edges_target=None):
        self.path = str(path)
        self.fields = field_map.FieldMap.of(id_field=id_field, title_field=title_field, text_field=text_field,
                                            links_field=links_field, label_field=label_field)
        self.edges, self.edges_source, self.edges_target = edge_options(edges, edges_source, edges_target)

    def files(self) -> list[FolderEntry]:
        """The file itself, or the folder's files (below it too) in name order, skipped ones included."""
        root = require_path(self.path)
        if not root.is_dir():
            return [FolderEntry.named(root)]
        entries = folder_files(root, lambda name: name.endswith(SUFFIXES))
        if not entries:
            raise BadInput(str(root), "", "missing_path", f"no {', '.join(SUFFIXES)} files in this folder", fatal=True)
        return entries

    def records(self) -> Iterator[Record | Skipped | BadRecord]:
        """(file, line number, raw bytes) for every non-blank line; a ``BadRecord`` for a line too long.

        With an edge table, each line also carries its document's links from the table: the main
        process then reads each line's id (one more JSON parse a line) to ask the table for them."""
        in_folder = Path(self.path).is_dir()
        lines = file_records(self.files(), lambda entry: self._lines(entry, in_folder))
        return self._with_edges(lines) if self.edges else lines

    def _with_edges(self, lines: Iterator) -> Iterator[Record | Skipped | BadRecord]:
        with KeyedSpool() as spool:
            yield from load_edges(EdgeTable(self.edges, self.edges_source, self.edges_target,
                                            max_record_bytes=self.max_record_bytes), spool)
            for record in lines:
                if not isinstance(record, tuple) or isinstance(record, BadRecord):
                    yield record
                    continue
                try:
                    doc_id = field_map.record_id(_decode(record), self.fields, record[0], f"line {record[1]}")
                except BadInput:
                    yield (*record, ())  # parse() reports it
                    continue
                yield (*record, tuple(spool.get(doc_id)))
            yield from unclaimed_edges(spool, "edge_from_unknown_document")

    def labels(self) -> Iterator[tuple[str, str]]:
        """(document id, label) of every line that has a label (``corpus.labels``); lines that are
        not JSON objects are left to ``prepare`` to report."""
        def objects():
            for record in file_records(self.files(), self._plain_lines):
                if isinstance(record, tuple) and not isinstance(record, BadRecord):
                    try:
                        yield record[0], f"line {record[1]}", _decode(record)
                    except BadInput:
                        continue
        return field_map.labels_of(objects(), self.fields)

    def _plain_lines(self, entry: FolderEntry):
        return self._lines(entry, Path(self.path).is_dir())

    def _lines(self, entry: FolderEntry, in_folder: bool) -> Iterator[Record | BadRecord]:
        with reading(entry.name), open_binary(entry.path, regular=in_folder, name=entry.name) as f:
            for line_no, raw in bounded_lines(f, self.max_record_bytes):
                if raw is None:
                    yield too_large(entry.name, f"line {line_no}", self.max_record_bytes)
                elif raw.strip():
                    yield entry.name, line_no, raw

    def parse(self, record: Record | Skipped | BadRecord) -> Document | Skipped:
        if isinstance(record, (Skipped, BadRecord)):
            return settle(record)
        extra = record[3] if len(record) > 3 else ()
        return field_map.document(_decode(record), self.fields, record[0], f"line {record[1]}", extra)

    def document_keys(self, doc: Document) -> Iterable[str]:
        return ("id:" + doc.id, "title:" + doc.title) if doc.title else ("id:" + doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        return ("id:" + target, "title:" + target)


def _decode(record: Record) -> dict:
    path, line_no, raw = record[:3]
    where = f"line {line_no}"
    return json_object(decode_utf8(raw, path, where), path, where)


def json_object(line: str, path: str, where: str) -> dict:
    """The line's JSON object; what the json module cannot read is a ``BadInput`` naming the line."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise BadInput(path, where, "malformed_json", f"not valid JSON ({e.msg} at column {e.colno})") from e
    except RecursionError as e:
        raise BadInput(path, where, "too_deeply_nested",
                       "JSON arrays or objects nested too deeply to read (thousands of levels)") from e
    except ValueError as e:  # Python refuses to convert integers this long (a denial-of-service guard)
        raise BadInput(path, where, "number_too_long",
                       f"an integer with more than {sys.get_int_max_str_digits():,} digits") from e
    if not isinstance(obj, dict):
        raise BadInput(path, where, "malformed_json", f"expected a JSON object, found {type(obj).__name__}")
    return obj
