"""JSON lines, the format users bring: one document per line.

Schema (one object a line; UTF-8; ``.jsonl``, ``.jsonl.gz`` or ``.jsonl.bz2``; a folder is read
file by file in name order)::

    {"id": "Q42", "title": "Douglas Adams", "text": "Douglas Noël Adams was ...", "links": ["Q5", "Towel Day"]}

* ``id`` (string or integer, required): unique within the corpus.
* ``text`` (string, required): the document's plain text; paragraphs separated by blank lines.
* ``title`` (string, optional, default ""): used to resolve links given by title.
* ``label`` (string or integer, optional): a document label (a subject, a class) for the
  experiments and the quickstart's fine-tuning stage (``corpus/labels.py``); pretraining ignores it.
* ``links`` (list of strings or integers, optional): each an ``id`` or a ``title`` of another
  document; ids are tried first, then exact titles. Unknown targets are counted as dangling.

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
from linkbert.corpus.io import (BadRecord, FolderEntry, bounded_lines, check_text, decode_utf8, file_records,
                                folder_files, open_binary, reading, require_path, settle, too_large)
from linkbert.errors import BadInput

SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".jsonl.bz2", ".json.gz", ".json.bz2")

Record = tuple[str, int, bytes]  # (file, line number, raw line)


class JsonlReader:
    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str):
        self.path = str(path)

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
        """(file, line number, raw bytes) for every non-blank line; a ``BadRecord`` for a line too long."""
        in_folder = Path(self.path).is_dir()
        return file_records(self.files(), lambda entry: self._lines(entry, in_folder))

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
        path, line_no, raw = record
        where = f"line {line_no}"
        obj = _json_object(decode_utf8(raw, path, where), path, where)
        doc_id, title = _id(obj, path, where), _field(obj, "title", str, "", path, where)
        text, links = _field(obj, "text", str, None, path, where), _links(obj, path, where)
        return Document(id=check_text(doc_id, path, where, "id"), title=check_text(title, path, where, "title"),
                        text=check_text(text, path, where, "text"),
                        links=tuple(check_text(str(t), path, where, "links") for t in links))

    def document_keys(self, doc: Document) -> Iterable[str]:
        return ("id:" + doc.id, "title:" + doc.title) if doc.title else ("id:" + doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        return ("id:" + target, "title:" + target)


def _json_object(line: str, path: str, where: str) -> dict:
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


def _field(obj: dict, name: str, kind: type, default, path: str, where: str):
    if name not in obj:
        if default is None:
            raise BadInput(path, where, "missing_field", f'missing required field "{name}" (expected {{"id", "title", "text", "links"}})')
        return default
    value = obj[name]
    if not isinstance(value, kind):
        raise BadInput(path, where, "wrong_type", f'field "{name}" must be a {kind.__name__}, found {type(value).__name__}')
    return value


def _id(obj: dict, path: str, where: str) -> str:
    if "id" not in obj:
        raise BadInput(path, where, "missing_field", 'missing required field "id" (expected {"id", "title", "text", "links"})')
    value = obj["id"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadInput(path, where, "wrong_type", f'field "id" must be a string or an integer, found {type(value).__name__}')
    return str(value)


def _links(obj: dict, path: str, where: str) -> list:
    links = obj.get("links", [])
    if not isinstance(links, list) or any(isinstance(t, bool) or not isinstance(t, (str, int)) for t in links):
        raise BadInput(path, where, "wrong_type", 'field "links" must be a list of ids or titles (strings or integers)')
    return links
