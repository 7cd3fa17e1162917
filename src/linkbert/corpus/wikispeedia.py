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
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote

from linkbert.corpus import Document
from linkbert.corpus.io import decode_utf8, reading, require_path
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


class WikispeediaReader:
    def __init__(self, path: str):
        self.path = str(path)
        root = require_path(path)
        require_path(root / ARTICLES, "the article tarball")
        # ~120k links: small enough to hold, and needed by parse() in every worker
        self.out_links = read_links(root / LINKS)

    def records(self) -> Iterator[tuple[str, bytes]]:
        """(member name, raw bytes) for each article file, in tarball order."""
        tar_path = Path(self.path) / ARTICLES
        with reading(tar_path), tarfile.open(tar_path, "r:gz") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".txt"):
                    yield member.name, tar.extractfile(member).read()

    def parse(self, record: tuple[str, bytes]) -> Document:
        member, raw = record
        where = f"member {member}"
        path = str(Path(self.path) / ARTICLES)
        try:
            name = decode_name(Path(member).stem)
        except UnicodeDecodeError as e:
            raise BadInput(path, where, "invalid_utf8", "the URL-encoded article name is not UTF-8") from e
        text = clean_text(decode_utf8(raw, path, where))
        return Document(id=name, title=name.replace("_", " "), text=text, links=self.out_links.get(name, ()))

    def document_keys(self, doc: Document) -> Iterable[str]:
        return (doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        return (target,)


def read_links(path: Path) -> dict[str, tuple[str, ...]]:
    """``links.tsv`` as {decoded source: (decoded targets, in file order)}; ``#`` lines are comments."""
    require_path(path, "links.tsv")
    links: dict[str, list[str]] = {}
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            line = decode_utf8(raw, str(path), f"line {line_no}").rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise BadInput(str(path), f"line {line_no}", "malformed_line",
                               f"expected 'source<TAB>target', found {len(parts)} field(s)")
            links.setdefault(decode_name(parts[0]), []).append(decode_name(parts[1]))
    return {source: tuple(targets) for source, targets in links.items()}


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
