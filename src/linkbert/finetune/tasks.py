"""The four task types by name (``seqcls``, ``tokcls``, ``qa``, ``mc``): what ``run.py`` and the
settings' checks ask of a task type before a task exists.

Each lives in its own module (``task_classification``, ``task_tagging``, ``task_qa``), all on
``task_base.Task``."""

from __future__ import annotations

from linkbert.finetune.task_base import Task
from linkbert.finetune.task_classification import MultipleChoice, SeqCls
from linkbert.finetune.task_qa import QA
from linkbert.finetune.task_tagging import TokCls

TASK_TYPES = {cls.name: cls for cls in (SeqCls, TokCls, QA, MultipleChoice)}


def make_task(task: str, **settings) -> Task:
    """The ``Task`` of type ``task``; ``settings`` are its constructor's keyword arguments."""
    return TASK_TYPES[task](**settings)


def check_metric(task: str, metric: str) -> str:
    """``metric``, or the task type's default for "", if the task type scores with it."""
    return TASK_TYPES[task].checked_metric(metric)


def default_metric(task: str) -> str:
    return TASK_TYPES[task].metrics[0]


def default_max_length(task: str) -> int:
    """Tokens per input when ``max_length`` is 0: the released value of the task type."""
    return TASK_TYPES[task].default_max_length
