"""The ``linkbert`` command line: ``key=value`` settings stand anywhere among a command's flags."""

from __future__ import annotations

import pytest

from linkbert.cli import parse


def test_settings_stand_anywhere_on_the_command_line():
    args = parse(["pretrain", "max_steps=3", "--data", "d", "lr=1e-4", "--out", "o", "seed=2"])
    assert (args.data, args.out, args.overrides) == ("d", "o", ["max_steps=3", "lr=1e-4", "seed=2"])
    with pytest.raises(SystemExit):
        parse(["pretrain", "--data", "d", "--out", "o", "--bogus"])
