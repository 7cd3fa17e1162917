"""The quickstart's output folder: a folder it did not write is refused unless ``--overwrite``, a
quickstart folder is its own to redo, the corpus may not lie in a stage folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from linkbert.errors import ConfigError
from linkbert.quickstart.output import MARKER, claim_output_folder


def _user_folder(tmp_path) -> Path:
    """A folder the quickstart did not write, with a ``data/`` of the user's own."""
    out = tmp_path / "mine"
    (out / "data").mkdir(parents=True)
    (out / "data" / "precious.txt").write_text("keep me")
    return out


def test_overwrite_claims_a_folder_and_a_quickstart_folder_is_reused(tmp_path, summaries_file):
    out = _user_folder(tmp_path)
    (out / "notes.txt").write_text("mine")
    claim_output_folder(out, inputs=[summaries_file], overwrite=True)
    assert (out / MARKER).is_file() and (out / "notes.txt").read_text() == "mine"
    claim_output_folder(out, inputs=[summaries_file], overwrite=False)  # now a quickstart folder
    claim_output_folder(tmp_path / "new", inputs=[summaries_file], overwrite=False)
    assert (tmp_path / "new" / MARKER).is_file()


def test_the_corpus_may_not_lie_in_a_stage_folder(tmp_path, summaries_file):
    out = tmp_path / "qs"
    (out / "work").mkdir(parents=True)
    corpus = out / "work" / "corpus.json"
    corpus.write_text(summaries_file.read_text())
    with pytest.raises(ConfigError, match="overlaps the input"):
        claim_output_folder(out, inputs=[corpus], overwrite=True)
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        claim_output_folder(corpus, inputs=[summaries_file], overwrite=True)
