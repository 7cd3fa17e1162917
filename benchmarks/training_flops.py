"""FLOPs of a pretraining step and the peaks they are divided by: ``batch_flops`` (counted
analytically, two ways: the stock model's dense MLM head or ours at the gathered rows), a
measured matmul peak, and the datasheet bf16 peaks of the GPUs a lease may give.

MFU ("model FLOP utilisation") is the FLOPs of a step over its time, over the chip's peak. It
is reported two ways: the FLOPs *this* model must compute (the MLM head at ``max_predictions``
rows per pair, attention over each pair's own length), and the stock model's for the same batch
(``BertForPreTraining``: vocabulary logits at every token), whose count is larger: "useful work".
"""

from __future__ import annotations

import os
import re
import time

import torch

from linkbert.objectives import IGNORE_INDEX

# dense bf16 tensor-core peaks (no sparsity) from NVIDIA's datasheets, TFLOP/s; the first pattern
# that matches torch.cuda.get_device_name() wins (the PCIe and NVL forms before the SXM ones)
DATASHEET_BF16_TFLOPS = (
    (r"H100.*PCIe", 756.0),
    (r"H100.*NVL", 835.0),
    (r"H200.*NVL", 835.0),
    (r"GH200|H100|H200|H800", 989.0),  # SXM (the H100 80GB HBM3 and H200 of the lent machines)
    (r"B200", 2250.0),
    (r"A100|A800", 312.0),
    (r"L40S", 362.0),
    (r"A10G|A10\b", 125.0),
    (r"L4\b", 121.0),
)
PEAK_VARIABLE = "PEAK_TFLOPS"  # a figure given by the user wins over the table


def datasheet_peak(device_name: str) -> tuple[float | None, str]:
    """``(dense bf16 TFLOP/s, where the figure comes from)`` for a GPU name; ``PEAK_TFLOPS`` in
    the environment wins; ``(None, why)`` for a name the table does not know."""
    given = os.environ.get(PEAK_VARIABLE)
    if given:
        return float(given), f"${PEAK_VARIABLE}"
    for pattern, tflops in DATASHEET_BF16_TFLOPS:
        if re.search(pattern, device_name):
            return tflops, f"datasheet ({pattern})"
    return None, f"no datasheet figure known for {device_name!r}: set {PEAK_VARIABLE}"


def batch_flops(config, batch: dict, dense_mlm: bool, pruned_last_layer: bool = False,
                max_predictions: int = 0) -> float:
    """Training FLOPs (forward + backward = 3 x forward) of one batch, counted analytically.

    Per token: 2 x (per-layer attention projections 4h^2 and feed-forward) x layers, the MLM
    transform h^2 and decoder h V (at every token when ``dense_mlm``; else at the masked ones,
    or at ``batch x max_predictions`` gathered rows), and attention 2 x 2 L h per layer (scores
    and weighted values over the sequence's own length L; a ModernBERT local layer over its
    window). The feed-forward block is 2 h ffn for BERT, 3 h ffn for ModernBERT's GLU. With
    ``pruned_last_layer`` (the written-out BERT) the last layer computes keys and values at
    every token but queries, attention, output projection and feed-forward block only at the
    masked tokens and [CLS]. A flattened batch (``cu_seqlens``) counts its pairs, not its row.
    """
    h, ffn, layers, vocab = config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size
    modernbert = config.model_type == "modernbert"
    feed_forward = (3 if modernbert else 2) * h * ffn
    if "cu_seqlens" in batch:  # flattened: the pairs' lengths, not the row's (the tail is no pair)
        lengths = batch["cu_seqlens"].diff()[:-1].double()
    else:
        lengths = batch["attention_mask"].sum(1).double()
    tokens = lengths.sum().item()
    selected = batch["labels"] != IGNORE_INDEX
    masked = selected.sum().item()
    layer = 2 * (4 * h * h + feed_forward)  # per token
    full = 2 * 2 * h * (lengths ** 2).sum().item()  # per layer
    if modernbert:  # every global_attn_every_n_layers-th layer is global, the rest see +-window/2
        window = config.local_attention + 1
        local = 2 * 2 * h * (lengths * lengths.clamp(max=window)).sum().item()
        globals_ = sum(1 for i in range(layers) if i % config.global_attn_every_n_layers == 0)
        attention = (globals_ * full + (layers - globals_) * local) / layers
    else:
        attention = full
    if dense_mlm or not pruned_last_layer:
        encoder = layers * (layer * tokens + attention)
    else:
        kept = selected.clone()
        kept[:, 0] = True
        rows, rows_by_length = kept.sum().item(), (kept.sum(1) * lengths).sum().item()
        last = 2 * 2 * h * h * tokens + 2 * (2 * h * h + feed_forward) * rows + 2 * 2 * h * rows_by_length
        encoder = (layers - 1) * (layer * tokens + attention) + last
    head_rows = tokens if dense_mlm else (len(lengths) * max_predictions if max_predictions else masked)
    head = 2 * (h * h + h * vocab) * head_rows
    return 3 * (encoder + head)


def matmul_peak(dtype: torch.dtype, device: str, largest: int, repeats: int = 20, budget_s: float = 2.0) -> dict:
    """Best FLOP/s of a square matmul in ``dtype`` (the denominator of a measured peak fraction):
    ``{"flops": ..., "n": size}``. The size doubles from 256 up to ``largest`` while the
    repeats fit a quarter of ``budget_s``, so an emulated dtype (bf16 on a CPU without native
    bf16, ~1 GFLOP/s) is measured in a second, not minutes."""
    n = 256
    while True:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        torch.matmul(a, b)
        one = _timed(lambda: torch.matmul(a, b), device)
        if n >= largest or one * repeats > budget_s / 4:
            break
        n *= 2
    best = one
    for _ in range(max(2, min(repeats, int(budget_s / max(one, 1e-9))))):
        best = min(best, _timed(lambda: torch.matmul(a, b), device))
    return {"flops": 2 * n ** 3 / best, "n": n}


def _timed(work, device: str) -> float:
    sync(device)
    start = time.perf_counter()
    work()
    sync(device)
    return time.perf_counter() - start


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def flops_text(flops_per_s: float) -> str:
    """A FLOP/s figure with three significant digits in a unit that keeps it readable (never
    "0 GFLOP/s" for an emulated dtype's 1.2 GFLOP/s)."""
    for unit, scale in (("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6)):
        if flops_per_s >= scale:
            return f"{flops_per_s / scale:.3g} {unit}"
    return f"{flops_per_s:.3g} FLOP/s"
