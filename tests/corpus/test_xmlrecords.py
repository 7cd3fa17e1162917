"""XmlRecords: an XML file cut into its records' bytes, whatever the read size, bounded by the limit."""

from __future__ import annotations

import io

import pytest

from linkbert.corpus import xmlrecords
from linkbert.corpus.xmlrecords import Piece, Wrapper, XmlRecords, check_gap
from linkbert.errors import BadInput

RECORDS = [b'<page id="1">\n<t>one</t></page>', b"<page>\n\n<t>two &amp; </t>\n</page >", b"<page/>",
           b"<page><t>not closed</t>", b"<page><t>a <pages> tag is no page</t></page>"]
DOCUMENT = (b'<?xml version="1.0"?>\n<!-- c -->\n<root xmlns="urn:x">\n<head>h</head>\n  ' + RECORDS[0] + b"\n  "
            + RECORDS[1] + b"\n" + RECORDS[2] + b"x" + RECORDS[3] + RECORDS[4] + b"\n</root>\n")


def cut(document: bytes, limit: int = 10_000) -> tuple[bytes, list[Piece]]:
    split = XmlRecords(io.BytesIO(document), "f.xml", ("page",), limit)
    return split.header(), list(split.pieces())


@pytest.mark.parametrize("read_size", [1, 2, 3, 7, 64, 1 << 16])
def test_the_same_pieces_whatever_the_read_size(monkeypatch, read_size):
    monkeypatch.setattr(xmlrecords, "READ_SIZE", read_size)
    header, pieces = cut(DOCUMENT)
    assert header == b'<?xml version="1.0"?>\n<!-- c -->\n<root xmlns="urn:x">\n<head>h</head>\n  '
    # a self-closing record runs to the next one (and then parses); a record without an end tag ends
    # where the next starts
    assert pieces == [
        Piece("record", 5, RECORDS[0], "page"), Piece("gap", 6, b"\n  ", ""), Piece("record", 7, RECORDS[1], "page"),
        Piece("gap", 10, b"\n", ""), Piece("record", 11, RECORDS[2] + b"x", "page"), Piece("gap", 11, b"", ""),
        Piece("record", 11, RECORDS[3], "page"), Piece("gap", 11, b"", ""), Piece("record", 11, RECORDS[4], "page"),
        Piece("tail", 11, b"\n</root>\n", "")]


@pytest.mark.parametrize("read_size", [1, 5, 1 << 16])
def test_records_over_the_limit_are_dropped_as_they_are_read(monkeypatch, read_size):
    monkeypatch.setattr(xmlrecords, "READ_SIZE", read_size)
    big = b"<page>" + b"x\n" * 5000 + b"</page>"
    fits = b"<page>" + b"y" * 87 + b"</page>"  # 100 bytes
    over = b"<page>" + b"y" * 88 + b"</page>"
    header, pieces = cut(b"<root>" + big + fits + over + b"<page>" + b"z" * 500, limit=100)
    assert [(p.kind, p.line, p.data) for p in pieces if p.kind == "record"] == [
        ("record", 1, None), ("record", 5001, fits), ("record", 5001, None), ("record", 5001, None)]


def test_the_header_is_bounded_too():
    with pytest.raises(BadInput) as e:
        cut(b"<root>" + b"x" * 5000 + b"<page></page></root>", limit=1000)
    assert (e.value.reason, e.value.fatal) == ("record_too_large", True)


def test_a_record_parses_in_the_file_context_and_errors_name_the_file_line():
    header, pieces = cut(DOCUMENT)
    wrapper = Wrapper.of(header, "f.xml")
    first = wrapper.parse_record(pieces[0].data, pieces[0].line, "f.xml", "page 1")
    assert (first.tag, first.get("id"), first[0].text) == ("{urn:x}page", "1", "one")
    assert wrapper.parse_record(pieces[4].data, 11, "f.xml", "page 3").tag == "{urn:x}page"
    with pytest.raises(BadInput) as e:
        wrapper.parse_record(pieces[6].data, pieces[6].line, "f.xml", "page 4")
    assert (e.value.location, e.value.reason, e.value.fatal) == ("page 4, line 11", "malformed_xml", False)
    assert "line 1," not in str(e.value)  # the parser's own position (in the wrapped record) is left out


@pytest.mark.parametrize("piece, reason", [
    (Piece("gap", 3, b" \n\t "), None),
    (Piece("gap", 3, b"\n\n junk"), "malformed_xml"),
    (Piece("gap", 3, None), "malformed_xml"),
    (Piece("tail", 3, b"\n</root >\n"), None),
    (Piece("tail", 3, b"\n"), "truncated_file"),
    (Piece("tail", 3, b"</root> junk"), "malformed_xml"),
])
def test_gaps_hold_only_white_space_and_the_tail_the_root_end_tag(piece, reason):
    problem = check_gap(piece, "f.xml", b"</root>")
    assert (problem and problem.reason) == reason
    if reason == "malformed_xml" and piece.data:  # where the junk is, not where the gap starts
        assert problem.location == ("line 5" if piece.data.startswith(b"\n") else "line 3")
