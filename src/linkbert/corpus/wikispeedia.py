"""Wikispeedia (West & Leskovec): 4,598 articles of the 2007 Wikipedia Selection for Schools.

The folder holds ``plaintext_articles.tar.gz`` (one ``plaintext_articles/<name>.txt`` per
article) and ``links.tsv`` (``source<TAB>target`` hyperlinks). Article names are URL-encoded
with underscores for spaces (``%C3%85land``); the document id is the decoded name
(``Åland``, ``Áedán_mac_Gabráin``) and the title the same with spaces.

Each text file starts with a header (``#copyright``, the title, and a paragraph
"2007 Schools Wikipedia Selection. Related subjects: ..."); it is dropped. The body is
hard-wrapped with a three-space indent: wrapped lines are joined so that a paragraph is one
line and paragraphs are separated by a blank line.

Each text file also ends with the Wikipedia footer, often in the same paragraph as the last
sentence (no blank line before it)::

       Retrieved from " http://en.wikipedia.org/wiki/Zebra"
       This reference article is mainly selected from the English Wikipedia
       with only minor checks and changes (see www.wikipedia.org for details
       of authors and sources) and is available under the GNU Free
       Documentation License. See also our Disclaimer.

It is boilerplate, not article text (and every article would "mention" Wikipedia), so it is
dropped too, but only when it is really there: a line starting ``Retrieved from "`` with an
``en.wikipedia.org/wiki/`` URL (which may be wrapped over lines), followed by exactly that
notice (any whitespace between its words) and nothing else up to the end of the file. All
4,598 articles of the dataset end so; ``Retrieved from`` occurs nowhere else in them. A text
without the footer is kept whole.

Damaged input is named and counted: a line of ``links.tsv`` that is not two UTF-8, URL-encoded
names is one bad record (yielded first, so ``--skip-bad`` counts it and keeps the others), a
member larger than ``max_record_bytes`` is not read, and a file that is no ``.tar.gz`` (or
breaks off inside) ends the reading with an error naming it. A line of ``links.tsv`` whose
source is no article of the tarball is counted as skipped (``link_from_no_article``), after the
articles: no document can hold it.
"""

from __future__ import annotations

import contextlib
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document, Skipped
from linkbert.corpus.io import (BadRecord, bounded_lines, decode_utf8, file_in, open_regular, read_at_most, reading,
                                require_path, settle, too_large)
from linkbert.errors import BadInput

ARTICLES = "plaintext_articles.tar.gz"
LINKS = "links.tsv"
HEADER_MARK = "2007 Schools Wikipedia Selection"
FOOTER_MARK = 'Retrieved from "'
FOOTER_NOTICE = ("This reference article is mainly selected from the English Wikipedia with only minor checks "
                 "and changes (see www.wikipedia.org for details of authors and sources) and is available "
                 "under the GNU Free Documentation License. See also our Disclaimer.")
# the footer from the start of its line to the end of the text; hard wrapping may split the URL
# and put a line break between any two words of the notice
_FOOTER = re.compile(r"^[ \t]*" + re.escape(FOOTER_MARK) + r"\s*https?://en\.wikipedia\.org/wiki/[^\"]*\"\s+"
                     + r"\s+".join(map(re.escape, FOOTER_NOTICE.split())) + r"\s*\Z", re.MULTILINE)


def decode_name(name: str) -> str:
    """``%C3%85land`` -> ``Åland``: the URL-decoding the dataset's README prescribes."""
    return unquote(name, encoding="utf-8", errors="strict")


class Links(NamedTuple):
    """``links.tsv`` read: {decoded source: (decoded targets, in file order)}, and its bad lines."""

    out: dict[str, tuple[str, ...]]
    bad: tuple[BadRecord, ...]


class WikispeediaReader:
    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str):
        self.path = str(path)
        root = require_path(path)
        self._tarball = file_in(root, ARTICLES, "the article tarball")
        self._links_file = file_in(root, LINKS, "links.tsv")
        self._links: Links | None = None

    def links(self) -> Links:
        """``links.tsv``, read on first use (~120k links: small enough to hold, and needed by
        ``parse()`` in every worker), each line at most ``max_record_bytes`` long."""
        if self._links is None:
            self._links = read_links(self._links_file, self.max_record_bytes)
        return self._links

    def records(self) -> Iterator[tuple[str, bytes] | Skipped | BadRecord]:
        """The bad lines of ``links.tsv``, then (member name, raw bytes) for each article file, in
        tarball order; a ``BadRecord`` for a member too large, a ``Skipped`` for a link or device."""
        yield from self.links().bad
        tar_path = str(Path(self.path) / ARTICLES)
        articles: set[str] = set()
        with reading(tar_path), _tar_errors(tar_path), open_regular(self._tarball) as raw, \
                tarfile.open(fileobj=raw, mode="r:gz") as tar:
            last = "(none)"
            for member in tar:
                if member.name.endswith(".txt"):
                    yield self._member(tar, member, tar_path) if member.isfile() else Skipped("not_a_regular_file")
                    last = _shown(member.name)
                    articles.add(_article_name(member.name))
            _check_end(tar, tar_path, last)
        for source, targets in self.links().out.items():
            if source not in articles:
                for _ in targets:
                    yield Skipped("link_from_no_article")

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo, tar_path: str) -> tuple[str, bytes] | BadRecord:
        where = f"member {_shown(member.name)}"
        raw = None if member.size > self.max_record_bytes else read_at_most(tar.extractfile(member), self.max_record_bytes)
        return too_large(tar_path, where, self.max_record_bytes) if raw is None else (member.name, raw)

    def parse(self, record: tuple[str, bytes] | Skipped | BadRecord) -> Document | Skipped:
        if isinstance(record, (Skipped, BadRecord)):
            return settle(record)
        member, raw = record
        where = f"member {_shown(member)}"
        path = str(Path(self.path) / ARTICLES)
        name = _article_name(member)
        if name is None:
            raise BadInput(path, where, "invalid_utf8", "the (URL-encoded) article name is not UTF-8")
        text = clean_text(decode_utf8(raw, path, where))
        return Document(id=name, title=name.replace("_", " "), text=text, links=self.links().out.get(name, ()))

    def document_keys(self, doc: Document) -> Iterable[str]:
        return (doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        return (target,)


def read_links(path: Path, limit: int = DEFAULT_MAX_RECORD_BYTES) -> Links:
    """``links.tsv`` as ``Links``; ``#`` lines are comments; a bad line is kept as a ``BadRecord``."""
    links: dict[str, list[str]] = {}
    bad: list[BadRecord] = []
    with reading(path), open_regular(path) as f:
        for line_no, raw in bounded_lines(f, limit):
            try:
                pair = _link(raw, str(path), f"line {line_no}", limit)
            except BadInput as e:
                bad.append(BadRecord.of(e))
                continue
            if pair:
                links.setdefault(pair[0], []).append(pair[1])
    return Links({source: tuple(targets) for source, targets in links.items()}, tuple(bad))


def _link(raw: bytes | None, path: str, where: str, limit: int) -> tuple[str, str] | None:
    """One line of ``links.tsv`` as (source, target); None for a comment or a blank line."""
    if raw is None:
        raise too_large(path, where, limit).error()
    line = decode_utf8(raw, path, where).rstrip("\n")
    if not line or line.startswith("#"):
        return None
    parts = line.split("\t")
    if len(parts) != 2:
        raise BadInput(path, where, "malformed_line", f"expected 'source<TAB>target', found {len(parts)} field(s)")
    try:
        return decode_name(parts[0]), decode_name(parts[1])
    except UnicodeDecodeError as e:
        raise BadInput(path, where, "invalid_utf8", f"a URL-encoded name is not UTF-8 once decoded ({e.reason} "
                                                    f"at byte {e.start})") from e


@contextlib.contextmanager
def _tar_errors(path: str) -> Iterator[None]:
    """tarfile's errors (not a tar.gz, a damaged header) as a fatal ``BadInput`` naming the file."""
    try:
        yield
    except tarfile.TarError as e:
        raise BadInput(path, "", "corrupt_file", f"not a readable .tar.gz archive ({e})", fatal=True) from e


def _check_end(tar: tarfile.TarFile, path: str, last: str) -> None:
    """A ``BadInput`` if the archive goes on past where tarfile stopped: it ends its listing at
    the first damaged header without a word, which would silently drop the members after it."""
    tar.fileobj.seek(tar.offset)
    while chunk := tar.fileobj.read(1 << 16):
        if chunk.strip(b"\0"):
            raise BadInput(path, f"after member {last}", "corrupt_file",
                           "a damaged member header: the rest of the archive cannot be read", fatal=True)


def _article_name(member: str) -> str | None:
    """The document id a member's name gives (``parse``'s), or None for a name that is not UTF-8."""
    try:
        stem = Path(member).stem
        stem.encode("utf-8")  # tarfile keeps the bytes of a name that are not UTF-8 as lone surrogates
        return decode_name(stem)
    except UnicodeError:
        return None


def _shown(name: str) -> str:
    """A member name fit for a message: bytes that were not UTF-8 as ``\\udcff`` escapes."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


def strip_footer(raw: str) -> str:
    """``raw`` without the trailing "Retrieved from ..." Wikipedia footer; unchanged when it has none."""
    match = _FOOTER.search(raw)
    return raw[:match.start()] if match else raw


def clean_text(raw: str) -> str:
    """Drop the header and the footer, and join hard-wrapped lines into one line per paragraph."""
    raw = strip_footer(raw)
    paragraphs = [" ".join(line.strip() for line in block.splitlines() if line.strip())
                  for block in raw.split("\n\n")]
    paragraphs = [p for p in paragraphs if p]
    for i, paragraph in enumerate(paragraphs[:4]):
        if paragraph.startswith(HEADER_MARK):
            paragraphs = paragraphs[i + 1:]
            break
    return "\n\n".join(paragraphs)
