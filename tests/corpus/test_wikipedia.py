"""The MediaWiki XML dump reader: streaming, namespaces, redirects, wikitext cleaning, titles, bad files."""

from __future__ import annotations

import bz2
import gzip
import pickle
from xml.sax.saxutils import escape

import pytest

from linkbert.corpus import Document, Redirect, Skipped, open_reader
from linkbert.corpus.wikipedia import WikipediaXmlReader, normalise_title
from linkbert.errors import BadInput
from conftest import require

SITEINFO = """<siteinfo><sitename>Wikipedia</sitename><case>first-letter</case><namespaces>
<namespace key="0" case="first-letter" /><namespace key="4" case="first-letter">Wikipedia</namespace>
<namespace key="6" case="first-letter">{file}</namespace>
<namespace key="10" case="first-letter">Template</namespace>
<namespace key="14" case="first-letter">{category}</namespace></namespaces></siteinfo>"""


def page(title: str, text: str, *, page_id: int = 1, ns: int = 0, redirect: str | None = None) -> str:
    redirect_tag = f'<redirect title="{escape(redirect, {chr(34): "&quot;"})}" />' if redirect else ""
    return (f"<page><title>{escape(title)}</title><ns>{ns}</ns><id>{page_id}</id>{redirect_tag}"
            f'<revision><id>{page_id * 10}</id><text xml:space="preserve">{escape(text)}</text>'
            "</revision></page>")


def dump(*pages: str, version: str = "0.10", file: str = "File", category: str = "Category") -> str:
    return (f'<mediawiki xmlns="http://www.mediawiki.org/xml/export-{version}/" version="{version}">'
            + SITEINFO.format(file=file, category=category) + "".join(pages) + "</mediawiki>")


def write(tmp_path, xml: str, name: str = "dump.xml"):
    path = tmp_path / name
    data = xml.encode("utf-8")
    if name.endswith(".bz2"):
        data = bz2.compress(data)
    elif name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def read_all(path) -> list:
    reader = WikipediaXmlReader(str(path))
    return [reader.parse(record) for record in reader.records()]


def only_document(tmp_path, text: str, **dump_options) -> Document:
    (doc,) = read_all(write(tmp_path, dump(page("Sample", text), **dump_options)))
    assert isinstance(doc, Document)
    return doc


# -- records, namespaces, redirects -------------------------------------------------------------


@pytest.mark.parametrize("name", ["dump.xml", "dump.xml.bz2", "dump.xml.gz"])
def test_reads_pages_of_every_compression(tmp_path, name):
    xml = dump(page("Alpha", "First [[Beta]].", page_id=7), page("Beta", "Second.", page_id=8))
    docs = read_all(write(tmp_path, xml, name))
    assert docs == [Document(id="7", title="Alpha", text="First Beta.", links=("Beta",)),
                    Document(id="8", title="Beta", text="Second.", links=())]


def test_records_are_small_picklable_tuples(tmp_path):
    reader = WikipediaXmlReader(str(write(tmp_path, dump(page("Alpha", "Hello", page_id=3)))))
    (record,) = list(reader.records())
    assert tuple(record) == (1, "3", "Alpha", 0, None, "Hello")
    assert pickle.loads(pickle.dumps(record)) == record


def test_any_export_schema_version(tmp_path):
    for version in ("0.3", "0.11"):
        (doc,) = read_all(write(tmp_path, dump(page("Alpha", "Text"), version=version)))
        assert doc.title == "Alpha"


def test_namespace_from_title_when_dump_has_no_ns(tmp_path):
    # export schemas before 0.6 have no <ns>: the title's prefix tells
    xml = dump(page("Alpha", "Article"), page("Talk:Alpha", "Chat", page_id=2)).replace("<ns>0</ns>", "")
    assert [type(r) for r in read_all(write(tmp_path, xml))] == [Document, Skipped]


def test_other_namespaces_are_skipped(tmp_path):
    xml = dump(page("Alpha", "Article"), page("Talk:Alpha", "Chat", ns=1, page_id=2),
               page("Wikipedia:About", "Project page", ns=4, page_id=3),
               page("Wikipedia:Old", "#REDIRECT [[Wikipedia:New]]", ns=4, page_id=4, redirect="Wikipedia:New"))
    results = read_all(write(tmp_path, xml))
    assert [type(r) for r in results] == [Document, Skipped, Skipped, Skipped]
    assert results[1] == Skipped("namespace")


def test_redirect_page(tmp_path):
    xml = dump(page("AccessibleComputing", "#REDIRECT [[Computer accessibility]]\n{{R from CamelCase}}",
                    redirect="Computer_accessibility#History"))
    expected = Redirect(key="AccessibleComputing", target="Computer accessibility")
    assert read_all(write(tmp_path, xml)) == [expected]


def test_redirect_without_redirect_element(tmp_path):
    # dumps before schema 0.5 mark redirects only in the text
    (result,) = read_all(write(tmp_path, dump(page("Old name", "#redirect [[new_name]]"))))
    assert result == Redirect(key="Old name", target="New name")


def test_missing_id_is_bad_input(tmp_path):
    xml = dump("<page><title>NoId</title><ns>0</ns><revision><text>x</text></revision></page>")
    reader = WikipediaXmlReader(str(write(tmp_path, xml)))
    with pytest.raises(BadInput) as info:
        [reader.parse(record) for record in reader.records()]
    assert info.value.reason == "missing_field" and info.value.location.startswith("page 1")


@pytest.mark.parametrize("text, expected", [
    ("{{a|b}} [[c|d]] [http://e f] {| x |} <!-- g --> <ref name=h>i</ref> <br> <ref name=j />", 0),
    ("{{a|[[b|" * 3, 6),                      # never closed: counted, whichever kind
    ("]]" * 4 + "[[a|" * 4, 4),               # closers before their openers close nothing
    ("<div><span>x</span>", 1),               # an HTML tag left open
    ("a < b and c > d, <br/> <hr>", 0),       # comparisons and void tags open nothing
])
def test_unclosed_markup_counts_what_is_left_open(text, expected):
    from linkbert.corpus.wikipedia import unclosed_markup

    assert unclosed_markup(text) == expected


def test_a_page_with_too_much_unclosed_markup_is_refused_before_parsing(tmp_path, monkeypatch):
    """mwparserfromhell's time grows with the square of what is left open (the page below: about
    a minute): it is refused before the parser sees it, naming the page, and the next page is read."""
    import mwparserfromhell

    xml = dump(page("Bomb", "{{a|[[b|" * 10000, page_id=1), page("Fine", "Plain [[Text]].", page_id=2))
    reader = WikipediaXmlReader(str(write(tmp_path, xml)))
    records = list(reader.records())
    parse = mwparserfromhell.parse
    seen = []
    monkeypatch.setattr(mwparserfromhell, "parse", lambda text, **kw: seen.append(len(text)) or parse(text, **kw))
    with pytest.raises(BadInput) as info:
        reader.parse(records[0])
    assert info.value.reason == "unbalanced_markup" and info.value.location.startswith("page 1")
    assert "20,000 unclosed" in info.value.detail and seen == []  # never handed to the parser
    assert reader.parse(records[1]).text == "Plain Text." and len(seen) == 1


def test_open_reader_finds_it(tmp_path):
    reader = open_reader("wikipedia-xml", str(write(tmp_path, dump(page("Alpha", "x")))))
    assert isinstance(reader, WikipediaXmlReader)


# -- wikitext to text --------------------------------------------------------------------------


def test_templates_removed(tmp_path):
    doc = only_document(tmp_path, "{{Infobox|name=[[Hidden]]}}Kept {{cite web|title=x}}text.")
    assert doc.text == "Kept text." and doc.links == ()


def test_inline_templates_keep_their_words(tmp_path):
    doc = only_document(tmp_path, "From the Greek {{lang|grc|ἀναρχία}} ({{lang-fr|[[Anarchie]]}}), "
                                  "{{convert|5|km|mi}} away, on {{nowrap|10 May}}.")
    assert doc.text == "From the Greek ἀναρχία (Anarchie), 5 km away, on 10 May."
    assert doc.links == ("Anarchie",)


def test_tables_removed(tmp_path):
    doc = only_document(tmp_path, "Before.\n{| class=\"wikitable\"\n|-\n| cell [[InTable]] || two\n|}\nAfter.")
    assert doc.text == "Before.\n\nAfter." and doc.links == ()


def test_references_removed(tmp_path):
    doc = only_document(tmp_path, 'Claim.<ref name="a">[[Source]] {{cite web|url=x}}</ref> More.<ref name="a"/>'
                                  "\n\n== Notes ==\n<references />")
    assert doc.text == "Claim. More.\n\nNotes" and doc.links == ()


def test_reference_with_unbalanced_italics_still_removed(tmp_path):
    # real pages have refs like this; parsing '' as style made the whole <ref> fall back to text
    doc = only_document(tmp_path, "Quote.<ref>[[Book|Title]]'' by Someone</ref> Next.")
    assert doc.text == "Quote. Next."


def test_comments_removed(tmp_path):
    assert only_document(tmp_path, "Visible<!-- hidden [[Link]] --> text.").text == "Visible text."


def test_files_and_images_removed(tmp_path):
    doc = only_document(tmp_path, "[[File:A.png|thumb|Caption [[CapLink]]]]\n[[Image:B.jpg|left]]"
                                  "Body [[:File:A.png]].")
    assert doc.text == "Body File:A.png." and doc.links == ()


def test_localised_namespace_prefixes_from_siteinfo(tmp_path):
    doc = only_document(tmp_path, "[[Datei:A.png|mini|Bild]]Text [[Artikel]].\n[[Kategorie:Dinge]]",
                        file="Datei", category="Kategorie")
    assert doc.text == "Text Artikel." and doc.links == ("Artikel",)


def test_categories_and_interlanguage_links_removed(tmp_path):
    doc = only_document(tmp_path, "Body.\n[[Category:Letters]]\n[[category:Greek|sort key]]\n[[de:Alpha]]\n"
                                  "[[zh-min-nan:Alpha]]\n[[be-x-old:Альфа]]")
    assert doc.text == "Body." and doc.links == ()


def test_piped_and_plain_links(tmp_path):
    doc = only_document(tmp_path, "A [[greek letter|letter]] of the [[alphabet]]s, "
                                  "see [[Beta#Etymology|beta]].")
    assert doc.text == "A letter of the alphabets, see beta."
    assert doc.links == ("greek letter", "alphabet", "Beta#Etymology")


def test_links_to_other_namespaces_keep_text_but_are_not_links(tmp_path):
    doc = only_document(tmp_path, "See [[Wikipedia:About|about]], [[wikt:alpha|wiki]], [[:Category:Letters]]"
                                  " and [[Help:Contents]] or [[Star Trek: Voyager]].")
    assert doc.text == "See about, wiki, Category:Letters and Help:Contents or Star Trek: Voyager."
    assert doc.links == ("Star Trek: Voyager",)


def test_external_links_keep_label(tmp_path):
    doc = only_document(tmp_path, "See [http://example.org the site] and [http://bare.org].")
    assert doc.text == "See the site and ." and doc.links == ()


def test_bold_italic_removed(tmp_path):
    assert only_document(tmp_path, "'''Alpha''' is ''very'' '''''old'''''.").text == "Alpha is very old."


def test_headings_lists_and_paragraphs(tmp_path):
    doc = only_document(tmp_path, "Intro line\n== History ==\nOld.\n=== Early ===\n* one\n* two\n# three\n"
                                  "; term : definition\n:indented\n__NOTOC__\n\n\n\nLast.")
    assert doc.text == ("Intro line\n\nHistory\n\nOld.\n\nEarly\n\n"
                        "one\ntwo\nthree\nterm definition\nindented\n\nLast.")


def test_html_entities_decoded(tmp_path):
    # written escaped once more for XML: the wikitext itself holds "&amp;" and "&nbsp;"
    doc = only_document(tmp_path, "Rock&nbsp;&amp;&nbsp;roll &lt;3 &#946; &mdash; end")
    assert doc.text == "Rock & roll <3 β — end"


def test_self_links_are_not_links(tmp_path):
    doc = only_document(tmp_path, "Go to [[#History|history]].")
    assert doc.text == "Go to history." and doc.links == ()


# -- titles and keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("anarchism", "Anarchism"),
    ("New_York_City", "New York City"),
    ("  New   York \t City ", "New York City"),
    ("Albert Einstein#Early life", "Albert Einstein"),
    (":Anarchism", "Anarchism"),
    ("AT&amp;T", "AT&T"),
    ("Caf%C3%A9%20culture", "Café culture"),
    ("iPhone", "IPhone"),
    ("eBay_and_more", "EBay and more"),
    ("100% Pure", "100% Pure"),
    ("Q&A", "Q&A"),
    ("#Section only", ""),
    ("über", "Über"),
])
def test_normalise_title(raw, expected):
    assert normalise_title(raw) == expected


def test_keys(tmp_path):
    reader = WikipediaXmlReader(str(write(tmp_path, dump(page("Alpha", "x")))))
    assert reader.document_keys(Document(id="1", title="New York City", text="")) == ("New York City",)
    assert reader.link_keys("new_york_City#History") == ("New york City",)
    assert reader.link_keys("#History") == ()
    assert reader.link_keys("Category:Cities") == ()
    assert reader.link_keys("File:Map.png") == ()
    assert reader.link_keys("wikt:city") == ()
    assert reader.link_keys("2001: A Space Odyssey") == ("2001: A Space Odyssey",)


def test_case_sensitive_wiki_keeps_first_letter(tmp_path):
    xml = dump(page("iPhone", "x")).replace("<case>first-letter</case>", "<case>case-sensitive</case>")
    reader = WikipediaXmlReader(str(write(tmp_path, xml)))
    (doc,) = [reader.parse(record) for record in reader.records()]
    assert reader.document_keys(doc) == ("iPhone",)


def test_reader_pickled_before_records_reads_siteinfo_itself(tmp_path):
    xml = dump(page("Alpha", "[[Datei:A.png]]Text [[Kategorie:X]]"), file="Datei", category="Kategorie")
    path = write(tmp_path, xml)
    reader = WikipediaXmlReader(str(path))
    worker_copy = pickle.loads(pickle.dumps(reader))  # as a pool would get it, before records() ran
    (record,) = list(reader.records())
    assert worker_copy.parse(record).text == "Text"
    assert pickle.loads(pickle.dumps(reader)).parse(record).text == "Text"


# -- damaged and hostile files -----------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(BadInput) as info:
        WikipediaXmlReader(str(tmp_path / "absent.xml.bz2"))
    assert info.value.reason == "missing_path"


def test_truncated_bz2(tmp_path):
    pages = [page(f"Title {i}", "Some words of text. " * 50, page_id=i + 1) for i in range(500)]
    path = tmp_path / "cut.xml.bz2"
    data = bz2.compress(dump(*pages).encode())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput) as info:
        list(WikipediaXmlReader(str(path)).records())
    assert info.value.reason == "truncated_file" and info.value.fatal
    assert str(path) in str(info.value)


def test_malformed_xml(tmp_path):
    # one broken page is one bad record naming its line, not the end of the dump: the pages after it are read
    broken = "\n<page><title>Beta</title>\n<ns>0</oops></page>\n"
    xml = dump(page("Alpha", "ok"), broken, page("Gamma", "fine", page_id=3))
    path = write(tmp_path, xml)
    reader = WikipediaXmlReader(str(path))
    alpha, beta, gamma = reader.records()
    assert (alpha.title, gamma.title) == ("Alpha", "Gamma")
    with pytest.raises(BadInput) as info:
        reader.parse(beta)
    bad_line = next(n for n, line in enumerate(xml.splitlines(), 1) if "</oops>" in line)
    assert info.value.reason == "malformed_xml" and not info.value.fatal
    assert info.value.location == f"page 2, line {bad_line}"
    assert str(path) in str(info.value) and "mismatch" in str(info.value)
    assert reader.parse(gamma).text == "fine"


def test_invalid_utf8(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_bytes(dump(page("Alpha", "ok"), page("Beta", "fine", page_id=2)).encode().replace(b"ok", b"o\xffk"))
    reader = WikipediaXmlReader(str(path))
    alpha, beta = reader.records()
    with pytest.raises(BadInput) as info:
        reader.parse(alpha)
    assert info.value.reason == "invalid_utf8" and info.value.location == "page 1, line 5"  # after <siteinfo>
    assert reader.parse(beta).text == "fine"


def test_external_entity_is_not_expanded(tmp_path):
    xml = ('<?xml version="1.0"?>\n<!DOCTYPE mediawiki [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
           + dump("<page><title>Alpha</title><ns>0</ns><id>1</id><revision><text>before &e; after</text>"
                  "</revision></page>"))
    (doc,) = read_all(write(tmp_path, xml))
    assert "root:" not in doc.text and "/bin/" not in doc.text
    assert doc.text.startswith("before") and doc.text.endswith("after")


# -- hostile dumps: one bad page costs one page, pages bounded, no entity expansion ----------------


def test_page_larger_than_the_limit_is_skipped_in_bounded_memory(tmp_path):
    from hostile import bad, outcomes, peak_bytes, small_reader

    huge = "<page><title>Huge</title><ns>0</ns><id>2</id><revision><text>" + "x" * 30_000_000 + "</text></revision></page>"
    path = write(tmp_path, dump(page("Alpha", "ok"), huge, page("Gamma", "fine", page_id=3)), "dump.xml.bz2")
    assert path.stat().st_size < 100_000
    results, peak = peak_bytes(lambda: outcomes(small_reader("wikipedia-xml", path, 1000)))
    assert peak < 2_000_000
    assert [r.title for r in results if isinstance(r, Document)] == ["Alpha", "Gamma"]
    (error,) = bad(results)
    assert (error.path, error.location, error.reason, error.fatal) == (str(path), "page 2, line 5", "record_too_large",
                                                                       False)


@pytest.mark.parametrize("damaged, reason, words, lines_on", [
    ("<page><title>Beta</title><ns>0</ns><id>2</id><revision><text>a \x01 b</text></revision></page>",
     "malformed_xml", "invalid Char", 0),
    # missing </page>: the page ends where the next one starts (the parser notices there), not swallowing it
    ("<page><title>Beta</title><ns>0</ns><id>2</id><revision><text>never closed</text></revision>",
     "malformed_xml", "not well-formed", 1),
    ("<page><title>Beta &undefined; </title><ns>0</ns><id>2</id></page>", "malformed_xml", "not defined", 0),
    ("<page>" + "<x>" * 300 + "</x>" * 300 + "</page>", "too_deeply_nested", "depth", 0),
])
def test_one_damaged_page_costs_that_page(tmp_path, damaged, reason, words, lines_on):
    from hostile import bad, outcomes

    xml = dump(page("Alpha", "ok"), "\n" + damaged + "\n", page("Gamma", "fine", page_id=3))
    line = xml[:xml.index(damaged)].count("\n") + 1 + lines_on
    results = outcomes(WikipediaXmlReader(str(write(tmp_path, xml))))
    assert [r.title for r in results if isinstance(r, Document)] == ["Alpha", "Gamma"]
    (error,) = bad(results)
    assert (error.location, error.reason, error.fatal) == (f"page 2, line {line}", reason, False)
    assert words in str(error)


def test_text_between_pages_and_a_dump_cut_off_are_named(tmp_path):
    from hostile import bad, outcomes

    xml = dump(page("Alpha", "ok"), "\n\n  junk text\n", page("Gamma", "fine", page_id=3))
    line = xml[:xml.index("junk")].count("\n") + 1
    results = outcomes(WikipediaXmlReader(str(write(tmp_path, xml))))
    assert [r.title for r in results if isinstance(r, Document)] == ["Alpha", "Gamma"]
    (error,) = bad(results)
    assert (error.location, error.reason, error.fatal) == (f"line {line}", "malformed_xml", False)
    assert "junk text" in str(error)
    cut = write(tmp_path, dump(page("Alpha", "ok")).replace("</mediawiki>", "\n"), "cut.xml")
    reader = WikipediaXmlReader(str(cut))
    read = []
    with pytest.raises(BadInput) as info:
        read.extend(reader.records())
    assert [record.title for record in read] == ["Alpha"]
    assert (info.value.reason, info.value.fatal) == ("truncated_file", True) and "</mediawiki>" in str(info.value)


def test_entity_bombs_are_not_expanded(tmp_path):
    from hostile import bad, outcomes, peak_bytes, time_limit

    laughs = "".join(f'<!ENTITY l{i + 1} "{("&l" + str(i) + ";") * 10}">' for i in range(9))
    xml = (f'<?xml version="1.0"?>\n<!DOCTYPE mediawiki [<!ENTITY l0 "lol">{laughs}]>\n'
           + dump(page("Alpha", "ok"), "<page><title>Bomb &l9;</title><ns>0</ns><id>2</id></page>",
                  '<page><title>Attr</title><ns>0</ns><id>3</id><redirect title="&l9;"/></page>',
                  page("Gamma", "fine", page_id=4)))
    with time_limit(20):
        results, peak = peak_bytes(lambda: outcomes(WikipediaXmlReader(str(write(tmp_path, xml)))))
    assert peak < 5_000_000
    assert [r.title for r in results if isinstance(r, Document)] == ["Alpha", "Gamma"]
    line = xml[:xml.index("<page><title>Bomb")].count("\n") + 1
    assert [(e.location, "amplification" in str(e)) for e in bad(results)] == [(f"page 2, line {line}", True),
                                                                              (f"page 3, line {line}", True)]


@pytest.mark.parametrize("content, words", [
    (b"", "no XML root element"),
    (b"\x89PNG\r\n\x1a\n\x00\x00 binary garbage \xff\xfe", "no XML root element"),
    (b"<mediawiki><siteinfo><oops></siteinfo><page>", "not well-formed XML before the first record"),
    (b'<mw:mediawiki xmlns:mw="x"><mw:page><mw:title>A</mw:title></mw:page></mw:mediawiki>', "namespace prefix"),
])
def test_files_that_are_no_dump_are_a_fatal_error_naming_them(tmp_path, content, words):
    path = tmp_path / "dump.xml"
    path.write_bytes(content)
    with pytest.raises(BadInput) as info:
        list(WikipediaXmlReader(str(path)).records())
    assert (info.value.path, info.value.fatal) == (str(path), True) and words in str(info.value)


def test_absurd_namespace_numbers_are_no_namespace(tmp_path):
    xml = dump(page("Alpha", "ok").replace("<ns>0</ns>", "<ns>" + "9" * 5000 + "</ns>"))
    xml = xml.replace('<namespace key="4"', '<namespace key="' + "4" * 5000 + '"')
    (doc,) = read_all(write(tmp_path, xml))
    assert doc.title == "Alpha"  # its namespace then comes from the title, as in old dumps


# -- the real excerpt --------------------------------------------------------------------------

EXCERPT = "wikipedia_xml/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"


@pytest.fixture(scope="module")
def excerpt(shared_data):
    reader = WikipediaXmlReader(str(require(shared_data / EXCERPT)))
    return reader, [reader.parse(record) for record in reader.records()]


@pytest.mark.data
def test_excerpt_counts(excerpt):
    _, results = excerpt
    assert sum(isinstance(r, Document) for r in results) == 106
    assert sum(isinstance(r, Redirect) for r in results) == 99
    assert [r for r in results if isinstance(r, Skipped)] == [Skipped("namespace")]


@pytest.mark.data
def test_excerpt_anarchism(excerpt):
    reader, results = excerpt
    (doc,) = [r for r in results if isinstance(r, Document) and r.title == "Anarchism"]
    assert doc.id == "12"
    for markup in ("{{", "}}", "[[", "]]", "<ref", "|}", "{|", "'''"):
        assert markup not in doc.text
    assert doc.text.startswith("Anarchism is a political philosophy that advocates self-governed societies "
                               "based on voluntary institutions.")
    assert "\n\nEtymology and terminology\n\n" in doc.text
    expected_links = {"political philosophy", "stateless society", "anarcho-syndicalism", "Pierre-Joseph Proudhon"}
    assert expected_links <= set(doc.links)
    assert reader.link_keys("stateless society") == ("Stateless society",)


@pytest.mark.data
def test_excerpt_is_clean_everywhere(excerpt):
    _, results = excerpt
    docs = [r for r in results if isinstance(r, Document)]
    for doc in docs:
        assert doc.text and "\n\n\n" not in doc.text
        for markup in ("{{", "[[", "<ref", "{|", "''"):
            assert markup not in doc.text, (doc.title, markup)
        assert not any(link.startswith(("File:", "Category:", "Image:")) for link in doc.links), doc.title
    assert len({doc.id for doc in docs}) == len(docs)


@pytest.mark.data
def test_excerpt_redirects(excerpt):
    reader, results = excerpt
    redirects = [r for r in results if isinstance(r, Redirect)]
    assert Redirect(key="AccessibleComputing", target="Computer accessibility") in redirects
    assert all(r.target and r.key for r in redirects)
    # the dump writes <redirect title> in canonical form: normalising it must leave almost all unchanged
    raw = [record.redirect for record in reader.records() if record.redirect and record.namespace == 0]
    assert len(raw) == 99
    assert sum(normalise_title(title) == title for title in raw) >= 0.9 * len(raw)


@pytest.mark.data
def test_excerpt_with_an_invalid_character_loses_only_that_page(shared_data, tmp_path):
    from hostile import bad, outcomes

    data = bz2.decompress(require(shared_data / EXCERPT).read_bytes())
    title = b"<title>Anarchism</title>"
    text_start = data.index(b"<text", data.index(title))
    damaged = data[:text_start + 200] + b"\x01\xff" + data[text_start + 200:]
    path = tmp_path / "damaged.xml.bz2"
    path.write_bytes(bz2.compress(damaged))
    results = outcomes(WikipediaXmlReader(str(path)))
    (error,) = bad(results)
    line = damaged[:text_start + 200].count(b"\n") + 1
    assert (error.reason, error.fatal) == ("malformed_xml", False) and error.location.endswith(f", line {line}")
    documents = [r for r in results if isinstance(r, Document)]
    assert len(documents) == 105 and "Anarchism" not in {d.title for d in documents}
    assert sum(isinstance(r, Redirect) for r in results) == 99
    assert documents[-1].title == "Algorithm"  # the last page of the excerpt: nothing after the error lost
