"""A pretraining run folder: what it may hold; which changes a resume refuses and which it reports."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from linkbert.errors import ConfigError
from linkbert.pretrain.settings import PretrainConfig
from linkbert.pretrain.run_folder import RUN_IDENTITY, changed_settings, check_resume, check_run_folder

DEFAULTS = dataclasses.asdict(PretrainConfig())
CORPUS = SimpleNamespace(folder="prepared/a", fingerprint="f" * 64,
                         store=SimpleNamespace(num_documents=10, num_segments=40))


def _state(step: int = 5, **config) -> dict:
    return {"step": step, "config": {**DEFAULTS, **config},
            "corpus": {"folder": "prepared/a", "fingerprint": "f" * 64, "documents": 10, "segments": 40}}


def _check(state, tmp_path, corpus=CORPUS, **settings):
    check_resume(tmp_path, state, settings={**DEFAULTS, **settings}, defaults=DEFAULTS, corpus=corpus,
                 tokenizer=None)


def test_a_resume_keeps_the_runs_identity_and_corpus(tmp_path):
    _check(_state(), tmp_path, lr=1e-4, max_steps=5000, budget_minutes=3)  # how it runs may change
    with pytest.raises(ConfigError, match="preset 'mini' -> 'tiny'"):
        _check(_state(), tmp_path, preset="tiny")
    with pytest.raises(ConfigError, match="at step 5, past max_steps=4"):
        _check(_state(), tmp_path, max_steps=4)
    other = SimpleNamespace(**{**vars(CORPUS), "folder": "prepared/b", "fingerprint": "0" * 64})
    with pytest.raises(ConfigError, match="was trained on prepared/a, but --data prepared/b holds other data"):
        _check(_state(), tmp_path, corpus=other)
    old = _state()
    old["corpus"].pop("fingerprint")  # a checkpoint written before fingerprints: the counts decide
    _check(old, tmp_path)
    with pytest.raises(ConfigError, match="documents 10 -> 11"):
        _check(old, tmp_path, corpus=SimpleNamespace(**{**vars(CORPUS), "store": SimpleNamespace(
            num_documents=11, num_segments=40)}))
    assert {"seed", "batch_size", "max_length", "objective"} <= set(RUN_IDENTITY)


def test_changed_settings_name_old_and_new_values():
    assert changed_settings({**DEFAULTS, "lr": 1e-3}, {**DEFAULTS, "lr": 1e-4}, DEFAULTS) == ["lr 0.001 -> 0.0001"]
    saved = {k: v for k, v in DEFAULTS.items() if k != "overwrite"}  # a setting newer than the checkpoint
    assert changed_settings(saved, DEFAULTS, DEFAULTS) == []


def test_a_run_folder_may_be_new_empty_or_a_run(tmp_path):
    check_run_folder(tmp_path / "new", str(tmp_path / "data"), overwrite=False)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    check_run_folder(run, str(tmp_path / "data"), overwrite=False)
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a pretraining run folder \\(it holds notes.txt\\)"):
        check_run_folder(run, str(tmp_path / "data"), overwrite=False)
    check_run_folder(run, str(tmp_path / "data"), overwrite=True)
    with pytest.raises(ConfigError, match="overlaps the input"):
        check_run_folder(tmp_path / "data" / "run", str(tmp_path / "data"), overwrite=False)
