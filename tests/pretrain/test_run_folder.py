"""A pretraining run folder: what it may hold; which changes a resume refuses and which it reports; what the
ranks of one run must agree on; where its compile cache lives."""

from __future__ import annotations

import dataclasses
from pathlib import Path
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


def test_the_ranks_must_agree_on_settings_and_corpus():
    """Every rank computes the same verdict from the same gathered values: the first rank that
    differs, and how, in one line."""
    from linkbert.pretrain.run_folder import check_ranks_agree

    settings = {"lr": 0.005, "batch_size": 8, "preset": "tiny"}
    corpus = {"folder": "/a", "fingerprint": "1234abcd" * 8, "documents": 30, "segments": 80}
    check_ranks_agree([settings, dict(settings)], [corpus, dict(corpus, folder="/mnt/a")])  # paths may differ
    with pytest.raises(ConfigError, match=r"different settings: lr 0.005 \(rank 0\), 0.001 \(rank 2\)") as refused:
        check_ranks_agree([settings, settings, dict(settings, lr=0.001)])
    assert "\n" not in str(refused.value)
    with pytest.raises(ConfigError, match=r"different corpora: /a \(fingerprint 1234abcd1234, rank 0\), /b "
                                          r"\(fingerprint 99999999, rank 1\)"):
        check_ranks_agree([settings, settings], [corpus, dict(corpus, folder="/b", fingerprint="99999999")])


def test_the_compile_cache_lives_beside_the_run_unless_told_otherwise(tmp_path):
    from linkbert.pretrain.run_folder import RUN_FILES, compile_cache

    assert compile_cache(tmp_path, "auto", True, None) == tmp_path / "compile-cache"
    assert "compile-cache" in RUN_FILES  # a run folder holding it is still a run folder
    assert compile_cache(tmp_path, "auto", False, None) is None
    assert compile_cache(tmp_path, "torch", True, None) is None
    assert compile_cache(tmp_path, "/shared/cache", True, "/mine") == Path("/shared/cache")
    assert compile_cache(tmp_path, "auto", True, "/mine") is None  # the user's own TORCHINDUCTOR_CACHE_DIR wins
