"""Document labels, where a corpus has them: ``{document id: label}``.

* ``jsonl``: an optional ``"label"`` field (a string or an integer) on any record, e.g. Cora's
  subject; a record without one has no label.
* ``vital-articles``: the Vital-Article topic of each entry, "Uncategorized" (the package's
  bucket for articles without a topic) left out.
* Other formats carry no labels: ``{}``.

Labels serve the experiments and the quickstart's fine-tuning stage (few-shot classification of
held-out documents); pretraining never reads them.
"""

from __future__ import annotations

import json

from linkbert.corpus import open_reader
from linkbert.corpus.io import decode_utf8
from linkbert.errors import BadInput

EXCLUDED_TOPIC = "Uncategorized"


def document_labels(fmt: str, path) -> dict[str, str]:
    """``{document id: label}`` of the corpus at ``path`` (see the module docstring)."""
    if fmt == "jsonl":
        return _jsonl_labels(str(path))
    if fmt == "vital-articles":
        from linkbert.corpus.vital_articles import read_topics

        return {title: topic for title, topic in read_topics(path).items() if topic != EXCLUDED_TOPIC}
    return {}


def _jsonl_labels(path: str) -> dict[str, str]:
    reader = open_reader("jsonl", path)
    labels = {}
    for record in reader.records():
        if not isinstance(record, tuple):  # a skipped entry or an unreadable line: prepare counts those
            continue
        name, line_no, raw = record
        try:
            obj = json.loads(decode_utf8(raw, name, f"line {line_no}"))
        except (ValueError, RecursionError):
            continue  # not a JSON object: prepare reports it
        if not isinstance(obj, dict) or "label" not in obj or "id" not in obj:
            continue
        label = obj["label"]
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise BadInput(name, f"line {line_no}", "wrong_type",
                           f'field "label" must be a string or an integer, found {type(label).__name__}')
        labels[str(obj["id"])] = str(label)
    return labels
