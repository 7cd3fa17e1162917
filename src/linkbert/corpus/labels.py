"""Document labels, where a corpus has them: ``{document id: label}``.

* ``jsonl`` and ``parquet``: an optional ``"label"`` field (a string or an integer) on any record,
  e.g. Cora's subject, or the field ``label_field`` names (a dotted path); a record without one has
  no label.
* ``openalex``: the field ``label_field`` names, when given (e.g. ``primary_topic.field.display_name``).
* ``vital-articles``: the Vital-Article topic of each entry, "Uncategorized" (the package's
  bucket for articles without a topic) left out.
* Other formats carry no labels: ``{}``.

Labels serve the experiments and the quickstart's fine-tuning stage (few-shot classification of
held-out documents); pretraining never reads them. Of records sharing a document id, the first
gives the label (or none), as ``prepare`` keeps the first and skips the others.
"""

from __future__ import annotations

from linkbert.corpus import open_reader, reader_class

EXCLUDED_TOPIC = "Uncategorized"


def document_labels(fmt: str, path, **options) -> dict[str, str]:
    """``{document id: label}`` of the corpus at ``path`` (see the module docstring); ``options``
    are the reader's (``label_field``, ``id_field``, ...: ``corpus.open_reader``)."""
    if fmt == "vital-articles":
        from linkbert.corpus.vital_articles import read_topics

        return {title: topic for title, topic in read_topics(path).items() if topic != EXCLUDED_TOPIC}
    if not hasattr(reader_class(fmt), "labels"):
        return {}
    labels: dict[str, str] = {}
    for doc_id, value in open_reader(fmt, str(path), **options).labels():
        labels.setdefault(doc_id, value)  # the first record of an id, the one prepare keeps
    return labels
