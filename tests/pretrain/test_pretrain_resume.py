"""Resuming ``linkbert pretrain``: a run killed (SIGKILL, one process or two ranks, at random
moments) and run again ends with the straight run's weights; damaged checkpoints are skipped; a
resume that would be another run (settings, corpus) is refused before anything is loaded; what a
resume may change (the learning rate, the schedule) applies from the resumed step on."""

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pretrain_helpers
import pytest
import torch
from conftest import TINY_TEXTS
from pretrain_helpers import (TINY, cli_command, kill_run, latest_weights, run, run_torchrun, smaller_corpus,
                              start_torchrun)
from safetensors.torch import load_file

from linkbert.checkpoint import latest as latest_checkpoint
from linkbert.checkpoint import verify
from linkbert.errors import ConfigError

corpus = pretrain_helpers.corpus  # a fixture: the small linked corpus, prepared once per module


def _same_weights(a, b):
    a, b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# -- killed and run again: the straight run's weights ------------------------------------------------

@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_weights(corpus, tmp_path):
    steps = ["max_steps=8", "save_every=2"]
    subprocess.run(cli_command(corpus, tmp_path / "straight", steps), check=True, capture_output=True)
    # the killed run: wait for the step-4 checkpoint, then SIGKILL
    process = subprocess.Popen(cli_command(corpus, tmp_path / "killed", steps + ["log_every=1"]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "killed" / "checkpoints" / "step-00000004").exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert latest_checkpoint(tmp_path / "killed") is not None
    assert not (tmp_path / "killed" / "checkpoints" / "step-00000008").exists(), "killed too late to test resume"
    subprocess.run(cli_command(corpus, tmp_path / "killed", steps), check=True, capture_output=True)
    straight, resumed = latest_weights(tmp_path / "straight"), latest_weights(tmp_path / "killed")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the ranks to kill through /proc")
def test_two_process_run_with_dropout_killed_and_resumed_is_bit_exact(corpus, tmp_path):
    """Every rank saves and restores its own random streams: with dropout, a 2-rank run killed
    after a checkpoint and run again ends with exactly the straight run's weights."""
    steps = ["max_steps=8", "save_every=2", "dropout=0.1"]
    run_torchrun(corpus, tmp_path / "straight", steps)
    cut = tmp_path / "cut"
    with open(tmp_path / "cut-killed.log", "w") as log:
        process = start_torchrun(corpus, cut, steps, log)
        deadline = time.time() + 300
        while time.time() < deadline and process.poll() is None and not (cut / "checkpoints" / "latest").exists():
            time.sleep(0.01)
        kill_run(cut)
        process.wait()
    assert (cut / "checkpoints" / "latest").exists(), (tmp_path / "cut-killed.log").read_text()[-3000:]
    assert not (cut / "summary.json").exists(), "killed too late to test resume"
    output = run_torchrun(corpus, cut, steps)
    assert "resumed from" in output
    straight, resumed = latest_weights(tmp_path / "straight"), latest_weights(cut)
    assert straight.keys() == resumed.keys()
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)


@pytest.mark.slow
def test_kill_9_at_random_moments_always_resumes_from_a_verified_checkpoint(corpus, tmp_path):
    """A run checkpointing every step, SIGKILLed at random moments (many land in a save), then
    resumed, again and again: each time the newest checkpoint verifies, and the run ends with
    the straight run's weights."""
    import random

    from linkbert.checkpoint import newest_good, steps

    def newest(out):  # polled while the run writes and prunes
        try:
            return newest_good(out)
        except OSError:
            return None

    extra = ["max_steps=30", "save_every=1", "keep_checkpoints=2"]  # a step and a save: about 0.1 s
    subprocess.run(cli_command(corpus, tmp_path / "straight", extra), check=True, capture_output=True)
    out, rng, deadline = tmp_path / "killed", random.Random(0), time.time() + 150
    kills = 0
    while time.time() < deadline and kills < 8:
        before = newest(out)
        process = subprocess.Popen(cli_command(corpus, out, extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.time()
        # once the run saves again, kill it a random moment later: in a step or in a save
        while time.time() - started < 60 and newest(out) == before and process.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.2))
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        found = newest_good(out)  # raises if no good checkpoint is left
        if found is not None:  # the newest checkpoint folder is always complete: saves are atomic
            assert found == steps(out / "checkpoints")[0] and verify(found)
        print(f"kill {kills}: newest good checkpoint {found and found.name}")
    assert kills >= 2, "the run ended before it could be killed twice"
    subprocess.run(cli_command(corpus, out, extra), check=True, capture_output=True)
    _same_weights(latest_checkpoint(tmp_path / "straight"), latest_checkpoint(out))


# -- resuming: verified checkpoints, checked settings --------------------------------------------------

def test_resuming_with_other_data_settings_is_refused(corpus, tmp_path):
    run(corpus, tmp_path / "r", ["max_steps=2"])
    run(corpus, tmp_path / "r", ["max_steps=4"])  # a longer schedule continues the run
    with pytest.raises(ConfigError, match="batch_size 8 -> 16"):
        run(corpus, tmp_path / "r", ["max_steps=6", "batch_size=16"])


@pytest.fixture(scope="module")
def straight(corpus, tmp_path_factory):
    """A 6-step run checkpointed at steps 2, 4 and 6 (all kept): what every resume must reproduce."""
    out = tmp_path_factory.mktemp("straight") / "run"
    run(corpus, out, ["keep_checkpoints=3"])
    return out


def _copy_of(straight, tmp_path):
    import shutil

    shutil.copytree(straight, tmp_path / "run")
    return tmp_path / "run"


def test_a_damaged_checkpoint_is_skipped_and_the_run_ends_as_a_straight_one(corpus, straight, tmp_path, caplog):
    """4 KB of flipped bytes in the newest but one checkpoint, the newest gone (killed before it):
    the resume says which it skipped and why, goes back to step 2, replaces the damaged step 4
    and ends with the straight run's weights."""
    import shutil

    out = _copy_of(straight, tmp_path)
    shutil.rmtree(out / "checkpoints" / "step-00000006")  # latest still names it
    data = bytearray((out / "checkpoints" / "step-00000004" / "model.safetensors").read_bytes())
    data[-8192:-4096] = bytes(b ^ 0xFF for b in data[-8192:-4096])
    (out / "checkpoints" / "step-00000004" / "model.safetensors").write_bytes(bytes(data))
    with caplog.at_level(logging.INFO):
        assert run(corpus, out, ["keep_checkpoints=3"])["step"] == 6
    assert "latest names step-00000006, which is missing" in caplog.text
    assert "step-00000004 is not usable" in caplog.text and "does not match its checksum" in caplog.text
    assert "resumed from" in caplog.text and "step-00000002 at step 2" in caplog.text
    _same_weights(straight / "checkpoints" / "step-00000006", latest_checkpoint(out))
    assert verify(out / "checkpoints" / "step-00000004")


def test_a_truncated_checkpoint_file_is_skipped(corpus, straight, tmp_path, caplog):
    out = _copy_of(straight, tmp_path)
    os.truncate(out / "checkpoints" / "step-00000006" / "trainer.pt", 100)
    with caplog.at_level(logging.WARNING):
        assert run(corpus, out, ["keep_checkpoints=3"])["step"] == 6
    assert "trainer.pt: 100 bytes" in caplog.text
    _same_weights(straight / "checkpoints" / "step-00000006", latest_checkpoint(out))


def test_a_resume_with_no_good_checkpoint_is_one_line_not_a_restart(corpus, straight, tmp_path, capsys):
    from linkbert.cli import main

    out = _copy_of(straight, tmp_path)
    for step in ("step-00000002", "step-00000004", "step-00000006"):
        os.truncate(out / "checkpoints" / step / "model.safetensors", 10)
    assert main(["pretrain", "--data", str(corpus), "--out", str(out), *TINY, "keep_checkpoints=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("linkbert pretrain: error:") and "no usable checkpoint" in err
    assert not (out / "checkpoints" / "step-00000001").exists()


def test_resuming_at_the_end_trains_and_saves_nothing(corpus, straight, tmp_path):
    out = _copy_of(straight, tmp_path)
    before = (out / "checkpoints" / "step-00000006" / "manifest.json").stat().st_mtime_ns
    summary = run(corpus, out, ["keep_checkpoints=3"])
    assert summary["step"] == 6 and summary["checkpoint"].endswith("step-00000006")
    assert (out / "checkpoints" / "step-00000006" / "manifest.json").stat().st_mtime_ns == before


@pytest.mark.parametrize("setting, message", [
    ("preset=mini", "preset 'tiny' -> 'mini'"),
    ("objective=bert", "objective 'linkbert' -> 'bert'"),
    ("max_steps=4", "is at step 6, past max_steps=4: give max_steps >= 6"),
])
def test_a_resume_that_would_be_another_run_is_refused_before_loading(corpus, straight, tmp_path, capsys,
                                                                      monkeypatch, setting, message):
    """The settings come from trainer_state.json before any tensor is read: no state-dict traceback."""
    from linkbert import checkpoint
    from linkbert.cli import main

    out = _copy_of(straight, tmp_path)
    monkeypatch.setattr(checkpoint, "read_tensors", lambda path: pytest.fail("tensors read before the check"))
    assert main(["pretrain", "--data", str(corpus), "--out", str(out), *TINY, setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linkbert pretrain: error:") and message in err and "\n" not in err, err


def test_a_resume_applies_a_new_lr_and_a_longer_schedule(corpus, tmp_path, caplog):
    """lr and max_steps may change on a resume: from the resumed step on the learning rate is the
    new schedule's, as in a run with those settings from the start, and config.yaml says so."""
    import yaml

    run(corpus, tmp_path / "other", ["lr=0.002", "max_steps=8"])
    run(corpus, tmp_path / "resumed", ["max_steps=4"])
    with caplog.at_level(logging.INFO):
        run(corpus, tmp_path / "resumed", ["lr=0.002", "max_steps=8"])
    assert "lr 0.005 -> 0.002" in caplog.text and "max_steps 4 -> 8" in caplog.text
    lrs = {name: {line["step"]: line["lr"] for line in map(json.loads, (tmp_path / name / "metrics.jsonl").open())
                  if line["kind"] == "train"} for name in ("other", "resumed")}
    for step in range(5, 9):
        assert lrs["resumed"][step] == lrs["other"][step], step
    assert yaml.safe_load((tmp_path / "resumed" / "config.yaml").read_text())["lr"] == 0.002
    state = json.loads((latest_checkpoint(tmp_path / "resumed") / "trainer_state.json").read_text())
    assert state["config"]["lr"] == 0.002 and state["step"] == 8


def _other_tokenizer(corpus, tmp_path):
    """A copy of the prepared corpus whose tokenizer has another vocabulary (same counts)."""
    import shutil

    from linkbert.tokenization import train_wordpiece

    other = tmp_path / "other-corpus"
    shutil.copytree(corpus, other)
    shutil.rmtree(other / "tokenizer")
    train_wordpiece([t.upper() + " zebra quartz" for t in TINY_TEXTS] * 20, vocab_size=300).save_pretrained(
        other / "tokenizer")
    return other


def test_a_resume_on_another_corpus_is_refused_naming_both(corpus, straight, tmp_path, capsys):
    from linkbert.cli import main

    out = _copy_of(straight, tmp_path)
    for other in (_other_tokenizer(corpus, tmp_path), smaller_corpus(corpus, tmp_path / "smaller")):
        assert main(["pretrain", "--data", str(other), "--out", str(out), *TINY]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(corpus) in err and str(other) in err and "holds other data" in err, err


# -- a run moves between backends (a CPU machine and a GPU machine) ----------------------------------

@pytest.mark.parametrize("first, then", [("bert-cpu", "transformers"), ("transformers", "bert-cpu")])
def test_a_checkpoint_of_one_backend_resumes_on_the_other_and_exports_alike(corpus, tmp_path, first, then,
                                                                            caplog):
    """Both backends compute the same function with the same weights and write one checkpoint
    format: a run saved at step 4 on one resumes on the other and ends where a run that stayed on
    one backend ends (without dropout, whose masks each backend draws its own way; float rounding
    apart), and the two exports hold the same tensors of the same architecture."""
    import shutil

    from linkbert.export import export

    plain = ["dropout=0", "max_steps=8", "save_every=4", "keep_checkpoints=3"]
    run(corpus, tmp_path / "straight", plain + [f"backend={first}"])
    # the run as a kill after step 4 leaves it: its step-4 checkpoint, no later one, no summary
    shutil.copytree(tmp_path / "straight", tmp_path / "moved")
    shutil.rmtree(tmp_path / "moved" / "checkpoints" / "step-00000008")
    (tmp_path / "moved" / "checkpoints" / "latest").write_text("step-00000004")
    (tmp_path / "moved" / "summary.json").unlink()
    with caplog.at_level(logging.INFO, logger="linkbert.pretrain"):
        summary = run(corpus, tmp_path / "moved", plain + [f"backend={then}"])
    assert summary["step"] == 8 and f"backend {then}," in caplog.text and "resumed from" in caplog.text
    straight, moved = latest_weights(tmp_path / "straight"), latest_weights(tmp_path / "moved")
    assert straight.keys() == moved.keys()
    for name in straight:
        torch.testing.assert_close(moved[name], straight[name], rtol=1e-3, atol=1e-4, msg=name)
    exports = {}
    for name in ("straight", "moved"):
        summary = export(tmp_path / name, tmp_path / f"exported-{name}", tokenizer=corpus / "tokenizer")
        exports[name] = load_file(tmp_path / f"exported-{name}" / "model.safetensors")
        assert summary["architecture"] == "BertForMaskedLM"
    assert exports["straight"].keys() == exports["moved"].keys()
    assert (json.loads((tmp_path / "exported-straight" / "config.json").read_text())["architectures"]
            == json.loads((tmp_path / "exported-moved" / "config.json").read_text())["architectures"])
