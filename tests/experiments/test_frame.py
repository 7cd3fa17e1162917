"""``experiments/frame.py``: a grid command's frame. A user's mistake is a ``ConfigError`` where
it is found; the frame turns nothing else into one (a bug stays a traceback)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from linkbert import settings
from linkbert.errors import ConfigError
from linkbert.experiments.frame import command_main, csv_choices, device_setting, keep_models_setting


def test_csv_choices_keeps_the_given_order_once_and_names_what_is_unknown():
    assert csv_choices(" b, a,b ,", ("a", "b", "c"), "variant") == ["b", "a"]
    with pytest.raises(ConfigError, match="unknown variant: x, y; choose from a, b"):
        csv_choices("a,x,y", ("a", "b"), "variant")
    with pytest.raises(ConfigError, match=r"unknown init: \(none\)"):
        csv_choices(" , ", ("a",), "init")


def test_the_frame_turns_no_bug_into_a_user_error():
    def bug():
        raise ValueError("a bug of the program's own")

    with pytest.raises(ValueError, match="a bug"):
        command_main(bug)
    assert command_main(lambda: None) == 0


def test_the_run_settings_are_flags_with_their_defaults():
    import argparse

    @dataclass
    class Run:
        device: str = device_setting()
        keep_models: bool = keep_models_setting()

    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, Run)
    assert settings.from_arguments(Run, parser.parse_args([])) == Run("auto", False)
    assert settings.from_arguments(Run, parser.parse_args(["--device", "cpu", "--keep-models"])) == Run("cpu", True)
