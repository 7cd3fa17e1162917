"""MuSiQue (multi-hop questions composed of single-hop ones, 2 to 4 hops) -> the QA format.

MuSiQue's JSON lines (``musique_ans_v1.0_{train,dev}.jsonl``, ``musique_full_…``): ``id``
(``2hop__…``, ``3hop1__…``, ``4hop3__…``: the hop count and composition), ``paragraphs``
(``[{idx, title, paragraph_text, is_supporting}]``, 20 of them), ``question``, ``answer``,
``answer_aliases``, ``answerable``.

Each answerable question becomes ``{"id", "question", "context", "answers": {"answer_start",
"text"}, "type"}``:

* context: MRQA's form, as for HotpotQA (``convert_qa.hotpotqa_context``): every paragraph as
  ``[PAR] [TLE] title [SEP] text``, in the given order, joined by spaces;
* answers: the answer and each alias that the context holds, each once, with the start of its first
  occurrence, looked for first in the supporting paragraphs (where the last hop's answer is) and
  then anywhere; exactly, else ignoring case, and then the text recorded is the context's own, so
  that every span is exact: ``context[start:start + len(text)] == text``;
* type: the hop count from the id (``2hop``, ``3hop``, ``4hop``), so that evaluation reports
  scores per hop count (``metrics.scores_by_type``) as it does HotpotQA's bridge/comparison.

Dropped and counted: unanswerable questions (``answerable: false``, MuSiQue-Full's contrast
questions: no span to learn; ``unanswerable``) and questions whose answer and aliases the context
holds nowhere (``answer_not_in_context``), and what ``convert_qa.usable_qa`` drops (a repeated
id). A line that is not MuSiQue's schema is a ``BadInput`` naming it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from linkbert.errors import BadInput
from linkbert.finetune.convert_io import iter_lines, json_line, require, split_from_name
from linkbert.finetune.convert_qa import find_span, usable_qa

HOPS = re.compile(r"^([2-9])hop")


def musique_context(paragraphs: list[dict]) -> tuple[str, list[tuple[int, int, bool]]]:
    """MRQA's context over MuSiQue's paragraphs, and each paragraph's (start, end, is_supporting)."""
    parts, bounds, offset = [], [], 0
    for paragraph in paragraphs:
        piece = f"[PAR] [TLE] {paragraph['title']} [SEP] {paragraph['paragraph_text'].strip()}"
        if parts:
            offset += 1  # the joining space
        bounds.append((offset, offset + len(piece), bool(paragraph.get("is_supporting"))))
        parts.append(piece)
        offset += len(piece)
    return " ".join(parts), bounds


def find_answer(context: str, answer: str, bounds: list[tuple[int, int, bool]]) -> tuple[int, str] | None:
    """(start, the context's text there) of ``answer``'s first occurrence: in the supporting
    paragraphs first, then anywhere; exactly, else ignoring case (``convert_qa.find_span``: the
    offset is the context's own even where lower-casing changes lengths); None if nowhere."""
    if not answer.strip():
        return None
    regions = [(start, end) for start, end, supporting in bounds if supporting] + [(0, len(context))]
    for ignore_case in (False, True):
        for start, end in regions:
            found = find_span(context, answer, start, end, ignore_case=ignore_case)
            if found is not None:
                return found, context[found:found + len(answer)]
    return None


def hop_type(example_id: str, path: Path, where: str) -> str:
    match = HOPS.match(example_id)
    if match is None:
        raise BadInput(path, where, "bad_field", f"id {example_id!r} does not start with the hop count (2hop, 3hop1, …)")
    return f"{match.group(1)}hop"


def musique_records(path: Path, split: str | None = None) -> tuple[dict[str, list[dict]], Counter]:
    """MuSiQue's JSON lines -> ``({split: qa records}, {reason: questions dropped})``; the split
    is ``split``, else the file name's (``…_dev.jsonl``)."""
    split = split_from_name(path, split)
    records, dropped = [], Counter()
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        where = f"line {number}"
        item = json_line(path, number, line)
        example_id = require(item, "id", str, path, where)
        kind = hop_type(example_id, path, where)
        question = require(item, "question", str, path, where).strip()
        paragraphs = require(item, "paragraphs", list, path, where)
        if not all(isinstance(p, dict) and isinstance(p.get("title"), str) and isinstance(p.get("paragraph_text"), str)
                   for p in paragraphs):
            raise BadInput(path, where, "bad_field", "paragraphs must be a list of {idx, title, paragraph_text, "
                                                     "is_supporting}")
        if item.get("answerable", True) is False:
            dropped["unanswerable"] += 1
            continue
        answer = require(item, "answer", str, path, where)
        aliases = item.get("answer_aliases") or []
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise BadInput(path, where, "bad_field", "answer_aliases must be a list of strings")
        context, bounds = musique_context(paragraphs)
        starts, texts = [], []
        for candidate in dict.fromkeys([answer, *aliases]):
            found = find_answer(context, candidate, bounds)
            if found is not None and found[1] not in texts:
                starts.append(found[0])
                texts.append(found[1])
        if not texts:
            dropped["answer_not_in_context"] += 1
            continue
        records.append({"id": example_id, "question": question, "context": context,
                        "answers": {"answer_start": starts, "text": texts}, "type": kind})
    records = usable_qa(records, dropped)
    if not records:
        raise BadInput(path, "", "empty_split", f"no answerable question with its answer in the context "
                                                f"({dict(dropped)} dropped)")
    return {split: records}, dropped
