"""``linkbert prepare`` on the command line: the summary it prints, and a user's (or the machine's)
mistake as one line and exit status 2."""

import pytest

from linkbert.cli import main as cli_main

from prepare.prepare_helpers import DOCS, leftovers, prepare_argv, snapshot, write_corpus


def test_cli_reports_bad_input_clearly(tmp_path, tiny_tokenizer_dir, capsys):
    (tmp_path / "corpus.jsonl").write_bytes(b'{"id": "a", "text": "caf\xe9"}\n')
    argv = ["prepare", "--format", "jsonl", "--input", str(tmp_path / "corpus.jsonl"),
            "--tokenizer", str(tiny_tokenizer_dir), "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli_main(argv) == 2
    assert "corpus.jsonl, line 1: invalid UTF-8" in capsys.readouterr().err
    argv[4] = str(tmp_path / "missing.jsonl")
    assert cli_main(argv + ["--skip-bad"]) == 2
    assert "missing.jsonl: input does not exist" in capsys.readouterr().err


def test_cli_prints_a_summary(tmp_path, tiny_tokenizer_dir, capsys):
    write_corpus(tmp_path / "corpus.jsonl")
    argv = ["prepare", "--format", "jsonl", "--input", str(tmp_path / "corpus.jsonl"),
            "--tokenizer", str(tiny_tokenizer_dir), "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli_main(argv) == 0
    out = capsys.readouterr().out
    assert "prepared 4 documents" in out and "duplicate_id 1" in out


def test_a_full_disk_names_the_output_folder(tmp_path, tiny_tokenizer_dir, monkeypatch, capsys):
    import errno

    from linkbert import store

    def full(self, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    write_corpus(tmp_path / "corpus.jsonl")
    monkeypatch.setattr(store.SegmentStoreWriter, "add", full)
    assert cli_main(prepare_argv(tmp_path, tiny_tokenizer_dir)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'out'}: No space left on device" in err
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_every_setting_is_a_flag_listed_with_its_default(tmp_path):
    import argparse

    from linkbert import settings
    from linkbert.cli import parse
    from linkbert.prepare.command import configure
    from linkbert.prepare.settings import PrepareConfig

    args = parse(prepare_argv(tmp_path, "train", "--workers", "3", "--link-builder", "tfidf", "--cased"))
    config = settings.from_arguments(PrepareConfig, args)
    assert (config.workers, config.link_builder, config.cased, config.progress) == (3, "tfidf", True, False)
    assert config.segment_budget == PrepareConfig.segment_budget and config.tokenizer == "train"
    parser = argparse.ArgumentParser()
    configure(parser)
    text = " ".join(parser.format_help().split())
    for field in settings.fields(PrepareConfig):
        assert "--" + field.name.replace("_", "-") in text, field.name
    assert f"(default: {PrepareConfig.segment_budget}; >= 1)" in text and "(default: 1; >= 1)" in text


# -- a user's mistakes: one line, exit status 2 -------------------------------------------------


@pytest.mark.parametrize("mistake, expected", [
    ("missing tokenizer", "tokenizer folder {tmp}/nowhere does not exist"),
    ("tokenizer file", "tokenizer {tok}/tokenizer.json is a file"),
    ("segment budget 0", "segment_budget must be at least 1 (got 0)"),
    ("vocab size 0", "vocab_size must be at least 16 (got 0)"),
    ("workers 0", "workers must be at least 1 (got 0)"),
    ("max record bytes 0", "max_record_bytes must be at least 1 (got 0)"),
    ("out is a file", "{tmp}/out exists and is not a folder"),
    ("out not empty", "{tmp}/out is not empty: choose a new folder, or give --overwrite"),
    ("read-only folder", "{tmp}: Permission denied: cannot build the output folder {tmp}/out here"),
    ("no documents", "corpus.jsonl: 0 documents kept, at least 2 needed"),
    ("one document", "corpus.jsonl: 1 document kept, at least 2 needed"),
])
def test_cli_mistakes_are_one_line(tmp_path, tiny_tokenizer_dir, capsys, monkeypatch, mistake, expected):
    import os

    write_corpus(tmp_path / "corpus.jsonl")
    argv = prepare_argv(tmp_path, tiny_tokenizer_dir)
    tokenizer_at = argv.index("--tokenizer") + 1
    if mistake == "missing tokenizer":
        argv[tokenizer_at] = str(tmp_path / "nowhere")
    elif mistake == "tokenizer file":
        argv[tokenizer_at] = str(tiny_tokenizer_dir / "tokenizer.json")
    elif mistake == "segment budget 0":
        argv += ["--segment-budget", "0"]
    elif mistake == "vocab size 0":
        argv += ["--tokenizer", "train", "--vocab-size", "0"]
    elif mistake == "workers 0":
        argv += ["--workers", "0"]
    elif mistake == "max record bytes 0":
        argv += ["--max-record-bytes", "0"]
    elif mistake == "out is a file":
        (tmp_path / "out").write_text("mine")
    elif mistake == "out not empty":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "mine.txt").write_text("mine")
    elif mistake == "read-only folder":
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if str(path) == str(tmp_path)
                            else real_access(path, mode, **kw))
    elif mistake == "no documents":
        (tmp_path / "corpus.jsonl").write_text("")
    elif mistake == "one document":
        write_corpus(tmp_path / "corpus.jsonl", DOCS[:1])
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("linkbert prepare: error: "), err
    assert expected.format(tmp=tmp_path, tok=tiny_tokenizer_dir) in err
    if mistake == "out is a file":
        assert (tmp_path / "out").read_text() == "mine"
    if mistake == "out not empty":
        assert snapshot(tmp_path / "out") == {"mine.txt": b"mine"}
    assert leftovers(tmp_path) == []


def test_a_read_only_folder_is_reported_before_any_work(tmp_path, tiny_tokenizer_dir, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root may write to a read-only folder")
    write_corpus(tmp_path / "corpus.jsonl")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        argv = prepare_argv(tmp_path, tiny_tokenizer_dir)
        argv[argv.index("--out") + 1] = str(locked / "out")
        assert cli_main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{locked}: Permission denied" in err
    finally:
        locked.chmod(0o755)


def test_an_html_file_given_as_a_wikipedia_dump(tmp_path, tiny_tokenizer_dir, capsys):
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><head><title>T</title></head><body><p>Hello. World.</p></body></html>")
    argv = prepare_argv(tmp_path, tiny_tokenizer_dir)
    argv[argv.index("--format") + 1] = "wikipedia-xml"
    argv[argv.index("--input") + 1] = str(page)
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(page) in err, err
    assert not (tmp_path / "out").exists()
