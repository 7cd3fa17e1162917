"""A pretraining run: masked LM + document relation prediction on a prepared corpus
(``linkbert pretrain``: ``command.py``).

The run is built from named steps: ``Run(...)`` (settings, distributed, data, model, optimiser,
resume) -> ``train`` (a loop of ``train_step``s, with logging, evaluation and checkpoints) ->
``finish``. Everything a step needs to be reproduced is a function of (seed, step): the pairs and
their masks are keyed by their position in the data stream, so a resumed run, or a run on any
number of ranks with the same global batch, sees exactly the same batches.

Loss normalisation: the MLM loss is a mean over the masked tokens of the *whole global batch*
and the relation loss a mean over its pairs, whatever the number of ranks and micro-batches.
Each micro-batch contributes its loss sums divided by the global counts (all-reduced before the
backward pass), times the world size because DistributedDataParallel averages gradients.

Resuming: ``--out`` with a checkpoint continues that run from its newest checkpoint that
verifies (``checkpoint.py``). What decides the run's batches and model must stay: the settings
of ``run_folder.RUN_IDENTITY`` and the corpus (its fingerprint and its tokenizer); a resume with
another is refused, naming both, before any state is loaded (``run_folder.py``). Everything else
may change, and applies from the resumed step on, since it changes how the same run is optimised
or run, not which:

* the schedule and the optimizer: ``lr``, ``warmup_steps``, ``max_steps`` (at least the
  checkpoint's step; a longer one extends the linear decay, so the learning rate jumps to the
  new schedule's value), ``weight_decay``, ``adam_*``, ``max_grad_norm`` (lowering ``lr`` is the
  way on after a non-finite loss);
* ``dropout``, ``precision``, ``compile``, ``backend`` (a checkpoint is the same whichever backend
  wrote it: a run moves between a CPU and a GPU machine), ``micro_batch_size`` (the loss is
  normalised over the global batch whatever its split), ``eval_pairs``;
* ``budget_minutes`` (the whole run's training time, across resumes), ``log_every``,
  ``eval_every``, ``save_every``, ``keep_checkpoints``, ``num_workers``, ``progress``,
  ``tensorboard``, ``overwrite``.

The changes are logged, and ``config.yaml`` records the settings the run uses now. A non-finite
loss stops the run (exit status 1) without saving that state: its last checkpoint stays good.

The pieces it runs on live elsewhere: its settings in ``settings.py``, its batches in
``data.py``, the run folder and its identity in ``run_folder.py``, its logs in ``run_log.py``;
the process, device and precision in ``linkbert.runtime``, the optimizer rule in
``linkbert.optim``, checkpoints in ``linkbert.checkpoint``, the model and the choice of its
backend in ``linkbert.model``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from linkbert import checkpoint, optim, runtime
from linkbert.errors import ConfigError
from linkbert.files import naming, write_json
from linkbert.objectives import IGNORE_INDEX, OBJECTIVES, relation_names
from linkbert.pretrain import run_folder
from linkbert.pretrain.data import open_corpus, pretraining_data, step_loader
from linkbert.pretrain.run_log import RunLog
from linkbert.pretrain.settings import PretrainConfig

log = logging.getLogger("linkbert.pretrain")


def initial_model(*, preset: str, init: str, objective: str, vocab_size: int, dropout: float, seed: int,
                  backend: str = "auto", attention: str = "sdpa", device="cpu", attention_dropout: float | None = None):
    """The model a run starts from: ``preset`` from scratch, or the checkpoint ``init``; its
    fresh weights drawn from ``seed``; ``backend`` as ``model.loading.resolve_backend`` decides
    it for ``device``; ``attention_dropout`` None: ``dropout``."""
    from linkbert.model.loading import init_model, resolve_backend

    backend = resolve_backend(backend, init, torch.device(device))
    torch.manual_seed(seed)
    return init_model(preset if init == "scratch" else init, vocab_size=vocab_size,
                      num_relations=OBJECTIVES[objective], backend=backend, attention=attention,
                      hidden_dropout_prob=dropout,
                      attention_probs_dropout_prob=dropout if attention_dropout is None else attention_dropout)


# -- the loop ------------------------------------------------------------------------------------

class TrainingFailed(RuntimeError):
    """Training cannot go on (a non-finite loss): not the user's mistake, but the run stops with
    one line and exit status 1, its last good checkpoint kept."""


class Run:
    """One pretraining run: ``Run(config, data, out).train()``.

    Everything that can refuse the run does so before the model is built: the output folder
    (``run_folder.check_run_folder``), the corpus (``data.open_corpus``), and a resume's
    settings, read from the checkpoint's trainer_state.json before any tensor (:meth:`_check_resume`).
    """

    def __init__(self, config: PretrainConfig, data_dir: str, out_dir: str):
        self.config, self.out = config, Path(out_dir)
        self.dist = runtime.setup_distributed()
        if self.dist.device.type == "cpu":
            runtime.retain_freed_memory()
        if config.batch_size % self.dist.world:
            raise ConfigError(f"batch_size {config.batch_size} must be divisible by the {self.dist.world} ranks")
        local = config.batch_size // self.dist.world
        self.micro = config.micro_batch_size or local
        if local % self.micro:
            raise ConfigError(f"the per-rank batch {local} must be a multiple of micro_batch_size {self.micro}")
        run_folder.check_run_folder(self.out, data_dir, overwrite=config.overwrite)
        self.corpus = open_corpus(data_dir)
        self.tokenizer = self.corpus.tokenizer()
        resumed = self._agreed_checkpoint()
        from linkbert.model.heads import max_input_length
        from linkbert.model.loading import attention_implementation

        self.model = initial_model(preset=config.preset, init=config.init, objective=config.objective,
                                   vocab_size=self.corpus.store.vocab_size, dropout=config.dropout,
                                   seed=config.seed, backend=config.backend, device=self.dist.device,
                                   attention=attention_implementation(config.attention, self.dist.device,
                                                                      config.attention_dropout),
                                   attention_dropout=config.attention_dropout).to(self.dist.device)
        self.model.norm_precision(config.norm_precision)
        # what the forward takes beyond the batch
        self.forward_options = {"max_predictions": config.max_predictions, "max_length": config.max_length,
                                "mlm_loss": config.mlm_loss}
        data = pretraining_data(
            self.corpus, max_length=config.max_length, max_positions=max_input_length(self.model.config),
            seed=config.seed, objective=config.objective, p_contiguous=config.p_contiguous,
            p_random=config.p_random, p_linked=config.p_linked, linked_sampling=config.linked_sampling,
            linked_segment=config.linked_segment, mlm_probability=config.mlm_probability,
            whole_word_mask=config.whole_word_mask, heldout_fraction=config.heldout_fraction,
            graph=config.graph or None, max_predictions=config.max_predictions, compile=config.compile,
            flatten=self.model.takes_flattened_pairs)
        self.train_sampler, self.heldout_sampler, self.collator = data.train, data.heldout, data.collator
        self.optimizer = optim.adamw(self.model, lr=config.lr, weight_decay=config.weight_decay,
                                     betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps)
        self.scheduler = optim.linear_schedule(self.optimizer, warmup_steps=config.warmup_steps,
                                               total_steps=config.max_steps)
        self.autocast = runtime.autocast_dtype(config.precision, self.dist.device)
        self.scaler = runtime.grad_scaler(self.autocast, self.dist.device)
        self.step, self.history = 0, {"train_seconds": 0.0, "tokens": 0}
        self.saved_step, self.last_checkpoint = None, None
        if self.dist.main:
            log.info("device %s, backend %s, %d threads, OpenMP waiting: %s", self.dist.device, self.model.backend,
                     torch.get_num_threads(), runtime.describe_waiting())
        if self.dist.rank:  # dropout differs across ranks, as their data does; rank 0 keeps the seed's stream
            torch.manual_seed(config.seed + self.dist.rank)
        if resumed:
            self._resume(resumed)
        if config.compile:
            self.model = torch.compile(self.model)
        if self.dist.world > 1:
            device_ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.log = RunLog(self.out, enabled=self.dist.main, tensorboard=config.tensorboard)

    # ---- resuming

    def _resume(self, resumed: checkpoint.Loaded) -> None:
        trainer, state = resumed.trainer, resumed.state
        checkpoint.apply_weights(self.model, resumed.weights, resumed.path)
        self.optimizer.load_state_dict(trainer["optimizer"])
        self.scheduler.load_state_dict(trainer["scheduler"])
        optim.retarget(self.optimizer, self.scheduler, lr=self.config.lr, weight_decay=self.config.weight_decay,
                       betas=(self.config.adam_beta1, self.config.adam_beta2), eps=self.config.adam_eps)
        if self.scaler is not None and trainer.get("scaler"):
            self.scaler.load_state_dict(trainer["scaler"])
        self._restore_rng(trainer, state["step"])
        self.step, self.history = state["step"], state["history"]
        self.saved_step, self.last_checkpoint = self.step, resumed.path
        if self.dist.main:
            log.info("resumed from %s at step %d", resumed.path, self.step)
            self._log_changes(state["config"])

    def _agreed_checkpoint(self) -> checkpoint.Loaded | None:
        """The newest good checkpoint, the same one on every rank. Each rank finds and verifies
        it itself (so each reads the files it loads); on several nodes without shared storage
        they could find different ones, or one could find none: then every rank stops with the
        same error instead of training on mixed states or waiting on each other for ever."""
        error, resumed = None, None
        try:
            resumed = checkpoint.load_newest(self.out, check=self._check_resume)
        except Exception as e:  # noqa: BLE001 -- re-raised below, once every rank knows
            error = e
        mine = -2 if error else (resumed.state["step"] if resumed else -1)
        low, high = runtime.min_max(mine, self.dist)
        if error:
            raise error
        if low == -2:
            raise ConfigError(f"another rank could not resume from {self.out} (its error is in its log)")
        if low != high:
            found = "none" if low == -1 else f"step {low}"
            raise ConfigError(f"the ranks found different checkpoints in {self.out} ({found} to step {high}): every "
                              "node must read the same run folder (shared storage), or copy it to each node first")
        return resumed

    def _restore_rng(self, trainer: dict, step: int) -> None:
        """This rank's own generator states, as saved; a checkpoint of another number of ranks
        has none for it: it is seeded from (seed, rank, step), so its dropout differs from the
        other ranks' but the run is not exact (said in the log)."""
        state = checkpoint.rank_rng_state(trainer, self.dist.rank, self.dist.world)
        if state is not None:
            checkpoint.set_rng_state(state)
            return
        torch.manual_seed(hash((self.config.seed, self.dist.rank, step)) & 0x7FFFFFFF)
        log.warning("rank %d: the checkpoint holds no random-number state for it (%d ranks now): its dropout is "
                    "reseeded, so this resume is not bit-exact", self.dist.rank, self.dist.world)

    def _check_resume(self, path: Path, state: dict) -> None:
        """Resuming continues *that* run (``run_folder.check_resume``), checked before any of the
        checkpoint's tensors is read."""
        run_folder.check_resume(path, state, settings=dataclasses.asdict(self.config),
                                defaults=dataclasses.asdict(PretrainConfig()), corpus=self.corpus,
                                tokenizer=self.tokenizer)

    def _log_changes(self, saved: dict) -> None:
        changes = run_folder.changed_settings(saved, dataclasses.asdict(self.config),
                                              dataclasses.asdict(PretrainConfig()))
        if changes:
            log.info("settings changed since the checkpoint, applied from step %d on: %s", self.step,
                     ", ".join(changes))

    # ---- named steps

    def train(self) -> dict:
        self.log.open(dataclasses.asdict(self.config))
        try:
            stop_reason = self._loop()
        except BaseException:
            self.log.close()
            raise
        return self.finish(stop_reason)

    def _loop(self) -> str:
        batches = iter(self._loader())
        self.started = time.perf_counter()
        self.seconds_before = self.history["train_seconds"]
        budget_s = self.config.budget_minutes * 60 if self.config.budget_minutes else math.inf
        bar = self._progress()
        window = {"tokens": 0, "time": time.perf_counter()}
        stop_reason = "max_steps"
        while self.step < self.config.max_steps:
            figures = self.train_step([next(batches) for _ in range(self.micro_accumulation)])
            self._check_finite(figures)
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
        return stop_reason

    def _check_finite(self, figures: dict) -> None:
        """Stop before a NaN or infinite loss (or, without fp16's loss scaling, which skips such
        steps itself, gradient norm) reaches a checkpoint: the weights after this step are
        garbage, and every later step and checkpoint would be too."""
        loss, grad_norm = figures["loss"], figures["grad_norm"]
        if math.isfinite(loss) and (self.scaler is not None or math.isfinite(grad_norm)):
            return
        where = f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else "no checkpoint yet"
        raise TrainingFailed(f"step {self.step + 1} has a loss of {loss:g} and a gradient norm of {grad_norm:g}: "
                             f"stopped without saving ({where}); resume with a lower lr, or another precision")

    def _budget_spent(self, budget_s: float) -> bool:
        """Whether the wall-clock budget is spent; ranks decide together (any rank's clock past the
        budget stops all), since a rank leaving the loop alone would leave the others waiting in
        their next gradient all-reduce."""
        if budget_s == math.inf:
            return False
        return runtime.any_rank(self._train_seconds() >= budget_s, self.dist)

    def _train_seconds(self) -> float:
        """Training time of the whole run, across resumes (evaluation included, start-up excluded)."""
        return self.seconds_before + time.perf_counter() - self.started

    @property
    def micro_accumulation(self) -> int:
        return self.config.batch_size // self.dist.world // self.micro

    def train_step(self, micro_batches: list[dict]) -> dict:
        """One optimiser step over this rank's micro-batches; returns the step's (global) figures.

        Every statistic stays on the process group's device, where the collectives run (an NCCL
        group has no CPU backend), and is read back once, after the optimiser step: no host
        sync inside a micro-batch (``benchmarks/device_step_profile.py`` counts them). The
        global counts come from the host batches before they move."""
        self.model.train()
        counts = self._global_counts(micro_batches)
        # mlm loss, relation loss, mlm correct, relation correct, tokens
        sums = torch.zeros(5, dtype=torch.float64, device=self.dist.device)
        for i, batch in enumerate(micro_batches):
            self._micro_step(*self._to_device(batch), counts, sums,
                             sync=i == len(micro_batches) - 1 or self.dist.world == 1)
        return self._finish_step(sums, counts)

    def _global_counts(self, micro_batches: list[dict]) -> torch.Tensor:
        """Masked positions and labelled pairs of the whole step, all ranks: what the losses are
        divided by, so that the gradient is the global batch's mean whatever its split."""
        counts = torch.tensor([sum(int((b["labels"] != IGNORE_INDEX).sum()) for b in micro_batches),
                               sum(len(b["relation_labels"]) for b in micro_batches)], dtype=torch.float64)
        return runtime.all_reduce_sum(runtime.host_to_device(counts, self.dist.device), self.dist).clamp(min=1)

    def _to_device(self, batch: dict) -> tuple[dict, int]:
        """``(the batch on the device, its real tokens)``, both from the host tensors (read here
        at no device cost). An all-ones attention mask is dropped: it lets SDPA pick its flash
        kernels, and transformers would otherwise check the mask on the device."""
        tokens = int(batch["attention_mask"].sum())
        moved = {k: v.to(self.dist.device, non_blocking=True) for k, v in batch.items()}
        if tokens == batch["attention_mask"].numel():
            moved["attention_mask"] = None
        return moved, tokens

    def _micro_step(self, batch: dict, tokens: int, counts: torch.Tensor, sums: torch.Tensor, sync: bool) -> None:
        """Forward and backward of one micro-batch already on the device; its statistics added to
        ``sums`` there (nothing is read back)."""
        with self._no_sync(sync), self._autocast():
            output = self.model(**batch, **self.forward_options)
            loss = output.mlm_loss_sum / counts[0]
            if output.relation_loss_sum is not None:
                loss = loss + output.relation_loss_sum / counts[1]
            loss = loss * self.dist.world
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        sums[:4] += torch.stack([_stat(output.mlm_loss_sum, sums), _stat(output.relation_loss_sum, sums),
                                 _stat(output.mlm_correct, sums), _stat(output.relation_correct, sums)])
        sums[4] += tokens

    def _finish_step(self, sums: torch.Tensor, counts: torch.Tensor) -> dict:
        """The optimiser step, then the step's figures: one all-reduce and one readback."""
        grad_norm = optim.step(self.optimizer, self.scheduler, self.model.parameters(),
                               max_grad_norm=self.config.max_grad_norm, scaler=self.scaler)
        sums = runtime.all_reduce_sum(sums, self.dist)
        values = torch.cat([sums[:4] / counts.repeat(2), grad_norm.detach().to(sums).reshape(1), sums[4:]])
        mlm_loss, relation_loss, mlm_accuracy, relation_accuracy, grad_norm, tokens = values.tolist()
        figures = {"loss": mlm_loss + relation_loss, "mlm_loss": mlm_loss, "mlm_accuracy": mlm_accuracy,
                   "lr": self.scheduler.get_last_lr()[0], "grad_norm": grad_norm, "tokens": int(tokens)}
        if self.config.objective != "mlm-only":
            figures.update(relation_loss=relation_loss, relation_accuracy=relation_accuracy)
        return figures

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Held-out MLM loss and accuracy, relation accuracy overall and per class, confusion matrix."""
        if self.heldout_sampler is None:
            return {}
        model = self.model
        model.eval()
        n = min(self.config.eval_pairs, len(self.heldout_sampler))
        n_rel = OBJECTIVES[self.config.objective] or 3
        device = self.dist.device
        confusion = torch.zeros(n_rel * n_rel, dtype=torch.int64, device=device)
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # mlm loss, mlm correct, mlm count
        for start in range(self.dist.rank * self.micro, n, self.micro * self.dist.world):
            pairs = [self.heldout_sampler.pair(0, i) for i in range(start, min(start + self.micro, n))]
            batch = {k: v.to(device) for k, v in self.collator(pairs).items()}
            with self._autocast():
                output = runtime.unwrap(model)(**batch, **self.forward_options)
            totals += torch.stack([_stat(output.mlm_loss_sum, totals), _stat(output.mlm_correct, totals),
                                   _stat(output.mlm_count, totals)])
            if output.relation_logits is not None:
                cells = batch["relation_labels"] * n_rel + output.relation_logits.argmax(-1)
                confusion += torch.bincount(cells, minlength=n_rel * n_rel)
        totals = runtime.all_reduce_sum(totals, self.dist).tolist()
        confusion = runtime.all_reduce_sum(confusion, self.dist).view(n_rel, n_rel).cpu().numpy()
        totals = {"mlm_loss": totals[0], "mlm_correct": totals[1], "mlm_count": max(totals[2], 1)}
        result = {"pairs": n, "mlm_loss": totals["mlm_loss"] / totals["mlm_count"],
                  "mlm_accuracy": totals["mlm_correct"] / totals["mlm_count"]}
        if self.config.objective != "mlm-only":
            names = relation_names(n_rel)
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
        if self.saved_step != self.step:  # a run resumed at its end, or stopped right after a save, has it
            self._save()
        self.history["train_seconds"] = self._train_seconds()
        summary = {"step": self.step, "stop_reason": stop_reason, "train_seconds": round(self.history["train_seconds"], 1),
                   "tokens": self.history["tokens"], "eval": evaluation, "checkpoint": str(self.last_checkpoint)}
        if self.dist.main:
            with naming(self.out / "summary.json"):
                write_json(self.out / "summary.json", summary, indent=2)
        self.log.close()
        runtime.shutdown(self.dist)
        return summary

    # ---- helpers

    def _loader(self):
        return step_loader(self.train_sampler, self.collator, self.dist, batch_size=self.config.batch_size,
                           micro_batch_size=self.micro, start_step=self.step, max_steps=self.config.max_steps,
                           num_workers=self.config.num_workers, seed=self.config.seed)

    def _autocast(self):
        return runtime.autocast(self.autocast, self.dist.device)

    def _no_sync(self, sync: bool):
        import contextlib

        if sync or not hasattr(self.model, "no_sync"):
            return contextlib.nullcontext()
        return self.model.no_sync()

    def _save(self) -> None:
        self.history["train_seconds"] = self._train_seconds()
        rng_per_rank = runtime.all_gather_objects(checkpoint.rng_state(), self.dist)  # every rank's own streams
        if self.dist.main:
            trainer = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                       "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                       "rng_per_rank": rng_per_rank}
            state = {"config": dataclasses.asdict(self.config), "corpus": run_folder.corpus_record(self.corpus),
                     "history": self.history}
            self.last_checkpoint = checkpoint.save(self.out, self.step, model=self.model, tokenizer=self.tokenizer,
                                                   trainer=trainer, state=state, keep=self.config.keep_checkpoints)
        self.saved_step = self.step
        runtime.barrier(self.dist)

    def _log_train(self, figures: dict, window: dict, bar) -> None:
        now = time.perf_counter()
        figures["tokens_per_s"] = round(window["tokens"] / max(now - window["time"], 1e-9))
        window.update(tokens=0, time=now)
        self.log.record(self.step, "train", figures)
        bar.set_postfix({k: f"{figures[k]:.3g}" for k in ("loss", "mlm_loss", "relation_accuracy", "lr") if k in figures})
        if self.dist.main and not self.config.progress:
            log.info("step %d %s", self.step, " ".join(f"{k}={v:.4g}" for k, v in figures.items()))

    def _log_eval(self) -> dict:
        result = self.evaluate()
        if result:
            scalars = {k: v for k, v in result.items() if not isinstance(v, (list, dict))}
            for name, accuracy in result.get("relation_accuracy_per_class", {}).items():
                scalars[f"relation_accuracy_{name}"] = accuracy
            self.log.record(self.step, "eval", scalars)
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


def _stat(value: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A statistic of a forward pass as a float64 scalar on the statistics' device (0 where the
    model has none, e.g. no relation head), without reading it back to the host."""
    if value is None:
        return torch.zeros((), dtype=like.dtype, device=like.device)
    return value.detach().to(like.dtype)
