"""A documentation site on disk: one document per HTML page, its internal hyperlinks as links.

``path`` is the site's folder; every ``*.html``/``*.htm`` below it is a page, read in order of
its relative path. A page's id is that path with ``/`` separators (``guide/intro.html``).
The folder is untrusted: only regular files inside it are read (a symlink to a page inside it
is followed, one leading outside is not; FIFOs and devices are skipped), each skip counted
(``linkbert.corpus.io.folder_files``), and a page larger than ``max_record_bytes`` is not read.

Parsing uses ``lxml.html`` (libxml2's HTML parser, which never loads external entities):
lxml is already a declared dependency for the PubMed reader, and the text walk needs each
node's text and tail, which its tree gives directly. ``selectolax`` would parse faster but
is not a dependency of the package.

Only content counts: scripts, styles, the page head, hidden elements and page chrome
(``nav``, ``aside``, the page-level ``header``/``footer``) give neither text nor links,
because menus repeat on every page and would link every page to every menu entry.
"""

from __future__ import annotations

import codecs
import posixpath
import re
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator
from urllib.parse import unquote, urlsplit

import lxml.html
from lxml import etree

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document, Redirect, Skipped
from linkbert.corpus.io import (BadRecord, FolderEntry, decode_utf8, folder_files, open_regular, read_at_most,
                                require_path, settle, too_large)
from linkbert.errors import BadInput

SUFFIXES = (".html", ".htm")

# never visible, or chrome rather than content
DROPPED = frozenset({
    "head", "script", "style", "noscript", "template", "nav", "aside",
    "svg", "canvas", "iframe", "object", "video", "audio", "select", "button",
})
# chrome only at page level: inside an article or section they hold its heading or byline
# (the ARIA "banner"/"contentinfo" rule)
CHROME = frozenset({"header", "footer"})
SECTIONING = frozenset({"article", "section", "main", "aside", "nav"})

PARAGRAPHS = frozenset({
    "html", "body", "main", "article", "section", "div", "p", "pre", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "table", "caption", "figure",
    "figcaption", "form", "fieldset", "legend", "address", "hr", "details", "summary",
    "center", "header", "footer",
})
LINES = frozenset({"br", "li", "dt", "dd", "tr"})
CELLS = frozenset({"td", "th"})

# where the HTML spec looks for a <meta> charset, with a margin for long heads
CHARSET_WINDOW = 4096
META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
# browsers read these labels as windows-1252, which fills the gaps latin-1 leaves undefined
WINDOWS_1252_ALIASES = frozenset({"latin_1", "ascii", "iso8859-1"})
# The legacy charsets of the WHATWG Encoding standard (what browsers decode), as Python names them.
# Any other label a page declares is ignored: Python's codec registry also holds codecs that are
# no charset at all ("rot13", "hex", "zlib": an error) or that can produce lone surrogates
# ("utf-7", "unicode_escape"), which no tokenizer takes.
WEB_CHARSETS = frozenset({
    "cp866", "iso8859-2", "iso8859-3", "iso8859-4", "iso8859-5", "iso8859-6", "iso8859-7", "iso8859-8",
    "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-15", "iso8859-16", "koi8-r", "koi8-u", "mac-roman",
    "cp874", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "gbk", "gb2312", "gb18030", "big5", "big5hkscs", "euc_jp", "iso2022_jp", "shift_jis", "euc_kr",
    *WINDOWS_1252_ALIASES,
})

# huge_tree: without it libxml2 silently drops everything nested deeper than 256 elements
PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, huge_tree=True)


class HtmlSiteReader:
    """Reads a folder of HTML pages into documents keyed by their relative path."""

    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str):
        self.path = str(path)

    def records(self) -> Iterator[tuple[str, bytes] | Skipped | BadRecord]:
        """(relative path, raw bytes) per page; a ``Skipped`` for an entry not read, a ``BadRecord``
        for a page too large or that cannot be read."""
        root = require_path(self.path, "HTML site folder")
        if not root.is_dir():
            raise BadInput(str(root), "", "not_a_folder", "expected the folder of an HTML site", fatal=True)
        for entry in folder_files(root, lambda name: name.lower().endswith(SUFFIXES)):
            yield Skipped(entry.skip) if entry.skip else self._page(entry)

    def _page(self, entry: FolderEntry) -> tuple[str, bytes] | BadRecord:
        try:
            with open_regular(entry.path) as f:
                raw = read_at_most(f, self.max_record_bytes)
        except BadInput as e:
            return BadRecord(entry.name, "", e.reason, e.detail)  # one page: not fatal
        except OSError as e:
            return BadRecord(entry.name, "", "unreadable", f"cannot read the page ({e.strerror})")
        return too_large(entry.name, "", self.max_record_bytes) if raw is None else (entry.relative, raw)

    def parse(self, record: tuple[str, bytes] | Skipped | BadRecord) -> Document | Redirect | Skipped:
        if isinstance(record, (Skipped, BadRecord)):
            return settle(record)
        relative, raw = record
        path = str(Path(self.path) / relative)
        text = decode_page(raw, path)
        try:
            # lxml refuses str input that declares an encoding; the text is decoded already
            tree = lxml.html.document_fromstring(XML_DECLARATION.sub("", text), parser=PARSER)
        except etree.ParserError:  # lxml's word for a page with no markup and no text
            return Skipped("empty_page")
        check_parsed(path)
        refresh = refresh_target(tree, relative)
        if refresh:
            return Redirect(key=relative, target=refresh)
        content = Content(relative)
        content.walk(tree)
        body = content.text()
        if not body:
            return Skipped("empty_page")
        return Document(id=relative, title=page_title(tree, relative), text=body, links=tuple(content.links))

    def document_keys(self, doc: Document) -> Iterable[str]:
        return (doc.id,)

    def link_keys(self, target: str) -> Iterable[str]:
        """The page ``target`` means: itself, a folder's index page, or ``page`` for ``page.html``."""
        if target.endswith("/"):
            return target, target + "index.html", target + "index.htm"
        if target.lower().endswith(SUFFIXES):
            return (target,)
        return target, target + ".html", target + "/index.html"


def check_parsed(path: str) -> None:
    """A ``BadInput`` if the parser gave up on the page: libxml2 recovers from any markup, but stops
    at its limits (elements nested over 2048 deep), silently dropping the rest of the page."""
    for error in PARSER.error_log:
        if error.level == etree.ErrorLevels.FATAL:
            reason = "too_deeply_nested" if "depth" in error.message else "malformed_html"
            raise BadInput(path, f"line {error.line}", reason, f"the HTML parser stopped here: {error.message}")


def decode_page(raw: bytes, path: str) -> str:
    """The page as text: a byte-order mark, else its ``<meta>`` charset, else UTF-8 (strictly)."""
    if raw.startswith(codecs.BOM_UTF8):
        return decode_utf8(raw[len(codecs.BOM_UTF8):], path, "")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace")
    encoding = declared_charset(raw)
    if encoding is None:
        return decode_utf8(raw, path, "")
    # a legacy charset: decode as a browser would, a stray byte becoming U+FFFD, not an error
    return raw.decode(encoding, errors="replace")


def declared_charset(raw: bytes) -> str | None:
    """A Python codec for the page's declared legacy charset; None for UTF-8, none, or not a web charset."""
    match = META_CHARSET.search(raw[:CHARSET_WINDOW])
    if not match:
        return None
    try:
        name = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    if name not in WEB_CHARSETS:
        # UTF-8, or a UTF-16 label in bytes that reached a byte scan (wrong, the HTML spec says:
        # UTF-8), or no charset a browser knows
        return None
    return "cp1252" if name in WINDOWS_1252_ALIASES else name


def page_title(tree: etree._Element, relative: str) -> str:
    """``<title>``, else the first ``<h1>``, else the file name without its suffix."""
    for query in (".//title", ".//h1"):
        element = tree.find(query)
        if element is not None:
            title = collapse(element.text_content())
            if title:
                return title
    return PurePosixPath(relative).stem


def refresh_target(tree: etree._Element, relative: str) -> str | None:
    """Where a ``<meta http-equiv="refresh" content="0; url=...">`` page sends the reader, if inside the site."""
    for meta in tree.iterfind(".//meta[@http-equiv]"):
        if meta.get("http-equiv", "").lower() != "refresh":
            continue
        _, _, url = meta.get("content", "").partition(";")
        url = url.strip()
        if url[:4].lower() == "url=":
            target = resolve_link(url[4:].strip("'\" "), relative)
            if target and target != relative:
                return target
    return None


def resolve_link(href: str, page: str) -> str | None:
    """``href`` on ``page`` as a site-relative page path, or None when it leaves the site.

    Fragments and queries are dropped and the path percent-decoded; ``/x`` is taken from the
    site root; a folder ``guide/`` means ``guide/index.html``. Links with a scheme or host
    (``https:``, ``mailto:``, ``javascript:``, ``//cdn...``), links climbing above the root with
    ``..`` and links to the page itself (``#top``) give None.
    """
    parts = urlsplit(href.strip())
    if parts.scheme or parts.netloc or not parts.path:
        return None
    path = unquote(parts.path)
    if path.startswith("/"):
        joined = path.lstrip("/")  # from the site root
    else:
        joined = posixpath.join(posixpath.dirname(page), path)
    resolved = posixpath.normpath(joined) if joined else "."
    if resolved == ".." or resolved.startswith("../"):
        return None
    if resolved == "." or path.endswith("/") or posixpath.basename(path) in (".", ".."):
        resolved = "index.html" if resolved == "." else resolved + "/index.html"
    return None if resolved == page else resolved


class Content:
    """Walks a page's tree collecting visible text as paragraphs of lines, and content links."""

    def __init__(self, page: str):
        self.page = page
        self.links: list[str] = []
        self.paragraphs: list[str] = []
        self.lines: list[str] = []
        self.words: list[str] = []  # raw text pieces of the current line
        self.pre = 0  # depth inside <pre>, where line breaks are content

    def walk(self, root: etree._Element) -> None:
        """Add the visible text and links under ``root``, in document order.

        Iterative rather than recursive: with ``huge_tree`` libxml2 nests up to 2048
        elements, deeper than Python's default recursion limit.
        """
        todo = [(root, False, False)]  # (element, inside a sectioning element, leaving it)
        while todo:
            element, sectioned, leaving = todo.pop()
            if leaving:
                self.close(element.tag)
                self.add(element.tail)
                continue
            tag = element.tag
            if not isinstance(tag, str) or is_hidden(element, tag, sectioned):  # comments keep out too
                self.add(element.tail)
                continue
            self.enter(element, tag)
            inner = sectioned or tag in SECTIONING
            todo.append((element, sectioned, True))
            todo.extend((child, inner, False) for child in reversed(element))

    def enter(self, element: etree._Element, tag: str) -> None:
        if tag == "a" and element.get("href") is not None:
            link = resolve_link(element.get("href"), self.page)
            if link:
                self.links.append(link)
        self.open(tag)
        self.add(element.text)

    def open(self, tag: str) -> None:
        if tag in PARAGRAPHS:
            self.end_paragraph()
        elif tag in LINES:
            self.end_line()
        elif tag in CELLS:
            self.words.append(" ")
        if tag == "pre":
            self.pre += 1

    def close(self, tag: str) -> None:
        # end the block first: the last line of a <pre> is still code
        if tag in PARAGRAPHS:
            self.end_paragraph()
        elif tag in LINES and tag != "br":
            self.end_line()
        if tag == "pre":
            self.pre -= 1

    def add(self, text: str | None) -> None:
        if not text:
            return
        if not self.pre:
            self.words.append(text)
            return
        first, *rest = text.split("\n")
        self.words.append(first)
        for line in rest:
            self.end_line(keep_blank=True)
            self.words.append(line)

    def end_line(self, keep_blank: bool = False) -> None:
        raw = "".join(self.words)
        self.words = []
        # code keeps its indentation; prose has its runs of spaces and newlines collapsed
        line = raw.rstrip() if self.pre else collapse(raw)
        if line or (keep_blank and self.lines):
            self.lines.append(line)

    def end_paragraph(self) -> None:
        self.end_line()
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        if self.lines:
            self.paragraphs.append("\n".join(self.lines))
        self.lines = []

    def text(self) -> str:
        self.end_paragraph()
        return "\n\n".join(self.paragraphs)


def is_hidden(element: etree._Element, tag: str, sectioned: bool) -> bool:
    """Whether ``element`` shows nothing a reader of the content would miss."""
    if tag in DROPPED or (tag in CHROME and not sectioned):
        return True
    if element.get("hidden") is not None or element.get("aria-hidden", "").strip().lower() == "true":
        return True
    return "display:none" in element.get("style", "").replace(" ", "").lower()


def collapse(text: str) -> str:
    """Runs of whitespace as one space, none at the ends."""
    return " ".join(text.split())
