"""The four task types: labels, features, model head, predictions and their metric.

Each task type is a ``Task`` subclass used by ``run.py`` in this order:

0. ``make_task(name, **settings)``: the task type with the settings it reads, as flat
   keyword-only arguments of its constructor; it never sees the whole run's settings.
1. ``setup(splits, model_config)``: the label set (sorted unique training labels, as the
   released scripts; from the fine-tuned model's ``id2label`` when evaluating only) and the
   checks across splits (a dev/test label never seen in training, bad QA answer spans).
2. ``model_kwargs()``: what ``AutoModelFor*.from_pretrained`` needs for the head.
3. ``encode(split, tokenizer, training)``: tokenized features (several per example for QA).
4. ``collate(features)``: a padded batch of tensors (dynamic padding, per batch).
5. ``outputs(model_output, batch)``: per-feature numpy logits, trimmed of padding.
6. ``decode(split, features, outputs)``: ``{example id: prediction}``.
7. ``score(split, predictions)``: metric values plus ``main``, the headline on 0–100.
"""

from __future__ import annotations

import abc
import logging
from collections import Counter

import numpy as np
import torch
from transformers import (
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from linkbert.errors import BadInput, ConfigError
from linkbert.finetune.data import NUM_CHOICES, Split
from linkbert.finetune.qa import (
    answer_in_context,
    answer_token_span,
    postprocess_qa_predictions,
    training_span_problem,
)
from linkbert.metrics import scores_by_type
from linkbert.objectives import IGNORE_INDEX

log = logging.getLogger("linkbert.finetune")


class TaskSetupError(ConfigError):
    """The task cannot run with these settings (metric, model head); not a data error."""


# ----------------------------------------------------------------------------------------
# shared helpers


def pad_sequences(rows: list[list], value) -> torch.Tensor:
    """Right-pad lists (or lists of lists, for multiple choice) to one rectangular tensor."""
    if rows and isinstance(rows[0][0], list):
        flat = [choice for row in rows for choice in row]
        return pad_sequences(flat, value).view(len(rows), len(rows[0]), -1)
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows])


def collate_inputs(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Pad the model inputs present in ``features`` (labels are added by each task)."""
    batch = {"input_ids": pad_sequences([f["input_ids"] for f in features], pad_id),
             "attention_mask": pad_sequences([f["attention_mask"] for f in features], 0)}
    if "token_type_ids" in features[0]:
        batch["token_type_ids"] = pad_sequences([f["token_type_ids"] for f in features], 0)
    return batch


def split_encoding(encoding, n: int) -> list[dict]:
    """A batch encoding as one dict of input lists per row."""
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoding]
    return [{k: encoding[k][i] for k in keys} for i in range(n)]


def percent(value: float) -> float:
    """A 0–1 score on the 0–100 scale of ``main`` (what the paper's tables report)."""
    return 100.0 * float(value)


def labels_from_model(model_config, model: str) -> list[str]:
    """The label names a fine-tuned model was saved with (``id2label``), for evaluation only."""
    id2label = {int(k): v for k, v in (model_config.id2label or {}).items()}
    names = [id2label[i] for i in range(len(id2label))]
    if not names or all(name == f"LABEL_{i}" for i, name in enumerate(names)):
        raise TaskSetupError(f"{model} has no label names (id2label is {names}): evaluating "
                             "without training needs a model fine-tuned by `linkbert finetune`")
    return names


def check_known_labels(split: Split, values_per_record, known: set, what: str) -> None:
    """Every label of ``split`` must be one the model was trained on."""
    for index, values in enumerate(values_per_record):
        unknown = sorted({str(v) for v in values} - known)
        if unknown:
            raise BadInput(split.path, split.where(index), "unseen_label",
                           f"{what} {', '.join(map(repr, unknown))} not in the training labels "
                           f"({', '.join(sorted(known))}): the model has no output for it")


class Task(abc.ABC):
    """Base of the task types; see the module docstring for the order of calls.

    ``max_length``: tokens per input; ``metric``: one of ``metrics`` ("": the first).
    """

    name = ""
    metrics: tuple[str, ...] = ()  # allowed metric names; the first is the default
    default_max_length = 512  # tokens per input in the released scripts
    model_class = None

    def __init__(self, *, max_length: int, metric: str):
        self.metric = check_metric(self.name, metric)
        self.max_length = max_length
        self.stats: dict = {}  # counts worth reporting in metrics.json (skipped examples, ...)
        self.pad_id = 0  # the tokenizer's, set by ``encode`` (which always runs before ``collate``)

    def setup(self, splits: dict[str, Split], model_config) -> dict[str, Split]:
        """Labels and checks across splits; may drop unusable training examples."""
        return splits

    def model_kwargs(self) -> dict:
        """Head settings for ``from_pretrained`` (number of labels, their names, problem type)."""
        return {}

    @abc.abstractmethod
    def encode(self, split: Split, tokenizer, training: bool) -> list[dict]:
        """Tokenized features of a split (with targets when ``training``)."""

    @abc.abstractmethod
    def collate(self, features: list[dict]) -> dict[str, torch.Tensor]:
        """A padded batch of model inputs (and targets)."""

    def outputs(self, model_output, batch) -> list:
        """One logits row per feature (seqcls, mc); token tasks override this."""
        return list(model_output.logits.float().cpu().numpy())

    @abc.abstractmethod
    def decode(self, split: Split, features: list[dict], outputs: list) -> dict:
        """``{example id: prediction}`` from the per-feature outputs."""

    @abc.abstractmethod
    def score(self, split: Split, predictions: dict) -> dict:
        """Metric values of the predictions against the split's gold labels, plus ``main``."""


# ----------------------------------------------------------------------------------------
# seqcls


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


# ----------------------------------------------------------------------------------------
# tokcls


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


# ----------------------------------------------------------------------------------------
# qa


class QA(Task):
    """Extractive QA over windows of ``max_length`` tokens, ``doc_stride`` apart; answers from
    the ``n_best`` start/end candidates of each window, at most ``max_answer_length`` tokens."""

    name = "qa"
    metrics = ("squad",)
    default_max_length = 384
    model_class = AutoModelForQuestionAnswering

    def __init__(self, *, max_length: int, metric: str, doc_stride: int, n_best: int, max_answer_length: int):
        super().__init__(max_length=max_length, metric=metric)
        self.doc_stride, self.n_best, self.max_answer_length = doc_stride, n_best, max_answer_length

    def setup(self, splits, model_config):
        for name, split in splits.items():
            splits[name] = self._check_spans(split, skip=(name == "train"))
        return splits

    def _check_spans(self, split: Split, skip: bool) -> Split:
        """Training (``skip``): drop and count, by reason, the examples without a usable span
        (:func:`training_span_problem`); count those kept whose span text differs from their
        answer text. Evaluation compares answer texts only: every example is kept, and those
        with an answer that is not at its ``answer_start`` are counted."""
        if skip:
            return self._usable_for_training(split)
        bad = 0
        for index, record in enumerate(split.records):
            texts = record["answers"]["text"]
            if not texts:
                raise BadInput(split.path, split.where(index), "bad_field",
                               "no gold answers: this question cannot be scored")
            bad += not all(answer_in_context(record, k) for k in range(len(texts)))
        self.stats[f"{split.name}_answer_not_in_context"] = bad
        if bad:
            log.warning("%s: %d example(s) with an answer span not in the context (kept: scoring uses the "
                        "answer texts)", split.path, bad)
        return split

    def _usable_for_training(self, split: Split) -> Split:
        keep, skipped, differs = [], Counter(), 0
        for index, record in enumerate(split.records):
            problem = training_span_problem(record)
            if problem:
                skipped[problem] += 1
                continue
            differs += not answer_in_context(record, 0)
            keep.append(index)
        self.stats[f"{split.name}_skipped"] = dict(sorted(skipped.items()))
        self.stats[f"{split.name}_answer_text_differs_kept"] = differs
        if skipped:
            log.warning("%s: %d training example(s) skipped without a usable answer span (%s)", split.path,
                        sum(skipped.values()), ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
        if differs:
            log.info("%s: %d training example(s) whose answer text differs from the context at its span: "
                     "trained on the span, as the released code does", split.path, differs)
        if not keep:
            raise BadInput(split.path, "", "empty_split", "no training example has a usable answer span")
        if len(keep) == len(split):
            return split
        return Split(split.name, split.path, [split.records[i] for i in keep], [split.lines[i] for i in keep])

    def encode(self, split, tokenizer, training):
        if tokenizer.padding_side != "right":
            raise TaskSetupError("QA windows assume the question comes first (a right-padding tokenizer)")
        self.pad_id = tokenizer.pad_token_id
        records = split.records
        try:
            enc = tokenizer([r["question"].lstrip() for r in records], [r["context"] for r in records],
                            truncation="only_second", max_length=self.max_length,
                            stride=self.doc_stride, return_overflowing_tokens=True,
                            return_offsets_mapping=True)
        except Exception as e:  # the Rust tokenizer's complaint, e.g. question + stride too long
            raise TaskSetupError(f"{split.path}: cannot cut contexts into windows of max_length="
                                 f"{self.max_length}, doc_stride={self.doc_stride}: {e}") from None
        windows = enc["overflow_to_sample_mapping"]
        features = split_encoding(enc, len(windows))
        for j, (feature, example_index) in enumerate(zip(features, windows)):
            sequence_ids = enc.sequence_ids(j)
            offsets = enc["offset_mapping"][j]
            feature["example_index"] = example_index
            if training:
                answers = records[example_index]["answers"]
                start_char = answers["answer_start"][0]
                cls_index = feature["input_ids"].index(tokenizer.cls_token_id)
                feature["start_positions"], feature["end_positions"] = answer_token_span(
                    offsets, sequence_ids, start_char, start_char + len(answers["text"][0]), cls_index)
            else:  # only context tokens may be part of a predicted span
                feature["offset_mapping"] = [tuple(o) if s == 1 else None for o, s in zip(offsets, sequence_ids)]
        log.info("%s: %d examples -> %d windows", split.name, len(records), len(features))
        return features

    def collate(self, features):
        batch = collate_inputs(features, self.pad_id)
        if "start_positions" in features[0]:
            batch["start_positions"] = torch.tensor([f["start_positions"] for f in features])
            batch["end_positions"] = torch.tensor([f["end_positions"] for f in features])
        return batch

    def outputs(self, model_output, batch):
        start = model_output.start_logits.float().cpu().numpy()
        end = model_output.end_logits.float().cpu().numpy()
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [(s[:n], e[:n]) for s, e, n in zip(start, end, lengths)]

    def decode(self, split, features, outputs):
        return postprocess_qa_predictions(
            split.records, features, [o[0] for o in outputs], [o[1] for o in outputs],
            n_best=self.n_best, max_answer_length=self.max_answer_length)

    def score(self, split, predictions):
        """SQuAD EM and F1 (0–100) over every question, ``main`` = F1 (the paper reports F1); when
        records carry a question ``type`` (HotpotQA: bridge / comparison), also ``by_type``:
        ``{type: {"exact_match", "f1", "n"}}`` over the questions of each type (records without
        a type count in the overall figures only)."""
        from linkbert import metrics

        golds = {str(r["id"]): list(r["answers"]["text"]) for r in split.records}
        result = dict(metrics.squad_scores(golds, predictions))
        by_type = scores_by_type(split.records, predictions)
        if by_type:
            result["by_type"] = by_type
        return {**result, "main": float(result["f1"])}  # already 0–100


# ----------------------------------------------------------------------------------------
# mc


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


TASK_TYPES = {cls.name: cls for cls in (SeqCls, TokCls, QA, MultipleChoice)}


def make_task(task: str, **settings) -> Task:
    """The ``Task`` of type ``task``; ``settings`` are its constructor's keyword arguments."""
    return TASK_TYPES[task](**settings)


def check_metric(task: str, metric: str) -> str:
    """``metric``, or the task type's default for "", if the task type scores with it."""
    metrics = TASK_TYPES[task].metrics
    if metric and metric not in metrics:
        raise TaskSetupError(f"metric {metric!r} is not one for {task}; choose from {', '.join(metrics)}")
    return metric or metrics[0]


def default_metric(task: str) -> str:
    return TASK_TYPES[task].metrics[0]


def default_max_length(task: str) -> int:
    """Tokens per input when ``max_length`` is 0: the released value of the task type."""
    return TASK_TYPES[task].default_max_length

