"""Extractive QA datasets -> the released LinkBERT QA format ``{"id", "question", "context",
"answers": {"answer_start", "text"}}``: SQuAD v1.1, MRQA (with LinkBERT's in-house dev/test
split) and HotpotQA in the distractor setting (MRQA's context construction)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from linkbert.errors import BadInput, ConfigError
from linkbert.finetune.convert_io import (
    iter_lines,
    json_line,
    nonempty,
    require,
    split_from_name,
)

# MRQA header dataset (or file name) prefix -> our name, as in the in-house split files
_MRQA_NAMES = {"squad": "squad", "newsqa": "newsqa", "triviaqa": "triviaqa", "searchqa": "searchqa",
               "hotpotqa": "hotpot", "naturalquestions": "naturalqa"}



def _first_span(answer, context: str) -> tuple[int, int] | None:
    """The first ``char_spans`` entry of an MRQA answer (end inclusive) if it lies in the context."""
    spans = answer.get("char_spans") if isinstance(answer, dict) else None
    if not spans or not isinstance(spans[0], list) or len(spans[0]) != 2:
        return None
    start, end = spans[0]
    ok = isinstance(start, int) and isinstance(end, int) and 0 <= start <= end < len(context)
    return (start, end) if ok else None


def squad_records(path: Path) -> list[dict]:
    """Official SQuAD v1.1 JSON -> one qa record per question (title kept)."""
    try:
        dataset = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(path, "", "missing_file", "no such file", fatal=True) from None
    except json.JSONDecodeError as e:
        raise BadInput(path, f"line {e.lineno}", "malformed_json", e.msg) from None
    records = []
    for a, article in enumerate(require(dataset, "data", list, path, "")):
        for p, paragraph in enumerate(require(article, "paragraphs", list, path, f"data[{a}]")):
            where = f"data[{a}].paragraphs[{p}]"
            context = require(paragraph, "context", str, path, where)
            for q, qa in enumerate(require(paragraph, "qas", list, path, where)):
                record = _squad_question(qa, context, path, f"{where}.qas[{q}]")
                if "title" in article:
                    record["title"] = article["title"]
                records.append(record)
    return nonempty(records, path)


def _squad_question(qa: dict, context: str, path: Path, where: str) -> dict:
    texts, starts = [], []
    for i, answer in enumerate(require(qa, "answers", list, path, where)):
        text = require(answer, "text", str, path, f"{where}.answers[{i}]")
        start = require(answer, "answer_start", int, path, f"{where}.answers[{i}]")
        if context[start:start + len(text)] != text:
            raise BadInput(path, f"{where}.answers[{i}]", "answer_not_in_context",
                           f"{text!r} is not at character {start} of the context")
        texts.append(text)
        starts.append(start)
    return {"id": require(qa, "id", str, path, where),
            "question": require(qa, "question", str, path, where).strip(), "context": context,
            "answers": {"answer_start": starts, "text": texts}}


def _mrqa_paragraph(paragraph: dict, path: Path, number: int) -> list[dict]:
    where = f"line {number}"
    context = require(paragraph, "context", str, path, where)
    records = []
    for q, qa in enumerate(require(paragraph, "qas", list, path, where)):
        qid = qa.get("id", qa.get("qid")) if isinstance(qa, dict) else None
        if not isinstance(qid, str):
            raise BadInput(path, f"{where}, qas[{q}]", "missing_field", "expected a question 'qid' or 'id'")
        starts, texts = [], []
        for answer in require(qa, "detected_answers", list, path, f"{where}, qas[{q}]"):
            span = _first_span(answer, context)
            if span is None or not isinstance(answer.get("text"), str):
                raise BadInput(path, f"{where}, question {qid}", "answer_not_in_context",
                               f"answer {answer!r:.120} has no character span inside the "
                               f"{len(context)}-character context")
            starts.append(span[0])
            texts.append(answer["text"])
        if not texts:
            raise BadInput(path, f"{where}, question {qid}", "missing_answer", "no detected answer")
        records.append({"id": qid, "question": require(qa, "question", str, path, where).strip(),
                        "context": context, "answers": {"answer_start": starts, "text": texts}})
    return records


def read_mrqa(path: Path) -> tuple[dict, list[tuple[int, dict]]]:
    """An MRQA file: its header and its (line number, paragraph) list."""
    lines = iter_lines(path)
    first = next(lines, None)
    header = json_line(path, 1, first[1]).get("header") if first else None
    if not isinstance(header, dict):
        raise BadInput(path, "line 1", "missing_field", 'expected the MRQA header line {"header": {...}}')
    paragraphs = [(number, json_line(path, number, line)) for number, line in lines if line.strip()]
    return header, paragraphs


def mrqa_name(header: dict, path: Path) -> str:
    """Our dataset name from the MRQA header's dataset (or the file name): HotpotQA -> hotpot."""
    for candidate in (str(header.get("dataset", "")), path.name):
        key = re.sub(r"[^a-z]", "", candidate.lower())
        for prefix, name in _MRQA_NAMES.items():
            if key.startswith(prefix):
                return name
    raise ConfigError(f"{path}: cannot tell which MRQA dataset this is; give --name")


def _inhouse_split(split_path: Path, n_paragraphs: int) -> dict[str, list[int]]:
    try:
        split_info = json.loads(split_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(split_path, "", "missing_file", "no such file", fatal=True) from None
    indices = [i for key in ("dev", "test") for i in require(split_info, key, list, split_path, "")]
    if sorted(indices) != list(range(n_paragraphs)):  # the released script asserts the sizes add up
        raise BadInput(split_path, "", "split_mismatch",
                       f"dev+test indices do not cover the {n_paragraphs} paragraphs "
                       f"0..{n_paragraphs - 1} exactly once")
    return {"dev": split_info["dev"], "test": split_info["test"]}


def mrqa_splits(path: Path, inhouse_split: Path | None, name: str) -> dict[str, list[dict]]:
    """MRQA train file -> train; MRQA dev file -> in-house dev and test halves."""
    header, paragraphs = read_mrqa(path)
    if header.get("split") == "train":
        chosen = {"train": range(len(paragraphs))}
    else:
        if inhouse_split is None:
            raise ConfigError(f"{path}: an MRQA dev file needs --inhouse-split (inhouse_split_{name}.json)")
        if inhouse_split.is_dir():
            inhouse_split = inhouse_split / f"inhouse_split_{name}.json"
        chosen = _inhouse_split(inhouse_split, len(paragraphs))
    out = {}
    for split, indices in chosen.items():
        out[split] = [r for i in indices for r in _mrqa_paragraph(paragraphs[i][1], path, paragraphs[i][0])]
        nonempty(out[split], path)
    return out


def read_mrqa_header(path: Path) -> dict:
    for number, line in iter_lines(path):
        header = json_line(path, number, line).get("header")
        if isinstance(header, dict):
            return header
        break
    raise BadInput(path, "line 1", "missing_field", 'expected the MRQA header line {"header": {...}}')


# ---------------------------------------------------------------- HotpotQA (multi-hop)

HOTPOT_SPLITS = {"train": "train", "dev": "dev", "test": "test"}


def hotpotqa_context(paragraphs: list) -> str:
    """MRQA's context for a HotpotQA question: every paragraph as ``[PAR] [TLE] title [SEP]
    sentences``, in the given order, the sentences joined as they are (HotpotQA's sentences carry
    their own leading spaces)."""
    return " ".join(f"[PAR] [TLE] {title} [SEP] {''.join(sentences).strip()}" for title, sentences in paragraphs)


def answer_start(context: str, answer: str) -> int | None:
    """Where the answer first occurs in the context: exactly, else ignoring case (MRQA detected
    answers by tokens, so its spans may differ in case from the answer text); None if nowhere."""
    start = context.find(answer)
    if start < 0:
        start = context.lower().find(answer.lower())
    return start if start >= 0 else None


def hotpotqa_records(path: Path, split: str | None = None) -> tuple[dict[str, list[dict]], Counter]:
    """HotpotQA's schema (a JSON list, or JSON lines: ``_id, question, answer, type, level,
    supporting_facts, context: [[title, [sentences]]]``) -> qa records by split, and the questions
    dropped by reason.

    Each record is ``{"id", "question", "context", "answers": {"answer_start", "text"}, "type",
    "level"}`` with MRQA's context (:func:`hotpotqa_context`) over all paragraphs of the
    distractor setting. Yes/no answers are dropped (``yes_no``), as MRQA dropped them: no span
    holds them; so is an answer found nowhere in the context (``answer_not_in_context``). The
    split is a record's ``hotpot_split`` field (the shared excerpt mixes dev and train), else
    ``split``, else the file name's.
    """
    items = _hotpot_items(path)
    tagged = all("hotpot_split" in record for _, record in items)
    default = split or (None if tagged else split_from_name(path, None))
    splits: dict[str, list[dict]] = {}
    dropped: Counter = Counter()
    for where, record in items:
        question = require(record, "question", str, path, where).strip()
        answer = require(record, "answer", str, path, where)
        paragraphs = require(record, "context", list, path, where)
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and isinstance(p[1], list)
                   and all(isinstance(x, str) for x in p[1]) for p in paragraphs):
            raise BadInput(path, where, "bad_field", "context must be a list of [title, [sentences]]")
        if answer.strip().lower() in ("yes", "no"):
            dropped["yes_no"] += 1
            continue
        context = hotpotqa_context(paragraphs)
        start = answer_start(context, answer)
        if start is None:
            dropped["answer_not_in_context"] += 1
            continue
        name = HOTPOT_SPLITS.get(str(record.get("hotpot_split", default)))
        if name is None:
            raise BadInput(path, where, "bad_field", f"hotpot_split {record.get('hotpot_split')!r} is not train, "
                                                     "dev or test")
        splits.setdefault(name, []).append({
            "id": require(record, "_id", str, path, where), "question": question, "context": context,
            "answers": {"answer_start": [start], "text": [answer]}, "type": record.get("type", ""),
            "level": record.get("level", "")})
    if not splits:
        raise BadInput(path, "", "empty_split", f"no question with an extractive answer ({dict(dropped)} dropped)")
    return splits, dropped


def _hotpot_items(path: Path) -> list[tuple[str, dict]]:
    """``(location, record)`` of a HotpotQA JSON list or JSON-lines file."""
    lines = list(iter_lines(path))
    first = next((line for _, line in lines if line.strip()), "")
    if first.lstrip().startswith("["):  # the official files: one JSON list
        try:
            data = json.loads("\n".join(line for _, line in lines))
        except json.JSONDecodeError as e:
            raise BadInput(path, f"line {e.lineno}", "malformed_json", e.msg) from None
        return [(f"question {i}", record) for i, record in enumerate(data)]
    return [(f"line {number}", json_line(path, number, line)) for number, line in lines if line.strip()]
