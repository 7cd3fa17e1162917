"""Shared by the pretraining tests (test_pretrain.py, test_pretrain_resume.py): the ``TINY``
settings, the ``corpus`` fixture (a small linked corpus, prepared once per module; a test module
takes it with ``corpus = pretrain_helpers.corpus``, since linters call a fixture imported by name
unused), a run in this process or on the command line, two ranks under torchrun (with faults of
``faulty_rank.py`` where asked), their processes, another corpus, and the weights of a run's latest
checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_TEXTS
from safetensors.torch import load_file

from linkbert.checkpoint import latest as latest_checkpoint
from linkbert.prepare.build import prepare
from linkbert.prepare.settings import PrepareConfig
from linkbert.pretrain.run import pretrain
from linkbert.pretrain.settings import load_config

# a tiny model: the point is the mechanics, not the figures
TINY = ["preset=tiny", "max_length=64", "batch_size=8", "max_steps=6", "warmup_steps=2", "lr=0.005",
        "log_every=1", "save_every=2", "eval_pairs=16", "num_workers=0", "progress=false", "tracker=none",
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


def latest_weights(path):
    return load_file(latest_checkpoint(path) / "model.safetensors")


def cli_command(corpus, out, extra=()):
    return [sys.executable, "-m", "linkbert.cli", "pretrain", "--data", str(corpus), "--out", str(out), *TINY, *extra]


def start_torchrun(corpus, out, steps, log, faults: dict | None = None) -> subprocess.Popen:
    """Two ranks (gloo) of ``linkbert pretrain`` writing to ``log`` (a pipe nobody reads while
    waiting would fill and stall them), with a rendezvous on a free port (``--standalone``: a
    fixed port lets two test runs on one machine join one store and wait on each other for ever).

    ``faults``: the ranks run ``faulty_rank.py`` with these environment variables, their lines
    prefixed with their rank (``[default0]:``), and torchrun looks at them every 5 s only, so
    that it does not end a rank itself before that rank's own way of ending shows."""
    entry = ["-m", "linkbert.cli"]
    if faults is not None:
        entry = ["--tee", "3", "--monitor-interval", "5", str(Path(__file__).with_name("faulty_rank.py"))]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *entry]
    return subprocess.Popen(torchrun + cli_command(corpus, out, steps)[3:], stdout=log, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, OMP_NUM_THREADS="1", **(faults or {})),
                            start_new_session=True)


def rank_processes(out) -> dict[int, int]:
    """``{rank: pid}`` of the live ranks of a torchrun whose command line names ``out``."""
    ranks = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(out).encode() not in cmdline.read_bytes().split(b"\0"):
                continue
            environ = dict(line.split(b"=", 1) for line in (cmdline.parent / "environ").read_bytes().split(b"\0")
                           if b"=" in line)
            if b"LOCAL_RANK" in environ and (cmdline.parent / "stat").read_text().split()[2] != "Z":
                ranks[int(environ[b"RANK"])] = int(cmdline.parent.name)
        except (OSError, ValueError):
            pass
    return ranks


def smaller_corpus(corpus, folder):
    """The first 10 documents of ``corpus``, with its tokenizer, prepared in ``folder``: another
    corpus (another fingerprint)."""
    import shutil

    import numpy as np

    from linkbert.store import SegmentStore, SegmentStoreWriter

    store = SegmentStore(corpus)
    writer = SegmentStoreWriter(folder, store.vocab_size)
    for d in range(10):
        segments = [store.segment(s) for s in store.document_segments(d)]
        writer.add(str(d), f"doc {d}", np.concatenate(segments), [len(s) for s in segments])
    writer.close()
    shutil.copytree(corpus / "tokenizer", folder / "tokenizer")
    return folder


def kill_run(out) -> None:
    """SIGKILL torchrun and its ranks: every process whose command line names ``out`` (the ranks
    run in sessions of their own, out of reach of a kill of torchrun's group)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(out).encode() in cmdline.read_bytes().split(b"\0"):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def run_torchrun(corpus, out, steps, timeout: float = 300) -> str:
    """Run two ranks to the end; their output. Ranks waiting on each other fail the test."""
    log_file = out.parent / f"{out.name}.log"
    with open(log_file, "w") as log:
        process = start_torchrun(corpus, out, steps, log)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_run(out)
            process.wait()
            pytest.fail(f"torchrun hung; output: {log_file.read_text()[-3000:]!r}")
    output = log_file.read_text()
    assert process.returncode == 0, output[-3000:]
    return output
