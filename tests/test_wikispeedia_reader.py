import pytest

from linkbert.corpus import open_reader
from linkbert.corpus.wikispeedia import clean_text, decode_name

from conftest import require


def test_names_are_url_decoded():
    assert decode_name("%C3%85land") == "Åland"
    assert decode_name("%C3%81ed%C3%A1n_mac_Gabr%C3%A1in") == "Áedán_mac_Gabráin"


def test_header_dropped_and_wrapped_lines_joined():
    raw = ("   #copyright\n\nZebra\n\n2007 Schools Wikipedia Selection. Related subjects: African\nMammals\n\n"
           "   The Zebra is a part of the horse family, Equidae, native to central and\n"
           "   southern Africa.\n\nStripes\n\n   Zebras have stripes.\n")
    assert clean_text(raw) == ("The Zebra is a part of the horse family, Equidae, native to central and southern "
                               "Africa.\n\nStripes\n\nZebras have stripes.")


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
    # every link target is an article of the dataset
    assert all(t in docs for d in docs.values() for t in d.links)
