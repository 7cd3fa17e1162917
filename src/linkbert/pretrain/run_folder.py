"""A pretraining run folder: what it may hold, and which run its checkpoints belong to.

A run is its settings of ``RUN_IDENTITY`` and its corpus (the fingerprint ``prepare`` wrote, and
the tokenizer): a resume with another one would train another run on the first one's weights,
so it is refused, naming both values, before any tensor is read. The ranks of one run must agree
on all of it as they start (:func:`check_ranks_agree`): nodes handed other settings or another
copy of the corpus would train a mixture.

Every other setting may change on a resume; it changes how the same run is optimised or run, not
which, and ``run.py`` applies it from the resumed step on (the changes are logged, and
``config.yaml`` records the settings the run uses now):

* the schedule and the optimizer: ``lr``, ``warmup_steps``, ``max_steps`` (at least the
  checkpoint's step; a longer one extends the linear decay, so the learning rate jumps to the
  new schedule's value), ``weight_decay``, ``adam_*``, ``max_grad_norm`` (lowering ``lr`` is the
  way on after a non-finite loss);
* how the model is computed: ``dropout``, ``attention_dropout``, ``precision``, ``compile``,
  ``backend`` (a checkpoint is the same whichever backend wrote it: a run moves between a CPU and
  a GPU machine), ``attention``, ``mlm_loss``, ``norm_precision``, ``micro_batch_size`` (the loss
  is normalised over the global batch whatever its split), ``eval_pairs``;
* run control: ``budget_minutes`` (the whole run's training time, across resumes), ``log_every``,
  ``eval_every``, ``save_every``, ``keep_checkpoints``, ``num_workers``, ``progress``,
  ``tracker``, ``overwrite``, ``distributed``, ``collective_timeout_minutes``, ``compile_cache``.
"""

from __future__ import annotations

from pathlib import Path

from linkbert import checkpoint
from linkbert.errors import ConfigError
from linkbert.files import check_output_folder

# settings that decide which batches a run sees and what it trains; a resume must keep them
# (with the corpus: its fingerprint and tokenizer). Every other setting may change on a resume.
RUN_IDENTITY = ("preset", "init", "graph", "objective", "p_contiguous", "p_random", "p_linked", "linked_sampling",
                "linked_segment", "max_length", "mlm_probability", "whole_word_mask", "heldout_fraction",
                "batch_size", "seed")
# what a pretraining run writes into --out; a folder holding only these is a run folder
RUN_FILES = {"config.yaml", "metrics.jsonl", "summary.json", checkpoint.CHECKPOINTS, "tensorboard", "wandb",
             "compile-cache"}


def check_run_folder(out: Path, data_dir: str, *, overwrite: bool) -> None:
    """``--out`` may be new, empty, a pretraining run folder (resumed, or started afresh if it
    has no checkpoint yet), or, with ``overwrite``, any folder: the run's files then go beside
    the others. Never a file, and never inside the corpus or around it."""
    out = Path(out)
    check_output_folder(out, overwrite=True, inputs=[Path(data_dir)])
    if overwrite or not out.is_dir():
        return
    others = sorted(p.name for p in out.iterdir() if p.name not in RUN_FILES)
    has_checkpoints = checkpoint.latest(out) is not None
    if others and not has_checkpoints:
        listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise ConfigError(f"{out} is not empty and not a pretraining run folder (it holds {listed}): choose a new "
                          "--out, or give overwrite=true to write the run beside these files")


def corpus_record(corpus) -> dict:
    """What a checkpoint records of its ``PreparedCorpus``, to refuse resuming on another one:
    the fingerprint (data and tokenizer), and counts for a corpus prepared before it existed."""
    return {"folder": str(corpus.folder), "fingerprint": corpus.fingerprint,
            "documents": corpus.store.num_documents, "segments": corpus.store.num_segments}


def same_vocabulary(checkpoint_dir: Path, tokenizer) -> bool:
    """Whether the tokenizer saved in a checkpoint has ``tokenizer``'s vocabulary (a checkpoint
    without one is not judged)."""
    from linkbert.tokenization import load_tokenizer

    if not (Path(checkpoint_dir) / "tokenizer.json").is_file() and not (Path(checkpoint_dir) / "vocab.txt").is_file():
        return True
    try:
        saved = load_tokenizer(str(checkpoint_dir))
    except (OSError, ValueError, ConfigError) as e:
        raise checkpoint.Damaged(checkpoint_dir, f"its tokenizer cannot be read: {e}") from None
    return saved.get_vocab() == tokenizer.get_vocab()


def check_resume(path: Path, state: dict, *, settings: dict, defaults: dict, corpus, tokenizer) -> None:
    """Resuming continues *that* run (the checkpoint at ``path``, its trainer ``state``): refuse
    other ``RUN_IDENTITY`` ``settings`` (a setting newer than the checkpoint had its value in
    ``defaults`` then), a ``max_steps`` below the step reached, another corpus or tokenizer."""
    saved = state.get("config") or {}
    changed = [key for key in RUN_IDENTITY if saved.get(key, defaults[key]) != settings[key]]
    if changed:
        details = ", ".join(f"{key} {saved.get(key, defaults[key])!r} -> {settings[key]!r}" for key in changed)
        raise ConfigError(f"{path} belongs to a run with other settings ({details}); "
                          "use a new --out folder, or the run's own settings to resume it")
    if state["step"] > settings["max_steps"]:
        raise ConfigError(f"{path} is at step {state['step']}, past max_steps={settings['max_steps']}: "
                          f"give max_steps >= {state['step']} to resume it")
    _check_same_corpus(path, state, corpus, tokenizer)


def _check_same_corpus(path: Path, state: dict, corpus, tokenizer) -> None:
    """The corpus's fingerprint (or, for a checkpoint written before it, its counts) and the
    checkpoint's tokenizer must be the ones of ``--data``."""
    saved, now = state.get("corpus") or {}, corpus_record(corpus)
    keys = ["fingerprint"] if saved.get("fingerprint") else ["documents", "segments"]
    differs = [key for key in keys if key in saved and saved[key] != now[key]]
    if differs or not same_vocabulary(path, tokenizer):
        what = ", ".join(f"{key} {str(saved[key])[:12]} -> {str(now[key])[:12]}" for key in differs) or \
            "another tokenizer"
        raise ConfigError(f"{path} was trained on {saved.get('folder', 'another corpus')}, but --data "
                          f"{corpus.folder} holds other data ({what}); resume with its own --data, "
                          "or use a new --out folder")


def changed_settings(saved: dict, settings: dict, defaults: dict) -> list[str]:
    """``"key old -> new"`` for every setting that differs from the checkpoint's."""
    return [f"{key} {saved.get(key, defaults[key])!r} -> {value!r}"
            for key, value in settings.items() if saved.get(key, defaults[key]) != value]


def check_ranks_agree(settings: list[dict], corpora: list[dict] = ()) -> None:
    """Every rank's ``settings`` and corpus (``corpus_record``), in rank order, must be rank 0's;
    otherwise every rank stops with the same line (each computes it from the same gathered
    values) naming the first rank that differs and how."""
    for rank, mine in enumerate(settings):
        differs = [key for key in settings[0] if settings[0][key] != mine.get(key)]
        if differs:
            details = ", ".join(f"{key} {settings[0][key]!r} (rank 0), {mine.get(key)!r} (rank {rank})"
                                for key in differs[:3])
            raise ConfigError(f"the ranks were given different settings: {details}; every rank must run the same "
                              "command with the same --config file")
    for rank, mine in enumerate(corpora):
        first = corpora[0]
        key = "fingerprint" if first.get("fingerprint") else "segments"
        if mine.get(key) != first.get(key):
            raise ConfigError(f"the ranks read different corpora: {first['folder']} ({key} {str(first.get(key))[:12]}, "
                              f"rank 0), {mine['folder']} ({key} {str(mine.get(key))[:12]}, rank {rank}); every rank "
                              "must read the same prepared corpus (copy the whole folder to every node)")


def compile_cache(out: Path, setting: str, compiling: bool, user_cache: str | None) -> Path | None:
    """Where torch.compile keeps what it compiled for the run in ``out`` (the ``compile_cache``
    setting): ``auto``, ``out/compile-cache`` unless the user set ``TORCHINDUCTOR_CACHE_DIR``
    (``user_cache``); a folder; ``torch``, or not compiling: None (inductor's own choice). The
    ranks of a node share the folder, and nodes on shared storage too: inductor writes each entry
    under its hash, atomically."""
    if not compiling or setting == "torch" or (setting == "auto" and user_cache is not None):
        return None
    return Path(out) / "compile-cache" if setting == "auto" else Path(setting)
