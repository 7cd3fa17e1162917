"""Tokenizers: loading (every mistake a ConfigError naming the path), reproducible vocabulary
training, and encoding a long text in pieces with exactly the tokens of the whole."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from linkbert.errors import ConfigError
from linkbert.segment import encoding_offsets
from linkbert.tokenization import load_tokenizer, piece_starts, plain_backend, splits_at_spaces, train_wordpiece

from conftest import TINY_TEXTS

# -- loading -----------------------------------------------------------------------------------


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"tokenizer folder {tmp_path / 'nowhere'} does not exist"):
        load_tokenizer(str(tmp_path / "nowhere"))


def test_a_file_is_not_a_tokenizer_folder(tmp_path, tiny_tokenizer_dir):
    with pytest.raises(ConfigError, match="tokenizer.json is a file: give the folder"):
        load_tokenizer(str(tiny_tokenizer_dir / "tokenizer.json"))


def test_a_folder_without_a_tokenizer(tmp_path):
    with pytest.raises(ConfigError, match="holds neither tokenizer.json nor vocab.txt"):
        load_tokenizer(str(tmp_path))


def test_a_broken_tokenizer_file(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot load a tokenizer from"):
        load_tokenizer(str(tmp_path))


# -- training: the same texts give the same vocabulary ------------------------------------------

TEXTS = TINY_TEXTS * 20 + ["Zebra quartz jumps. Élan, naïve façade! Straße in Zürich? 東京 and 日本語."] * 3


def saved(tokenizer, folder: Path) -> dict:
    tokenizer.save_pretrained(folder)
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


@pytest.mark.parametrize("vocab_size", [60, 90, 300])
def test_training_twice_gives_the_same_files(tmp_path, vocab_size):
    # vocab_size 60/90 stops among merges of equal counts: where hash order used to decide
    first = saved(train_wordpiece(TEXTS, vocab_size=vocab_size), tmp_path / "a")
    for name in "bcd":
        assert saved(train_wordpiece(TEXTS, vocab_size=vocab_size), tmp_path / name) == first


def test_training_in_another_process_gives_the_same_vocabulary(tmp_path):
    code = ("import sys; sys.path.insert(0, 'tests'); from test_tokenization import TEXTS; "
            "from linkbert.tokenization import train_wordpiece; "
            f"train_wordpiece(TEXTS, vocab_size=80).save_pretrained({str(tmp_path / 'child')!r})")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
    here = saved(train_wordpiece(TEXTS, vocab_size=80), tmp_path / "here")
    child = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted((tmp_path / "child").iterdir())}
    assert child == here


def test_training_takes_a_function_or_a_one_pass_iterator():
    expected = train_wordpiece(TEXTS, vocab_size=80).get_vocab()
    assert train_wordpiece(lambda: iter(TEXTS), vocab_size=80).get_vocab() == expected
    assert train_wordpiece(iter(TEXTS), vocab_size=80).get_vocab() == expected


def test_the_trained_vocabulary_still_covers_the_texts():
    tokenizer = train_wordpiece(TEXTS, vocab_size=120)
    vocab = tokenizer.get_vocab()
    assert len(vocab) <= 120
    for word in ("paris", "zurich", "straße", "東"):
        assert tokenizer.unk_token not in tokenizer.tokenize(word), word
    assert [tokenizer.convert_ids_to_tokens(i) for i in range(5)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# -- long texts in pieces ----------------------------------------------------------------------

PIECE_TEXTS = [
    "Paris is the capital of France. " * 40,
    "Café au lait, naïve façade; Zürich straße. 東京は大きい 日本語 text 😀 emoji.\n\n" * 30,
    "Control \x00\x07 chars and [MASK] [SEP] literals and e\u0301 combining marks. " * 30,
    "word " * 10 + "x" * 400 + " tail " + "supercalifragilistic " * 20,
    "\n".join(f"Line {i}: item number {i} of the list." for i in range(200)),
    "nospaceatall" * 100,
]


@pytest.mark.parametrize("text", PIECE_TEXTS)
@pytest.mark.parametrize("piece_chars", [1, 17, 64, 500])
def test_pieces_give_the_tokens_and_offsets_of_the_whole(tiny_tokenizer_dir, text, piece_chars):
    backend = plain_backend(load_tokenizer(str(tiny_tokenizer_dir)))
    assert splits_at_spaces(backend)
    whole = backend.encode(text, add_special_tokens=False)
    bounds = [*piece_starts(text, piece_chars), len(text)]
    encodings = backend.encode_batch([text[a:b] for a, b in zip(bounds[:-1], bounds[1:])], add_special_tokens=False)
    ids = [i for e in encodings for i in e.ids]
    offsets = np.concatenate([encoding_offsets(e) + a for e, a in zip(encodings, bounds)])
    assert ids == whole.ids
    assert offsets.tolist() == encoding_offsets(whole).tolist()


def test_piece_starts_cut_after_a_space_before_a_letter_or_digit():
    text = "Alpha beta, (gamma) 12 delta\nepsilon é zeta " * 50
    starts = piece_starts(text, 30)
    assert starts[0] == 0 and len(starts) > 10
    for start in starts[1:]:
        assert text[start - 1] in " \n" and text[start].isascii() and text[start].isalnum()
    assert all(b - a > 30 for a, b in zip(starts[:-1], starts[1:]))
    assert piece_starts("short", 30) == [0]
    assert piece_starts("x" * 100 + " " + "é" * 100, 30) == [0]  # no place to cut


def test_only_tokenizers_whose_tokens_never_cross_a_space_are_cut(tiny_tokenizer_dir):
    from tokenizers import Tokenizer, models, pre_tokenizers

    assert splits_at_spaces(plain_backend(load_tokenizer(str(tiny_tokenizer_dir))))
    byte_level = Tokenizer(models.BPE())
    byte_level.pre_tokenizer = pre_tokenizers.ByteLevel()
    assert not splits_at_spaces(byte_level)
    metaspace = Tokenizer(models.WordPiece(vocab={"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    metaspace.pre_tokenizer = pre_tokenizers.Metaspace()
    assert not splits_at_spaces(metaspace)
    no_pre_tokenizer = Tokenizer(models.WordPiece(vocab={"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    assert not splits_at_spaces(no_pre_tokenizer)
    spaced = plain_backend(load_tokenizer(str(tiny_tokenizer_dir)))
    spaced.add_tokens(["new york"])
    assert not splits_at_spaces(spaced)
