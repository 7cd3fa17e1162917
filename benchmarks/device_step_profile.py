"""What a GPU would wait for in a pretraining step, counted on a CPU: host syncs and ATen ops.

    python benchmarks/device_step_profile.py                       # base shapes, both backends (~4 min, 2 cores)
    python benchmarks/device_step_profile.py --preset tiny --seq 128 --micro-batch 8   # seconds
    python benchmarks/device_step_profile.py --attention varlen --max-predictions auto --mlm-loss chunked

A GPU runs a step well when the host queues kernels ahead of the device and never waits for
it. Two things break that: a *host sync* (the host reads a device value: ``.item()``,
``int(t)``, ``.tolist()``, a boolean-mask index or ``nonzero``, whose output size depends on
the data), and many small kernels (each ATen op is at least one launch, a few microseconds of
host time however little work it does). Neither can be timed without a GPU, but both can be
counted on a CPU, where the same code runs the same ops.

For each backend (``bert-cpu``: BERT written out for CPU speed, what a GPU ran before the
transformers backend existed; ``transformers``: the checkpoint's own forward with ``max_predictions``, the
transformers backend) this builds a pretraining run of the preset on a synthetic corpus of ``--seq``-token
pairs and counts, with a ``TorchDispatchMode``:

* in one micro-batch (``Run._micro_step``: the forward, backward and statistics, from the
  moment its tensors are on the device): every ATen op, and the syncs among them;
* in the rest of the optimiser step (``Run._finish_step``: clipping, AdamW, the schedule, the
  all-reduce of the statistics and flags, their copy to the host started): ops and syncs;
* in reading a step's figures (``Run._read_figures``: the step's one readback, which the loop
  does once the next step's passes are queued);
* over ``--loop-steps`` steps of the real loop (``Run._loop``) under a process group
  (``distributed=always``: a one-process gloo group here, so DDP and every collective run as on
  several ranks; under torchrun, its ranks): the collectives per step, by kind (the profiler's
  ``c10d::`` events: DDP's gradient buckets and buffer broadcasts included), and the readbacks per
  step the trainer makes (``.item()``/``.tolist()`` called from ``pretrain/run.py`` or
  ``runtime.py``; a budget is set, so its check is counted too);
* in the MLM loss alone, forward and backward, at the masked rows of a micro-batch of
  ``--loss-batch`` sequences (the chunked loss's op count grows with the rows).

Syncs counted: ``aten._local_scalar_dense`` (``item``/``int``/``float``/``bool``), ``nonzero``,
``masked_select``, ``unique``, indexing with a boolean mask, and host reads that bypass the
dispatcher (``Tensor.tolist``, ``Tensor.numpy``, ``Tensor.cpu``). The host batch's own reads
before it moves (``Run._global_counts``) are not device syncs and are not counted.

The targets (issue 12): no sync inside a micro-batch, at most one per optimiser step outside
logging, at most 30 ops in the MLM loss. The last line printed is one JSON object.

Counted over the real loop of ``preset=tiny`` (DDP puts its gradients in 2 buckets), two
micro-batches a step, 2 gloo ranks, ``budget_minutes`` set, before and after the step boundary of
issue 21: collectives per step 5 all-reduces + 1 broadcast -> 4 all-reduces (the global counts,
the 2 buckets, the figures with the budget, stop and failure flags folded in; no buffer
broadcast); readbacks per step 2 (the figures, then the budget's own all-reduce), each waited for
as the step ends -> 1, read while the next step's passes run (docs/pretraining.md).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

# ops that only make a new view of existing memory: no kernel
VIEW_OPS = {"view", "_unsafe_view", "t", "transpose", "permute", "expand", "slice", "select", "unsqueeze", "squeeze",
            "detach", "alias", "as_strided", "reshape", "unbind", "split", "chunk", "narrow", "promote_types",
            "result_type", "lift_fresh", "_reshape_alias", "view_as"}
SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique", "_unique2", "unique_dim",
            "unique_consecutive", "repeat_interleave"}


class Counting(TorchDispatchMode):
    """Counts ATen ops, and the host syncs among them, while it is active."""

    def __init__(self):
        super().__init__()
        self.ops, self.kernels, self.syncs = 0, 0, Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._overloadpacket.__name__
        self.ops += 1
        self.kernels += name not in VIEW_OPS
        if name in SYNC_OPS and not (name == "repeat_interleave" and (kwargs or {}).get("output_size")):
            self.syncs[name] += 1
        elif name in ("index", "index_put", "index_put_") and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or [])):
            self.syncs[f"{name} (boolean mask)"] += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def counted(store: dict):
    """Count ops and syncs (also the host reads that bypass the dispatcher) into ``store``."""
    reads = Counter()
    originals = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy", "cpu")}

    def reading(name):
        original = originals[name]

        def read(self, *args, **kwargs):
            reads[f"Tensor.{name}"] += 1
            return original(self, *args, **kwargs)
        return read

    for name in originals:
        setattr(torch.Tensor, name, reading(name))
    mode = Counting()
    try:
        with mode:
            yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    syncs = mode.syncs + reads
    store.update(ops=mode.ops, kernel_ops=mode.kernels, syncs=sum(syncs.values()),
                 sync_kinds=dict(sorted(syncs.items())))


def synthetic_corpus(folder: Path, tokenizer: str, segment_budget: int) -> Path:
    """A prepared corpus of 64 linked documents of random words, each several segments long."""
    import random

    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    words = ("graph link document paper protein cell model language text river city music history science "
             "energy water planet theory market system network").split()
    rng = random.Random(0)
    records = [{"id": str(i), "title": f"doc {i}",
                "text": " ".join(rng.choice(words) for _ in range(segment_budget * 4)),
                "links": [str((i * 7 + 1) % 64), str((i * 11 + 3) % 64)]} for i in range(64)]
    corpus = folder / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records))
    prepare(PrepareConfig(format="jsonl", input=str(corpus), tokenizer=tokenizer, out=str(folder / "prepared"),
                          segment_budget=segment_budget, progress=False))
    return folder / "prepared"


def profile_backend(backend: str, data: Path, out: Path, args) -> dict:
    """Counts of one micro-batch, the rest of a step, and the MLM loss, for ``backend``."""
    from linkbert.objectives import IGNORE_INDEX
    from linkbert.pretrain.run import Run
    from linkbert.pretrain.settings import PretrainConfig

    from linkbert.model.loading import NO_DROPOUT

    own = backend == "transformers"
    config = PretrainConfig(preset=args.preset, backend=backend, max_length=args.seq, batch_size=args.micro_batch,
                            max_steps=10, warmup_steps=1, precision=args.precision, progress=False, tracker="none",
                            heldout_fraction=0.0, max_predictions=args.max_predictions if own else 0, dropout=0.1,
                            attention=args.attention if own else "auto", mlm_loss=args.mlm_loss,
                            attention_dropout=0.0 if own and args.attention in NO_DROPOUT else 0.1,
                            norm_precision=args.norm_precision)
    run = Run(config, str(data), str(out))
    batches = iter(run._loader())
    result = {"backend": backend, "max_predictions": config.max_predictions, "attention": config.attention,
              "mlm_loss_kind": config.mlm_loss, "norm_precision": config.norm_precision}
    for attempt in ("warm-up", "counted"):  # the first step allocates optimiser state
        micro_batches = [next(batches) for _ in range(run.micro_accumulation)]
        run.model.train()
        counts = run._global_counts(micro_batches)
        sums = torch.zeros(5, dtype=torch.float64, device=run.dist.device)
        micro, rest, read = {}, {}, {}
        started = time.perf_counter()
        first = run._to_device(micro_batches[0])  # host reads of the host batch: no device sync
        with counted(micro):
            run._micro_step(*first, counts, sums, sync=True)
        for batch in micro_batches[1:]:
            run._micro_step(*run._to_device(batch), counts, sums, sync=True)
        with counted(rest):
            queued = run._finish_step(sums, counts)
        with counted(read):
            run._read_figures(queued)
        seconds = time.perf_counter() - started
    result.update(micro_batch=micro, rest_of_step=rest, read=read, step_seconds=round(seconds, 2),
                  masked_per_micro_batch=int((micro_batches[0]["labels"] != IGNORE_INDEX).sum()))
    result["mlm_loss"] = profile_loss(run, backend, args)
    if args.loop_steps:
        loop_config = dataclasses.replace(config, distributed="always", budget_minutes=10_000.0, save_every=10_000,
                                          max_steps=args.loop_steps + 2, batch_size=2 * args.micro_batch,
                                          micro_batch_size=args.micro_batch)
        result["loop"] = profile_loop(Run(loop_config, str(data), str(out) + "-loop"), args.loop_steps)
    return result


def profile_loop(run, steps: int) -> dict:
    """Collectives and trainer readbacks per step over ``steps`` steps of ``run``'s loop, after
    two steps of warm-up (DDP rebuilds its buckets once, after its first step: two broadcasts of
    their layout; see the module docstring)."""
    from torch.profiler import ProfilerActivity, profile

    from gpu_step_timeline import counting_readbacks  # this folder's: the one counter of trainer readbacks

    run.log.open({})
    run.config.max_steps = 2
    run._loop()
    run.config.max_steps = steps + 2
    reads = Counter()
    with counting_readbacks(reads), profile(activities=[ProfilerActivity.CPU]) as profiler:
        run._loop()
    collectives = Counter(event.name for event in profiler.events() if event.name.startswith("c10d::"))
    return {"steps": steps, "world": run.dist.world, "micro_batches_per_step": run.micro_accumulation,
            "collectives_per_step": {name: count / steps for name, count in sorted(collectives.items())},
            "readbacks_per_step": {name: count / steps for name, count in sorted(reads.items())}}


def profile_loss(run, backend: str, args) -> dict:
    """Ops and syncs of the MLM loss alone, forward and backward, at ``--loss-batch`` sequences'
    masked rows (15% of ``--seq``; ``max_predictions`` per sequence on the transformers backend)."""
    from linkbert.model.heads import chunked_classification_stats, classification_stats, masked_rows, mlm_transform
    from linkbert.objectives import IGNORE_INDEX

    model = run.model
    hidden_size, vocab = model.config.hidden_size, model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    labels = torch.full((args.loss_batch, args.seq), IGNORE_INDEX)
    selected = torch.rand(args.loss_batch, args.seq, generator=g) < 0.15
    labels[selected] = torch.randint(5, vocab, (int(selected.sum()),), generator=g)
    hidden = torch.randn(args.loss_batch, args.seq, hidden_size, generator=g, requires_grad=True)
    forward, backward = {}, {}
    with run._autocast():
        if backend == "transformers":
            labels[:, :] = torch.where(torch.cumsum(labels != IGNORE_INDEX, 1) <= args.max_predictions, labels,
                                       IGNORE_INDEX)
            with counted(forward):
                rows, targets = masked_rows(hidden, labels, args.max_predictions)
                if args.mlm_loss == "chunked":
                    decoder = model.mlm.get_output_embeddings()
                    loss, _, _ = chunked_classification_stats(mlm_transform(model.mlm)(rows), decoder.weight,
                                                              decoder.bias, targets)
                else:
                    loss, _, _ = classification_stats(model._head(rows), targets)
        else:
            rows_in = hidden[labels != IGNORE_INDEX].detach().requires_grad_()
            targets = labels[labels != IGNORE_INDEX]
            from linkbert.model.kernels import linear_cross_entropy

            predictions = model.mlm.cls.predictions  # the bert-cpu backend's head at the masked rows
            with counted(forward):
                loss, _ = linear_cross_entropy(predictions.transform(rows_in), predictions.decoder.weight,
                                               predictions.decoder.bias, targets)
    with counted(backward):
        loss.backward()
    return {"rows": int((labels != IGNORE_INDEX).sum()), "forward": forward, "backward": backward,
            "ops": forward["ops"] + backward["ops"], "kernel_ops": forward["kernel_ops"] + backward["kernel_ops"],
            "syncs": forward["syncs"] + backward["syncs"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--micro-batch", type=int, default=8, help="sequences per micro-batch of the step counts")
    parser.add_argument("--loss-batch", type=int, default=32, help="sequences whose masked rows the loss count uses")
    parser.add_argument("--max-predictions", default="80", help="the transformers backend's (BERT's 80 at 512; auto: "
                                                                 "max_predictions=auto's, 108 at 512)")
    parser.add_argument("--attention", default="sdpa", help="the transformers backend's (varlen: flattened pairs)")
    parser.add_argument("--mlm-loss", default="plain", choices=("plain", "chunked"))
    parser.add_argument("--norm-precision", default="fp32", choices=("fp32", "autocast"))
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--tokenizer", help="tokenizer folder (default: the installed MiniLM's, a 30522 BERT "
                                            "vocabulary; without it, one trained on the synthetic corpus)")
    parser.add_argument("--backends", default="bert-cpu,transformers")
    parser.add_argument("--loop-steps", type=int, default=3, help="steps of the real loop whose collectives and "
                                                                    "readbacks are counted (0: none)")
    args = parser.parse_args(argv)
    from linkbert.collator import max_predictions_for

    args.max_predictions = (max_predictions_for(args.seq, 0.15) if args.max_predictions == "auto"
                            else int(args.max_predictions))
    tokenizer = args.tokenizer
    if tokenizer is None:
        from linkbert.experiments.grid import default_minilm

        minilm = default_minilm()
        tokenizer = str(minilm) if minilm else "train"
    results = {}
    with tempfile.TemporaryDirectory(prefix="linkbert-profile-") as tmp:
        data = synthetic_corpus(Path(tmp), tokenizer, (args.seq - 4) // 2)
        for backend in args.backends.split(","):
            result = profile_backend(backend, data, Path(tmp) / f"run-{backend}", args)
            results[backend] = result
            micro, rest, loss = result["micro_batch"], result["rest_of_step"], result["mlm_loss"]
            print(f"{backend:9s} micro-batch: {micro['ops']} ops ({micro['kernel_ops']} not views), {micro['syncs']} "
                  f"syncs {micro['sync_kinds']}; rest of step: {rest['ops']} ops, {rest['syncs']} syncs "
                  f"{rest['sync_kinds']}; MLM loss ({loss['rows']} rows): forward {loss['forward']['ops']} ops "
                  f"({loss['forward']['kernel_ops']} not views), backward {loss['backward']['ops']} "
                  f"({loss['backward']['kernel_ops']}), {loss['syncs']} syncs; read: {result['read']['sync_kinds']}",
                  flush=True)
            if "loop" in result:
                loop = result["loop"]
                print(f"{backend:9s} loop ({loop['world']} rank(s), {loop['micro_batches_per_step']} micro-batches a "
                      f"step): collectives per step {loop['collectives_per_step']}, readbacks per step "
                      f"{loop['readbacks_per_step']}", flush=True)
    results["_meta"] = {"preset": args.preset, "seq": args.seq, "micro_batch": args.micro_batch,
                        "loop_steps": args.loop_steps,
                        "loss_batch": args.loss_batch, "max_predictions": args.max_predictions,
                        "attention": args.attention, "mlm_loss": args.mlm_loss, "norm_precision": args.norm_precision,
                        "tokenizer": tokenizer, "torch": torch.__version__}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
