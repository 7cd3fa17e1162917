"""The transformers backend on a real GPU (``@pytest.mark.gpu``: skipped without CUDA; run by
``benchmarks/gpu_check.sh``). CUDA's own sync detector (``torch.cuda.set_sync_debug_mode``)
raises on any operation that makes the host wait for the device. One GPU also runs the multi-GPU
path: a real NCCL group, DDP, no_sync and compile under DDP (``distributed=always``)."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_TEXTS

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_tokenizer_dir):
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    root = tmp_path_factory.mktemp("gpu-corpus")
    docs = [{"id": str(i), "title": f"doc {i}", "text": " ".join(TINY_TEXTS[(i + j) % 5] for j in range(1 + i % 4)),
             "links": [str((i * 3 + 1) % 30)]} for i in range(30)]
    (root / "c.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    prepare(PrepareConfig(format="jsonl", input=str(root / "c.jsonl"), tokenizer=str(tiny_tokenizer_dir),
                          out=str(root / "prepared"), segment_budget=24, progress=False))
    return root / "prepared"


@pytest.mark.parametrize("attention_dropout", ["0.1", "0"])  # SDPA on padded batches; varlen on flattened ones
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_a_micro_batch_on_the_gpu_never_waits_for_it(corpus, tmp_path, precision, attention_dropout):
    from linkbert.pretrain.run import Run
    from linkbert.runtime import unwrap
    from linkbert.pretrain.settings import load_config

    config = load_config(None, ["preset=tiny", "max_length=64", "batch_size=8", "max_steps=4", "warmup_steps=1",
                                "max_predictions=auto", "progress=false", "tracker=none", f"precision={precision}",
                                "heldout_fraction=0.1", "eval_pairs=8", f"attention_dropout={attention_dropout}"])
    run = Run(config, str(corpus), str(tmp_path / "run"))
    assert run.dist.device.type == "cuda" and unwrap(run.model).backend == "transformers"
    flattened = torch.cuda.get_device_capability() >= (8, 0) and attention_dropout == "0"
    assert unwrap(run.model).takes_flattened_pairs == flattened
    batches = iter(run._loader())
    run.train_step([next(batches) for _ in range(run.micro_accumulation)])  # creates the optimiser state
    micro_batches = [next(batches) for _ in range(run.micro_accumulation)]
    counts = run._global_counts(micro_batches)
    sums = torch.zeros(5, dtype=torch.float64, device=run.dist.device)
    on_device = [run._to_device(batch) for batch in micro_batches]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for moved, tokens in on_device:
            run._micro_step(moved, tokens, counts, sums, sync=True)
        queued = run._finish_step(sums, counts)  # nor in the update, the all-reduce and the copy of the figures
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert run._read_figures(queued)[0]["mlm_loss"] > 0


def test_a_run_on_the_gpu_resumes_where_it_stopped(corpus, tmp_path):
    """A run resumed from its step-3 checkpoint ends next to the straight run (exactly, unless
    an attention kernel's backward adds in a nondeterministic order: then within rounding)."""
    import shutil

    from safetensors.torch import load_file

    from linkbert.checkpoint import latest
    from linkbert.pretrain.run import pretrain
    from linkbert.pretrain.settings import load_config

    settings = ["preset=tiny", "max_length=64", "batch_size=8", "max_steps=6", "warmup_steps=1", "save_every=3",
                "max_predictions=12", "progress=false", "tracker=none", "heldout_fraction=0.1", "eval_pairs=8"]
    assert pretrain(load_config(None, settings), str(corpus), str(tmp_path / "straight"))["step"] == 6
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "step-00000006")
    (tmp_path / "resumed" / "checkpoints" / "latest").write_text("step-00000003")
    (tmp_path / "resumed" / "summary.json").unlink()
    assert pretrain(load_config(None, settings), str(corpus), str(tmp_path / "resumed"))["step"] == 6
    a = load_file(latest(tmp_path / "straight") / "model.safetensors")
    b = load_file(latest(tmp_path / "resumed") / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4, msg=key)


def test_one_gpu_runs_the_multi_gpu_path_under_nccl(corpus, tmp_path):
    """distributed=always on one GPU: a real NCCL process group (bound to its device, with its
    timeout), DDP without buffer broadcasts and with gradients as bucket views, no_sync over two
    micro-batches a step, torch.compile under DDP and every collective of the run (the counts,
    the step's figures and flags, the checkpoint's random states, the evaluation). The run ends
    next to the plain run (within rounding: DDP splits the compiled graph at its buckets)."""
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    from linkbert.checkpoint import latest

    settings = ["preset=tiny", "max_length=64", "batch_size=8", "micro_batch_size=4", "max_steps=4",
                "warmup_steps=1", "save_every=2", "max_predictions=12", "compile=true", "dropout=0",
                "progress=false", "tracker=none", "heldout_fraction=0.1", "eval_pairs=8"]
    outputs = {}
    for name, extra in (("plain", []), ("nccl", ["distributed=always"])):
        done = subprocess.run([sys.executable, "-m", "linkbert.cli", "pretrain", "--data", str(corpus), "--out",
                               str(tmp_path / name), *settings, *extra], capture_output=True, text=True,
                              env=dict(os.environ), timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs[name] = done.stderr
    assert "process group: nccl, 1 rank(s), DDP" in outputs["nccl"]
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # compile_cache=auto: beside the run
        assert (tmp_path / "nccl" / "compile-cache").is_dir()
    a = load_file(latest(tmp_path / "plain") / "model.safetensors")
    b = load_file(latest(tmp_path / "nccl") / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-3, atol=1e-4, msg=key)


@pytest.mark.parametrize("window", [-1, 3])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_torchs_varlen_kernel_computes_what_the_padded_stand_in_does(window, dtype):
    """The kernel ``attention=varlen`` runs on a GPU against its exact CPU stand-in (SDPA on the
    sequences laid out padded), forward and backward, an empty sequence and ModernBERT's window
    included (transformers' sliding_window - 1 each side)."""
    from linkbert.model.attention import has_varlen_kernel, padded_attention

    if not has_varlen_kernel() or torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("torch.nn.attention.varlen needs torch 2.10+ and an Ampere-or-later GPU")
    from torch.nn.attention.varlen import varlen_attn

    g = torch.Generator(device="cuda").manual_seed(0)
    lengths = [5, 130, 0, 64, 1, 511]
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device="cuda")
    q, k, v = (torch.randn(sum(lengths), 4, 64, generator=g, device="cuda", dtype=dtype).requires_grad_()
               for _ in range(3))
    out = varlen_attn(q, k, v, cu_seqlens, cu_seqlens, 512, 512, scale=0.125, window_size=(window, window))
    reference = [x.detach().float().requires_grad_() for x in (q, k, v)]
    expected = padded_attention(*reference, cu_seqlens, 512, 0.125, window)
    torch.testing.assert_close(out.float(), expected, rtol=2e-2, atol=2e-2)
    grad = torch.randn_like(expected)
    out.backward(grad.to(dtype))
    expected.backward(grad)
    for got, want in zip((q, k, v), reference):
        torch.testing.assert_close(got.grad.float(), want.grad, rtol=5e-2, atol=5e-2)
