"""Pretraining throughput: stock HF ``BertForPreTraining`` against ``LinkPretrainingModel``.

    nice -n 5 python benchmarks/pretrain_throughput.py                 # tiny and mini, precision auto, CPU
    nice -n 5 python benchmarks/pretrain_throughput.py --configs mini --precisions bf16 --steps 5
    python benchmarks/pretrain_throughput.py --data prepared/wikispeedia   # batches from a prepared corpus
    python benchmarks/pretrain_throughput.py --gpu --max-predictions 100  # base, seq 512, bf16, CUDA, transformers backend
    python benchmarks/pretrain_throughput.py --configs tiny --own-backend transformers   # the GPU's backend on the CPU
    python benchmarks/pretrain_throughput.py --gpu --configs base,modernbert-base --config configs/pretrain/base.yaml \
        --variants eager,sdpa,chunked-loss,norms-autocast,liger-loss   # the shipped path, and each change undone

Both models train on the same batches in one process: forward, backward and an AdamW step.
The stock model is ``BertForPreTraining`` with its relation head resized to 3 classes
(``cls.seq_relationship = Linear(hidden, 3)``) and its usual loss: vocabulary logits at every
position, cross-entropy with -100 labels. Ours decodes only the masked positions. Batches are
synthetic (``throughput_batches.py``: random tokens, ``[CLS] A [SEP] B [SEP]``, lengths 90-100% of
``seq``, BERT's masking) unless ``--data`` names a prepared corpus.

**Precision** follows ``precision: auto`` (``--precisions auto``, the default): bf16 on a GPU and on
CPUs with native bf16, fp32 on other CPUs; a precision that ``auto`` leaves out is named with the
reason (``benchmark_precisions.py``), in the output and in ``_meta.precisions``; one asked for by
name is timed.

Reported per configuration and precision: tokens/s (non-pad tokens) of each model, their
ratio, and achieved FLOP/s as a fraction of a matmul peak measured in the same run (a square
``torch.matmul`` in each timed dtype, sized to take about a second: ``training_flops.py``) and, on
a GPU, of the datasheet bf16 peak (``--peak-tflops``; by default read from the GPU's name). FLOPs
are counted analytically (``training_flops.batch_flops``). Ours does less work for the same losses
and gradients (its MLM head, and on the bert-cpu backend its last layer's queries, attention and
feed-forward block, run only at the masked positions and [CLS]), so its headline figure is
*useful-work* FLOP/s: the stock model's FLOP count for the batch divided by our time;
``own_actual_peak_fraction`` counts the work ours really does (the MFU of the FLOPs this model
must compute). Timing alternates the models in rounds (the machine is shared) and reports each
one's median round; the first round warms up (with ``--compile``, over every batch: each shape
compiles there).

**The shipped path**: ``--config configs/pretrain/base.yaml`` gives ours the settings a run of that
file resolves on this device (``compile``, ``attention`` with ``auto`` decided as
``model.loading.attention_implementation`` decides it, ``attention_dropout``, ``max_predictions``,
``mlm_loss``, ``norm_precision``); a flag given as well wins. ``--variants`` times, on the same
batches, ours with one change each (``throughput_models.VARIANTS``: ``eager``, ``sdpa``,
``chunked-loss``, ``norms-autocast``, ``liger-loss``, ...): before and after each change that
was kept. Compiled synthetic batches have equal total lengths, so a flattened model compiles one
shape.

The allocator matters on CPU: ``linkbert pretrain`` makes glibc keep freed memory
(``runtime.retain_freed_memory``: no zero-filling and page faults of large buffers every step).
The stock model is timed both ways, out of the box (``stock``) and with that setting
(``stock_retained``), switched before each model's round (glibc's initial 128 KB threshold
when off); ours runs as ``linkbert pretrain`` runs it.

The last line printed is one JSON object: per ``config/precision``, ``stock_tokens_per_s``,
``stock_retained_tokens_per_s``, ``own_tokens_per_s``, ``speedup`` (against ``stock``),
``speedup_allocator_matched`` (against ``stock_retained``), ``peak_fraction`` (useful work, as
above), ``own_actual_peak_fraction`` (our own FLOP count), the stock runs' peak fractions, the
round times, ``variants`` (each one's tokens/s, its speedup against stock and its ratio to ours);
and ``_meta``.

``modernbert-base`` is ModernBERT-base's geometry (22 layers, hidden 768, GLU feed-forward 1152,
alternating 128-token local and global attention, vocabulary 50,368), randomly initialised
(``modernbert-tiny``: the same architecture at tiny's size, for a CPU smoke): the stock model is
``ModernBertForMaskedLM``'s encoder, its head and decoder at every position, and a 3-way relation
head on the first token; ours is ``LinkPretrainingModel`` around the same
``ModernBertForMaskedLM`` (the masked positions only), so ``--own-backend`` does not apply.
Local layers are counted as the work of their window (``L x min(L, 129)`` scores), not the
full ``L x L`` that SDPA's masked kernel computes.

``--compile`` wraps our model in ``torch.compile`` (slower than eager on the 2-core CPU:
``docs/performance.md``). Ours only (the stock model keeps SDPA on padded batches):
``--attention varlen`` (or ``flash_attention_2``/``_4``: the same batches flattened without
padding, as ``linkbert pretrain`` feeds them), ``--mlm-loss chunked|liger``, ``--norm-precision
autocast``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time

from linkbert.runtime import configure_waiting  # imports no torch

# how OpenMP threads wait between operations, chosen as `linkbert pretrain` chooses it (spin
# briefly on an idle machine, passive on a busy one); set before torch loads libgomp, and the
# same for both models, which run in this one process
OPENMP_WAITING = configure_waiting()

import torch  # noqa: E402
from benchmark_precisions import choose_precisions, describe  # noqa: E402
from throughput_batches import CONFIGS, MODERNBERT, config_batches, flattened  # noqa: E402
from throughput_models import (  # noqa: E402
    MLM_LOSSES,
    VARIANTS,
    Ours,
    config_for,
    liger_available,
    own_model,
    stock_for,
    variant,
)
from training_flops import batch_flops, datasheet_peak, flops_text, matmul_peak, sync  # noqa: E402

from linkbert.collator import max_predictions_for  # noqa: E402
from linkbert.model.attention import FLATTENED  # noqa: E402
from linkbert.model.loading import NO_DROPOUT, attention_implementation  # noqa: E402
from linkbert.runtime import retain_freed_memory  # noqa: E402

# the settings of ours that --config reads from a pretraining YAML (flag name -> PretrainConfig field)
FROM_CONFIG = {"attention": "attention", "attention_dropout": "attention_dropout", "compile": "compile",
               "max_predictions": "max_predictions", "mlm_loss": "mlm_loss", "norm_precision": "norm_precision"}
DEFAULTS = {"attention": "sdpa", "attention_dropout": None, "compile": False, "max_predictions": "0",
            "mlm_loss": "plain", "norm_precision": "fp32"}


class Trainer:
    """One model, its loss and an AdamW; ``run(batches)`` times a round of steps."""

    def __init__(self, model, loss_fn, precision: str, device: str):
        self.model = model.to(device).train()
        self.loss_fn, self.device = loss_fn, device
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        # fused AdamW (CPU and CUDA): one kernel over all parameters, as a trainer would use
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=0.01,
                                           fused=True)

    def step(self, batch: dict) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            loss = self.loss_fn(self.model, batch)
        loss.backward()
        self.optimizer.step()

    def run(self, batches: list[dict]) -> float:
        sync(self.device)
        start = time.perf_counter()
        for batch in batches:
            self.step(batch)
        sync(self.device)
        return time.perf_counter() - start


# trainer -> whether glibc keeps freed memory during its rounds (linkbert pretrain does, on CPU)
RETAINS = {"stock": False, "stock_retained": True}


def ours_for(name: str, args, seq: int, device: str) -> tuple[Ours, float | None]:
    """Ours for configuration ``name`` as the flags and ``--config`` say, on ``device``; and the
    attention dropout both models share (None: the architecture's default)."""
    chosen = dict(DEFAULTS)
    if args.config:
        from linkbert.pretrain.settings import load_config

        config = load_config(args.config, [f"max_length={seq}"])
        chosen.update({flag: getattr(config, field) for flag, field in FROM_CONFIG.items()})
    chosen.update({flag: getattr(args, flag) for flag in DEFAULTS if getattr(args, flag) is not None})
    dropout = chosen["attention_dropout"]
    attention = attention_implementation(chosen["attention"], device, dropout or 0.0)
    if dropout is None and attention in NO_DROPOUT:
        dropout = 0.0  # the same recipe for both: the kernel has no attention dropout
    predictions = chosen["max_predictions"]
    predictions = max_predictions_for(seq, 0.15) if predictions == "auto" else int(predictions)
    backend = "transformers" if name in MODERNBERT else args.own_backend
    return Ours(backend=backend, attention=attention, mlm_loss=chosen["mlm_loss"],
                norm_precision=chosen["norm_precision"], max_predictions=predictions,
                compile=bool(chosen["compile"])), dropout


def compare(name: str, args, batches: list[dict], vocab: int, precision: str, device: str, peak: float) -> dict:
    """Alternate rounds of the stock model, ours and its variants on ``batches``; the figures.

    The stock model runs twice on a CPU: as it runs out of the box (glibc's default malloc
    thresholds, so its 500 MB of dense MLM logits per step are fresh ``mmap``s, zero-filled and
    page-faulted every step) and with the allocator setting ``linkbert pretrain`` applies
    (``stock_retained``). ``speedup`` is against the first, ``speedup_allocator_matched``
    against the second: the part of the gain that is the model and its loss alone.
    """
    seq = args.seq or CONFIGS[name][1]
    ours, dropout = ours_for(name, args, seq, device)
    config = config_for(name, CONFIGS[name][0], vocab, dropout)
    runs = {"own": ours}
    skipped = {}
    for key in args.variants:
        changed = variant(ours, key)
        if changed is None:
            skipped[key] = "ours already runs so"
        elif changed.backend != "transformers" and (changed.attention, changed.mlm_loss) != ("sdpa", "plain"):
            skipped[key] = "the transformers backend's"
        elif changed.mlm_loss == "liger" and liger_available():
            skipped[key] = liger_available()
        else:
            runs[f"own:{key}"] = changed
    torch.manual_seed(0)
    stock, stock_loss_fn = stock_for(config)
    trainers = {"stock": Trainer(stock, stock_loss_fn, precision, device),
                "stock_retained": Trainer(stock, stock_loss_fn, precision, device)}
    if args.default_malloc or device != "cpu":
        trainers.pop("stock_retained")
    flat = {b: [flattened(batch, seq, device) for batch in batches] for b in (False, True)
            if any(run.flattened == b for run in runs.values())}
    padded = [{k: v.to(device) for k, v in batch.items()} for batch in batches]
    taken = {"stock": padded, "stock_retained": padded}
    for key, run in runs.items():
        torch.manual_seed(0)  # every variant of ours starts from the same weights
        model, loss_fn = own_model(config, run)
        trainers[key] = Trainer(model, loss_fn, precision, device)
        if run.compile:
            trainers[key].model.compile()
        taken[key] = flat[True] if run.flattened else padded
    times = {key: [] for key in trainers}
    for round_ in range(args.rounds + 1):  # round 0 warms up: allocator, kernels (and compilation)
        for key, trainer in trainers.items():
            if device == "cpu" and not args.default_malloc:
                retain_freed_memory(RETAINS.get(key, True))
            warm = taken[key] if runs.get(key, Ours()).compile else taken[key][:args.warmup]
            seconds = trainer.run(warm if round_ == 0 else taken[key])
            if round_:
                times[key].append(seconds)
    tokens = sum(b["attention_mask"].sum().item() for b in batches)
    stock_flops = sum(batch_flops(config, b, dense_mlm=True) for b in batches)
    own_flops = sum(batch_flops(config, b, dense_mlm=False, pruned_last_layer=ours.backend == "bert-cpu",
                                max_predictions=ours.max_predictions if ours.backend == "transformers" else 0)
                    for b in batches)
    seconds = {key: statistics.median(values) for key, values in times.items()}
    result = {f"{key}_tokens_per_s": round(tokens / seconds[key], 1) for key in ("stock", "stock_retained", "own")
              if key in seconds}
    result["speedup"] = round(seconds["stock"] / seconds["own"], 2)
    if "stock_retained" in seconds:
        result["speedup_allocator_matched"] = round(seconds["stock_retained"] / seconds["own"], 2)
    result.update({
        "peak_fraction": round(stock_flops / seconds["own"] / peak, 4),  # useful work, stock FLOP count
        "own_actual_peak_fraction": round(own_flops / seconds["own"] / peak, 4),
        **{f"{key}_peak_fraction": round(stock_flops / seconds[key] / peak, 4) for key in ("stock", "stock_retained")
           if key in seconds},
        **{f"{key}_round_s": [round(t, 3) for t in values] for key, values in times.items() if ":" not in key},
        "tokens_per_round": tokens, "flops_per_round": {"stock": stock_flops, "own": own_flops},
        "ours": dataclasses.asdict(ours), "attention_dropout": dropout,
    })
    result["variants"] = {key.split(":", 1)[1]: {
        **dataclasses.asdict(runs[key]), "tokens_per_s": round(tokens / seconds[key], 1),
        "speedup": round(seconds["stock"] / seconds[key], 2), "against_ours": round(seconds["own"] / seconds[key], 3),
        "round_s": [round(t, 3) for t in times[key]]} for key in runs if ":" in key}
    result["variants_skipped"] = skipped
    if args.peak_tflops:  # against a datasheet figure (the GPU's dense bf16 peak), not a measured one
        datasheet = args.peak_tflops * 1e12
        result["peak_fraction_datasheet"] = round(stock_flops / seconds["own"] / datasheet, 4)
        result["own_actual_peak_fraction_datasheet"] = round(own_flops / seconds["own"] / datasheet, 4)
        result["stock_peak_fraction_datasheet"] = round(stock_flops / seconds["stock"] / datasheet, 4)
    if device == "cuda":
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 1)
        torch.cuda.reset_peak_memory_stats()
    _print(name, precision, result, stock_flops / seconds["own"], own_flops / seconds["own"])
    return result


def _print(name: str, precision: str, result: dict, useful: float, actual: float) -> None:
    matched = (f"  (allocator-matched stock {result['stock_retained_tokens_per_s']:.0f} tok/s, "
               f"x{result['speedup_allocator_matched']:.2f})" if "stock_retained_tokens_per_s" in result else "")
    print(f"{name:>5} {precision:>4}: stock {result['stock_tokens_per_s']:>9.0f} tok/s  "
          f"ours {result['own_tokens_per_s']:>9.0f} tok/s  x{result['speedup']:.2f}{matched}  "
          f"useful {flops_text(useful)} = {result['peak_fraction']:.1%} of the measured peak "
          f"(actual {flops_text(actual)} = {result['own_actual_peak_fraction']:.1%})", flush=True)
    for key, figures in result["variants"].items():
        print(f"{'':>5} {'':>4}  ours with {key}: {figures['tokens_per_s']:>9.0f} tok/s  x{figures['speedup']:.2f} "
              f"against stock, ours x{figures['against_ours']:.3f} of it", flush=True)
    for key, why in result["variants_skipped"].items():
        print(f"{'':>5} {'':>4}  {key} not timed: {why}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,mini", help=f"comma-separated, from {', '.join(CONFIGS)}")
    parser.add_argument("--precisions", default="auto",
                        help="comma-separated: auto (precision: auto's choice for the device), fp32, bf16, fp16")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (every batch, compiled)")
    parser.add_argument("--batch", type=int, help="override the configuration's batch size")
    parser.add_argument("--seq", type=int, help="override the configuration's sequence length")
    parser.add_argument("--data", help="a prepared corpus folder instead of synthetic batches")
    parser.add_argument("--config", help="a pretraining YAML (configs/pretrain/base.yaml): ours runs its settings")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile our model (slower on CPU, see above)")
    parser.add_argument("--gpu", action="store_true", help="base at seq 512 (unless --configs), bf16, on CUDA")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="cuda: the same as --gpu")
    parser.add_argument("--peak-tflops", type=float,
                        help="also report fractions of this peak (default on a GPU: its datasheet dense bf16 figure, "
                             "training_flops.DATASHEET_BF16_TFLOPS, or $PEAK_TFLOPS)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's, the number of cores)")
    parser.add_argument("--own-backend", choices=("bert-cpu", "transformers"),
                        help="ours: BERT's forward written out (bert-cpu, the CPU default) or transformers' forward "
                             "with the masked rows gathered (transformers, what runs on GPUs; the --gpu default)")
    parser.add_argument("--max-predictions", help="transformers backend: masked positions per sequence read (0: "
                                                  "every one; auto: collator.max_predictions_for(seq, 0.15))")
    parser.add_argument("--attention", choices=("auto", "sdpa", *FLATTENED, "eager"),
                        help="ours, transformers backend: varlen and flash_attention_* take the batches flattened; "
                             "auto as a run decides it")
    parser.add_argument("--attention-dropout", type=float, help="both models (default: 0 with varlen)")
    parser.add_argument("--mlm-loss", choices=MLM_LOSSES, help="ours, transformers backend (liger: liger-kernel's)")
    parser.add_argument("--norm-precision", choices=("fp32", "autocast"),
                        help="ours: LayerNorms under autocast in float32 (autocast's rule) or the autocast dtype")
    parser.add_argument("--variants", default="", help=f"ours with one change each, comma-separated: "
                                                       f"{', '.join(VARIANTS)}")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds alone for every model (no allocator-matched stock run)")
    args = parser.parse_args(argv)
    args.gpu = args.gpu or args.device == "cuda"
    args.variants = [v for v in args.variants.split(",") if v]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if args.gpu else "cpu"
    transformers_only = (args.attention not in (None, "sdpa") or args.mlm_loss not in (None, "plain")
                         or args.config is not None)
    args.own_backend = args.own_backend or ("transformers" if args.gpu or transformers_only else "bert-cpu")
    if args.own_backend == "bert-cpu" and transformers_only:
        parser.error("--attention, --mlm-loss and --config are the transformers backend's (--own-backend transformers)")
    if args.gpu:
        if not torch.cuda.is_available():
            parser.error("--gpu needs CUDA")
        if args.configs == parser.get_default("configs"):
            args.configs = "base"
        if args.peak_tflops is None:
            args.peak_tflops, _ = datasheet_peak(torch.cuda.get_device_name(0))
    precisions = choose_precisions(args.precisions, device)
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, OpenMP waiting: {OPENMP_WAITING}; "
          f"device {torch.cuda.get_device_name(0) if args.gpu else 'cpu'}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    print(describe(precisions), flush=True)
    peaks = {p: matmul_peak(_dtype(p), device, 8192 if args.gpu else 2048) for p in precisions["timed"]}
    print("matmul peak: " + ", ".join(f"{p} {flops_text(v['flops'])} (n={v['n']})" for p, v in peaks.items()),
          flush=True)
    results = {}
    for name in args.configs.split(","):
        seq = args.seq or CONFIGS[name][1]
        compiled = args.compile or (args.compile is None and args.config is not None and ours_for(
            name, args, seq, device)[0].compile)
        batches, vocab = config_batches(name, args.steps, args.data, args.batch, args.seq, equal_totals=compiled)
        for precision in precisions["timed"]:
            results[f"{name}/{precision}"] = compare(name, args, batches, vocab, precision, device,
                                                     peaks[precision]["flops"])
    results["_meta"] = {"device": device, "own_backend": args.own_backend, "config": args.config,
                        "threads": torch.get_num_threads(), "openmp_waiting": OPENMP_WAITING,
                        "precisions": precisions, "peak_tflops": args.peak_tflops,
                        "allocator_setting_per_model": not args.default_malloc and device == "cpu",
                        "load_average_start": load, "load_average_end": os.getloadavg(),
                        "matmul_peak_flops": {p: v["flops"] for p, v in peaks.items()}}
    print(json.dumps(results))
    return 0


def _dtype(precision: str) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


if __name__ == "__main__":
    raise SystemExit(main())
