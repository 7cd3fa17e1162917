"""MediaWiki XML dumps (``.xml``, ``.xml.bz2``, ``.xml.gz``): one ``Document`` per main-namespace article.

``records()`` cuts the dump into its ``<page>`` elements and parses each alone with lxml
(``linkbert.corpus.xmlrecords``), so memory stays flat however large the dump, a page larger than
``max_record_bytes`` is skipped without being held, and a page that is not well-formed XML (an
invalid character, a broken tag) is one bad record, named with its line: the pages after it are
still read. ``parse()`` turns a page's wikitext into clean
text and its ``[[links]]`` with mwparserfromhell (whose C tokenizer is used when available):
templates, tables, references, files, categories and interlanguage links are dropped, the
visible label of every link and external link is kept.

Links point at titles, so keys are MediaWiki-normalised titles (``normalise_title``). Which
prefixes name a namespace (``[[File:..]]``, ``[[Kategorie:..]]``) comes from the dump's own
``<siteinfo>``, read when ``records()`` starts, or from the file's header on first use in a
worker that was handed the reader before ``records()`` ran.
"""

from __future__ import annotations

import html
import re
from typing import Iterator, NamedTuple
from urllib.parse import unquote

import mwparserfromhell
from mwparserfromhell.nodes import (Argument, Comment, ExternalLink, Heading, HTMLEntity, Tag, Template, Text,
                                    Wikilink)
from mwparserfromhell.parser import ParserError

from linkbert.corpus import DEFAULT_MAX_RECORD_BYTES, Document, Redirect, Skipped
from linkbert.corpus.io import BadRecord, open_binary, reading, require_path, settle, too_large
from linkbert.corpus.xmlrecords import Piece, Wrapper, XmlRecords, check_gap
from linkbert.errors import BadInput

FILE_NS, CATEGORY_NS = 6, 14
MEDIA_NS = -2

# Canonical names every MediaWiki understands whatever its language, plus the usual aliases
# (``Image:`` is the old name of ``File:``; ``WP:``/``WT:`` are English Wikipedia's shortcuts,
# common in its articles' hatnotes). The dump's siteinfo adds the localised names.
CANONICAL_NAMESPACES = {
    "media": -2, "special": -1, "talk": 1, "user": 2, "user talk": 3, "project": 4, "project talk": 5,
    "file": 6, "file talk": 7, "image": 6, "image talk": 7, "mediawiki": 8, "mediawiki talk": 9,
    "template": 10, "template talk": 11, "help": 12, "help talk": 13, "category": 14, "category talk": 15,
    "wp": 4, "wt": 5,
}

# Prefixes of Wikimedia's sister projects and a few common interwikis: ``[[wikt:word]]`` is
# shown inline but leads off the wiki, so it is text, never a document link.
INTERWIKI_PREFIXES = frozenset({
    "w", "wikipedia", "wikt", "wiktionary", "q", "wikiquote", "s", "wikisource", "b", "wikibooks",
    "n", "wikinews", "v", "wikiversity", "voy", "wikivoyage", "species", "wikispecies", "d", "wikidata",
    "c", "commons", "m", "meta", "metawikipedia", "mw", "mediawikiwiki", "foundation", "wmf", "outreach",
    "incubator", "phab", "phabricator", "bugzilla", "mediazilla", "nost", "hdl", "doi", "google", "imdb",
})
# Language codes (``de``, ``zh-min-nan``, ``simple``): written lowercase, as dumps do, so that a
# title such as "UTC−05:00" or "Star Trek: Voyager" is not mistaken for one.
LANGUAGE_PREFIX = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8}){0,3}|simple")

# Tags whose content is not running prose: footnotes, tables, galleries, formulas, code, and
# what only shows when the page is transcluded.
DROPPED_TAGS = frozenset({
    "ref", "references", "table", "gallery", "math", "chem", "ce", "timeline", "imagemap", "score",
    "graph", "mapframe", "maplink", "templatedata", "templatestyles", "syntaxhighlight", "source",
    "hiero", "includeonly", "inputbox", "categorytree", "section", "indicator", "charinsert",
})
# Inline templates whose output is prose, and which parameter holds it: dropping them would leave
# gaps ("from the Greek , i.e." where {{lang|grc|...}} stood). Every other template is dropped.
INLINE_TEMPLATES = {"lang": "2", "nowrap": "1", "nobr": "1", "small": "1", "smaller": "1", "big": "1",
                    "abbr": "1", "em": "1", "strong": "1", "script": "2", "transl": "-1", "ipa": "1"}
BLOCK_TAGS = frozenset({"p", "div", "blockquote", "center", "poem", "pre", "ul", "ol", "dl", "hr"})
LINE_BREAK_TAGS = frozenset({"br"})

REDIRECT_TEXT = re.compile(r"\s*#redirect\s*:?\s*\[\[([^\]|]+)", re.IGNORECASE)
BEHAVIOR_SWITCH = re.compile(r"__[A-Z]+__")
LEFTOVER_QUOTES = re.compile(r"'{2,}")  # bold/italic marks mwparserfromhell left unpaired

# mwparserfromhell's time grows with the square of the markup left open (10,000 unclosed "{{a|[[b|"
# took 79 s; closed markup, however deep, is linear): a page with more than this many openers never
# closed is refused, far above what real articles leave open
MAX_UNCLOSED_MARKUP = 2000
MARKUP = re.compile(r"\{\{|\}\}|\[\[|\]\]|\{\||\|\}|<!--|-->|\[|\]|</?[A-Za-z][^<>]*>")
PAIRS = {"{{": ("}}", "template"), "[[": ("]]", "link"), "{|": ("|}", "table"), "<!--": ("-->", "comment"),
         "[": ("]", "external")}
SPACES = re.compile(r"[^\S\n]+")
BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")
TITLE_SPACES = re.compile(r"[\s_]+")
ENTITY = re.compile(r"&#?\w+;")
NAMESPACE_NUMBER = re.compile(r"-?[0-9]{1,9}")
DIRECTION_MARKS = re.compile("[\u200e\u200f\u202a-\u202e]")


class PageRecord(NamedTuple):
    """One ``<page>`` as read from the dump: cheap to pickle, parsed later in a worker."""

    index: int  # 1-based position in the file, for error messages
    page_id: str
    title: str
    namespace: int | None  # None when the dump has no <ns> (schemas before 0.6)
    redirect: str | None
    text: str


class SiteInfo(NamedTuple):
    """What link classification needs from ``<siteinfo>``: namespace names and title case."""

    namespaces: dict[str, int]  # lower-cased name or alias -> namespace number
    first_letter: bool  # titles' first letter is case-insensitive (Wikipedia); False on Wiktionary


DEFAULT_SITE = SiteInfo(dict(CANONICAL_NAMESPACES), True)


def normalise_title(title: str, first_letter: bool = True) -> str:
    """``title`` as MediaWiki stores it: the key under which a link finds its page.

    Percent-encoding and HTML entities are decoded first (as the parser does for link
    targets), then the ``#section`` fragment is dropped, underscores and whitespace runs become
    one space, a leading ``:`` (forced link) goes, and on ``first-letter`` wikis the first
    character is upper-cased. A bare ``#section`` link points at its own page and gives "".
    """
    text = _decode_title(title)
    if text.startswith(":"):
        text = text[1:].lstrip()
    if first_letter and text:
        text = text[0].upper() + text[1:]
    return text


def _decode_title(title: str) -> str:
    """``title`` decoded, without fragment, with spaces normalised; case and leading ":" untouched."""
    text = unquote(title) if "%" in title else title
    if "&" in text:
        text = ENTITY.sub(lambda m: html.unescape(m.group()), text)  # only complete "&...;" references
    text = DIRECTION_MARKS.sub("", text.split("#", 1)[0])
    return TITLE_SPACES.sub(" ", text).strip()


def _canonical_namespace(name: str) -> str:
    """A namespace name as compared: namespace names are case-insensitive and ``_`` means space."""
    return TITLE_SPACES.sub(" ", name).strip().lower()


class WikipediaXmlReader:
    """Reads one MediaWiki XML dump; holds only its path and the dump's siteinfo (picklable)."""

    max_record_bytes = DEFAULT_MAX_RECORD_BYTES

    def __init__(self, path: str):
        self.path = str(require_path(path, "MediaWiki dump"))
        self._site: SiteInfo | None = None

    # -- reading (main process) -------------------------------------------------------------

    def records(self) -> Iterator[PageRecord | BadRecord]:
        """Every ``<page>`` of the dump, in order, as a ``PageRecord``; a ``BadRecord`` for a page
        too large or not well-formed, or for anything but white space between pages."""
        with reading(self.path), open_binary(self.path) as stream:
            split, wrapper, self._site = self._header(stream)
            index = 0
            for piece in split.pieces():
                if piece.kind == "record":
                    index += 1
                    yield self._page(wrapper, piece, index)
                    continue
                problem = check_gap(piece, self.path, wrapper.suffix)
                if problem and problem.fatal:
                    raise problem
                if problem:
                    yield BadRecord.of(problem)

    def _header(self, stream) -> tuple[XmlRecords, Wrapper, SiteInfo]:
        """The dump cut into pages, its context for parsing them, and its siteinfo."""
        split = XmlRecords(stream, self.path, ("page",), self.max_record_bytes)
        header = split.header()
        wrapper = Wrapper.of(header, self.path)
        siteinfo = _child(wrapper.parse_header(header, split), "siteinfo")
        return split, wrapper, DEFAULT_SITE if siteinfo is None else _read_siteinfo(siteinfo)

    def _page(self, wrapper: Wrapper, piece: Piece, index: int) -> PageRecord | BadRecord:
        location = f"page {index}"
        if piece.data is None:
            return too_large(self.path, f"{location}, line {piece.line}", self.max_record_bytes)
        try:
            return _read_page(wrapper.parse_record(piece.data, piece.line, self.path, location), index)
        except BadInput as e:
            return BadRecord.of(e)

    def site(self) -> SiteInfo:
        """The dump's siteinfo, reading the file's header if ``records()`` has not done so here."""
        if self._site is None:
            with reading(self.path), open_binary(self.path) as stream:
                self._site = self._header(stream)[2]
        return self._site

    # -- parsing (worker processes) ---------------------------------------------------------

    def parse(self, record: PageRecord | BadRecord) -> Document | Redirect | Skipped:
        """A main-namespace article as a ``Document``, a redirect as a ``Redirect``, else ``Skipped``."""
        if isinstance(record, BadRecord):
            return settle(record)
        index, page_id, title, namespace, redirect, text = record
        location = f"page {index} (id {page_id or '?'})"
        if not title or not page_id:
            raise BadInput(self.path, location, "missing_field", "a <page> needs a <title> and an <id>")
        site = self.site()
        if namespace is None:
            namespace = self._namespace_of(title)
        if namespace != 0:
            return Skipped("namespace")
        if redirect is None:
            found = REDIRECT_TEXT.match(text)
            redirect = found.group(1) if found else None
        if redirect is not None:
            return Redirect(key=normalise_title(title, site.first_letter),
                            target=normalise_title(redirect, site.first_letter))
        unclosed = unclosed_markup(text)
        if unclosed > MAX_UNCLOSED_MARKUP:
            raise BadInput(self.path, location, "unbalanced_markup",
                           f"{unclosed:,} unclosed brackets, braces or tags (at most {MAX_UNCLOSED_MARKUP:,}): "
                           "the wikitext parser's time grows with their square")
        try:
            clean, links = self.wikitext_to_text(text)
        except ParserError as e:
            raise BadInput(self.path, location, "malformed_wikitext", f"cannot parse the wikitext ({e})") from e
        return Document(id=page_id, title=title, text=clean, links=tuple(links))

    def wikitext_to_text(self, wikitext: str) -> tuple[str, list[str]]:
        """Readable text of ``wikitext`` and the raw targets of its main-namespace links, in order."""
        links: list[str] = []
        # Style tags are not parsed: one unbalanced '' inside a <ref> made mwparserfromhell give up
        # on the whole ref and leave it as text (11 of the 106 real test articles); the bare quote
        # marks are removed in _tidy instead. It is also faster.
        raw = _Renderer(self, links).render(mwparserfromhell.parse(wikitext, skip_style_tags=True))
        return _tidy(raw), links

    # -- link resolution ---------------------------------------------------------------------

    def document_keys(self, doc: Document) -> tuple[str, ...]:
        return (normalise_title(doc.title, self.site().first_letter),)

    def link_keys(self, target: str) -> tuple[str, ...]:
        """The normalised title for a link into the main namespace; () for other namespaces or a self-link."""
        if self.link_kind(target)[0] != 0:
            return ()
        key = normalise_title(target, self.site().first_letter)
        return (key,) if key else ()

    def link_kind(self, target: str) -> tuple[int | str, bool]:
        """Where ``target`` points: a namespace number, ``"interwiki"`` or ``"language"``;
        and whether it was forced inline with a leading ``:``."""
        text = _decode_title(target)
        forced = text.startswith(":")
        if forced:
            text = text[1:].lstrip()
        if ":" not in text:
            return 0, forced
        prefix = text.split(":", 1)[0]
        namespace = self.site().namespaces.get(_canonical_namespace(prefix))
        if namespace is not None:
            return namespace, forced
        if LANGUAGE_PREFIX.fullmatch(prefix.strip()):
            return "language", forced
        if _canonical_namespace(prefix) in INTERWIKI_PREFIXES:
            return "interwiki", forced
        return 0, forced

    def _namespace_of(self, title: str) -> int:
        """A page's namespace from its title's prefix, for old dumps without ``<ns>``."""
        kind, _ = self.link_kind(title)
        return kind if isinstance(kind, int) else 0


class _Renderer:
    """Walks a parsed page, writing the text a reader sees and collecting its article links."""

    def __init__(self, reader: WikipediaXmlReader, links: list[str]):
        self.reader = reader
        self.links = links

    def render(self, code) -> str:
        return "".join(self.node(node) for node in code.nodes)

    def node(self, node) -> str:
        if isinstance(node, Text):
            return node.value
        if isinstance(node, Wikilink):
            return self.wikilink(node)
        if isinstance(node, Tag):
            return self.tag(node)
        if isinstance(node, HTMLEntity):
            return node.normalize()
        if isinstance(node, ExternalLink):
            return self.external_link(node)
        if isinstance(node, Heading):
            # its own paragraph, so sentence splitting never glues it to the next one
            return "\n\n" + self.render(node.title).strip() + "\n\n"
        if isinstance(node, Template):
            return self.template(node)
        if isinstance(node, (Comment, Argument)):
            return ""
        return str(node)  # anything newer mwparserfromhell adds: keep its text rather than lose it

    def template(self, template: Template) -> str:
        """The visible words of an inline template ({{lang|grc|ἀναρχία}}, {{convert|5|km}}), else nothing."""
        name = str(template.name).strip().lower().replace("_", " ")
        positional = [p.value for p in template.params if not p.showkey]
        if name == "convert" and len(positional) >= 2:
            return f"{self.render(positional[0]).strip()} {self.render(positional[1]).strip()}"
        which = "1" if name.startswith("lang-") else INLINE_TEMPLATES.get(name)
        if which is None or not positional:
            return ""
        index = int(which) - 1 if which != "-1" else len(positional) - 1
        return self.render(positional[index]) if index < len(positional) else ""

    def wikilink(self, link: Wikilink) -> str:
        target = str(link.title)
        kind, forced = self.reader.link_kind(target)
        if not forced and kind in (FILE_NS, CATEGORY_NS, "language"):
            return ""  # images, category tags and interlanguage links are not part of the prose
        label = self.render(link.text) if link.text is not None else target.strip().lstrip(":")
        if kind == 0 and normalise_title(target):
            self.links.append(target.strip())
        return label

    def tag(self, tag: Tag) -> str:
        name = str(tag.tag).strip().lower()
        if name in DROPPED_TAGS:
            return ""
        if name in LINE_BREAK_TAGS:
            return "\n"
        if tag.wiki_markup and name in ("li", "dt", "dd"):
            return " "  # a list or indent marker: the item's text follows as ordinary nodes
        inner = self.render(tag.contents) if tag.contents is not None else ""
        if name in BLOCK_TAGS:
            return "\n\n" + inner + "\n\n"
        return inner

    def external_link(self, link: ExternalLink) -> str:
        if link.brackets:
            # [http://x label] shows the label; a bare [http://x] shows only a footnote number
            return self.render(link.title) if link.title is not None else ""
        return str(link.url)


def _tidy(text: str) -> str:
    """Plain text with single spaces, no empty lines inside paragraphs, paragraphs split by one blank line."""
    text = BEHAVIOR_SWITCH.sub("", text)
    text = LEFTOVER_QUOTES.sub("", text)
    text = SPACES.sub(" ", text.replace("\xa0", " "))  # &nbsp; is layout: tokenizers see a space
    text = "\n".join(line.strip() for line in text.split("\n"))
    return BLANK_LINES.sub("\n\n", text).strip()


# -- XML helpers -------------------------------------------------------------------------------


def _child(element, name: str):
    return element.find("{*}" + name)


def _child_text(element, name: str) -> str:
    child = _child(element, name) if element is not None else None
    return "" if child is None else "".join(child.itertext())  # itertext skips unexpanded entities


def _read_page(page, index: int) -> PageRecord:
    namespace = _child_text(page, "ns").strip()
    redirect = _child(page, "redirect")
    revision = _child(page, "revision")
    return PageRecord(
        index=index,
        page_id=_child_text(page, "id").strip(),
        title=_child_text(page, "title"),
        namespace=_namespace_number(namespace),
        redirect=redirect.get("title") if redirect is not None else None,
        text=_child_text(revision, "text"),
    )


def _read_siteinfo(siteinfo) -> SiteInfo:
    namespaces = dict(CANONICAL_NAMESPACES)
    listing = _child(siteinfo, "namespaces")
    for namespace in listing if listing is not None else ():
        name, key = (namespace.text or "").strip(), _namespace_number(namespace.get("key", ""))
        if name and key is not None:
            namespaces[_canonical_namespace(name)] = key
    return SiteInfo(namespaces, _child_text(siteinfo, "case").strip() != "case-sensitive")


def _namespace_number(text: str) -> int | None:
    """A namespace number as written in the dump; None for none or anything else (a 5,000-digit
    number would not even convert)."""
    text = text.strip()
    return int(text) if NAMESPACE_NUMBER.fullmatch(text) else None


def unclosed_markup(wikitext: str) -> int:
    """How many openers (``{{``, ``[[``, ``[``, ``{|``, ``<!--``, HTML tags) are never closed, in
    one pass: each kind's depth goes up at an opener and down (never below 0) at a closer, and
    what is left open at the end is counted. Void and self-closing tags count for nothing."""
    depth = {"template": 0, "link": 0, "table": 0, "comment": 0, "external": 0, "tag": 0}
    closers = {closer: kind for closer, kind in PAIRS.values()}
    for match in MARKUP.finditer(wikitext):
        token = match.group()
        if token in PAIRS:
            depth[PAIRS[token][1]] += 1
        elif token in closers:
            kind = closers[token]
            depth[kind] = max(0, depth[kind] - 1)
        elif token.startswith("</"):
            depth["tag"] = max(0, depth["tag"] - 1)
        elif not token.endswith("/>") and _tag_name(token) not in VOID_TAGS:
            depth["tag"] += 1
    return sum(depth.values())


VOID_TAGS = {"br", "hr", "img", "wbr", "meta", "link", "input", "col", "area", "base", "source", "track", "embed",
             "references"}


def _tag_name(token: str) -> str:
    return re.match(r"</?([A-Za-z][\w-]*)", token).group(1).lower()
