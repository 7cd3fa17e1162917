"""HtmlSiteReader on a small hand-written site: ids, titles, visible text, resolved links, bad pages."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from linkbert.corpus import Document, Redirect, Skipped, open_reader
from linkbert.corpus.html import HtmlSiteReader, resolve_link
from linkbert.errors import BadInput

INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Home &amp; About</title>
  <style>body { color: red; }</style>
  <script>document.write("<p>scripted</p>");</script>
</head>
<body>
  <header><a href="index.html">Logo</a> Site banner</header>
  <nav><ul><li><a href="guide/intro.html">Menu: Intro</a></li></ul></nav>
  <main>
    <h1>Welcome</h1>
    <p>Read the <a href="guide/">guide</a> &amp; the
       <a href="guide/intro.html#setup">setup   notes</a>.</p>
    <p>Contact <a href="mailto:team@example.com">us</a> or see
       <a href="https://example.com/docs">example.com</a>.</p>
    <noscript>Please enable JavaScript.</noscript>
    <div hidden>Hidden text</div>
    <span aria-hidden="true">icon</span>
  </main>
  <footer>Copyright 2024</footer>
</body>
</html>
"""

GUIDE = """<html><body>
<h1>The <em>Guide</em></h1>
<p>Back <a href="../index.html">home</a>, on to <a href="./intro.html#frag">the intro</a>,
down to <a href="sub/">the sub-guide</a>, the <a href="/api">API</a>,
<a href="../../outside.html">nowhere</a> and <a href="#top">the top</a>.</p>
<ul><li>First item</li><li>Second <b>bold</b> item</li></ul>
<table><tr><th>Key</th><th>Value</th></tr><tr><td>a</td><td>1</td></tr></table>
</body></html>
"""

INTRO = """<html><head><title>Intro</title></head><body>
<article><header><h2>Setting up</h2></header>
<p>Install it:</p>
<pre>pip install x
  --upgrade</pre>
<p>Line one<br>line two</p>
<p>See <a href="../api.html?lang=en">the API</a> and <a href="notes%20page.html">notes</a>.</p>
<aside>Related: <a href="../index.html">home</a></aside>
</article>
<script>var s = "<a href='x.html'>x</a>";</script>
</body></html>
"""

SUB = """<p>Deep page, <a href="../../index.html">root</a>.</p>"""

# a legacy page: Latin-1 bytes, declared the old way; browsers read the label as windows-1252
API = (b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"></head>'
       b"<body><h1>API r\xe9f\xe9rence</h1><p>Caf\xe9 \x93quoted\x94</p></body></html>")


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)


@pytest.fixture
def site(tmp_path) -> Path:
    root = tmp_path / "site"
    write(root / "index.html", INDEX)
    write(root / "guide" / "index.html", GUIDE)
    write(root / "guide" / "intro.html", INTRO)
    write(root / "guide" / "sub" / "index.html", SUB)
    write(root / "api.html", API)
    write(root / "style.css", "p { }")  # not a page
    return root


def read_all(reader: HtmlSiteReader) -> list:
    return [reader.parse(pickle.loads(pickle.dumps(record))) for record in reader.records()]


def test_pages_become_documents(site):
    docs = {doc.id: doc for doc in read_all(open_reader("html", str(site)))}
    assert list(docs) == ["api.html", "guide/index.html", "guide/intro.html", "guide/sub/index.html", "index.html"]
    assert docs["index.html"] == Document(
        id="index.html",
        title="Home & About",
        text="Welcome\n\nRead the guide & the setup notes.\n\nContact us or see example.com.",
        links=("guide/index.html", "guide/intro.html"),  # nav, header, mailto: and https: left out
    )
    assert docs["guide/index.html"] == Document(
        id="guide/index.html",
        title="The Guide",  # no <title>: the first <h1>
        text="The Guide\n\nBack home, on to the intro, down to the sub-guide, the API, nowhere and the top."
             "\n\nFirst item\nSecond bold item\n\nKey Value\na 1",
        links=("index.html", "guide/intro.html", "guide/sub/index.html", "api"),
    )
    assert docs["guide/intro.html"] == Document(
        id="guide/intro.html",
        title="Intro",
        # the article's own <header> is content; the <aside> and the script are not
        text="Setting up\n\nInstall it:\n\npip install x\n  --upgrade\n\nLine one\nline two\n\nSee the API and notes.",
        links=("api.html", "guide/notes page.html"),
    )
    assert docs["guide/sub/index.html"] == Document(
        id="guide/sub/index.html", title="index", text="Deep page, root.", links=("index.html",))
    assert docs["api.html"] == Document(id="api.html", title="API référence", text="API référence\n\nCafé “quoted”")


def test_links_resolve_to_pages(site):
    reader = HtmlSiteReader(str(site))
    docs = [doc for doc in read_all(reader) if isinstance(doc, Document)]
    keys = {key for doc in docs for key in reader.document_keys(doc)}

    def target(link: str) -> str | None:
        return next((key for key in reader.link_keys(link) if key in keys), None)

    assert target("api") == "api.html"  # an extensionless link means the .html page
    assert target("guide/") == "guide/index.html"
    assert target("guide") == "guide/index.html"
    assert target("guide/intro.html") == "guide/intro.html"
    assert target("guide/notes page.html") is None  # no such page
    assert list(reader.link_keys("guide/")) == ["guide/", "guide/index.html", "guide/index.htm"]
    assert list(reader.link_keys("page"))[:2] == ["page", "page.html"]


@pytest.mark.parametrize("href, expected", [
    ("../index.html", "index.html"),
    ("./x.html#frag", "guide/x.html"),
    ("sub/", "guide/sub/index.html"),
    ("..", "index.html"),
    ("/api/x.html?q=1", "api/x.html"),
    ("x%20y.html", "guide/x y.html"),
    ("a/./b/../c.html", "guide/a/c.html"),
    ("../../up.html", None),  # above the site root
    ("https://example.com/", None),
    ("//cdn.example.com/x.js", None),
    ("mailto:a@example.com", None),
    ("javascript:void(0)", None),
    ("#top", None),  # the page itself
    ("intro.html#part", None),
    ("", None),
])
def test_resolve_link(href, expected):
    assert resolve_link(href, "guide/intro.html") == expected


def test_invalid_utf8_names_the_page(site):
    write(site / "guide" / "broken.html", b"<p>caf\xe9</p>")
    reader = HtmlSiteReader(str(site))
    record = next(r for r in reader.records() if r[0] == "guide/broken.html")
    with pytest.raises(BadInput) as e:
        reader.parse(record)
    assert (e.value.path, e.value.location, e.value.reason) == (str(site / "guide" / "broken.html"), "", "invalid_utf8")


def test_redirect_and_empty_pages(tmp_path):
    write(tmp_path / "old" / "page.html",
          '<html><head><meta http-equiv="refresh" content="0; url=../new/page.html"></head>'
          "<body>Redirecting...</body></html>")
    write(tmp_path / "blank.htm", "  \n")
    write(tmp_path / "only-script.html", "<html><body><script>x()</script></body></html>")
    assert read_all(HtmlSiteReader(str(tmp_path))) == [
        Skipped("empty_page"),  # blank.htm
        Redirect(key="old/page.html", target="new/page.html"),
        Skipped("empty_page"),  # only-script.html
    ]


def test_xhtml_declaration_and_bom(tmp_path):
    write(tmp_path / "x.html", b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?>\n'
                               b'<html xmlns="http://www.w3.org/1999/xhtml"><body><p>\xc3\xa9t\xc3\xa9</p></body></html>')
    [doc] = read_all(HtmlSiteReader(str(tmp_path)))
    assert (doc.title, doc.text) == ("x", "été")


def test_bad_site_paths(tmp_path):
    with pytest.raises(BadInput) as e:
        list(HtmlSiteReader(str(tmp_path / "missing")).records())
    assert e.value.reason == "missing_path"
    write(tmp_path / "page.html", "<p>x</p>")
    with pytest.raises(BadInput) as e:
        list(HtmlSiteReader(str(tmp_path / "page.html")).records())
    assert e.value.reason == "not_a_folder"


# -- hostile sites: nothing read outside the folder, no hang, bounded pages, no silent loss ------

def hostile_site(tmp_path: Path) -> Path:
    """A site with a page, an alias symlink inside it, and every way out or into a hang."""
    import os

    root = tmp_path / "site"
    write(root / "index.html", "<p>Home, see <a href='guide/a.html'>a</a>.</p>")
    write(root / "guide" / "a.html", "<p>Guide page.</p>")
    write(tmp_path / "outside" / "secret.html", "<p>root:x:0:0:secret</p>")
    (root / "alias.html").symlink_to(root / "guide" / "a.html")  # inside: followed
    (root / "evil.html").symlink_to("/etc/passwd")
    (root / "zero.html").symlink_to("/dev/zero")
    (root / "secret.html").symlink_to(tmp_path / "outside" / "secret.html")
    (root / "up.html").symlink_to("../outside/secret.html")  # relative, climbing out
    (root / "loop.html").symlink_to(root / "loop2.html")
    (root / "loop2.html").symlink_to(root / "loop.html")
    (root / "dangling.html").symlink_to(root / "nowhere.html")
    (root / "outer").symlink_to(tmp_path / "outside", target_is_directory=True)  # not entered
    os.mkfifo(root / "pipe.html")
    return root


def test_hostile_site_reads_only_regular_files_inside_it(tmp_path):
    from hostile import outcomes, time_limit

    root = hostile_site(tmp_path)
    with time_limit(10):
        results = outcomes(HtmlSiteReader(str(root)))
    by_kind = {}
    for result in results:
        by_kind.setdefault(type(result).__name__, []).append(result)
    assert [doc.id for doc in by_kind["Document"]] == ["alias.html", "guide/a.html", "index.html"]
    assert by_kind["Document"][0].text == "Guide page."
    assert sorted(s.reason for s in by_kind["Skipped"]) == [
        "broken_link", "not_a_regular_file", "outside_input", "outside_input", "outside_input", "outside_input",
        "unreadable", "unreadable"]  # dangling; pipe; evil, secret, up, zero; the loop's two links
    assert "BadInput" not in by_kind
    assert not any("root:" in doc.text for doc in by_kind["Document"])


def test_prepare_counts_what_it_skipped_in_stats(tmp_path, tiny_tokenizer_dir):
    import dataclasses
    import json as json_module

    from hostile import time_limit

    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    root = hostile_site(tmp_path)
    write(root / "big.html", "<p>" + "word " * 5000 + "</p>")  # 25 kB
    write(root / "deep.html", "<div>" * 2100 + "deep")  # 10.5 kB, nested past the parser's 2048
    config = PrepareConfig(format="html", input=str(root), tokenizer=str(tiny_tokenizer_dir),
                           out=str(tmp_path / "out"), skip_bad=True, progress=False, max_record_bytes=20_000)
    with time_limit(60):
        with pytest.raises(BadInput) as stopped:  # without --skip-bad: the first bad page, named
            prepare(dataclasses.replace(config, skip_bad=False, out=str(tmp_path / "stopped")))
        stats = prepare(config)
    assert (stopped.value.path, stopped.value.reason) == (str(root / "big.html"), "record_too_large")
    assert stats["documents"] == 3
    assert stats["documents_skipped"] == {"broken_link": 1, "not_a_regular_file": 1, "outside_input": 4,
                                          "record_too_large": 1, "too_deeply_nested": 1, "unreadable": 2}
    assert json_module.loads((tmp_path / "out" / "stats.json").read_text())["documents_skipped"] == \
        stats["documents_skipped"]


def test_page_larger_than_the_limit_is_not_read(tmp_path):
    from hostile import outcomes, peak_bytes, small_reader

    write(tmp_path / "fits.html", b"<p>" + b"a" * 993 + b"</p>")  # 1000 bytes
    write(tmp_path / "over.html", b"<p>" + b"a" * 994 + b"</p>")
    with open(tmp_path / "huge.html", "wb") as f:  # 1 GB, sparse: nothing of it may be read
        f.truncate(1 << 30)
    results, peak = peak_bytes(lambda: outcomes(small_reader("html", tmp_path, 1000)))
    assert peak < 1_000_000
    fits, huge, over = results
    assert isinstance(fits, Document) and len(fits.text) == 993
    for error, name in ((huge, "huge.html"), (over, "over.html")):
        assert (error.path, error.reason, error.fatal) == (str(tmp_path / name), "record_too_large", False)


def test_nesting_deeper_than_the_parser_takes_is_named_not_an_empty_or_cut_page(tmp_path):
    write(tmp_path / "deep.html", "<p>before</p>\n" + "<div>" * 3000 + "deep text" + "</div>" * 3000 + "<p>after</p>")
    write(tmp_path / "deeper.html", "<div>" * 100_000 + "</div>" * 100_000)
    write(tmp_path / "fine.html", "<div>" * 1000 + "deep but fine" + "</div>" * 1000)
    reader = HtmlSiteReader(str(tmp_path))
    deep, deeper, fine = reader.records()
    for record, name in ((deep, "deep.html"), (deeper, "deeper.html")):
        with pytest.raises(BadInput) as e:
            reader.parse(record)
        assert (e.value.path, e.value.reason, e.value.fatal) == (str(tmp_path / name), "too_deeply_nested", False)
        assert "depth" in str(e.value)
    assert deep and reader.parse(fine).text == "deep but fine"


@pytest.mark.parametrize("label", ["rot13", "hex", "zlib", "idna", "undefined", "utf-7", "unicode_escape",
                                   "punycode", "nonsense-charset"])
def test_a_charset_label_that_names_no_web_charset_means_utf8(tmp_path, label):
    write(tmp_path / "x.html", f'<meta charset="{label}"><p>caf\u00e9 +2AA- \\ud800</p>')
    [doc] = read_all(HtmlSiteReader(str(tmp_path)))
    assert doc.text == "caf\u00e9 +2AA- \\ud800"


def test_binary_garbage_and_odd_pages_give_a_result_never_a_traceback(tmp_path):
    import random

    rng = random.Random(0)
    write(tmp_path / "garbage.html", bytes(rng.randrange(256) for _ in range(5000)))
    write(tmp_path / "latin.html", b'<meta charset="latin1">' + bytes(rng.randrange(256) for _ in range(5000)))
    write(tmp_path / "nul.html", b"<p>a\x00b</p>")
    write(tmp_path / "empty.html", b"")
    (tmp_path / "folder.html").mkdir()  # a folder named like a page: not a page
    from hostile import outcomes

    empty, garbage, latin, nul = outcomes(HtmlSiteReader(str(tmp_path)))  # in name order
    assert isinstance(garbage, BadInput) and garbage.reason == "invalid_utf8"
    assert isinstance(latin, (Document, Skipped))
    assert nul.text == "a\ufffdb"
    assert empty == Skipped("empty_page")
