import pytest
from conftest import require

from linkbert.corpus import open_reader
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
