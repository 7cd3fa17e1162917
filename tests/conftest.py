"""Test settings: markers for tests that need real data, are slow, or need a GPU.

* ``@pytest.mark.data``: reads the real corpora from ``$LINKBERT_DATA`` (the shared data
  folder); skipped with a reason when the variable is unset or the folder is missing.
  Use the ``shared_data`` fixture to get the folder as a ``Path``.
* ``@pytest.mark.slow``: skipped unless ``--runslow`` is given (CI gives it).
* ``@pytest.mark.gpu``: skipped unless CUDA is available.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# small real excerpts of public corpora (OpenAlex, Semantic Scholar, MuSiQue, ...): tests/data/README.md
TEST_DATA = Path(__file__).resolve().parent / "data"

# passive OpenMP waiting, set before any test imports torch: tests run on shared machines, where a
# spinning thread stalls the others (linkbert/runtime.py); the CLI chooses by the machine's state
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# the fine-tuning tests' shared helpers (tests/finetune/) report failed asserts in detail
pytest.register_assert_rewrite("finetune_helpers")


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


# a tiny BERT folder to fine-tune (tests/finetune/, the ablation in tests/experiments/)

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@pytest.fixture(scope="session")
def prepared_ring(tmp_path_factory, tiny_tokenizer_dir) -> Path:
    """A prepared corpus of 8 short documents, each linking to the next (segment budget 20)."""

    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    root = tmp_path_factory.mktemp("prepared")
    docs = [{"id": str(i), "text": " ".join(TINY_TEXTS[(i + j) % 5] for j in range(3)), "links": [str((i + 1) % 8)]}
            for i in range(8)]
    (root / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    prepare(PrepareConfig(format="jsonl", input=str(root / "c.jsonl"), tokenizer=str(tiny_tokenizer_dir),
                          out=str(root / "out"), segment_budget=20, progress=False))
    return root / "out"


def build_tiny_bert(folder: Path, texts: list[str], split_words=("hyperparathyroidism",)) -> Path:
    """A 2-layer BERT (random weights) and a WordPiece vocab of the words in ``texts``.

    Words in ``split_words`` are left out of the vocab so they fall apart into single-letter
    sub-tokens, which exercises first-sub-token labelling and character offsets.
    """
    import string

    import torch
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer
    from transformers import BertConfig, BertModel, BertTokenizer

    normalizer, pre = BertNormalizer(lowercase=True), BertPreTokenizer()
    words = {w for text in texts for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))}
    words -= set(split_words)
    chars = sorted(set("".join(words)) | set(string.ascii_lowercase + string.digits))
    vocab = list(dict.fromkeys(SPECIALS + sorted(words) + chars + ["##" + c for c in chars]))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizer(vocab=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)  # a plain BERT export: no task head
    return folder


# a Vital Articles summaries file (the quickstart's default corpus), for its reader and the quickstart

TOPICS = ["Arts", "People", "Geography"]


def summaries(n: int) -> dict:
    """A summaries file in the package's layout; every text mentions the next article's title."""
    titles = [f"Article {chr(65 + i % 26)}{i // 26} subject" for i in range(n)]
    entries = {}
    for i, title in enumerate(titles):
        text = " ".join(
            f"{title} is a topic number {i}. It relates to {titles[(i + 1) % n]} and to {titles[(i + 7) % n]}. "
            f"Sentence {k} adds words about {TOPICS[i % 3].lower()} and history." for k in range(4))
        topic = "Uncategorized" if i % 10 == 9 else TOPICS[i % 3]
        entries[title] = {"title": title, "extract": text, "description": "d", "topic": topic}
    return entries


@pytest.fixture
def summaries_file(tmp_path) -> Path:
    path = tmp_path / "summaries_en-us.json"
    path.write_text(json.dumps(summaries(120)), encoding="utf-8")
    return path


# -- what a run's tracker wrote (tests/test_tracking.py, tests/pretrain, tests/finetune) -------------

def tensorboard_tags(folder) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    return set(events.Tags()["scalars"])


def wandb_file(folder):
    """The one offline run file W&B wrote under ``folder/wandb`` (its records hold each logged key
    as text: the format itself is W&B's, read by ``wandb sync``)."""
    files = list((folder / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    return files[0].read_bytes()
