"""Test settings: markers for tests that need real data, are slow, or need a GPU.

* ``@pytest.mark.data``: reads the real corpora from ``$LINKBERT_DATA`` (the shared data
  folder); skipped with a reason when the variable is unset or the folder is missing.
  Use the ``shared_data`` fixture to get the folder as a ``Path``.
* ``@pytest.mark.slow``: skipped unless ``--runslow`` is given (CI gives it).
* ``@pytest.mark.gpu``: skipped unless CUDA is available.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# passive OpenMP waiting, set before any test imports torch: tests run on shared machines, where a
# spinning thread stalls the others (linkbert/runtime.py); the CLI chooses by the machine's state
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="also run tests marked slow")


def _data_root() -> Path | None:
    root = os.environ.get("LINKBERT_DATA")
    return Path(root) if root and Path(root).is_dir() else None


def pytest_collection_modifyitems(config, items):
    data_root = _data_root()
    for item in items:
        if "data" in item.keywords and data_root is None:
            item.add_marker(pytest.mark.skip(
                reason="needs the real corpora: set LINKBERT_DATA to the shared data folder"))
        if "slow" in item.keywords and not config.getoption("--runslow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --runslow"))
        if "gpu" in item.keywords:
            import torch

            if not torch.cuda.is_available():
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data folder (``$LINKBERT_DATA``); tests using it must be marked ``data``."""
    root = _data_root()
    if root is None:
        pytest.skip("needs the real corpora: set LINKBERT_DATA to the shared data folder")
    return root


def require(path: Path) -> Path:
    """Skip with a reason if one file of the shared data is missing."""
    if not path.exists():
        pytest.skip(f"missing {path}")
    return path


TINY_TEXTS = [
    "The quick brown fox jumps over the lazy dog. Dogs and foxes are animals!",
    "Paris is the capital of France. France is a country in Europe; its capital is Paris.",
    "Graphs have nodes and edges. A directed edge goes from one document to another.",
    "Language models learn from text. Linked documents give knowledge across documents?",
    "Proteins fold into structures. Cells contain proteins, and genes encode them.",
]


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A small uncased WordPiece tokenizer trained in-process (no downloads), saved as a folder."""
    from linkbert.tokenization import train_wordpiece

    tokenizer = train_wordpiece(TINY_TEXTS * 20, vocab_size=300)
    out = tmp_path_factory.mktemp("tokenizer")
    tokenizer.save_pretrained(out)
    return out
