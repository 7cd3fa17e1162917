"""A model to pretrain: from a preset (scratch) or from a local BERT checkpoint folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import BertConfig

from linkbert.errors import ConfigError
from linkbert.model.modeling import PRESETS, LinkBertForPreTraining, preset_config

logger = logging.getLogger(__name__)


BACKENDS = ("linkbert", "hf")


def resolve_backend(backend: str, init: str, device) -> str:
    """``auto`` decided: the written-out BERT (``linkbert``) for a BERT preset or checkpoint on a
    CPU, the checkpoint's own forward (``hf``) on a GPU or for any other architecture; an
    explicit ``linkbert`` for a non-BERT checkpoint is a ConfigError."""
    model_type = "bert"
    config_file = Path(init) / "config.json"
    if init != "scratch" and config_file.is_file():
        config = json.loads(config_file.read_text())
        # a checkpoint of the hf backend (its weights are named mlm.*) continues on it
        model_type = "hf checkpoint" if config.get("linkbert_backend") == "hf" else config.get("model_type")
    if backend == "auto":
        return "linkbert" if model_type == "bert" and getattr(device, "type", device) == "cpu" else "hf"
    if backend == "linkbert" and model_type != "bert":
        raise ConfigError(f"{config_file}: model_type {model_type!r}: the linkbert backend is BERT's forward; "
                          "use backend=hf (or auto)")
    return backend


def init_model(preset_or_checkpoint: str, vocab_size: int, num_relations: int = 3, backend: str = "linkbert",
               attention: str = "sdpa", **overrides):
    """A model to pretrain, from scratch (a preset name) or from a local BERT checkpoint folder.

    A checkpoint folder holds ``config.json`` (``model_type: bert``) and safetensors weights
    (``model.safetensors`` or a sharded index); ``pytorch_model.bin`` is refused, since
    unpickling can run code. Its encoder loads whether the keys carry the ``bert.`` prefix
    (``BertForPreTraining``/``BertForMaskedLM`` checkpoints) or not (``BertModel`` ones, e.g.
    sentence-transformers' MiniLM); its MLM head loads when present, else starts fresh with a
    log line naming what was initialised. The relation head always starts fresh. Weights are
    float32 whatever the checkpoint's dtype; the model comes back in training mode.

    ``overrides`` set config fields (dropout, ...); for a checkpoint only those that leave the
    weights' shapes alone make sense.

    Raises ``ConfigError`` when the checkpoint's vocabulary size is not ``vocab_size``.

    Example::

        >>> model = init_model("tiny", vocab_size=len(tokenizer), num_relations=3)
        >>> model = init_model("/models/bert-base-uncased", vocab_size=30522, num_relations=3)
    """
    folder = Path(preset_or_checkpoint)
    if backend == "hf":
        from linkbert.model import any_encoder

        if preset_or_checkpoint in PRESETS:
            config = preset_config(preset_or_checkpoint, vocab_size, **overrides)
            return any_encoder.from_preset(config, num_relations, attention).train()
        if folder.is_dir():
            _refuse_pickled_weights(folder)
            if any_encoder.is_checkpoint(folder):  # a LinkBERT run of this backend: continued whole
                return any_encoder.EncoderForLinkPretraining.from_pretrained(folder).train()
            return any_encoder.from_checkpoint(folder, vocab_size, num_relations, overrides, attention).train()
    if preset_or_checkpoint in PRESETS:
        config = preset_config(preset_or_checkpoint, vocab_size, num_relations=num_relations, **overrides)
        model = LinkBertForPreTraining(config)
    elif folder.is_dir():
        model = _from_checkpoint(folder, vocab_size, num_relations, overrides)
    else:
        raise ConfigError(f"{preset_or_checkpoint!r} is neither a preset ({', '.join(PRESETS)}) nor a checkpoint folder")
    return model.train()


def _checkpoint_config(folder: Path, vocab_size: int, num_relations: int, overrides: dict) -> BertConfig:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{folder}: no config.json, so not a transformers checkpoint folder")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type != "bert":
        raise ConfigError(f"{config_file}: model_type is {model_type!r}; "
                         "LinkBERT pretraining starts from a BERT checkpoint")
    config = BertConfig.from_pretrained(folder)
    if config.vocab_size != vocab_size:
        raise ConfigError(
            f"{folder} has a vocabulary of {config.vocab_size} tokens but the tokenizer has {vocab_size}: "
            "prepare the corpus with this checkpoint's tokenizer (prepare --tokenizer CHECKPOINT)")
    for key, value in overrides.items():
        setattr(config, key, value)
    config.num_relations = num_relations
    config.architectures = None  # ours now, not the checkpoint's
    return config


def _refuse_pickled_weights(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder}: no config.json, so not a transformers checkpoint folder")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.safetensors.index.json")):
        pickled = {".bin", ".pt", ".pth", ".h5", ".msgpack"}
        found = ", ".join(sorted(p.name for p in folder.iterdir() if p.suffix in pickled))
        raise ConfigError(f"{folder}: no safetensors weights (found: {found or 'none'}); convert the checkpoint to "
                         "safetensors first (loading pickled weights could run code)")


def _from_checkpoint(folder: Path, vocab_size: int, num_relations: int, overrides: dict) -> LinkBertForPreTraining:
    _refuse_pickled_weights(folder)
    config = _checkpoint_config(folder, vocab_size, num_relations, overrides)
    from transformers.utils import logging as hf_logging

    # transformers' own load report calls an encoder-only checkpoint (no MLM head) "corrupted";
    # _log_fresh_parameters says plainly what starts fresh
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:  # transformers strips or adds the "bert." prefix and renames old LayerNorm gamma/beta keys
        model, info = LinkBertForPreTraining.from_pretrained(
            folder, config=config, use_safetensors=True, dtype=torch.float32, attn_implementation="sdpa",
            output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    _log_fresh_parameters(folder, info["missing_keys"], info["unexpected_keys"])
    return model


def _log_fresh_parameters(folder: Path, missing, unexpected) -> None:
    """Say which parameters start fresh: the relation head (always) and any other missing ones."""
    tied = set(LinkBertForPreTraining._tied_weights_keys)
    missing = sorted(set(missing) - tied)
    head = [k for k in missing if k.startswith("cls.predictions.")]
    encoder = [k for k in missing if not k.startswith(("cls.predictions.", "relation_head."))]
    if head:
        logger.warning("%s has no MLM head: initialised fresh: %s", folder, ", ".join(head))
    if encoder:
        logger.warning("%s lacks encoder parameters: initialised fresh: %s", folder, ", ".join(encoder))
    if unexpected:
        logger.info("%s: not used (other heads): %s", folder, ", ".join(sorted(unexpected)))
    logger.info("%s: relation head initialised fresh", folder)


def load_checkpoint(folder: str | Path, dtype=torch.float32):
    """A pretraining checkpoint (heads included) of either backend, in eval mode: a
    ``LinkBertForPreTraining`` or an ``any_encoder.EncoderForLinkPretraining``, as its
    ``config.json`` says. Weights that do not fit are a ConfigError (``checkpoint.apply_weights``)."""
    from linkbert.model import any_encoder

    folder = Path(folder)
    if any_encoder.is_checkpoint(folder):
        return any_encoder.EncoderForLinkPretraining.from_pretrained(folder, dtype=dtype).eval()
    return LinkBertForPreTraining.from_pretrained(folder, dtype=dtype, use_safetensors=True).eval()
