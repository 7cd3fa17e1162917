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
verifies (``checkpoint.py``, ``resume.py``); what may change on a resume, and what may not (the
run's identity: settings and corpus), is ``run_folder.py``'s. A non-finite loss stops the run
(exit status 1) without saving that state: its last checkpoint stays good.

The step boundary: a step's figures (its losses, gradient norm and the flags below, in one
all-reduce) are read back once the next step's forward and backward passes are queued, before its
update, so the device never waits for the host between steps. What they decide applies at their
step: a non-finite loss stops the run before the next update (never saved), the flags (the
budget spent, a stop signal SIGTERM or SIGUSR1, a failed log write, on any rank; every rank reads
the same sums) stop it with that step's state (the next step's gradients dropped, its dropout
draws undone); a checkpoint or evaluation of a step comes once its figures are read. A stop signal
ends with a checkpoint of the step and exit status 75 (``command.py``). A failure in a save, a log
write or the start-up on one rank stops every rank with its one line (``runtime.together``).

The pieces it runs on live elsewhere: its settings in ``settings.py``, its batches in
``data.py``, the run folder and its identity in ``run_folder.py``, its logs in ``run_log.py``,
the checkpoint it resumes from in ``resume.py``, its held-out evaluation in ``evaluation.py``;
the process, device, precision and collectives in ``linkbert.runtime``, stop signals in
``linkbert.lifetime``, the optimizer rule in
``linkbert.optim``, checkpoints in ``linkbert.checkpoint``, the model and the choice of its
backend in ``linkbert.model``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import sys
import time
from pathlib import Path

import torch

from linkbert import checkpoint, lifetime, optim, runtime
from linkbert.errors import ConfigError
from linkbert.files import naming, write_json
from linkbert.objectives import IGNORE_INDEX, OBJECTIVES
from linkbert.pretrain import resume, run_folder
from linkbert.pretrain.data import open_corpus, pretraining_data, step_loader
from linkbert.pretrain.evaluation import evaluate, statistic
from linkbert.pretrain.run_log import RunLog
from linkbert.pretrain.settings import PretrainConfig

log = logging.getLogger("linkbert.pretrain")

# a step's figures as read back: the statistics, then the flags every rank adds its own to
FIGURES = ("mlm_loss", "relation_loss", "mlm_accuracy", "relation_accuracy", "grad_norm", "tokens")
FLAGS = ("budget", *lifetime.STOP_SIGNALS, "failed")


@dataclasses.dataclass
class QueuedStep:
    """A step queued on the device: its figures on their way to the host, its learning rate, and
    when it was queued (the tokens/s it logs are counted up to then: its figures are read later)."""

    figures: runtime.Readback
    lr: float
    queued_at: float = dataclasses.field(default_factory=time.perf_counter)


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

    Everything that can refuse the run does so before the model is built, on every rank together
    (one rank's error stops all, with its message): the settings and corpus the ranks must agree on
    (``run_folder.check_ranks_agree``), the output folder (``run_folder.check_run_folder``), the
    corpus (``data.open_corpus``), a resume's settings, read before any tensor (:meth:`_check_resume`).
    """

    def __init__(self, config: PretrainConfig, data_dir: str, out_dir: str):
        self.config, self.out = config, Path(out_dir)
        self.dist = runtime.setup_distributed(config.distributed, config.collective_timeout_minutes)
        settings = runtime.all_gather_objects(dataclasses.asdict(config), self.dist)
        run_folder.check_ranks_agree(settings)
        with runtime.together(self.dist):
            self._open(data_dir)
        corpora = runtime.all_gather_objects(run_folder.corpus_record(self.corpus), self.dist)
        run_folder.check_ranks_agree(settings, corpora)
        resumed = resume.agreed_checkpoint(self.out, self.dist, check=self._check_resume)
        with runtime.together(self.dist):
            self._build(resumed)
        if self.dist.group:  # wrapped before compiling: torch.compile then splits its graph at DDP's buckets
            self.model = runtime.data_parallel(self.model, self.dist)
        if config.compile:
            runtime.set_compile_cache(run_folder.compile_cache(self.out, config.compile_cache, config.compile,
                                                               runtime.USER_COMPILE_CACHE))
            self.model = torch.compile(self.model)
        self.log = RunLog(self.out, enabled=self.dist.main, tracker=config.tracker)
        self.stops = lifetime.StopRequests()
        self.budget_s = config.budget_minutes * 60 if config.budget_minutes else math.inf

    def _open(self, data_dir: str) -> None:
        """The checks of the batch split and the output folder, the corpus and its tokenizer."""
        config = self.config
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

    def _build(self, resumed: checkpoint.Loaded | None) -> None:
        """The model, its data, optimiser and schedule, as ``resumed`` left them (None: fresh)."""
        from linkbert.model.heads import max_input_length
        from linkbert.model.loading import attention_implementation

        config = self.config
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
            log.info("device %s, backend %s, %d threads, OpenMP waiting: %s, process group: %s", self.dist.device,
                     self.model.backend, torch.get_num_threads(), runtime.describe_waiting(),
                     f"{self.dist.backend}, {self.dist.world} rank(s), DDP" if self.dist.group else "none")
        if self.dist.rank:  # dropout differs across ranks, as their data does; rank 0 keeps the seed's stream
            torch.manual_seed(config.seed + self.dist.rank)
        if resumed:
            self._resume(resumed)

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
        resume.restore_rng(trainer, self.dist, seed=self.config.seed, step=state["step"])
        self.step, self.history = state["step"], state["history"]
        self.saved_step, self.last_checkpoint = self.step, resumed.path
        if self.dist.main:
            log.info("resumed from %s at step %d", resumed.path, self.step)
            changes = run_folder.changed_settings(state["config"], dataclasses.asdict(self.config),
                                                  dataclasses.asdict(PretrainConfig()))
            if changes:
                log.info("settings changed since the checkpoint, applied from step %d on: %s", self.step,
                         ", ".join(changes))

    def _check_resume(self, path: Path, state: dict) -> None:
        """Resuming continues *that* run (``run_folder.check_resume``), checked before any of the
        checkpoint's tensors is read."""
        run_folder.check_resume(path, state, settings=dataclasses.asdict(self.config),
                                defaults=dataclasses.asdict(PretrainConfig()), corpus=self.corpus,
                                tokenizer=self.tokenizer)

    # ---- named steps

    def train(self, stop_signals: bool = False) -> dict:
        """Train to the end; ``stop_signals`` (the ``pretrain`` command's): SIGTERM and SIGUSR1 stop
        the run after its step, saved (else they end the process: a caller's own stages go on)."""
        with runtime.together(self.dist):
            self.log.open(dataclasses.asdict(self.config))
        try:
            with self.stops if stop_signals else contextlib.nullcontext():
                return self.finish(self._loop())
        except BaseException:
            self.log.close()
            raise

    def _loop(self) -> str:
        batches = iter(self._loader())
        self.started = time.perf_counter()
        self.seconds_before = self.history["train_seconds"]
        bar = self._progress()
        window = {"tokens": 0, "time": time.perf_counter()}
        pending, stop_reason = None, None
        while self.step < self.config.max_steps:
            micro_batches = [next(batches) for _ in range(self.micro_accumulation)]
            rng = checkpoint.rng_state()  # before the next step's dropout: what a checkpoint of this step holds
            sums, counts = self._forward_backward(micro_batches)
            if pending is not None:  # this step's figures, read while the device runs the next one's passes
                stop_reason, pending = self._account(*pending, window, bar), None
                if stop_reason:  # the next step's passes leave no trace: gradients dropped, dropout's draws undone
                    self.optimizer.zero_grad(set_to_none=True)
                    checkpoint.set_rng_state(rng)
                    break
                if self.config.eval_every and self.step % self.config.eval_every == 0:
                    self._log_eval()
                if self.step % self.config.save_every == 0:
                    self._save(rng)
            pending = (self.step + 1, self._finish_step(sums, counts))
            self.step += 1
            bar.update(1)
        if pending is not None:  # the last step's, read at the end
            stop_reason = self._account(*pending, window, bar)
        bar.close()
        return stop_reason or "max_steps"

    def _account(self, step: int, queued: QueuedStep, window: dict, bar) -> str | None:
        """Read step ``step``'s figures (the one readback), stop on a non-finite loss, log them;
        returns why the run stops (``budget``, a signal's name) or None. Every rank reads the same
        all-reduced flags here, so all decide alike."""
        figures, flags = self._read_figures(queued)
        self._check_finite(step, figures)
        tokens = figures.pop("tokens")
        window["tokens"] += tokens
        self.history["tokens"] += tokens
        if step % self.config.log_every == 0 or step == self.config.max_steps:
            self._log_train(step, figures, window, bar, queued.queued_at)
        if flags["failed"]:
            runtime.raise_failure(self.log.failure, self.dist)
        reason = next((name for name in lifetime.STOP_SIGNALS if flags[name]), None)
        if reason and self.dist.main:
            log.warning("%s received: stopping after step %d with a checkpoint", reason, self.step)
        return reason or ("budget" if flags["budget"] else None)

    def _check_finite(self, step: int, figures: dict) -> None:
        """Stop before a NaN or infinite loss (or, without fp16's loss scaling, which skips such
        steps itself, gradient norm) reaches a checkpoint: the weights after this step are
        garbage, and every later step and checkpoint would be too."""
        loss, grad_norm = figures["loss"], figures["grad_norm"]
        if math.isfinite(loss) and (self.scaler is not None or math.isfinite(grad_norm)):
            return
        where = f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else "no checkpoint yet"
        raise TrainingFailed(f"step {step} has a loss of {loss:g} and a gradient norm of {grad_norm:g}: "
                             f"stopped without saving ({where}); resume with a lower lr, or another precision")

    def _train_seconds(self) -> float:
        """Training time of the whole run, across resumes (evaluation included, start-up excluded)."""
        return self.seconds_before + time.perf_counter() - self.started

    @property
    def micro_accumulation(self) -> int:
        return self.config.batch_size // self.dist.world // self.micro

    def train_step(self, micro_batches: list[dict]) -> dict:
        """One optimiser step over this rank's micro-batches, its figures read back at once (the
        loop reads them once the next step's passes are queued); returns the step's global figures."""
        return self._read_figures(self._queue_step(micro_batches))[0]

    def _queue_step(self, micro_batches: list[dict]) -> QueuedStep:
        """One optimiser step, queued on the device; its figures on their way to the host."""
        return self._finish_step(*self._forward_backward(micro_batches))

    def _forward_backward(self, micro_batches: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """The passes of one step over this rank's micro-batches, queued on the device: the
        gradients, and ``(sums, counts)``: its statistics and the global counts, on the device.

        Every statistic stays on the process group's device, where the collectives run (an NCCL
        group has no CPU backend), and nothing is read back: no host sync in the step
        (``benchmarks/device_step_profile.py`` counts them). The global counts come from the host
        batches before they move."""
        self.model.train()
        counts = self._global_counts(micro_batches)
        # mlm loss, relation loss, mlm correct, relation correct, tokens
        sums = torch.zeros(5, dtype=torch.float64, device=self.dist.device)
        for i, batch in enumerate(micro_batches):
            self._micro_step(*self._to_device(batch), counts, sums,
                             sync=i == len(micro_batches) - 1 or not self.dist.group)
        return sums, counts

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
        sums[:4] += torch.stack([statistic(output.mlm_loss_sum, sums), statistic(output.relation_loss_sum, sums),
                                 statistic(output.mlm_correct, sums), statistic(output.relation_correct, sums)])
        sums[4] += tokens

    def _finish_step(self, sums: torch.Tensor, counts: torch.Tensor) -> QueuedStep:
        """The optimiser step, then the step's figures and every rank's flags in one all-reduce,
        on their way to the host (:meth:`_read_figures` reads them)."""
        grad_norm = optim.step(self.optimizer, self.scheduler, self.model.parameters(),
                               max_grad_norm=self.config.max_grad_norm, scaler=self.scaler)
        flags = runtime.host_to_device(torch.tensor(self._flags(), dtype=torch.float64), self.dist.device)
        sums = runtime.all_reduce_sum(torch.cat([sums, flags]), self.dist)
        values = torch.cat([sums[:4] / counts.repeat(2), grad_norm.detach().to(sums).reshape(1), sums[4:]])
        return QueuedStep(runtime.Readback(values), self.scheduler.get_last_lr()[0])

    def _flags(self) -> list[float]:
        """This rank's :data:`FLAGS`: its clock past the budget, a stop signal it received, a log
        write it could not do (kept by ``RunLog``, raised on every rank once all read the flag)."""
        spent = self.budget_s != math.inf and self._train_seconds() >= self.budget_s
        return [float(spent), *(float(self.stops.received == name) for name in lifetime.STOP_SIGNALS),
                float(self.log.failure is not None)]

    def _read_figures(self, queued: QueuedStep) -> tuple[dict, dict]:
        """``(figures, flags)`` of a step: the one readback."""
        values = queued.figures.values()
        named = dict(zip(FIGURES, values))
        flags = dict(zip(FLAGS, (value > 0 for value in values[len(FIGURES):])))
        figures = {"loss": named["mlm_loss"] + named["relation_loss"], "mlm_loss": named["mlm_loss"],
                   "mlm_accuracy": named["mlm_accuracy"], "lr": queued.lr,
                   "grad_norm": named["grad_norm"], "tokens": int(named["tokens"])}
        if self.config.objective != "mlm-only":
            figures.update(relation_loss=named["relation_loss"], relation_accuracy=named["relation_accuracy"])
        return figures, flags

    def finish(self, stop_reason: str) -> dict:
        if self.dist.main:
            log.info("stopped at step %d (%s)", self.step, stop_reason)
        # a stop signal leaves the job little time: the checkpoint first, no evaluation
        evaluation = {} if stop_reason in lifetime.STOP_SIGNALS else self._log_eval()
        if self.saved_step != self.step:  # a run resumed at its end, or stopped right after a save, has it
            self._save()
        self.history["train_seconds"] = self._train_seconds()
        summary = {"step": self.step, "stop_reason": stop_reason, "train_seconds": round(self.history["train_seconds"], 1),
                   "tokens": self.history["tokens"], "eval": evaluation, "checkpoint": str(self.last_checkpoint)}
        with runtime.together(self.dist):
            if self.log.failure is not None:
                raise self.log.failure
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
        if sync or not hasattr(self.model, "no_sync"):
            return contextlib.nullcontext()
        return self.model.no_sync()

    def _save(self, rng: dict | None = None) -> None:
        """A checkpoint of this step; ``rng``: the random streams as the step left them (None: now)."""
        self.history["train_seconds"] = self._train_seconds()
        rng_per_rank = runtime.all_gather_objects(rng or checkpoint.rng_state(), self.dist)  # each rank's own
        with runtime.together(self.dist):  # rank 0 writes; every rank learns whether it could
            if self.log.failure is not None:
                raise self.log.failure
            if self.dist.main:
                trainer = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                           "scaler": self.scaler.state_dict() if self.scaler is not None else {},
                           "rng_per_rank": rng_per_rank}
                state = {"config": dataclasses.asdict(self.config), "corpus": run_folder.corpus_record(self.corpus),
                         "history": self.history}
                checkpoint.save(self.out, self.step, model=self.model, tokenizer=self.tokenizer, trainer=trainer,
                                state=state, keep=self.config.keep_checkpoints)
        self.saved_step, self.last_checkpoint = self.step, checkpoint.folder_of(self.out, self.step)

    def _log_train(self, step: int, figures: dict, window: dict, bar, now: float) -> None:
        figures["tokens_per_s"] = round(window["tokens"] / max(now - window["time"], 1e-9))
        window.update(tokens=0, time=now)
        self.log.record(step, "train", figures)
        bar.set_postfix({k: f"{figures[k]:.3g}" for k in ("loss", "mlm_loss", "relation_accuracy", "lr") if k in figures})
        if self.dist.main and not self.config.progress:
            log.info("step %d %s", step, " ".join(f"{k}={v:.4g}" for k, v in figures.items()))

    def _log_eval(self) -> dict:
        """Held-out MLM loss and accuracy, relation accuracy overall and per class (``evaluation.py``), logged."""
        result = evaluate(self.model, self.heldout_sampler, self.collator, self.dist, micro_batch_size=self.micro,
                          eval_pairs=self.config.eval_pairs, objective=self.config.objective,
                          autocast_dtype=self.autocast, forward_options=self.forward_options)
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

    probe = dataclasses.replace(config, max_steps=max(config.max_steps, steps + 1), tracker="none", progress=False,
                                budget_minutes=0.0)
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
