"""``linkbert quickstart`` as a user runs it: a user's folder refused and a bad setting, each one
line and exit status 2; ``--help`` lists every setting."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from linkbert.cli import main
from linkbert.quickstart.config import QuickstartConfig
from linkbert.quickstart.output import MARKER


def _user_folder(tmp_path) -> Path:
    """A folder the quickstart did not write, with a ``data/`` of the user's own."""
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "data" / "precious.txt").write_text("keep me")
    return out


def test_a_folder_not_written_by_the_quickstart_is_refused(tmp_path, summaries_file, capsys):
    from linkbert.cli import main

    out = _user_folder(tmp_path)
    assert main(["quickstart", "--corpus", f"vital-articles:{summaries_file}", "--out", str(out), "--smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linkbert quickstart: error:") and "\n" not in err, err
    assert "was not written by the quickstart" in err and "--overwrite" in err
    assert (out / "data" / "precious.txt").read_text() == "keep me" and not (out / MARKER).exists()


@pytest.mark.parametrize("flag, message", [
    (["--batch-size", "0"], "batch_size must be at least 1 (got 0)"),
    (["--preset", "huge"], "preset must be one of"),
    (["--baseline", "gpt"], "baseline must be one of none, bert (got 'gpt')"),
    (["--max-length", "4"], "max_length must be at least 8 (got 4)"),
    (["--budget-minutes", "-1"], "budget_minutes must be at least 0 (got -1)"),
    (["--steps", "1"], "steps must be at least 2 (got 1)"),
])
def test_a_bad_setting_is_one_line(tmp_path, capsys, flag, message):
    from linkbert.cli import main

    assert main(["quickstart", "--out", str(tmp_path / "qs"), *flag]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linkbert quickstart: error:") and message in err and "\n" not in err, err
    assert not (tmp_path / "qs").exists()


def test_help_lists_every_setting_as_a_flag(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["quickstart", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help lines
    for field in dataclasses.fields(QuickstartConfig):
        assert "--" + field.name.replace("_", "-") in text and field.metadata["help"][:40] in text, field.name
    assert "--smoke, --no-smoke" in text and "none|bert" in text and "(default: 450; >= 2)" in text


def test_flags_reach_the_settings():
    from linkbert import settings
    from linkbert.cli import parse

    args = parse(["quickstart", "--smoke", "--baseline", "bert", "--budget-minutes", "0.5", "--out", "o"])
    config = settings.from_arguments(QuickstartConfig, args)
    assert (config.smoke, config.baseline, config.budget_minutes, config.out, config.preset) == \
        (True, "bert", 0.5, "o", "mini")


@pytest.mark.parametrize("flags, named", [
    (["--id-field", "name"], "--id-field names"),
    (["--edges", "cites.csv", "--label-field", "topic"], "--label-field, --edges name"),
])
def test_a_reader_option_without_a_corpus_of_ones_own_is_refused(tmp_path, capsys, flags, named):
    """The default corpus has fixed fields and no edge table: the option would be silently ignored."""
    assert main(["quickstart", "--out", str(tmp_path / "qs"), "--smoke", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("linkbert quickstart: error:") and "\n" not in err, err
    assert named in err and "--corpus FORMAT:PATH" in err
    assert not (tmp_path / "qs").exists()


def test_reader_options_reach_the_settings():
    from linkbert import settings
    from linkbert.cli import parse
    from linkbert.prepare.settings import READER_OPTIONS, PrepareConfig

    flags = [word for name in READER_OPTIONS for word in ("--" + name.replace("_", "-"), f"value-of-{name}")]
    config = settings.from_arguments(QuickstartConfig, parse(["quickstart", "--corpus", "jsonl:c.jsonl", *flags]))
    assert {name: getattr(config, name) for name in READER_OPTIONS} == {name: f"value-of-{name}"
                                                                        for name in READER_OPTIONS}
    # the same settings as prepare's: one help text, one default
    prepare = {f.name: f for f in dataclasses.fields(PrepareConfig)}
    for field in dataclasses.fields(QuickstartConfig):
        if field.name in READER_OPTIONS:
            assert (field.default, field.metadata["help"]) == (prepare[field.name].default,
                                                               prepare[field.name].metadata["help"])
