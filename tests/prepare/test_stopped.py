"""``linkbert prepare`` stopped by a signal (issue 24): its worker processes and multiprocessing's
resource tracker end with it (SIGTERM or SIGKILL), and the folder it was building is removed by
the next run of the same command, which says so."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linkbert.cli import main as cli_main

from conftest import TINY_TEXTS

SOURCE = Path(__file__).resolve().parents[2] / "src"


def _corpus(path: Path, documents: int = 20000) -> Path:
    """Enough text that two workers are still tokenizing when the signal comes."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(documents):
            text = " ".join(TINY_TEXTS[(i + j) % 5] for j in range(12)) + f" number {i}."
            f.write(json.dumps({"id": f"d{i}", "text": text, "links": [f"d{(i + 1) % documents}"]}) + "\n")
    return path


def _descendants(pid: int) -> set[int]:
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
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _prepare(corpus: Path, tokenizer: Path, out: Path, workers: int) -> list[str]:
    return ["prepare", "--format", "jsonl", "--input", str(corpus), "--tokenizer", str(tokenizer), "--out", str(out),
            "--workers", str(workers), "--chunk-bytes", "20000", "--no-progress"]


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "linkbert.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(SOURCE)},
                            start_new_session=True)


def _wait(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_the_workers_and_the_resource_tracker_end_with_prepare(tmp_path, tiny_tokenizer_dir, sig):
    """Before: both signals left two workers and the resource tracker alive, deadlocked, for ever."""
    corpus = _corpus(tmp_path / "corpus.jsonl")
    process = _start(_prepare(corpus, tiny_tokenizer_dir, tmp_path / "out", workers=2))
    family: set[int] = set()
    try:
        def workers_running() -> bool:
            family.update(_descendants(process.pid))
            return len(_descendants(process.pid)) >= 3  # two workers and the resource tracker
        _wait(workers_running)
        time.sleep(1.0)  # every worker started (the pool starts them one by one)
        family.update(_descendants(process.pid))
        process.send_signal(sig)
        process.wait(timeout=60)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in family if _alive(pid)] == []
    finally:
        for pid in family | {process.pid}:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_next_run_removes_the_folder_a_killed_run_was_building(tmp_path, tiny_tokenizer_dir, caplog):
    """Before: the ``.out.building-*`` folder of a killed run stayed for ever, unmentioned."""
    corpus = _corpus(tmp_path / "corpus.jsonl")  # long enough to be killed while building (20,000 documents)
    out = tmp_path / "out"
    process = _start(_prepare(corpus, tiny_tokenizer_dir, out, workers=1))
    try:
        _wait(lambda: any((p / "tokenizer").is_dir() for p in tmp_path.glob(".out.building-*")))
        time.sleep(2.5)  # older than a build that is just starting
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    (stopped,) = tmp_path.glob(".out.building-*")
    with caplog.at_level("WARNING", logger="linkbert.files"):
        assert cli_main(_prepare(corpus, tiny_tokenizer_dir, out, workers=1)) == 0
    assert f"removed {stopped.name}, left beside {out}" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "out"]
