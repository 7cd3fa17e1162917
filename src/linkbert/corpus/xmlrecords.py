"""XML files of many records (a dump's ``<page>``s, PubMed's ``<PubmedArticle>``s), read record by record.

One ``iterparse`` over the whole file would be simpler, but libxml2 cannot go on after an error,
so one invalid character would end the file (losing every record after it), and a record is
built whole in memory before the reader sees it, so one 4 GB record would exhaust memory.

Instead the byte stream is cut at the records' start and end tags, which cannot occur in XML
text or attribute values (``<`` is always escaped there), and each record is parsed alone,
wrapped in the file's own prolog and root start tag so that it has the file's namespaces and
declared entities. So a damaged record costs that record only (reported with its line), and a
record longer than the limit is skipped looking at a small window of it at a time.

Every parse is safe with untrusted files: no DTD loading, no network, entities not substituted
(libxml2 also refuses entity amplification such as "billion laughs"), and libxml2's default
limits (``huge_tree`` off): a record cannot be larger than ``max_record_bytes`` anyway.
"""

from __future__ import annotations

import re
from typing import BinaryIO, Iterator, NamedTuple

from lxml import etree

from linkbert.errors import BadInput

READ_SIZE = 1 << 16
# bytes kept between reads, so that a tag split across two reads is still found
OVERLAP = 256
NAME = rb"[A-Za-z_][\w.-]*"

# what may come before the root element: a byte-order mark, the XML declaration, comments,
# processing instructions, a DOCTYPE (with an internal subset); written without nested
# repetition, so that a hostile header cannot make it backtrack for long
PROLOG = re.compile(rb"(?:\xef\xbb\xbf)?(?:\s+|<\?[^?]*(?:\?+[^?>][^?]*)*\?+>|<!--(?:[^-]|-[^-])*-->"
                    rb"|<!DOCTYPE[^\[>]*(?:\[[^\]]*\][^>]*)?>)*")
POSITION = re.compile(r", line \d+, column \d+$")
ROOT_START = re.compile(rb"<(" + NAME + rb"(?::" + NAME + rb")?)[^<>]*>")

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                         remove_comments=True, remove_pis=True)


class Piece(NamedTuple):
    """A stretch of the file: ``record`` (data: its bytes, None when over the limit), ``gap``
    (between two records) or ``tail`` (after the last record); ``line``: where it starts."""

    kind: str
    line: int
    data: bytes | None
    name: str = ""  # a record's element name


class XmlRecords:
    """Cuts ``stream`` into its header (before the first record) and pieces, at most ``limit`` bytes each.

    ``names``: the records' element names. A record ends at its end tag, or where the next one
    starts (a damaged record missing its end tag does not swallow the next one).
    """

    def __init__(self, stream: BinaryIO, path: str, names: tuple[str, ...], limit: int):
        self.stream, self.path, self.names, self.limit = stream, path, names, limit
        alternatives = b"|".join(re.escape(name.encode()) for name in names)
        # record tags without a namespace prefix (``<page>``, not ``<mw:page>``), as every dump and
        # PubMed file writes them: allowing a prefix makes the search 2.5 times slower
        self.start = re.compile(rb"<(" + alternatives + rb")(?=[\s/>])")
        # a record's end tag (group 1 is "/") or the next record's start tag, found in one pass
        self.tag = re.compile(rb"<(/)?(?:" + alternatives + rb")(?(1)\s*>|(?=[\s/>]))")
        self.buffer = bytearray()
        self.line = 1  # the line at the buffer's start
        self.at_eof = False
        self.has_records = False  # whether a record follows the header

    def header(self) -> bytes:
        """Everything before the first record (the whole file if it has none); a fatal
        ``BadInput`` if that is larger than the limit."""
        data, found = self._take(lambda buffer, pos: _start_of(self.start.search(buffer, pos)), 0)
        if data is None:
            raise BadInput(self.path, "", "record_too_large", f"more than {self.limit:,} bytes before the first "
                                                              "record: not a file of this format?", fatal=True)
        self.has_records = found
        return data

    def pieces(self) -> Iterator[Piece]:
        """The records and the gaps between them, in file order, then the tail; call after ``header()``."""
        if not self.has_records:
            return
        while True:
            line = self.line
            name = self.start.match(self.buffer).group(1)
            data, _ = self._take(self._record_end, 1)
            yield Piece("record", line, data, name.decode())
            line = self.line
            data, found = self._take(lambda buffer, pos: _start_of(self.start.search(buffer, pos)), 0)
            if not found:
                yield Piece("tail", line, data)
                return
            yield Piece("gap", line, data)

    def _record_end(self, buffer: bytearray, pos: int) -> int:
        """Where the record at the buffer's start ends: after its end tag, or where the next record
        starts (a mismatched end tag ends it too: parsing then says what is wrong)."""
        tag = self.tag.search(buffer, pos)
        return -1 if tag is None else tag.end() if tag.group(1) else tag.start()

    def _take(self, find, floor: int) -> tuple[bytes | None, bool]:
        """The bytes from the buffer's start to ``find(buffer, pos)`` (-1: not yet), reading as
        needed; None for the bytes when over the limit, whose middle is then dropped as it is
        read. ``floor``: the first position to search; found: False when the file ended first."""
        pos, dropped = floor, False
        while True:
            end = find(self.buffer, pos)
            if end >= 0:
                break
            pos = max(pos, len(self.buffer) - OVERLAP)  # all before was searched
            if len(self.buffer) > self.limit + OVERLAP:  # too large: keep only where a tag may begin
                dropped = True
                self._consume(pos)
                pos = 0
            if not self._fill():
                break
        found = end >= 0
        end = end if found else len(self.buffer)
        data = None if dropped or end > self.limit else bytes(self.buffer[:end])
        self._consume(end)
        return data, found

    def _fill(self) -> bool:
        if self.at_eof:
            return False
        chunk = self.stream.read(READ_SIZE)
        self.at_eof = not chunk
        self.buffer += chunk
        return bool(chunk)

    def _consume(self, n: int) -> None:
        self.line += self.buffer.count(b"\n", 0, n)
        del self.buffer[:n]


def _start_of(match: re.Match | None) -> int:
    return match.start() if match else -1


class Wrapper(NamedTuple):
    """The file's prolog and root start tag, to parse each record in the file's context."""

    prefix: bytes  # prolog + root start tag
    suffix: bytes  # root end tag
    prefix_lines: int  # newlines in prefix

    @classmethod
    def of(cls, header: bytes, path: str) -> Wrapper:
        """From the file's header; a fatal ``BadInput`` when it has no root start tag."""
        prolog = PROLOG.match(header)
        root = ROOT_START.match(header, prolog.end())
        if not root:
            raise BadInput(path, "line 1", "malformed_xml", "no XML root element at the start of the file: "
                                                            "empty, or not an XML file", fatal=True)
        prefix = header[:root.end()]
        return cls(prefix, b"</" + root.group(1) + b">", prefix.count(b"\n"))

    def parse_header(self, header: bytes, split: XmlRecords) -> etree._Element:
        """The header as a tree (the root with what precedes the first record); a fatal ``BadInput``
        naming the line if it is not well-formed, or if it is the whole file and yet holds records
        (written with a namespace prefix, which the cutting does not look for)."""
        try:
            root = etree.fromstring(header + (self.suffix if split.has_records else b""), PARSER)
        except etree.XMLSyntaxError as e:
            raise syntax_error(e, split.path, f"line {_line(e)}", "before the first record", fatal=True) from e
        for element in () if split.has_records else root.iter(*("{*}" + name for name in split.names)):
            raise BadInput(split.path, f"line {element.sourceline}", "malformed_xml",
                           f"<{element.prefix}:{etree.QName(element).localname}>: records with a namespace "
                           "prefix are not supported", fatal=True)
        return root

    def parse_record(self, data: bytes, line: int, path: str, location: str) -> etree._Element:
        """One record's element; a ``BadInput`` naming its line if it is not well-formed XML."""
        try:
            root = etree.fromstring(self.prefix + data + self.suffix, PARSER)
        except etree.XMLSyntaxError as e:
            where = line + max(0, _line(e) - 1 - self.prefix_lines)
            raise syntax_error(e, path, f"{location}, line {where}", "in this record") from e
        return root[0]


def _line(error: etree.XMLSyntaxError) -> int:
    return (error.position[0] if error.position else error.lineno) or 1


def _message(error: etree.XMLSyntaxError) -> str:
    """The parser's message without its position, which counts lines of the wrapped record, not the file."""
    return POSITION.sub("", error.msg)


def syntax_error(error: etree.XMLSyntaxError, path: str, location: str, where: str, *, fatal: bool = False) -> BadInput:
    """An XML syntax error as a ``BadInput``: ``invalid_utf8`` for bytes that are not UTF-8,
    ``too_deeply_nested`` or ``record_too_large`` past libxml2's limits, else ``malformed_xml``."""
    if error.code == etree.ErrorTypes.ERR_INVALID_ENCODING:
        return BadInput(path, location, "invalid_utf8", f"invalid UTF-8 {where} ({_message(error)})", fatal=fatal)
    if error.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
        reason = "too_deeply_nested" if "depth" in error.msg else "record_too_large"
        return BadInput(path, location, reason, f"past the XML parser's limits {where} ({_message(error)})", fatal=fatal)
    return BadInput(path, location, "malformed_xml", f"not well-formed XML {where} ({_message(error)})", fatal=fatal)


def check_gap(piece: Piece, path: str, root_end: bytes) -> BadInput | None:
    """What is wrong with the text between records or after the last one, if anything: only
    white space may come between records, and the root's end tag after them."""
    data = piece.data
    if data is not None and piece.kind == "gap" and not data.strip():
        return None
    if data is not None and piece.kind == "tail":
        if re.fullmatch(rb"\s*" + re.escape(root_end[:-1]) + rb"\s*>\s*", data):
            return None
        if not data.strip():
            return BadInput(path, f"line {piece.line}", "truncated_file",
                            f"the file ends without {root_end.decode(errors='replace')}: it was probably cut off",
                            fatal=True)
    shown = "more than the limit of bytes" if data is None else repr(data.strip()[:60])
    return BadInput(path, f"line {piece.line + _leading_lines(data)}", "malformed_xml",
                    f"unexpected content between records: {shown}")


def _leading_lines(data: bytes | None) -> int:
    return 0 if data is None else data[:len(data) - len(data.lstrip())].count(b"\n")
