"""The classification task types: ``seqcls`` (a label, several labels or a number per single
text or text pair) and ``mc`` (one of four choices); one prediction per example."""

from __future__ import annotations

import logging

import numpy as np
import torch
from transformers import AutoModelForMultipleChoice, AutoModelForSequenceClassification

from linkbert.errors import BadInput
from linkbert.finetune.data import NUM_CHOICES, Split
from linkbert.finetune.task_base import (
    Task,
    TaskSetupError,
    check_known_labels,
    collate_inputs,
    labels_from_model,
    percent,
    split_encoding,
)

log = logging.getLogger("linkbert.finetune")


class SeqCls(Task):
    """Single sentence or pair; multi-class, multi-label (list labels) or regression (floats)."""

    name = "seqcls"
    metrics = ("accuracy", "pearsonr", "PRF1", "hoc")
    model_class = AutoModelForSequenceClassification

    def __init__(self, *, max_length: int, metric: str, model: str):
        """``model``: the model's name, for error messages only."""
        super().__init__(max_length=max_length, metric=metric)
        self.model = model

    def setup(self, splits, model_config):
        if "train" in splits:
            self.kind, self.labels = self._labels_from_training(splits["train"])
        else:
            self.kind, self.labels = self._labels_from_model(model_config)
        self._check_metric()
        for name, split in splits.items():
            if name != "train":
                self._check_split(split)
        return splits

    def _labels_from_training(self, train: Split):
        values = [r["label"] for r in train.records]
        if any(isinstance(v, list) for v in values):
            width = len(next(v for v in values if isinstance(v, list)))
            for index, v in enumerate(values):
                if not isinstance(v, list) or len(v) != width:
                    raise BadInput(train.path, train.where(index), "bad_field",
                                   f"multi-label file: every label must be a list of {width} 0/1 values")
            return "multilabel", [str(i) for i in range(width)]
        if self.metric == "pearsonr" or any(isinstance(v, float) for v in values):
            for index, v in enumerate(values):
                if isinstance(v, str):
                    raise BadInput(train.path, train.where(index), "bad_field",
                                   f"regression file (numeric labels) with a string label {v!r}")
            return "regression", []
        labels = sorted({str(v) for v in values})
        if len(labels) == 1:
            log.warning("%s: every training label is %r: the classifier can only predict it", train.path, labels[0])
        return "classification", labels

    def _labels_from_model(self, model_config):
        problem = getattr(model_config, "problem_type", None)
        if problem == "regression":
            return "regression", []
        names = labels_from_model(model_config, self.model)
        return ("multilabel" if problem == "multi_label_classification" else "classification"), names

    def _check_metric(self):
        needs = {"regression": "pearsonr", "multilabel": "hoc"}.get(self.kind)
        if needs and self.metric != needs:
            raise TaskSetupError(f"{self.kind} labels need metric={needs} (got metric={self.metric})")
        if self.metric in ("pearsonr", "hoc") and needs != self.metric:
            raise TaskSetupError(f"metric={self.metric} needs "
                                 f"{'float' if self.metric == 'pearsonr' else 'list (multi-label)'} labels, "
                                 f"but the training labels are {self.kind}")

    def _check_split(self, split: Split):
        values = [r["label"] for r in split.records]
        if self.kind == "classification":
            check_known_labels(split, [[v] for v in values], set(self.labels), "label")
            return
        for index, v in enumerate(values):
            ok = (isinstance(v, list) and len(v) == len(self.labels)) if self.kind == "multilabel" \
                else isinstance(v, (int, float)) and not isinstance(v, bool)
            if not ok:
                expected = f"a list of {len(self.labels)} 0/1 values" if self.kind == "multilabel" else "a number"
                raise BadInput(split.path, split.where(index), "bad_field",
                               f"{self.kind} task: label should be {expected}, got {v!r}")

    def model_kwargs(self):
        if self.kind == "regression":
            return {"num_labels": 1, "problem_type": "regression"}
        problem = "multi_label_classification" if self.kind == "multilabel" else "single_label_classification"
        return {"num_labels": len(self.labels), "problem_type": problem,
                "id2label": dict(enumerate(self.labels)),
                "label2id": {name: i for i, name in enumerate(self.labels)}}

    def _target(self, label):
        if self.kind == "classification":
            return self.labels.index(str(label))
        if self.kind == "multilabel":
            return [float(v) for v in label]
        return float(label)

    def encode(self, split, tokenizer, training):
        self.pad_id = tokenizer.pad_token_id
        records = split.records
        pair = "sentence1" in records[0]
        first = [r["sentence1"] if pair else r["sentence"] for r in records]
        second = [r["sentence2"] for r in records] if pair else None
        enc = tokenizer(first, second, truncation=True, max_length=self.max_length)
        features = split_encoding(enc, len(records))
        for feature, record in zip(features, records):
            feature["labels"] = self._target(record["label"])
        return features

    def collate(self, features):
        batch = collate_inputs(features, self.pad_id)
        dtype = torch.long if self.kind == "classification" else torch.float
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=dtype)
        return batch

    def decode(self, split, features, outputs):
        ids = [str(r["id"]) for r in split.records]
        if self.kind == "regression":
            return {i: float(row[0]) for i, row in zip(ids, outputs)}
        if self.kind == "multilabel":  # each class independently: logit > 0 <=> sigmoid > 0.5
            return {i: [int(x > 0) for x in row] for i, row in zip(ids, outputs)}
        return {i: self.labels[int(np.argmax(row))] for i, row in zip(ids, outputs)}

    def score(self, split, predictions):
        from linkbert import metrics

        ids = [str(r["id"]) for r in split.records]
        gold = [r["label"] for r in split.records]
        pred = [predictions[i] for i in ids]
        if self.metric == "pearsonr":
            r = float(metrics.pearson([float(v) for v in gold], pred))
            return {"pearsonr": r, "main": percent(r)}
        if self.metric == "hoc":
            result = dict(metrics.hoc_f1(ids, np.array(gold, dtype=int), np.array(pred, dtype=int)))
            return {**result, "main": percent(result["f1"])}
        gold = [str(v) for v in gold]
        if self.metric == "PRF1":
            result = dict(metrics.prf1(gold, pred, negative="0"))
            return {**result, "main": percent(result["f1"])}
        acc = float(metrics.accuracy(gold, pred))
        return {"accuracy": acc, "main": percent(acc)}


class MultipleChoice(Task):
    """Four choices, each encoded as (sent1, sent2 + " " + ending); softmax over choices."""

    name = "mc"
    metrics = ("accuracy",)
    model_class = AutoModelForMultipleChoice

    def encode(self, split, tokenizer, training):
        self.pad_id = tokenizer.pad_token_id
        records = split.records
        first = [r["sent1"] for r in records for _ in range(NUM_CHOICES)]
        second = [f"{r['sent2']} {r[f'ending{k}']}" for r in records for k in range(NUM_CHOICES)]
        enc = tokenizer(first, second, truncation=True, max_length=self.max_length)
        flat = split_encoding(enc, len(first))
        features = []
        for i, record in enumerate(records):
            choices = flat[i * NUM_CHOICES:(i + 1) * NUM_CHOICES]
            feature = {k: [c[k] for c in choices] for k in choices[0]}
            feature["labels"] = record["label"]
            features.append(feature)
        return features

    def collate(self, features):
        batch = collate_inputs(features, self.pad_id)
        batch["labels"] = torch.tensor([f["labels"] for f in features])
        return batch

    def decode(self, split, features, outputs):
        return {str(r["id"]): int(np.argmax(row)) for r, row in zip(split.records, outputs)}

    def score(self, split, predictions):
        from linkbert import metrics

        acc = float(metrics.accuracy([r["label"] for r in split.records],
                                     [predictions[str(r["id"])] for r in split.records]))
        return {"accuracy": acc, "main": percent(acc)}
