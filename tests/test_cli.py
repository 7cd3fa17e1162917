"""The ``linkbert`` command line: ``key=value`` settings stand anywhere among a command's flags; the
machine's errors (a full disk) are one line."""

from __future__ import annotations

import errno
import os

import pytest

from linkbert.cli import parse


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
