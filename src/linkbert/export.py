"""``linkbert export CHECKPOINT OUT``: a pretraining checkpoint as the transformers model it
trained, which every ``AutoModel*`` class loads by name.

    linkbert export runs/tiny exported/linkbert-tiny                  # the run's latest checkpoint
    linkbert export runs/tiny/checkpoints/step-00010000 exported/linkbert-tiny
    linkbert export runs/tiny/checkpoints/step-00010000 exported/linkbert-tiny --tokenizer prepared/wiki/tokenizer

CHECKPOINT is a checkpoint folder of ``linkbert pretrain`` (``checkpoints/step-N``), or its run
folder, which stands for its newest checkpoint that verifies. Whichever backend trained it, a
checkpoint holds the masked-LM model under its own names (``model/pretraining.py``), so the
export is the same for every architecture: OUT gets

* ``config.json``: the masked-LM model's config (``BertForMaskedLM``, ``RobertaForMaskedLM``,
  ``ModernBertForMaskedLM``, ...), without the pretraining model's keys;
* ``model.safetensors``: the encoder and its MLM head (a vocabulary padded for training from
  scratch cut back to the tokenizer's: ``cut_padded_vocabulary``), and, for architectures whose base model
  has a pooler (BERT, RoBERTa), the pretraining model's pooler as that pooler: a BERT export
  holds ``bert.*`` (embeddings, encoder, pooler) and ``cls.predictions.*``, what the released
  LinkBERT checkpoints hold plus the MLM head (so fill-mask works). The relation head is
  dropped: it is not part of the architecture, and fine-tuning starts a fresh task head;
* the tokenizer (``tokenizer.json``, ``tokenizer_config.json``, ``vocab.txt`` where it has a
  WordPiece vocabulary), and ``README.md``: a model card with the Hub's metadata (base model,
  datasets, pipeline tag, library) and the run's settings and held-out figures, read from the
  checkpoint's ``trainer_state.json`` and its run folder's ``summary.json``.

``AutoModel`` loads it (reporting the unused MLM head), ``AutoModelForMaskedLM`` too (reporting
the unused pooler), and ``AutoModelFor{SequenceClassification, TokenClassification,
QuestionAnswering, MultipleChoice}`` with a freshly initialised task head: exactly what loading
``bert-base-uncased`` reports.

OUT is built beside its final place and renamed in when complete (``files.building``): a failed
export leaves what was there, and ``--overwrite`` replaces the whole folder (no file of an
earlier export stays beside the new one). OUT may not be the checkpoint, its run folder, or
inside or around either. The tokenizer is taken from ``--tokenizer``, else from the first of
CHECKPOINT, CHECKPOINT/tokenizer and CHECKPOINT/../tokenizer that holds tokenizer files.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from linkbert import settings
from linkbert.errors import BadInput, ConfigError
from linkbert.files import building, check_output_folder, naming, naming_output, write_text
from linkbert.prepared import tokenizer_dir
from linkbert.settings import setting

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


@dataclass
class ExportSettings:
    """Every setting of ``linkbert export``."""

    checkpoint: str = setting(None, "a checkpoint folder (checkpoints/step-N), or a pretraining run folder: its "
                                    "newest checkpoint that verifies", required=True)
    out: str = setting(None, "the model folder to write", required=True)
    tokenizer: str = setting("", "tokenizer folder (default: the checkpoint's own files, its tokenizer/, or "
                                 "../tokenizer)")
    overwrite: bool = setting(False, "replace a non-empty OUT (the whole folder, once the export is complete)")


def export(checkpoint: str | Path, out: str | Path, tokenizer: str | Path | None = None,
           overwrite: bool = False) -> dict:
    """Write the model folder ``out`` from the pretraining checkpoint ``checkpoint``.

    Returns a summary: ``{"out", "tokenizer", "architecture", "kept": n_tensors, "dropped": [keys]}``.
    Raises ``BadInput`` for a folder that is not a checkpoint, a missing tokenizer or one whose
    vocabulary does not match the model; ``ConfigError`` for an ``out`` that is not empty
    (unless ``overwrite``) or overlaps the checkpoint.

    Example::

        >>> export("runs/tiny", "exported/linkbert-tiny")["dropped"]
        ['relation_head.bias', 'relation_head.weight']
    """
    run = Path(checkpoint)
    checkpoint, out = _latest_if_run_folder(run), Path(out)
    check_output_folder(out, overwrite=overwrite, inputs=[checkpoint, run, *_run_folder_of(checkpoint)])
    config, weights, dropped = exported_weights(checkpoint)
    tokenizer_folder = Path(tokenizer) if tokenizer else find_tokenizer(checkpoint)
    tokenizer_obj = _load_tokenizer(tokenizer_folder, config.vocab_size)
    cut_padded_vocabulary(config, weights, len(tokenizer_obj))
    architecture = config.architectures[0]
    with naming_output(out), building(out) as tmp:  # a full disk: one line naming OUT (and the file)
        with naming(tmp / "config.json"):
            config.save_pretrained(tmp)
        _save_weights(weights, tmp / "model.safetensors")
        with naming(tmp):
            _save_tokenizer(tokenizer_obj, tmp)
        write_text(tmp / "README.md", model_card(checkpoint, architecture))
    return {"out": str(out), "tokenizer": str(tokenizer_folder), "architecture": architecture, "kept": len(weights),
            "dropped": dropped}


def exported_weights(checkpoint: Path):
    """``(the masked-LM config, the weights to export, the names dropped)`` of a verified
    pretraining checkpoint: its weights minus the relation head, and minus the pooler where the
    architecture has none."""
    from safetensors.torch import load_file

    from linkbert import model_files
    from linkbert.checkpoint import verify
    from linkbert.model.heads import has_pooler, masked_lm_class
    from linkbert.model.pretraining import (
        PRETRAINING_CONFIG_KEYS,
        WEIGHTS,
        read_checkpoint_config,
        read_config_dict,
        upgrade_weights,
    )

    _check_checkpoint(checkpoint)
    verify(checkpoint)
    raw = read_config_dict(checkpoint)
    if not any(key in raw for key in PRETRAINING_CONFIG_KEYS):
        raise BadInput(checkpoint / "config.json", "", "not_a_checkpoint",
                       "not a pretraining checkpoint's config (no num_relations); a plain transformers model folder "
                       "needs no export")
    config = read_checkpoint_config(checkpoint)
    mlm_class = masked_lm_class(config)
    config.architectures = [mlm_class.__name__]
    # a checkpoint without a manifest (an older run's, a copy) is checked only here: its weights must
    # be readable, of the shapes its config makes (else the export would be a model that does not load)
    model_files.check_weights(checkpoint, mlm_class, config,
                              rename=lambda shapes, prefix: upgrade_weights(raw, shapes, prefix))
    try:
        weights = load_file(str(checkpoint / WEIGHTS))
    except Exception as e:  # safetensors reports a bad header or a short file as its own error
        raise BadInput(checkpoint / WEIGHTS, "", "damaged_checkpoint", f"cannot be read: {_first_line(e)}") from None
    weights = upgrade_weights(raw, weights, mlm_class.base_model_prefix)
    pooler = f"{mlm_class.base_model_prefix}.pooler."
    drop = [name for name in weights if name.startswith("relation_head.")
            or (name.startswith(pooler) and not has_pooler(config))]
    for name in drop:
        del weights[name]
    return config, {name: tensor.contiguous() for name, tensor in weights.items()}, sorted(drop)


def cut_padded_vocabulary(config, weights: dict, tokens: int) -> None:
    """A model trained from scratch has its vocabulary padded to a multiple of 64 rows
    (``model.presets.padded_vocabulary``); its export has the tokenizer's ``tokens``: the rows of
    every vocabulary-sized weight (word embeddings, decoder, its bias) past them are dropped, in
    place, and ``config.vocab_size`` set. Those rows were never an input nor a label."""
    import torch

    from linkbert.model.heads import masked_lm_class

    padded = config.vocab_size
    if padded == tokens:
        return
    with torch.device("meta"):  # the architecture's names, without memory
        model = masked_lm_class(config)(config)
    # the input and output embeddings, and what transformers ties to them (BERT's head bias)
    vocabulary = {id(p) for p in (model.get_input_embeddings().weight, *model.get_output_embeddings().parameters())}
    tied = model._tied_weights_keys or {}
    sized = {name for name, p in model.named_parameters(remove_duplicate=False)
             if id(p) in vocabulary or name in tied or name in tied.values()}
    for name in sized & set(weights):
        weights[name] = weights[name][:tokens].contiguous()
    config.vocab_size = tokens


def model_card(checkpoint: Path, architecture: str) -> str:
    """``README.md`` of an exported model: the Hub's YAML metadata, then what the run was."""
    from linkbert.checkpoint import STATE, read_state

    state = read_state(checkpoint) if (checkpoint / STATE).is_file() else {}
    config = state.get("config") or {}
    corpus = (state.get("corpus") or {}).get("folder", "")
    summary_file = checkpoint.parent.parent / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    held_out = summary.get("eval") or {}
    init = config.get("init", "scratch")
    base = None if init == "scratch" else _hub_name(Path(init))
    meta = ["---", "library_name: transformers", "pipeline_tag: fill-mask", "tags:", "- linkbert", "- fill-mask"]
    if base:
        meta += [f"base_model: {base}"]
    if corpus:
        meta += ["datasets:", f"- {Path(corpus).name}"]
    meta += ["---", ""]
    objective = {"linkbert": "masked LM + 3-way document relation prediction (contiguous, random, linked)",
                 "bert": "masked LM + next-sentence prediction", "mlm-only": "masked LM"}.get(
                     config.get("objective"), str(config.get("objective")))
    lines = [f"# {Path(checkpoint).parent.parent.name or 'linkbert'}: LinkBERT pretraining", "",
             f"A `{architecture}` pretrained with LinkBERT's objective (Yasunaga et al., ACL 2022: "
             f"{objective}) with linkbert, "
             + (f"continued from `{base}`." if base else "from scratch."), "",
             f"Pretraining corpus: `{corpus or 'unknown'}`; step {state.get('step')}, "
             f"{(state.get('history') or {}).get('tokens', 0):,} tokens.", "", "## Training settings", "",
             "| setting | value |", "|---|---|"]
    for key in ("objective", "preset", "init", "backend", "max_length", "batch_size", "max_steps", "lr", "warmup_steps",
                "weight_decay", "mlm_probability", "p_contiguous", "p_random", "p_linked", "precision", "seed"):
        if key in config:
            lines.append(f"| {key} | {config[key]} |")
    lines += ["", "## Held-out figures", ""]
    if held_out:
        lines += ["| figure | value |", "|---|---|"]
        lines += [f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |"
                  for key, value in held_out.items() if not isinstance(value, (dict, list))]
        for key, value in held_out.items():
            if isinstance(value, dict):
                lines.append(f"| {key} | " + ", ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}"
                                                       for k, v in value.items()) + " |")
    else:
        lines.append("None recorded (the run folder's summary.json was not found beside the checkpoint).")
    lines += ["", "## Use", "", "```python", "from transformers import AutoModelForMaskedLM, AutoTokenizer",
              "model = AutoModelForMaskedLM.from_pretrained(PATH)  # or AutoModel: the encoder",
              "tokenizer = AutoTokenizer.from_pretrained(PATH)", "```", ""]
    return "\n".join(meta + lines)


def _hub_name(folder: Path) -> str:
    """A base model's Hub name where its config recorded one (``_name_or_path``), else its folder's name."""
    try:
        recorded = json.loads((folder / "config.json").read_text()).get("_name_or_path", "")
    except (OSError, ValueError):
        recorded = ""
    return recorded if recorded and "/" in recorded and not Path(recorded).is_absolute() else folder.name


def find_tokenizer(checkpoint: Path) -> Path:
    """The first of ``checkpoint``, ``checkpoint/tokenizer``, ``checkpoint/../tokenizer`` with tokenizer files
    (the last two: a checkpoint folder inside a prepared corpus folder's layout)."""
    candidates = [checkpoint, tokenizer_dir(checkpoint), tokenizer_dir(checkpoint.parent)]
    for folder in candidates:
        if any((folder / name).is_file() for name in TOKENIZER_FILES):
            return folder
    raise BadInput(checkpoint, "", "missing_tokenizer",
                   "no tokenizer files (tokenizer.json or vocab.txt) in "
                   + ", ".join(str(c) for c in candidates) + "; give the prepared corpus's one with --tokenizer")


def _latest_if_run_folder(path: Path) -> Path:
    """A run folder of ``linkbert pretrain`` stands for its newest checkpoint that verifies (a
    damaged one is skipped, and logged); any other path is itself (and ``_check_checkpoint``
    says what it lacks)."""
    from linkbert import checkpoint

    if (path / "config.json").is_file():
        return path
    latest = checkpoint.newest_good(path)
    if latest is not None:
        logger.info("%s is a run folder: exporting its latest checkpoint %s", path, latest)
    return latest or path


def _run_folder_of(checkpoint: Path) -> list[Path]:
    """The run folder a ``checkpoints/step-N`` folder belongs to (OUT must not be inside it)."""
    from linkbert.checkpoint import CHECKPOINTS

    parent = checkpoint.resolve().parent
    return [parent.parent] if parent.name == CHECKPOINTS else []


def _check_checkpoint(checkpoint: Path) -> None:
    if not (checkpoint / "config.json").is_file():
        raise BadInput(checkpoint, "", "not_a_checkpoint", "no config.json: not a saved pretraining checkpoint")
    if not any(checkpoint.glob("*.safetensors")):
        raise BadInput(checkpoint, "", "not_a_checkpoint", "no .safetensors weights")


def _save_weights(tensors: dict, path: Path) -> None:
    from safetensors.torch import save_file

    with naming(path):
        save_file(tensors, str(path), metadata={"format": "pt"})


def _load_tokenizer(folder: Path, vocab_size: int):
    """The tokenizer, whose vocabulary must be the model's (or the model's must be it padded)."""
    from linkbert.model.presets import padded_vocabulary
    from linkbert.tokenization import load_tokenizer

    try:
        tokenizer = load_tokenizer(str(folder))
    except (FileNotFoundError, ValueError, ConfigError) as e:
        raise BadInput(folder, "", "bad_tokenizer", str(e)) from e
    if vocab_size not in (len(tokenizer), padded_vocabulary(len(tokenizer))):
        raise BadInput(folder, "", "vocab_mismatch",
                       f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary is {vocab_size}: "
                       "give the tokenizer of the corpus the model was pretrained on")
    return tokenizer


def _save_tokenizer(tokenizer, out: Path) -> None:
    """``save_pretrained``, plus a ``vocab.txt`` (transformers 5 writes only tokenizer.json),
    which older transformers versions and other BERT tools read."""
    tokenizer.save_pretrained(out)
    vocab_file = out / "vocab.txt"
    if not vocab_file.exists():
        by_id = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        if [index for _, index in by_id] != list(range(len(by_id))):
            raise BadInput(out, "", "bad_tokenizer", "token ids are not 0..n-1, so no vocab.txt can list them")
        vocab_file.write_text("".join(token + "\n" for token, _ in by_id), encoding="utf-8")


def configure(parser: argparse.ArgumentParser) -> None:
    settings.add_arguments(parser, ExportSettings, positional=("checkpoint", "out"))


def main(args: argparse.Namespace) -> int:
    chosen = settings.from_arguments(ExportSettings, args)
    summary = export(chosen.checkpoint, chosen.out, tokenizer=chosen.tokenizer or None, overwrite=chosen.overwrite)
    print(f"wrote {summary['out']}: a {summary['architecture']} ({summary['kept']} tensors), "
          f"tokenizer from {summary['tokenizer']}")
    if summary["dropped"]:
        print(f"dropped (pretraining only): {', '.join(summary['dropped'])}")
    return 0


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
