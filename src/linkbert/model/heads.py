"""What the pretraining model needs to know of a transformers masked-LM architecture, and the
statistics its losses return.

* :func:`mlm_head`: the function from final hidden rows to vocabulary logits, whatever the
  architecture calls its head (:func:`mlm_transform`, then the decoder);
  :func:`freeze_unused_head_bias`: the head bias an untied decoder never reads;
* :func:`masked_rows`: the masked positions' rows, by a boolean or a fixed-shape gather;
* :func:`classification_stats`, :func:`relation_loss` and :class:`PretrainingOutput`: loss sums,
  counts and correct counts, which a trainer all-reduces before it divides;
  :func:`chunked_classification_stats`: the same of a decoder's logits without holding them;
* :func:`max_input_length`, :func:`position_offset`, :func:`masked_lm_class`, :func:`has_pooler`:
  facts of a config.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput

from linkbert.errors import ConfigError
from linkbert.objectives import IGNORE_INDEX


@dataclass
class PretrainingOutput(ModelOutput):
    """What one forward pass returns; every field is ``None`` when its inputs were not given.

    The ``*_sum``/``*_count`` fields let a trainer normalise exactly over several ranks or
    accumulation steps: all-reduce the sums and counts, then divide (the per-batch means
    weight batches equally, not tokens). ``relation_logits`` is ``(batch, num_relations)``;
    every other field is a scalar.
    """

    loss: torch.Tensor | None = None  # mlm_loss + relation_loss (equal weights)
    mlm_loss: torch.Tensor | None = None  # mean cross-entropy over masked positions
    relation_loss: torch.Tensor | None = None  # mean cross-entropy over labelled pairs
    relation_accuracy: torch.Tensor | None = None  # no grad
    mlm_loss_sum: torch.Tensor | None = None
    mlm_count: torch.Tensor | None = None  # masked positions in the batch (long)
    mlm_correct: torch.Tensor | None = None  # masked positions whose argmax is the label (long)
    relation_loss_sum: torch.Tensor | None = None
    relation_count: torch.Tensor | None = None  # labelled pairs (long)
    relation_correct: torch.Tensor | None = None  # labelled pairs whose argmax is the label (long)
    relation_logits: torch.Tensor | None = None


def classification_stats(logits: torch.Tensor, labels: torch.Tensor):
    """Cross-entropy sum, count and correct predictions over the rows whose label is not -100.

    ``logits`` is ``(rows, classes)`` in any dtype (the loss is taken in float32, as autocast
    would), ``labels`` is ``(rows,)``. Returns three scalars: a float loss sum, long count,
    long correct.

    Example::

        >>> classification_stats(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, -100]))
        (tensor(0.1269), tensor(1), tensor(1))
    """
    logits_fp32 = logits.to(torch.promote_types(logits.dtype, torch.float32))
    loss_sum = F.cross_entropy(logits_fp32, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    with torch.no_grad():
        valid = labels != IGNORE_INDEX
        count = valid.sum()
        correct = ((logits.argmax(-1) == labels) & valid).sum()
    return loss_sum, count, correct


def relation_loss(out: PretrainingOutput, relation_labels: torch.Tensor) -> torch.Tensor:
    """Fill ``out``'s relation loss, counts and accuracy from its ``relation_logits``; the mean loss."""
    out.relation_loss_sum, out.relation_count, out.relation_correct = classification_stats(
        out.relation_logits, relation_labels)
    count = out.relation_count.clamp(min=1)
    out.relation_loss = out.relation_loss_sum / count
    out.relation_accuracy = out.relation_correct.float() / count
    return out.relation_loss


def mlm_head(mlm: nn.Module):
    """The function from final hidden rows ``(n, hidden)`` to vocabulary logits ``(n, vocab)``
    of a transformers masked-LM model: its own head, whatever the architecture calls it."""
    transform = mlm_transform(mlm)
    return lambda rows: mlm.get_output_embeddings()(transform(rows))


def mlm_transform(mlm: nn.Module):
    """The masked-LM head before its decoder (``mlm.get_output_embeddings()``, the vocabulary
    projection): final hidden rows to the rows the decoder reads."""
    # bound methods and closures, not modules: an attribute holding the head module would
    # register it a second time
    if hasattr(mlm, "cls") and hasattr(mlm.cls, "predictions"):  # BERT and its kin
        return mlm.cls.predictions.transform.__call__
    if hasattr(mlm, "lm_head"):  # RoBERTa, XLM-R, CamemBERT, ...
        head = mlm.lm_head
        return lambda rows: head.layer_norm(F.gelu(head.dense(rows)))
    if hasattr(mlm, "head") and hasattr(mlm, "decoder"):  # ModernBERT
        return mlm.head.__call__
    if hasattr(mlm, "vocab_projector"):  # DistilBERT
        return lambda rows: mlm.vocab_layer_norm(mlm.activation(mlm.vocab_transform(rows)))
    raise ConfigError(f"{type(mlm).__name__}: no known masked-LM head (BERT's cls, RoBERTa's lm_head, ModernBERT's "
                      "head and decoder, DistilBERT's vocab_projector); this architecture is not supported yet")


def chunked_classification_stats(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                                 labels: torch.Tensor, chunk_rows: int = 1024):
    """:func:`classification_stats` of the logits ``rows @ weight.T + bias``, without them: a
    chunk of ``chunk_rows`` rows at a time, logits, float32 log-softmax, loss, accuracy and the
    gradient (softmax - one-hot, times the weight; into the weight and bias) in the forward pass,
    so no ``(rows, classes)`` array outlives its chunk and the backward only scales what the
    forward kept (liger-kernel's fused linear cross-entropy, in PyTorch: fixed shapes, one
    chunk's logits live at a time, a compiled step fuses each chunk's softmax). Under autocast the
    matmuls run in the autocast dtype, the softmax in float32, as :func:`classification_stats`.

    Example::

        >>> loss_sum, count, correct = chunked_classification_stats(rows, decoder.weight, decoder.bias, targets)
    """
    device = rows.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else rows.dtype
    if not torch.is_grad_enabled():  # under no_grad a Function still sees needs_input_grad for parameters
        rows, weight, bias = rows.detach(), weight.detach(), bias.detach() if bias is not None else None
    bias = bias.to(dtype) if bias is not None else None
    loss_sum, correct = _ChunkedLinearCrossEntropy.apply(rows.to(dtype), weight.to(dtype), bias, labels,
                                                         max(1, int(chunk_rows)))
    with torch.no_grad():
        count = (labels != IGNORE_INDEX).sum()
    return loss_sum, count, correct


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Forward: loss sum, correct count, and the gradients of the loss sum, chunk by chunk;
    backward: those gradients times the incoming one."""

    @staticmethod
    def forward(ctx, x, weight, bias, labels, chunk_rows: int):
        want = ctx.needs_input_grad[:3]
        loss = x.new_zeros((), dtype=torch.float32)
        correct = torch.zeros((), dtype=torch.long, device=x.device)
        grad_x = torch.zeros_like(x) if want[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if want[1] else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if bias is not None and want[2] else None
        with torch.autocast(x.device.type, enabled=False):
            for start in range(0, x.shape[0], chunk_rows):
                rows, targets = x[start:start + chunk_rows], labels[start:start + chunk_rows]
                logits = (rows @ weight.t() if bias is None else torch.addmm(bias, rows, weight.t())).float()
                valid = targets != IGNORE_INDEX
                picked = targets.clamp(min=0)[:, None]
                log_probs = logits.log_softmax(-1)
                loss = loss - (log_probs.gather(1, picked)[:, 0] * valid).sum()
                correct = correct + ((logits.argmax(-1) == targets) & valid).sum()
                if any(want):  # d(loss sum)/d(logits) = softmax - one-hot, on the rows with a label
                    grad = log_probs.exp_().scatter_add_(1, picked, -torch.ones_like(picked, dtype=logits.dtype))
                    grad = (grad * valid[:, None]).to(x.dtype)
                    if grad_x is not None:
                        grad_x[start:start + chunk_rows] = grad @ weight
                    if grad_weight is not None:
                        grad_weight += (grad.t() @ rows).float()
                    if grad_bias is not None:
                        grad_bias += grad.sum(0, dtype=torch.float32)
        ctx.save_for_backward(grad_x, grad_weight, grad_bias)
        ctx.mark_non_differentiable(correct)
        ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)
        return loss, correct

    @staticmethod
    def backward(ctx, grad_loss, _):
        grad_x, grad_weight, grad_bias = ctx.saved_tensors
        weight_dtype, bias_dtype = ctx.dtypes
        return (grad_x * grad_loss.to(grad_x.dtype) if grad_x is not None else None,
                (grad_weight * grad_loss).to(weight_dtype) if grad_weight is not None else None,
                (grad_bias * grad_loss).to(bias_dtype) if grad_bias is not None else None, None, None)


def freeze_unused_head_bias(mlm: nn.Module) -> list[str]:
    """Stop training the head's ``bias`` where it is not the decoder's: BERT's and RoBERTa's heads
    add ``decoder.bias``, and keep ``bias`` as its tied source; with untied embeddings
    (``tie_word_embeddings=False``) transformers leaves the two apart, and ``bias`` takes no part
    in the forward. A parameter that gets no gradient stops DistributedDataParallel at its
    second step. Its value stays in the checkpoint, unchanged. Returns the frozen names."""
    frozen = []
    for name in ("cls.predictions", "lm_head"):
        try:
            head = mlm.get_submodule(name)
        except AttributeError:
            continue
        decoder = getattr(head, "decoder", None)
        bias, decoder_bias = getattr(head, "bias", None), getattr(decoder, "bias", None)
        if isinstance(bias, nn.Parameter) and decoder_bias is not None and bias is not decoder_bias:
            bias.requires_grad_(False)
            frozen.append(f"{name}.bias")
    return frozen


def masked_rows(hidden: torch.Tensor, labels: torch.Tensor, max_predictions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows (n, hidden), targets (n,))`` of the masked positions. With ``max_predictions``:
    ``n = batch * max_predictions``, each sequence's masked positions first (in order), then
    unmasked ones whose target is -100 (ignored by the loss): a fixed shape and no host sync. A
    sequence with more masked positions than that would lose some: the collator caps them."""
    masked = labels != IGNORE_INDEX
    if max_predictions <= 0:
        return hidden[masked], labels[masked]
    # a stable sort of the mask: the masked positions, in order, before the rest
    order = torch.argsort((~masked).to(torch.int8), dim=1, stable=True)[:, :max_predictions]
    rows = hidden.gather(1, order[..., None].expand(-1, -1, hidden.shape[-1]))
    return rows.flatten(0, 1), labels.gather(1, order).flatten()


def max_input_length(config) -> int:
    """The longest input the position embeddings allow: RoBERTa and its kin number positions
    from ``pad_token_id + 1`` (514 embeddings, 512 tokens)."""
    return int(getattr(config, "max_position_embeddings", 512)) - position_offset(config)


def position_offset(config) -> int:
    """The position id of a sequence's first token: ``pad_token_id + 1`` for RoBERTa and its
    kin (their embeddings count positions after the padding id), 0 for the others."""
    if config.model_type in ("roberta", "xlm-roberta", "camembert"):
        return int(config.pad_token_id) + 1
    return 0


def masked_lm_class(config) -> type:
    """The transformers masked-LM class of ``config``'s architecture (``BertForMaskedLM``, ...)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

    try:
        return MODEL_FOR_MASKED_LM_MAPPING[type(config)]
    except KeyError:
        raise ConfigError(f"model_type {config.model_type!r} has no masked-LM model in transformers") from None


def has_pooler(config) -> bool:
    """Whether the architecture's base model, as ``AutoModel`` builds it, has a pooler (a dense +
    tanh on the first token: BERT, RoBERTa and their kin take ``add_pooling_layer``); its
    masked-LM model leaves it out, and the pretraining model's pooler stands in for it."""
    from transformers.models.auto.modeling_auto import MODEL_MAPPING

    base = MODEL_MAPPING.get(type(config), None)
    return base is not None and "add_pooling_layer" in inspect.signature(base.__init__).parameters
