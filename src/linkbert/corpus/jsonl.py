"""JSON lines, the format users bring: one document per line.

Schema (one object a line; UTF-8; ``.jsonl``, ``.jsonl.gz`` or ``.jsonl.bz2``; a folder is read
file by file in name order)::

    {"id": "Q42", "title": "Douglas Adams", "text": "Douglas Noël Adams was ...", "links": ["Q5", "Towel Day"]}

* ``id`` (string or integer, required): unique within the corpus.
* ``text`` (string, required): the document's plain text; paragraphs separated by blank lines.
* ``title`` (string, optional, default ""): used to resolve links given by title.
* ``links`` (list of strings or integers, optional): each an ``id`` or a ``title`` of another
  document; ids are tried first, then exact titles. Unknown targets are counted as dangling.

Blank lines are ignored. Any other deviation is an error naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from linkbert.corpus import Document
from linkbert.corpus.io import decode_utf8, open_binary, reading, require_path
from linkbert.errors import BadInput

SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".jsonl.bz2", ".json.gz", ".json.bz2")


class JsonlReader:
    def __init__(self, path: str):
        self.path = str(path)

    def files(self) -> list[Path]:
        root = require_path(self.path)
        if root.is_file():
            return [root]
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        if not files:
            raise BadInput(str(root), "", "missing_path", f"no {', '.join(SUFFIXES)} files in this folder", fatal=True)
        return files

    def records(self) -> Iterator[tuple[str, int, bytes]]:
        """(file, line number, raw bytes) for every non-blank line."""
        for path in self.files():
            with reading(path), open_binary(path) as f:
                for line_no, raw in enumerate(f, start=1):
                    if raw.strip():
                        yield str(path), line_no, raw

    def parse(self, record: tuple[str, int, bytes]) -> Document:
        path, line_no, raw = record
        where = f"line {line_no}"
        line = decode_utf8(raw, path, where)
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BadInput(path, where, "malformed_json", f"not valid JSON ({e.msg} at column {e.colno})") from e
        if not isinstance(obj, dict):
            raise BadInput(path, where, "malformed_json", f"expected a JSON object, found {type(obj).__name__}")
        return Document(
            id=_id(obj, path, where),
            title=_field(obj, "title", str, "", path, where),
            text=_field(obj, "text", str, None, path, where),
            links=tuple(str(t) for t in _links(obj, path, where)),
        )

    def document_keys(self, doc: Document) -> Iterable[str]:
        return ("id:" + doc.id, "title:" + doc.title) if doc.title else ("id:" + doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        return ("id:" + target, "title:" + target)


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
