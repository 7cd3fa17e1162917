"""What the pretraining model needs to know of a transformers masked-LM architecture, and the
statistics its losses return.

* :func:`mlm_head`: the function from final hidden rows to vocabulary logits, whatever the
  architecture calls its head; :func:`freeze_unused_head_bias`: the head bias an untied decoder
  never reads;
* :func:`masked_rows`: the masked positions' rows, by a boolean or a fixed-shape gather;
* :func:`classification_stats`, :func:`relation_loss` and :class:`PretrainingOutput`: loss sums,
  counts and correct counts, which a trainer all-reduces before it divides;
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
    # bound methods and closures, not modules: an attribute holding the head module would
    # register it a second time
    if hasattr(mlm, "cls") and hasattr(mlm.cls, "predictions"):  # BERT and its kin
        return mlm.cls.__call__
    if hasattr(mlm, "lm_head"):  # RoBERTa, XLM-R, CamemBERT, ...
        return mlm.lm_head.__call__
    if hasattr(mlm, "head") and hasattr(mlm, "decoder"):  # ModernBERT
        return lambda rows: mlm.decoder(mlm.head(rows))
    if hasattr(mlm, "vocab_projector"):  # DistilBERT
        return lambda rows: mlm.vocab_projector(mlm.vocab_layer_norm(mlm.activation(mlm.vocab_transform(rows))))
    raise ConfigError(f"{type(mlm).__name__}: no known masked-LM head (BERT's cls, RoBERTa's lm_head, ModernBERT's "
                      "head and decoder, DistilBERT's vocab_projector); this architecture is not supported yet")


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
