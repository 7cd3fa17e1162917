"""``linkbert export CHECKPOINT OUT``: a pretraining checkpoint as a plain BERT folder.

    linkbert export runs/tiny exported/linkbert-tiny                  # the run's latest checkpoint
    linkbert export runs/tiny/checkpoints/step-00010000 exported/linkbert-tiny
    linkbert export runs/tiny/checkpoints/step-00010000 exported/linkbert-tiny --tokenizer prepared/wiki/tokenizer

CHECKPOINT is a folder written by ``LinkBertForPreTraining.save_pretrained``, or a run folder of
``linkbert pretrain --out``, which stands for its latest checkpoint. OUT gets what the
released LinkBERT checkpoints hold, so every ``transformers`` class loads it by name:

* ``config.json``: a plain ``BertConfig`` (``model_type: bert``, no ``num_relations``).
  ``architectures`` is ``["BertForMaskedLM"]``: the released ``michiyasunaga/LinkBERT-*``
  say ``BertModel``, but they ship the encoder only (their 433 MB base file is BERT-base
  with pooler and no MLM head); this export also carries the MLM head, so fill-mask works.
* ``model.safetensors``: ``bert.*`` (embeddings, encoder, pooler) and ``cls.predictions.*``
  (the MLM head; its decoder is tied to the word embeddings, as in BERT). The document
  relation head (``relation_head.*``) is dropped: it is not part of BERT, and fine-tuning
  starts a fresh task head anyway.
* the tokenizer (``tokenizer.json``, ``tokenizer_config.json``, ``vocab.txt``).

``AutoModel`` loads it (reporting the unused MLM head), ``AutoModelForMaskedLM`` too (reporting
the unused pooler), and ``AutoModelFor{SequenceClassification, TokenClassification,
QuestionAnswering, MultipleChoice}`` with a freshly initialised task head: exactly what
loading ``bert-base-uncased`` reports.

A checkpoint of the ``hf`` backend (``model/any_encoder.py``: RoBERTa, ModernBERT, ... or BERT
through its own forward) is written as the masked-LM architecture the run started from
(``RobertaForMaskedLM``, ``ModernBertForMaskedLM``, ...), its relation head dropped likewise.

Both get a model card, ``README.md`` with the Hub's metadata (base model, datasets, pipeline
tag, library) and the run's settings and held-out figures, read from the checkpoint's
``trainer_state.json`` and its run folder's ``summary.json``.

The tokenizer is taken from ``--tokenizer``, else from the first of CHECKPOINT,
CHECKPOINT/tokenizer and CHECKPOINT/../tokenizer that holds tokenizer files.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from linkbert.errors import BadInput, ConfigError
from linkbert.prepared import tokenizer_dir

logger = logging.getLogger(__name__)

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")
# in the checkpoint's config, meaningful only to LinkBertForPreTraining
PRETRAINING_ONLY_CONFIG = ("num_relations", "architectures", "auto_map")
TIED_KEYS = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def export(checkpoint: str | Path, out: str | Path, tokenizer: str | Path | None = None,
           overwrite: bool = False) -> dict:
    """Write the plain BERT folder ``out`` from the pretraining checkpoint ``checkpoint``.

    Returns a summary: ``{"out", "tokenizer", "kept": n_tensors, "dropped": [keys]}``.
    Raises ``BadInput`` for a folder that is not a checkpoint, a missing tokenizer, a
    tokenizer whose vocabulary does not match the model, or an ``out`` that is not empty
    (unless ``overwrite``).

    Example::

        >>> export("runs/tiny", "exported/linkbert-tiny")["dropped"]
        ['relation_head.bias', 'relation_head.weight']
    """
    from linkbert.model import any_encoder

    checkpoint, out = _latest_if_run_folder(Path(checkpoint)), Path(out)
    hf_backend = _check_checkpoint(checkpoint)
    _check_out(out, overwrite)
    tokenizer_dir = Path(tokenizer) if tokenizer else find_tokenizer(checkpoint)
    if hf_backend:
        model = any_encoder.EncoderForLinkPretraining.from_pretrained(checkpoint).eval()
        tokenizer_obj = _load_tokenizer(tokenizer_dir, model.config.vocab_size)
        dropped = sorted(key for key in model.state_dict() if not key.startswith("mlm."))
        out.mkdir(parents=True, exist_ok=True)
        for key in ("num_relations", "linkbert_backend"):  # meaningful to pretraining only
            if hasattr(model.mlm.config, key):
                delattr(model.mlm.config, key)
        model.mlm.save_pretrained(out)
        kept = len(model.mlm.state_dict())
    else:
        model = _load(checkpoint)
        tokenizer_obj = _load_tokenizer(tokenizer_dir, model.config.vocab_size)
        tensors, dropped = bert_state_dict(model)
        out.mkdir(parents=True, exist_ok=True)
        _save_weights(tensors, out / "model.safetensors")
        bert_config(model.config).save_pretrained(out)
        kept = len(tensors)
    _save_tokenizer(tokenizer_obj, out)
    architecture = json.loads((out / "config.json").read_text())["architectures"][0]
    (out / "README.md").write_text(model_card(checkpoint, architecture), encoding="utf-8")
    return {"out": str(out), "tokenizer": str(tokenizer_dir), "kept": kept, "dropped": dropped}


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


def bert_state_dict(model) -> tuple[dict, list[str]]:
    """The tensors a ``BertForPreTraining``-style file holds, and the keys left out.

    Keeps ``bert.*`` and ``cls.predictions.*`` except the decoder, which is tied to the word
    embeddings (and its bias to ``cls.predictions.bias``) and so is not stored, as
    ``save_pretrained`` does for BERT. Returns contiguous copies, safe to write.
    """
    kept, dropped = {}, []
    for key, tensor in model.state_dict().items():
        if key in TIED_KEYS:
            continue
        if key.startswith(("bert.", "cls.predictions.")):
            kept[key] = tensor.detach().clone().contiguous()
        else:
            dropped.append(key)
    return kept, sorted(dropped)


def bert_config(config):
    """A plain ``BertConfig`` with the checkpoint's geometry, for ``BertForMaskedLM``."""
    from transformers import BertConfig

    fields = {k: v for k, v in config.to_dict().items() if k not in PRETRAINING_ONLY_CONFIG}
    fields["model_type"] = "bert"
    plain = BertConfig.from_dict(fields)
    plain.architectures = ["BertForMaskedLM"]
    plain.tie_word_embeddings = True
    return plain


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


def _check_checkpoint(checkpoint: Path) -> bool:
    """A LinkBERT pretraining checkpoint, whose files match its manifest where it has one;
    True for one of the ``hf`` backend (``any_encoder``)."""
    from linkbert.checkpoint import verify

    config_file = checkpoint / "config.json"
    if not config_file.is_file():
        raise BadInput(checkpoint, "", "not_a_checkpoint", "no config.json: not a saved pretraining checkpoint")
    verify(checkpoint)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadInput(config_file, "", "malformed_json", f"not a JSON config: {e}") from None
    hf_backend = isinstance(config, dict) and config.get("linkbert_backend") == "hf"
    if not hf_backend and (not isinstance(config, dict) or config.get("model_type") != "bert"
                           or "num_relations" not in config):
        raise BadInput(config_file, "", "not_a_checkpoint",
                       "not a LinkBertForPreTraining config (model_type bert with num_relations); "
                       "a plain BERT folder needs no export")
    if not any(checkpoint.glob("*.safetensors")):
        raise BadInput(checkpoint, "", "not_a_checkpoint", "no .safetensors weights")
    return hf_backend


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise BadInput(out, "", "out_exists", "exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise BadInput(out, "", "out_exists", "folder is not empty; pass --overwrite to replace its files")


def _load(checkpoint: Path):
    from linkbert.model import LinkBertForPreTraining

    return LinkBertForPreTraining.from_pretrained(checkpoint, use_safetensors=True).eval()


def _load_tokenizer(folder: Path, vocab_size: int):
    from linkbert.tokenization import load_tokenizer

    try:
        tokenizer = load_tokenizer(str(folder))
    except (FileNotFoundError, ValueError, ConfigError) as e:
        raise BadInput(folder, "", "bad_tokenizer", str(e)) from e
    if len(tokenizer) != vocab_size:
        raise BadInput(folder, "", "vocab_mismatch",
                       f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary is {vocab_size}: "
                       "give the tokenizer of the corpus the model was pretrained on")
    return tokenizer


def _save_weights(tensors: dict, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={"format": "pt"})


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
    parser.add_argument("checkpoint", help="a checkpoint folder (CHECKPOINT/config.json, model.safetensors), "
                                           "or a pretraining run folder: its latest checkpoint")
    parser.add_argument("out", help="the plain BERT folder to write")
    parser.add_argument("--tokenizer",
                        help="tokenizer folder (default: the checkpoint's own files, its tokenizer/, or ../tokenizer)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty OUT")


def main(args: argparse.Namespace) -> int:
    summary = export(args.checkpoint, args.out, tokenizer=args.tokenizer, overwrite=args.overwrite)
    print(f"wrote {summary['out']}: {summary['kept']} tensors (bert.*, cls.predictions.*), "
          f"tokenizer from {summary['tokenizer']}")
    if summary["dropped"]:
        print(f"dropped (not part of BERT): {', '.join(summary['dropped'])}")
    return 0
