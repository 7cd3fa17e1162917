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

from linkbert.finetune.tasks import first_subtoken_labels, first_subtoken_positions
from linkbert.objectives import IGNORE_INDEX as IGNORE

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


# ---------------------------------------------------------------- QA training targets


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
