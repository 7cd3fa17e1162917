"""Readers: one per corpus format, each streaming the same ``Document`` record.

A reader is split in two so that ``linkbert prepare`` can parallelise the expensive part:

* ``records()`` runs in the main process, in order: cheap, I/O only, constant memory. Each
  record it yields is a small picklable value (a line, a page's raw fields, a file's bytes).
* ``parse(record)`` is pure and runs in worker processes: it turns one record into a
  ``Document``, a ``Redirect`` or a ``Skipped`` (a counted, non-error skip such as a page
  outside the main namespace). Malformed input raises ``BadInput`` naming file and record.

Input is untrusted (``linkbert.corpus.io``): only regular files inside an input folder are read,
no record takes more than ``max_record_bytes``, and one bad record costs that record only. What
``records()`` cannot read (a record too large, a page that is not well-formed) it yields in its
place as a picklable ``io.BadRecord``, which ``parse()`` raises; an entry it does not read (a
FIFO, a symlink leading out of the folder) as a ``Skipped``: so ``prepare --skip-bad`` counts
each and goes on. ``records()`` itself raises only what ends a file (a fatal ``BadInput``).

Links are resolved after the whole corpus is read, through two key functions every reader
defines: ``document_keys(doc)`` (the keys a document can be found under: its id, its
normalised title) and ``link_keys(target)`` (the keys a raw link target may mean, in order
of preference). Normalisation (MediaWiki titles, URL decoding, relative URLs) lives there.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Iterable, Iterator, Protocol

from linkbert.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Document:
    """One document: a unique id, a title, clean text and raw link targets as the source gives them."""

    id: str
    title: str
    text: str
    links: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Redirect:
    """A page that only points elsewhere: a link to ``key`` lands on whatever ``target`` resolves to."""

    key: str
    target: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record that is not a document by design (another namespace, ...), counted under ``reason``."""

    reason: str


class Reader(Protocol):
    path: str
    max_record_bytes: int  # set by open_reader

    def records(self) -> Iterator[object]: ...

    def parse(self, record: object) -> Document | Redirect | Skipped: ...

    def document_keys(self, doc: Document) -> Iterable[str]: ...

    def link_keys(self, target: str) -> Iterable[str]: ...


# format name -> "module:class"; imported on demand so a reader's dependencies load only when used
READERS = {
    "jsonl": "linkbert.corpus.jsonl:JsonlReader",
    "wikipedia-xml": "linkbert.corpus.wikipedia:WikipediaXmlReader",
    "wikispeedia": "linkbert.corpus.wikispeedia:WikispeediaReader",
    "pubmed-xml": "linkbert.corpus.pubmed:PubmedXmlReader",
    "html": "linkbert.corpus.html:HtmlSiteReader",
    "vital-articles": "linkbert.corpus.vital_articles:VitalArticlesReader",
    "openalex": "linkbert.corpus.openalex:OpenAlexReader",
    "s2": "linkbert.corpus.s2:SemanticScholarReader",
    "parquet": "linkbert.corpus.parquet:ParquetReader",
}


# the most raw bytes one record (a line, a page, an archive member, a file) may take: generous for
# any real document (a long Wikipedia page's wikitext is a few MB), small enough that a hostile
# file cannot exhaust memory; ``prepare --max-record-bytes`` changes it
DEFAULT_MAX_RECORD_BYTES = 64 << 20


def open_reader(fmt: str, path: str, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, **options) -> Reader:
    """The reader for ``fmt`` over ``path`` (a file or folder, as the format expects); no record
    it yields holds more than ``max_record_bytes`` raw bytes (a larger one is a ``BadInput``
    naming it, counted under ``--skip-bad``).

    ``options``: the format's own settings as ``prepare`` names them (``id_field``, ``edges``,
    ``label_field``, ...); None or "" is the format's default. One the format does not take is a
    ``ConfigError`` naming the formats that do."""
    cls = reader_class(fmt)
    given = {name: value for name, value in options.items() if value not in (None, "")}
    accepted = inspect.signature(cls).parameters
    for name in given:
        if name not in accepted:
            takers = [f for f in READERS if f != fmt and name in _option_names(f)]
            raise ConfigError(f"--{name.replace('_', '-')} does not apply to --format {fmt}"
                              + (f" (it does to {', '.join(takers)})" if takers else ""))
    reader = cls(path, **given)
    reader.max_record_bytes = max_record_bytes
    return reader


def reader_class(fmt: str) -> type:
    """The reader class of ``fmt`` (its module imported now)."""
    if fmt not in READERS:
        raise ValueError(f"unknown corpus format {fmt!r}; expected one of {', '.join(READERS)}")
    module_name, class_name = READERS[fmt].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _option_names(fmt: str) -> set[str]:
    return set(inspect.signature(reader_class(fmt)).parameters)
