"""``linkbert pretrain`` under a process group: one process in distributed mode ends as the plain
run; the ranks fail together (rank 0's failed save stops every rank at once, with its one line);
ranks handed other data or settings all stop, naming the difference. Two ranks against one, per
backend, are in test_pretrain.py; killed and resumed, in test_pretrain_resume.py."""

import os
import subprocess
import time
from pathlib import Path

import pretrain_helpers
import pytest
import torch
from pretrain_helpers import cli_command, latest_weights, rank_processes, smaller_corpus, start_torchrun

corpus = pretrain_helpers.corpus  # a fixture: the small linked corpus, prepared once per module

pytestmark = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the ranks through /proc")


@pytest.mark.slow
def test_one_process_in_distributed_mode_ends_as_the_plain_run(corpus, tmp_path):
    """distributed=always: a gloo group on one process, so DDP, no_sync (two micro-batches a step)
    and every collective run as on several ranks; the weights end bit for bit as without."""
    steps = ["max_steps=4", "micro_batch_size=4"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(cli_command(corpus, tmp_path / "plain", steps), check=True, capture_output=True, env=env)
    grouped = subprocess.run(cli_command(corpus, tmp_path / "grouped", [*steps, "distributed=always"]), check=True,
                             capture_output=True, text=True, env=env)
    assert "process group: gloo, 1 rank(s), DDP" in grouped.stderr
    plain, distributed = latest_weights(tmp_path / "plain"), latest_weights(tmp_path / "grouped")
    assert plain.keys() == distributed.keys()
    for name in plain:
        assert torch.equal(plain[name], distributed[name]), name


def _run_to_its_end(process, out, log_file, timeout: float = 180) -> tuple[dict, dict]:
    """Wait for a torchrun and its ranks; ``({rank: pid seen}, {rank: seconds it ended at})``."""
    seen, ended, deadline = {}, {}, time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        live = rank_processes(out)
        for rank, pid in live.items():
            seen.setdefault(rank, pid)
        for rank in seen:
            if rank not in live and rank not in ended:
                ended[rank] = time.time()
        time.sleep(0.05)
    if process.poll() is None:
        pretrain_helpers.kill_run(out)
        process.wait()
        pytest.fail(f"torchrun hung; output: {Path(log_file).read_text()[-3000:]!r}")
    for rank in seen:
        ended.setdefault(rank, time.time())
    return seen, ended


def _rank_lines(log_file, text: str) -> dict[int, str]:
    """Each rank's (torchrun --tee prefixes its lines with ``[defaultN]:``) line holding ``text``."""
    found = {}
    for line in Path(log_file).read_text().splitlines():
        if line.startswith("[default") and text in line:
            prefix, _, rest = line.partition("]:")
            found[int(prefix.removeprefix("[default"))] = rest
    return found


@pytest.mark.slow
def test_a_failed_save_on_rank_0_stops_every_rank_at_once_with_its_message(corpus, tmp_path):
    """Rank 0 cannot write the first checkpoint (a full disk) while rank 1 waits for it: rank 1
    learns it from the save's status all-reduce instead of waiting in a barrier until a timeout,
    and both end with rank 0's one line. The time from the failed write to the last rank's end is
    printed (docs/pretraining.md has it)."""
    out, log_file, failed_at = tmp_path / "run", tmp_path / "run.log", tmp_path / "failed_at"
    with open(log_file, "w") as log:
        process = start_torchrun(corpus, out, ["max_steps=6", "save_every=2"], log,
                                 faults={"LINKBERT_TEST_FULL_DISK": "0", "LINKBERT_TEST_FAILED_AT": str(failed_at)})
        seen, ended = _run_to_its_end(process, out, log_file)
    assert sorted(seen) == [0, 1] and failed_at.exists(), log_file.read_text()[-3000:]
    seconds = max(ended.values()) - float(failed_at.read_text())
    print(f"every rank ended {seconds:.2f} s after rank 0's failed write")
    assert seconds < 60
    lines = _rank_lines(log_file, "linkbert pretrain: error:")
    message = "linkbert pretrain: error: " + str(out / "checkpoints" / ".tmp-step-00000002" / "trainer.pt") + \
        ": No space left on device; free some space or write elsewhere"
    assert lines == {0: message, 1: message}, log_file.read_text()[-3000:]
    assert _rank_lines(log_file, "Traceback") == {}  # the ranks' own output: torchrun's report of them follows
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == []  # nothing half-written is left


@pytest.mark.slow
@pytest.mark.parametrize("difference, message", [
    ("--data OTHER", "the ranks read different corpora: {corpus} (fingerprint"),
    ("lr=0.001", "the ranks were given different settings: lr 0.005 (rank 0), 0.001 (rank 1)"),
])
def test_ranks_handed_other_data_or_settings_all_stop_naming_the_difference(corpus, tmp_path, difference,
                                                                           message):
    other = smaller_corpus(corpus, tmp_path / "other")
    out, log_file = tmp_path / "run", tmp_path / "run.log"
    with open(log_file, "w") as log:
        process = start_torchrun(corpus, out, ["max_steps=2"], log,
                                 faults={"LINKBERT_TEST_ARGS": "1 " + difference.replace("OTHER", str(other))})
        _run_to_its_end(process, out, log_file)
    lines = _rank_lines(log_file, "linkbert pretrain: error:")
    assert sorted(lines) == [0, 1] and lines[0] == lines[1], log_file.read_text()[-3000:]
    assert message.format(corpus=corpus) in lines[0] and (difference != "--data OTHER" or str(other) in lines[0])
    assert not (out / "checkpoints").exists() and not (out / "metrics.jsonl").exists()


@pytest.mark.slow
def test_nodes_that_find_different_checkpoints_all_stop(corpus, tmp_path):
    """Two nodes without shared storage (rank 1 the first rank of its own node, reading its own
    copy of the run folder, one checkpoint behind): each node's first rank verifies its newest
    checkpoint, and both ranks stop naming the two instead of training on mixed states."""
    import shutil

    pretrain_helpers.run(corpus, tmp_path / "run", ["max_steps=4"])
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    shutil.rmtree(tmp_path / "copy" / "checkpoints" / "step-00000004")
    (tmp_path / "copy" / "checkpoints" / "latest").write_text("step-00000002\n")
    out, log_file = tmp_path / "run", tmp_path / "run.log"
    with open(log_file, "w") as log:
        process = start_torchrun(corpus, out, ["max_steps=6"], log,
                                 faults={"LINKBERT_TEST_OWN_NODE": "1",
                                         "LINKBERT_TEST_ARGS": f"1 --out {tmp_path / 'copy'}"})
        _run_to_its_end(process, out, log_file)
    lines = _rank_lines(log_file, "linkbert pretrain: error:")
    assert sorted(lines) == [0, 1] and lines[0] == lines[1], log_file.read_text()[-3000:]
    assert (f"the nodes found different checkpoints ({out}: step-00000004 (rank 0), {tmp_path / 'copy'}: "
            "step-00000002 (rank 1)): every node must read the same run folder") in lines[0]
