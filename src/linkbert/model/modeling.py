"""LinkBERT's pretraining model: a BERT encoder, an MLM head and a document relation head.

The parameter names are those of HF ``BertForPreTraining`` (``bert.*``, ``cls.predictions.*``),
so any BERT checkpoint's encoder and MLM head load into it and an exported model loads into
``AutoModel``/``AutoModelFor*``. The relation head is ``relation_head`` (a ``Linear(hidden,
num_relations)`` on BERT's pooled [CLS], i.e. after the pooler's dense + tanh, like BERT's NSP
head), named so it never clashes with ``cls.seq_relationship``.

What differs from ``BertForPreTraining`` is cost, for the same losses and gradients: the MLM
head transforms and decodes only the masked positions (about 15% of the tokens), never the
``(batch, seq, vocab)`` logits, which for a small model cost several times the encoder (tiny:
128 x 30522 per token against 12 x 128^2 per layer); the encoder computes no padding, and its
last layer only the rows a loss reads (masked positions and [CLS]): ``encoder.py``.

Example::

    >>> config = preset_config("tiny", vocab_size=30522, num_relations=3)
    >>> model = LinkBertForPreTraining(config)
    >>> out = model(input_ids, token_type_ids, attention_mask, labels=labels, relation_labels=rel)
    >>> out.loss.backward()          # mean MLM loss + mean relation loss
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig
from transformers.models.bert.modeling_bert import (
    BertModel,
    BertOnlyMLMHead,
    BertPreTrainedModel,
)
from transformers.utils import ModelOutput

from linkbert.errors import ConfigError
from linkbert.model import encoder
from linkbert.model.kernels import TiedWordEmbedding, linear_cross_entropy
from linkbert.objectives import IGNORE_INDEX

# name -> (layers, hidden, heads, FFN); bio-base is base geometry with the corpus's own vocabulary
PRESETS = {
    "tiny": (2, 128, 2, 512),      # the paper's LinkBERT-tiny (4.4M parameters with a 30522 vocabulary)
    "mini": (4, 256, 4, 1024),     # CPU-sized
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
    "bio-base": (12, 768, 12, 3072),
}


def preset_config(name: str, vocab_size: int, **overrides) -> BertConfig:
    """A ``BertConfig`` for a named preset, with ``num_relations`` (default 3) and SDPA attention.

    ``overrides`` set any config field (``num_relations=0``, ``hidden_dropout_prob=0.0``, ...).

    Example::

        >>> preset_config("tiny", 30522).num_hidden_layers
        2
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}, or give a checkpoint folder")
    layers, hidden, heads, ffn = PRESETS[name]
    fields = dict(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=ffn, max_position_embeddings=512, type_vocab_size=2, num_relations=3)
    fields.update(overrides)
    config = BertConfig(**fields)
    config._attn_implementation = "sdpa"
    return config


@dataclass
class LinkBertPreTrainingOutput(ModelOutput):
    """What one forward pass returns; every field is ``None`` when its inputs were not given.

    The ``*_sum``/``*_count`` fields let a trainer normalise exactly over several ranks or
    accumulation steps: all-reduce the sums and counts, then divide (the per-batch means
    weight batches equally, not tokens).

    Shapes: ``loss``, ``mlm_loss``, ``relation_loss``, ``relation_accuracy``, sums and counts
    are scalars; ``relation_logits`` is ``(batch, num_relations)``.
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


class LinkBertForPreTraining(BertPreTrainedModel):
    """BERT + MLM head (``cls.predictions``) + relation head (``relation_head``).

    ``config.num_relations``: 3 for LinkBERT's document relation prediction, 2 for BERT's NSP,
    0 for MLM only (no relation head; the pooler is then frozen, since nothing trains it, so
    it stays as initialised, e.g. BERT's, and distributed training sees no unused parameter).
    """

    # as BertForPreTraining: the decoder is the word embedding matrix, its bias cls.predictions.bias
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.num_relations = int(getattr(config, "num_relations", 3))
        self.bert = BertModel(config, add_pooling_layer=True)
        self.cls = BertOnlyMLMHead(config)
        self.relation_head = nn.Linear(config.hidden_size, self.num_relations) if self.num_relations else None
        self.post_init()
        if not self.num_relations:
            self.bert.pooler.requires_grad_(False)

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        relation_labels: torch.Tensor | None = None,
        *,
        dense_mlm: bool = False,
    ) -> LinkBertPreTrainingOutput:
        """Encode a batch and compute the pretraining losses.

        Args:
            input_ids, token_type_ids, attention_mask: ``(batch, seq)``.
            labels: ``(batch, seq)`` original token ids at masked positions, -100 elsewhere.
            relation_labels: ``(batch,)`` relation class of each pair (-100: no loss);
                ignored when the model has no relation head.
            dense_mlm: compute vocabulary logits at every position, as ``BertForPreTraining``
                does (same loss, much slower; kept for checking the sparse path).

        Example::

            >>> out = model(ids, types, mask, labels=labels, relation_labels=rel)
            >>> out.loss, out.mlm_count, out.relation_logits.shape   # (..., ..., (batch, 3))
        """
        words = decoder_weight = masked = None
        if labels is not None and not dense_mlm:
            words, decoder_weight = self._tied_word_embedding(input_ids)
            masked = labels != IGNORE_INDEX
        hidden, pooled_output = self.encode(input_ids, token_type_ids, attention_mask, word_embeddings=words,
                                            positions=masked)
        out = LinkBertPreTrainingOutput()
        losses = []
        if labels is not None:
            if dense_mlm:
                out.mlm_loss_sum, out.mlm_count, out.mlm_correct = classification_stats(
                    self.cls(hidden).flatten(0, 1), labels.flatten())
            else:  # hidden: the masked positions' rows only
                out.mlm_loss_sum, out.mlm_correct = self._sparse_mlm(hidden, labels[masked], decoder_weight)
                out.mlm_count = masked.sum()
            out.mlm_loss = out.mlm_loss_sum / out.mlm_count.clamp(min=1)
            losses.append(out.mlm_loss)
        if self.relation_head is not None:
            out.relation_logits = self.relation_head(pooled_output)
            if relation_labels is not None:
                losses.append(relation_loss(out, relation_labels))
        if losses:
            out.loss = sum(losses)
        return out

    def _tied_word_embedding(self, input_ids: torch.Tensor):
        """The input's word embeddings and the decoder weight in the compute dtype, from one node
        (:class:`~linkbert.model.kernels.TiedWordEmbedding`) where that saves passes over the matrix; else ``(None, None)``:
        ``encode`` looks the words up and the decoder casts its own weight."""
        weight = self.bert.embeddings.word_embeddings.weight
        device = input_ids.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
        if device != "cpu" or dtype == weight.dtype or torch.compiler.is_compiling() or not torch.is_grad_enabled():
            return None, None
        return TiedWordEmbedding.apply(weight, input_ids, self.bert.embeddings.word_embeddings.padding_idx, dtype)

    def encode(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
               attention_mask: torch.Tensor | None = None, *, word_embeddings: torch.Tensor | None = None,
               positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``self.bert``'s hidden states ``(batch, seq, hidden)`` (zeros at padded positions) and
        pooled [CLS] ``(batch, hidden)``, computed by :func:`linkbert.model.encoder.encode`;
        with ``positions`` (a ``(batch, seq)`` boolean), only those positions' ``(n, hidden)`` rows.

        Example::

            >>> hidden, pooled = model.encode(input_ids, token_type_ids, attention_mask)
        """
        return encoder.encode(self.bert, input_ids, token_type_ids, attention_mask, training=self.training,
                              word_embeddings=word_embeddings, positions=positions)

    def _sparse_mlm(self, rows: torch.Tensor, targets: torch.Tensor, decoder_weight: torch.Tensor | None = None):
        """(loss sum, correct) of the MLM head on the masked positions' ``(n, hidden)`` rows.

        The transform and the tied decoder run on those rows only (about 15% of the tokens), and
        the decoder's logits go through the softmax a cache-sized chunk at a time (:func:`linear_cross_entropy`).
        ``decoder_weight`` replaces the decoder's own (tied) weight, e.g. already cast.
        """
        rows = self.cls.predictions.transform(rows)
        decoder = self.cls.predictions.decoder
        weight = decoder.weight if decoder_weight is None else decoder_weight
        return linear_cross_entropy(rows, weight, decoder.bias, targets)


def relation_loss(out: LinkBertPreTrainingOutput, relation_labels: torch.Tensor) -> torch.Tensor:
    """Fill ``out``'s relation loss, counts and accuracy from its ``relation_logits``; the mean loss."""
    out.relation_loss_sum, out.relation_count, out.relation_correct = classification_stats(
        out.relation_logits, relation_labels)
    count = out.relation_count.clamp(min=1)
    out.relation_loss = out.relation_loss_sum / count
    out.relation_accuracy = out.relation_correct.float() / count
    return out.relation_loss


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
