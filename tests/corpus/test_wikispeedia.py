import pytest
from conftest import require

from linkbert.corpus import Document, Skipped, open_reader
from linkbert.errors import BadInput
from linkbert.corpus.wikispeedia import (
    FOOTER_MARK,
    clean_text,
    decode_name,
    strip_footer,
)


def test_names_are_url_decoded():
    assert decode_name("%C3%85land") == "Åland"
    assert decode_name("%C3%81ed%C3%A1n_mac_Gabr%C3%A1in") == "Áedán_mac_Gabráin"


def test_header_dropped_and_wrapped_lines_joined():
    raw = ("   #copyright\n\nZebra\n\n2007 Schools Wikipedia Selection. Related subjects: African\nMammals\n\n"
           "   The Zebra is a part of the horse family, Equidae, native to central and\n"
           "   southern Africa.\n\nStripes\n\n   Zebras have stripes.\n")
    assert clean_text(raw) == ("The Zebra is a part of the horse family, Equidae, native to central and southern "
                               "Africa.\n\nStripes\n\nZebras have stripes.")


FOOTER = ('   Retrieved from "\n   http://en.wikipedia.org/wiki/Zebra_%28an\n   imal%29"\n'
          "   This reference article is mainly selected from the English Wikipedia\n"
          "   with only minor checks and changes (see www.wikipedia.org for details\n"
          "   of authors and sources) and is available under the GNU Free\n"
          "   Documentation License. See also our Disclaimer.\n")


def test_wikipedia_footer_dropped():
    body = ("   #copyright\n\nZebra\n\n2007 Schools Wikipedia Selection. Related subjects: Mammals\n\n"
            "   The Zebra is a part of the horse family, Equidae, native to central and\n"
            "   southern Africa.\n")
    # the footer follows the last line without a blank line, the URL wrapped over two lines
    assert clean_text(body + FOOTER) == clean_text(body) == (
        "The Zebra is a part of the horse family, Equidae, native to central and southern Africa.")
    assert clean_text(body + "\n" + FOOTER) == clean_text(body)
    assert strip_footer(body + FOOTER) == body


def test_text_without_a_complete_footer_is_kept_whole():
    body = "   Zebras have stripes.\n"
    mentions = body + '   The page says Retrieved from "http://en.wikipedia.org/wiki/Zebra" and more.\n'
    truncated = body + FOOTER.replace(" See also our Disclaimer.", "")
    followed = body + FOOTER + "   Zebras also have hooves.\n"
    elsewhere = body + FOOTER.replace("en.wikipedia.org", "example.org")
    for raw in (body, mentions, truncated, followed, elsewhere):
        assert strip_footer(raw) == raw


@pytest.mark.data
def test_real_dataset_articles_and_links(shared_data):
    reader = open_reader("wikispeedia", str(require(shared_data / "wikispeedia")))
    docs = {}
    for record in reader.records():
        doc = reader.parse(record)
        docs[doc.id] = doc
    assert len(docs) == 4598
    assert sum(len(d.links) for d in docs.values()) == 119_879
    assert "Åland" in docs and docs["Åland"].title == "Åland"
    zebra = docs["Zebra"]
    assert not zebra.text.startswith("#copyright") and "Related subjects" not in zebra.text[:200]
    assert "The Zebra is a part of the horse family, Equidae, native to central and southern Africa." in zebra.text
    assert "Horse" in zebra.links
    assert zebra.text.endswith("more horse-like than other zebras.")
    # every article ends with the Wikipedia footer, and the reader drops it from all of them
    assert not [d.id for d in docs.values() if FOOTER_MARK in d.text or "GNU Free Documentation License. See also" in d.text]
    # every link target is an article of the dataset
    assert all(t in docs for d in docs.values() for t in d.links)


# -- hostile datasets: bad link lines counted, bounded members, broken tarballs named ------------

def article(title: str) -> bytes:
    return (f"   #copyright\n\n{title}\n\n2007 Schools Wikipedia Selection. Related subjects: Tests\n\n"
            f"   {title} is an article.\n").encode()


def dataset(tmp_path, members: dict, links: bytes = b"# links\nZebra\tHorse\nHorse\tZebra\n"):
    """A Wikispeedia folder: ``members`` name -> bytes, or "symlink"/"hardlink" for a link to /etc/passwd."""
    import io
    import tarfile

    root = tmp_path / "wikispeedia"
    root.mkdir()
    with tarfile.open(root / "plaintext_articles.tar.gz", "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(f"plaintext_articles/{name}")
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.type = tarfile.SYMTYPE if content == "symlink" else tarfile.LNKTYPE
                info.linkname = "/etc/passwd"
                tar.addfile(info)
    (root / "links.tsv").write_bytes(links)
    return root


def test_bad_link_lines_are_named_records_and_the_other_links_kept(tmp_path):
    from hostile import bad, outcomes, small_reader

    links = (b"Zebra\tHorse\n%FF%FE\tHorse\nZebra\tA\tB\nHorse\tZebra\n" + b"Zebra\t" + b"x" * 5000 + b"\n"
             + b"Horse\tcaf\xe9\nZebra\tLion\n")
    root = dataset(tmp_path, {"Zebra.txt": article("Zebra"), "Horse.txt": article("Horse")}, links)
    results = outcomes(small_reader("wikispeedia", root, 1000))
    path = str(root / "links.tsv")
    assert [(e.path, e.location, e.reason, e.fatal) for e in bad(results)] == [
        (path, "line 2", "invalid_utf8", False), (path, "line 3", "malformed_line", False),
        (path, "line 5", "record_too_large", False), (path, "line 6", "invalid_utf8", False)]
    docs = {r.id: r for r in results if isinstance(r, Document)}
    assert docs["Zebra"].links == ("Horse", "Lion") and docs["Horse"].links == ("Zebra",)


def test_link_lines_whose_source_is_no_article_are_counted(tmp_path):
    """Before: they vanished without a count (no document holds them)."""
    from hostile import outcomes

    links = b"Zebra\tHorse\nNowhere\tZebra\nNowhere\tHorse\nHorse\tZebra\nElsewhere\tZebra\n"
    root = dataset(tmp_path, {"Zebra.txt": article("Zebra"), "Horse.txt": article("Horse")}, links)
    results = outcomes(open_reader("wikispeedia", str(root)))
    assert [r for r in results if isinstance(r, Skipped)] == [Skipped("link_from_no_article")] * 3
    assert {r.id: r.links for r in results if isinstance(r, Document)} == {"Zebra": ("Horse",), "Horse": ("Zebra",)}


def test_member_larger_than_the_limit_is_not_read(tmp_path):
    from hostile import bad, outcomes, peak_bytes, small_reader

    root = dataset(tmp_path, {"Big.txt": b"x" * 20_000_000, "Zebra.txt": article("Zebra")})
    results, peak = peak_bytes(lambda: outcomes(small_reader("wikispeedia", root, 1000)))
    assert peak < 2_000_000
    (error,) = bad(results)
    assert (error.path, error.location, error.reason, error.fatal) == (
        str(root / "plaintext_articles.tar.gz"), "member plaintext_articles/Big.txt", "record_too_large", False)
    assert [r.id for r in results if isinstance(r, Document)] == ["Zebra"]


def test_links_and_odd_names_in_the_tarball(tmp_path):
    from hostile import bad, outcomes

    root = dataset(tmp_path, {"Link.txt": "symlink", "Hard.txt": "hardlink", "%FF.txt": article("X"),
                              "Zebra.txt": article("Zebra")}, links=b"Zebra\tHorse\n")
    results = outcomes(open_reader("wikispeedia", str(root)))
    assert [r for r in results if isinstance(r, Skipped)] == [Skipped("not_a_regular_file")] * 2
    (error,) = bad(results)
    assert (error.location, error.reason) == ("member plaintext_articles/%FF.txt", "invalid_utf8")
    assert [r.id for r in results if isinstance(r, Document)] == ["Zebra"]


def test_member_name_that_is_not_utf8(tmp_path):
    import gzip
    import io
    import tarfile

    root = dataset(tmp_path, {"Zebra.txt": article("Zebra")}, links=b"")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        info = tarfile.TarInfo("plaintext_articles/Caf\xe9.txt")  # written as Latin-1 bytes
        info.size = 5
        tar.addfile(info, io.BytesIO(b"words"))
    (root / "plaintext_articles.tar.gz").write_bytes(gzip.compress(raw.getvalue()))
    reader = open_reader("wikispeedia", str(root))
    (record,) = reader.records()
    with pytest.raises(BadInput) as e:
        reader.parse(record)
    assert e.value.reason == "invalid_utf8" and e.value.location == "member plaintext_articles/Caf\\udce9.txt"


@pytest.mark.parametrize("damage, reason", [
    (lambda data: b"not a tarball at all", "corrupt_file"),
    (lambda data: b"", "corrupt_file"),
    (lambda data: __import__("gzip").compress(b"gzip, but no tar inside" * 100), "corrupt_file"),
    (lambda data: data[: len(data) // 2], "truncated_file"),
])
def test_a_tarball_that_cannot_be_read_is_named(tmp_path, damage, reason):
    import os

    members = {f"A{i}.txt": article(f"A{i}") + os.urandom(3000).hex().encode() for i in range(40)}
    root = dataset(tmp_path, members)
    tarball = root / "plaintext_articles.tar.gz"
    tarball.write_bytes(damage(tarball.read_bytes()))
    reader = open_reader("wikispeedia", str(root))
    read = []
    with pytest.raises(BadInput) as e:
        read.extend(reader.records())
    assert (e.value.path, e.value.reason, e.value.fatal) == (str(tarball), reason, True)
    assert reason != "truncated_file" or len(read) > 5  # what came before the break is delivered


def test_a_damaged_member_header_is_named_not_the_end_of_the_archive(tmp_path):
    import gzip

    root = dataset(tmp_path, {f"A{i}.txt": article(f"A{i}") for i in range(5)})
    tarball = root / "plaintext_articles.tar.gz"
    data = bytearray(gzip.decompress(tarball.read_bytes()))
    third = data.index(b"plaintext_articles/A2.txt")
    data[third + 148:third + 156] = b"garbage!"  # the header's checksum field
    tarball.write_bytes(gzip.compress(bytes(data)))
    reader = open_reader("wikispeedia", str(root))
    read = []
    with pytest.raises(BadInput) as e:
        read.extend(reader.records())
    assert [member for member, _ in read] == ["plaintext_articles/A0.txt", "plaintext_articles/A1.txt"]
    assert (e.value.location, e.value.reason, e.value.fatal) == (
        "after member plaintext_articles/A1.txt", "corrupt_file", True)


def test_dataset_files_must_be_regular_files_inside_the_folder(tmp_path):
    import os

    from hostile import time_limit

    root = dataset(tmp_path, {"Zebra.txt": article("Zebra")})
    (root / "links.tsv").unlink()
    (root / "links.tsv").symlink_to("/etc/passwd")
    with pytest.raises(BadInput) as e:
        open_reader("wikispeedia", str(root))
    assert (e.value.path, e.value.reason) == (str(root / "links.tsv"), "outside_input")
    (root / "links.tsv").unlink()
    os.mkfifo(root / "links.tsv")
    with time_limit(10), pytest.raises(BadInput) as e:
        open_reader("wikispeedia", str(root))
    assert e.value.reason == "not_a_regular_file"
    (root / "links.tsv").unlink()
    (root / "links.tsv").mkdir()
    with pytest.raises(BadInput) as e:
        open_reader("wikispeedia", str(root))
    assert e.value.reason == "not_a_regular_file"
