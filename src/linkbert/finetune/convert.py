"""Convert raw downstream data to the released LinkBERT JSON-lines format.

Writes ``OUT/{seqcls,tokcls,qa,mc}/<name>_hf/<split>.json``: one JSON object per line, with the
fields, field order and ``json.dumps`` spelling of the files the original LinkBERT preprocessing
wrote (checked byte for byte against the shipped ``_hf`` files where raw and ``_hf`` both exist).

Sources and what each does, as the released preprocessing (``scripts/preprocess_{blurb,mrqa,mmlu,
medqa}.py`` of michiyasunaga/LinkBERT) does it, checked against the shipped ``_hf`` files:

* NER, ``BC5CDR-chem BC5CDR-disease NCBI-disease BC2GM JNLPBA ebmnlp`` (a folder with
  ``{train,dev,test}.tsv``) -> tokcls ``{"tokens", "ner_tags", "id"}``: ``token<TAB>tag`` lines,
  sentences split at blank lines, ``-DOCSTART-`` lines dropped, ids a running counter per split
  as strings ("0", "1", ...). Tags are kept as they are (``B``/``I``/``O``; EBM-PICO ``I-INT`` etc.).
* ``chemprot DDI GAD`` -> seqcls ``{"id", "sentence", "label"}``; a label containing "false"
  becomes "0" (the negative class of ``metrics.prf1``). Sentences are kept byte for byte
  (DDI's trailing space included).
* ``BIOSSES`` -> ``{"id", "sentence1", "sentence2", "label": float}``.
* ``HoC`` -> ``{"sentence", "label", "id"}`` per abstract: the tsv has one row per sentence
  (``labels, sentence, index`` with index ``<abstract>_s<k>``); rows are grouped by the index
  prefix before "_" in order of appearance, sentences joined with one space, labels ("k_v" for
  k = 0..9) OR-ed into a 10-dim 0/1 list.
* ``bioasq`` -> ``{"id", "sentence1", "sentence2", "label"}`` from ``id, question, context,
  label``; both texts are ``str.strip()``-ed, as in the shipped BioASQ files.
* ``pubmedqa`` (PubMedQA's data folder: ``pqal_fold0/{train,dev}_set.json``, ``test_set.json``,
  BLURB's split of the labelled set) -> ``{"id": PMID, "sentence1": question, "sentence2": the
  non-empty CONTEXTS stripped and joined with spaces, "label": final_decision}``, the
  reasoning-required setting (no long answer).
* ``squad`` (a SQuAD v1.1 JSON file) and ``mrqa`` (an MRQA ``.jsonl.gz``) -> qa
  ``{"id", "question", "context", "answers": {"answer_start", "text"}}`` (+ ``"title"`` for
  SQuAD), question stripped, as ``scripts/preprocess_mrqa.py`` writes them. An MRQA dev file is
  split into in-house dev/test by the paragraph indices of ``inhouse_split_<name>.json`` (indices
  count paragraph lines after the header line). MRQA answers are ``detected_answers`` texts with
  the start of their first char span; MRQA's detected text may differ from the span's text
  (case, spacing: an upstream tokenizer artefact), so only the span is checked against the context.
* ``hotpotqa`` (HotpotQA's own schema, a JSON list or JSON lines; the distractor setting) -> qa
  records with MRQA's context over all paragraphs (``[PAR] [TLE] title [SEP] sentences``), the
  answer's first occurrence as its span, ``type`` (bridge/comparison) and ``level`` kept for
  per-type scores; yes/no answers dropped and counted, as MRQA does, and answers found nowhere.
* ``musique`` (MuSiQue's JSON lines) -> qa records with MRQA's context, the hop count (2hop, 3hop,
  4hop) as ``type``; unanswerable questions and answers found nowhere dropped and counted
  (``convert_musique.py``).
* ``mmlu`` (headerless CSV ``question,A,B,C,D,answer``) and ``medqa`` (jsonl with ``question``,
  ``options`` {A..D}, ``answer_idx``) -> mc ``{"id", "sent1", "sent2": "", "ending0".."ending3",
  "label"}``. MMLU keeps the released ids ``<subject>_<split>-00000``; its files take the roles
  they had in the released run: ``dev`` (the 5 few-shot exemplars, never evaluated) ->
  ``train.json``, ``val`` (31 questions, the released validation file) -> ``dev.json``, ``test``
  -> ``test.json``, in ``mc/mmlu_hf/`` rather than the released ``mc/mmlu_hf/<subject>/``, to keep
  one ``<name>_hf`` folder per dataset.

Header rows: the GAD, BIOSSES and HoC files start with a header row (``index sentence label``,
``pair_id sent1 sent2 score``, ``labels sentence index``), which ``preprocess_blurb.py`` skips (its
first row of GAD, BIOSSES and HoC); the ChemProt and DDI files have none (the shipped DDI ``_hf``
files have exactly one example per tsv line). We skip a first row only when it equals a known
header, which gives the same files.
Bad input (wrong number of columns, a label outside the task's set, an answer outside its context,
a split without examples, a line over ``convert_io.MAX_RECORD_BYTES``) raises ``BadInput`` naming
the file and line; arguments that do not fit the source (an unknown source, a split the file name
does not tell) raise ``ConfigError``. QA records fine-tuning would refuse are dropped and counted
(``convert_qa.usable_qa``).

The split files are written beside their final names and renamed in when all are complete
(``files.replacing``): a failure (a full disk) leaves no half-written file. An output that is an
input is refused, and an earlier output is replaced only with ``--overwrite``.

Usage: ``linkbert convert SOURCE INPUT OUT [--split S] [--name N] [--inhouse-split F] [--overwrite]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from linkbert import settings
from linkbert.errors import BadInput, ConfigError
from linkbert.files import naming, replacing
from linkbert.finetune.convert_io import (
    SPLITS,
    check_label,
    check_outputs,
    iter_lines,
    json_line,
    nonempty,
    read_json,
    read_text,
    require,
    split_from_name,
    tsv_rows,
    write_jsonl,
)
from linkbert.finetune.convert_qa import (
    dropped_text,
    hotpotqa_records,
    mrqa_name,
    mrqa_splits,
    read_mrqa_header,
    squad_records,
)
from linkbert.settings import setting

NER_TASKS = ("BC5CDR-chem", "BC5CDR-disease", "NCBI-disease", "BC2GM", "JNLPBA", "ebmnlp")
_BIO = frozenset({"B", "I", "O"})
_PICO = frozenset({"O"} | {f"{p}-{t}" for p in "BI" for t in ("INT", "PAR", "OUT")})
RELATION_LABELS = {
    "chemprot": frozenset({"false", "CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9"}),
    "DDI": frozenset({"DDI-false", "DDI-advise", "DDI-effect", "DDI-int", "DDI-mechanism"}),
    "GAD": frozenset({"0", "1"}),
}
YES_NO_LABELS = {"bioasq": frozenset({"yes", "no"})}
PUBMEDQA_LABELS = frozenset({"yes", "no", "maybe"})
# PubMedQA's labelled set (PQA-L) as BLURB splits it: fold 0's train and dev, and the test set
PUBMEDQA_FILES = {"train": "pqal_fold0/train_set.json", "dev": "pqal_fold0/dev_set.json", "test": "test_set.json"}
# MMLU's split -> the role its file had in the released run (train_file dev.json, validation_file
# val.json, test_file test.json): the 5 few-shot exemplars are never evaluated
MMLU_SPLITS = {"dev": "train", "val": "dev", "test": "test"}
HOC_CLASSES = 10
_HEADERS = {  # known header rows; the first row is skipped only when it is one of these
    "relation": {("index", "sentence", "label")},
    "BIOSSES": {("pair_id", "sent1", "sent2", "score")},
    "HoC": {("labels", "sentence", "index")},
    "yes_no": {("id", "question", "context", "label")},
}
# ---------------------------------------------------------------- BLURB tsv -> records


def ner_records(path: Path, tags: frozenset = _BIO) -> list[dict]:
    """``token<TAB>tag`` lines -> one record per sentence (sentences end at blank lines)."""
    records, tokens, labels = [], [], []

    def end_sentence():
        if tokens:
            records.append({"tokens": tokens[:], "ner_tags": labels[:], "id": str(len(records))})
            tokens.clear()
            labels.clear()

    for number, line in iter_lines(path):
        if line.startswith("-DOCSTART-"):  # a document marker, not a token
            continue
        if not line.strip():
            end_sentence()
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise BadInput(path, f"line {number}", "wrong_columns", f"expected token<TAB>tag, got {len(fields)} fields")
        tokens.append(fields[0])
        labels.append(check_label(fields[1], tags, path, number))
    end_sentence()
    return nonempty(records, path)


def relation_records(path: Path, task: str) -> list[dict]:
    """ChemProt / DDI / GAD ``id, sentence, label``; labels containing "false" become "0"."""
    records = []
    for number, (example_id, sentence, label) in tsv_rows(path, 3, _HEADERS["relation"]):
        label = check_label(label, RELATION_LABELS[task], path, number)
        records.append({"id": example_id, "sentence": sentence, "label": "0" if "false" in label else label})
    return nonempty(records, path)


def biosses_records(path: Path) -> list[dict]:
    """BIOSSES ``pair_id, sent1, sent2, score`` -> a regression example (score 0-4)."""
    records = []
    for number, (pair_id, sent1, sent2, score) in tsv_rows(path, 4, _HEADERS["BIOSSES"]):
        try:
            value = float(score)
        except ValueError:
            value = float("nan")
        if not 0.0 <= value <= 4.0:  # also rejects nan
            raise BadInput(path, f"line {number}", "unknown_label", f"score {score!r} is not a number in 0-4")
        records.append({"id": pair_id, "sentence1": sent1, "sentence2": sent2, "label": value})
    return nonempty(records, path)


def _hoc_labels(text: str, path: Path, number: int) -> list[int]:
    """``0_0,1_1,...,9_0`` -> [0, 1, ..., 0]."""
    expected = [f"{k}_" for k in range(HOC_CLASSES)]
    items = text.split(",")
    if [item[:-1] for item in items] != expected or any(item[-1] not in "01" for item in items):
        raise BadInput(path, f"line {number}", "unknown_label",
                       f"expected labels 0_v,...,9_v with v in 0/1, got {text[:60]!r}")
    return [int(item[-1]) for item in items]


def hoc_records(path: Path) -> list[dict]:
    """HoC sentence rows -> one example per abstract: sentences joined, labels OR-ed."""
    abstracts: dict[str, dict] = {}
    for number, (labels, sentence, index) in tsv_rows(path, 3, _HEADERS["HoC"]):
        row = _hoc_labels(labels, path, number)
        doc = abstracts.setdefault(index.split("_")[0], {"sentences": [], "label": [0] * HOC_CLASSES})
        doc["sentences"].append(sentence)
        doc["label"] = [a | b for a, b in zip(doc["label"], row)]
    records = [{"sentence": " ".join(d["sentences"]), "label": d["label"], "id": doc_id}
               for doc_id, d in abstracts.items()]
    return nonempty(records, path)


def yes_no_records(path: Path, task: str) -> list[dict]:
    """BioASQ ``id, question, context, label`` -> a sentence-pair example."""
    records = []
    for number, (example_id, question, context, label) in tsv_rows(path, 4, _HEADERS["yes_no"]):
        records.append({"id": example_id, "sentence1": question.strip(), "sentence2": context.strip(),
                        "label": check_label(label, YES_NO_LABELS[task], path, number)})
    return nonempty(records, path)


def pubmedqa_records(path: Path) -> list[dict]:
    """A PubMedQA JSON file (``{pmid: {"QUESTION", "CONTEXTS": [...], "final_decision", ...}}``)
    -> ``{"id", "sentence1": question, "sentence2": context, "label"}``, as the released
    ``preprocess_blurb.py``: the context is the abstract's non-empty ``CONTEXTS`` stripped and
    joined with spaces; the long answer is not used (the reasoning-required setting)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise BadInput(path, "", "wrong_schema", 'expected PubMedQA\'s {"PMID": {"QUESTION", "CONTEXTS", ...}}')
    records = []
    for pmid, entry in data.items():
        where = f"entry {pmid}"
        contexts = require(entry, "CONTEXTS", list, path, where)
        if not all(isinstance(c, str) for c in contexts):
            raise BadInput(path, where, "bad_field", "CONTEXTS must be a list of strings")
        label = require(entry, "final_decision", str, path, where).strip()
        if label not in PUBMEDQA_LABELS:
            raise BadInput(path, where, "unknown_label", f"final_decision {label!r} is not yes, no or maybe")
        records.append({"id": pmid, "sentence1": require(entry, "QUESTION", str, path, where).strip(),
                        "sentence2": " ".join(c.strip() for c in contexts if c.strip()), "label": label})
    return nonempty(records, path)


def pubmedqa_splits(folder: Path, only: str | None = None) -> dict[str, list[dict]]:
    """The PubMedQA folder's train, dev and test (``PUBMEDQA_FILES``), or just ``only``."""
    wanted = {split: folder / name for split, name in PUBMEDQA_FILES.items() if only in (None, split)}
    found = {split: path for split, path in wanted.items() if path.is_file()}
    if not found:
        names = ", ".join(str(path.relative_to(folder)) for path in wanted.values())
        raise BadInput(folder, "", "empty_split", f"none of {names} in this folder", fatal=True)
    return {split: pubmedqa_records(path) for split, path in found.items()}


# ---------------------------------------------------------------- multiple choice


def _mc_record(example_id: str, question: str, endings: list[str], label: int) -> dict:
    record = {"id": example_id, "sent1": question, "sent2": ""}
    record.update({f"ending{i}": ending for i, ending in enumerate(endings)})
    record["label"] = label
    return record


def mmlu_records(path: Path, subject: str, split: str) -> list[dict]:
    """Headerless MMLU CSV ``question,A,B,C,D,answer`` -> mc records (label = answer letter index)."""
    records = []
    reader = csv.reader(io.StringIO(read_text(path)))
    for row in reader:
        if len(row) != 6:
            raise BadInput(path, f"line {reader.line_num}", "wrong_columns", f"expected 6 CSV fields, got {len(row)}")
        if row[5] not in ("A", "B", "C", "D"):
            raise BadInput(path, f"line {reader.line_num}", "unknown_label", f"answer {row[5]!r} is not A-D")
        records.append(_mc_record(f"{subject}_{split}-{len(records):05d}", row[0], row[1:5], "ABCD".index(row[5])))
    return nonempty(records, path)


def medqa_records(path: Path, split: str) -> list[dict]:
    """MedQA-USMLE jsonl (4 options A-D) -> mc records with ids ``<split>-00000``."""
    records = []
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        item = json_line(path, number, line)
        where = f"line {number}"
        options = require(item, "options", dict, path, where)
        if sorted(options) != ["A", "B", "C", "D"] or not all(isinstance(v, str) for v in options.values()):
            raise BadInput(path, where, "wrong_columns", f"expected text options A-D, got {sorted(options)}")
        answer = require(item, "answer_idx", str, path, where)
        if answer not in options:
            raise BadInput(path, where, "unknown_label", f"answer_idx {answer!r} is not A-D")
        endings = [options[key] for key in "ABCD"]
        question = require(item, "question", str, path, where)
        records.append(_mc_record(f"{split}-{len(records):05d}", question, endings, "ABCD".index(answer)))
    return nonempty(records, path)


# ---------------------------------------------------------------- writing and dispatch


def _tsv_splits(folder: Path, read, only: str | None = None) -> dict[str, list[dict]]:
    """Apply ``read`` to each of ``folder/{train,dev,test}.tsv`` that exists (or just ``only``)."""
    wanted = (only,) if only else SPLITS
    found = {split: folder / f"{split}.tsv" for split in wanted if (folder / f"{split}.tsv").is_file()}
    if not found:
        names = ", ".join(f"{split}.tsv" for split in wanted)
        raise BadInput(folder, "", "empty_split", f"none of {names} in this folder", fatal=True)
    return {split: read(path) for split, path in found.items()}


def _blurb_source(source: str):
    """The record reader and task type of a BLURB tsv source."""
    if source in NER_TASKS:
        tags = _PICO if source == "ebmnlp" else _BIO
        return "tokcls", lambda path: ner_records(path, tags)
    if source in RELATION_LABELS:
        return "seqcls", lambda path: relation_records(path, source)
    if source in YES_NO_LABELS:
        return "seqcls", lambda path: yes_no_records(path, source)
    return "seqcls", {"BIOSSES": biosses_records, "HoC": hoc_records}[source]


SOURCES = (*NER_TASKS, *RELATION_LABELS, "BIOSSES", "HoC", *YES_NO_LABELS, "pubmedqa", "squad", "mrqa", "hotpotqa",
           "musique", "mmlu", "medqa")
_SOURCE_BY_KEY = {s.lower(): s for s in SOURCES}


def convert(source_name: str, input_path, out_dir, *, split: str | None = None, name: str | None = None,
            inhouse_split=None, overwrite: bool = False) -> dict[str, Path]:
    """Convert one source; returns ``{split: written file}``.

    ``input_path`` is a folder of ``{train,dev,test}.tsv`` for the BLURB sources (``split``
    picks one of them) and a file for ``squad``, ``mmlu`` and ``medqa`` (split from the file
    name unless ``split`` is given) and ``mrqa`` (split from its header line; a dev file needs
    ``inhouse_split``). ``name`` overrides the output dataset name. The files are renamed in
    together once all are written; one that exists already is replaced only with ``overwrite``,
    one that is an input never.
    """
    source = _SOURCE_BY_KEY.get(source_name.lower())
    if source is None:
        raise ConfigError(f"unknown source {source_name!r}; one of: {', '.join(SOURCES)}")
    input_path = Path(input_path)
    dropped: Counter = Counter()
    task_type, default_name, splits = _read_source(source, input_path, split, name, inhouse_split, dropped)
    if dropped:
        print(f"{input_path}: dropped {dropped_text(dropped)}", file=sys.stderr)
    folder = Path(out_dir) / task_type / f"{name or default_name}_hf"
    written = {split_name: folder / f"{split_name}.json" for split_name in splits}
    inputs = [input_path] + ([Path(inhouse_split)] if inhouse_split else [])
    check_outputs(written.values(), inputs, overwrite)
    with replacing(written.values()) as temporaries:
        for split_name, records in splits.items():
            with naming(written[split_name]):
                write_jsonl(records, temporaries[written[split_name]])
    return written


def _read_source(source, path: Path, split, name, inhouse_split, dropped: Counter):
    """(task type, default dataset name, {split: records}) of one source; QA questions and answers
    fine-tuning could not take are counted into ``dropped`` by reason."""
    if source == "squad":
        return "qa", "squad_v1.1", {split_from_name(path, split): squad_records(path, dropped)}
    if source == "mrqa":
        if split:
            raise ConfigError("an MRQA file says its split in its header; --split does not apply")
        dataset = name or mrqa_name(read_mrqa_header(path), path)
        return "qa", dataset, mrqa_splits(path, Path(inhouse_split) if inhouse_split else None, dataset, dropped)
    if source == "hotpotqa":  # MRQA drops yes/no answers too
        splits, found = hotpotqa_records(path, split)
        dropped.update(found)
        return "qa", "hotpot_distractor", splits
    if source == "musique":  # convert_musique.py: MuSiQue -> qa with MRQA's contexts, hop count as the type
        from linkbert.finetune.convert_musique import musique_records

        splits, found = musique_records(path, split)
        dropped.update(found)
        return "qa", "musique", splits
    if source == "pubmedqa":
        return "seqcls", "pubmedqa", pubmedqa_splits(path, split)
    if source == "mmlu":
        split = split_from_name(path, split, tuple(MMLU_SPLITS))
        subject = re.sub(rf"_{split}$", "", path.stem)
        return "mc", "mmlu", {MMLU_SPLITS[split]: mmlu_records(path, subject, split)}
    if source == "medqa":
        split = split_from_name(path, split)
        return "mc", "medqa_usmle", {split: medqa_records(path, split)}
    task_type, read = _blurb_source(source)
    return task_type, source, _tsv_splits(path, read, split)


@dataclass
class ConvertSettings:
    """``linkbert convert SOURCE INPUT OUT``'s settings."""

    source: str = setting(None, f"one of (any case): {', '.join(SOURCES)}", required=True)
    input: str = setting(None, "BLURB: folder of {train,dev,test}.tsv; pubmedqa: PubMedQA's data folder "
                               "(pqal_fold0/, test_set.json); squad/mrqa/hotpotqa/mmlu/medqa: a file", required=True)
    out: str = setting(None, "output root: OUT/<type>/<name>_hf/<split>.json", required=True)
    split: str = setting("", "squad/mmlu/medqa: the file's split (empty: from its name); BLURB: convert only "
                             "this split")
    name: str = setting("", "output dataset name (empty: the source's usual name)")
    inhouse_split: str = setting("", "MRQA dev: inhouse_split_<name>.json, or its folder")
    overwrite: bool = setting(False, "replace split files an earlier conversion wrote into OUT")


def configure(parser: argparse.ArgumentParser) -> None:
    settings.add_arguments(parser, ConvertSettings, positional=("source", "input", "out"))


def main(args: argparse.Namespace) -> int:
    """``linkbert convert``; ``linkbert.cli.main`` reports a ``BadInput`` or ``ConfigError``."""
    chosen = settings.from_arguments(ConvertSettings, args)
    written = convert(chosen.source, chosen.input, chosen.out, split=chosen.split or None, name=chosen.name or None,
                      inhouse_split=chosen.inhouse_split or None, overwrite=chosen.overwrite)
    for split_name, path in written.items():
        with open(path, encoding="utf-8") as f:
            print(f"{split_name}: {sum(1 for _ in f)} examples -> {path}")
    return 0
