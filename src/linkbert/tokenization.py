"""Tokenizers: load any BERT WordPiece tokenizer, or train a new vocabulary on the corpus.

Everything downstream uses the HF ``tokenizers`` backend (``tokenizers.Tokenizer``): it is
fast, serialisable to a JSON string for worker processes, and gives character offsets.
The prepared corpus keeps the tokenizer in ``OUT/tokenizer/`` as a ``transformers`` folder,
so pretraining and export use exactly the vocabulary the corpus was tokenized with.

A trained vocabulary is the same on every run over the same texts and settings
(:func:`train_wordpiece`). A very long text can be encoded in pieces, in bounded memory, by a
tokenizer whose tokens never cross a space (:func:`splits_at_spaces`, :func:`piece_starts`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Iterable

import numpy as np

from linkbert.errors import ConfigError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_tokenizer(name_or_dir: str):
    """A ``transformers`` fast tokenizer from a local folder, or a hub name when online.

    The folder may hold a ``tokenizer.json`` or only a BERT ``vocab.txt``. The tokenizer must
    have BERT's special tokens, since pretraining builds ``[CLS] A [SEP] B [SEP]``.
    Every mistake (no such folder, a file instead of a folder, a folder without a tokenizer, an
    unknown name, a tokenizer without BERT's special tokens) is a ``ConfigError`` naming the path.
    """
    from transformers import AutoTokenizer

    path = Path(name_or_dir)
    local = path.is_dir()
    if path.exists() and not local:
        raise ConfigError(f"tokenizer {name_or_dir} is a file: give the folder that holds tokenizer.json or vocab.txt")
    if not local and (os.sep in name_or_dir or name_or_dir.startswith(".")):
        raise ConfigError(f"tokenizer folder {name_or_dir} does not exist")
    if local and not any((path / name).is_file() for name in ("tokenizer.json", "vocab.txt")):
        raise ConfigError(f"tokenizer folder {name_or_dir} holds neither tokenizer.json nor vocab.txt")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_dir, local_files_only=local)
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot load a tokenizer from {name_or_dir!r}: give a folder with tokenizer.json or vocab.txt, "
            f"or a hub name while online ({_first_line(e)})") from e
    missing = [t for t in (tokenizer.cls_token, tokenizer.sep_token, tokenizer.mask_token, tokenizer.pad_token) if t is None]
    if missing or not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{name_or_dir}: need a fast BERT-style tokenizer with [CLS], [SEP], [MASK] and [PAD] tokens")
    return tokenizer


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def train_wordpiece(texts: Iterable[str] | Callable[[], Iterable[str]], vocab_size: int = 30522,
                    lowercase: bool = True):
    """Train a BERT WordPiece vocabulary on ``texts`` (the BioLinkBERT route: a domain vocabulary).

    Returns a ``transformers`` BERT tokenizer built from the trained vocabulary, so it saves
    and loads like any BERT checkpoint's tokenizer. The texts are read twice: give a list, or
    a function that returns a new iterable of them each time it is called (a one-pass
    iterator is read into a list).

    Deterministic: the same texts and settings give the same vocabulary, with the same ids, on
    every run. (``tokenizers``' trainer numbers the word-continuing characters ``##x`` in the
    order of a randomly seeded hash map, and breaks ties between equally frequent merges by
    those numbers, so its vocabulary changes from run to run. A first pass finds those
    characters; the real training then gets them as fixed tokens in sorted order, numbered
    before it starts, which leaves the trainer nothing to number by hash order.)
    """
    from tokenizers import trainers
    from transformers import BertTokenizer

    if not callable(texts):
        if iter(texts) is texts:
            texts = list(texts)
        stored = texts
        texts = lambda: stored  # noqa: E731
    probe = _wordpiece_backend(lowercase)
    probe.train_from_iterator(texts(), trainer=trainers.WordPieceTrainer(
        vocab_size=0, special_tokens=list(SPECIAL_TOKENS), continuing_subword_prefix="##", show_progress=False))
    continuing = sorted(token for token in probe.get_vocab() if token.startswith("##") and len(token) == 3)

    backend = _wordpiece_backend(lowercase)
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=[*SPECIAL_TOKENS, *continuing],
                                        continuing_subword_prefix="##", show_progress=False)
    backend.train_from_iterator(texts(), trainer=trainer)
    vocab = dict(sorted(backend.get_vocab().items(), key=lambda item: item[1]))  # saved in id order
    # transformers 5's BertTokenizer takes the vocabulary itself (``vocab=``), not a vocab.txt path
    return BertTokenizer(vocab=vocab, do_lower_case=lowercase)


def _wordpiece_backend(lowercase: bool):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase, clean_text=True, handle_chinese_chars=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def separators_between(tokenizer) -> int:
    """How many separators the tokenizer puts between the two segments of a pair: 1 for BERT's
    ``[CLS] A [SEP] B [SEP]`` (and a tokenizer with no pair template), 2 for RoBERTa's
    ``<s> A </s></s> B </s>``. Any other layout is a ``ConfigError``: pretraining lays pairs out
    itself (``collator.pair_arrays``) and must match what the model will see when fine-tuned."""
    a = tokenizer("a", add_special_tokens=False)["input_ids"]
    b = tokenizer("b", add_special_tokens=False)["input_ids"]
    pair = list(tokenizer("a", "b")["input_ids"])
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    if pair == a + b:  # no template: ours
        return 1
    for between in (1, 2):
        if pair == [cls, *a, *[sep] * between, *b, sep]:
            return between
    raise ConfigError(f"{tokenizer.name_or_path}: its pairs look like {tokenizer.convert_ids_to_tokens(pair)}, "
                      "neither [CLS] A [SEP] B [SEP] nor <s> A </s></s> B </s>: not supported")


def plain_backend(tokenizer):
    """A copy of the tokenizer's ``tokenizers`` backend that neither pads nor truncates.

    Some shipped tokenizer.json files (sentence-transformers models among them) switch on
    padding and truncation to a fixed length; segmenting needs every token of a document.
    """
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def continuation_mask(backend) -> np.ndarray:
    """``mask[id]`` is True when token ``id`` continues a word (``##ing``): no segment may start there."""
    vocab = backend.get_vocab()
    mask = np.zeros(max(vocab.values()) + 1, dtype=bool)
    for token, index in vocab.items():
        mask[index] = token.startswith("##")
    return mask


# -- long texts in pieces --------------------------------------------------------------------------

# normalisers and pre-tokenizers that act on each character (or each run between spaces) alone,
# so that a text cut after a space gives the same tokens as the whole text
_LOCAL_NORMALIZERS = {"BertNormalizer", "Lowercase", "NFD", "NFKD", "NFC", "NFKC", "StripAccents"}
_SPACE_PRE_TOKENIZERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}
# a cut: after a space or a line break, before an ASCII letter or digit
_CUT = re.compile(r"[ \n](?=[A-Za-z0-9])")


def splits_at_spaces(backend) -> bool:
    """Whether ``backend`` (a ``tokenizers.Tokenizer``) gives the same tokens, with the same
    character offsets once shifted, for a text and for its pieces cut by :func:`piece_starts`:
    a WordPiece model behind character-wise normalisers and a pre-tokenizer that splits at
    spaces, with no added token that holds a space or strips its neighbours. BERT's tokenizers
    are such; any other is encoded whole."""
    spec = json.loads(backend.to_str())

    def parts(component, allowed) -> bool:
        if component is None:
            return True
        if component.get("type") == "Sequence":
            inner = component.get("normalizers") or component.get("pretokenizers") or []
            return all(parts(c, allowed) for c in inner)
        return component.get("type") in allowed

    added_ok = all(not token.get("lstrip") and not token.get("rstrip") and not any(c.isspace() for c in token["content"])
                   for token in spec.get("added_tokens") or [])
    return ((spec.get("model") or {}).get("type") == "WordPiece" and added_ok
            and parts(spec.get("normalizer"), _LOCAL_NORMALIZERS)
            and spec.get("pre_tokenizer") is not None and parts(spec["pre_tokenizer"], _SPACE_PRE_TOKENIZERS))


def piece_starts(text: str, piece_chars: int) -> list[int]:
    """Where to cut ``text`` into pieces of at least ``piece_chars`` characters (the last may be
    shorter): each cut lies after a space or line break and before an ASCII letter or digit.
    ``[0]`` for a text no longer than ``piece_chars`` or without such a place."""
    starts = [0]
    while len(text) - starts[-1] > piece_chars:
        match = _CUT.search(text, starts[-1] + piece_chars)
        if match is None:
            break
        starts.append(match.end())
    return starts
