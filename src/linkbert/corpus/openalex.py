"""OpenAlex works (the open citation graph), as its snapshot and its API give them.

``--input`` is any of:

* the snapshot folder, or any folder below it (``data/works/``, one ``updated_date=…/``): every
  ``*.gz`` part file (JSON lines of works: ``updated_date=2024-01-01/part_000.gz``) and any
  ``.jsonl``/``.json`` file below, in path order; ``manifest`` files and the CSV files of
  ``merged_ids/`` are not read; records of other entities (authors, sources, …: their ids do not
  start with ``W``) are skipped and counted (``not_a_work``);
* one part file (``.gz``, plain, ``.bz2`` or ``.zst``);
* saved API responses: a ``.json`` file holding a page ``{"meta": …, "results": [works]}``, a list
  of works or one work (read whole, so at most ``max_record_bytes``; a ``.json`` file that turns
  out to be JSON lines is read as lines).

A work becomes a document:

* id: the work's ``id`` in its short form (``https://openalex.org/W2741809807`` -> ``W2741809807``);
* title: ``title``, else ``display_name`` (either may be null);
* text: the title, a blank line, and the abstract rebuilt from ``abstract_inverted_index`` (word ->
  positions) exactly (``abstract_text``: OpenAlex numbers the pieces between single spaces, so line
  breaks come back inside their words and a skipped position is a space given back). A work without an
  abstract is skipped (``no_abstract``; the title alone is no passage to pretrain on), one with
  neither title nor abstract too (``no_text``);
* links: ``referenced_works``; a link resolves whether written as a URL or a short id
  (``W123``, ``https://openalex.org/W123``, ``https://api.openalex.org/works/W123``);
* label (``corpus.labels``, only when asked): the value at ``label_field``, a dotted path such as
  ``primary_topic.field.display_name`` (the work's field of research).

Malformed input (a line that is not a JSON object, an ``id`` that is not a string, an inverted
index that is not word -> list of positions or puts two words at one position) is a ``BadInput``
naming the file and line or result, counted under ``--skip-bad``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterable, Iterator

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document, Skipped
from linkbert.corpus.fields import MISSING, lookup, optional_string
from linkbert.corpus.io import (BadRecord, FolderEntry, bounded_lines, check_text, decode_utf8, file_records,
                                folder_files, open_binary, read_at_most, reading, require_path, settle, too_large)
from linkbert.corpus.jsonl import json_object
from linkbert.errors import BadInput

COMPRESSIONS = (".gz", ".bz2", ".zst")
# an inverted index may skip positions (two spaces in a row) but not run on for ever
GAP_FACTOR, GAP_SLACK = 4, 64
Record = tuple[str, str, bytes]  # (file, "line N" or "results[i]", the work's raw JSON)


def short_id(value: str) -> str:
    """An OpenAlex id in its short form: the last path segment of a URL, first letter upper-case."""
    tail = value.strip().rstrip("/").rsplit("/", 1)[-1]
    return tail[:1].upper() + tail[1:]


def abstract_text(index: dict, path: str = "", where: str = "") -> str:
    """The abstract an inverted index (word -> positions) encodes, exactly: OpenAlex numbers the
    pieces of the abstract split at single spaces, so the words go back in position order joined by
    single spaces, and a position no word holds (an empty piece: two spaces in a row) gives its
    space back. Two words at one position, an index that is not word -> list of non-negative
    integers, or positions running far beyond the words (more than ``GAP_FACTOR`` times as many
    positions as words: no abstract, a way to make a huge string) is a ``BadInput``."""
    if not isinstance(index, dict):
        raise BadInput(path, where, "bad_abstract_index",
                       f"abstract_inverted_index must map words to positions, found {type(index).__name__}")
    placed = []
    for word, positions in index.items():
        if not isinstance(positions, list) or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0
                                                      for p in positions):
            raise BadInput(path, where, "bad_abstract_index",
                           f"abstract_inverted_index[{word!r}] must be a list of non-negative integer positions")
        placed.extend((p, word) for p in positions)
    if not placed:
        return ""
    placed.sort()
    for (a, first), (b, second) in zip(placed, placed[1:]):
        if a == b:
            raise BadInput(path, where, "bad_abstract_index", f"two words at position {a}: {first!r} and {second!r}")
    last = placed[-1][0]
    if last >= GAP_FACTOR * len(placed) + GAP_SLACK:
        raise BadInput(path, where, "bad_abstract_index", f"positions run to {last:,} for {len(placed):,} words")
    pieces = [""] * (last + 1)
    for position, word in placed:
        pieces[position] = word
    return " ".join(pieces)


def inverted_index(text: str) -> dict[str, list[int]]:
    """The inverted index of ``text`` as OpenAlex builds it: the pieces between single spaces,
    numbered, the empty ones left out (only spaces split: a line break stays inside its word,
    ``"sampling.\r\n\r\nAn"``, as in OpenAlex's data). ``abstract_text`` is its inverse."""
    index: dict[str, list[int]] = {}
    for position, word in enumerate(text.split(" ")):
        if word:
            index.setdefault(word, []).append(position)
    return index


class OpenAlexReader:
    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str, *, label_field=None):
        self.path = str(path)
        self.label_field = label_field

    def files(self) -> list[FolderEntry]:
        root = require_path(self.path)
        if not root.is_dir():
            return [FolderEntry.named(root)]
        entries = folder_files(root, _wanted)
        if not entries:
            raise BadInput(str(root), "", "missing_path", "no OpenAlex part files (*.gz) or .jsonl/.json files in this "
                                                          "folder", fatal=True)
        return entries

    def records(self) -> Iterator[Record | Skipped | BadRecord]:
        in_folder = Path(self.path).is_dir()
        return file_records(self.files(), lambda entry: self._works(entry, in_folder))

    def _works(self, entry: FolderEntry, in_folder: bool) -> Iterator[Record | BadRecord]:
        page = _stem(entry.name).endswith(".json")
        with reading(entry.name), open_binary(entry.path, regular=in_folder, name=entry.name) as f:
            if page:
                data = read_at_most(f, self.max_record_bytes)
                if data is None:
                    yield too_large(entry.name, "", self.max_record_bytes)
                    return
                lines = _page_works(data, entry.name)
                if lines is not None:
                    yield from lines
                    return
                f = io.BytesIO(data)  # a .json file of JSON lines
            for line_no, raw in bounded_lines(f, self.max_record_bytes):
                if raw is None:
                    yield too_large(entry.name, f"line {line_no}", self.max_record_bytes)
                elif raw.strip():
                    yield entry.name, f"line {line_no}", raw

    def parse(self, record: Record | Skipped | BadRecord) -> Document | Skipped:
        if isinstance(record, (Skipped, BadRecord)):
            return settle(record)
        path, where, raw = record
        work = json_object(decode_utf8(raw, path, where), path, where)
        work_id = _work_id(work, path, where)
        if not work_id.startswith("W"):
            return Skipped("not_a_work")
        title = optional_string(work, "title", path, where) or optional_string(work, "display_name", path, where)
        index = work.get("abstract_inverted_index")
        abstract = abstract_text(index, path, where) if index is not None else ""
        if not abstract.strip():
            return Skipped("no_abstract" if title.strip() else "no_text")
        text = f"{title}\n\n{abstract}" if title.strip() else abstract
        return Document(id=check_text(work_id, path, where, "id"), title=check_text(title, path, where, "title"),
                        text=check_text(text, path, where, "text"),
                        links=tuple(check_text(link, path, where, "links") for link in _references(work, path, where)))

    def labels(self) -> Iterator[tuple[str, str]]:
        """(work id, label) of every work with a value at ``label_field``; none when it is not set."""
        if not self.label_field:
            return
        seen: set[str] = set()  # of works sharing an id, the first counts (with its label or without): prepare keeps it
        for record in self.records():
            if not isinstance(record, tuple) or isinstance(record, BadRecord):
                continue
            path, where, raw = record
            try:
                work = json_object(decode_utf8(raw, path, where), path, where)
                work_id = _work_id(work, path, where)
            except BadInput:
                continue  # prepare reports it
            if work_id in seen:
                continue
            seen.add(work_id)
            value = lookup(work, self.label_field)
            if value is MISSING or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise BadInput(path, where, "wrong_type", f'"{self.label_field}" must be a string or an integer, '
                                                          f"found {type(value).__name__}")
            yield work_id, str(value)

    def document_keys(self, doc: Document) -> Iterable[str]:
        return ("id:" + doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        return ("id:" + short_id(target),)


def _wanted(name: str) -> bool:
    stem = _stem(name)
    return not name.endswith(".csv.gz") and (stem != name or stem.endswith((".jsonl", ".json")))


def _stem(name: str) -> str:
    for suffix in COMPRESSIONS:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _page_works(data: bytes, name: str) -> Iterator[Record | BadRecord] | None:
    """The works of a saved API response (a page, a list of works or one work), each as its raw
    JSON; None when the file holds JSON lines instead (more than one value)."""
    try:
        value = json.loads(decode_utf8(data, name, ""))
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":
            return None
        return iter([BadRecord(name, f"line {e.lineno}", "malformed_json", f"not valid JSON ({e.msg})")])
    except BadInput as e:
        return iter([BadRecord.of(e)])
    except (ValueError, RecursionError):
        return iter([BadRecord(name, "", "malformed_json", "JSON nested too deeply or a number too long to read")])
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        works, label = value["results"], "results"
    elif isinstance(value, list):
        works, label = value, "item"
    elif isinstance(value, dict):
        works, label = [value], "work"
    else:
        return iter([BadRecord(name, "", "malformed_json", f"expected an API page, a list of works or a work, "
                                                           f"found {type(value).__name__}")])
    return ((name, f"{label}[{i}]" if label != "work" else "work",
             json.dumps(work, ensure_ascii=False).encode("utf-8")) for i, work in enumerate(works))


def _work_id(work: dict, path: str, where: str) -> str:
    value = work.get("id")
    if not isinstance(value, str) or not value.strip():
        raise BadInput(path, where, "missing_field", 'expected a work with an "id" (https://openalex.org/W…)')
    return short_id(value)


def _references(work: dict, path: str, where: str) -> list[str]:
    value = work.get("referenced_works")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(path, where, "wrong_type", '"referenced_works" must be a list of work ids')
    return value
