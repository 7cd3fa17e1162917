"""A prepared corpus folder: its parts, its segment budget, its tokenizer's pair layout."""

from __future__ import annotations

import json

import pytest

from linkbert.errors import ConfigError
from linkbert.prepared import PreparedCorpus, graph_dir, is_prepared, stats_path, tokenizer_dir



@pytest.fixture
def folder(prepared_ring):
    return prepared_ring


def test_the_folder_and_its_parts(folder):
    assert is_prepared(folder) and not is_prepared(folder / "graph")
    corpus = PreparedCorpus(folder)
    assert corpus.graph_dir == graph_dir(folder) and corpus.tokenizer_dir == tokenizer_dir(folder)
    assert corpus.stats["segment_budget"] == corpus.segment_budget == 20
    assert 0 < corpus.longest_segment <= 20
    assert corpus.graph().num_nodes == corpus.store.num_documents == 8
    assert len(corpus.tokenizer()) == corpus.store.vocab_size


def test_not_a_prepared_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a prepared corpus"):
        PreparedCorpus(tmp_path)


def test_an_older_folder_without_the_budget_uses_its_longest_segment(folder, tmp_path):
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(folder, copy)
    stats = json.loads(stats_path(copy).read_text())
    del stats["segment_budget"]
    stats_path(copy).write_text(json.dumps(stats))
    corpus = PreparedCorpus(copy)
    assert corpus.segment_budget == corpus.longest_segment


# -- a damaged corpus is refused when it is opened (issue 24) ---------------------------------------------

def _damaged_copy(folder, tmp_path, damage):
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(folder, copy)
    damage(copy)
    return copy


def _poke(path, dtype, index, value):
    import numpy as np

    array = np.fromfile(path, dtype=dtype)
    array[index] = value
    array.tofile(path)


def _poke_npy(path, index, value):
    import numpy as np

    array = np.load(path)
    array[index] = value
    np.save(path, array)


@pytest.mark.parametrize("damage, file", [
    (lambda d: (d / "tokens.bin").write_bytes((d / "tokens.bin").read_bytes()[:-7]), "tokens.bin"),
    (lambda d: _poke(d / "tokens.bin", "uint8", slice(3, 6), 250), "tokens.bin"),
    (lambda d: _poke(d / "segments.bin", "int64", -2, 10 ** 7), "segments.bin"),
    (lambda d: (d / "store.json").write_text("{"), "store.json"),
    (lambda d: (d / "stats.json").write_text("[1]"), "stats.json"),
    (lambda d: _poke_npy(d / "graph" / "indices.npy", 0, 10 ** 6), "graph/indices.npy"),
])
def test_a_damaged_corpus_is_refused_naming_its_file(folder, tmp_path, damage, file):
    from linkbert.errors import BadInput

    copy = _damaged_copy(folder, tmp_path, damage)
    with pytest.raises(BadInput) as info:
        corpus = PreparedCorpus(copy)
        corpus.stats, corpus.graph()  # what pretraining reads of it when it opens it
    assert info.value.path == str(copy / file)


def test_the_bounds_are_checked_once_per_process(folder, monkeypatch):
    from linkbert import prepared
    from linkbert.store import SegmentStore

    calls = []
    monkeypatch.setattr(SegmentStore, "check", lambda self: calls.append(self.dir))
    monkeypatch.setattr(prepared, "_CHECKED", set())
    PreparedCorpus(folder)
    PreparedCorpus(folder)
    assert len(calls) == 1


def test_pretrain_on_a_damaged_corpus_is_one_line_naming_the_file(folder, tmp_path, capsys):
    """Before: a truncated tokens.bin was a ``ValueError`` traceback, token ids beyond the vocabulary
    an ``IndexError`` deep in the first step."""
    from linkbert.cli import main

    copy = _damaged_copy(folder, tmp_path, lambda d: _poke(d / "tokens.bin", "uint8", slice(3, 6), 250))
    code = main(["pretrain", "--data", str(copy), "--out", str(tmp_path / "run"), "preset=tiny", "max_steps=1",
                 "batch_size=2", "max_length=48", "progress=false", "tracker=none"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and f"{copy / 'tokens.bin'}: token id" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.safetensors"))
