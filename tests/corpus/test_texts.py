"""``corpus/texts.py``: a prepared corpus's texts read again from its file, in store order."""

from __future__ import annotations

import json

from linkbert.corpus.texts import document_texts


class Store:
    """The part of a ``SegmentStore`` the reading needs: its documents' ids, in store order."""

    def __init__(self, ids):
        self.ids = ids

    def document_names(self):
        return [{"id": i} for i in self.ids]


def test_texts_come_back_in_store_order(tmp_path):
    path = tmp_path / "c.jsonl"
    records = [{"id": "a", "title": "A", "text": "Alpha text."}, {"id": "b", "title": "B", "text": "Beta text."},
               {"id": "c", "title": "C", "text": "Gamma text."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert document_texts("jsonl", path, Store(["c", "a"])) == ["Gamma text.", "Alpha text."]
    assert document_texts("jsonl", str(path), Store(["a", "b", "c"])) == ["Alpha text.", "Beta text.", "Gamma text."]


def test_a_repeated_id_gives_the_first_records_text(tmp_path):
    """prepare keeps the first record of an id (the others: ``duplicate_id``); before, the last won."""
    path = tmp_path / "c.jsonl"
    records = [{"id": "a", "text": "Kept."}, {"id": "b", "text": "Beta."}, {"id": "a", "text": "Skipped by prepare."}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert document_texts("jsonl", path, Store(["a", "b"])) == ["Kept.", "Beta."]
