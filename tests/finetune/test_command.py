"""The ``linkbert finetune`` command: where settings come from (defaults < recipe < flags <
``KEY=VALUE`` overrides, which may stand anywhere), the shipped recipes, its help, and bad
settings, which end with exit status 2 and one line, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import finetune_helpers
import pytest
import yaml
from finetune_helpers import (
    check_run,
    fails_with,
    finetune,
    mc_examples,
    ner_examples,
    one_line_error,
    splits_of,
    write_data,
)

from linkbert.cli import main

tiny_model = finetune_helpers.tiny_model  # a fixture: a tiny BERT for the examples, built once per module


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

    for folder in (Path("configs/finetune"), Path("configs/finetune/large")):
        recipes = {p.stem: read_settings(FinetuneConfig, p) for p in folder.glob("*.yaml")}
        assert set(BLURB_TASKS) <= set(recipes)
        assert {"squad", "hotpot", "triviaqa", "searchqa", "naturalqa", "newsqa", "medqa_usmle"} <= set(recipes)
        for name, values in recipes.items():
            assert values["dataset"] == name and values["task"] in ("seqcls", "tokcls", "qa", "mc")
            assert values["precision"] == "auto"


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
    # the scores of the last log line at the tables' 2 decimals, not float noise
    assert re.search(r"metrics\.json \(dev \d+\.\d\d, test \d+\.\d\d\) in \d+ s$", (out / "log.txt").read_text().strip())


def test_help_lists_every_setting(capsys):
    import dataclasses

    from linkbert.finetune.run import FinetuneConfig

    with pytest.raises(SystemExit) as exit_:
        main(["finetune", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    for field in dataclasses.fields(FinetuneConfig):
        assert "--" + field.name.replace("_", "-") in text and field.metadata["help"][:40] in text, field.name
    assert "--recipe YAML" in text and "key=value" in text and "--task seqcls|tokcls|qa|mc" in text


def test_every_setting_is_a_flag_too():
    from linkbert.cli import parse
    from linkbert.finetune.command import build_config

    config = build_config(parse(["finetune", "--task", "qa", "--model", "m", "--data", "d", "--out", "o", "--lr",
                                 "3e-5", "--doc-stride", "64", "--no-save-model", "--select-best-on-dev",
                                 "seed=7"]))
    assert (config.lr, config.doc_stride, config.save_model, config.select_best_on_dev, config.seed) == \
        (3e-5, 64, False, True, 7)
    # key=value wins over the flag, as over the recipe
    assert build_config(parse(["finetune", "--task", "qa", "--model", "m", "--data", "d", "--out", "o",
                               "--lr", "3e-5", "lr=1e-5"])).lr == 1e-5


# ---------------------------------------------------------------- the output folder and faults


def test_out_is_new_or_empty_unless_overwrite(tmp_path, tiny_model, capsys):
    """A second run into the same folder is refused, the first one's files untouched; with
    overwrite=true the folder is replaced, when the new run completes."""
    data = write_data(tmp_path / "mc", splits_of(mc_examples))
    out = tmp_path / "run"
    run = ["--task", "mc", "--model", tiny_model, "--data", data, "--out", out, "max_steps=1", "batch_size=4",
           "save_model=false"]
    assert finetune(*run) == 0
    first = (out / "metrics.json").read_bytes()
    err = fails_with(capsys, *run)
    assert f"{out} is not empty" in err and "overwrite=true" in one_line_error(err.splitlines()[-1])
    assert (out / "metrics.json").read_bytes() == first
    (out / "stale.txt").write_text("from before")
    assert finetune(*run, "overwrite=true", "seed=3") == 0
    assert not (out / "stale.txt").exists() and json.loads((out / "metrics.json").read_text())["seed"] == 3
    assert not list(tmp_path.glob(".run.*"))  # nothing left beside it
    (tmp_path / "file").write_text("x")
    assert "exists and is not a folder" in fails_with(capsys, *run[:-4], tmp_path / "file", *run[-3:])


def test_out_inside_an_input_is_refused(tmp_path, tiny_model, capsys):
    data = write_data(tmp_path / "mc", splits_of(mc_examples))
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", data / "run")
    assert "overlaps the input" in err


@pytest.mark.parametrize("code, message", [
    ("ENOSPC", "model.safetensors: No space left on device; free some space"),
    ("EROFS", "model.safetensors: Read-only file system"),
])
def test_a_full_disk_names_the_file_and_leaves_out_as_it_was(tmp_path, tiny_model, capsys, monkeypatch, code,
                                                              message):
    import errno
    import os

    from transformers import PreTrainedModel

    def full(self, *args, **kwargs):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)))

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", full)
    data = write_data(tmp_path / "mc", splits_of(mc_examples))
    out = tmp_path / "run"
    err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", out, "max_steps=1",
                     "batch_size=4")
    line = one_line_error(err.splitlines()[-1])
    assert message in line, line
    assert not out.exists() and not list(tmp_path.glob(".run.*"))




# -- hostile settings files and stopped runs (issue 24) -------------------------------------------------

def test_a_recipe_that_is_not_utf8_or_not_yaml_is_one_line(tmp_path, tiny_model, capsys):
    """Before: a ``UnicodeDecodeError`` traceback; a YAML error whose first line said neither what nor where."""
    data = write_data(tmp_path / "d", splits_of(mc_examples))
    for name, raw, words in (("latin1.yaml", b"# r\xe9glages\nlr: 0.001\n", "latin1.yaml, line 1: not UTF-8 text"),
                             ("syntax.yaml", b"lr: 0.001\nbatch_size: 8\n  epochs: 1\n",
                              "syntax.yaml, line 3, column 9: not valid YAML: mapping values are not allowed here")):
        (tmp_path / name).write_bytes(raw)
        err = fails_with(capsys, "--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o",
                         "--recipe", tmp_path / name)
        assert words in one_line_error(err.splitlines()[-1]), err


def test_a_stopped_runs_folder_is_removed_by_the_next_run(tmp_path, tiny_model, caplog):
    """What a killed run leaves beside its out folder (SIGKILL: no chance to clean up), the next run
    of the same out removes, saying so; another out's is left."""
    import os
    import time

    data = write_data(tmp_path / "d", splits_of(mc_examples))
    stopped, other = tmp_path / ".o.building-k1ll3d", tmp_path / ".other.building-k1ll3d"
    for folder in (stopped, other):
        folder.mkdir()
        (folder / "log.txt").write_text("a run that was killed")
        os.utime(folder, (time.time() - 60, time.time() - 60))
    with caplog.at_level("WARNING", logger="linkbert.files"):
        assert finetune("--task", "mc", "--model", tiny_model, "--data", data, "--out", tmp_path / "o",
                        *finetune_helpers.FAST, "max_steps=1", "save_model=false") == 0
    assert not stopped.exists() and other.is_dir() and (tmp_path / "o" / "metrics.json").is_file()
    assert f"removed {stopped.name}, left beside {tmp_path / 'o'}" in caplog.text
