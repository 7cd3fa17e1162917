"""Extractive QA datasets -> the released LinkBERT QA format ``{"id", "question", "context",
"answers": {"answer_start", "text"}}``: SQuAD v1.1, MRQA (with LinkBERT's in-house dev/test
split) and HotpotQA in the distractor setting (MRQA's context construction).

Only records fine-tuning takes are written (:func:`usable_qa`): an answer whose start is not a
non-negative integer (a boolean, a negative number) or whose text is empty is dropped, and so is
a question left without an answer, or whose id an earlier question of the split has; each is
counted by reason and said. An answer found ignoring case (:func:`find_span`) is given by its
offset in the context itself, even where lower-casing changes lengths (``İ``)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from linkbert.errors import BadInput, ConfigError
from linkbert.finetune.convert_io import (
    head_text,
    iter_lines,
    json_line,
    nonempty,
    read_json,
    require,
    split_from_name,
)

# MRQA header dataset (or file name) prefix -> our name, as in the in-house split files
_MRQA_NAMES = {"squad": "squad", "newsqa": "newsqa", "triviaqa": "triviaqa", "searchqa": "searchqa",
               "hotpotqa": "hotpot", "naturalquestions": "naturalqa"}



def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def answer_problem(start, text: str, context: str) -> str | None:
    """Why fine-tuning cannot take this answer (its reason), or None."""
    if isinstance(start, bool):
        return "boolean_answer_start"
    if not _integer(start):
        return "bad_answer_start"
    if start < 0:
        return "negative_answer_start"
    if not text:
        return "empty_answer"
    if start + len(text) > len(context):
        return "span_outside_context"
    return None


ANSWER_REASONS = ("boolean_answer_start", "bad_answer_start", "negative_answer_start", "empty_answer",
                  "span_outside_context")  # counted per answer; every other reason per question


def dropped_text(dropped: Counter) -> str:
    """``dropped`` said in words: questions by reason, then answers by reason."""
    def listed(items):
        return ", ".join(f"{reason} {count}" for reason, count in sorted(items))
    questions = [(k, v) for k, v in dropped.items() if k not in ANSWER_REASONS]
    answers = [(k, v) for k, v in dropped.items() if k in ANSWER_REASONS]
    parts = [f"{sum(v for _, v in questions)} questions ({listed(questions)})" if questions else "",
             f"{sum(v for _, v in answers)} answers ({listed(answers)})" if answers else ""]
    return " and ".join(part for part in parts if part)


def usable_qa(records: list[dict], dropped: Counter) -> list[dict]:
    """The records fine-tuning takes, in order: each answer with a usable span
    (:func:`answer_problem`; the others are dropped and counted under their reason), each question
    with an answer left (else ``no_answer``) and an id no earlier question has (else
    ``duplicate_id``: the first is kept, as fine-tuning keys predictions by id)."""
    kept, seen = [], set()
    for record in records:
        starts, texts = [], []
        for start, text in zip(record["answers"]["answer_start"], record["answers"]["text"]):
            problem = answer_problem(start, text, record["context"])
            if problem:
                dropped[problem] += 1
            else:
                starts.append(start)
                texts.append(text)
        if not texts:
            dropped["no_answer"] += 1
        elif record["id"] in seen:
            dropped["duplicate_id"] += 1
        else:
            seen.add(record["id"])
            kept.append({**record, "answers": {"answer_start": starts, "text": texts}})
    return kept


def find_span(context: str, answer: str, start: int = 0, end: int | None = None, *,
              ignore_case: bool = False) -> int | None:
    """Where ``answer`` first occurs in ``context[start:end]`` (an offset into ``context``), or
    None; ``ignore_case``: character by character, so the offset and the length are the
    context's own even where lower-casing a character changes the length of the text (``İ``)."""
    end = len(context) if end is None else end
    if not ignore_case:
        found = context.find(answer, start, end)
        return found if found >= 0 else None
    match = re.compile(re.escape(answer), re.IGNORECASE).search(context, start, end)
    return match.start() if match else None


def _first_span(answer, context: str) -> tuple[int, int] | None:
    """The first ``char_spans`` entry of an MRQA answer (end inclusive) if it lies in the context."""
    spans = answer.get("char_spans") if isinstance(answer, dict) else None
    if not isinstance(spans, list) or not spans or not isinstance(spans[0], list) or len(spans[0]) != 2:
        return None
    start, end = spans[0]
    ok = _integer(start) and _integer(end) and 0 <= start <= end < len(context)
    return (start, end) if ok else None


def squad_records(path: Path, dropped: Counter | None = None) -> list[dict]:
    """Official SQuAD v1.1 JSON -> one qa record per question (title kept), those fine-tuning
    cannot take dropped and counted into ``dropped`` (:func:`usable_qa`)."""
    dataset = read_json(path)
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
    return nonempty(usable_qa(records, Counter() if dropped is None else dropped), path)


def _squad_question(qa: dict, context: str, path: Path, where: str) -> dict:
    texts, starts = [], []
    for i, answer in enumerate(require(qa, "answers", list, path, where)):
        text = require(answer, "text", str, path, f"{where}.answers[{i}]")
        start = require(answer, "answer_start", int, path, f"{where}.answers[{i}]")
        if answer_problem(start, text, context) is None and context[start:start + len(text)] != text:
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


def _header(path: Path, line: str | None) -> dict:
    first = json_line(path, 1, line) if line is not None else None
    header = first.get("header") if isinstance(first, dict) else None
    if not isinstance(header, dict):
        raise BadInput(path, "line 1", "missing_field", 'expected the MRQA header line {"header": {...}}')
    return header


def read_mrqa(path: Path) -> tuple[dict, list[tuple[int, dict]]]:
    """An MRQA file: its header and its (line number, paragraph) list."""
    lines = iter_lines(path)
    first = next(lines, None)
    header = _header(path, first[1] if first else None)
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
    split_info = read_json(split_path)
    indices = [i for key in ("dev", "test") for i in require(split_info, key, list, split_path, "")]
    if not all(_integer(i) for i in indices):
        raise BadInput(split_path, "", "bad_field", "dev and test must be lists of paragraph indices (integers)")
    if sorted(indices) != list(range(n_paragraphs)):  # the released script asserts the sizes add up
        raise BadInput(split_path, "", "split_mismatch",
                       f"dev+test indices do not cover the {n_paragraphs} paragraphs "
                       f"0..{n_paragraphs - 1} exactly once")
    return {"dev": split_info["dev"], "test": split_info["test"]}


def mrqa_splits(path: Path, inhouse_split: Path | None, name: str,
                dropped: Counter | None = None) -> dict[str, list[dict]]:
    """MRQA train file -> train; MRQA dev file -> in-house dev and test halves; the questions
    fine-tuning cannot take dropped and counted into ``dropped`` (:func:`usable_qa`)."""
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
        records = [r for i in indices for r in _mrqa_paragraph(paragraphs[i][1], path, paragraphs[i][0])]
        out[split] = nonempty(usable_qa(records, Counter() if dropped is None else dropped), path)
    return out


def read_mrqa_header(path: Path) -> dict:
    first = next(iter_lines(path), None)
    return _header(path, first[1] if first else None)


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
    start = find_span(context, answer)
    return start if start is not None else find_span(context, answer, ignore_case=True)


def hotpotqa_records(path: Path, split: str | None = None) -> tuple[dict[str, list[dict]], Counter]:
    """HotpotQA's schema (a JSON list, or JSON lines: ``_id, question, answer, type, level,
    supporting_facts, context: [[title, [sentences]]]``) -> qa records by split, and the questions
    dropped by reason.

    Each record is ``{"id", "question", "context", "answers": {"answer_start", "text"}, "type",
    "level"}`` with MRQA's context (:func:`hotpotqa_context`) over all paragraphs of the
    distractor setting. Yes/no answers are dropped (``yes_no``), as MRQA dropped them: no span
    holds them; so is an answer found nowhere in the context (``answer_not_in_context``), and
    what :func:`usable_qa` drops (an empty answer, a repeated id). The split is a record's
    ``hotpot_split`` field (the shared excerpt mixes dev and train), else ``split``, else the
    file name's.
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
    splits = {name: usable_qa(records, dropped) for name, records in splits.items()}
    splits = {name: records for name, records in splits.items() if records}
    if not splits:
        raise BadInput(path, "", "empty_split", f"no question with an extractive answer ({dict(dropped)} dropped)")
    return splits, dropped


def _hotpot_items(path: Path) -> list[tuple[str, dict]]:
    """``(location, record)`` of a HotpotQA JSON list (read whole: the official files are one
    line) or JSON-lines file (read line by line, each line bounded)."""
    if head_text(path).lstrip().startswith("["):  # the official files: one JSON list
        data = read_json(path)
        if not isinstance(data, list):
            raise BadInput(path, "", "wrong_schema", "expected a JSON list of questions, or one question a line")
        return [(f"question {i}", record) for i, record in enumerate(data)]
    return [(f"line {number}", json_line(path, number, line)) for number, line in iter_lines(path) if line.strip()]
