"""The ``linkbert`` command line: ``key=value`` settings stand anywhere among a command's flags; the
machine's errors (a full disk) are one line."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from linkbert.cli import ClosedPipeSafe, parse

SOURCE = Path(__file__).resolve().parents[1] / "src"


def test_settings_stand_anywhere_on_the_command_line():
    args = parse(["pretrain", "max_steps=3", "--data", "d", "lr=1e-4", "--out", "o", "seed=2"])
    assert (args.data, args.out, args.overrides) == ("d", "o", ["max_steps=3", "lr=1e-4", "seed=2"])
    with pytest.raises(SystemExit):
        parse(["pretrain", "--data", "d", "--out", "o", "--bogus"])


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "No space left on device; free some space"),
                                          (errno.EROFS, "Read-only file system"),
                                          (errno.EACCES, "Permission denied")])
def test_a_disk_error_is_one_line_naming_the_file(monkeypatch, capsys, code, words):
    from linkbert import cli, export

    def fail(args):
        raise OSError(code, os.strerror(code), "/runs/x/model.safetensors")

    monkeypatch.setattr(export, "main", fail)
    assert cli.main(["export", "a", "b"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"linkbert export: error: /runs/x/model.safetensors: {words}" or (
        err.startswith("linkbert export: error: /runs/x/model.safetensors: ") and words in err), err


def test_a_programming_error_is_not_hidden(monkeypatch):
    from linkbert import cli, export

    monkeypatch.setattr(export, "main", lambda args: (_ for _ in ()).throw(FileNotFoundError(2, "gone", "x")))
    with pytest.raises(FileNotFoundError):
        cli.main(["export", "a", "b"])


# -- a reader that stops reading (| head) ---------------------------------------------------------------

def _run_with_stdout_closed(*argv: str) -> subprocess.CompletedProcess:
    """``linkbert ARGV`` whose stdout is a pipe nobody reads any more (``| head`` that has exited)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run([sys.executable, "-m", "linkbert.cli", *argv], stdout=writer, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(SOURCE)}, timeout=600)
    finally:
        os.close(writer)


def _squad(path):
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"id": "q1", "question": "Where?",
                                                    "answers": [{"text": "France", "answer_start": 12}]}]}]}]}))
    return path


def test_a_closed_stdout_is_no_traceback_and_the_work_completes(tmp_path):
    """Before: ``BrokenPipeError`` at the first print after the reader went, exit status 1."""
    dataset = _squad(tmp_path / "train.json")
    (tmp_path / "predictions.json").write_text(json.dumps({"q1": "France"}))
    done = _run_with_stdout_closed("evaluate", "squad", str(dataset), str(tmp_path / "predictions.json"))
    assert (done.returncode, done.stderr) == (0, "")
    done = _run_with_stdout_closed("convert", "squad", str(dataset), str(tmp_path / "out"))
    assert (done.returncode, done.stderr) == (0, "")
    assert (tmp_path / "out" / "qa" / "squad_v1.1_hf" / "train.json").is_file()


@pytest.mark.slow
def test_prepare_with_a_closed_stdout_writes_its_corpus(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": "Paris is in France. " * 20,
                                          "links": [f"d{(i + 1) % 4}"]}) + "\n" for i in range(4)))
    done = _run_with_stdout_closed("prepare", "--format", "jsonl", "--input", str(corpus), "--tokenizer", "train",
                                   "--vocab-size", "200", "--out", str(tmp_path / "prepared"), "--no-progress")
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert json.loads((tmp_path / "prepared" / "stats.json").read_text())["documents"] == 4


def test_closed_pipe_safe_drops_what_comes_after_the_reader_went():
    class Pipe:
        def __init__(self):
            self.written = []

        def write(self, text):
            if len(self.written) == 2:
                raise BrokenPipeError(32, "Broken pipe")
            self.written.append(text)
            return len(text)

        def flush(self):
            pass

    pipe = Pipe()
    stream = ClosedPipeSafe(pipe)
    assert [stream.write(text) for text in ("a", "bc", "def", "g")] == [1, 2, 3, 1]
    stream.flush()
    assert pipe.written == ["a", "bc"] and stream.closed_by_reader
