"""Field mapping: which field of a record is a document's id, title, text, links and label.

The JSON-lines and parquet readers share it (``--id-field``, ``--title-field``, ``--text-field``,
``--links-field``, ``--label-field``), so a corpus whose fields are named otherwise (``paper_id``,
``abstract``, ``references``) is read as it is. A field is a dotted path into nested objects
(``metadata.title``, ``primary_topic.field.display_name``); a path segment that is a number indexes
a list (``authors.0.name``). A key that itself holds a dot is found too: the whole remaining path is
tried as one key first.

Rules (the JSON-lines schema of ``jsonl.py``, with names from the mapping):

* id: a string or an integer, required;
* text: a string, required; ``null`` is no text: the record is skipped and counted (``no_text``);
* title: a string, default ""; links: a list of strings or integers (ids or titles), default [];
  ``null`` is the default for both;
* label: a string or an integer; ``null`` or absent is no label (labels serve
  ``corpus.labels.document_labels``; ``prepare`` does not read them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from linkbert.corpus import Document, Skipped
from linkbert.corpus.io import check_text
from linkbert.errors import BadInput

MISSING = object()


@dataclass(frozen=True)
class FieldMap:
    """Where a record keeps each part of a document (dotted paths)."""

    id: str = "id"
    title: str = "title"
    text: str = "text"
    links: str = "links"
    label: str = "label"

    @classmethod
    def of(cls, *, id_field=None, title_field=None, text_field=None, links_field=None, label_field=None) -> FieldMap:
        """The mapping with the given fields, the defaults for the rest."""
        given = {"id": id_field, "title": title_field, "text": text_field, "links": links_field, "label": label_field}
        return cls(**{name: path for name, path in given.items() if path})

    def columns(self) -> set[str]:
        """The top-level names the mapping reads (a parquet reader reads only these columns)."""
        return {path.split(".", 1)[0] for path in (self.id, self.title, self.text, self.links, self.label)}

    def expected(self) -> str:
        return f'{{"{self.id}", "{self.title}", "{self.text}", "{self.links}"}}'


def lookup(obj, path: str):
    """The value at the dotted ``path`` of ``obj``, or ``MISSING``."""
    if isinstance(obj, dict) and path in obj:
        return obj[path]
    head, dot, rest = path.partition(".")
    if not dot:
        return MISSING
    if isinstance(obj, dict):
        inner = obj.get(head, MISSING)
    elif isinstance(obj, list) and head.isdigit() and int(head) < len(obj):
        inner = obj[int(head)]
    else:
        return MISSING
    return MISSING if inner is MISSING or inner is None else lookup(inner, rest)


def document(obj: dict, fields: FieldMap, path: str, where: str, extra_links: Iterable = ()) -> Document | Skipped:
    """The document a record holds under ``fields``; ``extra_links`` (from an edge table) follow
    its own links. A malformed record is a ``BadInput`` naming the field."""
    doc_id = _id(obj, fields, path, where)
    text = lookup(obj, fields.text)
    if text is MISSING:
        raise BadInput(path, where, "missing_field", f'missing required field "{fields.text}" (expected {fields.expected()})')
    if text is None:
        return Skipped("no_text")
    text = _typed(text, str, fields.text, path, where)
    title = lookup(obj, fields.title)
    title = "" if title is MISSING or title is None else _typed(title, str, fields.title, path, where)
    links = [*_links(obj, fields, path, where), *extra_links]
    return Document(id=check_text(doc_id, path, where, "id"), title=check_text(title, path, where, "title"),
                    text=check_text(text, path, where, "text"),
                    links=tuple(check_text(str(t), path, where, "links") for t in links))


def label(obj: dict, fields: FieldMap, path: str, where: str) -> str | None:
    """The record's label, None if it has none; a label that is not a string or an integer is a
    ``BadInput``."""
    value = lookup(obj, fields.label)
    if value is MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadInput(path, where, "wrong_type",
                       f'field "{fields.label}" must be a string or an integer, found {type(value).__name__}')
    return str(value)


def record_id(obj: dict, fields: FieldMap, path: str, where: str) -> str:
    """The record's id as a document's id: a string or an integer, required."""
    return _id(obj, fields, path, where)


def _id(obj: dict, fields: FieldMap, path: str, where: str) -> str:
    value = lookup(obj, fields.id)
    if value is MISSING or value is None:
        raise BadInput(path, where, "missing_field", f'missing required field "{fields.id}" (expected {fields.expected()})')
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadInput(path, where, "wrong_type",
                       f'field "{fields.id}" must be a string or an integer, found {type(value).__name__}')
    return str(value)


def _typed(value, kind: type, name: str, path: str, where: str):
    if not isinstance(value, kind):
        raise BadInput(path, where, "wrong_type", f'field "{name}" must be a {kind.__name__}, found {type(value).__name__}')
    return value


def _links(obj: dict, fields: FieldMap, path: str, where: str) -> list:
    links = lookup(obj, fields.links)
    if links is MISSING or links is None:
        return []
    if not isinstance(links, list) or any(isinstance(t, bool) or not isinstance(t, (str, int)) for t in links):
        raise BadInput(path, where, "wrong_type",
                       f'field "{fields.links}" must be a list of ids or titles (strings or integers)')
    return links


def labels_of(objects: Iterable[tuple[str, str, dict]], fields: FieldMap) -> Iterable[tuple[str, str]]:
    """``(document id, label)`` of each ``(file, location, record)`` that has both; a record
    without a readable id is left to ``prepare`` to report, a mistyped label is a ``BadInput``.
    Of records sharing an id only the first counts (with its label, or without one): prepare
    keeps the first and skips the others as ``duplicate_id``."""
    seen: set[str] = set()
    for path, where, obj in objects:
        try:
            doc_id = _id(obj, fields, path, where)
        except BadInput:
            continue
        if doc_id in seen:
            continue
        seen.add(doc_id)
        value = label(obj, fields, path, where)
        if value is not None:
            yield doc_id, value


def optional_string(obj: dict, key: str, path: str, where: str) -> str:
    """``obj[key]`` where it is a string, ``""`` where it is absent or null; any other type is a
    ``BadInput`` naming the field (OpenAlex's and Semantic Scholar's optional text fields)."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput(path, where, "wrong_type", f'"{key}" must be a string, found {type(value).__name__}')
    return value
