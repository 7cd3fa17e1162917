"""The classification task types: a label unseen in training is an error naming its line."""

from __future__ import annotations

import finetune_helpers
from finetune_helpers import fails_with, pair_examples, splits_of, write_data

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


def test_label_unseen_in_training(tmp_path, tiny_model, capsys):
    splits = splits_of(pair_examples)
    splits["test"][1]["label"] = "perhaps"
    data = write_data(tmp_path / "d", splits)
    err = fails_with(capsys, "--task", "seqcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "test.json, line 2" in err and "'perhaps' not in the training labels" in err
