"""The cases of issue 24 for ``hostile_inputs.py``: the newer surfaces (convert, evaluate, model
folders, prepared corpora, export, fine-tuning, the experiments, the quickstart, signals).

Each group builds its inputs in its own folder and returns its cases; ``GROUPS`` lists them with
their name prefixes (a group is built only when one of its cases is asked for). A case's
``kind`` is its class in the issue: 1 tracebacks for a user's input, 2 silent loss or wrong
output, 3 processes left behind, 4 leftovers of a stopped build, 5 bombs, 6 messages that send
the user the wrong way, 7 a first result that misleads.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from hostile_inputs import (TEXT, Case, cli, docs, finish, jsonl, kill_group, prepare_argv, prepared_corpus,
                            run_command, wikispeedia)

NESTED = "[" * 100000 + "]" * 100000
PRETRAIN = ["preset=tiny", "max_steps=2", "batch_size=4", "max_length=64", "progress=false", "tracker=none",
            "precision=fp32"]
FINETUNE = ["--task", "seqcls", "max_steps=1", "batch_size=2", "precision=fp32", "device=cpu", "max_length=32"]


def squad(path: Path, qas: list[dict] | None = None, context: str = "Paris is in France.") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    qas = qas if qas is not None else [{"id": "q1", "question": "Where?", "answers": [{"text": "France",
                                                                                      "answer_start": 12}]}]
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas}]}]}), encoding="utf-8")
    return path


def mrqa(path: Path, paragraphs: list, header=None, raw_lines: list[str] = ()) -> Path:
    header = header if header is not None else {"header": {"dataset": "SQuAD", "split": "train"}}
    lines = [json.dumps(header), *map(json.dumps, paragraphs), *raw_lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mrqa_paragraph(qid: str = "q1", text: str = "France", span=(12, 17), context: str = "Paris is in France.") -> dict:
    return {"context": context, "qas": [{"qid": qid, "question": "Where?",
                                         "detected_answers": [{"text": text, "char_spans": [list(span)]}]}]}


def hotpot(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def hotpot_record(qid: str, answer: str, sentences: list[str]) -> dict:
    return {"_id": qid, "question": "Which?", "answer": answer, "type": "bridge", "level": "easy",
            "supporting_facts": [], "context": [["Title", sentences]]}


def written(out: Path, relative: str) -> list[dict]:
    path = out / relative
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def convert_output_check(out: Path, relative: str, expect_ids: list[str], dropped: str = "") -> callable:
    """A check: the written QA records are exactly ``expect_ids`` in order, each answer at its
    offset, and stderr says what was dropped."""
    def check(ran: dict) -> str | None:
        if not (out / relative).is_file():
            return f"wrong: {relative} was not written"
        records = written(out, relative)
        ids = [r["id"] for r in records]
        if ids != expect_ids:
            return f"silent: wrote {ids}, expected {expect_ids}"
        for r in records:
            for start, text in zip(r["answers"]["answer_start"], r["answers"]["text"]):
                if isinstance(start, bool) or start < 0 or not text or r["context"][start:start + len(text)].lower() \
                        != text.lower():
                    return f"silent: {r['id']}: answer {text!r} is not at {start} of its context"
        if dropped and dropped not in ran["stderr"] + ran["stdout"]:
            return f"silent: the drop ({dropped}) is not said"
        return None
    return check


# -- class 1, 2, 5: convert --------------------------------------------------------------------------

def convert_cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    add = out.append
    root = tmp / "converted"

    def convert(*argv, name: str, expect: str = "error", names: str = "", kind: str = "1", **extra) -> None:
        add(Case(name, ["convert", *map(str, argv), str(root)], expect, names=names, out=root, kind=kind, **extra))

    # 1: deeply nested JSON, bytes that are not UTF-8, wrong types
    (tmp / "nested-train.json").write_text('{"version": "1.1", "data": ' + NESTED + "}")
    convert("squad", tmp / "nested-train.json", name="convert/squad-nested-100000-deep", names="nested-train.json")
    (tmp / "latin1-train.json").write_bytes(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": []}]}]}).encode().replace(b"Paris", b"P\xe4ris"))
    convert("squad", tmp / "latin1-train.json", name="convert/squad-not-utf8", names="latin1-train.json")
    mrqa(tmp / "nested-mrqa.jsonl", [mrqa_paragraph()], raw_lines=['{"context": ' + NESTED + "}"])
    convert("mrqa", tmp / "nested-mrqa.jsonl", name="convert/mrqa-nested-line", names="nested-mrqa.jsonl")
    mrqa(tmp / "header-list.jsonl", [mrqa_paragraph()], header=[{"dataset": "SQuAD"}])
    convert("mrqa", tmp / "header-list.jsonl", name="convert/mrqa-header-a-list", names="header-list.jsonl")
    mrqa(tmp / "header-string.jsonl", [mrqa_paragraph()], header={"header": "SQuAD"})
    convert("mrqa", tmp / "header-string.jsonl", name="convert/mrqa-header-a-string", names="header-string.jsonl")
    paragraph = mrqa_paragraph()
    paragraph["qas"][0]["detected_answers"][0]["char_spans"] = 12
    mrqa(tmp / "spans-int.jsonl", [paragraph])
    convert("mrqa", tmp / "spans-int.jsonl", name="convert/mrqa-spans-not-lists", names="spans-int.jsonl")
    paragraph = mrqa_paragraph()
    paragraph["qas"][0]["detected_answers"] = {"text": "France"}
    mrqa(tmp / "answers-dict.jsonl", [paragraph])
    convert("mrqa", tmp / "answers-dict.jsonl", name="convert/mrqa-answers-not-a-list", names="answers-dict.jsonl")
    dev_header = {"header": {"dataset": "SQuAD", "split": "dev"}}
    mrqa(tmp / "squad-dev.jsonl", [mrqa_paragraph("a"), mrqa_paragraph("b")], header=dev_header)
    (tmp / "inhouse_split_cut.json").write_text('{"dev": [0], "te')
    convert("mrqa", tmp / "squad-dev.jsonl", "--inhouse-split", tmp / "inhouse_split_cut.json",
            name="convert/mrqa-inhouse-split-truncated", names="inhouse_split_cut.json")
    (tmp / "inhouse_split_words.json").write_text(json.dumps({"dev": ["0"], "test": [1]}))
    convert("mrqa", tmp / "squad-dev.jsonl", "--inhouse-split", tmp / "inhouse_split_words.json",
            name="convert/mrqa-inhouse-split-not-integers", names="inhouse_split_words.json")
    (tmp / "inhouse_split_nested.json").write_text('{"dev": ' + NESTED + ', "test": [1]}')
    convert("mrqa", tmp / "squad-dev.jsonl", "--inhouse-split", tmp / "inhouse_split_nested.json",
            name="convert/mrqa-inhouse-split-nested", names="inhouse_split_nested.json")
    (tmp / "hotpot_dev_nested.json").write_text("[" + NESTED + "]")
    convert("hotpotqa", tmp / "hotpot_dev_nested.json", name="convert/hotpotqa-nested", names="hotpot_dev_nested.json")
    (tmp / "medqa_dev.jsonl").write_text('{"question": ' + NESTED + "}\n")
    convert("medqa", tmp / "medqa_dev.jsonl", name="convert/medqa-nested-line", names="medqa_dev.jsonl")
    pubmedqa = tmp / "pubmedqa"
    (pubmedqa / "pqal_fold0").mkdir(parents=True)
    (pubmedqa / "pqal_fold0" / "train_set.json").write_text('{"1": ' + NESTED + "}")
    convert("pubmedqa", pubmedqa, name="convert/pubmedqa-nested", names="train_set.json")

    # 2: output built beside and renamed in; never over its own input; records fine-tuning would refuse
    own = tmp / "own-input"
    squad(own / "qa" / "squad_v1.1_hf" / "train.json")
    add(Case("convert/out-holds-its-input", ["convert", "squad", str(own / "qa" / "squad_v1.1_hf" / "train.json"),
                                             str(own), "--split", "train"], "error", names="train.json", out=own,
             kind="2"))
    earlier = tmp / "earlier"
    (earlier / "qa" / "squad_v1.1_hf").mkdir(parents=True)
    (earlier / "qa" / "squad_v1.1_hf" / "train.json").write_text('{"id": "an earlier conversion"}\n')
    add(Case("convert/replaces-an-earlier-output", ["convert", "squad", str(squad(tmp / "replace-train.json")),
                                                    str(earlier)], "error", names="train.json", out=earlier,
             kind="2"))
    bad_qas = [{"id": "ok", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]},
               {"id": "negative", "question": "Where?", "answers": [{"text": "France", "answer_start": -7}]},
               {"id": "boolean", "question": "Where?", "answers": [{"text": "aris", "answer_start": True}]},
               {"id": "none", "question": "Where?", "answers": []},
               {"id": "empty", "question": "Where?", "answers": [{"text": "", "answer_start": 3}]},
               {"id": "ok", "question": "Again?", "answers": [{"text": "Paris", "answer_start": 0}]}]
    out_bad = tmp / "out-bad-squad"
    add(Case("convert/squad-records-finetuning-refuses", ["convert", "squad", str(squad(
        tmp / "bad-train.json", bad_qas, context="Paris is in France.")), str(out_bad)], "ok", kind="2",
        check=convert_output_check(out_bad, "qa/squad_v1.1_hf/train.json", ["ok"], "duplicate_id")))
    out_mrqa = tmp / "out-bad-mrqa"
    add(Case("convert/mrqa-records-finetuning-refuses", ["convert", "mrqa", str(mrqa(
        tmp / "bad-mrqa.jsonl", [mrqa_paragraph("a"), mrqa_paragraph("a"), mrqa_paragraph("b", text="", span=(0, 0))])),
        str(out_mrqa)], "ok", kind="2",
        check=convert_output_check(out_mrqa, "qa/squad_hf/train.json", ["a"], "duplicate_id")))
    add(Case("convert/mrqa-boolean-span", ["convert", "mrqa", str(mrqa(
        tmp / "bool-span-mrqa.jsonl", [mrqa_paragraph("a"), mrqa_paragraph("c", span=(True, 4))])), str(root)],
        "error", names="bool-span-mrqa.jsonl, line 3", out=root, kind="2"))
    out_hotpot = tmp / "out-hotpot"
    # lower-casing "İ" gives two characters: offsets into context.lower() are one off in the original
    add(Case("convert/hotpotqa-case-insensitive-offsets", ["convert", "hotpotqa", str(hotpot(
        tmp / "hotpot_dev.jsonl", [hotpot_record("h1", "paris", ["İstanbul and PARIS are cities."]),
                                   hotpot_record("h1", "istanbul", ["İstanbul is big."]),
                                   hotpot_record("h2", "", ["Nothing to find."])])), str(out_hotpot)], "ok", kind="2",
        check=convert_output_check(out_hotpot, "qa/hotpot_distractor_hf/dev.json", ["h1"], "duplicate_id")))
    musique = tmp / "musique_dev.jsonl"
    musique.write_text(json.dumps({"id": "2hop__1", "question": "Which?", "answer": "paris", "answer_aliases": [],
                                   "answerable": True, "paragraphs": [
                                       {"idx": 0, "title": "T", "paragraph_text": "İİ and PARIS.",
                                        "is_supporting": True}]}) + "\n")
    out_musique = tmp / "out-musique"
    add(Case("convert/musique-case-insensitive-offsets", ["convert", "musique", str(musique), str(out_musique)], "ok",
             kind="2", check=convert_output_check(out_musique, "qa/musique_hf/dev.json", ["2hop__1"])))

    # 5: a record-size bound: a small gzip holding one 1 GiB line
    bomb = tmp / "bomb-mrqa.jsonl.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        f.write(json.dumps({"header": {"dataset": "SQuAD", "split": "train"}}).encode() + b"\n" + b'{"context": "')
        block = b"a" * (1 << 24)
        for _ in range(64):
            f.write(block)
        f.write(b'"}\n')
    add(Case("convert/mrqa-gzip-1gib-line", ["convert", "mrqa", str(bomb), str(root)], "error", names="bomb-mrqa",
             out=root, kind="5", max_rss_mb=1500))
    medqa_bomb = tmp / "medqa_train.jsonl.gz"
    with gzip.open(medqa_bomb, "wb", compresslevel=1) as f:
        f.write(b'{"question": "')
        for _ in range(64):
            f.write(block)
        f.write(b'"}\n')
    add(Case("convert/medqa-gzip-1gib-line", ["convert", "medqa", str(medqa_bomb), str(root)], "error",
             names="medqa_train", out=root, kind="5", max_rss_mb=1500))
    return out


convert_cases.kinds = ("1", "2", "5")


# -- class 1, 2: evaluate ------------------------------------------------------------------------------

def evaluate_cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    add = out.append
    dataset = squad(tmp / "dev.json")
    (tmp / "predictions.json").write_text(json.dumps({"q1": "France"}))
    (tmp / "nested.json").write_text('{"data": ' + NESTED + "}")
    add(Case("evaluate/squad-dataset-nested", ["evaluate", "squad", str(tmp / "nested.json"),
                                               str(tmp / "predictions.json")], "error", names="nested.json", kind="1"))
    (tmp / "nested-predictions.json").write_text('{"q1": ' + NESTED + "}")
    add(Case("evaluate/squad-predictions-nested", ["evaluate", "squad", str(dataset),
                                                   str(tmp / "nested-predictions.json")], "error",
             names="nested-predictions.json", kind="1"))
    runs = tmp / "runs" / "a"
    runs.mkdir(parents=True)
    (runs / "metrics.json").write_text('{"dataset": "GAD", "dev": ' + NESTED + "}")
    add(Case("evaluate/runs-metrics-nested", ["evaluate", "runs", str(tmp / "runs")], "error", names="metrics.json",
             kind="1"))
    (tmp / "blurb-nested.json").write_text('{"GAD": ' + NESTED + "}")
    add(Case("evaluate/blurb-nested", ["evaluate", "blurb", str(tmp / "blurb-nested.json")], "error",
             names="blurb-nested.json", kind="1"))
    tasks = ["BC5CDR-chem", "BC5CDR-disease", "NCBI-disease", "BC2GM", "JNLPBA", "ebmnlp", "chemprot", "DDI", "GAD",
             "BIOSSES", "HoC", "pubmedqa", "bioasq"]
    for name, value in (("nan", "NaN"), ("infinity", "Infinity"), ("above-100", "250.0"), ("negative", "-40.0")):
        scores = {task: 80.0 for task in tasks}
        text = json.dumps(scores).replace('"GAD": 80.0', f'"GAD": {value}')
        (tmp / f"blurb-{name}.json").write_text(text)
        add(Case(f"evaluate/blurb-score-{name}", ["evaluate", "blurb", str(tmp / f"blurb-{name}.json")], "error",
                 names="GAD", kind="2"))
    return out


evaluate_cases.kinds = ("1", "2")


# -- class 1, 5, 6: settings files ---------------------------------------------------------------------

ALIAS_BOMB = ("lr: [&a [x,x,x,x,x,x,x,x,x,x], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], "
              "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], "
              "&e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e], "
              "&g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f], [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]]\n")  # 10^8 x: 0.5 GB as text


def settings_cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    add = out.append
    data = tmp / "no-corpus"
    ft = ["finetune", "--task", "seqcls", "--model", str(tmp / "no-model"), "--data", str(tmp), "--out", str(tmp / "f")]
    pre = ["pretrain", "--data", str(data), "--out", str(tmp / "r")]
    (tmp / "latin1.yaml").write_bytes(b"# r\xe9glages\nlr: 0.001\n")
    add(Case("pretrain/config-not-utf8", [*pre, "--config", str(tmp / "latin1.yaml")], "error", names="latin1.yaml",
             kind="1"))
    add(Case("finetune/recipe-not-utf8", [*ft, "--recipe", str(tmp / "latin1.yaml")], "error", names="latin1.yaml",
             kind="1"))
    (tmp / "bomb.yaml").write_text(ALIAS_BOMB)
    add(Case("pretrain/config-alias-bomb", [*pre, "--config", str(tmp / "bomb.yaml")], "error", names="bomb.yaml",
             kind="5", max_rss_mb=600))
    add(Case("finetune/recipe-alias-bomb", [*ft, "--recipe", str(tmp / "bomb.yaml")], "error", names="bomb.yaml",
             kind="5", max_rss_mb=600))
    (tmp / "syntax.yaml").write_text("lr: 0.001\nbatch_size: 8\n  max_steps: 10\nseed: [1, 2\n")
    add(Case("pretrain/config-yaml-syntax-error", [*pre, "--config", str(tmp / "syntax.yaml")], "error",
             names="line 3", kind="6", check=_first_line_says("syntax.yaml", "column")))
    add(Case("finetune/recipe-yaml-syntax-error", [*ft, "--recipe", str(tmp / "syntax.yaml")], "error",
             names="line 3", kind="6", check=_first_line_says("syntax.yaml", "column")))
    return out


settings_cases.kinds = ("1", "5", "6")


def _first_line_says(*words: str):
    def check(ran: dict) -> str | None:
        first = next((line for line in ran["stderr"].splitlines() if line.startswith("linkbert ")), "")
        missing = [w for w in words if w not in first]
        return f"poor message: the first line does not say {missing}: {first[:120]}" if missing else None
    return check


# -- class 1, 2, 6: model folders (init=, --model, export) -------------------------------------------------

def _edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _edit_weights(folder: Path, edit) -> None:
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(folder / "model.safetensors"))
    save_file(edit(weights), str(folder / "model.safetensors"), metadata={"format": "pt"})


def _nan_first(weights: dict) -> dict:
    name = sorted(weights)[0]
    weights[name] = np.full_like(weights[name], np.nan)
    return weights


DAMAGES = {  # name -> (what it does to a model folder, the class of the case, a word its message must hold)
    "truncated-weights": (lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:5000]),
                          "1", "model.safetensors"),
    "garbage-weights": (lambda d: (d / "model.safetensors").write_bytes(os.urandom((d / "model.safetensors").stat().st_size)),
                        "1", "model.safetensors"),
    "config-not-json": (lambda d: (d / "config.json").write_text("{not json"), "1", "config.json"),
    "config-a-list": (lambda d: (d / "config.json").write_text("[1, 2]"), "1", "config.json"),
    "unknown-model-type": (lambda d: _edit_config(d, model_type="nonesuch"), "1", "config.json"),
    "shapes-differ": (lambda d: _edit_config(d, intermediate_size=256), "1", "model.safetensors"),
    "names-match-nothing": (lambda d: _edit_weights(d, lambda w: {f"other.{k}": v for k, v in w.items()}), "2",
                            "model.safetensors"),
    "nan-weights": (lambda d: _edit_weights(d, _nan_first), "6", "NaN"),
}


def model_cases(tmp: Path) -> list[Case]:
    """A tiny pretraining run, its export, and damaged copies of each given to init=, --model
    and export."""
    out: list[Case] = []
    add = out.append
    data = prepared_corpus(tmp / "corpus")
    run = tmp / "run"
    cli("pretrain", "--data", data, "--out", run, *PRETRAIN, "save_every=2")
    model = tmp / "model"
    cli("export", run, model)
    checkpoint = next((run / "checkpoints").glob("step-*"))
    ft_data = tmp / "ft-data"
    ft_data.mkdir()
    for split in ("train", "dev"):
        jsonl(ft_data / f"{split}.json", [{"id": f"{split}{i}", "sentence": TEXT, "label": str(i % 2)} for i in range(4)])
    for name, (damage, kind, word) in DAMAGES.items():
        folder = tmp / f"model-{name}"
        shutil.copytree(model, folder)
        damage(folder)
        add(Case(f"pretrain/init-{name}", ["pretrain", "--data", str(data), "--out", str(tmp / f"r-{name}"), *PRETRAIN,
                                           f"init={folder}"], "error", names=folder.name if kind != "6" else word,
                 kind=kind, check=_message_holds(word)))
        if name != "nan-weights":
            add(Case(f"finetune/model-{name}", ["finetune", *FINETUNE, "--model", str(folder), "--data", str(ft_data),
                                                "--out", str(tmp / f"f-{name}")], "error", names=folder.name,
                     kind=kind, check=_message_holds(word)))
        if kind == "1":  # a checkpoint without a manifest (an older run, a copy): nothing but loading checks it
            ckpt = tmp / f"checkpoint-{name}"
            shutil.copytree(checkpoint, ckpt)
            (ckpt / "manifest.json").unlink()
            damage(ckpt)
            add(Case(f"export/checkpoint-{name}", ["export", str(ckpt), str(tmp / f"e-{name}"),
                                                   "--tokenizer", str(data / "tokenizer")], "error", names=ckpt.name,
                     kind=kind))
    no_tokenizer = tmp / "model-no-tokenizer"
    shutil.copytree(model, no_tokenizer)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (no_tokenizer / name).unlink(missing_ok=True)
    add(Case("finetune/model-without-tokenizer", ["finetune", *FINETUNE, "--model", str(no_tokenizer), "--data",
                                                  str(ft_data), "--out", str(tmp / "f-no-tokenizer")], "error",
             names="model-no-tokenizer", kind="2"))

    # 2: export's OUT: stale files of an earlier export, the checkpoint, its run folder
    stale = tmp / "stale-export"
    stale.mkdir()
    (stale / "vocab.txt").write_text("[PAD]\nstale\n")
    (stale / "pytorch_model.bin").write_bytes(b"an earlier export's weights")
    add(Case("export/overwrite-leaves-no-stale-file", ["export", str(run), str(stale), "--overwrite"], "ok", kind="2",
             check=lambda ran: None if sorted(p.name for p in stale.iterdir()) == sorted(p.name for p in model.iterdir())
             and (stale / "vocab.txt").read_text() == (model / "vocab.txt").read_text()
             else f"silent: {sorted(p.name for p in stale.iterdir())}"))
    for name, target, out_folder in (("out-is-the-checkpoint", checkpoint, checkpoint),
                                     ("out-is-the-run-folder", run, run),
                                     ("out-inside-the-run-folder", run, run / "exported"),
                                     ("out-holds-the-run-folder", checkpoint, tmp)):
        add(Case(f"export/{name}", ["export", str(target), str(out_folder), "--overwrite"], "error",
                 names=out_folder.name, out=run, kind="2"))

    # 6: the tensor name a NaN is in, before any step
    return out


model_cases.kinds = ("1", "2", "6")


def _message_holds(word: str):
    def check(ran: dict) -> str | None:
        line = next((line for line in ran["stderr"].splitlines() if line.startswith("linkbert ")), "")
        return None if word in line else f"poor message: does not name {word}: {line[:140]}"
    return check


# -- class 1: a damaged prepared corpus -----------------------------------------------------------------

def _cut(path: Path, n: int) -> None:
    path.write_bytes(path.read_bytes()[:-n])


def _store_json(folder: Path, edit) -> None:
    meta = json.loads((folder / "store.json").read_text())
    (folder / "store.json").write_text(json.dumps(edit(meta)))


def _poke(path: Path, dtype, index: int, value) -> None:
    array = np.fromfile(path, dtype=dtype)
    array[index] = value
    array.tofile(path)


def _poke_npy(path: Path, index: int, value) -> None:
    array = np.load(path)
    array[index] = value
    np.save(path, array)


CORPUS_DAMAGES = {  # name -> (damage, the file the message must name)
    "tokens-truncated": (lambda d: _cut(d / "tokens.bin", 7), "tokens.bin"),
    "token-ids-beyond-the-vocabulary": (lambda d: _poke(d / "tokens.bin", np.uint8, slice(5, 9), 250), "tokens.bin"),
    "segment-offsets-beyond-the-tokens": (lambda d: _poke(d / "segments.bin", np.int64, -2, 10 ** 7), "segments.bin"),
    "segment-offsets-decreasing": (lambda d: _poke(d / "segments.bin", np.int64, 3, 0), "segments.bin"),
    "document-offsets-beyond-the-segments": (lambda d: _poke(d / "documents.bin", np.int64, 2, 10 ** 6),
                                             "documents.bin"),
    "store-json-not-json": (lambda d: (d / "store.json").write_text("{"), "store.json"),
    "store-json-a-list": (lambda d: (d / "store.json").write_text("[]"), "store.json"),
    "store-json-without-counts": (lambda d: _store_json(d, lambda m: {k: v for k, v in m.items() if k != "tokens"}),
                                  "store.json"),
    "store-json-bad-dtype": (lambda d: _store_json(d, lambda m: {**m, "dtype": "object"}), "store.json"),
    "store-json-negative-count": (lambda d: _store_json(d, lambda m: {**m, "documents": -3}), "store.json"),
    "graph-index-out-of-range": (lambda d: _poke_npy(d / "graph" / "indices.npy", 0, 10 ** 6), "indices.npy"),
    "graph-indptr-decreasing": (lambda d: _poke_npy(d / "graph" / "indptr.npy", 2, 0), "indptr.npy"),
    "graph-indices-not-npy": (lambda d: (d / "graph" / "indices.npy").write_bytes(os.urandom(300)), "indices.npy"),
    "graph-indices-truncated": (lambda d: _cut(d / "graph" / "indices.npy", 8), "indices.npy"),
    "stats-json-not-json": (lambda d: (d / "stats.json").write_text("{"), "stats.json"),
}


def corpus_cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    data = prepared_corpus(tmp / "corpus")
    for name, (damage, word) in CORPUS_DAMAGES.items():
        folder = tmp / f"corpus-{name}"
        shutil.copytree(data, folder)
        damage(folder)
        out.append(Case(f"pretrain/corpus-{name}", ["pretrain", "--data", str(folder), "--out", str(tmp / f"r-{name}"),
                                                    *PRETRAIN], "error", names=word, kind="1"))
    return out


corpus_cases.kinds = ("1",)


# -- class 1: a closed stdout ------------------------------------------------------------------------------

def pipe_cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    corpus = jsonl(tmp / "corpus.jsonl", docs(12))
    out.append(Case("prepare/stdout-closed", prepare_argv("jsonl", corpus, tmp / "p", "--segment-budget", "30"), "ok",
                    documents=12, out=tmp / "p", kind="1", stdout_closed=True))
    data = prepared_corpus(tmp / "corpus")
    out.append(Case("pretrain/stdout-closed", ["pretrain", "--data", str(data), "--out", str(tmp / "r"), *PRETRAIN],
                    "ok", kind="1", stdout_closed=True,
                    check=lambda ran: None if (tmp / "r" / "summary.json").is_file() else "silent: no summary.json"))
    out.append(Case("convert/stdout-closed", ["convert", "squad", str(squad(tmp / "train.json")), str(tmp / "c")], "ok",
                    kind="1", stdout_closed=True, check=lambda ran: None if (
                        tmp / "c" / "qa" / "squad_v1.1_hf" / "train.json").is_file() else "silent: nothing written"))
    (tmp / "predictions.json").write_text(json.dumps({"q1": "France"}))
    out.append(Case("evaluate/stdout-closed", ["evaluate", "squad", str(tmp / "train.json"),
                                               str(tmp / "predictions.json")], "ok", kind="1", stdout_closed=True))
    return out


pipe_cases.kinds = ("1",)


# -- class 1, 2, 6: a full disk -------------------------------------------------------------------------------

_MOUNTS: list[Path] = []


def small_disk(folder: Path, kib: int) -> Path | None:
    """A ``kib`` KiB tmpfs at ``folder`` (needs root); None where it cannot be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        return None
    _MOUNTS.append(folder)
    return folder


def release_small_disks() -> None:
    while _MOUNTS:
        subprocess.run(["umount", "-l", str(_MOUNTS.pop())], capture_output=True)


def disk_cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    disk = small_disk(tmp / "disk", 256)
    if disk is None:
        print("(the full-disk cases need root to mount a small tmpfs: skipped)", flush=True)
        return out
    data = prepared_corpus(tmp / "corpus")
    run = tmp / "run"
    cli("pretrain", "--data", data, "--out", run, *PRETRAIN)
    target = disk / "model"
    add_leftovers = lambda ran: None if not any(p.name.startswith(".") for p in disk.iterdir()) else (  # noqa: E731
        f"silent: left {[p.name for p in disk.iterdir()]}")
    out.append(Case("export/full-disk", ["export", str(run), str(target)], "error", names=str(disk), out=disk,
                    kind="1", check=add_leftovers))
    many = [{"id": f"q{i}", "question": "Where? " * 20, "answers": [{"text": "France", "answer_start": 12}]}
            for i in range(3000)]
    source = squad(tmp / "big-train.json", many)
    out.append(Case("convert/full-disk", ["convert", "squad", str(source), str(disk / "converted")], "error",
                    names="train.json", out=disk, kind="6", check=add_leftovers))
    return out


disk_cases.kinds = ("1", "6")


# -- class 3, 4: signals, processes left behind, leftovers of a stopped build ----------------------------

def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (by /proc's parent ids)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _big_corpus(path: Path, documents: int = 6000) -> Path:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(3000)]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(documents):
            text = " ".join(rng.choice(words, 400)) + ". " + TEXT
            f.write(json.dumps({"id": f"d{i}", "title": f"Doc {i}", "text": text, "links": [f"d{(i + 1) % documents}"]})
                    + "\n")
    return path


def _kill_when(argv: list[str], ready, sig: int, timeout: float, linger: float = 10.0) -> dict:
    """Start ``linkbert ARGV``, wait until ``ready(pid)``, send ``sig`` to it alone (as a scheduler
    or ``kill`` would), then see what of its processes is still alive ``linger`` seconds later
    (those are killed afterwards: they are this benchmark's)."""
    process, folder = run_command(argv, timeout, wait=False)
    deadline = time.monotonic() + timeout
    family: set[int] = set()
    while time.monotonic() < deadline and process.poll() is None:
        family |= _descendants(process.pid)
        if ready(process.pid):
            break
        time.sleep(0.1)
    time.sleep(1.0)  # what was starting has started (a pool starts its workers one by one)
    family |= _descendants(process.pid)
    if process.poll() is not None:
        ran = finish(process, folder, 1)
        return {**ran, "note": "ended before the signal"}
    os.kill(process.pid, sig)
    ran = finish(process, folder, 60)
    time.sleep(linger)
    left = sorted(pid for pid in family if _alive(pid))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    kill_group(process.pid)
    return {**ran, "left": left, "family": sorted(family)}


def signal_cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    corpus = _big_corpus(tmp / "big.jsonl")
    tokenizer = tmp / "tokenizer-corpus"
    cli(*prepare_argv("jsonl", jsonl(tmp / "small.jsonl", docs(12)), tokenizer, "--segment-budget", "30"))

    def workers_running(pid: int) -> bool:
        return len(_descendants(pid)) >= 3  # the resource tracker and two workers

    for sig_name, sig in (("sigterm", signal.SIGTERM), ("sigkill", signal.SIGKILL)):
        argv = ["prepare", "--format", "jsonl", "--input", str(corpus), "--tokenizer", str(tokenizer / "tokenizer"),
                "--out", str(tmp / f"p-{sig_name}"), "--workers", "2", "--no-progress", "--chunk-bytes", "20000"]

        def runner(case, timeout, argv=argv, sig=sig):
            return _kill_when(argv, workers_running, sig, timeout)

        def check(ran: dict) -> str | None:
            if "left" not in ran:
                return f"wrong: {ran.get('note', 'no workers seen')}"
            return f"wrong: {len(ran['left'])} of its {len(ran['family'])} processes still alive" if ran["left"] else None
        out.append(Case(f"prepare/workers-after-{sig_name}", argv, "killed", kind="3", runner=runner, check=check))

    # 4: a stopped build's folder, cleaned by the next run of the same command, which says so
    def rerun_cleans(argv: list[str], out_dir: Path, ready_file: str):
        def runner(case, timeout):
            def building(pid: int) -> bool:
                return any((p / ready_file).exists() for p in out_dir.parent.glob(f".{out_dir.name}.building-*"))
            _kill_when(argv, building, signal.SIGKILL, timeout, linger=1)
            stopped = sorted(p.name for p in out_dir.parent.glob(f".{out_dir.name}.building-*"))
            ran = run_command(argv, timeout)
            return {**ran, "stopped": stopped}

        def check(ran: dict) -> str | None:
            if not ran["stopped"]:
                return "wrong: the build was not stopped while building"
            left = sorted(p.name for p in out_dir.parent.glob(f".{out_dir.name}.building-*"))
            if left:
                return f"silent: {left} left beside {out_dir.name}"
            if not any(name in ran["stderr"] for name in ran["stopped"]):
                return "silent: the rerun did not say what it removed"
            return None
        return runner, check

    other = tmp / ".other.building-keep"
    other.mkdir()
    argv = ["prepare", "--format", "jsonl", "--input", str(corpus), "--tokenizer", str(tokenizer / "tokenizer"),
            "--out", str(tmp / "p-again"), "--workers", "1", "--no-progress"]
    runner, check = rerun_cleans(argv, tmp / "p-again", "tokenizer")
    out.append(Case("prepare/rerun-cleans-a-stopped-build", argv, "ok", kind="4", runner=runner,
                    check=lambda ran: check(ran) or (None if other.is_dir() else "wrong: removed another's folder")))
    model_tmp = tmp / "model"
    model_tmp.mkdir()
    data = prepared_corpus(model_tmp / "corpus")
    cli("pretrain", "--data", data, "--out", model_tmp / "run", *PRETRAIN)
    cli("export", model_tmp / "run", model_tmp / "model")
    ft_data = tmp / "ft-data"
    ft_data.mkdir()
    for split in ("train", "dev"):
        jsonl(ft_data / f"{split}.json", [{"id": f"{split}{i}", "sentence": TEXT * 4, "label": str(i % 2)}
                                          for i in range(400)])
    argv = ["finetune", "--task", "seqcls", "--model", str(model_tmp / "model"), "--data", str(ft_data),
            "--out", str(tmp / "f-again"), "epochs=1", "batch_size=4", "precision=fp32", "device=cpu", "max_length=64",
            "save_model=false"]
    runner, check = rerun_cleans(argv, tmp / "f-again", "log.txt")
    out.append(Case("finetune/rerun-cleans-a-stopped-build", argv, "ok", kind="4", runner=runner, check=check))
    return out


signal_cases.kinds = ("3", "4")


# -- class 2, 6: experiments, the quickstart, Wikispeedia -------------------------------------------------

def _labelled(n: int, labels=("a", "b"), links: int = 1, duplicate: bool = False) -> list[dict]:
    records = [{"id": f"d{i}", "title": f"Doc {i}", "text": f"{TEXT} Topic {labels[i % len(labels)]} number {i}.",
                "links": [f"d{(i + k) % n}" for k in range(1, links + 1)], "label": labels[i % len(labels)]}
               for i in range(n)]
    if duplicate:  # the second d0: another text and label, which prepare skips (it keeps the first)
        records.append({**records[0], "text": "A duplicate that prepare skipped. " * 5, "label": labels[1]})
    return records


def experiment_cases(tmp: Path) -> list[Case]:
    out: list[Case] = []
    graph = ["experiment", "graph", "--mode", "smoke", "--init", "scratch"]

    def no_pretraining(folder: Path):
        return lambda ran: (f"wrong: pretrained before refusing ({sorted(p.name for p in folder.iterdir())})"
                            if (folder / "plan.json").exists() or (folder / "cells").exists() else None)
    one = jsonl(tmp / "one-class.jsonl", _labelled(40, labels=("only",)))
    out.append(Case("experiment/graph-one-class", [*graph, "--corpus", f"jsonl:{one}", "--out", str(tmp / "g1")],
                    "error", names="class", kind="6", check=no_pretraining(tmp / "g1")))
    complete = [{**r, "links": [f"d{j}" for j in range(8) if j != i]} for i, r in enumerate(_labelled(8))]
    full = jsonl(tmp / "complete.jsonl", complete)
    out.append(Case("experiment/graph-too-few-unlinked-candidates", [*graph, "--corpus", f"jsonl:{full}", "--out",
                                                                     str(tmp / "g2")], "error", names="candidates",
                    kind="6", check=no_pretraining(tmp / "g2")))

    # 2: the record prepare kept (the first) for a duplicate id: its text and label
    dup = jsonl(tmp / "duplicates.jsonl", _labelled(60, duplicate=True))

    def first_record_used(files) -> callable:
        def check(ran: dict) -> str | None:
            seen = []
            for path in files():
                for record in (json.loads(line) for line in path.read_text().splitlines() if line.strip()):
                    if record["id"] == "d0":
                        seen.append((record["label"], "duplicate" in record["sentence"]))
            if not seen:
                return "wrong: d0 is in no classification file"
            return None if all(s == ("a", False) for s in seen) else f"silent: d0 read as {seen}"
        return check
    out.append(Case("experiment/graph-duplicate-id-reads-the-kept-record",
                    [*graph, "--corpus", f"jsonl:{dup}", "--out", str(tmp / "g3"), "--seeds", "1",
                     "--variants", "linkbert,init"], "ok", kind="2",
                    check=first_record_used(lambda: sorted((tmp / "g3").glob("eval/fewshot/seed-*/k*/*.json")))))
    out.append(Case("quickstart/duplicate-id-reads-the-kept-record",
                    ["quickstart", "--smoke", "--corpus", f"jsonl:{dup}", "--out", str(tmp / "q")], "ok", kind="2",
                    check=first_record_used(lambda: sorted((tmp / "q" / "finetune" / "data").glob("*.json")))))

    good = {"Paris": TEXT * 3, "France": TEXT * 3, "Seine": TEXT * 3}
    ws = wikispeedia(tmp / "ws", good, "Paris\tFrance\nNowhere\tParis\nNowhere\tSeine\n")
    out.append(Case("wikispeedia/link-from-no-article-counted", prepare_argv("wikispeedia", ws, tmp / "w"), "skip",
                    documents=3, out=tmp / "w", kind="2"))
    return out


experiment_cases.kinds = ("2", "6")


# -- class 7: the quickstart's first result on a busy machine ------------------------------------------

def quickstart_cases(tmp: Path) -> list[Case]:
    def figures(folder: Path) -> dict:
        metrics = json.loads((folder / "report" / "metrics.json").read_text())
        pretrain = metrics["pretrain"]
        return {"steps": pretrain.get("steps"), "eval": pretrain.get("final") or pretrain.get("eval"),
                "finetune": {k: v.get("test_accuracy") for k, v in metrics["finetune"].items() if isinstance(v, dict)
                             and "test_accuracy" in v}}

    def idle_run(timeout) -> dict:
        if (tmp / "idle" / "report" / "metrics.json").is_file():
            return {"exit": 0, "stderr": "", "stdout": ""}
        return run_command(["quickstart", "--smoke", "--out", str(tmp / "idle")], timeout)

    def runner(case, timeout):
        idle = idle_run(timeout)
        busy_loop = subprocess.Popen(["python3", "-c", "while True: pass"])
        try:
            busy = run_command(["quickstart", "--smoke", "--out", str(tmp / "busy")], timeout)
        finally:
            busy_loop.kill()
            busy_loop.wait()
        return {**busy, "exit": idle["exit"] or busy["exit"], "stderr": idle["stderr"] + busy["stderr"]}

    def check(ran: dict) -> str | None:
        idle, busy = figures(tmp / "idle"), figures(tmp / "busy")
        return None if idle == busy else f"wrong: idle {idle} != busy {busy}"

    def untrained_said(ran: dict) -> str | None:
        page = (tmp / "idle" / "report" / "index.html").read_text()
        metrics = json.loads((tmp / "idle" / "report" / "metrics.json").read_text())
        if "not learned" not in page or not metrics["pretrain"].get("learned") is False:
            return "silent: the report of a smoke run (which learns nothing) does not say so"
        return None
    return [Case("quickstart/busy-machine-same-result", [], "ok", kind="7", runner=runner, check=check),
            Case("quickstart/smoke-says-not-learned", [], "ok", kind="7", runner=lambda case, timeout: idle_run(timeout),
                 check=untrained_said)]


quickstart_cases.kinds = ("7",)


GROUPS = [
    (("convert/",), convert_cases),
    (("evaluate/",), evaluate_cases),
    (("pretrain/config", "finetune/recipe"), settings_cases),
    (("pretrain/init", "finetune/model", "export/"), model_cases),
    (("pretrain/corpus",), corpus_cases),
    (("prepare/stdout", "pretrain/stdout", "convert/stdout", "evaluate/stdout"), pipe_cases),
    (("export/full", "convert/full"), disk_cases),
    (("prepare/workers", "prepare/rerun", "finetune/rerun"), signal_cases),
    (("experiment/", "quickstart/duplicate", "wikispeedia/link"), experiment_cases),
    (("quickstart/busy", "quickstart/smoke"), quickstart_cases),
]
