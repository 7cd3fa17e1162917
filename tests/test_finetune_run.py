"""``linkbert finetune`` end to end with a tiny BERT built in the test (no downloads).

Hand-written examples cover the four task types in the default run; copies of a few real
examples from ``$LINKBERT_DATA`` (data-marked) check the released formats. Bad inputs must
end with exit status 2 and a message naming the file and line.
"""

from __future__ import annotations

import json
import math
import shutil
import string
from pathlib import Path

import pytest
import torch
import yaml
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import BertConfig, BertModel, BertTokenizer

from linkbert.cli import main

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FAST = ["epochs=1", "batch_size=4", "eval_batch_size=8", "log_every=1"]


# ---------------------------------------------------------------- tiny model and data helpers


def texts_of(record: dict) -> list[str]:
    """Every string in a record (nested lists and dicts included)."""
    if isinstance(record, str):
        return [record]
    if isinstance(record, dict):
        return [t for v in record.values() for t in texts_of(v)]
    if isinstance(record, list):
        return [t for v in record for t in texts_of(v)]
    return []


def build_tiny_bert(folder: Path, texts: list[str], split_words=("hyperparathyroidism",)) -> Path:
    """A 2-layer BERT (random weights) and a WordPiece vocab of the words in ``texts``.

    Words in ``split_words`` are left out of the vocab so they fall apart into single-letter
    sub-tokens, which exercises first-sub-token labelling and character offsets.
    """
    normalizer, pre = BertNormalizer(lowercase=True), BertPreTokenizer()
    words = {w for text in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))}
    words -= set(split_words)
    chars = sorted(set("".join(words)) | set(string.ascii_lowercase + string.digits))
    vocab = list(dict.fromkeys(SPECIALS + sorted(words) + chars + ["##" + c for c in chars]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)  # a plain BERT export: no task head
    return folder


def write_split(folder: Path, name: str, records: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.json", "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")


def write_data(folder: Path, splits: dict[str, list[dict]]) -> Path:
    for name, records in splits.items():
        write_split(folder, name, records)
    return folder


def finetune(*args: str) -> int:
    """``linkbert finetune ARGS`` in-process, on one CPU thread: on a busy shared machine torch's
    thread pool waits far longer than a tiny model computes (KEY=VALUE settings come last)."""
    return main(["finetune", *map(str, args), "threads=1"])


def check_run(out: Path, task: str, dataset: str, metric: str, counts: dict[str, int], trained: bool = True) -> dict:
    """The agreed ``metrics.json`` schema, one prediction per example, the resolved config."""
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["dataset"], metrics["task"], metrics["metric"]) == (dataset, task, metric)
    assert isinstance(metrics["model"], str) and metrics["model"]
    assert isinstance(metrics["seconds"], float) and metrics["seconds"] > 0
    assert isinstance(metrics["train_examples"], int)
    for split in ("dev", "test"):
        if split not in counts:
            assert split not in metrics and not (out / f"predictions_{split}.json").exists()
            continue
        main_score = metrics[split]["main"]
        assert isinstance(main_score, float)
        assert math.isnan(main_score) or 0.0 <= main_score <= 100.0 or metric == "pearsonr"
        predictions = json.loads((out / f"predictions_{split}.json").read_text())
        assert len(predictions) == counts[split]
        assert metrics["eval_examples"][split] == counts[split]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["task"] == task and config["max_length"] > 0
    assert (out / "model.safetensors").exists() == (trained and config["save_model"])
    return metrics


# ---------------------------------------------------------------- hand-written examples

DRUGS = ["aspirin", "insulin", "heparin", "warfarin", "metformin", "statin", "ibuprofen", "codeine"]
EFFECTS = [("reduce", "reduced", "yes"), ("raise", "did not change", "no"), ("cure", "may cure", "maybe")]


def pair_examples(n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        drug, (verb, result, label) = DRUGS[i % len(DRUGS)], EFFECTS[i % len(EFFECTS)]
        rows.append({"id": f"{prefix}{i}", "sentence1": f"does {drug} {verb} pain ?",
                     "sentence2": f"in trials {drug} {result} pain in patients .", "label": label})
    return rows


def multilabel_examples(n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "sentence": f"{DRUGS[i % 8]} affects growth and {DRUGS[(i + 3) % 8]} .",
             "label": [i % 2, (i // 2) % 2, 1 - i % 2]} for i in range(n)]


def regression_examples(n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "sentence1": f"{DRUGS[i % 8]} lowers pain .",
             "sentence2": f"{DRUGS[(i * 3) % 8]} lowers pain .", "label": float(i % 5) + 0.5} for i in range(n)]


def relation_examples(n: int, prefix: str) -> list[dict]:
    labels = ["0", "CPR:3", "CPR:4"]
    return [{"id": f"{prefix}{i}", "sentence": f"@CHEMICAL$ binds @GENE$ near {DRUGS[i % 8]} .",
             "label": labels[i % 3]} for i in range(n)]


def ner_examples(n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        drug = DRUGS[i % 8]
        tokens = ["secondary", "hyperparathyroidism", "after", drug, "in", "renal", "failure", "."]
        tags = ["B", "I", "O", "O", "O", "B", "I", "O"] if i % 2 else ["O", "B", "O", "O", "O", "O", "O", "O"]
        rows.append({"tokens": tokens, "ner_tags": tags, "id": f"{prefix}{i}"})
    return rows


def qa_examples(n: int, prefix: str) -> list[dict]:
    rows = []
    for i in range(n):
        drug = DRUGS[i % 8]
        filler = " ".join(f"{DRUGS[(i + k) % 8]} was studied in year {1990 + k} ." for k in range(6))
        context = f"{filler} the trial of {drug} ended in {2000 + i} with good results ."
        answer = f"{2000 + i}"
        rows.append({"id": f"{prefix}{i}", "question": f" when did the trial of {drug} end ?",
                     "context": context, "answers": {"text": [answer], "answer_start": [context.index(answer)]}})
    return rows


def mc_examples(n: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}{i}", "sent1": f"which drug treats pain number {i} ?", "sent2": "",
             **{f"ending{k}": DRUGS[(i + k) % 8] for k in range(4)}, "label": i % 4} for i in range(n)]


def splits_of(make, train=8, dev=4, test=4) -> dict[str, list[dict]]:
    return {"train": make(train, "tr"), "dev": make(dev, "dv"), "test": make(test, "te")}


ALL_MAKERS = [pair_examples, multilabel_examples, regression_examples, relation_examples, ner_examples,
              qa_examples, mc_examples]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    texts = [t for make in ALL_MAKERS for record in make(8, "x") for t in texts_of(record)]
    return build_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", texts + ["@", "$", ":"])


@pytest.mark.parametrize("make, metric, dataset", [
    (pair_examples, "accuracy", "pubmed-like"),
    (multilabel_examples, "hoc", "hoc-like"),
    (regression_examples, "pearsonr", "biosses-like"),
    (relation_examples, "PRF1", "chemprot-like"),
])
def test_seqcls_variants(tmp_path, tiny_model, make, metric, dataset):
    data = write_data(tmp_path / f"{dataset}_hf", splits_of(make))
    out = tmp_path / "run"
    assert finetune("--task", "seqcls", "--model", tiny_model, "--data", data, "--out", out,
                    f"metric={metric}", *FAST) == 0
    metrics = check_run(out, "seqcls", dataset, metric, {"dev": 4, "test": 4})
    assert metrics["train_examples"] == 8 and metrics["steps"] == 2
    predictions = json.loads((out / "predictions_dev.json").read_text())
    assert set(predictions) == {"dv0", "dv1", "dv2", "dv3"}
    if metric == "hoc":
        assert all(len(p) == 3 and set(p) <= {0, 1} for p in predictions.values())
    if metric == "pearsonr":
        assert all(isinstance(p, float) for p in predictions.values())
    saved = json.loads((out / "config.json").read_text())
    problem = {"hoc": "multi_label_classification", "pearsonr": "regression"}.get(metric, "single_label_classification")
    assert saved["problem_type"] == problem


def test_tokcls(tmp_path, tiny_model):
    data = write_data(tmp_path / "ner", splits_of(ner_examples))
    out = tmp_path / "run"
    assert finetune("--task", "tokcls", "--model", tiny_model, "--data", data, "--out", out, *FAST) == 0
    check_run(out, "tokcls", "ner", "seqeval", {"dev": 4, "test": 4})
    predictions = json.loads((out / "predictions_test.json").read_text())
    assert all(len(tags) == 8 and set(tags) <= {"B", "I", "O"} for tags in predictions.values())
    # the PICO metric on the same data (word-level macro F1)
    assert finetune("--task", "tokcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "pico",
                    "metric=pico", "save_model=false", "precision=bf16", *FAST) == 0
    check_run(tmp_path / "pico", "tokcls", "ner", "pico", {"dev": 4, "test": 4})


def test_qa_windows_and_training(tmp_path, tiny_model):
    data = write_data(tmp_path / "qa", splits_of(qa_examples))
    out = tmp_path / "run"
    # 40-token windows, 16 apart: every context needs several windows
    assert finetune("--task", "qa", "--model", tiny_model, "--data", data, "--out", out,
                    "max_length=40", "doc_stride=16", *FAST, "max_steps=2") == 0
    metrics = check_run(out, "qa", "qa", "squad", {"dev": 4, "test": 4})
    assert metrics["train_features"] >= 3 * metrics["train_examples"] and metrics["steps"] == 2
    assert set(metrics["dev"]) >= {"exact_match", "f1", "main"} and metrics["dev"]["main"] == metrics["dev"]["f1"]
    predictions = json.loads((out / "predictions_dev.json").read_text())
    contexts = {r["id"]: r["context"] for r in qa_examples(4, "dv")}
    assert all(isinstance(p, str) and p in contexts[qid] for qid, p in predictions.items())


def test_qa_gold_logits_give_back_the_gold_answers(tmp_path, tiny_model):
    """Windows, offsets, training targets and post-processing agree: logits peaked on each
    window's training target reproduce the gold answers exactly."""
    from transformers import AutoTokenizer

    from linkbert.finetune.data import load_data
    from linkbert.finetune.tasks import make_task

    data = write_data(tmp_path / "qa", {"dev": qa_examples(6, "dv")})
    task = make_task("qa", max_length=40, doc_stride=16, n_best=20, max_answer_length=30, metric="")
    split = task.setup(load_data(data, "qa", need_train=False), None)["dev"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    targets = task.encode(split, tokenizer, training=True)  # same windows, with target positions
    features = task.encode(split, tokenizer, training=False)
    assert len(targets) == len(features) > 2 * len(split)
    outputs = []
    for target in targets:
        start, end = [torch.zeros(len(target["input_ids"])).numpy() for _ in range(2)]
        if target["start_positions"]:  # 0: the answer is not in this window
            start[target["start_positions"]], end[target["end_positions"]] = 10.0, 10.0
        outputs.append((start, end))
    predictions = task.decode(split, features, outputs)
    assert predictions == {r["id"]: r["answers"]["text"][0] for r in split.records}
    assert task.score(split, predictions)["exact_match"] == 100.0


def test_mc_then_zero_shot_eval_only(tmp_path, tiny_model):
    data = write_data(tmp_path / "medqa_usmle_hf", splits_of(mc_examples))
    out = tmp_path / "medqa"
    assert finetune("--task", "mc", "--model", tiny_model, "--data", data, "--out", out, *FAST) == 0
    check_run(out, "mc", "medqa_usmle", "accuracy", {"dev": 4, "test": 4})
    # the fine-tuned run folder is a model: evaluate it on another set without training
    other = write_data(tmp_path / "mmlu", {"test": mc_examples(6, "mm")})
    assert finetune("--model", out, "--data", other, "--out", tmp_path / "mmlu_run",
                    "--recipe", "configs/finetune/mmlu.yaml") == 0
    metrics = check_run(tmp_path / "mmlu_run", "mc", "mmlu", "accuracy", {"test": 6}, trained=False)
    assert metrics["train_examples"] == 0 and metrics["eval_only"] is True


def test_mc_learns_an_easy_rule(tmp_path, tiny_model):
    """The right choice is always "aspirin", placed at a varying position: learnable only when
    choices, labels and the softmax over choices line up."""
    def easy(n, prefix):
        rows = []
        for i in range(n):
            others = [d for d in DRUGS if d != "aspirin"][i % 5:i % 5 + 3]
            endings = others[:i % 4] + ["aspirin"] + others[i % 4:]
            rows.append({"id": f"{prefix}{i}", "sent1": f"which drug treats pain number {i} ?", "sent2": "",
                         **{f"ending{k}": e for k, e in enumerate(endings)}, "label": i % 4})
        return rows

    data = write_data(tmp_path / "easy", {"train": easy(32, "tr"), "dev": easy(16, "dv")})
    out = tmp_path / "run"
    assert finetune("--task", "mc", "--model", tiny_model, "--data", data, "--out", out, "lr=1e-3",
                    "batch_size=8", "max_steps=40", "save_model=false") == 0
    assert json.loads((out / "metrics.json").read_text())["dev"]["accuracy"] >= 0.9


def test_seqcls_eval_only_uses_the_saved_label_names(tmp_path, tiny_model):
    data = write_data(tmp_path / "pqa", splits_of(pair_examples))
    out = tmp_path / "run"
    assert finetune("--task", "seqcls", "--model", tiny_model, "--data", data, "--out", out, *FAST) == 0
    again = tmp_path / "again"
    assert finetune("--task", "seqcls", "--model", out, "--data", data, "--out", again, "--eval-only") == 0
    first = json.loads((out / "predictions_test.json").read_text())
    assert json.loads((again / "predictions_test.json").read_text()) == first
    assert set(first.values()) <= {"yes", "no", "maybe"}


def test_same_seed_same_result_and_best_on_dev(tmp_path, tiny_model):
    data = write_data(tmp_path / "pqa", splits_of(pair_examples))
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert finetune("--task", "seqcls", "--model", tiny_model, "--data", data, "--out", out,
                        "seed=7", "save_model=false", *FAST) == 0
        runs.append(json.loads((out / "metrics.json").read_text()))
    assert runs[0]["dev"] == runs[1]["dev"] and runs[0]["test"] == runs[1]["test"]
    out = tmp_path / "best"
    assert finetune("--task", "seqcls", "--model", tiny_model, "--data", data, "--out", out,
                    "epochs=2", "batch_size=4", "select_best_on_dev=true", "max_steps=3", "save_model=false") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_epoch"] in (1, 2) and metrics["steps"] == 3


def test_recipe_values_and_overrides(tmp_path, tiny_model):
    data = write_data(tmp_path / "ner", splits_of(ner_examples))
    out = tmp_path / "run"
    assert finetune("--model", tiny_model, "--data", data, "--out", out, "--recipe",
                    "configs/finetune/NCBI-disease.yaml", "max_steps=1", "max_length=64",
                    "max_train_examples=4", "max_eval_examples=2", "save_model=false") == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["lr"], config["batch_size"], config["warmup_ratio"], config["epochs"]) == (5e-5, 32, 0.1, 20.0)
    assert config["max_length"] == 64
    metrics = check_run(out, "tokcls", "NCBI-disease", "seqeval", {"dev": 2, "test": 2})
    assert metrics["train_examples"] == 4 and metrics["steps"] == 1


def test_every_recipe_is_valid():
    from linkbert.finetune.run import FinetuneConfig
    from linkbert.metrics import BLURB_TASKS
    from linkbert.settings import read_settings

    recipes = {p.stem: read_settings(FinetuneConfig, p) for p in Path("configs/finetune").glob("*.yaml")}
    assert set(BLURB_TASKS) <= set(recipes)
    assert {"squad", "hotpot", "triviaqa", "searchqa", "naturalqa", "newsqa", "medqa_usmle", "mmlu"} <= set(recipes)
    for name, values in recipes.items():
        assert values["dataset"] == name and values["task"] in ("seqcls", "tokcls", "qa", "mc")


# ---------------------------------------------------------------- bad inputs


def fails_with(capsys, *args) -> str:
    """The error of ``linkbert finetune ARGS``: exit status 2, the message as stderr's last line
    (before it, only what libraries print while loading the model), no traceback."""
    assert finetune(*args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("linkbert finetune: error: "), err
    return err


def one_line_error(err: str) -> str:
    """A settings error is all of stderr: one line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("linkbert finetune: error: "), err
    return lines[0]


def test_wrong_task_file(tmp_path, tiny_model, capsys):
    data = write_data(tmp_path / "ner", splits_of(ner_examples))
    err = fails_with(capsys, "--task", "seqcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "train.json, line 1" in err and "has a tokcls record" in err


def test_missing_field(tmp_path, tiny_model, capsys):
    splits = splits_of(pair_examples)
    del splits["dev"][2]["label"]
    data = write_data(tmp_path / "d", splits)
    err = fails_with(capsys, "--task", "seqcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "dev.json, line 3" in err and "missing field(s) label" in err


def test_label_unseen_in_training(tmp_path, tiny_model, capsys):
    splits = splits_of(pair_examples)
    splits["test"][1]["label"] = "perhaps"
    data = write_data(tmp_path / "d", splits)
    err = fails_with(capsys, "--task", "seqcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "test.json, line 2" in err and "'perhaps' not in the training labels" in err
    splits = splits_of(ner_examples)
    splits["dev"][0]["ner_tags"][0] = "B-Chemical"
    data = write_data(tmp_path / "n", splits)
    err = fails_with(capsys, "--task", "tokcls", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "dev.json, line 1" in err and "'B-Chemical'" in err


def test_answer_not_in_context_is_counted_and_skipped(tmp_path, tiny_model):
    splits = splits_of(qa_examples)
    splits["train"][0]["answers"]["answer_start"] = [0]  # points at the wrong text
    data = write_data(tmp_path / "qa", splits)
    out = tmp_path / "run"
    assert finetune("--task", "qa", "--model", tiny_model, "--data", data, "--out", out, "max_length=64",
                    "doc_stride=16", "save_model=false", *FAST, "max_steps=1") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_examples"] == 7 and metrics["stats"]["train_answer_not_in_context"] == 1
    assert metrics["stats"]["dev_answer_not_in_context"] == 0


def test_empty_split_and_missing_train(tmp_path, tiny_model, capsys):
    splits = splits_of(mc_examples)
    splits["dev"] = []
    data = write_data(tmp_path / "d", splits)
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "dev.json" in err and "no records" in err
    data = write_data(tmp_path / "e", {"dev": mc_examples(4, "d"), "test": mc_examples(4, "t")})
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "train.json" in err and "--eval-only" in err


def test_malformed_line_and_duplicate_id(tmp_path, tiny_model, capsys):
    data = write_data(tmp_path / "d", splits_of(mc_examples))
    with open(data / "test.json", "a") as f:
        f.write("{not json\n")
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "test.json, line 5" in err and "not valid JSON" in err
    splits = splits_of(mc_examples)
    splits["train"][3]["id"] = splits["train"][0]["id"]
    data = write_data(tmp_path / "e", splits)
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o")
    assert "train.json, line 4" in err and "already used on line 1" in err


def test_bad_settings(tmp_path, tiny_model, capsys):
    data = write_data(tmp_path / "d", splits_of(mc_examples))
    common = ["--model", tiny_model, "--data", data, "--out", tmp_path / "o"]
    err = fails_with(capsys, "--task", "mc", *common, "learning_rate=1e-5")
    assert "unknown setting 'learning_rate'" in err and "lr" in err and "batch_size" in err
    assert "lr should be float" in fails_with(capsys, "--task", "mc", *common, "lr=fast")
    assert "needs a CUDA device" in fails_with(capsys, "--task", "mc", *common, "precision=fp16", "device=cpu")
    assert "metric 'pearsonr' is not one for mc" in fails_with(capsys, "--task", "mc", *common, "metric=pearsonr")
    err = fails_with(capsys, "--task", "mc", *common, "--recipe", "configs/finetune/NCBI-disease.yaml")
    assert "is for task tokcls" in err
    assert "task must be one of" in fails_with(capsys, *common)
    err = fails_with(capsys, "--task", "mc", *common, "--eval-only")  # a plain BERT has no mc head
    assert "--eval-only needs a model fine-tuned for mc" in err and "classifier.weight" in err
    assert "doc_stride must be" in fails_with(capsys, "--task", "qa", *common, "max_length=64")


@pytest.mark.parametrize("words, message", [
    (["learning_rate=1e-5"], "override: unknown setting 'learning_rate'; valid settings: task, model"),
    (["max_seq_length=128"], "the setting 'max_seq_length' is now called 'max_length'"),
    (["batch_size=many"], "batch_size should be int, got 'many'"),
    (["batch_size=0"], "batch_size must be at least 1 (got 0)"),
    (["warmup_ratio=1.5"], "warmup_ratio must be at most 1 (got 1.5)"),
    (["adam_eps=0"], "adam_eps must be above 0 (got 0)"),
    (["precision=fp8"], "precision must be one of auto, fp32, bf16, fp16 (got 'fp8')"),
    (["--task", "ner"], "task must be one of seqcls, tokcls, qa, mc (got 'ner')"),
    (["task=ner"], "task must be one of seqcls, tokcls, qa, mc (got 'ner')"),
    (["lr"], "override 'lr' is not key=value"),
    (["--recipe", "configs/finetune/nothing.yaml"], "settings file not found"),
])
def test_a_bad_setting_is_one_line_and_status_2(tmp_path, capsys, words, message):
    """Through ``linkbert.cli.main``, as a user runs it: no traceback, whatever the mistake."""
    task = [] if "--task" in words else ["--task", "mc"]
    status = main(["finetune", *words, *task, "--model", "m", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert status == 2
    assert message in one_line_error(capsys.readouterr().err)


OVERRIDES_ANYWHERE = [
    ["seed=5", "max_steps=3", "--task", "mc", "--model", "m", "--data", "d", "--out", "o"],
    ["--task", "mc", "seed=5", "--model", "m", "--data", "d", "max_steps=3", "--out", "o"],
    ["--task", "mc", "--model", "m", "--data", "d", "--out", "o", "seed=5", "max_steps=3"],
    ["seed=5", "--task", "mc", "--model", "m", "--data", "d", "max_steps=3", "--out", "o", "lr=1e-4"],
]


@pytest.mark.parametrize("argv", OVERRIDES_ANYWHERE, ids=["before", "between", "after", "everywhere"])
def test_overrides_before_between_and_after_the_flags(argv):
    from linkbert.cli import parse
    from linkbert.finetune.command import build_config

    config = build_config(parse(["finetune", *argv]))
    assert (config.task, config.model, config.data, config.out, config.seed, config.max_steps) == \
        ("mc", "m", "d", "o", 5, 3)


def test_defaults_then_recipe_then_flags_then_overrides():
    from linkbert.cli import parse
    from linkbert.finetune.command import build_config

    config = build_config(parse(["finetune", "--recipe", "configs/finetune/NCBI-disease.yaml", "lr=1e-4",
                                 "--model", "m", "--data", "d", "--out", "o", "out=o2", "--eval-only"]))
    assert (config.task, config.epochs, config.warmup_ratio) == ("tokcls", 20.0, 0.1)  # the recipe's
    assert (config.lr, config.out, config.eval_only, config.seed) == (1e-4, "o2", True, 42)


def test_overrides_anywhere_in_a_real_run(tmp_path, tiny_model):
    data = write_data(tmp_path / "mc", splits_of(mc_examples))
    out = tmp_path / "run"
    assert main(["finetune", "seed=5", "--task", "mc", "threads=1", "--model", str(tiny_model), "max_steps=1",
                 "--data", str(data), "--out", str(out), "save_model=false", "batch_size=4"]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["seed"], config["threads"], config["max_steps"], config["save_model"]) == (5, 1, 1, False)
    assert json.loads((out / "metrics.json").read_text())["steps"] == 1


def test_help_lists_every_setting(capsys):
    import dataclasses

    from linkbert.finetune.run import FinetuneConfig

    with pytest.raises(SystemExit) as exit_:
        main(["finetune", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for field in dataclasses.fields(FinetuneConfig):
        assert f"  {field.name} " in text and field.metadata["help"][:40] in text, field.name


def test_model_folder_without_safetensors(tmp_path, tiny_model, capsys):
    model = tmp_path / "pickled"
    shutil.copytree(tiny_model, model)
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    data = write_data(tmp_path / "d", splits_of(mc_examples))
    err = fails_with(capsys, "--task", "mc", "--model", model, "--data", data, "--out", tmp_path / "o")
    assert "no *.safetensors weights" in err


# ---------------------------------------------------------------- real examples (shared data)


def spread_lines(path: Path, n: int, part: slice = slice(None)) -> list[dict]:
    """``n`` evenly spaced lines of ``part`` of a file (files can be sorted by label: a head
    would hold one class only)."""
    lines = path.read_text(encoding="utf-8").splitlines()[part]
    return [json.loads(lines[i * (len(lines) // n)]) for i in range(n)]


def copy_real(shared: Path, sub: str, train_from: str = "train") -> dict[str, list[dict]]:
    """16 train / 8 dev / 8 test lines of a released ``_hf`` folder. MedQA has no train here:
    the second half of dev stands in for it, dev lines come from the first half."""
    source = shared / "blurb" / "linkbert_format" / sub
    if not source.is_dir():
        pytest.skip(f"missing {source}")
    if train_from == "train":
        train, dev = spread_lines(source / "train.json", 16), spread_lines(source / "dev.json", 8)
    else:
        half = len((source / "dev.json").read_text(encoding="utf-8").splitlines()) // 2
        train = spread_lines(source / "dev.json", 16, slice(half, None))
        dev = spread_lines(source / "dev.json", 8, slice(None, half))
    return {"train": train, "dev": dev, "test": spread_lines(source / "test.json", 8)}


def squad_part(shared: Path, articles: slice) -> list[dict]:
    """Official SQuAD JSON -> qa records (a minimal conversion, for the test only)."""
    path = shared / "squad" / "dev-v1.1-part-a.json"
    if not path.exists():
        pytest.skip(f"missing {path}")
    records = []
    for article in json.loads(path.read_text(encoding="utf-8"))["data"][articles]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                records.append({"id": qa["id"], "question": qa["question"], "context": paragraph["context"],
                                "answers": {"text": [a["text"] for a in qa["answers"]],
                                            "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    return records


@pytest.mark.data
@pytest.mark.parametrize("task, sub, recipe, train_from", [
    ("seqcls", "seqcls/pubmedqa_hf", "pubmedqa", "train"),
    ("seqcls", "seqcls/HoC_hf", "HoC", "train"),
    ("tokcls", "tokcls/NCBI-disease_hf", "NCBI-disease", "train"),
    ("mc", "mc/medqa_usmle_hf", "medqa_usmle", "dev"),
])
def test_real_examples(shared_data, tmp_path, task, sub, recipe, train_from):
    splits = copy_real(shared_data, sub, train_from)
    data = write_data(tmp_path / Path(sub).name, splits)
    model = build_tiny_bert(tmp_path / "bert", [t for rows in splits.values() for r in rows for t in texts_of(r)])
    out = tmp_path / "run"
    assert finetune("--task", task, "--model", model, "--data", data, "--out", out, "--recipe",
                    f"configs/finetune/{recipe}.yaml", "max_steps=2", "batch_size=8", "grad_accum_steps=1",
                    "max_length=64", "warmup_steps=0", "save_model=false") == 0
    metric = yaml.safe_load(Path(f"configs/finetune/{recipe}.yaml").read_text())["metric"]
    check_run(out, task, recipe, metric, {"dev": 8, "test": 8})


@pytest.mark.data
def test_real_squad(shared_data, tmp_path):
    train, evaluation = squad_part(shared_data, slice(0, 1))[:16], squad_part(shared_data, slice(1, 2))[:16]
    data = write_data(tmp_path / "squad", {"train": train, "dev": evaluation[:8], "test": evaluation[8:]})
    model = build_tiny_bert(tmp_path / "bert", [t for r in train + evaluation for t in texts_of(r)])
    out = tmp_path / "run"
    assert finetune("--model", model, "--data", data, "--out", out, "--recipe", "configs/finetune/squad.yaml",
                    "max_steps=2", "max_length=96", "doc_stride=32", "save_model=false") == 0
    metrics = check_run(out, "qa", "squad", "squad", {"dev": 8, "test": 8})
    assert metrics["stats"]["train_answer_not_in_context"] == 0
