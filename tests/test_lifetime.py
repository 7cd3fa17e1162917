"""How a process ends: stop signals recorded for the loop to act on, helper processes that end
with their parent, kill -9 included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from linkbert.lifetime import STOP_SIGNALS, StopRequests


@pytest.mark.parametrize("name", STOP_SIGNALS)
def test_a_stop_signal_is_recorded_not_obeyed_and_the_handlers_come_back(name):
    number = getattr(signal, name)
    before = {n: signal.getsignal(getattr(signal, n)) for n in STOP_SIGNALS}
    with StopRequests() as stops:
        assert stops.received is None
        os.kill(os.getpid(), number)
        os.kill(os.getpid(), signal.SIGTERM)  # a second one does not replace the first
        time.sleep(0.05)
        assert stops.received == name
    assert {n: signal.getsignal(getattr(signal, n)) for n in STOP_SIGNALS} == before


CHILD = """
import sys, time
from linkbert.lifetime import die_with_parent, ignore_stop_signals
assert die_with_parent()
ignore_stop_signals()
print("ready", flush=True)
time.sleep(120)
"""

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=subprocess.PIPE, text=True)
assert child.stdout.readline().strip() == "ready"
print(child.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_helper_process_ends_with_its_parent_even_on_kill_9():
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""))
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], stdout=subprocess.PIPE, text=True, env=env)
    child = int(parent.stdout.readline())
    os.kill(child, signal.SIGTERM)  # ignored: the stop signals are the trainer's to handle
    time.sleep(0.2)
    assert Path(f"/proc/{child}").exists()
    parent.kill()
    parent.wait()
    deadline = time.time() + 30
    while time.time() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the child outlived its parent"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_ignoring_the_stop_signals_in_a_helper():
    code = "import os, signal, time; from linkbert.lifetime import ignore_stop_signals; ignore_stop_signals(); " \
           "os.kill(os.getpid(), signal.SIGTERM); os.kill(os.getpid(), signal.SIGUSR1); time.sleep(0.1); print('alive')"
    src = str(Path(__file__).resolve().parents[1] / "src")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=src))
    assert done.stdout.strip() == "alive"
