"""The token classification task type: the label on a word's first sub-token, words cut by
truncation, tags unseen in training."""

from __future__ import annotations

import finetune_helpers
from finetune_helpers import fails_with, ner_examples, splits_of, write_data

from linkbert.finetune.task_tagging import first_subtoken_labels, first_subtoken_positions
from linkbert.objectives import IGNORE_INDEX as IGNORE

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


def test_label_on_the_first_sub_token_only():
    # [CLS] brca1 -> br ##ca ##1, "is", "secreted" -> se ##creted, [SEP]
    word_ids = [None, 0, 0, 0, 1, 2, 2, None]
    assert first_subtoken_labels(word_ids, [7, 8, 9]) == [IGNORE, 7, IGNORE, IGNORE, 8, 9, IGNORE, IGNORE]
    assert first_subtoken_positions(word_ids) == {0: 1, 1: 4, 2: 5}


def test_words_cut_by_truncation_have_no_position():
    word_ids = [None, 0, 1, 1, None]  # word 2 did not fit
    assert first_subtoken_labels(word_ids, [1, 2, 3]) == [IGNORE, 1, 2, IGNORE, IGNORE]
    assert 2 not in first_subtoken_positions(word_ids)


def test_tag_unseen_in_training(tmp_path, tiny_model, capsys):
    splits = splits_of(ner_examples)
    splits["dev"][0]["ner_tags"][0] = "B-Chemical"
    data = write_data(tmp_path / "n", splits)
    err = fails_with(capsys, "--task", "tokcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "dev.json, line 1" in err and "'B-Chemical'" in err
