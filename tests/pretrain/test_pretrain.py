"""``linkbert pretrain``: its settings, a short run's figures, evaluation and checkpoints, the
objectives, two ranks against one, the graph setting, the budget, one-line errors and faults, the
transformers backend's host syncs. Resuming is tested in test_pretrain_resume.py."""

import json
import subprocess
import sys
from pathlib import Path

import pretrain_helpers
import pytest
import torch
from pretrain_helpers import TINY, cli_command, latest_weights, run, run_torchrun

from linkbert.checkpoint import latest as latest_checkpoint
from linkbert.checkpoint import verify
from linkbert.pretrain.settings import load_config
from linkbert.errors import ConfigError

corpus = pretrain_helpers.corpus  # a fixture: the small linked corpus, prepared once per module


def test_config_overrides_are_typed_and_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("preset: tiny\nlr: 0.001\nmax_steps: 10\n")
    config = load_config(str(path), ["max_steps=20", "lr=3e-4", "whole_word_mask=true", "init=scratch"])
    assert (config.preset, config.max_steps, config.lr, config.whole_word_mask) == ("tiny", 20, 3e-4, True)
    with pytest.raises(ConfigError, match="unknown setting"):
        path.write_text("learning_rate: 1\n")
        load_config(str(path), [])
    with pytest.raises(ConfigError, match="unknown setting 'nonsense'"):
        load_config(None, ["nonsense=1"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["max_steps"])
    with pytest.raises(ConfigError, match="max_steps should be int"):
        load_config(None, ["max_steps=ten"])
    with pytest.raises(ConfigError, match="objective"):
        load_config(None, ["objective=gpt"])


def test_shipped_configs_load_and_name_their_presets():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
    configs = {path.stem: load_config(str(path), []) for path in folder.glob("*.yaml")}  # every value checked
    assert {"tiny", "mini", "base", "large", "bio-base"} <= set(configs)
    for name, config in configs.items():
        assert config.preset == name and config.objective == "linkbert"
        assert 0 < config.warmup_steps < config.max_steps
        assert (config.adam_beta1, config.adam_beta2, config.weight_decay) == (0.9, 0.98, 0.01)


GPU_CONFIGS = ("tiny", "base", "large", "bio-base")  # the paper's setups, all trained on GPUs
CPU_CONFIGS = ("mini",)


def test_shipped_gpu_configs_run_the_fast_path(monkeypatch):
    """Compiled, flattened pairs with torch's variable-length attention on an Ampere-or-later GPU,
    a fixed-shape gather of the masked positions sized to max_length, bf16 where the device has
    it, DataLoader workers; the CPU-sized config stays eager, in-process and padded."""
    from pathlib import Path

    import linkbert.model.loading as loading
    from linkbert.collator import max_predictions_for

    folder = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
    assert {path.stem for path in folder.glob("*.yaml")} == set(GPU_CONFIGS + CPU_CONFIGS)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    monkeypatch.setattr(loading, "has_varlen_kernel", lambda: True)
    for name in GPU_CONFIGS:
        text = (folder / f"{name}.yaml").read_text()
        config = load_config(str(folder / f"{name}.yaml"), [])
        assert config.compile and config.precision == "auto" and config.num_workers > 0, name
        assert "max_predictions: auto" in text and config.max_predictions == max_predictions_for(
            config.max_length, config.mlm_probability) == 108, name
        assert config.attention_dropout == 0 and config.dropout == 0.1, name
        assert loading.attention_implementation(config.attention, "cuda", config.attention_dropout) == "varlen", name
        assert loading.attention_implementation(config.attention, "cpu", config.attention_dropout) == "sdpa", name
    for name in CPU_CONFIGS:
        config = load_config(str(folder / f"{name}.yaml"), [])
        assert not config.compile and config.num_workers == 0 and config.precision == "auto", name
        assert config.backend == "auto" and loading.resolve_backend(config.backend, config.init, "cpu") == "bert-cpu"


@pytest.mark.parametrize("setting, message", [
    ("save_every=0", "save_every must be at least 1"),
    ("preset=huge", "preset must be one of tiny, mini, base, large, bio-base"),
    ("p_linked=0.5", "p_contiguous + p_random + p_linked must be 1"),
    ("mlm_probability=0", "mlm_probability must be above 0"),
    ("grad_clip=1", "'grad_clip' is now called 'max_grad_norm'"),
    ("lr=fast", "lr should be float"),
    ("batch_size=0", "batch_size must be at least 1 (got 0)"),
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
    from linkbert.pretrain.settings import PretrainConfig

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(PretrainConfig):
        flag = "--" + field.name.replace("_", "-")
        line = next((line for line in text.splitlines() if line.split()[:1] in ([flag], [f"{flag},"])), None)
        assert line and field.metadata["help"][:30] in " ".join(text.split()), field.name
    assert "key=value" in text


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


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["bert-cpu", "transformers"])
def test_two_process_torchrun_matches_one_process(corpus, tmp_path, backend):
    """Two gloo ranks under DDP end with one process's weights (within fp32 rounding), with either
    backend: the transformers one, with its fixed-shape MLM gather, is what runs on GPUs."""
    # no dropout: the only difference left between the runs is how the global batch is split
    steps = ["max_steps=3", "save_every=100", "dropout=0", f"backend={backend}"]
    if backend == "transformers":
        steps.append("max_predictions=12")
    subprocess.run(cli_command(corpus, tmp_path / "one", steps), check=True, capture_output=True)
    run_torchrun(corpus, tmp_path / "two", steps)
    one, two = latest_weights(tmp_path / "one"), latest_weights(tmp_path / "two")
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

    run(corpus, tmp_path / "tb", ["max_steps=3", "tracker=tensorboard"])
    events = EventAccumulator(str(tmp_path / "tb" / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/mlm_loss", "train/relation_accuracy", "eval/relation_accuracy"} <= set(tags)
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]


def test_wandb_offline_files_hold_the_tensorboard_scalars(corpus, tmp_path, monkeypatch):
    """tracker=wandb: an offline W&B run under OUT/wandb with every scalar TensorBoard gets."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    from conftest import tensorboard_tags, wandb_file

    monkeypatch.delenv("WANDB_MODE", raising=False)
    run(corpus, tmp_path / "tb", ["max_steps=2", "tracker=tensorboard"])
    run(corpus, tmp_path / "wb", ["max_steps=2", "tracker=wandb"])
    tags = tensorboard_tags(tmp_path / "tb")
    written = wandb_file(tmp_path / "wb")
    assert {"train/loss", "eval/mlm_accuracy"} <= tags
    assert [tag for tag in tags if tag.encode() not in written] == []
    assert not (tmp_path / "wb" / "tensorboard").exists()


def test_tracker_none_imports_neither_library(corpus, tmp_path):
    code = ("import sys; from linkbert.cli import main\n"
            f"main(['pretrain', '--data', {str(corpus)!r}, '--out', {str(tmp_path / 'run')!r}, *{TINY!r}, "
            "'max_steps=1', 'tracker=none'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('wandb', 'tensorboard') "
            "or m.startswith('torch.utils.tensorboard')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "run" / "metrics.jsonl").is_file()


def test_the_old_tensorboard_setting_still_works(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="linkbert.settings"):
        assert load_config(None, ["tensorboard=false"]).tracker == "none"
        assert load_config(None, ["tensorboard=true"]).tracker == "tensorboard"
    assert "tensorboard=false is now tracker=none" in caplog.text


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
    with pytest.raises(ConfigError, match="graph"):
        run(corpus, tmp_path / "none", ["max_steps=2"])
    state_file = latest_checkpoint(tmp_path / "links") / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["config"]["graph"]  # as written before the setting existed (and before checksums)
    state_file.write_text(json.dumps(state))
    (state_file.parent / "manifest.json").unlink()
    assert run(corpus, tmp_path / "links", ["max_steps=2"])["step"] == 2


def test_budget_stops_the_run(corpus, tmp_path):
    summary = run(corpus, tmp_path / "budget", ["max_steps=100000", "budget_minutes=0.0001", "save_every=100000"])
    assert summary["stop_reason"] == "budget" and summary["step"] < 100000
    assert latest_checkpoint(tmp_path / "budget") is not None


def test_every_shipped_config_loads():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "configs" / "pretrain"
    names = sorted(path.stem for path in folder.glob("*.yaml"))
    assert {"tiny", "mini", "base", "large", "bio-base"} <= set(names)
    for name in names:
        config = load_config(str(folder / f"{name}.yaml"), [])
        assert config.preset == name and 0 < config.warmup_steps < config.max_steps


# -- output folder, corpus, settings: one line, exit status 2 ---------------------------------------------

def test_out_must_be_a_folder_and_a_foreign_one_needs_overwrite(corpus, tmp_path, capsys):
    from linkbert.cli import main

    (tmp_path / "file").write_text("x")
    assert main(["pretrain", "--data", str(corpus), "--out", str(tmp_path / "file"), *TINY]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    assert main(["pretrain", "--data", str(corpus), "--out", str(mine), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a pretraining run folder (it holds notes.txt)" in err and "overwrite=true" in err
    assert "\n" not in err and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert main(["pretrain", "--data", str(corpus), "--out", str(corpus / "run"), *TINY]) == 2
    assert "overlaps the input" in capsys.readouterr().err
    assert main(["pretrain", "--data", str(corpus), "--out", str(mine), *TINY, "max_steps=2", "overwrite=true"]) == 0
    assert (mine / "notes.txt").read_text() == "my notes" and latest_checkpoint(mine).name == "step-00000002"


def test_a_run_folder_without_a_checkpoint_yet_starts_again(corpus, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("preset: tiny\n")
    (out / "metrics.jsonl").write_text("")  # a run killed before its first checkpoint
    assert run(corpus, out, ["max_steps=2"])["step"] == 2


@pytest.mark.parametrize("documents", [0, 1])
def test_a_corpus_of_fewer_than_two_documents_is_one_line(corpus, tmp_path, capsys, documents):
    import shutil

    import numpy as np

    from linkbert.cli import main
    from linkbert.store import SegmentStore, SegmentStoreWriter

    store, folder = SegmentStore(corpus), tmp_path / "tiny-corpus"
    writer = SegmentStoreWriter(folder, store.vocab_size)
    for d in range(documents):
        writer.add("0", "only", np.asarray(store.segment(0)), [len(store.segment(0))])
    writer.close()
    shutil.copytree(corpus / "tokenizer", folder / "tokenizer")
    assert main(["pretrain", "--data", str(folder), "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linkbert pretrain: error:") and "pretraining pairs need at least 2" in err
    assert "\n" not in err and f"holds {documents} document" in err


# -- faults: a non-finite loss, a full disk ----------------------------------------------------------------

def test_a_non_finite_loss_stops_without_saving_it(corpus, tmp_path, capsys, monkeypatch):
    """Weights turned to NaN after step 2 (a diverging run): the run stops at step 3 with one line
    and exit status 1 (as step 4's passes run: a step's figures are read then, before the next
    update), and step 2's checkpoint stays the newest."""
    from linkbert.cli import main
    from linkbert.pretrain.run import Run

    real_passes = Run._forward_backward

    def diverging(self, batches):
        if self.step == 2:
            with torch.no_grad():
                next(self.model.parameters()).fill_(float("nan"))
        return real_passes(self, batches)

    monkeypatch.setattr(Run, "_forward_backward", diverging)
    out = tmp_path / "run"
    assert main(["pretrain", "--data", str(corpus), "--out", str(out), *TINY]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("linkbert pretrain: error: step 3 has a loss of nan") and "step-00000002" in err, err
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == ["step-00000002"]
    assert latest_checkpoint(out).name == "step-00000002" and verify(latest_checkpoint(out))


def test_a_full_disk_while_saving_is_one_line_naming_the_file(corpus, tmp_path, capsys, monkeypatch):
    """ENOSPC from the second checkpoint's save: the first checkpoint and ``latest`` stay, nothing
    half-written is left, and the error names the file."""
    import errno

    from linkbert.cli import main

    real_save, calls = torch.save, []

    def filling(value, file, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(value, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", filling)
    out = tmp_path / "run"
    assert main(["pretrain", "--data", str(corpus), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("linkbert pretrain: error: ") and "trainer.pt: No space left on device" in err, err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step-00000002"]
    assert latest_checkpoint(out).name == "step-00000002" and verify(latest_checkpoint(out))


def test_a_failed_log_write_stops_the_run_with_one_line(corpus, tmp_path, capsys, monkeypatch):
    """metrics.jsonl cannot be written at step 3 (a full disk): the run stops with one line naming
    the file, before it saves anything after it (the failure is flagged in the next step's
    all-reduce, so on several ranks every rank stops with it)."""
    import errno

    from linkbert.cli import main
    from linkbert.pretrain.run_log import RunLog

    class FullDisk:
        def __init__(self, file):
            self.file = file

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.file.close()

    real_record = RunLog.record

    def filling(self, step, kind, figures):
        if step == 3 and kind == "train":
            self.metrics_file = FullDisk(self.metrics_file)
        return real_record(self, step, kind, figures)

    monkeypatch.setattr(RunLog, "record", filling)
    out = tmp_path / "run"
    assert main(["pretrain", "--data", str(corpus), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"linkbert pretrain: error: {out / 'metrics.jsonl'}: No space left on device; free some space " \
                  "or write elsewhere"
    assert [p.name for p in (out / "checkpoints").glob("step-*")] == ["step-00000002"]


@pytest.mark.parametrize("backend", ["bert-cpu", "transformers"])
def test_training_never_changes_a_buffer(corpus, tmp_path, backend):
    """Why DDP need not broadcast buffers before each forward (runtime.data_parallel): every
    buffer of the model is a constant of its config, the same after training steps."""
    from linkbert.pretrain.run import Run

    run = Run(load_config(None, TINY + [f"backend={backend}", "max_steps=3"]), str(corpus), str(tmp_path / "run"))
    before = {name: buffer.clone() for name, buffer in run.model.named_buffers()}
    batches = iter(run._loader())
    for _ in range(2):
        run.train_step([next(batches) for _ in range(run.micro_accumulation)])
    after = dict(run.model.named_buffers())
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name


@pytest.mark.parametrize("attention", ["sdpa", "varlen"])
def test_the_device_path_reads_nothing_back_inside_a_micro_batch(corpus, tmp_path, attention):
    """backend=transformers with max_predictions: no host sync in a micro-batch's forward, backward
    and statistics, nor in the rest of the step (clipping, AdamW, the all-reduce of the figures and
    flags); one readback per step, of its figures, done apart (benchmarks/device_step_profile.py
    counts them; the bert-cpu backend has several, by design); padded batches with SDPA, or
    flattened ones with varlen attention (its CPU stand-in: the same ops around the kernel)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from device_step_profile import counted

    from linkbert.pretrain.run import Run

    config = load_config(None, TINY + ["backend=transformers", "max_predictions=12", "max_steps=4",
                                       f"attention={attention}", "attention_dropout=0"])
    run = Run(config, str(corpus), str(tmp_path / "run"))
    batches = iter(run._loader())
    for _ in range(2):  # the first step creates the optimiser's state
        micro_batches = [next(batches) for _ in range(run.micro_accumulation)]
        counts = run._global_counts(micro_batches)
        sums = torch.zeros(5, dtype=torch.float64)
        on_device = [run._to_device(batch) for batch in micro_batches]  # host reads of host tensors
        inside, rest, read = {}, {}, {}
        with counted(inside):
            for moved, tokens in on_device:
                run._micro_step(moved, tokens, counts, sums, sync=True)
        with counted(rest):
            queued = run._finish_step(sums, counts)
        with counted(read):
            figures, flags = run._read_figures(queued)
    assert inside["ops"] > 100 and inside["syncs"] == 0, inside["sync_kinds"]
    assert rest["syncs"] == 0, rest["sync_kinds"]
    assert read["sync_kinds"] == {"Tensor.tolist": 1} and figures["mlm_loss"] > 0 and not any(flags.values())
    assert ("cu_seqlens" in micro_batches[0]) == (attention == "varlen")


def test_a_steps_figures_are_read_while_the_next_steps_passes_run(corpus, tmp_path, monkeypatch):
    """The step boundary without a bubble: step N's figures are read once step N+1's forward and
    backward passes are queued, before N+1's update; a checkpoint (save_every=3) or an evaluation
    (eval_every=5) of step N comes after they are read, so a non-finite loss never reaches one."""
    from linkbert.pretrain.run import Run

    events = []

    def spy(name, method, what):
        def recorded(self, *args):
            events.append(what(self))
            return method(self, *args)
        monkeypatch.setattr(Run, name, recorded)

    spy("_forward_backward", Run._forward_backward, lambda run: f"passes {run.step + 1}")
    spy("_finish_step", Run._finish_step, lambda run: f"update {run.step + 1}")
    spy("_read_figures", Run._read_figures, lambda run: "read")
    spy("_save", Run._save, lambda run: f"save {run.step}")
    spy("_log_eval", Run._log_eval, lambda run: f"eval {run.step}")
    summary = run(corpus, tmp_path / "run", ["max_steps=7", "save_every=3", "eval_every=5"])
    assert summary["step"] == 7
    assert events == ["passes 1", "update 1",
                      "passes 2", "read", "update 2",  # step 1's figures
                      "passes 3", "read", "update 3",
                      "passes 4", "read", "save 3", "update 4",
                      "passes 5", "read", "update 5",
                      "passes 6", "read", "eval 5", "update 6",
                      "passes 7", "read", "save 6", "update 7",
                      "read", "eval 7", "save 7"]  # the end
    logged = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "train"]
    assert logged == [1, 2, 3, 4, 5, 6, 7]


def test_compile_with_a_fixed_number_of_predictions_gives_one_batch_shape(corpus):
    """torch.compile compiles once when every batch has one shape: with max_predictions and
    compile, batches are padded to max_length (else to the longest pair, a multiple of 8)."""
    from linkbert.pretrain.data import open_corpus, pretraining_data

    shapes = {}
    for extra in (["compile=true", "max_predictions=12"], []):
        config = load_config(None, TINY + ["backend=transformers", *extra])
        data = pretraining_data(open_corpus(str(corpus)), max_length=config.max_length, seed=config.seed,
                                max_predictions=config.max_predictions, compile=config.compile)
        train, collator = data.train, data.collator
        shapes[bool(extra)] = {tuple(collator([train.pair(0, i) for i in range(s, s + 4)])["input_ids"].shape)
                               for s in range(0, 40, 4)}
    assert shapes[True] == {(4, 64)}
    assert len(shapes[False]) > 1


def test_dataloader_workers_give_the_batches_built_in_process(corpus, tmp_path):
    """Two workers (started from a fork server where the platform has one) build exactly the
    micro-batches the training process builds itself, in the same order."""
    import multiprocessing

    from linkbert.pretrain.run import Run

    batches = {}
    for workers in (0, 2):
        config = load_config(None, TINY + [f"num_workers={workers}", "max_steps=3"])
        loader = Run(config, str(corpus), str(tmp_path / f"run-{workers}"))._loader()
        if workers and "forkserver" in multiprocessing.get_all_start_methods():
            assert loader.multiprocessing_context.get_start_method() == "forkserver"
        batches[workers] = list(loader)
    assert len(batches[0]) == len(batches[2]) == 3
    for own, theirs in zip(batches[0], batches[2]):
        assert own.keys() == theirs.keys()
        for key in own:
            assert torch.equal(own[key], theirs[key]), key
