"""``linkbert pretrain``: masked LM + document relation prediction on a prepared corpus.

    linkbert pretrain --config configs/pretrain/mini.yaml --data prepared/wikispeedia --out runs/mini \\
        max_steps=200 budget_minutes=10 seed=1
    torchrun --nproc_per_node 8 -m linkbert.cli pretrain --config configs/pretrain/base.yaml --data ... --out ...

The run is built from named steps: ``setup`` (config, distributed, data, model, optimiser,
resume) -> ``train`` (a loop of ``train_step``s, with logging, evaluation and checkpoints) ->
``finish``. Everything a step needs to be reproduced is a function of (seed, step): the pairs and
their masks are keyed by their position in the data stream, so a resumed run, or a run on any
number of ranks with the same global batch, sees exactly the same batches.

Loss normalisation: the MLM loss is a mean over the masked tokens of the *whole global batch*
and the relation loss a mean over its pairs, whatever the number of ranks and micro-batches.
Each micro-batch contributes its loss sums divided by the global counts (all-reduced before the
backward pass), times the world size because DistributedDataParallel averages gradients.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from linkbert.modeling import RELATIONS as NUM_RELATIONS  # objective -> number of relation classes

log = logging.getLogger("linkbert.pretrain")

OBJECTIVES = tuple(NUM_RELATIONS)
CHECKPOINTS = "checkpoints"
# settings that decide which batches a run sees and what it trains; a resume must keep them
RUN_IDENTITY = ("preset", "init", "graph", "objective", "p_contiguous", "p_random", "p_linked", "linked_sampling",
                "linked_segment", "max_length", "mlm_probability", "whole_word_mask", "heldout_fraction",
                "batch_size", "seed")
LATEST = "latest"


@dataclass
class PretrainConfig:
    """Every setting of a pretraining run; YAML files in configs/pretrain/ are its saved form."""

    # -- model
    preset: str = "mini"                 # tiny | mini | base | large | bio-base: the architecture when starting from scratch
    init: str = "scratch"                # "scratch", or a local BERT checkpoint folder to continue from
    dropout: float = 0.1                 # hidden and attention dropout (BERT's 0.1)
    # -- data and objective
    graph: str = ""                      # document graph folder (DocGraph.save); empty = the data folder's graph/
    objective: str = "linkbert"          # linkbert (3-way DRP + MLM) | bert (NSP + MLM) | mlm-only (LinkBERT pairs, MLM loss only)
    p_contiguous: float = 1 / 3          # relation probabilities for the linkbert objectives (bert uses 1/2, 1/2)
    p_random: float = 1 / 3
    p_linked: float = 1 / 3
    linked_sampling: str = "inverse_indegree"  # inverse_indegree (diversity sampling) | uniform
    linked_segment: str = "first"        # first | random: which segment of the linked document is B
    max_length: int = 512                # tokens per input, [CLS] A [SEP] B [SEP]
    mlm_probability: float = 0.15
    whole_word_mask: bool = False
    heldout_fraction: float = 0.01       # documents whose segments are never anchors in training
    eval_pairs: int = 2048               # held-out pairs per evaluation
    # -- optimisation
    batch_size: int = 32                 # global batch (pairs per optimiser step, all ranks together)
    micro_batch_size: int = 0            # pairs per forward pass on one rank; 0 = batch_size / world size
    max_steps: int = 1000                # defines the learning-rate schedule and the end of the run
    lr: float = 1e-3                     # peak learning rate
    warmup_steps: int = 100              # linear warmup, then linear decay to 0 at max_steps
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.98
    adam_eps: float = 1e-6
    grad_clip: float = 1.0               # max global gradient norm; 0 = no clipping
    precision: str = "auto"              # fp32 | bf16 | fp16 | auto (bf16 where supported, else fp16 on GPU, fp32 on old CPUs)
    compile: bool = False                # torch.compile the model
    # -- run
    seed: int = 0
    budget_minutes: float = 0.0          # stop (with a checkpoint) after this much training time; 0 = no budget
    log_every: int = 10
    eval_every: int = 0                  # 0 = only at the end
    save_every: int = 500                # checkpoint every N steps (and always at the end)
    keep_checkpoints: int = 2            # older step checkpoints are deleted
    num_workers: int = 0                 # DataLoader processes building batches (collating is ~3 ms a batch: 0 suits CPUs)
    progress: bool = True
    tensorboard: bool = True             # write TensorBoard scalars to OUT/tensorboard when tensorboard is installed

    def check(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.precision not in ("fp32", "bf16", "fp16", "auto"):
            raise ValueError(f"precision must be fp32, bf16, fp16 or auto, got {self.precision!r}")
        if self.max_steps < 1 or self.batch_size < 1:
            raise ValueError("max_steps and batch_size must be positive")


# -- configuration -----------------------------------------------------------------------------

def load_config(path: str | None, overrides: list[str]) -> PretrainConfig:
    """A config from a YAML file (if given) and ``key=value`` overrides, each typed by its field."""
    from linkbert.config import parse_overrides, read_settings

    values = read_settings(PretrainConfig, path) if path else {}
    values.update(parse_overrides(PretrainConfig, overrides))
    config = dataclasses.replace(PretrainConfig(), **values)
    config.check()
    return config


# -- distributed -------------------------------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Read torchrun's environment; one process per GPU (NCCL) or per CPU process group (gloo)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
    return Dist(int(os.environ.get("RANK", "0")), world, local_rank, device)


def all_reduce_sum(values: torch.Tensor, dist: Dist) -> torch.Tensor:
    if dist.world > 1:
        torch.distributed.all_reduce(values)
    return values


# -- data --------------------------------------------------------------------------------------

def split_anchors(store, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out anchor segments: whole documents are held out, chosen by the seed."""
    rng = np.random.default_rng((seed, 7919))
    n_docs = store.num_documents
    n_heldout = min(n_docs - 1, max(1, round(fraction * n_docs))) if fraction > 0 and n_docs > 1 else 0
    heldout_docs = np.zeros(n_docs, dtype=bool)
    heldout_docs[rng.choice(n_docs, size=n_heldout, replace=False)] = True
    segment_docs = store.segment_document(np.arange(store.num_segments))
    heldout = heldout_docs[segment_docs]
    return np.flatnonzero(~heldout), np.flatnonzero(heldout)


class StepBatches(torch.utils.data.Dataset):
    """Item ``i`` = the ``i``-th micro-batch of this rank from ``start_step`` on, already collated.

    Global stream position ``p`` (0, 1, 2, ...) is pair ``p % len(sampler)`` of epoch
    ``p // len(sampler)``; step ``s`` consumes positions ``[s * B, (s + 1) * B)``, rank ``r`` the
    ``r``-th contiguous share of them, split into micro-batches. Only positions matter, so the
    batches are the same after a resume and for any number of DataLoader workers.
    """

    def __init__(self, sampler, collator, *, batch_size: int, micro_batch_size: int, dist: Dist,
                 start_step: int, max_steps: int):
        self.sampler, self.collator = sampler, collator
        self.batch_size, self.micro = batch_size, micro_batch_size
        self.local = batch_size // dist.world
        self.rank = dist.rank
        self.accumulation = self.local // micro_batch_size
        self.start_step = start_step
        self.length = (max_steps - start_step) * self.accumulation

    def __len__(self) -> int:
        return self.length

    def positions(self, item: int) -> np.ndarray:
        step, micro = divmod(item, self.accumulation)
        start = (self.start_step + step) * self.batch_size + self.rank * self.local + micro * self.micro
        return np.arange(start, start + self.micro, dtype=np.int64)

    def __getitem__(self, item: int) -> dict:
        n = len(self.sampler)
        return self.collator([self.sampler.pair(int(p // n), int(p % n)) for p in self.positions(item)])


def build_data(config: PretrainConfig, data_dir: str):
    """Store, graph, tokenizer, train/eval samplers and the collator of a prepared corpus."""
    from linkbert.collator import PretrainingCollator
    from linkbert.graph import DocGraph
    from linkbert.pairs import PairSampler
    from linkbert.store import SegmentStore
    from linkbert.tokenization import continuation_mask, load_tokenizer, plain_backend

    store = SegmentStore(data_dir)
    if config.graph:  # another graph over the same documents (an ablation's TF-IDF or random links)
        graph = DocGraph.load(config.graph)
    else:
        graph = DocGraph.load(Path(data_dir) / "graph") if (Path(data_dir) / "graph").exists() else None
    tokenizer = load_tokenizer(str(Path(data_dir) / "tokenizer"))
    train_anchors, heldout_anchors = split_anchors(store, config.heldout_fraction, config.seed)
    probabilities = (dict(p_contiguous=0.5, p_random=0.5, p_linked=0.0) if config.objective == "bert" else
                     dict(p_contiguous=config.p_contiguous, p_random=config.p_random, p_linked=config.p_linked))
    sampler_options = dict(objective=config.objective, linked_sampling=config.linked_sampling,
                           linked_segment=config.linked_segment, seed=config.seed, **probabilities)
    train = PairSampler(store, graph, anchors=train_anchors, **sampler_options)
    heldout = PairSampler(store, graph, anchors=heldout_anchors, **sampler_options) if len(heldout_anchors) else None
    special = [tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens]
    collator = PretrainingCollator(
        cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, pad_id=tokenizer.pad_token_id,
        mask_id=tokenizer.mask_token_id, vocab_size=store.vocab_size, special_ids=special,
        max_length=config.max_length, mlm_probability=config.mlm_probability,
        whole_word_mask=config.whole_word_mask, continuation=continuation_mask(plain_backend(tokenizer)),
        seed=config.seed)
    return store, tokenizer, train, heldout, collator


# -- model and optimiser -------------------------------------------------------------------------

def autocast_dtype(config: PretrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = fp32)."""
    precision = config.precision
    if precision == "auto":
        if device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            precision = "bf16" if _cpu_has_fast_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 autocast needs a GPU; use bf16 or fp32 on CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def cpu_precision() -> str:
    """The precision ``auto`` means on this CPU: "bf16" where it is fast, else "fp32"."""
    return "bf16" if _cpu_has_fast_bf16() else "fp32"


def _cpu_has_fast_bf16() -> bool:
    """bf16 pays off on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere it is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def retain_freed_memory(retain: bool = True) -> bool:
    """Ask glibc's malloc to keep freed memory instead of returning it to the kernel.

    PyTorch's CPU allocator has no cache: every step allocates and frees the same large buffers
    (the tied word embedding's fp32 gradient and its bf16 copy, 30522 x 256 for ``mini``, the MLM
    logit chunks). Above 128 KB glibc serves them with fresh ``mmap``s, so each step zero-fills
    and page-faults them again: ``zeros(30522, 256)`` takes 6.1 ms that way and 1.9 ms from
    retained memory. Raising the mmap and trim thresholds makes freed blocks reusable; the cost
    is that the process keeps its peak heap. ``retain=False`` puts back glibc's initial values
    (128 KB; glibc's own dynamic raising of the mmap threshold stays off), for benchmarks. Returns
    False where malloc is not glibc's.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mmap_threshold, trim_threshold = (1 << 30, (1 << 31) - 1) if retain else (128 * 1024, 128 * 1024)
    return bool(mallopt(m_mmap_threshold, mmap_threshold) and mallopt(m_trim_threshold, trim_threshold))


def build_model(config: PretrainConfig, vocab_size: int, device: torch.device):
    from linkbert.modeling import init_model

    torch.manual_seed(config.seed)
    model = init_model(config.preset if config.init == "scratch" else config.init, vocab_size=vocab_size,
                       num_relations=NUM_RELATIONS[config.objective], hidden_dropout_prob=config.dropout,
                       attention_probs_dropout_prob=config.dropout)
    return model.to(device)


def build_optimizer(model, config: PretrainConfig):
    """AdamW (β = 0.9, 0.98, as the paper) with no decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if parameter.ndim < 2 else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps)
    warmup, total = config.warmup_steps, config.max_steps

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


# -- checkpoints ---------------------------------------------------------------------------------

def save_checkpoint(out: Path, step: int, model, optimizer, scheduler, config: PretrainConfig, tokenizer,
                    history: dict) -> Path:
    """Write ``checkpoints/step-N`` atomically: into a temporary folder, renamed when complete,
    then ``latest`` replaced. A kill at any moment leaves the previous checkpoint intact."""
    root = out / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    _unwrap(model).save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    rng = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda_rng"] = torch.cuda.get_rng_state()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), **rng}, tmp / "trainer.pt")
    (tmp / "trainer_state.json").write_text(json.dumps({"step": step, "config": dataclasses.asdict(config),
                                                        "history": history}, indent=2))
    _fsync_dir(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(final.name + "\n")
    os.replace(pointer, root / LATEST)
    _prune(root, config.keep_checkpoints, keep=final.name)
    return final


def _fsync_dir(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _prune(root: Path, keep_count: int, keep: str) -> None:
    steps = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in steps[:-max(1, keep_count)]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(out: Path) -> Path | None:
    pointer = out / CHECKPOINTS / LATEST
    if not pointer.exists():
        return None
    path = out / CHECKPOINTS / pointer.read_text().strip()
    return path if path.is_dir() else None


def load_checkpoint(path: Path, model, optimizer, scheduler) -> dict:
    """Restore model, optimiser, schedule and RNG from ``path``; returns its trainer_state."""
    from safetensors.torch import load_file

    state = load_file(path / "model.safetensors")
    _unwrap(model).load_state_dict(state, strict=False)
    _unwrap(model).tie_weights()
    trainer = torch.load(path / "trainer.pt", weights_only=True, map_location="cpu")
    optimizer.load_state_dict(trainer["optimizer"])
    scheduler.load_state_dict(trainer["scheduler"])
    torch.set_rng_state(trainer["torch_rng"])
    if "cuda_rng" in trainer and torch.cuda.is_available():
        torch.cuda.set_rng_state(trainer["cuda_rng"])
    return json.loads((path / "trainer_state.json").read_text())


def _unwrap(model):
    model = getattr(model, "_orig_mod", model)  # torch.compile
    return getattr(model, "module", model)      # DistributedDataParallel


# -- the loop ------------------------------------------------------------------------------------

class Run:
    """One pretraining run: ``Run(config, data, out).train()``."""

    def __init__(self, config: PretrainConfig, data_dir: str, out_dir: str):
        self.config, self.out = config, Path(out_dir)
        self.dist = setup_distributed()
        if self.dist.device.type == "cpu":
            retain_freed_memory()
        if config.batch_size % self.dist.world:
            raise ValueError(f"batch_size {config.batch_size} must be divisible by the {self.dist.world} ranks")
        local = config.batch_size // self.dist.world
        self.micro = config.micro_batch_size or local
        if local % self.micro:
            raise ValueError(f"the per-rank batch {local} must be a multiple of micro_batch_size {self.micro}")
        self.store, self.tokenizer, self.train_sampler, self.heldout_sampler, self.collator = build_data(config, data_dir)
        self.model = build_model(config, self.store.vocab_size, self.dist.device)
        self.optimizer, self.scheduler = build_optimizer(self.model, config)
        self.autocast = autocast_dtype(config, self.dist.device)
        self.scaler = torch.amp.GradScaler("cuda") if self.autocast == torch.float16 else None
        self.step, self.history = 0, {"train_seconds": 0.0, "tokens": 0}
        if self.dist.main:
            from linkbert.openmp import describe

            log.info("device %s, %d threads, OpenMP waiting: %s", self.dist.device, torch.get_num_threads(), describe())
        if self.dist.rank:  # dropout differs across ranks, as their data does; rank 0 keeps the seed's stream
            torch.manual_seed(config.seed + self.dist.rank)
        self._resume()
        if config.compile:
            self.model = torch.compile(self.model)
        if self.dist.world > 1:
            device_ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.metrics_file = self.tensorboard = None

    def _resume(self) -> None:
        checkpoint = latest_checkpoint(self.out)
        if checkpoint is None:
            return
        state = load_checkpoint(checkpoint, self.model, self.optimizer, self.scheduler)
        self._check_same_run(state["config"], checkpoint)
        self.step, self.history = state["step"], state["history"]
        if self.dist.main:
            log.info("resumed from %s at step %d", checkpoint, self.step)

    def _check_same_run(self, saved: dict, checkpoint: Path) -> None:
        """Resuming continues *that* run: settings that decide its data or model must not change."""
        from linkbert.config import ConfigError

        defaults = PretrainConfig()  # a setting newer than the checkpoint had its default value then
        changed = [key for key in RUN_IDENTITY if saved.get(key, getattr(defaults, key)) != getattr(self.config, key)]
        if changed:
            details = ", ".join(f"{key} {saved.get(key, getattr(defaults, key))!r} -> {getattr(self.config, key)!r}"
                                for key in changed)
            raise ConfigError(f"{checkpoint} belongs to a run with other settings ({details}); "
                              "use a new --out folder, or the run's own settings to resume it")

    # ---- named steps

    def train(self) -> dict:
        self._open_logs()
        batches = iter(self._loader())
        self.started = time.perf_counter()
        self.seconds_before = self.history["train_seconds"]
        budget_s = self.config.budget_minutes * 60 if self.config.budget_minutes else math.inf
        bar = self._progress()
        window = {"tokens": 0, "time": time.perf_counter()}
        stop_reason = "max_steps"
        while self.step < self.config.max_steps:
            figures = self.train_step([next(batches) for _ in range(self.micro_accumulation)])
            self.step += 1
            tokens = figures.pop("tokens")
            window["tokens"] += tokens
            self.history["tokens"] += tokens
            bar.update(1)
            if self.step % self.config.log_every == 0 or self.step == self.config.max_steps:
                self._log_train(figures, window, bar)
            if self.config.eval_every and self.step % self.config.eval_every == 0:
                self._log_eval()
            if self.step % self.config.save_every == 0 and self.step < self.config.max_steps:
                self._save()
            if self._budget_spent(budget_s):
                stop_reason = "budget"
                break
        bar.close()
        return self.finish(stop_reason)

    def _budget_spent(self, budget_s: float) -> bool:
        """Whether the wall-clock budget is spent; ranks decide together (any rank's clock past the
        budget stops all), since a rank leaving the loop alone would leave the others waiting in
        their next gradient all-reduce."""
        if budget_s == math.inf:
            return False
        spent = torch.tensor([float(self._train_seconds() >= budget_s)], device=self.dist.device)
        if self.dist.world > 1:
            torch.distributed.all_reduce(spent, op=torch.distributed.ReduceOp.MAX)
        return bool(spent.item())

    def _train_seconds(self) -> float:
        """Training time of the whole run, across resumes (evaluation included, start-up excluded)."""
        return self.seconds_before + time.perf_counter() - self.started

    @property
    def micro_accumulation(self) -> int:
        return self.config.batch_size // self.dist.world // self.micro

    def train_step(self, micro_batches: list[dict]) -> dict:
        """One optimiser step over this rank's micro-batches; returns the step's (global) figures."""
        model, device = self.model, self.dist.device
        model.train()
        counts = torch.tensor([sum(int((b["labels"] != -100).sum()) for b in micro_batches),
                               sum(len(b["relation_labels"]) for b in micro_batches)], dtype=torch.float64)
        counts = all_reduce_sum(counts, self.dist)
        sums = torch.zeros(5, dtype=torch.float64)  # mlm loss, relation loss, mlm correct, relation correct, tokens
        for i, batch in enumerate(micro_batches):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            sync = i == len(micro_batches) - 1 or self.dist.world == 1
            with self._no_sync(sync), self._autocast():
                output = model(**batch)
                loss = output.mlm_loss_sum / counts[0].clamp(min=1)
                if output.relation_loss_sum is not None:
                    loss = loss + output.relation_loss_sum / counts[1].clamp(min=1)
                loss = loss * self.dist.world
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            sums += torch.tensor([output.mlm_loss_sum.item(),
                                  output.relation_loss_sum.item() if output.relation_loss_sum is not None else 0.0,
                                  float(output.mlm_correct), float(output.relation_correct or 0),
                                  float(batch["attention_mask"].sum())], dtype=torch.float64)
        grad_norm = self._optimizer_step()
        sums = all_reduce_sum(sums, self.dist)
        mlm_count, relation_count = max(counts[0].item(), 1), max(counts[1].item(), 1)
        figures = {"loss": (sums[0] / mlm_count + sums[1] / relation_count).item(), "mlm_loss": (sums[0] / mlm_count).item(),
                   "mlm_accuracy": (sums[2] / mlm_count).item(), "lr": self.scheduler.get_last_lr()[0],
                   "grad_norm": grad_norm, "tokens": int(sums[4])}
        if self.config.objective != "mlm-only":
            figures.update(relation_loss=(sums[1] / relation_count).item(), relation_accuracy=(sums[3] / relation_count).item())
        return figures

    def _optimizer_step(self) -> float:
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        parameters = [p for p in self.model.parameters() if p.grad is not None]
        clip = self.config.grad_clip if self.config.grad_clip > 0 else math.inf
        grad_norm = float(torch.nn.utils.clip_grad_norm_(parameters, clip))
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out MLM loss and accuracy, relation accuracy overall and per class, confusion matrix."""
        if self.heldout_sampler is None:
            return {}
        from linkbert.pairs import Relation

        model = self.model
        model.eval()
        n = min(self.config.eval_pairs, len(self.heldout_sampler))
        n_rel = NUM_RELATIONS[self.config.objective] or 3
        confusion = np.zeros((n_rel, n_rel), dtype=np.int64)
        mlm_sum = mlm_correct = mlm_count = 0.0
        for start in range(self.dist.rank * self.micro, n, self.micro * self.dist.world):
            pairs = [self.heldout_sampler.pair(0, i) for i in range(start, min(start + self.micro, n))]
            batch = {k: v.to(self.dist.device) for k, v in self.collator(pairs).items()}
            with self._autocast():
                output = _unwrap(model)(**batch)
            mlm_sum += output.mlm_loss_sum.item()
            mlm_correct += float(output.mlm_correct)
            mlm_count += int((batch["labels"] != -100).sum())
            if output.relation_logits is not None:
                predicted = output.relation_logits.argmax(-1).cpu().numpy()
                np.add.at(confusion, (batch["relation_labels"].cpu().numpy(), predicted), 1)
        totals = all_reduce_sum(torch.tensor([mlm_sum, mlm_correct, mlm_count], dtype=torch.float64), self.dist)
        confusion = all_reduce_sum(torch.from_numpy(confusion), self.dist).numpy()
        result = {"pairs": n, "mlm_loss": totals[0].item() / max(totals[2].item(), 1),
                  "mlm_accuracy": totals[1].item() / max(totals[2].item(), 1)}
        if self.config.objective != "mlm-only":
            names = [Relation(i).name.lower() for i in range(n_rel)]
            per_class = confusion.diagonal() / np.maximum(confusion.sum(1), 1)
            result.update(relation_accuracy=float(confusion.diagonal().sum() / max(confusion.sum(), 1)),
                          relation_accuracy_per_class=dict(zip(names, per_class.round(4).tolist())),
                          relation_chance=1 / n_rel, relation_confusion=confusion.tolist(),
                          relation_labels=names, relation_distribution=dict(zip(names, confusion.sum(1).tolist())))
        return result

    def finish(self, stop_reason: str) -> dict:
        if self.dist.main:
            log.info("stopped at step %d (%s)", self.step, stop_reason)
        evaluation = self._log_eval()
        checkpoint = self._save()
        summary = {"step": self.step, "stop_reason": stop_reason, "train_seconds": round(self.history["train_seconds"], 1),
                   "tokens": self.history["tokens"], "eval": evaluation, "checkpoint": str(checkpoint)}
        if self.dist.main:
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        self._close_logs()
        if self.dist.world > 1:
            # all ranks arrive together: destroying a gloo group while a peer is still busy (rank 0
            # writing the summary) hung one CI run at exit (pytorch/pytorch#75097)
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
        return summary

    # ---- helpers

    def _loader(self):
        dataset = StepBatches(self.train_sampler, self.collator, batch_size=self.config.batch_size,
                              micro_batch_size=self.micro, dist=self.dist, start_step=self.step,
                              max_steps=self.config.max_steps)
        workers = self.config.num_workers
        return torch.utils.data.DataLoader(
            dataset, batch_size=None, shuffle=False, num_workers=workers, pin_memory=self.dist.device.type == "cuda",
            persistent_workers=False, prefetch_factor=4 if workers else None,
            multiprocessing_context="spawn" if workers else None,
            # its own generator: creating the iterator must not draw from the global RNG, or a
            # resumed run's dropout masks would be one draw off an uninterrupted run's
            generator=torch.Generator().manual_seed(self.config.seed))

    def _autocast(self):
        if self.autocast is None:
            return torch.autocast(self.dist.device.type, enabled=False)
        return torch.autocast(self.dist.device.type, dtype=self.autocast)

    def _no_sync(self, sync: bool):
        import contextlib

        if sync or not hasattr(self.model, "no_sync"):
            return contextlib.nullcontext()
        return self.model.no_sync()

    def _save(self) -> Path | None:
        self.history["train_seconds"] = self._train_seconds()
        path = None
        if self.dist.main:
            path = save_checkpoint(self.out, self.step, self.model, self.optimizer, self.scheduler, self.config,
                                   self.tokenizer, self.history)
        if self.dist.world > 1:
            torch.distributed.barrier()
        return path

    def _open_logs(self) -> None:
        if not self.dist.main:
            return
        import yaml

        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(self.config), sort_keys=False))
        self.metrics_file = open(self.out / "metrics.jsonl", "a", encoding="utf-8")
        if self.config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard is not installed: no TensorBoard scalars (metrics.jsonl has them all)")
            else:
                self.tensorboard = SummaryWriter(str(self.out / "tensorboard"))

    def _close_logs(self) -> None:
        if self.metrics_file:
            self.metrics_file.close()
        if self.tensorboard:
            self.tensorboard.close()

    def _record(self, kind: str, figures: dict) -> None:
        if not self.dist.main:
            return
        self.metrics_file.write(json.dumps({"step": self.step, "kind": kind, **figures}) + "\n")
        self.metrics_file.flush()
        if self.tensorboard:
            for key, value in figures.items():
                if isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"{kind}/{key}", value, self.step)

    def _log_train(self, figures: dict, window: dict, bar) -> None:
        now = time.perf_counter()
        figures["tokens_per_s"] = round(window["tokens"] / max(now - window["time"], 1e-9))
        window.update(tokens=0, time=now)
        self._record("train", figures)
        bar.set_postfix({k: f"{figures[k]:.3g}" for k in ("loss", "mlm_loss", "relation_accuracy", "lr") if k in figures})
        if self.dist.main and not self.config.progress:
            log.info("step %d %s", self.step, " ".join(f"{k}={v:.4g}" for k, v in figures.items()))

    def _log_eval(self) -> dict:
        result = self.evaluate()
        if result:
            scalars = {k: v for k, v in result.items() if not isinstance(v, (list, dict))}
            for name, accuracy in result.get("relation_accuracy_per_class", {}).items():
                scalars[f"relation_accuracy_{name}"] = accuracy
            self._record("eval", scalars)
            if self.dist.main:
                per_class = result.get("relation_accuracy_per_class")
                log.info("eval at step %d: mlm_loss %.4f mlm_accuracy %.4f%s", self.step, result["mlm_loss"],
                         result["mlm_accuracy"], f" relation per class {per_class}" if per_class else "")
        return result

    def _progress(self):
        from tqdm import tqdm

        return tqdm(total=self.config.max_steps, initial=self.step, unit=" step", file=sys.stderr,
                    disable=not (self.config.progress and self.dist.main), dynamic_ncols=True)


def pretrain(config: PretrainConfig, data_dir: str, out_dir: str) -> dict:
    return Run(config, data_dir, out_dir).train()


def measure_step_seconds(config: PretrainConfig, data_dir: str, steps: int = 3) -> float:
    """Seconds per optimiser step of ``config`` on this machine, from a throwaway run (one warm-up
    step, then the median of ``steps``). A wall-clock budget divided by this gives a ``max_steps``
    whose learning-rate schedule ends when the budget does, instead of being cut mid-decay."""
    import statistics
    import tempfile

    probe = dataclasses.replace(config, max_steps=max(config.max_steps, steps + 1), tensorboard=False, progress=False)
    with tempfile.TemporaryDirectory(prefix="linkbert-probe-") as tmp:
        run = Run(probe, data_dir, tmp)
        batches = iter(run._loader())
        seconds = []
        for _ in range(steps + 1):
            started = time.perf_counter()
            run.train_step([next(batches) for _ in range(run.micro_accumulation)])
            if run.dist.device.type == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds[1:])


def configure(parser) -> None:
    parser.add_argument("--config", help="YAML config (configs/pretrain/<preset>.yaml)")
    parser.add_argument("--data", required=True, help="prepared corpus folder (linkbert prepare --out)")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, metrics.jsonl, config.yaml; resumed if it has a checkpoint")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override any config field, e.g. max_steps=200")


def main(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    config = load_config(args.config, args.overrides)
    summary = pretrain(config, args.data, args.out)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary, indent=2))
    return 0
