"""The token classification task type, ``tokcls``: BIO tags per word (NER, PICO), the label on
each word's first sub-token."""

from __future__ import annotations

import logging

import numpy as np
from transformers import AutoModelForTokenClassification

from linkbert.finetune.task_base import (
    Task,
    check_known_labels,
    collate_inputs,
    labels_from_model,
    pad_sequences,
    percent,
    split_encoding,
)
from linkbert.objectives import IGNORE_INDEX

log = logging.getLogger("linkbert.finetune")


def first_subtoken_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """Label ids per sub-token: a word's label on its first sub-token, ``IGNORE_INDEX`` elsewhere.

    ``word_ids`` is the tokenizer's ``word_ids()`` (None for special tokens). Only the first
    sub-token carries the label (as the released ``run_ner``), so the model predicts one tag
    per word and later sub-tokens do not count twice in the loss.
    """
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORE_INDEX if word is None or word == previous else word_labels[word])
        previous = word
    return labels


def first_subtoken_positions(word_ids: list[int | None]) -> dict[int, int]:
    """``{word index: position of its first sub-token}`` for the words the window kept."""
    positions = {}
    for position, word in enumerate(word_ids):
        if word is not None and word not in positions:
            positions[word] = position
    return positions


class TokCls(Task):
    """BIO tagging with the label on the first sub-token of each word."""

    name = "tokcls"
    metrics = ("seqeval", "pico")
    model_class = AutoModelForTokenClassification

    def __init__(self, *, max_length: int, metric: str, model: str):
        """``model``: the model's name, for error messages only."""
        super().__init__(max_length=max_length, metric=metric)
        self.model = model

    def setup(self, splits, model_config):
        if "train" in splits:
            self.labels = sorted({t for r in splits["train"].records for t in r["ner_tags"]})
        else:
            self.labels = labels_from_model(model_config, self.model)
        for name, split in splits.items():
            if name != "train":
                check_known_labels(split, [r["ner_tags"] for r in split.records], set(self.labels), "tag")
        return splits

    def model_kwargs(self):
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)),
                "label2id": {name: i for i, name in enumerate(self.labels)}}

    def encode(self, split, tokenizer, training):
        self.pad_id = tokenizer.pad_token_id
        records = split.records
        enc = tokenizer([r["tokens"] for r in records], is_split_into_words=True,
                        truncation=True, max_length=self.max_length)
        features = split_encoding(enc, len(records))
        label_id = {name: i for i, name in enumerate(self.labels)}
        cut = 0
        for i, (feature, record) in enumerate(zip(features, records)):
            word_ids = enc.word_ids(i)
            feature["word_ids"] = word_ids
            feature["labels"] = first_subtoken_labels(word_ids, [label_id[t] for t in record["ner_tags"]])
            cut += len(record["tokens"]) - len(first_subtoken_positions(word_ids))
        if cut:
            # words cut by max_length (or with no sub-token at all) are predicted "O"
            log.info("%s: %d words beyond max_length or without sub-tokens get tag O", split.name, cut)
        self.stats[f"{split.name}_words_without_prediction"] = cut
        return features

    def collate(self, features):
        batch = collate_inputs(features, self.pad_id)
        batch["labels"] = pad_sequences([f["labels"] for f in features], IGNORE_INDEX)
        return batch

    def outputs(self, model_output, batch):
        logits = model_output.logits.float().cpu().numpy()
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [row[:n] for row, n in zip(logits, lengths)]

    def decode(self, split, features, outputs):
        predictions = {}
        for record, feature, logits in zip(split.records, features, outputs):
            tags = ["O"] * len(record["tokens"])
            for word, position in first_subtoken_positions(feature["word_ids"]).items():
                tags[word] = self.labels[int(np.argmax(logits[position]))]
            predictions[str(record["id"])] = tags
        return predictions

    def score(self, split, predictions):
        from linkbert import metrics

        gold = [r["ner_tags"] for r in split.records]
        pred = [predictions[str(r["id"])] for r in split.records]
        result = dict(metrics.pico_macro_f1(gold, pred) if self.metric == "pico" else metrics.seqeval_f1(gold, pred))
        return {**result, "main": percent(result["f1"])}
