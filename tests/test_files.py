"""Writing outputs: ``write_json`` replaces a file whole or not at all; JSON keeps non-ASCII text;
``write_jsonl`` writes one object per line; a finished folder replaces the old one, which comes
back when the rename fails; an error inside a folder being built names the output folder."""

from __future__ import annotations

import json

import pytest

from linkbert.files import write_json, write_jsonl


def test_a_failure_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    write_json(path, {"step": 1})
    old = path.read_bytes()
    with pytest.raises(TypeError):  # the first key is written before the second fails to encode
        write_json(path, {"step": 2, "model": object()})
    assert path.read_bytes() == old and json.loads(old) == {"step": 1}


def test_non_ascii_is_kept_and_folders_are_made(tmp_path):
    path = tmp_path / "new" / "folder" / "names.json"
    value = {"title": "Åland", "city": "東京", "dash": "a – b"}
    write_json(path, value)
    text = path.read_text(encoding="utf-8")
    assert "Åland" in text and "東京" in text and "\\u" not in text and text.endswith("\n")
    assert json.loads(text) == value


def test_write_jsonl_writes_one_object_per_line(tmp_path):
    records = [{"id": 1, "text": "Zürich\nlies on a lake"}, {"id": 2, "links": ["a", "b"]}, {}]
    path = tmp_path / "out" / "records.jsonl"
    write_jsonl(path, iter(records))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == records and "Zürich" in lines[0]
    write_jsonl(path, [])
    assert path.read_text(encoding="utf-8") == ""


def test_an_output_folder_that_would_lose_data_is_refused(tmp_path):
    from linkbert.errors import ConfigError
    from linkbert.files import check_output_folder

    check_output_folder(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_output_folder(tmp_path / "empty")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("user data")
    with pytest.raises(ConfigError, match="is not empty.*--overwrite"):
        check_output_folder(tmp_path / "full")
    check_output_folder(tmp_path / "full", overwrite=True)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        check_output_folder(tmp_path / "a-file", overwrite=True)
    with pytest.raises(ConfigError, match="overlaps the input"):
        check_output_folder(tmp_path / "full" / "out", inputs=[tmp_path / "full"])
    with pytest.raises(ConfigError, match="overlaps the input"):
        check_output_folder(tmp_path, inputs=[tmp_path / "full" / "keep.txt"])


def test_building_replaces_the_folder_only_when_complete(tmp_path):
    from linkbert.files import building

    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("previous corpus")
    with pytest.raises(RuntimeError):
        with building(final) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("killed half-way")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]  # the previous folder, untouched
    with building(final) as tmp:
        (tmp / "new.txt").write_text("new corpus")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]  # no stale file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def _failing_second_rename(monkeypatch):
    """``os.rename`` that fails on its second call: the old folder went aside, the new one cannot
    come in."""
    import errno
    import os

    real_rename, calls = os.rename, []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:
            raise OSError(errno.EACCES, "Permission denied", str(src), None, str(dst))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    return calls


def test_publish_folder_moves_the_old_one_aside(tmp_path):
    from linkbert.files import publish_folder

    final, tmp = tmp_path / "out", tmp_path / "new"
    tmp.mkdir()
    (tmp / "a.txt").write_text("first")
    assert publish_folder(tmp, final) is None and (final / "a.txt").read_text() == "first"
    tmp.mkdir()
    (tmp / "a.txt").write_text("second")
    aside = publish_folder(tmp, final)
    assert (final / "a.txt").read_text() == "second" and (aside / "a.txt").read_text() == "first"
    assert aside.parent == tmp_path and aside.name.startswith(".out.old-") and not tmp.exists()
    # a chosen name for the old folder: whatever held it before goes
    tmp.mkdir()
    (tmp / "a.txt").write_text("third")
    assert publish_folder(tmp, final, aside=aside) == aside
    assert (final / "a.txt").read_text() == "third" and sorted(p.name for p in aside.iterdir()) == ["a.txt"]
    assert (aside / "a.txt").read_text() == "second"


def test_publish_folder_puts_the_old_one_back_when_the_rename_fails(tmp_path, monkeypatch):
    from linkbert.files import publish_folder

    final, tmp = tmp_path / "out", tmp_path / "new"
    final.mkdir()
    (final / "old.txt").write_text("previous")
    tmp.mkdir()
    (tmp / "new.txt").write_text("new")
    calls = _failing_second_rename(monkeypatch)
    with pytest.raises(OSError, match="Permission denied"):
        publish_folder(tmp, final)
    assert len(calls) == 3  # aside, in (failed), back
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"] and (tmp / "new.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]


def test_building_puts_the_old_folder_back_when_the_rename_fails(tmp_path, monkeypatch):
    from linkbert.files import building

    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("previous corpus")
    _failing_second_rename(monkeypatch)
    with pytest.raises(OSError, match="Permission denied"):
        with building(final) as tmp:
            (tmp / "new.txt").write_text("new corpus")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert (final / "old.txt").read_text() == "previous corpus"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary or old folder left


@pytest.mark.parametrize("code, filename, expected", [
    ("ENOSPC", None, "{out}: No space left on device"),
    ("ENOSPC", "{tmp}/graph/indices.npy", "{out}: No space left on device (writing graph/indices.npy)"),
    ("EACCES", "{tmp}", "{out}: Permission denied"),
    ("ENOSPC", "{elsewhere}", "{elsewhere}: No space left on device"),  # another file: as it is
    ("EIO", None, None),  # not the machine's fault as errors.ENVIRONMENT_ERRORS lists them: as it is
])
def test_naming_output_names_the_output_folder(tmp_path, code, filename, expected):
    import errno
    import os

    from linkbert.errors import describe_os_error
    from linkbert.files import naming_output

    out, number = tmp_path / "out", getattr(errno, code)
    paths = {"out": out, "tmp": tmp_path / ".out.building-x1y2", "elsewhere": tmp_path / "other" / "file.bin"}
    error = OSError(number, os.strerror(number), *([filename.format(**paths)] if filename else []))
    with pytest.raises(OSError) as failure:
        with naming_output(out):
            raise error
    if expected is None:
        assert failure.value is error
    else:
        assert describe_os_error(failure.value).startswith(expected.format(**paths))
        assert failure.value.errno == number


# -- a stopped build's folder, removed by the next build of the same folder (issue 24) -------------------

def _old(folder, seconds=60):
    """``folder`` (made if need be), its times a minute back: not one a build is just starting."""
    import os
    import time

    folder.mkdir(exist_ok=True)
    stamp = time.time() - seconds
    os.utime(folder, (stamp, stamp))
    return folder


def _building_child(final, ready):
    """A process inside ``building(final)`` until killed (``ready``: a file it writes once inside)."""
    import subprocess
    import sys

    code = ("import sys, time; from pathlib import Path; from linkbert.files import building\n"
            "with building(Path(sys.argv[1])) as tmp:\n"
            "    (tmp / 'part').write_text('x'); Path(sys.argv[2]).write_text(str(tmp)); time.sleep(600)\n")
    return subprocess.Popen([sys.executable, "-c", code, str(final), str(ready)])


def _wait_for(path):
    import time

    for _ in range(600):
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_a_killed_build_is_removed_by_the_next_build_which_says_so(tmp_path, caplog):
    """Before: ``.out.building-*`` folders of killed prepare and finetune runs stayed for ever."""
    import signal

    from linkbert.files import building

    child = _building_child(tmp_path / "out", tmp_path / "ready")
    stopped = _old(type(tmp_path)(_wait_for(tmp_path / "ready")))
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert stopped.is_dir()  # what a killed build leaves
    other = _old(tmp_path / ".other.building-abc")  # another output's: not this build's to remove
    (tmp_path / ".out.building-notes.txt").write_text("a file of the same pattern: not a build folder")
    with caplog.at_level("WARNING", logger="linkbert.files"), building(tmp_path / "out") as tmp:
        (tmp / "x").write_text("new")
    assert not stopped.exists() and other.is_dir() and (tmp_path / ".out.building-notes.txt").is_file()
    assert f"removed {stopped.name}, left beside {tmp_path / 'out'}" in caplog.text
    assert (tmp_path / "out" / "x").read_text() == "new"


def test_a_running_build_of_the_same_folder_is_left_alone(tmp_path, caplog):
    import signal

    from linkbert.files import remove_stopped_builds

    child = _building_child(tmp_path / "out", tmp_path / "ready")
    try:
        running = _old(type(tmp_path)(_wait_for(tmp_path / "ready")))
        with caplog.at_level("WARNING", logger="linkbert.files"):
            assert remove_stopped_builds(tmp_path / "out") == []
        assert running.is_dir() and (running / "part").is_file()
        assert f"left {running}: a build of {tmp_path / 'out'} is running there" in caplog.text
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert remove_stopped_builds(tmp_path / "out") == [running]


def test_a_leftover_of_a_name_with_glob_characters_is_matched_literally(tmp_path):
    from linkbert.files import remove_stopped_builds

    mine = _old(tmp_path / ".o[1].building-x")
    lookalike = _old(tmp_path / ".o1.building-y")
    assert remove_stopped_builds(tmp_path / "o[1]") == [mine] and lookalike.is_dir()
