"""Where a pretraining step's time goes on a GPU: the device's busy and idle time, the kernels
launched, the calls that block the host, and the wait for the DataLoader.

    python benchmarks/gpu_step_timeline.py --data prepared/wikispeedia      # CUDA: base, seq 512, batch 64
    python benchmarks/gpu_step_timeline.py --preset tiny --seq 128 --batch 8 --steps 2 --warmup 1   # any device

It builds ``linkbert pretrain``'s own run (``pretrain.run.Run``: its model, optimiser, DataLoader
workers and step) on a prepared corpus (``--data``; else a synthetic one), takes ``--warmup``
steps, then ``--steps`` steps as the trainer's loop takes them (the micro-batches from the
DataLoader, then ``Run.train_step``, whose one readback ends the step), timed, and then
``--profiled-steps`` more under ``torch.profiler`` (its host-side recording slows the host, so
the timed steps run without it). Per step it reports:

* ``step_ms``: wall time (median; ``step_ms_mean`` the mean); ``loader_wait_ms``: of that, the
  host waiting for the DataLoader (0 when the workers keep ahead);
* ``gpu_busy_ms``: the union of the kernels' intervals on the device, and ``gpu_idle_fraction``
  = 1 - busy / the profiled steps' wall time: time the device had nothing queued (the step's
  readback, the host building the next step's first launches, a loader wait; the profiler's
  own host-side recording makes this an upper bound);
* ``kernels``: kernel launches; ``blocking_calls``: CUDA runtime calls that make the host wait
  (stream, device or event synchronisation and synchronous copies), by name;
* ``tokens_per_s`` (non-pad tokens) and ``model_tflops`` (the work ``pretrain_throughput.py``
  counts for the stock model, over the step's wall time), and its fraction of ``--peak-tflops``.

On a CPU the same run works (a smoke run; the device columns stay empty). The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

BLOCKING = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy", "cudaMemcpy2D",
            "cudaMemset", "cuStreamSynchronize", "cuCtxSynchronize", "cuEventSynchronize", "cuMemcpyDtoH_v2")
LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")


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
    """Per-step device busy time, kernels and blocking calls from the profiler's events."""
    kernels, blocking, launches = [], Counter(), 0
    for event in events:
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kernels.append((event.time_range.start, event.time_range.end))
        elif event.name in BLOCKING:
            blocking[event.name] += 1
        elif event.name in LAUNCHES:
            launches += 1
    return {"gpu_busy_ms": busy_microseconds(kernels) / 1000 / steps, "kernels": len(kernels) / steps,
            "kernel_launch_calls": launches / steps,
            "blocking_calls": {name: count / steps for name, count in sorted(blocking.items())}}


def main(argv=None) -> int:
    from device_step_profile import synthetic_corpus
    from pretrain_throughput import batch_flops

    from linkbert.pretrain.run import Run
    from linkbert.pretrain.settings import PretrainConfig

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a prepared corpus (segments of at most (seq - 3) / 2 tokens); "
                                       "default: a synthetic one")
    parser.add_argument("--tokenizer", default="train", help="the synthetic corpus's tokenizer folder")
    parser.add_argument("--preset", default="base")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--micro-batch", type=int, default=0, help="0: the whole batch in one pass")
    parser.add_argument("--max-predictions", default="80", help="a number, or auto (108 at 512)")
    parser.add_argument("--attention", default="auto", help="auto (varlen on an Ampere+ GPU when attention dropout "
                                                            "is 0), varlen, sdpa, flash_attention_2, flash_attention_4")
    parser.add_argument("--attention-dropout", type=float, default=0.1, help="0 lets auto take varlen")
    parser.add_argument("--mlm-loss", default="plain", choices=("plain", "chunked"))
    parser.add_argument("--norm-precision", default="fp32", choices=("fp32", "autocast"))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--profiled-steps", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak (H100/H200 datasheet)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="linkbert-timeline-") as tmp:
        data = args.data or str(synthetic_corpus(Path(tmp), args.tokenizer, (args.seq - 4) // 2))
        config = PretrainConfig(preset=args.preset, backend="transformers", max_length=args.seq, batch_size=args.batch,
                                micro_batch_size=args.micro_batch, max_steps=args.warmup + args.steps + args.profiled_steps + 1,
                                warmup_steps=1, num_workers=args.workers,
                                max_predictions=args.max_predictions if args.max_predictions == "auto" else int(
                                    args.max_predictions),
                                attention=args.attention, attention_dropout=args.attention_dropout,
                                mlm_loss=args.mlm_loss, norm_precision=args.norm_precision,
                                compile=args.compile, progress=False, tracker="none", heldout_fraction=0.01,
                                eval_pairs=8)
        run = Run(config, data, str(Path(tmp) / "run"))
        cuda = run.dist.device.type == "cuda"
        batches = iter(run._loader())

        def step(waits: list[float], taken: list[dict]):
            started = time.perf_counter()
            micro_batches = [next(batches) for _ in range(run.micro_accumulation)]
            waits.append(time.perf_counter() - started)
            taken.extend(micro_batches)  # counted after the timing
            return run.train_step(micro_batches)

        warm_started = time.perf_counter()
        for _ in range(args.warmup):
            step([], [])
        warmup_s = time.perf_counter() - warm_started
        waits, timed, walls, tokens = [], [], [], 0
        for _ in range(args.steps):
            started = time.perf_counter()
            tokens += step(waits, timed)["tokens"]
            walls.append(time.perf_counter() - started)
        flops = sum(batch_flops(run.model.config, batch, dense_mlm=True) for batch in timed)
        activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
        profiled_started = time.perf_counter()
        with torch.profiler.profile(activities=activities) as profiler:
            for _ in range(args.profiled_steps):
                step([], [])
        profiled_s = time.perf_counter() - profiled_started
        counted = timeline(profiler.events(), args.profiled_steps) if cuda and args.profiled_steps else {}
    seconds = sum(walls)
    result = {"preset": args.preset, "seq": args.seq, "batch": args.batch, "micro_batch": run.micro,
              "max_predictions": config.max_predictions, "workers": args.workers, "compile": args.compile,
              "mlm_loss": args.mlm_loss, "norm_precision": args.norm_precision,
              "autocast": str(run.autocast),
              "attention": getattr(run.model.config, "_attn_implementation", None),
              "flattened": bool(run.collator.flatten),
              "device": torch.cuda.get_device_name(0) if cuda else "cpu", "torch": torch.__version__,
              "warmup_s": round(warmup_s, 2),
              "step_ms": round(1000 * statistics.median(walls), 2),
              "step_ms_mean": round(1000 * seconds / args.steps, 2),
              "loader_wait_ms": round(1000 * statistics.median(waits), 2),
              "tokens_per_s": round(tokens / seconds), "model_tflops": round(flops / seconds / 1e12, 1)}
    result["peak_fraction"] = round(result["model_tflops"] / args.peak_tflops, 4)
    if counted:
        result.update({key: round(value, 2) if isinstance(value, float) else value for key, value in counted.items()})
        # against the profiled steps' own wall time (the profiler's host-side recording included)
        result["gpu_idle_fraction"] = round(1 - counted["gpu_busy_ms"] / (1000 * profiled_s / args.profiled_steps), 4)
        result["profiled_steps"] = args.profiled_steps
        result["max_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 1)
    print(f"{args.preset} seq {args.seq} batch {args.batch}: {result['step_ms']:.1f} ms/step, "
          f"loader wait {result['loader_wait_ms']:.1f} ms, {result['tokens_per_s']} tok/s, "
          f"{result['model_tflops']} TFLOP/s ({result['peak_fraction']:.1%} of {args.peak_tflops:g})"
          + (f"; GPU idle {result['gpu_idle_fraction']:.1%}, {result['kernels']:.0f} kernels/step, "
             f"blocking {result['blocking_calls']}" if counted else ""), flush=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
