"""Settings: typed values from YAML, key=value words and flags; constraints; help for every field."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from linkbert import settings
from linkbert.errors import BadInput, ConfigError
from linkbert.settings import setting


@dataclass
class Example:
    name: str = setting(None, "a required name", required=True)
    kind: str = setting("a", "which kind", choices=("a", "b"))
    steps: int = setting(10, "how many steps", minimum=1)
    rate: float = setting(0.5, "a rate in (0, 1]", above=0, maximum=1)
    max_length: int = setting(128, "tokens per input", minimum=8)
    verbose: bool = setting(False, "say more")

    def check(self) -> None:
        if self.kind == "b" and self.steps > 100:
            raise ConfigError("kind b takes at most 100 steps")


def test_values_are_typed_whichever_way_they_come(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nrate: 2e-1\nsteps: 1e2\n")  # YAML 1.1 reads 2e-1 as a string
    loaded = settings.load(Example, path, ["verbose=yes", "steps=30"], kind="b")
    assert (loaded.name, loaded.kind, loaded.steps, loaded.rate, loaded.verbose) == ("x", "b", 30, 0.2, True)


def test_later_sources_win(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: from-file\nsteps: 5\n")
    assert settings.load(Example, path, ["name=from-override"], name="from-argument", steps=7).name == "from-override"
    assert settings.load(Example, path, [], steps=7).steps == 7


@pytest.mark.parametrize("words, message", [
    (["name=x", "steps=0"], "steps must be at least 1 (got 0)"),
    (["name=x", "rate=0"], "rate must be above 0"),
    (["name=x", "rate=1.5"], "rate must be at most 1"),
    (["name=x", "kind=c"], "kind must be one of a, b (got 'c')"),
    (["name=x", "steps=2.5"], "steps should be int"),
    (["name=x", "verbose=maybe"], "verbose should be bool"),
    (["name=x", "nonsense=1"], "unknown setting 'nonsense'; valid settings: name, kind"),
    (["name=x", "max_seq_length=64"], "'max_seq_length' is now called 'max_length'"),
    (["name=x", "steps"], "is not key=value"),
    (["steps=3"], "name not set"),
    (["name=x", "kind=b", "steps=200"], "kind b takes at most 100 steps"),
])
def test_a_bad_setting_names_itself(words, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings.load(Example, None, words)


@dataclass
class Sized:
    slots: int | str = setting(0, "slots; auto: computed", minimum=0, words=("auto",))
    rate: float | str = setting("same", "a rate; same: the other one's", minimum=0, words=("same",))


def test_a_number_setting_may_take_its_words(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("slots: auto\nrate: 1e-1\n")
    loaded = settings.load(Sized, path)
    assert (loaded.slots, loaded.rate) == ("auto", 0.1)
    assert settings.load(Sized, None, ["slots=12", "rate=same"]).slots == 12
    with pytest.raises(ConfigError, match="slots must be a number or auto \\(got 'many'\\)"):
        settings.load(Sized, None, ["slots=many"])
    with pytest.raises(ConfigError, match="slots must be at least 0"):
        settings.load(Sized, None, ["slots=-1"])
    assert "a number or auto" in "\n".join(settings.help_lines(Sized))


def test_a_bad_settings_file_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="settings file not found"):
        settings.load(Example, tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(BadInput, match="expected a mapping"):
        settings.load(Example, tmp_path / "list.yaml")


def test_flags_come_from_the_fields():
    parser = argparse.ArgumentParser()
    settings.add_flags(parser, Example)
    args = parser.parse_args(["--name", "n", "--steps", "3", "--verbose", "--max-length", "64"])
    loaded = settings.from_flags(Example, args)
    assert (loaded.name, loaded.steps, loaded.verbose, loaded.max_length, loaded.rate) == ("n", 3, True, 64, 0.5)
    assert settings.from_flags(Example, parser.parse_args(["--name", "n", "--no-verbose"])).verbose is False
    with pytest.raises(SystemExit):
        parser.parse_args(["--name", "n", "--kind", "c"])  # choices are argparse's too
    with pytest.raises(SystemExit):
        parser.parse_args([])  # --name is required


def test_help_lists_every_setting():
    parser = argparse.ArgumentParser()
    settings.add_overrides(parser, Example)
    text = parser.format_help()
    for field in settings.fields(Example):
        assert field.name in text and field.metadata["help"] in text
    assert "default 10" in text and "one of a|b" in text


@dataclass
class Command:
    source: str = setting(None, "what to read", required=True)
    out: str = setting("out", "where to write")
    kind: str = setting("a", "which kind", choices=("a", "b"))
    steps: int = setting(10, "how many steps", minimum=1)
    share: float = setting(0.5, "a 50% share", above=0, maximum=1)
    verbose: bool = setting(False, "say more")


def _command_parser(**options) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cmd")
    settings.add_arguments(parser, Command, **options)
    return parser


def test_arguments_positionals_flags_file_and_overrides(tmp_path):
    parser = _command_parser(positional=("source",), overrides=True, file_flag="--recipe")
    path = tmp_path / "r.yaml"
    path.write_text("steps: 5\nkind: b\nshare: 0.25\nout: from-file\n")
    args = parser.parse_args(["in.txt", "share=0.75", "--recipe", str(path), "--steps", "7", "--verbose"])
    loaded = settings.from_arguments(Command, args)
    # defaults < the file < flags < key=value
    assert (loaded.source, loaded.out, loaded.kind, loaded.steps, loaded.share, loaded.verbose) == \
        ("in.txt", "from-file", "b", 7, 0.75, True)
    assert args.settings_class is Command
    parser = _command_parser(positional=("source", "out"))
    assert settings.from_arguments(Command, parser.parse_args(["in.txt"])).out == "out"  # optional: its default
    assert settings.from_arguments(Command, parser.parse_args(["in.txt", "o2", "--no-verbose"])).out == "o2"


def test_arguments_are_checked_by_the_settings_not_argparse():
    """A value outside the choices or bounds is one ConfigError naming the setting, as from a
    YAML file or key=value; a required setting given nowhere too."""
    parser = _command_parser(overrides=True)
    with pytest.raises(ConfigError, match=r"kind must be one of a, b \(got 'c'\)"):
        settings.from_arguments(Command, parser.parse_args(["--source", "x", "--kind", "c"]))
    with pytest.raises(ConfigError, match=r"steps must be at least 1 \(got 0\)"):
        settings.from_arguments(Command, parser.parse_args(["--source", "x", "--steps", "0"]))
    with pytest.raises(ConfigError, match="source not set"):
        settings.from_arguments(Command, parser.parse_args([]))
    assert settings.from_arguments(Command, parser.parse_args(["source=y"])).source == "y"
    with pytest.raises(SystemExit):
        _command_parser(positional=("source",)).parse_args([])  # a required positional is argparse's


def test_arguments_help_lists_every_setting_with_its_bounds():
    text = " ".join(_command_parser(positional=("source",), overrides=True).format_help().split())
    for field in settings.fields(Command):
        assert field.metadata["help"] in text, field.name
    assert "SOURCE" in text and "--kind a|b" in text and "--verbose, --no-verbose" in text
    assert "(default: 10; >= 1)" in text and "a 50% share (default: 0.5; > 0; <= 1)" in text
    assert "key=value" in text


# -- hostile settings files (issue 24) --------------------------------------------------------------

ALIAS_BOMB = ("steps: [&a [x,x,x,x,x,x,x,x,x,x], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], "
              "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], "
              "&e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e], "
              "[*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]]\n")  # 10^7 values once expanded


@pytest.mark.parametrize("text", [ALIAS_BOMB, "steps: &a [*a]\n", "name: x\nsteps: [" + "1, " * 20000 + "1]\n"])
def test_a_settings_file_expanding_to_millions_of_values_is_refused_before_it_is_built(tmp_path, text):
    """Before: the alias bomb reached the error message, which showed the value: gigabytes."""
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(BadInput, match="expands to more than 10,000 values") as info:
        settings.load(Example, path)
    assert len(str(info.value)) < 300


def test_yaml_nested_too_deeply_is_one_line(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("steps: " + "[" * 50000 + "]" * 50000 + "\n")
    with pytest.raises(BadInput, match=r"deep\.yaml: YAML nested too deeply to read"):
        settings.load(Example, path)


def test_a_value_in_a_message_is_cut_short(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\nsteps: [" + ", ".join(["12345"] * 2000) + "]\n")
    with pytest.raises(ConfigError, match=r"steps should be int, got \[12345, 12345, .*\.\.\.\]") as info:
        settings.load(Example, path)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("text, where, what", [
    ("name: x\nsteps: 8\n  rate: 0.5\n", "line 3, column 7", "mapping values are not allowed here"),
    ("name: x\nsteps: [1, 2\n", "line 3, column 1", "expected ',' or ']'"),
    ("name: x\n\tsteps: 1\n", "line 2, column 1", "found character '\\t' that cannot start any token"),
])
def test_a_yaml_syntax_error_says_what_and_where_on_one_line(tmp_path, text, where, what):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(BadInput) as info:
        settings.load(Example, path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}, {where}: not valid YAML: {what}")


def test_a_settings_file_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: x\n# r\xe9glages\nsteps: 3\n")
    with pytest.raises(BadInput, match=r"s\.yaml, line 2: not UTF-8 text"):
        settings.load(Example, path)


def test_a_huge_settings_file_is_refused_unread(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\n" + "# padding\n" * 200_000)
    with pytest.raises(BadInput, match="more than 1,048,576 bytes"):
        settings.load(Example, path)
