"""``linkbert finetune`` end to end with a tiny BERT built in the test (no downloads), and the
run's settings: types, step plan, task defaults, bad combinations.

Hand-written examples cover the four task types in the default run; copies of a few real
examples from ``$LINKBERT_DATA`` (data-marked) check the released formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import finetune_helpers
import pytest
import yaml
from conftest import build_tiny_bert
from finetune_helpers import (
    DRUGS,
    FAST,
    check_run,
    finetune,
    mc_examples,
    multilabel_examples,
    ner_examples,
    pair_examples,
    qa_examples,
    regression_examples,
    relation_examples,
    splits_of,
    texts_of,
    write_data,
)

from linkbert import settings
from linkbert.errors import ConfigError
from linkbert.finetune.run import FinetuneConfig, resolve
from linkbert.finetune.task_base import TaskSetupError
from linkbert.finetune.tasks import make_task

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


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


def test_training_keeps_spans_inside_the_context_and_skips_the_others(tmp_path, tiny_model):
    """As the released run_qa.py: a span inside the context trains even where its text differs
    from the answer text; one outside the context, or no answer, has nothing to learn."""
    splits = splits_of(qa_examples)
    splits["train"][0]["answers"]["answer_start"] = [0]  # inside the context, at other text: kept
    context = splits["train"][1]["context"]
    splits["train"][1]["answers"]["answer_start"] = [len(context) - 1]  # runs past the context: skipped
    splits["train"][2]["answers"] = {"answer_start": [], "text": []}  # no answer: skipped
    data = write_data(tmp_path / "qa", splits)
    out = tmp_path / "run"
    assert finetune("--task", "qa", "--model", tiny_model, "--data", data, "--out", out, "max_length=64",
                    "doc_stride=16", "save_model=false", *FAST, "max_steps=1") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_examples"] == 6
    assert metrics["stats"]["train_skipped"] == {"no_answer": 1, "span_outside_context": 1}
    assert metrics["stats"]["train_answer_text_differs_kept"] == 1
    assert metrics["stats"]["dev_answer_not_in_context"] == 0


# ---------------------------------------------------------------- settings


def coerce(key: str, value, source: str):
    return settings.coerce(FinetuneConfig, key, value, source)


def test_settings_are_typed_by_their_field():
    assert coerce("lr", "2e-5", "t") == 2e-5
    assert coerce("epochs", "3", "t") == 3.0
    assert coerce("batch_size", "16", "t") == 16
    assert coerce("max_steps", "1e3", "t") == 1000
    assert coerce("save_model", "false", "t") is False
    assert coerce("select_best_on_dev", "yes", "t") is True
    assert coerce("dataset", "NCBI-disease", "t") == "NCBI-disease"
    for key, bad in [("batch_size", "2.5"), ("lr", "fast"), ("save_model", "maybe"), ("batch_size", True)]:
        with pytest.raises(ConfigError, match=key):
            coerce(key, bad, "t")
    with pytest.raises(ConfigError, match="valid settings: task, model"):
        coerce("learning_rate", "1e-5", "t")


RUN = {"model": "m", "data": "d/NCBI-disease_hf", "out": "o"}


def test_resolve_fills_the_task_defaults_without_building_a_task():
    config = resolve(FinetuneConfig(task="qa", **RUN))
    assert (config.max_length, config.metric, config.dataset) == (384, "squad", "NCBI-disease")
    assert resolve(FinetuneConfig(task="tokcls", **RUN)).max_length == 512


@pytest.mark.parametrize("values, message", [
    ({"task": ""}, "task must be one of seqcls, tokcls, qa, mc"),
    ({"task": "mc", "out": ""}, "out is not set"),
    ({"task": "mc", "precision": "fp8"}, "precision must be one of auto, fp32, bf16, fp16"),
    ({"task": "mc", "batch_size": 0}, "batch_size must be at least 1"),
    ({"task": "mc", "lr": 0.0}, "lr must be above 0"),
    ({"task": "mc", "epochs": -1.0}, "epochs must be at least 0"),
    ({"task": "mc", "epochs": 0.0}, "training needs epochs > 0 or max_steps > 0"),
    ({"task": "mc", "device": "gpu"}, "device must be auto, cpu, cuda or cuda:N"),
    ({"task": "mc", "metric": "pearsonr"}, "metric 'pearsonr' is not one for mc"),
    ({"task": "qa", "max_length": 64, "doc_stride": 61}, "doc_stride must be between 1 and max_length - 4"),
    ({"task": "qa", "doc_stride": 381}, r"max_length=384\)"),
])
def test_bad_combinations_are_config_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        resolve(FinetuneConfig(**{**RUN, **values}))


def test_eval_only_needs_no_epochs_and_a_task_error_is_a_config_error():
    assert resolve(FinetuneConfig(task="mc", epochs=0, eval_only=True, **RUN)).eval_only
    assert issubclass(TaskSetupError, ConfigError)
    with pytest.raises(ConfigError, match="metric 'hoc' is not one for tokcls"):
        make_task("tokcls", max_length=16, metric="hoc", model="m")


def test_precision_is_auto_by_default_which_is_fp32_on_a_cpu_without_fast_bf16(monkeypatch):
    """As every recipe, the quickstart and the experiments: bf16 where the device is fast at it."""
    import torch

    from linkbert import runtime

    assert FinetuneConfig().precision == "auto"
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: False)
    assert runtime.resolve_precision(FinetuneConfig().precision, torch.device("cpu")) == "fp32"
    monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda: True)
    assert runtime.resolve_precision(FinetuneConfig().precision, torch.device("cpu")) == "bf16"


def test_the_old_name_of_max_length_is_explained():
    with pytest.raises(ConfigError, match="'max_seq_length' is now called 'max_length'"):
        settings.parse_overrides(FinetuneConfig, ["max_seq_length=128"])


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
    assert metrics["stats"]["train_skipped"] == {} and metrics["stats"]["train_answer_text_differs_kept"] == 0


def test_fine_tuning_tracks_its_loss_and_scores(tmp_path, tiny_model, monkeypatch):
    """tracker=tensorboard|wandb: the training loss and learning rate at every logged update and
    the final dev and test scores, inside the run folder (built beside OUT, renamed in whole)."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    from conftest import tensorboard_tags, wandb_file

    monkeypatch.delenv("WANDB_MODE", raising=False)
    data = write_data(tmp_path / "ner", splits_of(ner_examples))
    for tracker in ("tensorboard", "wandb"):
        assert finetune("--task", "tokcls", "--model", tiny_model, "--data", data, "--out", tmp_path / tracker,
                        f"tracker={tracker}", "save_model=false", *FAST) == 0
    tags = tensorboard_tags(tmp_path / "tensorboard")
    assert {"train/loss", "train/lr", "dev/main", "test/main"} <= tags
    written = wandb_file(tmp_path / "wandb")
    assert [tag for tag in tags if tag.encode() not in written] == []
