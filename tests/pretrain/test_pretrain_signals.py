"""Stopping ``linkbert pretrain`` politely, and leaving nothing behind: SIGTERM or SIGUSR1 (what
clusters and preemptible machines send before they end a job) makes the run finish its step, save
a checkpoint of it and exit with status 75, on every rank together, whichever rank the signal
reaches; the run resumed from there ends with the straight run's weights, bit for bit. No
process of a run outlives it: its DataLoader workers, their fork server and the resource tracker
end with it, kill -9 included."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pretrain_helpers
import pytest
import torch
from pretrain_helpers import cli_command, latest_weights, rank_processes, run_torchrun, start_torchrun

from linkbert.checkpoint import latest as latest_checkpoint

corpus = pretrain_helpers.corpus  # a fixture: the small linked corpus, prepared once per module

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="follows the processes through /proc")]

STEPS = ["max_steps=30", "save_every=100", "dropout=0.1"]  # no checkpoint but the one the signal asks for


def _train_lines(out) -> int:
    try:
        return sum('"kind": "train"' in line for line in (out / "metrics.jsonl").read_text().splitlines())
    except OSError:
        return 0


def _once_it_trains(process, out, lines: int = 3, timeout: float = 180) -> int:
    """Wait until ``out``'s run has logged ``lines`` steps; how many it had logged."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None and _train_lines(out) < lines:
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be signalled"
    return _train_lines(out)


def _assert_same_weights(a, b):
    a, b = latest_weights(a), latest_weights(b)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture(scope="module")
def straight(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    subprocess.run(cli_command(corpus, out, STEPS), check=True, capture_output=True)
    return out


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_a_stop_signal_saves_the_step_it_was_in_and_the_resumed_run_ends_as_the_straight_one(corpus, straight,
                                                                                           tmp_path, name):
    out, log_file = tmp_path / "run", tmp_path / "run.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen(cli_command(corpus, out, STEPS), stdout=log, stderr=log)
        logged = _once_it_trains(process, out)  # step logged + 1 is running (a step is logged as the next one runs)
        process.send_signal(getattr(signal, name))
        assert process.wait(timeout=120) == 75, log_file.read_text()[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    step = summary["step"]
    assert summary["stop_reason"] == name and logged < step < 30
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == [f"step-{step:08d}"]
    assert log_file.read_text().strip().splitlines()[-1] == (
        f"linkbert pretrain: stopped by {name} after step {step}, saved in {out}/checkpoints/step-{step:08d}: run "
        "the same command again to continue")
    assert _train_lines(out) == step  # every step it trained was logged
    subprocess.run(cli_command(corpus, out, STEPS), check=True, capture_output=True)
    _assert_same_weights(straight, out)


@pytest.fixture(scope="module")
def straight_two_ranks(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight-two") / "run"
    run_torchrun(corpus, out, STEPS)
    return out


@pytest.mark.parametrize("target", ["rank 1", "torchrun"])
def test_two_ranks_stop_together_whichever_rank_the_signal_reaches(corpus, straight_two_ranks, tmp_path, target):
    """SIGTERM to rank 1 alone (rank 0 learns it from the step's all-reduce), or to torchrun, which
    passes it on to every rank: both ranks save the same step and end; the resumed run ends
    with the straight two-rank run's weights (each rank's own random streams restored)."""
    out, log_file = tmp_path / "run", tmp_path / "run.log"
    with open(log_file, "w") as log:
        process = start_torchrun(corpus, out, STEPS, log, faults={})  # no fault: ranks' lines prefixed
        _once_it_trains(process, out)
        os.kill(rank_processes(out)[1] if target == "rank 1" else process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pretrain_helpers.kill_run(out)
            pytest.fail(f"the ranks did not stop; output: {log_file.read_text()[-3000:]!r}")
    output = log_file.read_text()
    step = json.loads((out / "summary.json").read_text())["step"]
    assert f"[default0]:linkbert pretrain: stopped by SIGTERM after step {step}" in output, output[-3000:]
    if target == "rank 1":  # torchrun reports each rank's exit status
        assert output.count("exitcode  : 75") == 2, output[-3000:]
    assert latest_checkpoint(out).name == f"step-{step:08d}" and rank_processes(out) == {}
    assert "resumed from" in run_torchrun(corpus, out, STEPS)
    _assert_same_weights(straight_two_ranks, out)


# -- no process left behind ---------------------------------------------------------------------------

def _session(sid: int) -> dict[int, str]:
    """``{pid: command line}`` of the live processes of session ``sid``."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            pass
    return found


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM to every process"])
def test_no_process_of_a_run_with_workers_outlives_it(corpus, tmp_path, how):
    """A run with 2 DataLoader workers (from a fork server; a resource tracker beside them), killed
    with SIGKILL, or sent SIGTERM on every process as a scheduler may: within seconds no process
    of its session is left (they used to live on for good). A SIGTERM to them all still stops the
    run politely: its workers ignore it and build the step it saves."""
    out, log_file = tmp_path / "run", tmp_path / "run.log"
    with open(log_file, "w") as log:
        process = subprocess.Popen(cli_command(corpus, out, [*STEPS, "num_workers=2"]), stdout=log, stderr=log,
                                   start_new_session=True)
        _once_it_trains(process, out)
        helpers = {pid: line for pid, line in _session(process.pid).items() if pid != process.pid}
        assert sum("forkserver" in line for line in helpers.values()) >= 3, helpers  # the server and 2 workers
        if how == "kill -9":
            process.kill()
        else:
            os.killpg(process.pid, signal.SIGTERM)
        code = process.wait(timeout=120)
    assert code == (-signal.SIGKILL if how == "kill -9" else 75), log_file.read_text()[-3000:]
    deadline = time.time() + 30
    while time.time() < deadline and _session(process.pid):
        time.sleep(0.1)
    assert _session(process.pid) == {}
