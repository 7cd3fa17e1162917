"""One fine-tuning run: settings, the training loop and evaluation, written in plain PyTorch.

``run(config)`` reads the data folder, builds the ``AutoModelFor*`` head for the task type,
trains (AdamW, linear warmup then linear decay, gradient accumulation, gradient clipping,
optional mixed precision), evaluates the final model on dev and test (the paper's protocol;
``select_best_on_dev`` restores the best epoch instead) and writes into ``config.out``:

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
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from linkbert import runtime, settings
from linkbert.files import naming
from linkbert.errors import BadInput, ConfigError
from linkbert.files import building, check_output_folder, write_json
from linkbert.finetune.data import TASKS, Split, load_data
from linkbert.finetune.tasks import (
    TASK_TYPES,
    Task,
    check_metric,
    default_max_length,
    default_metric,
    make_task,
)
from linkbert.optim import adamw, linear_schedule
from linkbert.settings import setting

log = logging.getLogger("linkbert.finetune")

DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


@dataclass
class FinetuneConfig:
    """Every setting of a fine-tuning run; a recipe YAML and ``key=value`` overrides set them."""

    task: str = setting("", "task type", choices=TASKS)
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
    precision: str = setting("fp32", "bf16/fp16: autocast (fp16 with loss scaling, CUDA only); auto: bf16 "
                                     "where the device is fast at it, fp16 on older GPUs, else fp32",
                             choices=runtime.PRECISIONS)
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


# ----------------------------------------------------------------------------------------
# setup


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


def load_model(task: Task, model: str, *, eval_only: bool):
    """The task's ``AutoModelFor*``; when only evaluating, its head must come from the checkpoint."""
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
# training


def updates_per_epoch(num_batches: int, grad_accum_steps: int) -> int:
    """Optimizer updates in one pass, as the released runs' HF Trainer counts them: whole
    accumulation groups (at least one). The schedule, and so the learning rate at every update,
    is then the released one."""
    return max(1, num_batches // grad_accum_steps)


def update_after(num_batches: int, grad_accum_steps: int) -> set[int]:
    """The batch indices of an epoch after which the optimizer steps: the end of every whole
    accumulation group, or the epoch's last batch when the epoch is shorter than one group.
    The batches of a last, partial group are back-propagated and their gradients join the next
    epoch's first update (the last epoch's are dropped): the HF Trainer of the released runs."""
    if num_batches <= grad_accum_steps:
        return {num_batches - 1}
    return {i for i in range(num_batches) if (i + 1) % grad_accum_steps == 0}


def plan_steps(num_batches: int, *, grad_accum_steps: int, epochs: float, max_steps: int, warmup_ratio: float,
               warmup_steps: int) -> tuple[int, int]:
    """``(total updates, warmup updates)``; ``max_steps`` wins over ``epochs``."""
    per_epoch = updates_per_epoch(num_batches, grad_accum_steps)
    total = max_steps if max_steps > 0 else max(1, math.ceil(epochs * per_epoch))
    warmup = warmup_steps if warmup_steps > 0 else math.ceil(warmup_ratio * total)
    return total, min(warmup, total)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def backward(model, batch: dict, scaler, device, *, dtype, grad_accum_steps: int) -> float:
    """Back-propagate one batch's loss, divided by ``grad_accum_steps`` (whatever the size of
    the group it lands in, as the HF Trainer); returns that share of the loss."""
    model.train()
    with runtime.autocast(dtype, device):
        loss = model(**to_device(batch, device)).loss / grad_accum_steps
    (scaler.scale(loss) if scaler else loss).backward()
    return loss.item()


def optimizer_step(model, optimizer, scheduler, scaler, *, max_grad_norm: float) -> None:
    """Clip, step, advance the schedule, clear the gradients. ``scaler``: fp16's, or None."""
    if max_grad_norm > 0:
        if scaler:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def train(model, task: Task, features: list[dict], device, *, batch_size: int, grad_accum_steps: int,
          epochs: float, max_steps: int, warmup_ratio: float, warmup_steps: int, lr: float, weight_decay: float,
          adam_beta1: float, adam_beta2: float, adam_eps: float, max_grad_norm: float, seed: int, log_every: int,
          dtype, on_epoch_end: Callable[[int], None] | None = None) -> dict:
    """Fine-tune ``model`` in place; ``on_epoch_end(epoch)`` runs after every (partial) epoch.
    ``seed`` fixes the data order, independently of the global generators (dropout)."""
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(features, batch_size=batch_size, shuffle=True, generator=generator, collate_fn=task.collate)
    total, warmup = plan_steps(len(loader), grad_accum_steps=grad_accum_steps, epochs=epochs, max_steps=max_steps,
                               warmup_ratio=warmup_ratio, warmup_steps=warmup_steps)
    optimizer = adamw(model, lr=lr, weight_decay=weight_decay, betas=(adam_beta1, adam_beta2), eps=adam_eps)
    scheduler = linear_schedule(optimizer, warmup_steps=warmup, total_steps=total)
    scaler = runtime.grad_scaler(dtype, device)
    steps_at = update_after(len(loader), grad_accum_steps)
    log.info("training: %d features, %d updates (warmup %d), update batch %d", len(features), total, warmup,
             batch_size * grad_accum_steps)
    step, epoch, recent, loss = 0, 0, [], 0.0
    progress = tqdm(total=total, desc="train", disable=None)
    while step < total:
        for index, batch in enumerate(loader):
            loss += backward(model, batch, scaler, device, dtype=dtype, grad_accum_steps=grad_accum_steps)
            if index not in steps_at:
                continue
            optimizer_step(model, optimizer, scheduler, scaler, max_grad_norm=max_grad_norm)
            step, recent, loss = step + 1, recent + [loss], 0.0
            progress.update(1)
            if step % log_every == 0 or step == total:
                log.info("step %d/%d epoch %d loss %.4f lr %.3g", step, total, epoch + 1,
                         float(np.mean(recent)), scheduler.get_last_lr()[0])
                recent = []
            if step >= total:
                break
        epoch += 1
        if on_epoch_end:
            on_epoch_end(epoch)
    progress.close()
    return {"steps": step, "epochs_run": epoch, "warmup_steps": warmup}


# ----------------------------------------------------------------------------------------
# evaluation


@torch.no_grad()
def predict(model, task: Task, features: list[dict], device, *, eval_batch_size: int, dtype) -> list:
    """Per-feature model outputs, in feature order."""
    model.eval()
    loader = DataLoader(features, batch_size=eval_batch_size, shuffle=False, collate_fn=task.collate)
    outputs = []
    for batch in tqdm(loader, desc="predict", disable=None):
        with runtime.autocast(dtype, device):
            out = model(**to_device(batch, device))
        outputs += task.outputs(out, batch)
    return outputs


def evaluate(model, task: Task, split: Split, features: list[dict], device, *, eval_batch_size: int,
             dtype) -> tuple[dict, dict]:
    """``(scores, predictions)`` of ``model`` on one split."""
    outputs = predict(model, task, features, device, eval_batch_size=eval_batch_size, dtype=dtype)
    predictions = task.decode(split, features, outputs)
    scores = task.score(split, predictions)
    log.info("%s: %s", split.name, ", ".join(f"{k} {v:.4g}" for k, v in scores.items()
                                              if isinstance(v, (int, float))))
    return scores, predictions


class BestOnDev:
    """Keeps a copy of the weights of the epoch with the best dev ``main`` score;
    ``score()`` evaluates the model on dev."""

    def __init__(self, model, score: Callable[[], dict]):
        self.model, self.score = model, score
        self.best, self.epoch, self.state = -math.inf, 0, None

    def __call__(self, epoch: int) -> None:
        main = self.score()["main"]
        if main > self.best:
            self.best, self.epoch = main, epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)
            log.info("restored epoch %d (best dev main %.4g)", self.epoch, self.best)


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
        result = fit_and_evaluate(config, splits, model_config, device, precision, folder, started)
        with naming(folder / "metrics.json"):
            write_json(folder / "metrics.json", result)
        log.info("wrote %s (dev %s, test %s) in %.0f s", out / "metrics.json",
                 result.get("dev", {}).get("main"), result.get("test", {}).get("main"), result["seconds"])
    return result


def fit_and_evaluate(config: FinetuneConfig, splits: dict[str, Split], model_config, device, precision: str,
                     out: Path, started: float) -> dict:
    """Train (unless ``eval_only``), evaluate on dev and test, save; returns the run's figures."""
    task = make_task(config.task, **config.settings_of(TASK_TYPES[config.task]))
    splits = task.setup(splits, model_config)
    tokenizer = load_tokenizer(config.model)
    check_max_length(config.max_length, config.task, tokenizer)
    runtime.set_seed(config.seed)  # before the head is initialised
    model = load_model(task, config.model, eval_only=config.eval_only).to(device)
    features = {name: task.encode(split, tokenizer, training=(name == "train")) for name, split in splits.items()}
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
                         **config.settings_of(train))
        if best:
            best.restore()
            training["best_epoch"] = best.epoch

    result = {"dataset": config.dataset, "task": config.task, "metric": config.metric}
    for name in ("dev", "test"):
        if name in splits:
            result[name], predictions = score(name)
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
