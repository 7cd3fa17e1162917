"""The quickstart's corpus option: ``FORMAT:PATH``."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkbert.errors import ConfigError
from linkbert.quickstart.config import QuickstartConfig
from linkbert.quickstart.corpus import corpus_source


def test_corpus_option_must_be_format_colon_path():
    assert corpus_source(QuickstartConfig(corpus="jsonl:some/file.jsonl")) == ("jsonl", Path("some/file.jsonl"))
    for bad in ("some/file.jsonl", "nosuchformat:x", "jsonl:"):
        with pytest.raises(ConfigError, match="FORMAT:PATH"):
            corpus_source(QuickstartConfig(corpus=bad))
