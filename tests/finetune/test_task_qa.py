"""The QA task type: training targets and windows round trip to the gold answers, scores per
question type. Only the round trip tokenizes (with a tiny BERT's vocab); no model is trained here."""

from __future__ import annotations

import finetune_helpers
import pytest
import torch
from finetune_helpers import qa_examples, write_data

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


def test_qa_gold_logits_give_back_the_gold_answers(tmp_path, tiny_model):
    """Windows, offsets, training targets and post-processing agree: logits peaked on each
    window's training target reproduce the gold answers exactly."""
    from transformers import AutoTokenizer

    from linkbert.finetune.data import load_data
    from linkbert.finetune.tasks import make_task

    data = write_data(tmp_path / "qa", {"dev": qa_examples(6, "dv")})
    task = make_task("qa", max_length=40, doc_stride=16, n_best=20, max_answer_length=30, metric="")
    split = task.setup(load_data(data, "qa", need_train=False), None)["dev"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    targets = task.encode(split, tokenizer, training=True)  # same windows, with target positions
    features = task.encode(split, tokenizer, training=False)
    assert len(targets) == len(features) > 2 * len(split)
    outputs = []
    for target in targets:
        start, end = [torch.zeros(len(target["input_ids"])).numpy() for _ in range(2)]
        if target["start_positions"]:  # 0: the answer is not in this window
            start[target["start_positions"]], end[target["end_positions"]] = 10.0, 10.0
        outputs.append((start, end))
    predictions = task.decode(split, features, outputs)
    assert predictions == {r["id"]: r["answers"]["text"][0] for r in split.records}
    assert task.score(split, predictions)["exact_match"] == 100.0


def qa_record(qid: str, answer: str, kind: str | None) -> dict:
    context = f"Some words, then {answer}."
    record = {"id": qid, "question": "Which?", "context": context,
              "answers": {"answer_start": [context.index(answer)], "text": [answer]}}
    return record if kind is None else {**record, "type": kind}


def qa_score(records: list[dict], predictions: dict[str, str]) -> dict:
    from pathlib import Path

    from linkbert.finetune.data import Split
    from linkbert.finetune.tasks import make_task

    task = make_task("qa", max_length=40, doc_stride=16, n_best=20, max_answer_length=30, metric="")
    return task.score(Split("test", Path("test.json"), records, list(range(1, len(records) + 1))), predictions)


def test_qa_scores_per_question_type_beside_the_overall_figures():
    records = [qa_record("b1", "Paris", "bridge"), qa_record("b2", "the red house", "bridge"),
               qa_record("b3", "1922", "bridge"), qa_record("c1", "Alice Smith", "comparison"),
               qa_record("c2", "Bob", "comparison")]
    predictions = {"b1": "paris",           # EM 1 (normalised), F1 1
                   "b2": "red house door",  # EM 0, F1 2*(2/3*1)/(2/3+1) = 0.8
                   "c1": "Alice",           # EM 0, F1 2*(1*0.5)/1.5 = 2/3
                   "c2": "Bob"}             # EM 1, F1 1; b3 unanswered: 0
    scores = qa_score(records, predictions)
    assert scores["by_type"]["bridge"] == pytest.approx({"exact_match": 100 / 3, "f1": 100 * 1.8 / 3, "n": 3})
    assert scores["by_type"]["comparison"] == pytest.approx({"exact_match": 50.0, "f1": 100 * (5 / 3) / 2, "n": 2})
    assert list(scores["by_type"]) == ["bridge", "comparison"]
    assert scores["exact_match"] == pytest.approx(40.0)  # overall: 2 of 5
    assert scores["main"] == scores["f1"] == pytest.approx(100 * (1 + 0.8 + 2 / 3 + 1) / 5)


def test_qa_scores_without_types_have_no_per_type_table():
    records = [qa_record("q1", "Paris", None), qa_record("q2", "Rome", "")]
    scores = qa_score(records, {"q1": "Paris", "q2": "Milan"})
    assert "by_type" not in scores and scores["main"] == 50.0
    typed = qa_score(records + [qa_record("q3", "Oslo", "bridge")], {"q3": "Oslo"})
    assert typed["by_type"] == {"bridge": {"exact_match": 100.0, "f1": 100.0, "n": 1}}  # untyped: overall only
    assert typed["f1"] == pytest.approx(100 / 3)
