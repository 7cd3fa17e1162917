"""QA conversion on hostile input (issue 24): records fine-tuning would refuse are dropped and
counted, never written; answers found ignoring case are given by the context's own offsets; MRQA
files of the wrong types are one error naming the file, never a traceback."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from linkbert.errors import BadInput
from linkbert.finetune import convert as cv
from linkbert.finetune.convert_musique import find_answer, musique_context
from linkbert.finetune.convert_qa import find_span, hotpotqa_records, squad_records, usable_qa
from linkbert.finetune.data import load_split
from linkbert.finetune.qa import answer_in_context


def _squad(path, qas, context="Paris is in France."):
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas}]}]}), encoding="utf-8")
    return path


def _qa(qid, text, start):
    return {"id": qid, "question": "Where?", "answers": [{"text": text, "answer_start": start}]}


def test_squad_questions_fine_tuning_refuses_are_dropped_and_counted(tmp_path, capsys):
    path = _squad(tmp_path / "train-v1.1.json", [
        _qa("ok", "France", 12),
        _qa("negative", "France", -7),   # context[-7:-1] == "France": a negative start that "matches"
        _qa("boolean", "aris", True),    # True == 1: context[1:5] == "aris"
        {"id": "none", "question": "Where?", "answers": []},
        _qa("empty", "", 3),
        _qa("ok", "Paris", 0),           # a repeated id: predictions are keyed by id
    ])
    written = cv.convert("squad", path, tmp_path / "out")
    records = [json.loads(line) for line in written["train"].read_text().splitlines()]
    assert [r["id"] for r in records] == ["ok"] and records[0]["answers"] == {"answer_start": [12], "text": ["France"]}
    said = capsys.readouterr().err
    assert "dropped 5 questions (duplicate_id 1, no_answer 4) and 3 answers (boolean_answer_start 1, " \
           "empty_answer 1, negative_answer_start 1)" in said
    load_split(written["train"], "train", "qa")  # what is written, fine-tuning reads


def test_an_answer_is_dropped_alone_when_its_question_has_a_good_one(tmp_path):
    path = _squad(tmp_path / "dev.json", [{"id": "q", "question": "Where?", "answers": [
        {"text": "", "answer_start": 0}, {"text": "France", "answer_start": 12}]}])
    dropped = Counter()
    (record,) = squad_records(path, dropped)
    assert record["answers"] == {"answer_start": [12], "text": ["France"]} and dropped == {"empty_answer": 1}


def test_usable_qa_keeps_the_first_of_a_repeated_id():
    records = [{"id": i, "context": "abc", "answers": {"answer_start": [0], "text": ["a"]}, "n": n}
               for n, i in enumerate(["x", "y", "x"])]
    dropped = Counter()
    assert [r["n"] for r in usable_qa(records, dropped)] == [0, 1] and dropped == {"duplicate_id": 1}


def _hotpot(qid, answer, sentences):
    return {"_id": qid, "question": "Which?", "answer": answer, "type": "bridge", "level": "easy",
            "supporting_facts": [], "context": [["Title", sentences]]}


def test_hotpotqa_case_insensitive_offsets_index_the_original_context(tmp_path):
    path = tmp_path / "hotpot_dev.jsonl"
    # "İ".lower() is two characters: an offset into context.lower() is one off in the context
    path.write_text("".join(json.dumps(r) + "\n" for r in (
        _hotpot("h1", "paris", ["İstanbul and PARIS are cities."]), _hotpot("h1", "istanbul", ["İstanbul is big."]),
        _hotpot("h2", "", ["Nothing."]))))
    splits, dropped = hotpotqa_records(path)
    (record,) = splits["dev"]
    start = record["answers"]["answer_start"][0]
    assert record["context"][start:start + 5] == "PARIS"
    assert dropped == {"duplicate_id": 1, "empty_answer": 1, "no_answer": 1}


def test_find_span_ignoring_case_gives_offsets_of_the_text_itself():
    context = "İİ and PARIS."
    assert context.lower().find("paris") != context.find("PARIS")  # what the old search gave
    assert find_span(context, "paris", ignore_case=True) == context.find("PARIS")
    assert find_span(context, "paris") is None and find_span(context, "PARIS", 0, 8) is None


def test_musique_finds_an_answer_where_lower_casing_changes_lengths():
    context, bounds = musique_context([{"title": "T", "paragraph_text": "İİ and PARIS.", "is_supporting": True}])
    start, text = find_answer(context, "paris", bounds)
    assert text == "PARIS" and context[start:start + 5] == "PARIS"


def test_musique_convert_writes_exact_spans(tmp_path):
    path = tmp_path / "musique_dev.jsonl"
    path.write_text(json.dumps({"id": "2hop__1", "question": "Which?", "answer": "paris", "answer_aliases": [],
                                "answerable": True, "paragraphs": [{"idx": 0, "title": "T",
                                                                    "paragraph_text": "İİ and PARIS.",
                                                                    "is_supporting": True}]}) + "\n")
    written = cv.convert("musique", path, tmp_path / "out")
    record = json.loads(written["dev"].read_text())
    assert answer_in_context(record, 0)


def _mrqa(path, paragraphs, header=None, raw=()):
    header = {"header": {"dataset": "SQuAD", "split": "train"}} if header is None else header
    path.write_text("\n".join([json.dumps(header), *map(json.dumps, paragraphs), *raw]) + "\n")
    return path


def _paragraph(qid="q", text="France", span=(12, 17)):
    return {"context": "Paris is in France.", "qas": [
        {"qid": qid, "question": "Where?", "detected_answers": [{"text": text, "char_spans": [list(span)]}]}]}


def test_mrqa_drops_repeated_ids_and_empty_answers(tmp_path, capsys):
    path = _mrqa(tmp_path / "train.jsonl", [_paragraph("a"), _paragraph("a"), _paragraph("b", "", (0, 0))])
    written = cv.convert("mrqa", path, tmp_path / "out")
    assert [json.loads(line)["id"] for line in written["train"].read_text().splitlines()] == ["a"]
    assert "duplicate_id 1" in capsys.readouterr().err


@pytest.mark.parametrize("name, header, paragraph, words", [
    ("header-a-list", [{"dataset": "SQuAD"}], _paragraph(), "line 1: expected the MRQA header"),
    ("spans-an-integer", None, {**_paragraph(), "qas": [{"qid": "q", "question": "W?", "detected_answers": [
        {"text": "France", "char_spans": 12}]}]}, "no character span"),
    ("span-a-boolean", None, _paragraph(span=(True, 4)), "no character span"),
    ("answers-an-object", None, {**_paragraph(), "qas": [{"qid": "q", "question": "W?", "detected_answers": {}}]},
     "detected_answers"),
])
def test_mrqa_of_the_wrong_types_is_one_error_naming_the_file(tmp_path, name, header, paragraph, words):
    path = _mrqa(tmp_path / f"{name}.jsonl", [paragraph], header=header)
    with pytest.raises(BadInput, match=words) as info:
        cv.convert("mrqa", path, tmp_path / "out")
    assert str(path) in str(info.value)


@pytest.mark.parametrize("split_text, words", [
    ('{"dev": [0], "te', "not valid JSON"),
    (json.dumps({"dev": ["0"], "test": [1]}), "paragraph indices"),
    ('{"dev": ' + "[" * 100000 + "]" * 100000 + ', "test": [1]}', "nested too deeply"),
    (json.dumps([0, 1]), "expected a field 'dev'"),
])
def test_a_damaged_inhouse_split_names_itself(tmp_path, split_text, words):
    dev = _mrqa(tmp_path / "squad-dev.jsonl", [_paragraph("a"), _paragraph("b")],
                header={"header": {"dataset": "SQuAD", "split": "dev"}})
    split_file = tmp_path / "inhouse_split_squad.json"
    split_file.write_text(split_text)
    with pytest.raises(BadInput, match=words) as info:
        cv.convert("mrqa", dev, tmp_path / "out", inhouse_split=split_file)
    assert str(split_file) in str(info.value)
