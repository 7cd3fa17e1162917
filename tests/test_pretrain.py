import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from linkbert.checkpoint import latest as latest_checkpoint
from linkbert.pretrain import load_config, pretrain
from linkbert.prepare import PrepareConfig, prepare

from conftest import TINY_TEXTS

# a tiny model: the point is the mechanics, not the figures
TINY = ["preset=tiny", "max_length=64", "batch_size=8", "max_steps=6", "warmup_steps=2", "lr=0.005",
        "log_every=1", "save_every=2", "eval_pairs=16", "num_workers=0", "progress=false", "tensorboard=false",
        "precision=fp32", "heldout_fraction=0.1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_tokenizer_dir):
    """A small linked corpus, prepared: 30 documents of several segments each."""
    root = tmp_path_factory.mktemp("corpus")
    docs = [{"id": str(i), "title": f"doc {i}",
             "text": " ".join(TINY_TEXTS[(i + j) % 5] for j in range(1 + i % 4)),
             "links": [str((i * 3 + 1) % 30), str((i * 7 + 2) % 30)]} for i in range(30)]
    (root / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    prepare(PrepareConfig(format="jsonl", input=str(root / "c.jsonl"), tokenizer=str(tiny_tokenizer_dir),
                          out=str(root / "prepared"), segment_budget=24, progress=False))
    return root / "prepared"


def run(corpus, out, extra=()):
    config = load_config(None, TINY + list(extra))
    return pretrain(config, str(corpus), str(out))


def test_config_overrides_are_typed_and_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("preset: tiny\nlr: 0.001\nmax_steps: 10\n")
    config = load_config(str(path), ["max_steps=20", "lr=3e-4", "whole_word_mask=true", "init=scratch"])
    assert (config.preset, config.max_steps, config.lr, config.whole_word_mask) == ("tiny", 20, 3e-4, True)
    with pytest.raises(ValueError, match="unknown setting"):
        path.write_text("learning_rate: 1\n")
        load_config(str(path), [])
    with pytest.raises(ValueError, match="unknown setting 'nonsense'"):
        load_config(None, ["nonsense=1"])
    with pytest.raises(ValueError, match="key=value"):
        load_config(None, ["max_steps"])
    with pytest.raises(ValueError, match="max_steps should be int"):
        load_config(None, ["max_steps=ten"])
    with pytest.raises(ValueError, match="objective"):
        load_config(None, ["objective=gpt"])


def test_shipped_configs_load_and_name_their_presets():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "configs" / "pretrain"
    configs = {path.stem: load_config(str(path), []) for path in folder.glob("*.yaml")}  # every value checked
    assert {"tiny", "mini", "base", "large", "bio-base"} <= set(configs)
    for name, config in configs.items():
        assert config.preset == name and config.objective == "linkbert"
        assert 0 < config.warmup_steps < config.max_steps
        assert (config.adam_beta1, config.adam_beta2, config.weight_decay) == (0.9, 0.98, 0.01)


@pytest.mark.parametrize("setting, message", [
    ("save_every=0", "save_every must be at least 1"),
    ("preset=huge", "preset must be one of tiny, mini, base, large, bio-base"),
    ("p_linked=0.5", "p_contiguous + p_random + p_linked must be 1"),
    ("mlm_probability=0", "mlm_probability must be above 0"),
    ("grad_clip=1", "'grad_clip' is now called 'max_grad_norm'"),
    ("lr=fast", "lr should be float"),
])
def test_a_bad_setting_is_one_line_and_exit_code_2(corpus, tmp_path, capsys, setting, message):
    from linkbert.cli import main

    assert main(["pretrain", "--data", str(corpus), "--out", str(tmp_path / "run"), setting]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linkbert pretrain: error:") and message in err and "\n" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("max_length, message", [
    (1000, "more than the model's 512 position embeddings"),
    (40, "cannot hold a pair of this corpus's segments"),  # prepared with segments of up to 24 tokens
])
def test_max_length_is_checked_against_the_model_and_the_corpus(corpus, tmp_path, capsys, max_length, message):
    from linkbert.cli import main

    assert main(["pretrain", "--data", str(corpus), "--out", str(tmp_path / "run"), *TINY,
                 f"max_length={max_length}"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_help_lists_every_setting_with_its_help(capsys):
    import dataclasses

    from linkbert.cli import main
    from linkbert.pretrain import PretrainConfig

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(PretrainConfig):
        line = next((line for line in text.splitlines() if line.split()[:1] == [field.name]), None)
        assert line and field.metadata["help"][:30] in " ".join(text.split()), field.name


def test_a_short_run_logs_evaluates_and_checkpoints(corpus, tmp_path):
    summary = run(corpus, tmp_path / "run")
    assert summary["step"] == 6 and summary["stop_reason"] == "max_steps"
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [line for line in lines if line["kind"] == "train"]
    assert [line["step"] for line in train] == [1, 2, 3, 4, 5, 6]
    for line in train:
        for key in ("loss", "mlm_loss", "relation_loss", "relation_accuracy", "lr", "tokens_per_s", "grad_norm"):
            assert key in line and line[key] == line[key]  # present and not NaN
    evaluation = summary["eval"]
    assert set(evaluation["relation_accuracy_per_class"]) == {"contiguous", "random", "linked"}
    assert sum(evaluation["relation_distribution"].values()) == evaluation["pairs"] > 0
    assert 0 <= evaluation["mlm_accuracy"] <= 1
    logged_eval = [line for line in lines if line["kind"] == "eval"][-1]
    assert logged_eval["relation_accuracy_linked"] == evaluation["relation_accuracy_per_class"]["linked"]
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert checkpoint.name == "step-00000006"
    assert (checkpoint / "model.safetensors").exists() and (checkpoint / "tokenizer.json").exists()
    assert len(list((tmp_path / "run" / "checkpoints").glob("step-*"))) == 2  # keep_checkpoints
    assert (tmp_path / "run" / "config.yaml").exists()


@pytest.mark.parametrize("objective, n_classes", [("bert", 2), ("mlm-only", 0)])
def test_other_objectives(corpus, tmp_path, objective, n_classes):
    summary = run(corpus, tmp_path / objective, [f"objective={objective}", "max_steps=2"])
    per_class = summary["eval"].get("relation_accuracy_per_class", {})
    assert len(per_class) == n_classes
    if objective == "bert":
        assert set(per_class) == {"contiguous", "random"}


def test_loss_falls_on_a_repeated_batch(corpus, tmp_path):
    """With the learning rate high and the data tiny, 30 steps must lower the MLM loss."""
    run(corpus, tmp_path / "fit", ["max_steps=30", "save_every=100", "warmup_steps=3"])
    lines = [json.loads(line) for line in (tmp_path / "fit" / "metrics.jsonl").read_text().splitlines()]
    losses = [line["mlm_loss"] for line in lines if line["kind"] == "train"]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5


def _weights(path):
    return load_file(latest_checkpoint(path) / "model.safetensors")


def _cli(corpus, out, extra=()):
    return [sys.executable, "-m", "linkbert.cli", "pretrain", "--data", str(corpus), "--out", str(out), *TINY, *extra]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_weights(corpus, tmp_path):
    steps = ["max_steps=8", "save_every=2"]
    subprocess.run(_cli(corpus, tmp_path / "straight", steps), check=True, capture_output=True)
    # the killed run: wait for the step-4 checkpoint, then SIGKILL
    process = subprocess.Popen(_cli(corpus, tmp_path / "killed", steps + ["log_every=1"]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "killed" / "checkpoints" / "step-00000004").exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert latest_checkpoint(tmp_path / "killed") is not None
    assert not (tmp_path / "killed" / "checkpoints" / "step-00000008").exists(), "killed too late to test resume"
    subprocess.run(_cli(corpus, tmp_path / "killed", steps), check=True, capture_output=True)
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "killed")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


@pytest.mark.slow
def test_two_process_torchrun_matches_one_process(corpus, tmp_path):
    # no dropout: the only difference left between the runs is how the global batch is split
    steps = ["max_steps=3", "save_every=100", "dropout=0"]
    subprocess.run(_cli(corpus, tmp_path / "one", steps), check=True, capture_output=True)
    # --standalone: a rendezvous on a free local port (a fixed port collides with another test run
    # on the same machine, and two jobs joining one store wait on each other for ever)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "linkbert.cli"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # its own session and a timeout, so that ranks waiting on each other fail the test, and are
    # all killed, instead of hanging the suite
    process = subprocess.Popen(torchrun + _cli(corpus, tmp_path / "two", steps)[3:], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"torchrun hung; stdout: {stdout[-1000:]!r}; stderr: {stderr[-3000:]!r}")
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for name in one:
        torch.testing.assert_close(one[name], two[name], rtol=1e-4, atol=1e-5, msg=name)
    # Adam is blind to a constant gradient scale, so compare the gradient norms too: they catch a
    # loss normalised per rank instead of over the global batch
    logged = [[line for line in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())
               if line["kind"] == "train"] for run in ("one", "two")]
    for a, b in zip(*logged):
        for key in ("loss", "mlm_loss", "relation_accuracy", "grad_norm"):
            assert a[key] == pytest.approx(b[key], rel=1e-4), key


def test_tensorboard_scalars(corpus, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run(corpus, tmp_path / "tb", ["max_steps=3", "tensorboard=true"])
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/mlm_loss", "train/relation_accuracy", "eval/relation_accuracy"} <= set(tags)
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]


def test_resuming_with_other_data_settings_is_refused(corpus, tmp_path):
    run(corpus, tmp_path / "r", ["max_steps=2"])
    run(corpus, tmp_path / "r", ["max_steps=4"])  # a longer schedule continues the run
    with pytest.raises(ValueError, match="batch_size 8 -> 16"):
        run(corpus, tmp_path / "r", ["max_steps=6", "batch_size=16"])


def test_graph_setting_replaces_the_data_folders_graph(corpus, tmp_path):
    """``graph=DIR`` pretrains on another graph over the same documents (the ablations' TF-IDF or
    random links); a resume with another graph is refused, and an old checkpoint without the
    setting resumes under the default."""
    import numpy as np
    import yaml

    from linkbert.graph import DocGraph
    from linkbert.store import SegmentStore

    n = SegmentStore(corpus).num_documents
    DocGraph.from_edges(np.zeros(0, np.int64), np.zeros(0, np.int64), n).save(tmp_path / "no-links")
    with_links = run(corpus, tmp_path / "links", ["max_steps=1", "eval_pairs=64"])["eval"]["relation_distribution"]
    without = run(corpus, tmp_path / "none", ["max_steps=1", "eval_pairs=64", f"graph={tmp_path / 'no-links'}"])
    assert with_links["linked"] > 0 and without["eval"]["relation_distribution"]["linked"] == 0
    assert yaml.safe_load((tmp_path / "none" / "config.yaml").read_text())["graph"] == str(tmp_path / "no-links")
    with pytest.raises(ValueError, match="graph"):
        run(corpus, tmp_path / "none", ["max_steps=2"])
    state_file = latest_checkpoint(tmp_path / "links") / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["config"]["graph"]  # as written before the setting existed
    state_file.write_text(json.dumps(state))
    assert run(corpus, tmp_path / "links", ["max_steps=2"])["step"] == 2


def test_budget_stops_the_run(corpus, tmp_path):
    summary = run(corpus, tmp_path / "budget", ["max_steps=100000", "budget_minutes=0.0001", "save_every=100000"])
    assert summary["stop_reason"] == "budget" and summary["step"] < 100000
    assert latest_checkpoint(tmp_path / "budget") is not None


def test_every_shipped_config_loads():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "configs" / "pretrain"
    names = sorted(path.stem for path in folder.glob("*.yaml"))
    assert {"tiny", "mini", "base", "large", "bio-base"} <= set(names)
    for name in names:
        config = load_config(str(folder / f"{name}.yaml"), [])
        assert config.preset == name and 0 < config.warmup_steps < config.max_steps
