"""Writing outputs: ``write_json`` replaces a file whole or not at all; JSON keeps non-ASCII text;
``write_jsonl`` writes one object per line."""

from __future__ import annotations

import json

import pytest

from linkbert.files import write_json, write_jsonl


def test_a_failure_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    write_json(path, {"step": 1})
    old = path.read_bytes()
    with pytest.raises(TypeError):  # the first key is written before the second fails to encode
        write_json(path, {"step": 2, "model": object()})
    assert path.read_bytes() == old and json.loads(old) == {"step": 1}


def test_non_ascii_is_kept_and_folders_are_made(tmp_path):
    path = tmp_path / "new" / "folder" / "names.json"
    value = {"title": "Åland", "city": "東京", "dash": "a – b"}
    write_json(path, value)
    text = path.read_text(encoding="utf-8")
    assert "Åland" in text and "東京" in text and "\\u" not in text and text.endswith("\n")
    assert json.loads(text) == value


def test_write_jsonl_writes_one_object_per_line(tmp_path):
    records = [{"id": 1, "text": "Zürich\nlies on a lake"}, {"id": 2, "links": ["a", "b"]}, {}]
    path = tmp_path / "out" / "records.jsonl"
    write_jsonl(path, iter(records))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records and "Zürich" in lines[0]
    write_jsonl(path, [])
    assert path.read_text(encoding="utf-8") == ""
