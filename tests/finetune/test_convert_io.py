"""``linkbert convert``'s reading and writing on hostile input (issue 24): JSON nested too deeply,
bytes that are not UTF-8, a line of a gigabyte in a small gzip, an output that is its input or an
earlier output, a full disk. One line naming the file each time, nothing lost, nothing half
written."""

from __future__ import annotations

import errno
import gzip
import json
from pathlib import Path

import pytest

from linkbert.cli import main as cli_main
from linkbert.errors import BadInput, ConfigError
from linkbert.finetune import convert as cv
from linkbert.finetune import convert_io

NESTED = "[" * 100000 + "]" * 100000


def _squad(path: Path, question_id: str = "q1") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"id": question_id, "question": "Where?",
                                                    "answers": [{"text": "France", "answer_start": 12}]}]}]}]}))
    return path


@pytest.mark.parametrize("source, name, text", [
    ("squad", "train-v1.1.json", '{"version": "1.1", "data": ' + NESTED + "}"),
    ("mrqa", "train.jsonl", json.dumps({"header": {"dataset": "SQuAD", "split": "train"}}) + "\n"
     '{"context": ' + NESTED + "}\n"),
    ("hotpotqa", "hotpot_dev.json", "[" + NESTED + "]"),
    ("medqa", "medqa_dev.jsonl", '{"question": ' + NESTED + "}\n"),
])
def test_json_nested_too_deeply_is_one_error_naming_the_file(tmp_path, capsys, source, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert cli_main(["convert", source, str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "nested too deeply" in err


def test_pubmedqa_nested_too_deeply_names_its_file(tmp_path):
    (tmp_path / "pqal_fold0").mkdir()
    (tmp_path / "pqal_fold0" / "train_set.json").write_text('{"1": ' + NESTED + "}")
    with pytest.raises(BadInput, match=r"train_set\.json.*nested too deeply"):
        cv.convert("pubmedqa", tmp_path, tmp_path / "out")


@pytest.mark.parametrize("source, name, raw", [
    ("squad", "train.json", b'{"version": "1.1", "data": [{"title": "P\xe4ris", "paragraphs": []}]}'),
    ("mmlu", "x_test.csv", b"Qu\xe9?,a,b,c,d,A\n"),
    ("hotpotqa", "hotpot_dev.json", b'[{"_id": "\xff"}]'),
])
def test_bytes_that_are_not_utf8_name_the_file(tmp_path, capsys, source, name, raw):
    path = tmp_path / name
    path.write_bytes(raw)
    assert cli_main(["convert", source, str(path), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "not UTF-8" in err


def test_a_line_over_the_bound_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    """A small gzip can hold a line of gigabytes; reading is refused at the bound (here made small)."""
    monkeypatch.setattr(convert_io, "MAX_RECORD_BYTES", 1000)
    path = tmp_path / "medqa_train.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(b'{"question": "' + b"a" * 50_000 + b'"}\n')
    lines = convert_io.iter_lines(path, 1000)
    with pytest.raises(BadInput, match=r"line 1: longer than 1,000 bytes"):
        next(lines)
    with pytest.raises(BadInput, match="more than 1,000 bytes"):
        convert_io.read_text(path, 1000)


def test_the_line_bound_holds_in_every_line_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(convert_io.iter_lines, "__defaults__", (100,))
    path = tmp_path / "medqa_dev.jsonl"
    path.write_text('{"question": "' + "a" * 500 + '"}\n')
    with pytest.raises(BadInput, match="line 1: longer than 100 bytes"):
        cv.convert("medqa", path, tmp_path / "out")


def test_an_output_that_is_its_input_is_refused_and_the_input_kept(tmp_path, capsys):
    source = _squad(tmp_path / "out" / "qa" / "squad_v1.1_hf" / "train.json")
    before = source.read_bytes()
    for extra in ([], ["--overwrite"]):
        assert cli_main(["convert", "squad", str(source), str(tmp_path / "out"), "--split", "train", *extra]) == 2
        assert "is the input" in capsys.readouterr().err and source.read_bytes() == before


def test_an_earlier_output_is_replaced_only_when_asked(tmp_path):
    earlier = tmp_path / "out" / "qa" / "squad_v1.1_hf" / "train.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"id": "an earlier conversion"}\n')
    with pytest.raises(ConfigError, match="exists .*--overwrite"):
        cv.convert("squad", _squad(tmp_path / "train.json", "new"), tmp_path / "out")
    assert "earlier" in earlier.read_text()
    cv.convert("squad", tmp_path / "train.json", tmp_path / "out", overwrite=True)
    assert json.loads(earlier.read_text())["id"] == "new"
    assert sorted(p.name for p in earlier.parent.iterdir()) == ["train.json"]  # no temporary file left


def test_a_full_disk_names_the_file_and_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    """ENOSPC while writing the second split: neither split is published, nothing is left beside."""
    dev = tmp_path / "raw" / "dev.tsv"
    dev.parent.mkdir()
    dev.write_text("a\tB\n")
    (tmp_path / "raw" / "test.tsv").write_text("b\tO\n")
    real = convert_io.write_jsonl
    calls = []

    def full(records, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(records, path)
    monkeypatch.setattr(cv, "write_jsonl", full)
    assert cli_main(["convert", "JNLPBA", str(tmp_path / "raw"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    folder = tmp_path / "out" / "tokcls" / "JNLPBA_hf"
    assert err.count("\n") == 1 and f"{folder / 'test.json'}: No space left on device" in err
    assert list(folder.iterdir()) == []
