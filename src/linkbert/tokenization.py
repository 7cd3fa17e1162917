"""Tokenizers: load any BERT WordPiece tokenizer, or train a new vocabulary on the corpus.

Everything downstream uses the HF ``tokenizers`` backend (``tokenizers.Tokenizer``): it is
fast, serialisable to a JSON string for worker processes, and gives character offsets.
The prepared corpus keeps the tokenizer in ``OUT/tokenizer/`` as a ``transformers`` folder,
so pretraining and export use exactly the vocabulary the corpus was tokenized with.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_tokenizer(name_or_dir: str):
    """A ``transformers`` fast tokenizer from a local folder, or a hub name when online.

    The folder may hold a ``tokenizer.json`` or only a BERT ``vocab.txt``. The tokenizer must
    have BERT's special tokens, since pretraining builds ``[CLS] A [SEP] B [SEP]``.
    """
    from transformers import AutoTokenizer

    local = Path(name_or_dir).is_dir()
    if not local and os.sep in name_or_dir and not Path(name_or_dir).exists():
        raise FileNotFoundError(f"tokenizer folder {name_or_dir} does not exist")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_dir, local_files_only=local)
    except OSError as e:
        raise FileNotFoundError(
            f"cannot load a tokenizer from {name_or_dir!r}: give a folder with tokenizer.json or vocab.txt, "
            f"or a hub name while online ({e})") from e
    missing = [t for t in (tokenizer.cls_token, tokenizer.sep_token, tokenizer.mask_token, tokenizer.pad_token) if t is None]
    if missing or not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{name_or_dir}: need a fast BERT-style tokenizer with [CLS], [SEP], [MASK] and [PAD] tokens")
    return tokenizer


def train_wordpiece(texts: Iterable[str], vocab_size: int = 30522, lowercase: bool = True):
    """Train a BERT WordPiece vocabulary on ``texts`` (the BioLinkBERT route: a domain vocabulary).

    Returns a ``transformers`` BERT tokenizer built from the trained vocabulary, so it saves
    and loads like any BERT checkpoint's tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import BertTokenizer

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=lowercase, clean_text=True, handle_chinese_chars=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                        continuing_subword_prefix="##", show_progress=False)
    backend.train_from_iterator(texts, trainer=trainer)
    # transformers 5's BertTokenizer takes the vocabulary itself (``vocab=``), not a vocab.txt path
    return BertTokenizer(vocab=backend.get_vocab(), do_lower_case=lowercase)


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
