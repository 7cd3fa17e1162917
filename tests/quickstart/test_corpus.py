"""The quickstart's corpus options: ``FORMAT:PATH`` and the reader options it is read with."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkbert.errors import ConfigError
from linkbert.quickstart.config import QuickstartConfig
from linkbert.quickstart.corpus import corpus_reader_options, corpus_source


def test_corpus_option_must_be_format_colon_path():
    assert corpus_source(QuickstartConfig(corpus="jsonl:some/file.jsonl")) == ("jsonl", Path("some/file.jsonl"))
    for bad in ("some/file.jsonl", "nosuchformat:x", "jsonl:"):
        with pytest.raises(ConfigError, match="FORMAT:PATH"):
            corpus_source(QuickstartConfig(corpus=bad))


def test_a_reader_option_is_checked_against_the_corpus_before_any_stage(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "x"}\n')
    config = QuickstartConfig(corpus=f"jsonl:{corpus}", id_field="name", edges=str(tmp_path / "cites.csv"))
    with pytest.raises(ConfigError, match="--edges .*cites.csv: no such file"):
        corpus_reader_options(config, "jsonl", corpus)
    (tmp_path / "cites.csv").write_text("src,tgt\na,a\n")
    assert corpus_reader_options(config, "jsonl", corpus) == {"id_field": "name", "edges": str(tmp_path / "cites.csv")}
    with pytest.raises(ConfigError, match="--id-field does not apply to --format wikispeedia"):
        corpus_reader_options(QuickstartConfig(corpus=f"wikispeedia:{tmp_path}", id_field="name"), "wikispeedia",
                              tmp_path)
    assert corpus_reader_options(QuickstartConfig(), "vital-articles", corpus) == {}
