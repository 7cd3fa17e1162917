"""What every task type is: a ``Task`` subclass, and the helpers the four share.

The task types (``task_classification``: seqcls and mc; ``task_tagging``: tokcls; ``task_qa``:
qa; ``tasks``: all four by name) give labels, features, model head, predictions and their
metric. ``run.py`` uses a task in this order:

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

import torch

from linkbert.errors import BadInput, ConfigError
from linkbert.finetune.data import Split


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
        self.metric = self.checked_metric(metric)
        self.max_length = max_length
        self.stats: dict = {}  # counts worth reporting in metrics.json (skipped examples, ...)
        self.pad_id = 0  # the tokenizer's, set by ``encode`` (which always runs before ``collate``)

    @classmethod
    def checked_metric(cls, metric: str) -> str:
        """``metric``, or the default (the first of ``metrics``) for "", if this task type scores with it."""
        if metric and metric not in cls.metrics:
            raise TaskSetupError(f"metric {metric!r} is not one for {cls.name}; choose from {', '.join(cls.metrics)}")
        return metric or cls.metrics[0]

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
