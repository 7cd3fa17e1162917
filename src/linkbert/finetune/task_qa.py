"""The extractive QA task type, ``qa``: windows over long contexts, answer spans as training
targets, answers back from start/end logits (``qa.py``), SQuAD EM/F1."""

from __future__ import annotations

import logging
from collections import Counter

import torch
from transformers import AutoModelForQuestionAnswering

from linkbert.errors import BadInput
from linkbert.finetune.data import Split
from linkbert.finetune.qa import (
    answer_in_context,
    answer_token_span,
    postprocess_qa_predictions,
    training_span_problem,
)
from linkbert.finetune.task_base import Task, TaskSetupError, collate_inputs, split_encoding
from linkbert.metrics import scores_by_type

log = logging.getLogger("linkbert.finetune")


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
