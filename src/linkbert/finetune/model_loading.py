"""The model, config and tokenizer of a fine-tuning run, read from a local folder (safetensors
weights only) or the Hugging Face hub, and the checks of ``max_length`` against them. A folder
or name that cannot be loaded is a ``BadInput`` of one line naming it, never the library's
traceback: a local folder's config, weights and tokenizer files are checked before transformers
reads them (``model_files``: a damaged or foreign file, shapes the config does not make, names
that match nothing, NaN weights), and a tokenizer that reads the training text as ``[UNK]`` (a
folder without the model's own) is refused before training."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from linkbert.errors import BadInput, ConfigError
from linkbert.finetune.task_base import Task
from linkbert.finetune.tasks import default_max_length

log = logging.getLogger("linkbert.finetune")

# a Hugging Face hub name: "name" or "owner/name"; anything else (runs/x/model, /abs, ./m) is a path
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def check_model_source(model: str) -> None:
    """A local path must be a model folder with safetensors weights (pickled weights are never
    read); a name that cannot be a hub name and is no folder here is a missing folder, said so
    (not the hub client's "Repo id must be in the form ...")."""
    path = Path(model)
    if not path.exists():
        if not HUB_NAME.fullmatch(model) or model.count("/") > 1:
            raise BadInput(path, "", "missing_path", "no such model folder: give a folder with config.json "
                                                     "and *.safetensors weights (linkbert export writes one), "
                                                     "or a hub name")
        return
    if not path.is_dir():
        raise BadInput(path, "", "not_a_folder", "is a file: --model takes a model folder or a hub name")
    if not any(path.glob("*.safetensors")):
        found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        raise BadInput(path, "", "no_safetensors",
                       f"no *.safetensors weights in the model folder (found: {found}); "
                       "pickled weights (pytorch_model.bin) are not loaded: convert them to safetensors first")
    if not any((path / name).is_file() for name in VOCABULARY_FILES):
        raise BadInput(path, "", "missing_tokenizer",
                       f"no tokenizer in the model folder (none of {', '.join(VOCABULARY_FILES)}): the text would be "
                       "read as unknown tokens; copy the model's tokenizer files into it (linkbert export writes them)")
    from linkbert import model_files

    model_files.read_config(path)
    model_files.tensor_shapes(path)


# the files of which a tokenizer reads its vocabulary: WordPiece, BPE, SentencePiece, or any of them
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                    "tokenizer.model")
UNKNOWN_SHARE = 0.5  # more of the training text's tokens unknown than this: not the model's tokenizer


def load_model_config(model: str):
    from transformers import AutoConfig

    check_model_source(model)
    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=False)
    except (OSError, ValueError) as e:
        where = "" if Path(model).exists() else "no such folder here, and from the Hugging Face hub: "
        raise BadInput(model, "", "model_not_loadable",
                       f"cannot read the model config: {where}{_first_line(e)}") from None


def _first_line(error: Exception) -> str:
    """The first line of a library's error: the CLI prints one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise BadInput(model, "", "model_not_loadable", f"cannot load the tokenizer: {_first_line(e)}") from None
    if not tokenizer.is_fast:  # offsets (qa) and word_ids (tokcls) need a fast tokenizer
        raise BadInput(model, "", "model_not_loadable", "the tokenizer is not a fast (Rust) tokenizer")
    return tokenizer


def load_model(task: Task, model: str, *, eval_only: bool, model_config=None):
    """The task's ``AutoModelFor*``; when only evaluating, its head must come from the checkpoint.
    A local folder's weights are checked first against ``model_config`` (``model_files``)."""
    if model_config is not None and Path(model).is_dir():
        import copy

        from linkbert import model_files

        config = copy.deepcopy(model_config)
        for key, value in task.model_kwargs().items():
            setattr(config, key, value)
        model_files.check_weights(model, task.model_class, config)
        model_files.check_finite(model)
    try:
        loaded, info = task.model_class.from_pretrained(
            model, use_safetensors=True, trust_remote_code=False, output_loading_info=True, **task.model_kwargs())
    except OSError as e:
        raise BadInput(model, "", "model_not_loadable", f"cannot load the model: {_first_line(e)}") from None
    missing = sorted(info.get("missing_keys") or [])
    if eval_only and missing:
        # a freshly initialised head would score at chance level without any warning
        raise ConfigError(f"--eval-only needs a model fine-tuned for {task.name}, but {model} "
                          f"lacks {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    return loaded


def check_tokenizer_reads(features: list[dict], tokenizer, model: str) -> None:
    """Refuse a tokenizer that reads more than :data:`UNKNOWN_SHARE` of the text as its unknown
    token: a folder without the model's tokenizer (transformers then builds one with an empty
    vocabulary), which would train on ``[UNK]`` and score chance without a word."""
    unknown, special = tokenizer.unk_token_id, set(tokenizer.all_special_ids)
    if unknown is None:
        return
    counts = [0, 0]
    for feature in features[:1000]:
        ids = feature["input_ids"]
        for token in (token for row in (ids if ids and isinstance(ids[0], list) else [ids]) for token in row):
            if token not in special or token == unknown:
                counts[0] += token == unknown
                counts[1] += 1
    if counts[1] and counts[0] / counts[1] > UNKNOWN_SHARE:
        raise BadInput(model, "", "wrong_tokenizer",
                       f"its tokenizer reads {counts[0] / counts[1]:.0%} of the training text as "
                       f"{tokenizer.unk_token} ({len(tokenizer)} tokens in its vocabulary): not the model's tokenizer")


def check_max_length(max_length: int, task: str, tokenizer) -> None:
    """An input must hold its special tokens and a token of each text (``[CLS] A [SEP] B [SEP]``
    for the pair-capable seqcls, qa and mc; ``[CLS] A [SEP]`` for tokcls): shorter, every
    example would be cut to nothing and the run would score chance without a word."""
    pair = task != "tokcls"
    needed = tokenizer.num_special_tokens_to_add(pair=pair) + (2 if pair else 1)
    if max_length < needed:
        what = "[CLS] A [SEP] B [SEP] with a token of each text" if pair else "[CLS] A [SEP] with a token of text"
        raise ConfigError(f"max_length {max_length} is too short for {task}: {what} needs {needed}; use "
                          f"max_length >= {needed}, or 0 for the task's default ({default_max_length(task)})")


def fit_max_length(max_length: int, model_config) -> int:
    """``max_length`` no longer than the model's position embeddings."""
    limit = getattr(model_config, "max_position_embeddings", None)
    if limit and max_length > limit:
        log.warning("max_length %d > the model's %d positions: using %d", max_length, limit, limit)
        return limit
    return max_length
