"""PubmedXmlReader: fields, links, damaged files and entities on hand-written XML, then the real baseline file."""

from __future__ import annotations

import gzip
import pickle
import re
from itertools import islice
from pathlib import Path

import pytest

from conftest import require
from linkbert.corpus import Document, Skipped, open_reader
from linkbert.corpus.pubmed import PubmedXmlReader
from linkbert.errors import BadInput

HEAD = """<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2019//EN" "http://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_190101.dtd">
"""

STRUCTURED = """
  <PubmedArticle>
    <MedlineCitation Status="MEDLINE" Owner="NLM">
      <PMID Version="1">1001</PMID>
      <Article PubModel="Print">
        <ArticleTitle>Effects of <i>Escherichia coli</i> on  rats.</ArticleTitle>
        <Abstract>
          <AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Rats &amp; mice were
            studied.</AbstractText>
          <AbstractText Label="RESULTS" NlmCategory="RESULTS">p &lt; 0.05 with CO<sub>2</sub>.</AbstractText>
          <AbstractText Label="UNLABELLED">Closing remarks.</AbstractText>
        </Abstract>
      </Article>
    </MedlineCitation>
    <PubmedData>
      <ArticleIdList><ArticleId IdType="pubmed">1001</ArticleId></ArticleIdList>
    </PubmedData>
  </PubmedArticle>"""

CITING = """
  <PubmedArticle>
    <MedlineCitation Status="MEDLINE" Owner="NLM">
      <PMID Version="1">1002</PMID>
      <Article PubModel="Print">
        <ArticleTitle>A reply.</ArticleTitle>
        <Abstract><AbstractText>Plain abstract.</AbstractText></Abstract>
      </Article>
      <CommentsCorrectionsList>
        <CommentsCorrections RefType="CommentOn">
          <RefSource>J Test. 1979;1:1-2</RefSource>
          <PMID Version="1">1001</PMID>
        </CommentsCorrections>
        <CommentsCorrections RefType="ErratumIn">
          <RefSource>J Test. 1980;2:3</RefSource>
          <PMID Version="1"> 555 </PMID>
        </CommentsCorrections>
      </CommentsCorrectionsList>
    </MedlineCitation>
    <PubmedData>
      <ArticleIdList>
        <ArticleId IdType="pubmed">1002</ArticleId>
        <ArticleId IdType="doi">10.1000/xyz</ArticleId>
      </ArticleIdList>
      <ReferenceList>
        <Reference>
          <Citation>Ann Test. 1957;47:263-73</Citation>
          <ArticleIdList><ArticleId IdType="pubmed">777</ArticleId></ArticleIdList>
        </Reference>
        <Reference>
          <Citation>No PubMed id here</Citation>
          <ArticleIdList><ArticleId IdType="doi">10.1/abc</ArticleId></ArticleIdList>
        </Reference>
        <Reference>
          <Citation>Cited twice</Citation>
          <ArticleIdList><ArticleId IdType="pubmed">1001</ArticleId></ArticleIdList>
        </Reference>
      </ReferenceList>
    </PubmedData>
  </PubmedArticle>"""

NO_PMID = """
  <PubmedArticle>
    <MedlineCitation Status="MEDLINE" Owner="NLM">
      <Article PubModel="Print"><ArticleTitle>Orphan.</ArticleTitle></Article>
    </MedlineCitation>
  </PubmedArticle>"""

DELETED = """
  <DeleteCitation><PMID Version="1">9</PMID><PMID Version="1">10</PMID></DeleteCitation>"""


def article_set(*records: str) -> str:
    return HEAD + "<PubmedArticleSet>" + "".join(records) + "\n</PubmedArticleSet>\n"


def write_gz(path: Path, xml: str) -> Path:
    path.write_bytes(gzip.compress(xml.encode("utf-8")))
    return path


def read_all(reader: PubmedXmlReader) -> list:
    return [reader.parse(record) for record in reader.records()]


def test_reads_titles_abstracts_and_links(tmp_path):
    path = write_gz(tmp_path / "pubmed.xml.gz", article_set(STRUCTURED, CITING, DELETED))
    reader = open_reader("pubmed-xml", str(path))
    assert read_all(reader) == [
        Document(
            id="1001",
            title="Effects of Escherichia coli on rats.",
            text="Effects of Escherichia coli on rats.\n\n"
                 "BACKGROUND: Rats & mice were studied.\n\n"
                 "RESULTS: p < 0.05 with CO2.\n\n"
                 "Closing remarks.",
        ),
        Document(
            id="1002",
            title="A reply.",
            text="A reply.\n\nPlain abstract.",
            # comments/corrections first, then the references with a PubMed id, in order
            links=("1001", "555", "777", "1001"),
        ),
        Skipped("deleted_citation"),
        Skipped("deleted_citation"),
    ]


def test_article_without_abstract_is_its_title(tmp_path):
    xml = article_set(re.sub(r"<Abstract>.*</Abstract>", "", STRUCTURED, flags=re.DOTALL))
    [doc] = read_all(PubmedXmlReader(str(write_gz(tmp_path / "a.xml.gz", xml))))
    assert doc.text == doc.title == "Effects of Escherichia coli on rats."


def test_folder_is_read_in_name_order_plain_and_gzipped(tmp_path):
    write_gz(tmp_path / "b.xml.gz", article_set(CITING))
    (tmp_path / "a.xml").write_text(article_set(STRUCTURED), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a pubmed file")
    assert [doc.id for doc in read_all(PubmedXmlReader(str(tmp_path)))] == ["1001", "1002"]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(BadInput) as e:
        list(PubmedXmlReader(str(tmp_path)).records())
    assert e.value.reason == "no_input_files" and e.value.fatal


def test_missing_pmid_names_file_and_record(tmp_path):
    path = write_gz(tmp_path / "bad.xml.gz", article_set(STRUCTURED, NO_PMID, CITING))
    reader = PubmedXmlReader(str(path))
    records = list(reader.records())
    assert reader.parse(records[0]).id == "1001"
    with pytest.raises(BadInput) as e:
        reader.parse(records[1])
    assert (e.value.path, e.value.location, e.value.reason) == (str(path), "record 2", "missing_field")
    assert not e.value.fatal  # one bad record: --skip-bad goes on with the next
    assert reader.parse(records[2]).id == "1002"
    # the error survives the trip back from a worker process
    assert pickle.loads(pickle.dumps(e.value)).location == "record 2"


def test_truncated_gzip_is_fatal_and_names_the_file(tmp_path):
    whole = gzip.compress(article_set(*[STRUCTURED.replace("1001", str(n)) for n in range(2000)]).encode())
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(BadInput) as e:
        list(PubmedXmlReader(str(path)).records())
    assert (e.value.path, e.value.reason, e.value.fatal) == (str(path), "truncated_file", True)


def test_malformed_xml_names_the_line(tmp_path):
    # a broken record is one bad record naming its line; the records after it are still read
    xml = article_set(STRUCTURED, CITING.replace("</ArticleTitle>", "</Title>"), DELETED)
    path = write_gz(tmp_path / "broken.xml.gz", xml)
    line = xml[: xml.index("</Title>")].count("\n") + 1
    reader = PubmedXmlReader(str(path))
    first, broken, *deleted = reader.records()
    assert reader.parse(first).id == "1001" and deleted == [Skipped("deleted_citation")] * 2
    with pytest.raises(BadInput) as e:
        reader.parse(broken)
    assert (e.value.path, e.value.location, e.value.reason) == (str(path), f"record 2, line {line}", "malformed_xml")
    assert not e.value.fatal


def test_external_entities_are_not_loaded(tmp_path):
    xml = ('<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
           "<PubmedArticleSet>" + STRUCTURED.replace("on  rats.", "on &e; rats.") + "</PubmedArticleSet>")
    [doc] = read_all(PubmedXmlReader(str(write_gz(tmp_path / "xxe.xml.gz", xml))))
    assert doc.id == "1001"
    assert "root:" not in doc.text and "/bin/" not in doc.text
    assert doc.title.startswith("Effects of Escherichia coli on") and doc.title.endswith("rats.")


def test_keys_and_pickling(tmp_path):
    reader = PubmedXmlReader(str(write_gz(tmp_path / "p.xml.gz", article_set(CITING))))
    [record] = reader.records()
    doc = reader.parse(pickle.loads(pickle.dumps(record)))  # records travel to worker processes
    assert list(reader.document_keys(doc)) == ["1002"]
    assert list(reader.link_keys(" 1001 ")) == ["1001"]
    assert list(reader.link_keys("PMC123")) == [] and list(reader.link_keys("")) == []
    assert pickle.loads(pickle.dumps(reader)).path == reader.path


# --- hostile files: namespaces, bounded records, one bad record costs one record ------------

def test_namespaced_records_are_read_not_silently_skipped(tmp_path):
    xml = article_set(STRUCTURED, CITING).replace("<PubmedArticleSet>", '<PubmedArticleSet xmlns="urn:x-pubmed">')
    prefixed = HEAD + '<PubmedArticleSet xmlns:p="urn:x">' + STRUCTURED.replace(
        "<PubmedArticle>", '<PubmedArticle xmlns="urn:own">') + "</PubmedArticleSet>"
    docs = read_all(PubmedXmlReader(str(write_gz(tmp_path / "ns.xml.gz", xml))))
    assert [(d.id, d.title) for d in docs] == [("1001", "Effects of Escherichia coli on rats."), ("1002", "A reply.")]
    assert docs[1].links == ("1001", "555", "777", "1001")
    assert [d.id for d in read_all(PubmedXmlReader(str(write_gz(tmp_path / "own.xml.gz", prefixed))))] == ["1001"]


def test_record_larger_than_the_limit_is_skipped_in_bounded_memory(tmp_path):
    from hostile import bad, outcomes, peak_bytes, small_reader

    huge = STRUCTURED.replace("1001", "2002").replace("Closing remarks.", "x" * 30_000_000)
    xml = article_set(STRUCTURED, huge, CITING)
    path = write_gz(tmp_path / "huge.xml.gz", xml)
    results, peak = peak_bytes(lambda: outcomes(small_reader("pubmed-xml", path, 2000)))
    assert peak < 2_000_000
    assert [r.id for r in results if isinstance(r, Document)] == ["1001", "1002"]
    (error,) = bad(results)
    line = xml[: xml.index("2002")].count("\n") - 1  # where its <PubmedArticle> starts
    assert (error.path, error.location, error.reason, error.fatal) == (
        str(path), f"record 2, line {line}", "record_too_large", False)


@pytest.mark.parametrize("damage, reason", [
    (lambda r: r.replace("Plain abstract.", "Plain \x01 abstract."), "malformed_xml"),
    (lambda r: r.replace("Plain abstract.", "Plain \udcff abstract."), "invalid_utf8"),  # a byte \xff
    (lambda r: r.replace("</PubmedArticle>", ""), "malformed_xml"),  # unclosed: ends where the next starts
    (lambda r: r.replace("A reply.", "a < b"), "malformed_xml"),
])
def test_one_damaged_record_costs_that_record(tmp_path, damage, reason):
    from hostile import bad, outcomes

    xml = article_set(STRUCTURED, damage(CITING), STRUCTURED.replace("1001", "3003"))
    path = tmp_path / "damaged.xml"
    path.write_bytes(xml.encode("utf-8", "surrogateescape"))
    results = outcomes(PubmedXmlReader(str(path)))
    assert [r.id for r in results if isinstance(r, Document)] == ["1001", "3003"]
    (error,) = bad(results)
    assert (error.location.split(",")[0], error.reason, error.fatal) == ("record 2", reason, False)


def test_entity_bomb_is_not_expanded(tmp_path):
    from hostile import bad, outcomes, peak_bytes, time_limit

    laughs = "".join(f'<!ENTITY l{i + 1} "{("&l" + str(i) + ";") * 10}">' for i in range(9))
    xml = (f'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [<!ENTITY l0 "lol">{laughs}]>\n'
           + "<PubmedArticleSet>" + STRUCTURED + CITING.replace("A reply.", "&l9;") + "</PubmedArticleSet>")
    with time_limit(20):
        results, peak = peak_bytes(lambda: outcomes(PubmedXmlReader(str(write_gz(tmp_path / "b.xml.gz", xml)))))
    assert peak < 5_000_000
    assert [r.id for r in results if isinstance(r, Document)] == ["1001"]
    (error,) = bad(results)
    assert error.location.startswith("record 2") and "amplification" in str(error)


def test_folder_reads_only_regular_files_inside_it_and_goes_on_after_a_broken_file(tmp_path):
    import os

    from hostile import bad, outcomes, time_limit

    outside = write_gz(tmp_path / "outside.xml.gz", article_set(STRUCTURED.replace("1001", "99999")))
    folder = tmp_path / "pubmed"
    folder.mkdir()
    whole = gzip.compress(article_set(*[STRUCTURED.replace("1001", str(n)) for n in range(2000)]).encode())
    (folder / "a.xml.gz").write_bytes(whole[: len(whole) // 2])
    write_gz(folder / "b.xml.gz", article_set(CITING))
    (folder / "c.xml.gz").symlink_to(outside)
    (folder / "d.xml").symlink_to("/dev/zero")
    os.mkfifo(folder / "e.xml")
    (folder / "f.xml.gz").symlink_to(folder / "b.xml.gz")  # inside the folder: followed
    with time_limit(10):
        results = outcomes(PubmedXmlReader(str(folder)))
    (error,) = bad(results)
    assert (error.path, error.reason, error.fatal) == (str(folder / "a.xml.gz"), "truncated_file", True)
    after = results[results.index(error) + 1:]
    assert after == [read_all(PubmedXmlReader(str(folder / "b.xml.gz")))[0], Skipped("outside_input"),
                     Skipped("outside_input"), Skipped("not_a_regular_file"), after[0]]
    assert results.index(error) > 100  # a.xml.gz's records before the break are kept
    assert not any(isinstance(r, Document) and r.id == "99999" for r in results)


@pytest.mark.parametrize("content, reason", [
    (b"", "malformed_xml"),
    (b"\x89PNG\r\n\x1a\n\x00 binary \xff", "malformed_xml"),
    (b"<PubmedArticleSet><PubmedArticle><PMID>1</PMID></PubmedArticle>", "truncated_file"),
])
def test_files_that_are_no_pubmed_file_are_a_fatal_error_naming_them(tmp_path, content, reason):
    path = tmp_path / "x.xml"
    path.write_bytes(content)
    with pytest.raises(BadInput) as e:
        list(PubmedXmlReader(str(path)).records())
    assert (e.value.path, e.value.reason, e.value.fatal) == (str(path), reason, True)


# --- the real baseline file --------------------------------------------------------------

BASELINE = "pubmed/pubmed20n0014.xml.gz"


@pytest.fixture(scope="module")
def baseline_docs(shared_data) -> list[Document]:
    reader = PubmedXmlReader(str(require(shared_data / BASELINE)))
    return [reader.parse(record) for record in reader.records()]


@pytest.mark.data
def test_real_first_record(shared_data):
    reader = PubmedXmlReader(str(require(shared_data / BASELINE)))
    [doc] = [reader.parse(record) for record in islice(reader.records(), 1)]
    title = ("Monitoring of bacteriological contamination and assessment of carcase surface growth by "
             "using direct and indirect contact examination techniques and various colony counting procedures.")
    assert (doc.id, doc.title, doc.links) == ("399296", title, ())
    assert doc.text.startswith(title + "\n\nTwo hundred and sixty nine beef, 230 sheep and 165 pig carcase surface")
    assert doc.text.endswith("a count classification arrangement against which bacteriological "
                             "monitoring assessments could be measured.")


@pytest.mark.data
def test_real_file_counts(baseline_docs):
    assert len(baseline_docs) == 30_000
    assert all(isinstance(doc, Document) for doc in baseline_docs)
    assert len({doc.id for doc in baseline_docs}) == 30_000
    with_abstract = sum(doc.text != doc.title for doc in baseline_docs)
    assert 14_000 < with_abstract < 16_000


@pytest.mark.data
def test_real_comments_corrections_are_links(baseline_docs):
    by_id = {doc.id: doc for doc in baseline_docs}
    assert by_id["400712"].links == ("6106651",)
    assert by_id["400964"].links == ("166323", "178540", "183981", "785270")
    for pmid, cited in [("400955", "778343"), ("402843", "18716088"), ("403784", "16632708"), ("423962", "7350521")]:
        assert cited in by_id[pmid].links
