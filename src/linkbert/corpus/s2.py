"""Semantic Scholar: the datasets API's release files, and S2ORC records.

``--input`` is one of two things:

1. **A release folder** (the datasets API, ``/datasets/v1/release/…``): the shards of each dataset
   in a folder named after it, as downloaded, e.g.::

       s2-release/papers/part-000.jsonl.gz …       (required)
       s2-release/abstracts/…                       (optional)
       s2-release/citations/…                       (optional)

   (files named ``papers*``, ``abstracts*``, ``citations*`` directly in the folder do too; any
   other dataset folder there, ``authors/``, ``s2orc/``, ``tldrs/``, is not read). Shards are JSON
   lines, optionally ``.gz``/``.bz2``/``.zst``; a shard without a suffix is read as plain text.
   Papers are joined to their abstract and their citations on ``corpusid``: a document is a paper
   (id: its corpus id; title: ``title``; text: title and abstract), its links the
   ``citedcorpusid`` of its citations. The abstracts and citations are spooled to an on-disk
   SQLite join first (``edges.KeyedSpool``: memory is its page cache whatever the release's size;
   disk about the size of those shards), then the papers are streamed and each is joined as it
   is read. Counted and skipped: a paper without an abstract (``no_abstract``) or without title and
   abstract (``no_text``), an abstract or citation of a paper not in the papers files
   (``abstract_of_unknown_paper``, ``citation_from_unknown_paper``), a citation without a cited
   paper (``citation_without_cited_paper``: S2 could not match the reference).

2. **S2ORC records**: a JSON-lines file, or a folder of them, each line one paper in any of S2ORC's
   published schemas (told apart line by line):

   * 2020 release (``paper_id``, ``title``, ``abstract``, ``outbound_citations``; its
     ``pdf_parses`` files: ``abstract`` as paragraphs, ``bib_entries`` whose ``link`` is a paper id);
   * 2019 release (``paper_id``, ``metadata.title``/``metadata.abstract``,
     ``grobid_parse``/``latex_parse`` with ``bib_entries`` whose ``links`` is a paper id);
   * the datasets API's ``s2orc`` (``corpusid``, ``content.text`` with ``content.annotations``: the
     title and abstract spans, ``bibentry`` spans whose ``matched_paper_id`` is a corpus id);
   * a ``papers`` record or an API paper object (``corpusid``, ``title``, ``abstract``).

   Links are ``outbound_citations`` and the bibliography's linked ids, each once, in that order.

Ids live in one space: S2ORC's ``paper_id`` is the corpus id, as are ``matched_paper_id`` and
``citedcorpusid``, so one corpus may mix these files' documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document, Skipped
from linkbert.corpus.edges import KeyedSpool, unclaimed_edges
from linkbert.corpus.fields import optional_string
from linkbert.corpus.io import (BadRecord, FolderEntry, bounded_lines, check_text, decode_utf8, file_records,
                                folder_files, open_binary, reading, require_path, settle, too_large)
from linkbert.corpus.jsonl import json_object
from linkbert.errors import BadInput

DATASETS = ("papers", "abstracts", "citations")
JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.bz2", ".json.bz2", ".jsonl.zst", ".json.zst")

# (file, line, raw line) for S2ORC records; (file, line, raw paper, abstract or None, cited ids) in a release
Record = tuple


class SemanticScholarReader:
    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str):
        self.path = str(path)

    # -- which files ------------------------------------------------------------------------

    def release(self) -> dict[str, list[FolderEntry]] | None:
        """The release folder's files by dataset, or None if the input is S2ORC records."""
        root = require_path(self.path)
        if not root.is_dir():
            return None
        found: dict[str, list[FolderEntry]] = {name: [] for name in DATASETS}
        for entry in folder_files(root, _shard):
            top = entry.relative.split("/", 1)[0]
            for name in DATASETS:
                if top == name or ("/" not in entry.relative and top.startswith(name)):
                    found[name].append(entry)
        return found if found["papers"] else None

    def records(self) -> Iterator[Record | Skipped | BadRecord]:
        release = self.release()
        if release is None:
            return file_records(self._s2orc_files(), self._lines)
        return self._joined(release)

    def _s2orc_files(self) -> list[FolderEntry]:
        root = require_path(self.path)
        if not root.is_dir():
            return [FolderEntry.named(root)]
        entries = folder_files(root, lambda name: name.endswith(JSON_SUFFIXES))
        if not entries:
            raise BadInput(str(root), "", "missing_path", "neither a release folder (papers/, abstracts/, citations/) "
                                                          "nor S2ORC .jsonl files here", fatal=True)
        return entries

    def _lines(self, entry: FolderEntry) -> Iterator[tuple[str, int, bytes] | BadRecord]:
        with reading(entry.name), open_binary(entry.path, regular=Path(self.path).is_dir(), name=entry.name) as f:
            for line_no, raw in bounded_lines(f, self.max_record_bytes):
                if raw is None:
                    yield too_large(entry.name, f"line {line_no}", self.max_record_bytes)
                elif raw.strip():
                    yield entry.name, line_no, raw

    # -- a release: papers joined to abstracts and citations ---------------------------------

    def _joined(self, release: dict[str, list[FolderEntry]]) -> Iterator[Record | Skipped | BadRecord]:
        with KeyedSpool() as abstracts, KeyedSpool() as citations:
            for item in self._objects(release["abstracts"]):
                if not isinstance(item, tuple) or isinstance(item, BadRecord):
                    yield item
                    continue
                path, where, obj = item
                abstract = obj.get("abstract")
                if isinstance(abstract, str) and abstract.strip():
                    try:
                        abstracts.add(_corpus_id(obj, "corpusid", path, where), abstract)
                    except BadInput as e:
                        yield BadRecord.of(e)
            abstracts.index()
            for item in self._objects(release["citations"]):
                if not isinstance(item, tuple) or isinstance(item, BadRecord):
                    yield item
                    continue
                path, where, obj = item
                if obj.get("citedcorpusid") is None:
                    yield Skipped("citation_without_cited_paper")
                    continue
                try:
                    citations.add(_corpus_id(obj, "citingcorpusid", path, where),
                                  _corpus_id(obj, "citedcorpusid", path, where))
                except BadInput as e:
                    yield BadRecord.of(e)
            citations.index()
            for record in file_records(release["papers"], self._lines):
                if not isinstance(record, tuple) or isinstance(record, BadRecord):
                    yield record
                    continue
                path, line_no, raw = record
                try:
                    paper_id = _corpus_id(_decode(record), "corpusid", path, f"line {line_no}")
                except BadInput:
                    yield (*record, None, ())  # parse() reports it
                    continue
                found = abstracts.get(paper_id)
                yield path, line_no, raw, (found[0] if found else None), tuple(dict.fromkeys(citations.get(paper_id)))
            yield from unclaimed_edges(abstracts, "abstract_of_unknown_paper")
            yield from unclaimed_edges(citations, "citation_from_unknown_paper")

    def _objects(self, entries: list[FolderEntry]) -> Iterator[tuple[str, str, dict] | Skipped | BadRecord]:
        """(file, location, JSON object) of each line; a ``BadRecord`` for a line that is not one
        or whose join key is missing."""
        for record in file_records(entries, self._lines):
            if not isinstance(record, tuple) or isinstance(record, BadRecord):
                yield record
                continue
            try:
                yield record[0], f"line {record[1]}", _decode(record)
            except BadInput as e:
                yield BadRecord.of(e)

    # -- parsing ----------------------------------------------------------------------------

    def parse(self, record: Record | Skipped | BadRecord) -> Document | Skipped:
        if isinstance(record, (Skipped, BadRecord)):
            return settle(record)
        path, where = record[0], f"line {record[1]}"
        obj = _decode(record)
        if len(record) > 3:  # a paper of a release, joined
            title = optional_string(obj, "title", path, where)
            return _document(_corpus_id(obj, "corpusid", path, where), title, record[3] or "", record[4], path, where)
        if isinstance(obj.get("content"), dict):
            return _s2orc_dataset(obj, path, where)
        if "paper_id" in obj:
            return _s2orc_release(obj, path, where)
        if "corpusid" in obj:
            return _document(_corpus_id(obj, "corpusid", path, where), optional_string(obj, "title", path, where),
                             optional_string(obj, "abstract", path, where), (), path, where)
        raise BadInput(path, where, "unknown_schema", "not an S2ORC record (paper_id), an s2orc dataset record "
                                                      "(corpusid, content) nor a paper (corpusid, title)")

    def document_keys(self, doc: Document) -> Iterable[str]:
        return ("id:" + doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        return ("id:" + target,)


def _shard(name: str) -> bool:
    """A file of a release dataset folder: JSON lines, maybe compressed, maybe without a suffix
    (the API's shard names); not its README."""
    if name.lower().startswith("readme"):
        return False
    return name.endswith((*JSON_SUFFIXES, ".gz", ".bz2", ".zst")) or "." not in name


def _decode(record) -> dict:
    path, line_no, raw = record[:3]
    where = f"line {line_no}"
    return json_object(decode_utf8(raw, path, where), path, where)


def _document(paper_id: str, title: str, abstract: str, links, path: str, where: str) -> Document | Skipped:
    title, abstract = title.strip(), abstract.strip()
    if not abstract:
        return Skipped("no_abstract" if title else "no_text")
    text = f"{title}\n\n{abstract}" if title else abstract
    return Document(id=check_text(paper_id, path, where, "id"), title=check_text(title, path, where, "title"),
                    text=check_text(text, path, where, "text"),
                    links=tuple(check_text(str(link), path, where, "links") for link in links))


def _corpus_id(obj: dict, key: str, path: str, where: str) -> str:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
        raise BadInput(path, where, "missing_field", f'expected "{key}", a corpus id (integer or string)')
    return str(value).strip()


def _paragraphs(value, key: str, path: str, where: str) -> str:
    """An abstract given as a string or as S2ORC paragraphs ``[{"text": …}, …]``."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        return "\n\n".join(p["text"] for p in value)
    raise BadInput(path, where, "wrong_type", f'"{key}" must be a string or a list of {{"text": …}} paragraphs')


def _s2orc_release(obj: dict, path: str, where: str) -> Document | Skipped:
    """A 2019 or 2020 S2ORC record (metadata, pdf_parses, or both in one)."""
    paper_id = _corpus_id(obj, "paper_id", path, where)
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    title = optional_string(obj, "title", path, where) or optional_string(metadata, "title", path, where)
    abstract = (_paragraphs(obj.get("abstract"), "abstract", path, where)
                or _paragraphs(metadata.get("abstract"), "metadata.abstract", path, where))
    parses = [obj] + [obj[key] for key in ("grobid_parse", "latex_parse") if isinstance(obj.get(key), dict)]
    if not abstract:
        for parse in parses[1:]:
            abstract = _paragraphs(parse.get("abstract"), "abstract", path, where)
            if abstract:
                break
    outbound = obj.get("outbound_citations") or []
    if not isinstance(outbound, list) or not all(isinstance(t, (str, int)) and not isinstance(t, bool) for t in outbound):
        raise BadInput(path, where, "wrong_type", '"outbound_citations" must be a list of paper ids')
    links = [str(t) for t in outbound]
    for parse in parses:
        entries = parse.get("bib_entries")
        if isinstance(entries, dict):
            for entry in entries.values():
                target = entry.get("link", entry.get("links")) if isinstance(entry, dict) else None
                if isinstance(target, (str, int)) and not isinstance(target, bool) and str(target).strip():
                    links.append(str(target).strip())
    return _document(paper_id, title, abstract, dict.fromkeys(links), path, where)


def _s2orc_dataset(obj: dict, path: str, where: str) -> Document | Skipped:
    """A record of the datasets API's ``s2orc``: title and abstract from the annotated spans of
    ``content.text``, links from the ``bibentry`` spans' ``matched_paper_id``."""
    paper_id = _corpus_id(obj, "corpusid", path, where)
    content = obj["content"]
    text = content.get("text") or ""
    if not isinstance(text, str):
        raise BadInput(path, where, "wrong_type", '"content.text" must be a string')
    annotations = content.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise BadInput(path, where, "wrong_type", '"content.annotations" must be an object')
    titles = _spans(annotations, "title", text, path, where)
    abstracts = _spans(annotations, "abstract", text, path, where)
    title = text[titles[0][0]:titles[0][1]].strip() if titles else ""
    abstract = "\n\n".join(text[start:end].strip() for start, end, _ in abstracts)
    links = []
    for _, _, attributes in _spans(annotations, "bibentry", text, path, where):
        target = attributes.get("matched_paper_id") if isinstance(attributes, dict) else None
        if isinstance(target, (str, int)) and not isinstance(target, bool):
            links.append(str(target))
    return _document(paper_id, title, abstract, dict.fromkeys(links), path, where)


def _spans(annotations: dict, key: str, text: str, path: str, where: str) -> list[tuple[int, int, dict]]:
    """The ``(start, end, attributes)`` spans of one annotation (a JSON string of a list, or null)."""
    value = annotations.get(key)
    if value is None:
        return []
    try:
        spans = json.loads(value) if isinstance(value, str) else value
    except (ValueError, RecursionError) as e:
        raise BadInput(path, where, "malformed_json", f'annotation "{key}" is not valid JSON') from e
    result = []
    for span in spans if isinstance(spans, list) else [None]:
        try:
            start, end = int(span["start"]), int(span["end"])
        except (TypeError, KeyError, ValueError):
            raise BadInput(path, where, "wrong_type", f'annotation "{key}" must be a list of {{"start", "end"}} spans') from None
        if not 0 <= start <= end <= len(text):
            raise BadInput(path, where, "bad_span", f'annotation "{key}" span {start}-{end} lies outside the '
                                                    f"{len(text)}-character text")
        result.append((start, end, span.get("attributes") or {}))
    return result
