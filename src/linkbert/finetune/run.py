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
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from linkbert.config import ConfigError
from linkbert.errors import BadInput
from linkbert.finetune.data import TASKS, Split, load_data
from linkbert.finetune.tasks import Task, make_task

log = logging.getLogger("linkbert.finetune")

PRECISIONS = ("fp32", "bf16", "fp16")


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class FinetuneConfig:
    """Every setting of a fine-tuning run; a recipe YAML and ``key=value`` overrides set them."""

    task: str = _setting("", "task type: seqcls, tokcls, qa or mc")
    model: str = _setting("", "model folder (a BERT checkpoint with safetensors weights) or hub name")
    data: str = _setting("", "data folder with train.json / dev.json / test.json (JSON lines)")
    out: str = _setting("", "run folder for metrics, predictions, config and the model")
    dataset: str = _setting("", "dataset name in metrics.json; empty: the data folder's name without _hf")
    metric: str = _setting("", "seqcls: accuracy|pearsonr|PRF1|hoc; tokcls: seqeval|pico; qa: squad; "
                               "mc: accuracy; empty: the first one")
    eval_only: bool = _setting(False, "no training: evaluate the given (fine-tuned) model on dev/test")
    lr: float = _setting(5e-5, "peak learning rate of AdamW")
    batch_size: int = _setting(32, "training examples (QA: windows) per forward pass")
    grad_accum_steps: int = _setting(1, "forward passes per optimizer update (update batch = batch_size x this)")
    eval_batch_size: int = _setting(32, "examples per forward pass when predicting")
    epochs: float = _setting(3.0, "passes over the training data (fractions allowed)")
    max_steps: int = _setting(-1, "if > 0: stop after this many optimizer updates, whatever epochs says")
    warmup_ratio: float = _setting(0.0, "linear warmup over this fraction of the updates (if warmup_steps is 0)")
    warmup_steps: int = _setting(0, "linear warmup over this many updates (overrides warmup_ratio when > 0)")
    weight_decay: float = _setting(0.0, "AdamW weight decay (not applied to biases and LayerNorm weights)")
    max_grad_norm: float = _setting(1.0, "clip the gradient norm to this (0: no clipping)")
    max_seq_length: int = _setting(0, "tokens per input; 0: the task type's released value (qa 384, else 512)")
    doc_stride: int = _setting(128, "qa: overlap in tokens between consecutive windows of a long context")
    n_best: int = _setting(20, "qa: start/end candidates per window in post-processing")
    max_answer_length: int = _setting(30, "qa: longest predicted answer, in tokens")
    seed: int = _setting(42, "seed of the head initialisation, dropout and data order")
    precision: str = _setting("fp32", "fp32, bf16 (autocast) or fp16 (autocast + loss scaling, CUDA only)")
    device: str = _setting("auto", "auto (CUDA when available), cpu, cuda, cuda:N")
    threads: int = _setting(0, "CPU threads of torch; 0: torch's default (on a busy shared CPU, 1 is often faster)")
    select_best_on_dev: bool = _setting(False, "evaluate on dev after each epoch and keep the best epoch "
                                               "(the paper evaluates the final model)")
    save_model: bool = _setting(True, "save the fine-tuned model and tokenizer into the run folder")
    max_train_examples: int = _setting(-1, "if >= 0: train on N training examples only (a fixed random subset)")
    max_eval_examples: int = _setting(-1, "if >= 0: evaluate on N dev and N test examples only (fixed random subsets)")
    log_every: int = _setting(50, "log the training loss every this many updates")


def config_help() -> dict[str, str]:
    """``{key: help}`` for every setting, in declaration order."""
    return {f.name: f.metadata["help"] for f in dataclasses.fields(FinetuneConfig)}


def resolve(config: FinetuneConfig) -> FinetuneConfig:
    """Fill the "empty means default" settings and check the combination."""
    if config.task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)} (got {config.task!r})")
    for name in ("model", "data", "out"):
        if not getattr(config, name):
            raise ConfigError(f"{name} is not set")
    if config.precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)} (got {config.precision!r})")
    for name in ("batch_size", "grad_accum_steps", "eval_batch_size", "n_best", "max_answer_length"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1 (got {getattr(config, name)})")
    if config.epochs <= 0 and config.max_steps <= 0 and not config.eval_only:
        raise ConfigError("training needs epochs > 0 or max_steps > 0")
    changes = {}
    if not config.max_seq_length:
        changes["max_seq_length"] = 384 if config.task == "qa" else 512
    length = changes.get("max_seq_length", config.max_seq_length)
    if config.task == "qa" and not 0 < config.doc_stride < length - 3:
        raise ConfigError(f"doc_stride must be between 1 and max_seq_length - 4 "
                          f"(got doc_stride={config.doc_stride}, max_seq_length={length})")
    if not config.dataset:
        changes["dataset"] = Path(config.data).name.removesuffix("_hf")
    if not config.metric:
        changes["metric"] = make_task(config).metric
    return dataclasses.replace(config, **changes)


# ----------------------------------------------------------------------------------------
# setup


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # all devices


def pick_device(config: FinetuneConfig) -> torch.device:
    name = config.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but no CUDA device is available")
    if config.precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision=fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return device


def autocast(config: FinetuneConfig, device: torch.device):
    """Mixed-precision context for forward passes (a no-op for fp32)."""
    if config.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if config.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def check_model_source(model: str) -> None:
    """Weights are read only from safetensors: a local folder must have them."""
    path = Path(model)
    if path.is_dir() and not any(path.glob("*.safetensors")):
        found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        raise BadInput(path, "", "no_safetensors",
                       f"no *.safetensors weights in the model folder (found: {found}); "
                       "pickled weights (pytorch_model.bin) are not loaded: convert them to safetensors first")


def load_model_config(config: FinetuneConfig):
    from transformers import AutoConfig

    check_model_source(config.model)
    try:
        return AutoConfig.from_pretrained(config.model, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise BadInput(config.model, "", "model_not_loadable", f"cannot read the model config: {e}") from None


def load_tokenizer(config: FinetuneConfig):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise BadInput(config.model, "", "model_not_loadable", f"cannot load the tokenizer: {e}") from None
    if not tokenizer.is_fast:  # offsets (qa) and word_ids (tokcls) need a fast tokenizer
        raise BadInput(config.model, "", "model_not_loadable", "the tokenizer is not a fast (Rust) tokenizer")
    return tokenizer


def load_model(task: Task, config: FinetuneConfig):
    """The task's ``AutoModelFor*``; when only evaluating, its head must come from the checkpoint."""
    try:
        model, info = task.model_class.from_pretrained(
            config.model, use_safetensors=True, trust_remote_code=False, output_loading_info=True,
            **task.model_kwargs())
    except OSError as e:
        raise BadInput(config.model, "", "model_not_loadable", f"cannot load the model: {e}") from None
    missing = sorted(info.get("missing_keys") or [])
    if config.eval_only and missing:
        # a freshly initialised head would score at chance level without any warning
        raise ConfigError(f"--eval-only needs a model fine-tuned for {config.task}, but {config.model} "
                          f"lacks {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
    return model


def fit_max_length(config: FinetuneConfig, model_config) -> FinetuneConfig:
    """``max_seq_length`` no longer than the model's position embeddings."""
    limit = getattr(model_config, "max_position_embeddings", None)
    if limit and config.max_seq_length > limit:
        log.warning("max_seq_length %d > the model's %d positions: using %d", config.max_seq_length, limit, limit)
        return dataclasses.replace(config, max_seq_length=limit)
    return config


SUBSET_SEED = 0  # the same example subsets for every run seed, so seeds vary only the training


def select_splits(splits: dict[str, Split], config: FinetuneConfig) -> dict[str, Split]:
    """Drop train when only evaluating; cut splits to ``max_*_examples`` (random subsets)."""
    chosen = {}
    for name, split in splits.items():
        if name == "train":
            if not config.eval_only:
                chosen[name] = split.subset(config.max_train_examples, SUBSET_SEED)
        else:
            chosen[name] = split.subset(config.max_eval_examples, SUBSET_SEED)
    return chosen


# ----------------------------------------------------------------------------------------
# training


def make_optimizer(model, config: FinetuneConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay on biases and LayerNorm weights (as the HF Trainer)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr)


def updates_per_epoch(num_batches: int, grad_accum_steps: int) -> int:
    """Optimizer updates in one pass; a last, partial accumulation group still updates."""
    return max(1, math.ceil(num_batches / grad_accum_steps))


def plan_steps(num_batches: int, config: FinetuneConfig) -> tuple[int, int]:
    """``(total updates, warmup updates)``; ``max_steps`` wins over ``epochs``."""
    per_epoch = updates_per_epoch(num_batches, config.grad_accum_steps)
    total = config.max_steps if config.max_steps > 0 else max(1, math.ceil(config.epochs * per_epoch))
    warmup = config.warmup_steps if config.warmup_steps > 0 else math.ceil(config.warmup_ratio * total)
    return total, min(warmup, total)


def accumulation_groups(loader, size: int):
    """Consecutive groups of ``size`` batches (the last one may be shorter)."""
    group = []
    for batch in loader:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def update(model, group, optimizer, scheduler, scaler, config, device) -> float:
    """One optimizer update from a group of batches; returns the mean loss."""
    model.train()
    total = 0.0
    for batch in group:
        with autocast(config, device):
            loss = model(**to_device(batch, device)).loss / len(group)
        scaler.scale(loss).backward()
        total += loss.item()
    if config.max_grad_norm > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return total


def train(model, task: Task, features: list[dict], config: FinetuneConfig, device, on_epoch_end=None) -> dict:
    """Fine-tune ``model`` in place; ``on_epoch_end(epoch)`` runs after every (partial) epoch."""
    from transformers import get_linear_schedule_with_warmup

    generator = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(features, batch_size=config.batch_size, shuffle=True, generator=generator,
                        collate_fn=task.collate)
    total, warmup = plan_steps(len(loader), config)
    optimizer = make_optimizer(model, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    log.info("training: %d features, %d updates (warmup %d), update batch %d", len(features), total, warmup,
             config.batch_size * config.grad_accum_steps)
    step, epoch, recent = 0, 0, []
    progress = tqdm(total=total, desc="train", disable=None)
    while step < total:
        for group in accumulation_groups(loader, config.grad_accum_steps):
            recent.append(update(model, group, optimizer, scheduler, scaler, config, device))
            step += 1
            progress.update(1)
            if step % config.log_every == 0 or step == total:
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
def predict(model, task: Task, features: list[dict], config: FinetuneConfig, device) -> list:
    """Per-feature model outputs, in feature order."""
    model.eval()
    loader = DataLoader(features, batch_size=config.eval_batch_size, shuffle=False, collate_fn=task.collate)
    outputs = []
    for batch in tqdm(loader, desc="predict", disable=None):
        with autocast(config, device):
            out = model(**to_device(batch, device))
        outputs += task.outputs(out, batch)
    return outputs


def evaluate(model, task: Task, split: Split, features: list[dict], config, device) -> tuple[dict, dict]:
    """``(scores, predictions)`` of ``model`` on one split."""
    predictions = task.decode(split, features, predict(model, task, features, config, device))
    scores = task.score(split, predictions)
    log.info("%s: %s", split.name, ", ".join(f"{k} {v:.4g}" for k, v in scores.items()
                                              if isinstance(v, (int, float))))
    return scores, predictions


class BestOnDev:
    """Keeps a copy of the weights of the epoch with the best dev ``main`` score."""

    def __init__(self, model, task, split, features, config, device):
        self.args = (model, task, split, features, config, device)
        self.best, self.epoch, self.state = -math.inf, 0, None

    def __call__(self, epoch: int) -> None:
        model = self.args[0]
        scores, _ = evaluate(*self.args)
        if scores["main"] > self.best:
            self.best, self.epoch = scores["main"], epoch
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def restore(self) -> None:
        if self.state is not None:
            self.args[0].load_state_dict(self.state)
            log.info("restored epoch %d (best dev main %.4g)", self.epoch, self.best)


# ----------------------------------------------------------------------------------------
# the run


def write_json(path: Path, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False, indent=1)
        f.write("\n")


@contextlib.contextmanager
def cpu_threads(n: int):
    """Use ``n`` torch CPU threads inside the block (``n`` = 0: leave the setting alone)."""
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
    device = pick_device(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with log_to_file(out / "log.txt"), cpu_threads(config.threads):
        splits = select_splits(load_data(config.data, config.task, need_train=not config.eval_only), config)
        model_config = load_model_config(config)
        config = fit_max_length(config, model_config)
        with open(out / "config.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(dataclasses.asdict(config), f, sort_keys=False)
        log.info("%s %s on %s (%s), splits %s, device %s, %s", config.task, config.dataset, config.data,
                 config.metric, {k: len(v) for k, v in splits.items()}, device, config.precision)
        return _fit_and_evaluate(config, splits, model_config, device, out, started)


def _fit_and_evaluate(config, splits, model_config, device, out: Path, started: float) -> dict:
    task = make_task(config)
    splits = task.setup(splits, model_config)
    tokenizer = load_tokenizer(config)
    set_seed(config.seed)  # before the head is initialised
    model = load_model(task, config).to(device)
    features = {name: task.encode(split, tokenizer, training=(name == "train")) for name, split in splits.items()}

    result = {"dataset": config.dataset, "task": config.task, "metric": config.metric}
    training = {}
    if not config.eval_only:
        best = None
        if config.select_best_on_dev and "dev" in splits:
            best = BestOnDev(model, task, splits["dev"], features["dev"], config, device)
        elif config.select_best_on_dev:
            log.warning("select_best_on_dev: no dev split, evaluating the final model")
        training = train(model, task, features["train"], config, device, on_epoch_end=best)
        if best:
            best.restore()
            training["best_epoch"] = best.epoch

    for name in ("dev", "test"):
        if name in splits:
            scores, predictions = evaluate(model, task, splits[name], features[name], config, device)
            result[name] = scores
            write_json(out / f"predictions_{name}.json", predictions)
    if config.save_model and not config.eval_only:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)

    result.update({
        "model": config.model,
        "seconds": round(time.time() - started, 2),
        "train_examples": len(splits["train"]) if "train" in splits else 0,
        "eval_examples": {name: len(splits[name]) for name in ("dev", "test") if name in splits},
        "train_features": len(features.get("train", [])),
        **training,
        "seed": config.seed,
        "precision": config.precision,
        "select_best_on_dev": config.select_best_on_dev,
        "eval_only": config.eval_only,
        "data": config.data,
        "device": str(device),
        "stats": task.stats,
    })
    write_json(out / "metrics.json", result)
    log.info("wrote %s (dev %s, test %s) in %.0f s", out / "metrics.json",
             result.get("dev", {}).get("main"), result.get("test", {}).get("main"), result["seconds"])
    return result
