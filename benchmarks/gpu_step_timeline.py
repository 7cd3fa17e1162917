"""Where a pretraining step's time goes on a GPU: the device's busy and idle time, the kernels by
category, the calls that block the host, and the wait for the DataLoader.

    python benchmarks/gpu_step_timeline.py                                  # CUDA: configs/pretrain/base.yaml as shipped
    python benchmarks/gpu_step_timeline.py --data prepared/wikispeedia mlm_loss=chunked   # a corpus; a setting changed
    python benchmarks/gpu_step_timeline.py --preset tiny --seq 128 --batch 8 --steps 2 --warmup 1 --no-compile  # any device

It builds ``linkbert pretrain``'s own run (``pretrain.run.Run``: its model, optimiser, DataLoader
workers and step) from a pretraining YAML (``--config``, default ``configs/pretrain/base.yaml``:
the shipped path, compiled, ``attention: auto``, ``max_predictions: auto``, 4 workers; trained
from scratch, ``init=scratch``, on the transformers backend, a GPU's, on a CPU too) and
``key=value`` overrides, on a prepared corpus (``--data``;
else a synthetic one with ``--tokenizer``'s vocabulary, by default MiniLM's 30,522-token BERT
vocabulary where installed). A step is 8 micro-batches of the config's ``micro_batch_size`` unless
``--batch`` says otherwise: what each of 8 ranks does with ``base.yaml``'s 2,048. Steps run as
the trainer's loop runs them (``Run._loop``: the micro-batches from the DataLoader, the passes of
step n queued, then step n-1's figures read, the one readback, then step n's update): ``--warmup``
steps (compilation of every shape), ``--steps`` timed ones, then ``--profiled-steps`` more under
``torch.profiler`` (its host-side recording slows the host, so the timed steps run without it).
Per step it reports:

* ``step_ms``: wall time (median; ``step_ms_mean`` the mean, which tokens/s and MFU use);
  ``loader_wait_ms``: of that, the host waiting for the DataLoader (0 when workers keep ahead);
* ``trainer_readbacks_per_step``: ``.tolist()``/``.item()`` calls of ``pretrain/run.py`` and
  ``runtime.py`` (any device; 1 by design: the step's figures);
* ``host_syncs_per_step``: CUDA runtime calls that make the host wait (stream, device or event
  synchronisation, synchronous copies) inside a profiled step (the profiler's own start and stop
  are outside), and
  ``blocking_calls`` by name;
* ``gpu_busy_ms``: the union of the kernels' (and copies') intervals; ``gpu_idle_fraction`` = 1 -
  busy / the mean unprofiled step (``gpu_idle_fraction_profiled``: against the profiled steps'
  own wall time, an upper bound);
* ``kernel_ms`` and ``kernel_share`` by category (``kernel_category``: GEMM, attention,
  elementwise/norm, optimizer, communication, copies), and ``idle``;
* ``tokens_per_s`` (non-pad tokens); FLOP/s counted both ways (``training_flops.batch_flops``):
  ``own_tflops``, the FLOPs this model must compute (the MLM head at ``max_predictions`` rows per
  pair), and ``model_tflops``, the stock ``BertForPreTraining``'s count for the same batches (dense
  MLM logits); on a GPU each as a fraction of its datasheet bf16 peak (``mfu_own``, ``mfu_stock``).

On a CPU the same run works (a smoke run; the device columns stay empty, FLOP/s are GFLOP/s
with no peak). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
# CUDA runtime and driver calls that make the host wait (a versioned name, cudaMemcpy_v3020, too;
# not their Async forms)
BLOCKING = re.compile(r"^(cudaStreamSynchronize|cudaDeviceSynchronize|cudaEventSynchronize|cudaMemcpy|cudaMemcpy2D|"
                      r"cudaMemset|cuStreamSynchronize|cuCtxSynchronize|cuEventSynchronize|cuMemcpyDtoH)(_v\d+)?$")
LAUNCHES = re.compile(r"^(cudaLaunchKernel|cudaLaunchKernelExC|cuLaunchKernel|cuLaunchKernelEx)(_v\d+)?$")
STEP = "linkbert_step"  # the profiler's range around each profiled step
ACCUMULATION = 8  # micro-batches a step unless --batch: base.yaml's 2048 over 8 ranks of 32 x 8
# kernel name (lower case) -> category, the first that matches
CATEGORIES = (
    ("communication", r"nccl"),
    ("copies", r"^memcpy|^memset|copy_kernel|catarraybatchedcopy|copy_device_to_device"),
    ("optimizer", r"adam|multi_tensor_apply|foreach"),
    ("attention", r"flash|fmha|attention|attn|sdpa"),
    ("GEMM", r"gemm|cutlass|cublas|nvjet|xmma|wgmma|matmul|triton_tem_fused_(add)?mm|_mm_|splitk"),
)
CATEGORY_NAMES = ("GEMM", "attention", "elementwise/norm", "optimizer", "communication", "copies")


def kernel_category(name: str) -> str:
    """The category of a device activity's name (a kernel, or a CUPTI memcpy/memset); what no
    pattern names is elementwise/norm: inductor's fused kernels, LayerNorm, softmax, GELU,
    dropout, the loss, reductions, gathers."""
    lowered = name.lower()
    for category, pattern in CATEGORIES:
        if re.search(pattern, lowered):
            return category
    return "elementwise/norm"


def busy_microseconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals."""
    total, end = 0.0, -float("inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def timeline(events, steps: int) -> dict:
    """Per-step device busy time, kernels by category (clipped to the ``STEP`` ranges' span) and
    the host's blocking calls inside the ranges, from the profiler's events."""
    cpu, cuda = torch.autograd.DeviceType.CPU, torch.autograd.DeviceType.CUDA
    ranges = [(e.time_range.start, e.time_range.end) for e in events if e.name == STEP and e.device_type == cpu]
    if not ranges:
        return {}
    first, last = min(r[0] for r in ranges), max(r[1] for r in ranges)
    window = last - first
    kernels, by_category, blocking, launches = [], defaultdict(float), Counter(), 0

    def in_step(event) -> bool:  # any thread: a sync on another one (the DataLoader's pinning) counts too
        return any(start <= event.time_range.start <= end for start, end in ranges)
    for event in events:
        if event.device_type == cuda:
            if getattr(event, "is_user_annotation", False):  # a range's GPU-side span (STEP's, inductor's): no work
                continue
            start, end = max(event.time_range.start, first), min(event.time_range.end, last)
            if end > start:
                kernels.append((start, end))
                by_category[kernel_category(event.name)] += end - start
        elif BLOCKING.match(event.name) and in_step(event):
            blocking[event.name] += 1
        elif LAUNCHES.match(event.name) and in_step(event):
            launches += 1
    busy = busy_microseconds(kernels)
    return {"gpu_busy_ms": busy / 1000 / steps, "profiled_step_ms": window / 1000 / steps,
            "kernels": len(kernels) / steps, "kernel_launch_calls": launches / steps,
            "kernel_ms": {c: by_category.get(c, 0.0) / 1000 / steps for c in CATEGORY_NAMES},
            "host_syncs_per_step": sum(blocking.values()) / steps,
            "blocking_calls": {name: count / steps for name, count in sorted(blocking.items())}}


@contextlib.contextmanager
def counting_readbacks(store: Counter):
    """Count ``.tolist()``/``.item()`` calls made from ``pretrain/run.py`` and ``runtime.py``."""
    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "item")}

    def reading(name):
        def read(self, *args, **kwargs):
            caller = Path(sys._getframe(1).f_code.co_filename)
            if caller.name in ("run.py", "runtime.py") and "linkbert" in caller.parts:
                store[f"{caller.parent.name}/{caller.name}: Tensor.{name}"] += 1
            return originals[name](self, *args, **kwargs)
        return read
    for name in originals:
        setattr(torch.Tensor, name, reading(name))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


class Loop:
    """Steps of ``run`` as ``Run._loop`` takes them, its figures' readback lagged by a step."""

    def __init__(self, run):
        self.run, self.batches, self.pending = run, iter(run._loader()), None

    def step(self, waits: list[float] | None = None, taken: list[dict] | None = None) -> int:
        """One step; returns its real tokens (from the host batches: no device read)."""
        run = self.run
        started = time.perf_counter()
        micro_batches = [next(self.batches) for _ in range(run.micro_accumulation)]
        if waits is not None:
            waits.append(time.perf_counter() - started)
        if taken is not None:
            taken.extend(micro_batches)
        sums, counts = run._forward_backward(micro_batches)
        if self.pending is not None:
            run._read_figures(self.pending)
        self.pending = run._finish_step(sums, counts)
        return sum(int(batch["attention_mask"].sum()) for batch in micro_batches)

    def drain(self) -> None:
        """Read the last step's figures: the device has finished every step queued."""
        if self.pending is not None:
            self.run._read_figures(self.pending)
            self.pending = None


def settings_from(args) -> list[str]:
    """``key=value`` overrides of the config from the flags (those given) and ``args.overrides``."""
    flags = {"preset": args.preset, "max_length": args.seq, "micro_batch_size": args.micro_batch,
             "max_predictions": args.max_predictions, "attention": args.attention,
             "attention_dropout": args.attention_dropout, "mlm_loss": args.mlm_loss,
             "norm_precision": args.norm_precision, "num_workers": args.workers,
             "compile": None if args.compile is None else str(args.compile).lower()}
    settings = [f"{key}={value}" for key, value in flags.items() if value is not None]
    given = {item.split("=", 1)[0] for item in args.overrides}
    if "init" not in given:
        settings.append("init=scratch")  # the config's init is a placeholder folder
    if "backend" not in given:
        settings.append("backend=transformers")  # the GPU's, on a CPU too
    return settings + list(args.overrides)


def build_config(args, steps: int):
    """The run's settings: the YAML, the flags, the overrides, then the step split (``--batch``:
    pairs a step; else ``ACCUMULATION`` micro-batches)."""
    import dataclasses

    from linkbert.pretrain.settings import load_config

    config = load_config(args.config, settings_from(args))
    micro = config.micro_batch_size or config.batch_size
    batch = args.batch or micro * ACCUMULATION
    return dataclasses.replace(config, batch_size=batch, micro_batch_size=min(micro, batch), max_steps=steps,
                               warmup_steps=1, progress=False, tracker="none", heldout_fraction=0.01, eval_pairs=8,
                               budget_minutes=0.0)


def main(argv=None) -> int:
    from device_step_profile import synthetic_corpus
    from training_flops import batch_flops, datasheet_peak, flops_text

    from linkbert.pretrain.run import Run
    from linkbert.runtime import unwrap

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings of the run, as pretrain takes them")
    parser.add_argument("--config", default=str(ROOT / "configs" / "pretrain" / "base.yaml"),
                        help="a pretraining YAML (default: the shipped base.yaml)")
    parser.add_argument("--data", help="a prepared corpus (segments of at most (seq - 3) / 2 tokens); "
                                       "default: a synthetic one")
    parser.add_argument("--tokenizer", help="the synthetic corpus's tokenizer folder (default: the installed "
                                            "MiniLM's 30522-token vocabulary, else one trained on it)")
    parser.add_argument("--preset")
    parser.add_argument("--seq", type=int, help="max_length")
    parser.add_argument("--batch", type=int, help=f"pairs a step (default: {ACCUMULATION} micro-batches)")
    parser.add_argument("--micro-batch", type=int, help="micro_batch_size")
    parser.add_argument("--max-predictions", help="a number, or auto (108 at 512)")
    parser.add_argument("--attention", help="auto (varlen on an Ampere+ GPU when attention dropout is 0), varlen, "
                                            "sdpa, flash_attention_2, flash_attention_4")
    parser.add_argument("--attention-dropout", type=float)
    parser.add_argument("--mlm-loss", choices=("plain", "chunked"))
    parser.add_argument("--norm-precision", choices=("fp32", "autocast"))
    parser.add_argument("--workers", type=int, help="num_workers")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (compilation: every shape)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps")
    parser.add_argument("--profiled-steps", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak (default: the GPU's datasheet figure, "
                                                          "training_flops.DATASHEET_BF16_TFLOPS, or $PEAK_TFLOPS)")
    args = parser.parse_args(argv)
    config = build_config(args, args.warmup + args.steps + args.profiled_steps + 2)
    tokenizer = args.tokenizer
    if tokenizer is None and not args.data:
        from linkbert.experiments.grid import default_minilm

        tokenizer = str(default_minilm() or "train")
    with tempfile.TemporaryDirectory(prefix="linkbert-timeline-") as tmp:
        data = args.data or str(synthetic_corpus(Path(tmp), tokenizer, (config.max_length - 4) // 2))
        run = Run(config, data, str(Path(tmp) / "run"))
        cuda = run.dist.device.type == "cuda"
        loop = Loop(run)
        warm_started = time.perf_counter()
        for _ in range(args.warmup):
            loop.step()
        loop.drain()
        warmup_s = time.perf_counter() - warm_started
        waits, timed, walls, tokens, readbacks = [], [], [], 0, Counter()
        timed_started = time.perf_counter()
        with counting_readbacks(readbacks):
            for _ in range(args.steps):
                started = time.perf_counter()
                tokens += loop.step(waits, timed)
                walls.append(time.perf_counter() - started)
            loop.drain()  # the last step's readback: the device has done every timed step
        seconds = time.perf_counter() - timed_started
        model_config = unwrap(run.model).config
        stock_flops = sum(batch_flops(model_config, batch, dense_mlm=True) for batch in timed)
        own_flops = sum(batch_flops(model_config, batch, dense_mlm=False, max_predictions=config.max_predictions)
                        for batch in timed)
        counted = {}
        if args.profiled_steps:
            activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
            with torch.profiler.profile(activities=activities) as profiler:
                loop.step()  # its readback is of no step under the profiler: not counted
                for _ in range(args.profiled_steps):
                    with torch.profiler.record_function(STEP):
                        loop.step()
                loop.drain()
            counted = timeline(profiler.events(), args.profiled_steps) if cuda else {}
    step_ms = 1000 * seconds / args.steps
    result = {"config": args.config, "preset": config.preset, "seq": config.max_length, "batch": config.batch_size,
              "micro_batch": run.micro, "micro_batches_per_step": run.micro_accumulation,
              "max_predictions": config.max_predictions, "workers": config.num_workers, "compile": config.compile,
              "mlm_loss": config.mlm_loss, "norm_precision": config.norm_precision, "autocast": str(run.autocast),
              "attention": getattr(model_config, "_attn_implementation", None), "flattened": bool(run.collator.flatten),
              "vocab_size": model_config.vocab_size,
              "device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
              "warmup_s": round(warmup_s, 2), "step_ms": round(1000 * statistics.median(walls), 2),
              "step_ms_mean": round(step_ms, 2), "loader_wait_ms": round(1000 * statistics.median(waits), 2),
              "tokens_per_s": round(tokens / seconds),
              "trainer_readbacks_per_step": sum(readbacks.values()) / args.steps,
              "trainer_readbacks": {name: count / args.steps for name, count in sorted(readbacks.items())},
              "model_tflops": round(stock_flops / seconds / 1e12, 4), "own_tflops": round(own_flops / seconds / 1e12, 4)}
    if cuda:
        peak, source = (args.peak_tflops, "--peak-tflops") if args.peak_tflops else datasheet_peak(result["device"])
        result.update(peak_tflops=peak, peak_source=source, max_memory_gib=round(torch.cuda.max_memory_allocated()
                                                                                  / 2 ** 30, 1))
        if peak:
            result.update(mfu_own=round(own_flops / seconds / 1e12 / peak, 4),
                          mfu_stock=round(stock_flops / seconds / 1e12 / peak, 4))
    if counted:
        busy = counted["gpu_busy_ms"]
        result.update({key: round(value, 3) if isinstance(value, float) else value for key, value in counted.items()})
        result["kernel_ms"] = {c: round(ms, 3) for c, ms in counted["kernel_ms"].items()}
        result["kernel_share"] = {c: round(ms / step_ms, 4) for c, ms in counted["kernel_ms"].items()}
        result["kernel_share"]["idle"] = result["gpu_idle_fraction"] = round(max(0.0, 1 - busy / step_ms), 4)
        result["gpu_idle_fraction_profiled"] = round(max(0.0, 1 - busy / counted["profiled_step_ms"]), 4)
        result["profiled_steps"] = args.profiled_steps
    _print(result, stock_flops / seconds, own_flops / seconds, flops_text)
    print(json.dumps(result))
    return 0


def _print(result: dict, stock_rate: float, own_rate: float, flops_text) -> None:
    mfu = (f" = {result['mfu_own']:.1%} of {result['peak_tflops']:g} TFLOP/s (stock's count {flops_text(stock_rate)} "
           f"= {result['mfu_stock']:.1%})" if "mfu_own" in result else f" (stock's count {flops_text(stock_rate)})")
    print(f"{result['preset']} seq {result['seq']} batch {result['batch']} ({result['micro_batches_per_step']} x "
          f"{result['micro_batch']}), attention {result['attention']}, compile {result['compile']}: "
          f"{result['step_ms_mean']:.1f} ms/step, loader wait {result['loader_wait_ms']:.1f} ms, "
          f"{result['tokens_per_s']} tok/s, {flops_text(own_rate)}{mfu}; trainer readbacks "
          f"{result['trainer_readbacks_per_step']:g}/step", flush=True)
    if "gpu_idle_fraction" in result:
        shares = ", ".join(f"{c} {s:.1%}" for c, s in result["kernel_share"].items())
        print(f"GPU idle {result['gpu_idle_fraction']:.1%} (profiled {result['gpu_idle_fraction_profiled']:.1%}), "
              f"{result['kernels']:.0f} kernels/step, host syncs {result['host_syncs_per_step']:g}/step "
              f"{result['blocking_calls']}; time by kind: {shares}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
