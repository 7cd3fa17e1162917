"""CPU kernels of the pretraining step, each the same computation as the plain PyTorch it
replaces (tests check them against it), with fewer passes over memory.

* :func:`attention`: SDPA, except on CPU with dropout, where one ``baddbmm`` takes the scores,
  their scaling and the padding mask, and the dropout mask is :func:`dropout`'s;
* :func:`dropout`: ``F.dropout``, except on CPU, where the mask comes from 16-bit draws of
  numpy's SFC64 generator (seeded from torch's generator, so masks follow ``torch.manual_seed``
  and resume with torch's RNG state), compared straight into the compute dtype;
* :func:`linear_cross_entropy`: the MLM decoder's logits, loss, accuracy and gradient at the
  masked rows, with a float32 softmax a cache-sized chunk at a time;
* :class:`TiedWordEmbedding`: the tied word-embedding matrix's two uses (lookup, decoder) in one
  autograd node, so its gradient is one dense array built in place.

Off the CPU, or under ``torch.compile``, each falls back to the fused PyTorch operation.
Measurements: ``docs/performance.md``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, p: float) -> torch.Tensor:
    """Scaled dot-product attention with dropout ``p`` on the probabilities: ``q`` is
    ``(batch, heads, queries, dim)``, ``k`` and ``v`` ``(batch, heads, keys, dim)``.

    ``mask`` is a boolean ``(batch, 1, 1, keys)`` (True: attend) or None. Without dropout, or
    off the CPU, this is SDPA (fused kernels). On CPU with dropout SDPA falls back to its math
    path and draws the mask with ``bernoulli_``, which is slow there; this is the
    same math with the cheaper mask of :func:`dropout`, in the dtype of ``q`` as SDPA's math
    path and BERT's eager attention compute it under autocast (the softmax kernel accumulates
    in float32 whatever its dtype). One ``baddbmm`` computes the scores, their 1/sqrt(dim)
    scaling and the padding mask (an additive -inf bias), where separate ops would make two
    more passes over the ``(batch, heads, seq, seq)`` scores.

    Example::

        >>> attention(q, k, v, None, 0.1).shape == q.shape
        True
    """
    if p == 0.0 or q.device.type != "cpu" or torch.compiler.is_compiling():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
    batch, heads, queries, dim = q.shape
    keys = k.shape[2]
    if mask is None:
        bias = q.new_zeros(1, 1, keys)
    else:  # (batch * heads, 1, keys): broadcast over the queries
        bias = q.new_zeros(mask.shape).masked_fill_(~mask, float("-inf")).expand(batch, heads, 1, keys)
        bias = bias.reshape(batch * heads, 1, keys)
    scores = torch.baddbmm(bias, q.reshape(batch * heads, queries, dim),
                           k.reshape(batch * heads, keys, dim).transpose(1, 2), alpha=dim ** -0.5)
    probs = dropout(torch.softmax(scores, dim=-1), p, training=True)
    return torch.bmm(probs, v.reshape(batch * heads, keys, dim)).view(batch, heads, queries, dim)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``F.dropout``; on CPU with a mask from 16-bit random numbers (keep when >= p * 65536).

    ``bernoulli_`` on CPU draws one 32-bit number per element through a slow path; four 16-bit
    draws per 64-bit word cost a fraction of that. The drop probability is rounded to a
    multiple of 1/65536. On other devices ``F.dropout`` is already fused.

    The words come from numpy's SFC64 generator (faster than torch's Mersenne Twister), seeded
    by one draw from torch's generator: masks are still reproducible from ``torch.manual_seed``
    and resume with torch's RNG state. (Measurements: ``docs/performance.md``.)

    Example::

        >>> dropout(torch.ones(4, 8), 0.5, training=True)   # zeros and 2.0s
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or torch.compiler.is_compiling():  # compiled: inductor fuses its own RNG
        return F.dropout(x, p, training=True)
    seed = int(torch.empty((), dtype=torch.int64).random_())
    words = torch.from_numpy(np.random.SFC64(seed).random_raw((x.numel() + 3) // 4).view(np.int64))
    draws = words.view(torch.int16)[:x.numel()].view(x.shape)
    # the comparison writes 1.0 / 0.0 in x's dtype: no boolean mask to convert (a pass saved)
    keep = torch.ge(draws, -32768 + round(p * 65536), out=torch.empty_like(x, memory_format=torch.contiguous_format))
    return x * keep.mul_(1.0 / (1.0 - p))


def linear_cross_entropy(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor,
                         chunk_bytes: int | None = None):
    """Cross-entropy sum and correct count of the logits ``x @ weight.T + bias``, in one pass.

    ``x`` is ``(rows, hidden)``, ``weight`` ``(classes, hidden)``, ``bias`` ``(classes,)``,
    ``labels`` ``(rows,)`` with every label valid. Returns a float32 loss sum (differentiable
    in ``x``, ``weight``, ``bias``) and a long count of rows whose top logit is the label.

    When a gradient is wanted the logits are one matmul, written where their gradient will go
    (the only ``(rows, classes)`` array, in the compute dtype); then ``chunk_bytes`` of float32
    rows at a time (default 4 MB, cache-sized) are taken through softmax, loss, accuracy and
    gradient (softmax - onehot, written back over their logits) while in cache. Against
    ``F.linear`` + ``F.cross_entropy`` + ``argmax`` this saves most passes over the
    ``(rows, classes)`` array, which dominate a small model's step, and the single matmul
    runs near the machine's peak where per-chunk ones would re-read the weight. Without a
    gradient (evaluation) the logits exist one chunk at a time. Under autocast the matmuls run
    in the autocast dtype and the softmax in float32, as autocast would do.

    Example::

        >>> loss_sum, correct = linear_cross_entropy(h, decoder.weight, decoder.bias, targets)
        >>> (loss_sum / len(targets)).backward()
    """
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    rows_per_chunk = max(8, (chunk_bytes or (4 << 20)) // (4 * weight.shape[0]))
    if not torch.is_grad_enabled():  # under no_grad a Function still sees needs_input_grad for parameters
        x, weight, bias = x.detach(), weight.detach(), bias.detach()
    return _LinearCrossEntropy.apply(x.to(dtype), weight.to(dtype), bias.to(dtype), labels, rows_per_chunk)


class _LinearCrossEntropy(torch.autograd.Function):
    """Forward computes the loss and, when a gradient is wanted, d(loss)/d(logits) chunk by chunk."""

    @staticmethod
    def forward(ctx, x, weight, bias, labels, rows_per_chunk: int):
        want_grad = any(ctx.needs_input_grad[:3])
        rows, classes = x.shape[0], weight.shape[0]
        accumulate = torch.promote_types(x.dtype, torch.float32)
        loss = torch.zeros((), dtype=accumulate, device=x.device)
        correct = torch.zeros((), dtype=torch.long, device=x.device)
        grad_logits = grad_bias = None
        chunk_rows = min(rows, rows_per_chunk)
        # float32 chunks: the logits (when they are not float32 already) and their softmax
        logits_fp32 = None if x.dtype == accumulate else x.new_empty(chunk_rows, classes, dtype=accumulate)
        probs = x.new_empty(chunk_rows, classes, dtype=accumulate)
        with torch.autocast(x.device.type, enabled=False):
            if want_grad:
                grad_logits = _workspace.take(rows * classes, x.dtype, x.device).view(rows, classes)
                torch.addmm(bias, x, weight.t(), out=grad_logits)
                grad_bias = torch.zeros(classes, dtype=accumulate, device=x.device)
            for start in range(0, rows, rows_per_chunk):
                chunk = slice(start, start + rows_per_chunk)
                logits = grad_logits[chunk] if want_grad else torch.addmm(bias, x[chunk], weight.t())
                z = logits if logits_fp32 is None else logits_fp32[:len(logits)].copy_(logits)
                chunk_loss, chunk_correct = _chunk_cross_entropy(z, labels[chunk], probs[:len(z)],
                                                                 logits if want_grad else None, grad_bias)
                loss += chunk_loss
                correct += chunk_correct
        ctx.save_for_backward(x, weight, grad_logits, grad_bias)
        ctx.mark_non_differentiable(correct)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, grad_correct):
        x, weight, grad_logits, grad_bias = ctx.saved_tensors
        scale = grad_loss.to(x.dtype)
        grad_x = grad_logits @ weight * scale if ctx.needs_input_grad[0] else None
        # scale the (rows, hidden) operand, not the (classes, hidden) product
        grad_weight = grad_logits.t() @ (x * scale) if ctx.needs_input_grad[1] else None
        grad_bias = (grad_bias * grad_loss).to(x.dtype) if ctx.needs_input_grad[2] else None
        _workspace.give_back(grad_logits)
        return grad_x, grad_weight, grad_bias, None, None


class TiedWordEmbedding(torch.autograd.Function):
    """The word-embedding matrix's two uses in one autograd node: the lookup of the input tokens
    (float32 rows) and its cast to the compute dtype for the tied MLM decoder.

    Apart, autograd would zero-fill a ``(vocab, hidden)`` gradient for the lookup, convert the
    decoder's bf16 gradient to float32, and add the two out of place: three passes over the
    matrix per step (mini: 31 MB each). Here the decoder's gradient is converted once and the
    looked-up rows' gradients are added into it in place. The result is the same (up to the
    order of float additions) and ``weight.grad`` is one dense array.
    """

    @staticmethod
    def forward(ctx, weight, input_ids, padding_idx, dtype):
        ctx.save_for_backward(input_ids)
        ctx.padding_idx, ctx.weight_shape, ctx.weight_dtype = padding_idx, weight.shape, weight.dtype
        return F.embedding(input_ids, weight, padding_idx), weight.to(dtype)

    @staticmethod
    def backward(ctx, grad_words, grad_decoder):
        (input_ids,) = ctx.saved_tensors
        if grad_decoder is None:  # the decoder weight went unused
            grad = torch.zeros(ctx.weight_shape, dtype=ctx.weight_dtype, device=input_ids.device)
        else:  # a new array: incoming gradients are not ours to change
            grad = grad_decoder.to(ctx.weight_dtype, copy=True)
        if grad_words is not None:
            ids, rows = input_ids.flatten(), grad_words.reshape(-1, grad.shape[1]).to(grad.dtype)
            if ctx.padding_idx is not None:  # as F.embedding: the padding row gets no gradient
                keep = ids != ctx.padding_idx
                ids, rows = ids[keep], rows[keep]
            grad.index_add_(0, ids, rows)
        return grad, None, None, None


class _Workspace:
    """Reuses the (rows, classes) gradient buffer across steps on CPU.

    It is tens of MB, and every fresh CPU allocation that large is new memory from the OS whose
    pages fault in on first write, at every step. A buffer is handed
    out to one forward at a time and comes back when its backward has used it, so overlapping
    forwards simply get fresh memory (so a second backward through a retained graph is not
    supported: the buffer may have been handed on). CUDA's caching allocator needs no help.
    """

    def __init__(self):
        self.free: dict[tuple, torch.Tensor] = {}

    def take(self, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        buffer = self.free.pop((dtype, device), None) if device.type == "cpu" else None
        if buffer is None or buffer.numel() < numel:
            buffer = torch.empty(numel, dtype=dtype, device=device)
        return buffer[:numel]

    def give_back(self, view: torch.Tensor) -> None:
        if view.device.type == "cpu":
            base = view._base if view._base is not None else view
            self.free[(view.dtype, view.device)] = base.view(-1)


_workspace = _Workspace()


def _chunk_cross_entropy(z: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor,
                         grad_out: torch.Tensor | None, grad_bias: torch.Tensor | None):
    """Loss sum and correct count of a ``(rows, classes)`` chunk of float32 logits ``z``.

    ``probs`` is a float32 buffer of ``z``'s shape for the softmax (one fused pass per row,
    while the chunk is in cache). When ``grad_out`` is given (it may be ``z`` itself), writes
    softmax - onehot (d loss / d logits) into it and adds its column sums to ``grad_bias``.
    """
    rows = torch.arange(len(labels), device=z.device)
    target = z[rows, labels]
    correct = (target >= z.amax(1)).sum()  # the label's logit is the top one (argmax, up to ties)
    torch.softmax(z, 1, out=probs)
    p_target = probs[rows, labels]
    # -log p(label) = logsumexp - label's logit; where p underflows (a loss above ~87 nats) the
    # logits are still there to take it exactly
    losses = -p_target.log()
    underflow = p_target < 1e-30
    if z.device.type != "cpu":  # no host sync: one more pass over the chunk
        losses = torch.where(underflow, torch.logsumexp(z, 1) - target, losses)
    elif bool(underflow.any()):
        losses[underflow] = torch.logsumexp(z[underflow], 1) - target[underflow]
    if grad_out is not None:
        probs[rows, labels] -= 1.0
        grad_bias += probs.sum(0)
        grad_out.copy_(probs)
    return losses.sum(), correct
