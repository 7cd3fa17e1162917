"""``linkbert convert musique`` on a real MuSiQue-Ans excerpt (tests/data/musique/)."""

import json
from collections import Counter

import pytest

from linkbert.cli import main as cli_main
from linkbert.errors import BadInput, ConfigError
from linkbert.finetune import convert as cv
from linkbert.finetune.convert_musique import find_answer, musique_context, musique_records
from linkbert.finetune.qa import answer_in_context

from conftest import TEST_DATA

EXCERPT = TEST_DATA / "musique" / "musique_ans_excerpt.jsonl"


def raw_records() -> list[dict]:
    return [json.loads(line) for line in EXCERPT.read_text(encoding="utf-8").splitlines()]


def test_the_real_excerpt_converts_with_exact_spans_and_hop_types(tmp_path, capsys):
    assert cli_main(["convert", "musique", str(EXCERPT), str(tmp_path), "--split", "dev"]) == 0
    assert "dev: 25 examples" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "qa" / "musique_hf" / "dev.json").read_text().splitlines()]
    assert len(records) == 25 and [r["id"] for r in records] == [r["id"] for r in raw_records()]
    assert Counter(r["type"] for r in records) == {"2hop": 12, "3hop": 7, "4hop": 6}
    for record in records:
        assert list(record) == ["id", "question", "context", "answers", "type"]
        assert all(answer_in_context(record, k) for k in range(len(record["answers"]["text"])))
        assert record["context"].startswith("[PAR] [TLE] ") and record["context"].count("[PAR]") == 20
    first, raw = records[0], raw_records()[0]
    assert first["question"] == "What is the seat of the county where Van Hook Township is located?"
    assert first["answers"]["text"] == ["Stanley"]
    # the answer is taken where the last hop's supporting paragraph has it
    start = first["answers"]["answer_start"][0]
    supporting = next(p for p in raw["paragraphs"] if p["is_supporting"] and "Stanley" in p["paragraph_text"])
    assert first["context"].rfind("[TLE] " + supporting["title"], 0, start) >= 0


def test_aliases_that_the_context_holds_are_answers_too():
    splits, dropped = musique_records(EXCERPT, "dev")
    assert dropped == {}
    with_aliases = [r for r in splits["dev"] if len(r["answers"]["text"]) > 1]
    assert len(with_aliases) == 3
    for record in with_aliases:
        raw = next(r for r in raw_records() if r["id"] == record["id"])
        assert set(record["answers"]["text"]) <= {raw["answer"], *raw["answer_aliases"]}


def test_unanswerable_and_answer_not_found_are_dropped_and_counted(tmp_path):
    # synthetic variants of real records: MuSiQue-Full's contrast questions are answerable: false
    records = raw_records()[:4]
    records[1]["answerable"] = False
    records[2]["answer"], records[2]["answer_aliases"] = "no such answer anywhere", []
    path = tmp_path / "musique_full_v1.0_dev.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    splits, dropped = musique_records(path)
    assert dropped == {"unanswerable": 1, "answer_not_in_context": 1}
    assert [r["id"] for r in splits["dev"]] == [records[0]["id"], records[3]["id"]]


def test_the_answer_is_found_ignoring_case_and_recorded_as_the_context_has_it():
    context, bounds = musique_context([{"title": "A", "paragraph_text": " The River Seine flows. ", "is_supporting": False},
                                       {"title": "B", "paragraph_text": "the river seine again", "is_supporting": True}])
    assert context == "[PAR] [TLE] A [SEP] The River Seine flows. [PAR] [TLE] B [SEP] the river seine again"
    start, text = find_answer(context, "the River Seine", bounds)
    assert text == "the river seine" and context[start:start + len(text)] == text  # in the supporting paragraph
    assert find_answer(context, "The River Seine", bounds)[0] == context.index("The River")  # exact first
    assert find_answer(context, "Loire", bounds) is None and find_answer(context, " ", bounds) is None


def test_malformed_lines_name_file_and_line(tmp_path):
    path = tmp_path / "musique_ans_v1.0_dev.jsonl"
    good = json.dumps(raw_records()[0])
    for line, words in (("{broken", "line 2"), (json.dumps({**raw_records()[0], "id": "x__1"}), "hop count"),
                        (json.dumps({**raw_records()[0], "paragraphs": [{"title": 1}]}), "paragraphs must be"),
                        (json.dumps({**raw_records()[0], "answer_aliases": "Stanley"}), "answer_aliases")):
        path.write_text(good + "\n" + line + "\n")
        with pytest.raises(BadInput, match=words) as info:
            musique_records(path)
        assert info.value.location == "line 2" and str(path) in str(info.value)
    with pytest.raises(ConfigError, match="cannot tell the split"):
        cv.convert("musique", EXCERPT, tmp_path / "out")
