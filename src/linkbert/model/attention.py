"""Attention without padding on the transformers backend: the pairs of a micro-batch flattened
into one row, and the attention function that reads them.

**The flattened layout** (``collator.pack_pairs`` builds it on the host; :func:`rows_as_sequences`
turns a padded batch into it on the device): ``input_ids`` and the other token tensors are ``(1,
N)``, the real tokens of every pair one after another, then a tail that fills the row up to one
of a few bucket sizes (so ``torch.compile`` sees few shapes); ``position_ids`` restart at 0 for
every pair; ``cu_seqlens`` (int32) holds the cumulative lengths, the tail counting as one more
sequence (so every row the layers compute belongs to a sequence, and no row is left unwritten).

**Attention** is then the flash kernels' variable-length form, which needs no key mask:

* ``varlen`` (:func:`varlen_attention`, registered in transformers' ``AttentionInterface``): torch's
  own ``torch.nn.attention.varlen.varlen_attn`` (torch 2.10+) on a CUDA device, for fp16/bf16;
  elsewhere (a CPU, float32) the same attention computed exactly by SDPA on the sequences laid
  back out padded, with a key mask (and the sliding window of ModernBERT's local layers): what
  the padded model computes, so CPU tests check the flattened layout against it;
* ``flash_attention_2`` / ``flash_attention_4``: transformers' own flash-attn paths, which read
  the same layout from the ``cu_seq_lens_*`` and ``max_length_*`` arguments (transformers'
  ``modeling_flash_attention_utils``).

The kernels have no dropout on the attention probabilities: ``model.loading`` refuses them with
``attention_dropout`` above 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

try:  # torch 2.10+; imported once, here, so that a compiled forward finds it without an import
    from torch.nn.attention.varlen import varlen_attn
except ImportError:
    varlen_attn = None

VARLEN = "varlen"
# the attention implementations that read the flattened layout
FLATTENED = (VARLEN, "flash_attention_2", "flash_attention_4")


def register() -> None:
    """Make ``attn_implementation="varlen"`` known to transformers (idempotent)."""
    from transformers import AttentionInterface

    if VARLEN not in AttentionInterface._global_mapping:
        AttentionInterface.register(VARLEN, varlen_attention)


def has_varlen_kernel() -> bool:
    """Whether this torch has ``torch.nn.attention.varlen`` (2.10+)."""
    return varlen_attn is not None


def varlen_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                     attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                     sliding_window: int | None = None, *, cu_seq_lens_q: torch.Tensor | None = None,
                     max_length_q: int | None = None, **_) -> tuple[torch.Tensor, None]:
    """Attention of the flattened layout, as transformers' attention interface calls it:
    ``query``, ``key``, ``value`` ``(1, heads, N, head_dim)``; returns ``((1, N, heads,
    head_dim), None)``. ``sliding_window``: ModernBERT's local layers pass their window + 1, and
    a token sees the ones at most ``sliding_window - 1`` away (as transformers' flash path)."""
    if cu_seq_lens_q is None or query.shape[0] != 1:
        raise RuntimeError("varlen attention reads the flattened layout (cu_seq_lens_q, one row); "
                           "LinkPretrainingModel lays a padded batch out so")
    if dropout and module.training:
        raise RuntimeError("varlen attention has no dropout on the attention probabilities (model.loading refuses "
                           "attention_dropout > 0 with it)")
    window = sliding_window - 1 if sliding_window else -1
    q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # (N, heads, head_dim)
    longest = int(max_length_q or q.shape[0])
    if q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and varlen_attn is not None:
        out = varlen_attn(q, k, v, cu_seq_lens_q, cu_seq_lens_q, longest, longest, scale=scaling,
                          window_size=(window, window))
    else:
        out = padded_attention(q, k, v, cu_seq_lens_q, longest, scaling, window)
    return out[None], None


def padded_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, longest: int,
                     scale: float | None, window: int = -1) -> torch.Tensor:
    """The flattened layout's attention computed padded: every sequence laid out in a row of
    ``longest`` positions, SDPA with a key mask (and ``|i - j| <= window`` where ``window`` >=
    0), the rows read back. ``q``, ``k``, ``v``: ``(N, heads, head_dim)``; no host sync (the
    shapes come from ``cu_seqlens``' length and ``longest``)."""
    sequence, position = token_places(cu_seqlens, q.shape[0])
    sequences = cu_seqlens.shape[0] - 1
    slots = sequence * longest + position  # each token's place in the padded layout

    def padded(x):
        out = x.new_zeros(sequences * longest, *x.shape[1:])
        return out.index_copy(0, slots, x).view(sequences, longest, *x.shape[1:]).transpose(1, 2)

    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).to(torch.long)
    places = torch.arange(longest, device=q.device)
    # (sequences, 1, 1, longest): the real keys; an empty sequence (no query reads it) keeps one,
    # so that no softmax is over nothing
    mask = (places < lengths.clamp(min=1)[:, None])[:, None, None, :]
    if window >= 0:
        mask = mask & ((places[:, None] - places[None, :]).abs() <= window)
    out = F.scaled_dot_product_attention(padded(q), padded(k), padded(v), attn_mask=mask, scale=scale)
    return out.transpose(1, 2).reshape(sequences * longest, *q.shape[1:]).index_select(0, slots)


def token_places(cu_seqlens: torch.Tensor, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sequence, position)`` of each of ``tokens`` flattened tokens: which sequence of
    ``cu_seqlens`` holds it, and where in it."""
    index = torch.arange(tokens, device=cu_seqlens.device)
    sequence = torch.searchsorted(cu_seqlens[1:].to(torch.long), index, right=True)
    return sequence, index - cu_seqlens.to(torch.long)[sequence]


def rows_as_sequences(attention_mask: torch.Tensor | None, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded ``(batch, seq)`` batch flattened as it is: ``(cu_seqlens, position_ids
    (1, batch * seq))``, every row's real tokens one sequence and its padding another (empty for
    a full row), positions restarting per row. No data moves and nothing is read back: the
    padded positions are computed (as the padded model computes them), but attention never
    mixes them with the real ones."""
    batch, seq = shape
    device = attention_mask.device if attention_mask is not None else None
    if attention_mask is None:
        lengths = torch.full((batch,), seq, dtype=torch.int32, device=device)
    else:
        lengths = attention_mask.sum(1, dtype=torch.int32)
    starts = torch.arange(batch, dtype=torch.int32, device=lengths.device) * seq
    bounds = torch.stack([starts + lengths, starts + seq], 1).flatten()
    cu_seqlens = torch.cat([bounds.new_zeros(1), bounds])
    positions = torch.arange(seq, device=lengths.device).repeat(batch)[None]
    return cu_seqlens, positions


register()  # every model of this package may be built with attn_implementation="varlen"
