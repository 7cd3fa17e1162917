"""PubMed/MEDLINE baseline XML: one document per citation, the PMIDs it cites as links.

The input is a baseline or update file (``pubmed20n0014.xml.gz``, plain ``.xml`` too) or a
folder of them, read in name order. Files are streamed with ``iterparse`` and every record
is cleared once read, so memory stays flat however large the file.

lxml elements do not pickle, so ``records()`` pulls the few fields a document needs out of
each ``PubmedArticle`` in the main process (a handful of ``find`` calls on a small subtree)
and yields them as a ``Citation``; ``parse()`` checks them and builds the ``Document``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from lxml import etree

from linkbert.corpus import Document, Skipped
from linkbert.corpus.io import open_binary, reading, require_path
from linkbert.errors import BadInput

SUFFIXES = (".xml.gz", ".xml")

ARTICLE = "PubmedArticle"
BOOK = "PubmedBookArticle"
DELETED = "DeleteCitation"

# MEDLINE marks the unheaded part of a structured abstract with this label; it is not a heading
UNLABELLED = "UNLABELLED"

# Cited PMIDs in document order: comments/corrections first, then the reference list, which
# may nest (a titled sub-list inside the list), hence ``//``. Compiled once: about twice as
# fast as two ``iterfind`` calls, and this runs for every record in the main process.
CITED_PMIDS = etree.XPath(
    "MedlineCitation/CommentsCorrectionsList/CommentsCorrections/PMID"
    " | PubmedData//ReferenceList/Reference/ArticleIdList/ArticleId[@IdType='pubmed']"
)


class Citation(NamedTuple):
    """The fields of one ``PubmedArticle``, small and picklable, as ``records()`` yields them.

    A tuple rather than a dataclass so that ``linkbert prepare`` can size its worker chunks
    by the record's text, as it does for every tuple record.
    """

    path: str  # the file it came from, for error messages
    number: int  # 1-based position among the file's PubmedArticle records
    pmid: str  # "" when the record has none (``parse`` rejects it)
    title: str
    abstract: tuple[tuple[str, str], ...]  # (label, text) per AbstractText; label "" when absent
    links: tuple[str, ...]


class PubmedXmlReader:
    """Reads PubMed XML files into documents keyed by PMID."""

    def __init__(self, path: str):
        self.path = str(path)

    def records(self) -> Iterator[Citation | Skipped]:
        for file in self.files():
            yield from read_file(file)

    def files(self) -> list[Path]:
        """The file itself, or the folder's PubMed files sorted by name."""
        root = require_path(self.path, "PubMed input")
        if root.is_file():
            return [root]
        files = sorted(p for p in root.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))
        if not files:
            raise BadInput(str(root), "", "no_input_files",
                           f"no {' or '.join(SUFFIXES)} files in this folder", fatal=True)
        return files

    def parse(self, record: Citation | Skipped) -> Document | Skipped:
        if isinstance(record, Skipped):
            return record
        if not record.pmid:
            raise BadInput(record.path, f"record {record.number}", "missing_field",
                           "the citation has no MedlineCitation/PMID")
        return Document(id=record.pmid, title=record.title,
                        text=citation_text(record.title, record.abstract), links=record.links)

    def document_keys(self, doc: Document) -> Iterable[str]:
        return (doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        pmid = target.strip()
        return (pmid,) if pmid.isascii() and pmid.isdigit() else ()


def read_file(path: Path) -> Iterator[Citation | Skipped]:
    """Stream one file's citations; a damaged file or bad XML ends it with a fatal ``BadInput``."""
    with reading(path), open_binary(path) as stream:
        # The real files declare a DTD on dtd.nlm.nih.gov: never fetch it, nor any entity
        events = etree.iterparse(stream, events=("end",), tag=(ARTICLE, BOOK, DELETED),
                                 resolve_entities=False, load_dtd=False, no_network=True)
        number = 0
        try:
            for _, element in events:
                if element.tag == ARTICLE:
                    number += 1
                    yield extract(element, str(path), number)
                elif element.tag == BOOK:
                    yield Skipped("book_article")
                else:
                    # An update file's list of withdrawn PMIDs: nothing to read, but worth counting
                    for _ in element.iterfind("PMID"):
                        yield Skipped("deleted_citation")
                release(element)
        except etree.XMLSyntaxError as e:
            # the parser cannot go on past a syntax error, so the rest of the file is lost
            raise BadInput(str(path), f"line {e.position[0]}", "malformed_xml", e.msg, fatal=True) from e


def release(element: etree._Element) -> None:
    """Free a finished record and the already-read siblings before it, so memory stays constant."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def extract(article: etree._Element, path: str, number: int) -> Citation:
    """The fields a ``Document`` needs from one ``PubmedArticle``."""
    abstract = tuple(
        (part.get("Label", "").strip(), flat_text(part))
        for part in article.iterfind("MedlineCitation/Article/Abstract/AbstractText")
    )
    links = tuple(pmid for pmid in map(flat_text, CITED_PMIDS(article)) if pmid)
    return Citation(path=path, number=number,
                    pmid=flat_text(article.find("MedlineCitation/PMID")),
                    title=flat_text(article.find("MedlineCitation/Article/ArticleTitle")),
                    abstract=abstract, links=links)


def flat_text(element: etree._Element | None) -> str:
    """All text under ``element`` (inline markup such as ``<i>`` keeps its words), whitespace collapsed."""
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def citation_text(title: str, abstract: Iterable[tuple[str, str]]) -> str:
    """Title, then each abstract part as its own paragraph, headed by its label when it has one."""
    parts = [f"{label}: {text}" if label and label != UNLABELLED else text
             for label, text in abstract if text]
    return "\n\n".join(p for p in (title, *parts) if p)
