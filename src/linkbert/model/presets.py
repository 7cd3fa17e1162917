"""The architectures a run can start from scratch: BERT geometries by name, their vocabulary
padded to a multiple of 64 rows (:func:`padded_vocabulary`).

The padding: the word-embedding matrix and the MLM decoder (one matrix, tied) get rows for ids
no tokenizer gives, so that the decoder's matmuls, the largest of a small model's step, have a
width tensor cores tile without remainder. No input holds those ids and no label names them
(the collator draws replacements and labels from the tokenizer's ids), so they only ever sit in
the softmax's denominator, where training drives their logits down. A checkpoint keeps the
padded matrices (a resume or a continued run reads them as they are); ``linkbert export`` cuts
them back to the tokenizer's vocabulary, so an exported model matches its tokenizer.

Example::

    >>> preset_config("tiny", 30522).vocab_size, padded_vocabulary(30522)
    (30528, 30528)
"""

from __future__ import annotations

from transformers import BertConfig

from linkbert.errors import ConfigError

# name -> (layers, hidden, heads, FFN); bio-base is base geometry with the corpus's own vocabulary
PRESETS = {
    "tiny": (2, 128, 2, 512),      # the paper's LinkBERT-tiny (4.4M parameters with a 30522 vocabulary)
    "mini": (4, 256, 4, 1024),     # CPU-sized
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
    "bio-base": (12, 768, 12, 3072),
}


# the vocabulary of a model trained from scratch is padded to a multiple of this many rows
VOCAB_MULTIPLE = 64


def padded_vocabulary(vocab_size: int) -> int:
    """``vocab_size`` rounded up to a multiple of ``VOCAB_MULTIPLE``."""
    return -(-int(vocab_size) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def preset_config(name: str, vocab_size: int, **overrides) -> BertConfig:
    """A ``BertConfig`` for a named preset (the masked-LM model's), with SDPA attention, for a
    tokenizer of ``vocab_size`` tokens: its vocabulary is :func:`padded_vocabulary`'s.

    ``overrides`` set any config field (``hidden_dropout_prob=0.0``, ...)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}, or give a checkpoint folder")
    layers, hidden, heads, ffn = PRESETS[name]
    fields = dict(vocab_size=padded_vocabulary(vocab_size), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=ffn, max_position_embeddings=512, type_vocab_size=2)
    fields.update(overrides)
    fields.pop("num_relations", None)  # the pretraining model's, not the encoder's
    config = BertConfig(**fields)
    config._attn_implementation = "sdpa"
    config.architectures = ["BertForMaskedLM"]
    return config
