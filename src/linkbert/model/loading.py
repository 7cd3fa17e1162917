"""The one place that decides which backend computes the model, and builds the model a run
starts from or an evaluation reads.

* :func:`resolve_backend`: ``auto`` decided for the architecture and the device;
* :func:`attention_implementation`: ``auto`` decided for the device and the attention dropout,
  an explicit choice checked (its kernel imports, it takes the dropout);
* :func:`init_model`: a :class:`~linkbert.model.pretraining.LinkPretrainingModel` from a preset
  (scratch), a transformers masked-LM or encoder checkpoint folder, or a pretraining checkpoint
  (continued whole);
* :func:`load_checkpoint`: a pretraining checkpoint, heads included, in eval mode.

Every model comes back with the same interface, whichever backend computes it: the trainer,
export and the evaluations never ask which.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from linkbert.errors import ConfigError
from linkbert.model.attention import VARLEN, has_varlen_kernel
from linkbert.model.presets import PRESETS, padded_vocabulary, preset_config
from linkbert.model.pretraining import (
    BACKENDS,
    LinkPretrainingModel,
    is_checkpoint,
    read_checkpoint_config,
    read_config_dict,
    upgrade_weights,
)

logger = logging.getLogger(__name__)

ATTENTION = ("auto", VARLEN, "sdpa", "flash_attention_2", "flash_attention_4", "eager")
# the attention implementations without dropout on the attention probabilities
NO_DROPOUT = (VARLEN, "flash_attention_4")
# what transformers imports for each flash-attn package's implementation: a flash-attn-4 install
# makes flash_attn a namespace package that importlib.util.find_spec finds without flash-attn 2
FLASH_ATTN_FUNCTIONS = {"flash_attention_2": ("flash_attn", "flash_attn_varlen_func"),
                        "flash_attention_4": ("flash_attn.cute", "flash_attn_varlen_func")}
# the dropout settings of a run, and what each architecture calls them
DROPOUT_NAMES = {"hidden_dropout_prob": ("hidden_dropout_prob", "mlp_dropout", "embedding_dropout", "dropout"),
                 "attention_probs_dropout_prob": ("attention_probs_dropout_prob", "attention_dropout")}


def model_type_of(init: str) -> str:
    """The architecture ``init`` names: ``bert`` for a preset, else its ``config.json``'s
    ``model_type``."""
    if init == "scratch" or init in PRESETS:
        return "bert"
    config_file = Path(init) / "config.json"
    if not config_file.is_file():
        return "bert"  # init_model says what is wrong with it
    return str(read_config_dict(init).get("model_type"))


def resolve_backend(backend: str, init: str, device) -> str:
    """``auto`` decided: ``bert-cpu`` (BERT's forward written out for CPU speed) for a BERT preset
    or checkpoint on a CPU, ``transformers`` (the checkpoint's own forward) on a GPU or for any
    other architecture. An explicit ``bert-cpu`` for another architecture is a ConfigError."""
    if backend not in ("auto", *BACKENDS):
        raise ConfigError(f"backend must be auto, {', '.join(BACKENDS)} (got {backend!r})")
    model_type = model_type_of(init)
    if backend == "auto":
        return "bert-cpu" if model_type == "bert" and getattr(device, "type", device) == "cpu" else "transformers"
    if backend == "bert-cpu" and model_type != "bert":
        raise ConfigError(f"{init}: model_type {model_type!r}: the bert-cpu backend is BERT's forward written out; "
                          "use backend=transformers (or auto)")
    return backend


def attention_implementation(choice: str, device, dropout: float = 0.0) -> str:
    """The transformers backend's attention implementation (``ATTENTION``; ``model/attention.py``).

    ``auto``: ``varlen`` (torch's variable-length flash kernel on the flattened pairs: no padding)
    on a CUDA device of compute capability 8.0 or more whose torch has it, when the attention
    ``dropout`` is 0 (the kernel has none); SDPA otherwise. An explicit choice is kept, or
    refused with a ConfigError: ``varlen`` and ``flash_attention_4`` with a ``dropout`` above 0,
    ``flash_attention_2``/``_4`` when the function transformers calls does not import."""
    if choice not in ATTENTION:
        raise ConfigError(f"attention must be one of {', '.join(ATTENTION)} (got {choice!r})")
    device = torch.device(device)
    if choice == "auto":
        on_ampere = device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)
        return VARLEN if dropout == 0 and on_ampere and has_varlen_kernel() else "sdpa"
    if choice in NO_DROPOUT and dropout > 0:
        raise ConfigError(f"attention={choice} has no dropout on the attention probabilities: set "
                          f"attention_dropout=0 (or attention=sdpa; got attention_dropout={dropout:g})")
    if choice in FLASH_ATTN_FUNCTIONS:
        module, function = FLASH_ATTN_FUNCTIONS[choice]
        if not _imports(module, function):
            raise ConfigError(f"attention={choice} needs {module}.{function}, which does not import here (install "
                              f"flash-attn{'-4' if choice.endswith('4') else ''}, or use attention=varlen)")
    return choice


def _imports(module: str, name: str) -> bool:
    """Whether ``from module import name`` works (not merely that ``module`` can be found)."""
    import importlib

    try:
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False


def init_model(preset_or_checkpoint: str, vocab_size: int, num_relations: int = 3, backend: str = "transformers",
               attention: str = "sdpa", **overrides) -> LinkPretrainingModel:
    """A model to pretrain, in training mode, float32, computed by ``backend``:

    * a preset name (``tiny``, ``mini``, ``base``, ...): a fresh BERT of that geometry (draws
      from torch's global generator: seed it first);
    * a pretraining checkpoint folder (``save_pretrained``'s, any format): continued whole, its
      relation head too when it has ``num_relations`` classes (else that head starts fresh);
    * a transformers checkpoint folder (``config.json`` and safetensors weights; any
      architecture ``AutoModelForMaskedLM`` knows): its encoder and MLM head (an encoder-only
      checkpoint gets a fresh head), its pooler where it has one (BERT's), a fresh relation head;
      what starts fresh is logged. ``pytorch_model.bin`` is refused (unpickling can run code).

    ``overrides`` set config fields (``hidden_dropout_prob``, ``attention_probs_dropout_prob``:
    mapped to each architecture's own names). A preset's vocabulary is ``vocab_size`` padded to a
    multiple of 64 (``presets.padded_vocabulary``); a checkpoint whose vocabulary is neither
    ``vocab_size`` nor that is a ConfigError.

    Example::

        >>> model = init_model("tiny", vocab_size=len(tokenizer), num_relations=3, backend="bert-cpu")
    """
    if preset_or_checkpoint in PRESETS:
        config = preset_config(preset_or_checkpoint, vocab_size, **overrides)
        config._attn_implementation = attention
        from transformers import BertForMaskedLM

        return LinkPretrainingModel(BertForMaskedLM(config), num_relations, backend).train()
    folder = Path(preset_or_checkpoint)
    if not folder.is_dir():
        raise ConfigError(f"{preset_or_checkpoint!r} is neither a preset ({', '.join(PRESETS)}) nor a checkpoint "
                          "folder")
    _refuse_pickled_weights(folder)
    _check_folder(folder)
    if is_checkpoint(folder):
        model = _continued(folder, vocab_size, num_relations, backend, attention, overrides)
    else:
        model = _from_transformers_checkpoint(folder, vocab_size, num_relations, backend, attention, overrides)
    return model.train()


def load_checkpoint(folder: str | Path, dtype=torch.float32, device="cpu") -> LinkPretrainingModel:
    """A pretraining checkpoint (heads included) in eval mode, computed by the backend ``auto``
    picks for ``device``."""
    backend = resolve_backend("auto", str(folder), torch.device(device))
    return LinkPretrainingModel.from_pretrained(folder, backend=backend, dtype=dtype).eval()


def _continued(folder: Path, vocab_size: int, num_relations: int, backend: str, attention: str,
               overrides: dict) -> LinkPretrainingModel:
    config = read_checkpoint_config(folder)
    _check_vocabulary(folder, config.vocab_size, vocab_size)
    _set_dropout(config, overrides)
    model = LinkPretrainingModel.from_pretrained(folder, backend=backend, attention=attention, config=config)
    if model.num_relations != num_relations:
        logger.warning("%s has a %d-way relation head; this run's objective needs %d classes: that head starts "
                       "fresh", folder, model.num_relations, num_relations)
        fresh = LinkPretrainingModel(model.mlm, num_relations, backend)
        fresh.pooler.load_state_dict(model.pooler.state_dict())
        model = fresh
    logger.info("%s: a pretraining checkpoint, continued whole", folder)
    return model


def _from_transformers_checkpoint(folder: Path, vocab_size: int, num_relations: int, backend: str, attention: str,
                                  overrides: dict) -> LinkPretrainingModel:
    from transformers import AutoConfig, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"{folder / 'config.json'}: not a transformers config ({_first_line(e)})") from None
    _check_vocabulary(folder, config.vocab_size, vocab_size)
    _set_dropout(config, overrides)
    if backend == "bert-cpu" and config.model_type != "bert":
        raise ConfigError(f"{folder / 'config.json'}: model_type is {config.model_type!r}; the bert-cpu backend "
                          "is BERT's forward: use backend=transformers (or auto)")
    # transformers' own load report calls an encoder-only checkpoint (no MLM head) "corrupted";
    # the lines below say plainly what starts fresh
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:  # transformers adds or strips the base model's prefix and renames old gamma/beta keys
        mlm, info = AutoModelForMaskedLM.from_pretrained(folder, config=config, use_safetensors=True,
                                                         dtype=torch.float32, attn_implementation=attention,
                                                         output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    mlm.config.architectures = [type(mlm).__name__]
    model = LinkPretrainingModel(mlm, num_relations, backend)
    pooler = _stored_pooler(folder, mlm.base_model_prefix)
    if pooler:
        model.pooler.dense.load_state_dict(pooler)
    missing = sorted(set(info["missing_keys"]) - set(getattr(mlm, "_tied_weights_keys", None) or {}))
    if missing:
        logger.warning("%s: initialised fresh: %s", folder, ", ".join(missing))
    if info["unexpected_keys"]:
        logger.info("%s: not used (other heads): %s", folder, ", ".join(sorted(info["unexpected_keys"])))
    logger.info("%s: %srelation head initialised fresh", folder, "" if pooler else "pooler and ")
    return model


def _stored_pooler(folder: Path, prefix: str) -> dict | None:
    """The pooler's dense weights of a transformers checkpoint (``bert.pooler.dense.*``, or
    ``pooler.dense.*`` in a base model's file), where it has them."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = [p.name for p in folder.glob("*.safetensors")]
    for name in files:
        with safe_open(str(folder / name), framework="pt") as f:
            keys = set(f.keys())
            for head in (f"{prefix}.pooler.dense.", "pooler.dense."):
                if {head + "weight", head + "bias"} <= keys:
                    return {"weight": f.get_tensor(head + "weight").float(), "bias": f.get_tensor(head + "bias").float()}
    return None


def _check_vocabulary(folder: Path, checkpoint_vocab: int, vocab_size: int) -> None:
    """The checkpoint's vocabulary is the tokenizer's, or that padded (a run from scratch)."""
    if checkpoint_vocab not in (vocab_size, padded_vocabulary(vocab_size)):
        raise ConfigError(
            f"{folder} has a vocabulary of {checkpoint_vocab} tokens but the tokenizer has {vocab_size}: "
            "prepare the corpus with this checkpoint's tokenizer (prepare --tokenizer CHECKPOINT)")


def _set_dropout(config, overrides: dict) -> None:
    for key, value in overrides.items():
        names = [name for name in DROPOUT_NAMES.get(key, (key,)) if hasattr(config, name)]
        if key not in DROPOUT_NAMES and not names:
            raise ConfigError(f"{key} is not a setting of a {config.model_type} model")
        for name in names:
            setattr(config, name, value)


def _check_folder(folder: Path) -> None:
    """A damaged or foreign folder refused before any weight is read (``model_files``: its
    config, the weights' headers and shapes, names that match nothing, NaN or infinite values)."""
    from transformers import AutoModelForMaskedLM

    from linkbert import model_files

    raw = model_files.read_config(folder)
    model_files.check_weights(folder, AutoModelForMaskedLM, read_checkpoint_config(folder),
                              rename=lambda shapes, prefix: upgrade_weights(raw, shapes, prefix))
    model_files.check_finite(folder)


def _refuse_pickled_weights(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{folder}: no config.json, so not a transformers checkpoint folder")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.safetensors.index.json")):
        pickled = {".bin", ".pt", ".pth", ".h5", ".msgpack"}
        found = ", ".join(sorted(p.name for p in folder.iterdir() if p.suffix in pickled))
        raise ConfigError(f"{folder}: no safetensors weights (found: {found or 'none'}); convert the checkpoint to "
                          "safetensors first (loading pickled weights could run code)")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
