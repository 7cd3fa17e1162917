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
last layer only the rows a loss reads (masked positions and [CLS]); see :meth:`encode`.

Example::

    >>> config = preset_config("tiny", vocab_size=30522, num_relations=3)
    >>> model = LinkBertForPreTraining(config)
    >>> out = model(input_ids, token_type_ids, attention_mask, labels=labels, relation_labels=rel)
    >>> out.loss.backward()          # mean MLM loss + mean relation loss
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label of positions (MLM) or pairs (relation) that carry no loss

# objective -> number of relation classes: LinkBERT's {contiguous, random, linked}, BERT's NSP
# {contiguous, random}, and the "no DRP" ablation without a relation head
RELATIONS = {"linkbert": 3, "bert": 2, "mlm-only": 0}

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
        raise ValueError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}, or give a checkpoint folder")
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
                out.relation_loss_sum, out.relation_count, out.relation_correct = classification_stats(
                    out.relation_logits, relation_labels)
                count = out.relation_count.clamp(min=1)
                out.relation_loss = out.relation_loss_sum / count
                out.relation_accuracy = out.relation_correct.float() / count
                losses.append(out.relation_loss)
        if losses:
            out.loss = sum(losses)
        return out

    def _tied_word_embedding(self, input_ids: torch.Tensor):
        """The input's word embeddings and the decoder weight in the compute dtype, from one node
        (:class:`_TiedWordEmbedding`) where that saves passes over the matrix; else ``(None, None)``:
        ``encode`` looks the words up and the decoder casts its own weight."""
        weight = self.bert.embeddings.word_embeddings.weight
        device = input_ids.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
        if device != "cpu" or dtype == weight.dtype or torch.compiler.is_compiling() or not torch.is_grad_enabled():
            return None, None
        return _TiedWordEmbedding.apply(weight, input_ids, self.bert.embeddings.word_embeddings.padding_idx, dtype)

    def encode(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
               attention_mask: torch.Tensor | None = None, *,
               word_embeddings: torch.Tensor | None = None,
               positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``self.bert``'s computation, written out for training speed: ``(batch, seq, hidden)``
        hidden states and the ``(batch, hidden)`` pooled [CLS].

        Same parameters and the same function as ``self.bert(...)`` (equal up to float rounding
        in eval mode at the real tokens; padded positions come back as zeros; dropout draws
        differ), computed for training speed:

        * where at least ``UNPAD_FROM`` of the batch is padding (a batch of Wikipedia pairs is
          about a fifth), every per-token operation (projections, feed-forward blocks,
          LayerNorms, dropout) runs on the real tokens' rows only; attention alone sees each
          sequence padded to the batch's longest, with a key mask;
        * one matmul for the query, key and value projections;
        * on CPU a dropout mask drawn from 16-bit random numbers, several times cheaper than
          ``bernoulli_``.

        ``word_embeddings``: the ``(batch, seq, hidden)`` looked-up word embeddings of
        ``input_ids``, when the caller already has them. Honours
        ``activation_checkpointing_enable()`` (recomputes each layer in the backward pass).

        ``positions``: a ``(batch, seq)`` boolean of the only positions whose final hidden
        states the caller needs (the MLM's masked tokens). The first result is then their
        ``(n, hidden)`` rows, in row-major order (``hidden[positions]`` of the full result),
        and the last layer runs its queries, attention output and feed-forward block only at
        those positions and [CLS]: nothing else of it reaches a pretraining loss. Keys and
        values still come from every token, so the rows are the full computation's, and
        about 85% of the last layer's work is skipped (a quarter of ``mini``'s encoder, a third
        of ``tiny``'s).

        Example::

            >>> hidden, pooled = model.encode(input_ids, token_type_ids, attention_mask)
        """
        config, embeddings = self.config, self.bert.embeddings
        batch, seq = input_ids.shape
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        if word_embeddings is None:
            word_embeddings = embeddings.word_embeddings(input_ids)
        tokens, key_mask = _token_rows(input_ids, attention_mask)
        x = (word_embeddings + embeddings.token_type_embeddings(token_type_ids)
             + embeddings.position_embeddings.weight[:seq]).flatten(0, 1)
        x = tokens.select(x)
        x = dropout(embeddings.LayerNorm(x), config.hidden_dropout_prob, self.training)
        queries = None
        if positions is not None:  # [CLS] too: the pooler reads it
            queries = tokens.subset(positions | (torch.arange(seq, device=positions.device) == 0))
        layers = self.bert.encoder.layer
        for i, layer in enumerate(layers):
            last = queries if i == len(layers) - 1 else None
            # set on each layer by activation_checkpointing_enable()
            if self.training and getattr(layer, "gradient_checkpointing", False):
                x = torch.utils.checkpoint.checkpoint(self._layer, layer, x, tokens, key_mask, last,
                                                      use_reentrant=False)
            else:
                x = self._layer(layer, x, tokens, key_mask, last)
        pooler = self.bert.pooler
        if queries is None:
            hidden = tokens.to_grid(x).view(batch, seq, -1)
            if tokens.complete and key_mask is not None:  # padding computed along: zeros, as to_grid leaves it
                hidden = hidden.masked_fill(~attention_mask.bool()[..., None], 0)
            return hidden, pooler.activation(pooler.dense(x[tokens.first]))
        return x[positions[queries.keep]], pooler.activation(pooler.dense(x[queries.first]))

    def _layer(self, layer: nn.Module, x: torch.Tensor, tokens: _Rows, key_mask: torch.Tensor | None,
               queries: _Rows | None = None) -> torch.Tensor:
        """One ``BertLayer`` (post-LayerNorm): self-attention, then the feed-forward block.

        ``x`` holds the rows of ``tokens``; ``key_mask`` marks real keys in their padded layout.
        With ``queries`` (a subset of ``tokens``), only their outputs, ``(len(queries), hidden)``:
        their queries attend to every token's keys and values, and nothing else is computed.
        """
        config, projections = self.config, layer.attention.self
        hidden = x.shape[1]
        heads = projections.num_attention_heads
        dim = hidden // heads
        p = config.attention_probs_dropout_prob if self.training else 0.0
        # one matmul for the projections every token needs: query, key and value, or (with
        # ``queries``) key and value; unbind, not [i]: its backward stacks the gradients in one pass
        every = [projections.query, projections.key, projections.value]
        shared = every if queries is None else every[1:]
        weight, bias = torch.cat([m.weight for m in shared]), torch.cat([m.bias for m in shared])
        projected = tokens.to_padded(F.linear(x, weight, bias)).view(tokens.batch, tokens.width, len(shared), heads, dim)
        projected = projected.permute(2, 0, 3, 1, 4).unbind(0)
        if queries is None:
            (q, k, v), outputs = projected, tokens
        else:
            (k, v), outputs = projected, queries
            x = x[queries.within]
            q = queries.to_padded(projections.query(x)).view(queries.batch, queries.width, heads, dim).transpose(1, 2)
        context = outputs.from_padded(attention(q, k, v, key_mask, p).transpose(1, 2).reshape(-1, hidden))
        out = layer.attention.output
        x = out.LayerNorm(dropout(out.dense(context), config.hidden_dropout_prob, self.training) + x)
        inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
        out = layer.output
        return out.LayerNorm(dropout(out.dense(inner), config.hidden_dropout_prob, self.training) + x)

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


# below this share of padding, moving rows in and out of the padded layout costs about what the
# skipped padding saves (measured: tiny bf16 3% slower with 6% padding, mini 9% faster with 22%)
UNPAD_FROM = 0.10


def _token_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> tuple[_Rows, torch.Tensor | None]:
    """The positions the encoder computes and the attention's key mask in their padded layout.

    The real tokens (``attention_mask`` 1) when at least ``UNPAD_FROM`` of the batch is padding
    and every sequence's [CLS] (position 0) is real; otherwise every position, as BERT computes
    it (with left padding its pooler reads position 0 whatever it holds).
    """
    if attention_mask is None or bool(attention_mask.all()):
        return _Rows(torch.ones_like(input_ids, dtype=torch.bool)), None
    real = attention_mask.bool()
    if not bool(real[:, 0].all()) or float(real.float().mean()) > 1 - UNPAD_FROM:
        return _Rows(torch.ones_like(real)), real[:, None, None, :]
    tokens = _Rows(real)
    return tokens, tokens.key_mask()


class _Rows:
    """A subset of a ``(batch, seq)`` grid of positions (``keep``), with the indices that move its
    rows between three layouts: the grid flattened (``batch * seq`` rows), the subset in row-major
    order (``len(self)`` rows), and padded per sequence (``batch * width`` rows, the layout
    attention needs, ``width`` being the largest subset of one sequence, in position order)."""

    def __init__(self, keep: torch.Tensor):
        self.keep = keep
        self.batch, seq = keep.shape
        self.counts = keep.sum(1)
        self.width = int(self.counts.max())
        self.complete = bool((self.counts == seq).all())  # every position: no moves
        sequence, position = keep.nonzero(as_tuple=True)  # row-major
        self.flat = sequence * seq + position
        self.padded = sequence * self.width + (keep.cumsum(1) - 1)[sequence, position]
        self.first = self.counts.cumsum(0) - self.counts  # each sequence's first row
        self.within: torch.Tensor | None = None  # for a subset(): its rows among the parent's

    def __len__(self) -> int:
        return len(self.flat)

    def subset(self, keep: torch.Tensor) -> _Rows:
        """The rows of ``keep`` (positions of this one's), with ``within``: where they are among this one's rows."""
        rows = _Rows(keep)
        rows.within = rows.flat if self.complete else (self.keep.flatten().cumsum(0) - 1)[rows.flat]
        return rows

    def key_mask(self) -> torch.Tensor | None:
        """``(batch, 1, 1, width)``: which slots of the padded layout hold a row (None: all)."""
        if bool((self.counts == self.width).all()):
            return None
        slots = torch.arange(self.width, device=self.keep.device)
        return (slots < self.counts[:, None])[:, None, None, :]

    def select(self, grid: torch.Tensor) -> torch.Tensor:
        """``(batch * seq, d)`` -> this subset's ``(len(self), d)`` rows."""
        return grid if self.complete else grid[self.flat]

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """``(len(self), d)`` -> ``(batch * seq, d)``, zeros elsewhere."""
        if self.complete:
            return x
        return x.new_zeros(self.keep.numel(), x.shape[1]).index_copy(0, self.flat, x)

    def to_padded(self, x: torch.Tensor) -> torch.Tensor:
        """``(len(self), d)`` -> ``(batch * width, d)``, zeros in the padding."""
        if self.complete:
            return x
        return x.new_zeros(self.batch * self.width, x.shape[1]).index_copy(0, self.padded, x)

    def from_padded(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.complete else x[self.padded]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, p: float) -> torch.Tensor:
    """Scaled dot-product attention with dropout ``p`` on the probabilities: ``q`` is
    ``(batch, heads, queries, dim)``, ``k`` and ``v`` ``(batch, heads, keys, dim)``.

    ``mask`` is a boolean ``(batch, 1, 1, keys)`` (True: attend) or None. Without dropout, or
    off the CPU, this is SDPA (fused kernels). On CPU with dropout SDPA falls back to its math
    path and draws the mask with ``bernoulli_`` (a tenth of a mini model's step); this is the
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
    draws per 64-bit word cost about a seventh of that (1M elements: 1.5 ms against 10 ms on
    this project's CPU). The drop probability is rounded to a multiple of 1/65536. On other
    devices ``F.dropout`` is already fused.

    The words come from numpy's SFC64 generator, 2.5x faster than torch's Mersenne Twister
    (131,072 words: 0.16 ms against 0.41 ms), seeded by one draw from torch's generator: masks
    are still reproducible from ``torch.manual_seed`` and resume with torch's RNG state.

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


class _TiedWordEmbedding(torch.autograd.Function):
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
    pages fault in on first write: about 10 ms per step of a tiny model. A buffer is handed
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


def init_model(preset_or_checkpoint: str, vocab_size: int, num_relations: int = 3,
               **overrides) -> LinkBertForPreTraining:
    """A model to pretrain, from scratch (a preset name) or from a local BERT checkpoint folder.

    A checkpoint folder holds ``config.json`` (``model_type: bert``) and safetensors weights
    (``model.safetensors`` or a sharded index); ``pytorch_model.bin`` is refused, since
    unpickling can run code. Its encoder loads whether the keys carry the ``bert.`` prefix
    (``BertForPreTraining``/``BertForMaskedLM`` checkpoints) or not (``BertModel`` ones, e.g.
    sentence-transformers' MiniLM); its MLM head loads when present, else starts fresh with a
    log line naming what was initialised. The relation head always starts fresh. Weights are
    float32 whatever the checkpoint's dtype; the model comes back in training mode.

    ``overrides`` set config fields (dropout, ...); for a checkpoint only those that leave the
    weights' shapes alone make sense.

    Raises ``ValueError`` when the checkpoint's vocabulary size is not ``vocab_size``.

    Example::

        >>> model = init_model("tiny", vocab_size=len(tokenizer), num_relations=3)
        >>> model = init_model("/models/bert-base-uncased", vocab_size=30522, num_relations=3)
    """
    folder = Path(preset_or_checkpoint)
    if preset_or_checkpoint in PRESETS:
        config = preset_config(preset_or_checkpoint, vocab_size, num_relations=num_relations, **overrides)
        model = LinkBertForPreTraining(config)
    elif folder.is_dir():
        model = _from_checkpoint(folder, vocab_size, num_relations, overrides)
    else:
        raise ValueError(f"{preset_or_checkpoint!r} is neither a preset ({', '.join(PRESETS)}) nor a checkpoint folder")
    return model.train()


def _checkpoint_config(folder: Path, vocab_size: int, num_relations: int, overrides: dict) -> BertConfig:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ValueError(f"{folder}: no config.json, so not a transformers checkpoint folder")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type != "bert":
        raise ValueError(f"{config_file}: model_type is {model_type!r}; "
                         "LinkBERT pretraining starts from a BERT checkpoint")
    config = BertConfig.from_pretrained(folder)
    if config.vocab_size != vocab_size:
        raise ValueError(
            f"{folder} has a vocabulary of {config.vocab_size} tokens but the tokenizer has {vocab_size}: "
            "prepare the corpus with this checkpoint's tokenizer (prepare --tokenizer CHECKPOINT)")
    for key, value in overrides.items():
        setattr(config, key, value)
    config.num_relations = num_relations
    config.architectures = None  # ours now, not the checkpoint's
    return config


def _from_checkpoint(folder: Path, vocab_size: int, num_relations: int, overrides: dict) -> LinkBertForPreTraining:
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.safetensors.index.json")):
        pickled = {".bin", ".pt", ".pth", ".h5", ".msgpack"}
        found = ", ".join(sorted(p.name for p in folder.iterdir() if p.suffix in pickled))
        raise ValueError(f"{folder}: no safetensors weights (found: {found or 'none'}); convert the checkpoint to "
                         "safetensors first (loading pickled weights could run code)")
    config = _checkpoint_config(folder, vocab_size, num_relations, overrides)
    from transformers.utils import logging as hf_logging

    # transformers' own load report calls an encoder-only checkpoint (no MLM head) "corrupted";
    # _log_fresh_parameters says plainly what starts fresh
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:  # transformers strips or adds the "bert." prefix and renames old LayerNorm gamma/beta keys
        model, info = LinkBertForPreTraining.from_pretrained(
            folder, config=config, use_safetensors=True, dtype=torch.float32, attn_implementation="sdpa",
            output_loading_info=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    _log_fresh_parameters(folder, info["missing_keys"], info["unexpected_keys"])
    return model


def _log_fresh_parameters(folder: Path, missing, unexpected) -> None:
    """Say which parameters start fresh: the relation head (always) and any other missing ones."""
    tied = set(LinkBertForPreTraining._tied_weights_keys)
    missing = sorted(set(missing) - tied)
    head = [k for k in missing if k.startswith("cls.predictions.")]
    encoder = [k for k in missing if not k.startswith(("cls.predictions.", "relation_head."))]
    if head:
        logger.warning("%s has no MLM head: initialised fresh: %s", folder, ", ".join(head))
    if encoder:
        logger.warning("%s lacks encoder parameters: initialised fresh: %s", folder, ", ".join(encoder))
    if unexpected:
        logger.info("%s: not used (other heads): %s", folder, ", ".join(sorted(unexpected)))
    logger.info("%s: relation head initialised fresh", folder)
