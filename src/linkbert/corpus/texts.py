"""A prepared corpus's documents' texts, read again from the corpus file: the segment store keeps
tokens, while TF-IDF links and classification data need the text itself.
"""

from __future__ import annotations

from pathlib import Path

from linkbert.corpus import Document, open_reader


def document_texts(fmt: str, path: str | Path, store, **options) -> list[str]:
    """Every ``store`` document's text, in store order, read again from the corpus ``path`` of
    reader format ``fmt`` (``corpus.open_reader``, with the reader's ``options`` as prepare was
    given them: ``text_field``, ...); ``store``: the ``SegmentStore`` prepared from that corpus."""
    reader = open_reader(fmt, str(path), **options)
    texts = {}
    for record in reader.records():
        parsed = reader.parse(record)
        if isinstance(parsed, Document):
            texts.setdefault(parsed.id, parsed.text)  # a repeated id: the first, the one prepare kept
    return [texts[d["id"]] for d in store.document_names()]
