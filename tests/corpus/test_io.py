"""linkbert.corpus.io: bounded lines, regular files only, files of a folder in order."""

from __future__ import annotations

import io
import os

import pytest

from linkbert.corpus import Skipped
from linkbert.corpus.io import BadRecord, FolderEntry, bounded_lines, file_records, open_regular, read_at_most
from linkbert.errors import BadInput


def test_bounded_lines_at_the_limit():
    data = b"a" * 10 + b"\n" + b"b" * 11 + b"\n" + b"c" * 25 + b"\n\n" + b"d" * 10
    assert list(bounded_lines(io.BytesIO(data), 10)) == [
        (1, b"a" * 10 + b"\n"), (2, None), (3, None), (4, b"\n"), (5, b"d" * 10)]
    assert list(bounded_lines(io.BytesIO(b"e" * 11), 10)) == [(1, None)]
    assert list(bounded_lines(io.BytesIO(b""), 10)) == []


def test_read_at_most():
    assert read_at_most(io.BytesIO(b"x" * 10), 10) == b"x" * 10
    assert read_at_most(io.BytesIO(b"x" * 11), 10) is None


def test_open_regular_refuses_what_is_no_regular_file(tmp_path):
    from hostile import time_limit

    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "link").symlink_to(tmp_path / "pipe")
    for path, reason in ((tmp_path / "pipe", "not_a_regular_file"), ("/dev/zero", "not_a_regular_file"),
                         (tmp_path, "not_a_regular_file"), (tmp_path / "link", "unreadable")):
        with time_limit(10), pytest.raises(BadInput) as e:
            open_regular(path)
        assert (e.value.path, e.value.reason, e.value.fatal) == (str(path), reason, True)


def test_file_records_go_on_after_a_broken_file_unless_it_is_the_only_one(tmp_path):
    def read(entry):
        yield entry.relative
        if entry.relative == "bad":
            raise BadInput(entry.name, "", "truncated_file", "cut off", fatal=True)

    entries = [FolderEntry(name, name, tmp_path, None) for name in ("bad", "good")]
    skipped = FolderEntry("pipe", "pipe", tmp_path, "not_a_regular_file")
    assert list(file_records([entries[0], skipped, entries[1]], read)) == [
        "bad", BadRecord("bad", "", "truncated_file", "cut off", True), Skipped("not_a_regular_file"), "good"]
    with pytest.raises(BadInput):
        list(file_records(entries[:1], read))
