"""PubMed/MEDLINE baseline XML: one document per citation, the PMIDs it cites as links.

The input is a baseline or update file (``pubmed20n0014.xml.gz``, plain ``.xml`` too) or a
folder of them, read in name order (entries that are not regular files, or symlinks leading
out of the folder, are skipped and counted). Each file is cut into its records, each parsed
alone (``linkbert.corpus.xmlrecords``): memory stays flat however large the file, a record
larger than ``max_record_bytes`` is skipped unread, and a record that is not well-formed XML is
one bad record named by its line, the records after it still read. Records in an XML namespace
(``<PubmedArticleSet xmlns="...">``) are read as the plain ones.

lxml elements do not pickle, so ``records()`` pulls the few fields a document needs out of
each ``PubmedArticle`` in the main process (a handful of ``find`` calls on a small subtree)
and yields them as a ``Citation``; ``parse()`` checks them and builds the ``Document``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

from lxml import etree

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document, Skipped
from linkbert.corpus.io import (BadRecord, FolderEntry, file_records, folder_files, open_binary, reading, require_path,
                                settle, too_large)
from linkbert.corpus.xmlrecords import Piece, Wrapper, XmlRecords, check_gap
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

    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str):
        self.path = str(path)

    def records(self) -> Iterator[Citation | Skipped | BadRecord]:
        in_folder = Path(self.path).is_dir()
        return file_records(self.files(), lambda entry: read_file(entry, self.max_record_bytes, regular=in_folder))

    def files(self) -> list[FolderEntry]:
        """The file itself, or the folder's PubMed files sorted by name (skipped entries included)."""
        root = require_path(self.path, "PubMed input")
        if not root.is_dir():
            return [FolderEntry.named(root)]
        files = folder_files(root, lambda name: name.endswith(SUFFIXES), recursive=False)
        if not files:
            raise BadInput(str(root), "", "no_input_files",
                           f"no {' or '.join(SUFFIXES)} files in this folder", fatal=True)
        return files

    def parse(self, record: Citation | Skipped | BadRecord) -> Document | Skipped:
        if isinstance(record, (Skipped, BadRecord)):
            return settle(record)
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


def read_file(entry: FolderEntry, limit: int = DEFAULT_MAX_RECORD_BYTES, *,
              regular: bool = False) -> Iterator[Citation | Skipped | BadRecord]:
    """Stream one file's records; a damaged file ends with a fatal ``BadInput``, a damaged record
    is a ``BadRecord``. ``regular``: a file found in a folder (``open_binary``)."""
    path = entry.name
    with reading(path), open_binary(entry.path, regular=regular, name=path) as stream:
        split = XmlRecords(stream, path, (ARTICLE, BOOK, DELETED), limit)
        header = split.header()
        wrapper = Wrapper.of(header, path)
        wrapper.parse_header(header, split)
        number = 0
        for piece in split.pieces():
            if piece.kind == "record":
                number += piece.name == ARTICLE
                yield from _record(wrapper, piece, path, number, limit)
                continue
            problem = check_gap(piece, path, wrapper.suffix)
            if problem and problem.fatal:
                raise problem
            if problem:
                yield BadRecord.of(problem)


def _record(wrapper: Wrapper, piece: Piece, path: str, number: int, limit: int) -> Iterator[Citation | Skipped | BadRecord]:
    """One ``PubmedArticle`` as a ``Citation``; a ``Skipped`` for a book or each deleted PMID."""
    location = f"record {number}" if piece.name == ARTICLE else f"{piece.name} at line {piece.line}"
    if piece.data is None:
        yield too_large(path, f"{location}, line {piece.line}" if piece.name == ARTICLE else location, limit)
        return
    try:
        element = wrapper.parse_record(piece.data, piece.line, path, location)
    except BadInput as e:
        yield BadRecord.of(e)
        return
    without_namespaces(element)
    if piece.name == ARTICLE:
        yield extract(element, path, number)
    elif piece.name == BOOK:
        yield Skipped("book_article")
    else:
        # An update file's list of withdrawn PMIDs: nothing to read, but worth counting
        for _ in element.iterfind("PMID"):
            yield Skipped("deleted_citation")


def without_namespaces(element: etree._Element) -> None:
    """Drop the XML namespace from every tag below a namespaced ``element``: the paths used here
    name plain tags."""
    if not element.tag.startswith("{"):
        return
    for node in element.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = etree.QName(node).localname


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
