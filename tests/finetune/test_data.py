"""Reading a fine-tuning data folder: bad files end ``linkbert finetune`` with exit status 2 and a
message naming the file and line; subsets of a split."""

from __future__ import annotations

import finetune_helpers
from finetune_helpers import (
    fails_with,
    mc_examples,
    ner_examples,
    pair_examples,
    splits_of,
    write_data,
)

from linkbert.finetune.data import Split

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


def test_wrong_task_file(tmp_path, tiny_model, capsys):
    data = write_data(tmp_path / "ner", splits_of(ner_examples))
    err = fails_with(capsys, "--task", "seqcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "train.json, line 1" in err and "has a tokcls record" in err


def test_missing_field(tmp_path, tiny_model, capsys):
    splits = splits_of(pair_examples)
    del splits["dev"][2]["label"]
    data = write_data(tmp_path / "d", splits)
    err = fails_with(capsys, "--task", "seqcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "dev.json, line 3" in err and "missing field(s) label" in err


def test_empty_split_and_missing_train(tmp_path, tiny_model, capsys):
    splits = splits_of(mc_examples)
    splits["dev"] = []
    data = write_data(tmp_path / "d", splits)
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "dev.json" in err and "no records" in err
    data = write_data(tmp_path / "e", {"dev": mc_examples(4, "d"), "test": mc_examples(4, "t")})
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "train.json" in err and "--eval-only" in err


def test_malformed_line_and_duplicate_id(tmp_path, tiny_model, capsys):
    data = write_data(tmp_path / "d", splits_of(mc_examples))
    with open(data / "test.json", "a") as f:
        f.write("{not json\n")
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "test.json, line 5" in err and "not valid JSON" in err
    splits = splits_of(mc_examples)
    splits["train"][3]["id"] = splits["train"][0]["id"]
    data = write_data(tmp_path / "e", splits)
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "train.json, line 4" in err and "already used on line 1" in err


def test_subsets_are_random_in_file_order_and_fixed():
    split = Split("train", "train.json", [{"id": i} for i in range(100)], list(range(1, 101)))
    subset = split.subset(10, seed=0)
    ids = [r["id"] for r in subset.records]
    assert len(ids) == 10 and ids == sorted(ids) and ids != list(range(10))
    assert subset.lines == [i + 1 for i in ids]
    assert [r["id"] for r in split.subset(10, seed=0).records] == ids
    assert split.subset(-1) is split and split.subset(500) is split


def test_json_nested_too_deeply_or_not_utf8_names_the_line(tmp_path, tiny_model, capsys):
    """Before: a ``RecursionError`` (and a ``UnicodeDecodeError`` for a line not UTF-8) as a traceback."""
    for line, words in (('{"id": ' + "[" * 100000 + "]" * 100000 + "}\n", "nested too deeply"),
                        ('{"id": "x", "sent1": "caf\xe9"}\n'.encode("latin-1"), "not UTF-8"),
                        ('{"id": ' + "9" * 5000 + "}\n", "more than 4,300 digits")):
        data = write_data(tmp_path / f"d{len(words)}", splits_of(mc_examples))
        with open(data / "test.json", "ab") as f:
            f.write(line if isinstance(line, bytes) else line.encode())
        err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
        assert "test.json, line 5" in err and words in err, err
