"""The architectures a run can start from scratch: BERT geometries by name.

Example::

    >>> preset_config("tiny", 30522).num_hidden_layers
    2
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


def preset_config(name: str, vocab_size: int, **overrides) -> BertConfig:
    """A ``BertConfig`` for a named preset (the masked-LM model's), with SDPA attention.

    ``overrides`` set any config field (``hidden_dropout_prob=0.0``, ...)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}, or give a checkpoint folder")
    layers, hidden, heads, ffn = PRESETS[name]
    fields = dict(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=ffn, max_position_embeddings=512, type_vocab_size=2)
    fields.update(overrides)
    fields.pop("num_relations", None)  # the pretraining model's, not the encoder's
    config = BertConfig(**fields)
    config._attn_implementation = "sdpa"
    config.architectures = ["BertForMaskedLM"]
    return config
