"""Reading a fine-tuning data folder: ``DIR/{train,dev,test}.json`` in JSON-lines form.

The format is the one the released LinkBERT preprocessing writes (SPEC §3): one JSON object
per line, fields depending on the task type. Every problem is reported as a ``BadInput``
naming the file and line, because the usual mistakes (a tokcls folder given to ``--task
seqcls``, a converter that dropped a field, an empty file) are otherwise only visible as a
``KeyError`` deep inside tokenization.

Checks done here are the ones that need only the file itself: JSON syntax, the record shape
(which task it belongs to), required fields and their types, unique ids, a non-empty split.
Checks across splits (labels unseen in training) and QA answer spans are the task types'
(``task_classification.py``, ``task_tagging.py``, ``task_qa.py``), which know what a label is.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from linkbert.errors import BadInput
from linkbert.json_input import decode, loads

SPLITS = ("train", "dev", "test")
TASKS = ("seqcls", "tokcls", "qa", "mc")
NUM_CHOICES = 4


@dataclass
class Split:
    """One split file: its records and, for each record, the 1-based line it came from."""

    name: str
    path: Path
    records: list[dict]
    lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def where(self, index: int) -> str:
        """The ``location`` of record ``index`` for a ``BadInput``."""
        return f"line {self.lines[index]}"

    def subset(self, n: int, seed: int = 0) -> "Split":
        """``n`` records drawn at random with ``seed``, in file order (``n < 0``: all of them).

        Random rather than the first ``n``: released files can be sorted by label (PubMedQA
        comes in blocks of yes, then no, then maybe), so a head would hold one class only.
        """
        if n < 0 or n >= len(self.records):
            return self
        keep = sorted(random.Random(seed).sample(range(len(self.records)), n))
        return Split(self.name, self.path, [self.records[i] for i in keep], [self.lines[i] for i in keep])


def guess_task(record: dict) -> str | None:
    """Which task type a record's fields belong to, or None when no type fits."""
    if "tokens" in record or "ner_tags" in record:
        return "tokcls"
    if "ending0" in record or "sent1" in record:
        return "mc"
    if "context" in record or "answers" in record:
        return "qa"
    if "sentence" in record or "sentence1" in record:
        return "seqcls"
    return None


def _require(record: dict, names, split: Split, index: int) -> None:
    missing = [n for n in names if n not in record]
    if missing:
        raise BadInput(split.path, split.where(index), "missing_field",
                       f"missing field(s) {', '.join(missing)} (record has {', '.join(sorted(record))})")


def _bad_type(split: Split, index: int, name: str, expected: str, value) -> BadInput:
    return BadInput(split.path, split.where(index), "bad_field",
                    f"field {name!r} should be {expected}, got {type(value).__name__} {str(value)[:60]!r}")


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_seqcls(record: dict, split: Split, index: int, pair: bool) -> None:
    _require(record, ["id", "sentence1", "sentence2", "label"] if pair else ["id", "sentence", "label"],
             split, index)
    for name in ("sentence1", "sentence2") if pair else ("sentence",):
        if not isinstance(record[name], str):
            raise _bad_type(split, index, name, "a string", record[name])
    label = record["label"]
    ok_scalar = isinstance(label, (str, int, float)) and not isinstance(label, bool)
    ok_list = (isinstance(label, list) and len(label) > 0
               and all(v in (0, 1) and not isinstance(v, bool) for v in label))
    if not (ok_scalar or ok_list):
        raise _bad_type(split, index, "label", "a string, a number or a non-empty list of 0/1", label)


def _check_tokcls(record: dict, split: Split, index: int) -> None:
    _require(record, ["id", "tokens", "ner_tags"], split, index)
    tokens, tags = record["tokens"], record["ner_tags"]
    if not _is_str_list(tokens):
        raise _bad_type(split, index, "tokens", "a list of strings", tokens)
    if not _is_str_list(tags):
        raise _bad_type(split, index, "ner_tags", "a list of tag strings (B-X, I-X, O)", tags)
    if len(tokens) != len(tags):
        raise BadInput(split.path, split.where(index), "bad_field",
                       f"{len(tokens)} tokens but {len(tags)} ner_tags")


def _check_qa(record: dict, split: Split, index: int) -> None:
    _require(record, ["id", "question", "context", "answers"], split, index)
    for name in ("question", "context"):
        if not isinstance(record[name], str):
            raise _bad_type(split, index, name, "a string", record[name])
    answers = record["answers"]
    if not isinstance(answers, dict) or "text" not in answers or "answer_start" not in answers:
        raise _bad_type(split, index, "answers", "an object {text: [...], answer_start: [...]}", answers)
    texts, starts = answers["text"], answers["answer_start"]
    if not _is_str_list(texts) or not isinstance(starts, list) or len(texts) != len(starts):
        raise BadInput(split.path, split.where(index), "bad_field",
                       "answers.text must be a list of strings and answers.answer_start a list of the same length")
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in starts):
        raise _bad_type(split, index, "answers.answer_start", "a list of integers", starts)


def _check_mc(record: dict, split: Split, index: int) -> None:
    endings = [f"ending{i}" for i in range(NUM_CHOICES)]
    _require(record, ["id", "sent1", "sent2", *endings, "label"], split, index)
    for name in ["sent1", "sent2", *endings]:
        if not isinstance(record[name], str):
            raise _bad_type(split, index, name, "a string", record[name])
    label = record["label"]
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < NUM_CHOICES:
        raise _bad_type(split, index, "label", f"an integer 0..{NUM_CHOICES - 1}", label)


def check_record(record, task: str, split: Split, index: int, pair: bool) -> None:
    """Raise ``BadInput`` unless ``record`` is a well-formed ``task`` record."""
    if not isinstance(record, dict):
        raise BadInput(split.path, split.where(index), "bad_record",
                       f"expected a JSON object per line, got {type(record).__name__}")
    kind = guess_task(record)
    if kind != task:
        found = f"a {kind} record" if kind else "no known task's fields"
        raise BadInput(split.path, split.where(index), "wrong_task",
                       f"--task {task} expects {task} records, but this line has {found} "
                       f"(fields: {', '.join(sorted(record))})")
    if task == "seqcls":
        _check_seqcls(record, split, index, pair)
    elif task == "tokcls":
        _check_tokcls(record, split, index)
    elif task == "qa":
        _check_qa(record, split, index)
    else:
        _check_mc(record, split, index)
    if not isinstance(record["id"], (str, int)) or isinstance(record["id"], bool):
        raise _bad_type(split, index, "id", "a string or an integer", record["id"])


def read_jsonl(path: Path, name: str) -> Split:
    """Parse one JSON-lines file (blank lines are skipped) without checking its records."""
    split = Split(name, path, [], [])
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            line = decode(raw, path, f"line {line_no}")
            if not line.strip():
                continue
            split.records.append(loads(line, path, f"line {line_no}"))
            split.lines.append(line_no)
    return split


def load_split(path: Path, name: str, task: str) -> Split:
    """Read and check one split file of a ``task`` data folder."""
    split = read_jsonl(path, name)
    if not split.records:
        raise BadInput(path, "", "empty_split", f"the {name} split has no records")
    # the first record fixes single-sentence vs pair for seqcls; mixing them is an error
    pair = task == "seqcls" and isinstance(split.records[0], dict) and "sentence1" in split.records[0]
    seen: dict = {}
    for index, record in enumerate(split.records):
        check_record(record, task, split, index, pair)
        rid = str(record["id"])
        if rid in seen:
            raise BadInput(path, split.where(index), "duplicate_id",
                           f"id {rid!r} already used on line {split.lines[seen[rid]]}: "
                           "predictions are keyed by id, so ids must be unique within a split")
        seen[rid] = index
    return split


def load_data(data_dir: str | Path, task: str, *, need_train: bool) -> dict[str, Split]:
    """The splits present in ``data_dir`` (``train.json``, ``dev.json``, ``test.json``), checked.

    ``need_train``: training was requested, so a missing ``train.json`` is an error (some
    released tasks ship without one, e.g. DDI, BC2GM and MedQA in the shared copy). Without
    training, at least one of dev/test must be there to evaluate on.
    """
    data_dir = Path(data_dir)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if not data_dir.is_dir():
        raise BadInput(data_dir, "", "missing_path", "data folder not found", fatal=True)
    splits = {name: load_split(data_dir / f"{name}.json", name, task)
              for name in SPLITS if (data_dir / f"{name}.json").is_file()}
    if need_train and "train" not in splits:
        raise BadInput(data_dir / "train.json", "", "missing_split",
                       "training was requested but the folder has no train.json "
                       f"(present: {', '.join(sorted(splits)) or 'nothing'}); "
                       "use --eval-only to evaluate an already fine-tuned model")
    if not ({"dev", "test"} & set(splits)):
        raise BadInput(data_dir, "", "missing_split", "no dev.json or test.json to evaluate on")
    return splits
