"""The task types: QA training targets and windows, first-sub-token labels, labels unseen in
training. Only the QA round trip tokenizes (with a tiny BERT's vocab); no model is trained here."""

from __future__ import annotations

import finetune_helpers
import torch
from finetune_helpers import (
    fails_with,
    ner_examples,
    pair_examples,
    qa_examples,
    splits_of,
    write_data,
)

from linkbert.finetune.tasks import (
    answer_token_span,
    first_subtoken_labels,
    first_subtoken_positions,
    training_span_problem,
)
from linkbert.objectives import IGNORE_INDEX as IGNORE

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


# ---------------------------------------------------------------- QA training targets


def _qa(context: str, starts: list[int], texts: list[str]) -> dict:
    return {"context": context, "answers": {"answer_start": starts, "text": texts}}


def test_a_training_span_is_usable_when_it_lies_inside_the_context():
    context = "The Eiffel Tower is in Paris."
    assert training_span_problem(_qa(context, [23], ["Paris"])) is None
    assert training_span_problem(_qa(context, [23], ["PARIS"])) is None  # other case (TriviaQA): the span trains
    assert training_span_problem(_qa(context, [0], ["Paris"])) is None  # other text, inside: as the released code
    assert training_span_problem(_qa(context, [26], ["Paris"])) == "span_outside_context"
    assert training_span_problem(_qa(context, [-1], ["Paris"])) == "span_outside_context"
    assert training_span_problem(_qa(context, [3], [""])) == "empty_answer"
    assert training_span_problem(_qa(context, [], [])) == "no_answer"


def test_answer_token_span_inside_and_outside_the_window():
    # [CLS] q [SEP] alpha beta gamma [SEP]; sequence ids mark the context with 1
    offsets = [(0, 0), (0, 1), (0, 0), (0, 5), (6, 10), (11, 16), (0, 0)]
    sequence_ids = [None, 0, None, 1, 1, 1, None]
    assert answer_token_span(offsets, sequence_ids, 6, 16, cls_index=0) == (4, 5)  # "beta gamma"
    assert answer_token_span(offsets, sequence_ids, 0, 5, cls_index=0) == (3, 3)  # "alpha"
    # "delta" (17-22) is beyond this window: the target is CLS
    assert answer_token_span(offsets, sequence_ids, 17, 22, cls_index=0) == (0, 0)
    # an answer only partly inside the window is also CLS
    assert answer_token_span(offsets, sequence_ids, 11, 22, cls_index=0) == (0, 0)


def test_answer_inside_a_sub_token_word():
    # context "hyperparathyroidism x": one word in three sub-tokens
    offsets = [(0, 0), (0, 1), (0, 0), (0, 5), (5, 11), (11, 19), (20, 21), (0, 0)]
    sequence_ids = [None, 0, None, 1, 1, 1, 1, None]
    assert answer_token_span(offsets, sequence_ids, 0, 19, cls_index=0) == (3, 5)


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


# ---------------------------------------------------------------- token classification


def test_label_on_the_first_sub_token_only():
    # [CLS] brca1 -> br ##ca ##1, "is", "secreted" -> se ##creted, [SEP]
    word_ids = [None, 0, 0, 0, 1, 2, 2, None]
    assert first_subtoken_labels(word_ids, [7, 8, 9]) == [IGNORE, 7, IGNORE, IGNORE, 8, 9, IGNORE, IGNORE]
    assert first_subtoken_positions(word_ids) == {0: 1, 1: 4, 2: 5}


def test_words_cut_by_truncation_have_no_position():
    word_ids = [None, 0, 1, 1, None]  # word 2 did not fit
    assert first_subtoken_labels(word_ids, [1, 2, 3]) == [IGNORE, 1, 2, IGNORE, IGNORE]
    assert 2 not in first_subtoken_positions(word_ids)


# ---------------------------------------------------------------- labels seen in training


def test_label_unseen_in_training(tmp_path, tiny_model, capsys):
    splits = splits_of(pair_examples)
    splits["test"][1]["label"] = "perhaps"
    data = write_data(tmp_path / "d", splits)
    err = fails_with(capsys, "--task", "seqcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "test.json, line 2" in err and "'perhaps' not in the training labels" in err
    splits = splits_of(ner_examples)
    splits["dev"][0]["ner_tags"][0] = "B-Chemical"
    data = write_data(tmp_path / "n", splits)
    err = fails_with(capsys, "--task", "tokcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "dev.json, line 1" in err and "'B-Chemical'" in err
