"""One fine-tuning run: its settings (``FinetuneConfig``), and the run from data folder to run folder.

``run(config)`` reads the data folder, builds the ``AutoModelFor*`` head for the task type
(``model_loading``), trains (``loop``: AdamW, linear warmup then linear decay, gradient
accumulation, gradient clipping, optional mixed precision), evaluates the final model on dev
and test (the paper's protocol; ``select_best_on_dev`` restores the best epoch instead) and
writes into ``config.out``:

* ``config.yaml``: the resolved settings, so the run can be repeated;
* ``metrics.json``: ``{"dataset", "task", "metric", "dev": {..., "main"}, "test": {...},
  "model", "seconds", "train_examples", ...}`` (a split absent from the data is left out);
* ``predictions_dev.json`` / ``predictions_test.json``: ``{example id: prediction}`` (for QA
  the answer text, the format the official SQuAD script reads);
* the model and tokenizer (``save_pretrained``, safetensors) unless ``save_model`` is false;
* ``log.txt``: the log lines of the run.

``config.out`` must be new or empty unless ``overwrite`` is set: a user's folder is not written
over unasked. The run is written into a folder beside it (``.NAME.building-*``, where a running
run's ``log.txt`` is) and renamed into place when complete, replacing what was there only then:
a failed or killed run leaves ``config.out`` as it was, and never a folder without metrics.json
that a caller (the ablation, which skips runs that have one) would take for finished or refuse.
A full or read-only disk is an ``OSError`` naming the file being written.

Only ``run`` and the two functions it hands the whole ``FinetuneConfig`` to (``resolve`` and
``fit_and_evaluate``) see it; every other function takes the few settings it uses, by name. The
process (device, precision, seeds, threads) is set up by ``linkbert.runtime`` and the
optimizer and schedule come from ``linkbert.optim``, as for pretraining.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from linkbert import runtime, settings
from linkbert.errors import ConfigError
from linkbert.files import building, check_output_folder, naming, write_json
from linkbert.finetune.data import TASKS, Split, load_data
from linkbert.finetune.loop import BestOnDev, evaluate, train
from linkbert.finetune.model_loading import (
    check_max_length,
    check_tokenizer_reads,
    fit_max_length,
    load_model,
    load_model_config,
    load_tokenizer,
)
from linkbert.finetune.tasks import TASK_TYPES, check_metric, default_max_length, default_metric, make_task
from linkbert.settings import setting
from linkbert.tracking import TRACKERS, Tracker, tracking

log = logging.getLogger("linkbert.finetune")

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass
class FinetuneConfig:
    """Every setting of a fine-tuning run; a recipe YAML, flags and ``key=value`` overrides set them."""

    task: str = setting("", "task type (a recipe names its own)", choices=TASKS)
    model: str = setting("", "model folder (a BERT checkpoint with safetensors weights) or hub name")
    data: str = setting("", "data folder with train.json / dev.json / test.json (JSON lines)")
    out: str = setting("", "run folder for metrics, predictions, config and the model")
    dataset: str = setting("", "dataset name in metrics.json; empty: the data folder's name without _hf")
    metric: str = setting("", "seqcls: accuracy|pearsonr|PRF1|hoc; tokcls: seqeval|pico; qa: squad; "
                              "mc: accuracy; empty: the first one")
    eval_only: bool = setting(False, "no training: evaluate the given (fine-tuned) model on dev/test")
    lr: float = setting(5e-5, "peak learning rate of AdamW", above=0)
    batch_size: int = setting(32, "training examples (QA: windows) per forward pass", minimum=1)
    grad_accum_steps: int = setting(1, "forward passes per optimizer update (update batch = batch_size x this)",
                                    minimum=1)
    eval_batch_size: int = setting(32, "examples per forward pass when predicting", minimum=1)
    epochs: float = setting(3.0, "passes over the training data (fractions allowed)", minimum=0)
    max_steps: int = setting(-1, "if > 0: stop after this many optimizer updates, whatever epochs says",
                             minimum=-1)
    warmup_ratio: float = setting(0.0, "linear warmup over this fraction of the updates (if warmup_steps is 0)",
                                  minimum=0, maximum=1)
    warmup_steps: int = setting(0, "linear warmup over this many updates (overrides warmup_ratio when > 0)",
                                minimum=0)
    weight_decay: float = setting(0.0, "AdamW weight decay (not applied to biases and norm weights)", minimum=0)
    adam_beta1: float = setting(0.9, "AdamW beta1", minimum=0, maximum=0.9999)
    adam_beta2: float = setting(0.999, "AdamW beta2", minimum=0, maximum=0.9999)
    adam_eps: float = setting(1e-8, "AdamW epsilon", above=0)
    max_grad_norm: float = setting(1.0, "clip the gradient norm to this (0: no clipping)", minimum=0)
    max_length: int = setting(0, "tokens per input; 0: the task type's released value (qa 384, else 512)",
                              minimum=0)
    doc_stride: int = setting(128, "qa: overlap in tokens between consecutive windows of a long context",
                              minimum=1)
    n_best: int = setting(20, "qa: start/end candidates per window in post-processing", minimum=1)
    max_answer_length: int = setting(30, "qa: longest predicted answer, in tokens", minimum=1)
    seed: int = setting(42, "seed of the head initialisation, dropout and data order", minimum=0)
    precision: str = setting("auto", "auto: bf16 where the device is fast at it (a GPU with bf16, a CPU with "
                                     "AVX512-BF16 or AMX), fp16 on older GPUs, else fp32; bf16/fp16: autocast "
                                     "(fp16 with loss scaling, CUDA only)", choices=runtime.PRECISIONS)
    device: str = setting("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    threads: int = setting(0, "CPU threads of torch; 0: torch's default (on a busy shared CPU, 1 is often faster)",
                           minimum=0)
    select_best_on_dev: bool = setting(False, "evaluate on dev after each epoch and keep the best epoch "
                                              "(the paper evaluates the final model)")
    save_model: bool = setting(True, "save the fine-tuned model and tokenizer into the run folder")
    max_train_examples: int = setting(-1, "if >= 0: train on N training examples only (a fixed random subset)",
                                      minimum=-1)
    max_eval_examples: int = setting(-1, "if >= 0: evaluate on N dev and N test examples only "
                                         "(fixed random subsets)", minimum=-1)
    log_every: int = setting(50, "log the training loss every this many updates", minimum=1)
    tracker: str = setting("none", "where the loss, learning rate and scores go besides log.txt and metrics.json: "
                                   "tensorboard (OUT/tensorboard), wandb (OUT/wandb; offline unless WANDB_MODE says "
                                   "otherwise), none (neither is imported)", choices=TRACKERS)
    overwrite: bool = setting(False, "write into a non-empty out folder: what it holds is replaced when the "
                                     "run completes")

    def check(self) -> None:
        """Rules across settings; ``settings.check`` runs it after each field's own bounds."""
        for name in ("model", "data", "out"):
            if not getattr(self, name):
                raise ConfigError(f"{name} is not set")
        if not DEVICE.fullmatch(self.device):
            raise ConfigError(f"device must be auto, cpu, cuda or cuda:N (got {self.device!r})")
        check_metric(self.task, self.metric)
        if self.epochs <= 0 and self.max_steps <= 0 and not self.eval_only:
            raise ConfigError("training needs epochs > 0 or max_steps > 0")
        length = self.max_length or default_max_length(self.task)
        if self.task == "qa" and not self.doc_stride < length - 3:
            raise ConfigError(f"doc_stride must be between 1 and max_length - 4 "
                              f"(got doc_stride={self.doc_stride}, max_length={length})")

    def settings_of(self, component: Callable) -> dict:
        """The settings ``component`` takes as keyword-only arguments, by name: a component
        names in its signature what it reads, and never sees the rest."""
        names = [p.name for p in inspect.signature(component).parameters.values() if p.kind == p.KEYWORD_ONLY]
        return {name: getattr(self, name) for name in names if name in self.__dataclass_fields__}


def resolve(config: FinetuneConfig) -> FinetuneConfig:
    """``config`` checked, with its "empty means default" settings filled in."""
    settings.check(config)
    changes = {}
    if not config.max_length:
        changes["max_length"] = default_max_length(config.task)
    if not config.dataset:
        changes["dataset"] = Path(config.data).name.removesuffix("_hf")
    if not config.metric:
        changes["metric"] = default_metric(config.task)
    return dataclasses.replace(config, **changes)


SUBSET_SEED = 0  # the same example subsets for every run seed, so seeds vary only the training


def select_splits(splits: dict[str, Split], *, eval_only: bool, max_train_examples: int,
                  max_eval_examples: int) -> dict[str, Split]:
    """Drop train when only evaluating; cut splits to ``max_*_examples`` (random subsets)."""
    chosen = {}
    for name, split in splits.items():
        if name == "train":
            if not eval_only:
                chosen[name] = split.subset(max_train_examples, SUBSET_SEED)
        else:
            chosen[name] = split.subset(max_eval_examples, SUBSET_SEED)
    return chosen


# ----------------------------------------------------------------------------------------
# the run


@contextlib.contextmanager
def log_to_file(path: Path):
    """Copy the run's log lines into ``log.txt`` (the console keeps them too)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    previous = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)
        handler.close()


def run(config: FinetuneConfig) -> dict:
    """Fine-tune and/or evaluate as ``config`` says; returns what ``metrics.json`` holds."""
    started = time.time()
    config = resolve(config)
    device = runtime.pick_device(config.device)
    precision = runtime.resolve_precision(config.precision, device)
    out = Path(config.out)
    inputs = [Path(config.data)] + ([Path(config.model)] if Path(config.model).exists() else [])
    check_output_folder(out, overwrite=config.overwrite, inputs=inputs, flag="overwrite=true")
    with building(out) as folder, log_to_file(folder / "log.txt"), runtime.cpu_threads(config.threads):
        log.info("writing into %s, renamed to %s when complete", folder, out)
        data = load_data(config.data, config.task, need_train=not config.eval_only)
        splits = select_splits(data, eval_only=config.eval_only, max_train_examples=config.max_train_examples,
                               max_eval_examples=config.max_eval_examples)
        model_config = load_model_config(config.model)
        config = dataclasses.replace(config, max_length=fit_max_length(config.max_length, model_config))
        with naming(folder / "config.yaml"), open(folder / "config.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(dataclasses.asdict(config), f, sort_keys=False)
        log.info("%s %s on %s (%s), splits %s, device %s, %s", config.task, config.dataset, config.data,
                 config.metric, {k: len(v) for k, v in splits.items()}, device, precision)
        with tracking(config.tracker, folder, name=out.name, config=dataclasses.asdict(config)) as tracker:
            result = fit_and_evaluate(config, splits, model_config, device, precision, folder, started, tracker)
        with naming(folder / "metrics.json"):
            write_json(folder / "metrics.json", result)
        scores = ", ".join(f"{name} {result[name]['main']:.2f}" for name in ("dev", "test") if name in result)
        log.info("wrote %s (%s) in %.0f s", out / "metrics.json", scores, result["seconds"])
    return result


def fit_and_evaluate(config: FinetuneConfig, splits: dict[str, Split], model_config, device, precision: str,
                     out: Path, started: float, tracker: Tracker) -> dict:
    """Train (unless ``eval_only``), evaluate on dev and test, save; returns the run's figures."""
    task = make_task(config.task, **config.settings_of(TASK_TYPES[config.task]))
    splits = task.setup(splits, model_config)
    tokenizer = load_tokenizer(config.model)
    check_max_length(config.max_length, config.task, tokenizer)
    runtime.set_seed(config.seed)  # before the head is initialised
    model = load_model(task, config.model, eval_only=config.eval_only, model_config=model_config).to(device)
    features = {name: task.encode(split, tokenizer, training=(name == "train")) for name, split in splits.items()}
    check_tokenizer_reads(features.get("train") or next(iter(features.values())), tokenizer, config.model)
    dtype = runtime.autocast_dtype(precision, device)

    def score(name: str) -> tuple[dict, dict]:
        return evaluate(model, task, splits[name], features[name], device, dtype=dtype,
                        eval_batch_size=config.eval_batch_size)

    training = {}
    if not config.eval_only:
        best = BestOnDev(model, lambda: score("dev")[0]) if config.select_best_on_dev and "dev" in splits else None
        if config.select_best_on_dev and not best:
            log.warning("select_best_on_dev: no dev split, evaluating the final model")
        training = train(model, task, features["train"], device, dtype=dtype, on_epoch_end=best,
                         record=tracker.log, **config.settings_of(train))
        if best:
            best.restore()
            training["best_epoch"] = best.epoch

    result = {"dataset": config.dataset, "task": config.task, "metric": config.metric}
    for name in ("dev", "test"):
        if name in splits:
            result[name], predictions = score(name)
            tracker.log(training.get("steps", 0), name, result[name])
            with naming(out / f"predictions_{name}.json"):
                write_json(out / f"predictions_{name}.json", predictions)
    if config.save_model and not config.eval_only:
        with naming(out / "model.safetensors"):
            model.save_pretrained(out)
        with naming(out):
            tokenizer.save_pretrained(out)
    return {**result, "model": config.model, "seconds": round(time.time() - started, 2),
            "train_examples": len(splits["train"]) if "train" in splits else 0,
            "eval_examples": {name: len(splits[name]) for name in ("dev", "test") if name in splits},
            "train_features": len(features.get("train", [])), **training, "seed": config.seed,
            "precision": precision, "select_best_on_dev": config.select_best_on_dev,
            "eval_only": config.eval_only, "data": config.data, "device": str(device), "stats": task.stats}
