"""The ``bert-cpu`` backend: BERT's encoder forward pass written out for CPU pretraining speed,
:func:`encode`.

It computes what ``BertModel`` computes, with the same parameters (it reads transformers'
``BertModel`` module tree: embeddings, ``encoder.layer[i]``), but skips what no pretraining loss
reads: the padding, and in the last layer every row but the masked positions and [CLS].
``LinkPretrainingModel`` runs it on its masked-LM model's ``bert`` when its backend is
``bert-cpu``; the CPU kernels it calls are ``kernels.py``.

Rows move between three layouts of a batch (:class:`_Rows`): the ``(batch * seq)`` grid, the
real tokens only (what projections, feed-forward blocks, LayerNorms and dropout run on), and
each sequence padded to the batch's longest (what attention needs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.bert.modeling_bert import BertModel

from linkbert.model.kernels import attention, dropout

# below this share of padding, moving rows in and out of the padded layout costs about what the
# skipped padding saves (docs/performance.md)
UNPAD_FROM = 0.10


def encode(bert: BertModel, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None,
           attention_mask: torch.Tensor | None = None, *, training: bool,
           word_embeddings: torch.Tensor | None = None,
           positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``bert``'s computation, written out for training speed: ``(batch, seq, hidden)`` hidden
    states and the ``(batch, hidden)`` last hidden states of [CLS] (what a pooler reads).

    Same parameters and the same function as ``bert(...)`` (equal up to float rounding in eval
    mode at the real tokens; padded positions come back as zeros; dropout draws differ; dropout
    applies when ``training``), computed for training speed:

    * where at least ``UNPAD_FROM`` of the batch is padding, every per-token operation
      (projections, feed-forward blocks, LayerNorms, dropout) runs on the real tokens' rows
      only; attention alone sees each sequence padded to the batch's longest, with a key mask;
    * one matmul for the query, key and value projections;
    * the kernels of ``kernels.py`` for attention and dropout.

    ``word_embeddings``: the ``(batch, seq, hidden)`` looked-up word embeddings of
    ``input_ids``, when the caller already has them. Honours ``activation_checkpointing_enable()``
    (recomputes each layer in the backward pass).

    ``positions``: a ``(batch, seq)`` boolean of the only positions whose final hidden states
    the caller needs (the MLM's masked tokens). The first result is then their ``(n, hidden)``
    rows, in row-major order (``hidden[positions]`` of the full result), and the last layer
    runs its queries, attention output and feed-forward block only at those positions and
    [CLS]: nothing else of it reaches a pretraining loss. Keys and values still come from every
    token, so the rows are the full computation's, and about 85% of the last layer's work is
    skipped.

    Example::

        >>> hidden, first = encode(model.mlm.bert, input_ids, token_type_ids, attention_mask, training=False)
    """
    config, embeddings = bert.config, bert.embeddings
    batch, seq = input_ids.shape
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    if word_embeddings is None:
        word_embeddings = embeddings.word_embeddings(input_ids)
    tokens, key_mask = _token_rows(input_ids, attention_mask)
    x = (word_embeddings + embeddings.token_type_embeddings(token_type_ids)
         + embeddings.position_embeddings.weight[:seq]).flatten(0, 1)
    x = tokens.select(x)
    x = dropout(embeddings.LayerNorm(x), config.hidden_dropout_prob, training)
    queries = None
    if positions is not None:  # [CLS] too: the relation head's pooler reads it
        queries = tokens.subset(positions | (torch.arange(seq, device=positions.device) == 0))
    layers = bert.encoder.layer
    for i, layer in enumerate(layers):
        last = queries if i == len(layers) - 1 else None
        # set on each layer by activation_checkpointing_enable()
        if training and getattr(layer, "gradient_checkpointing", False):
            x = torch.utils.checkpoint.checkpoint(_layer, layer, config, x, tokens, key_mask, last, training,
                                                  use_reentrant=False)
        else:
            x = _layer(layer, config, x, tokens, key_mask, last, training)
    if queries is None:
        hidden = tokens.to_grid(x).view(batch, seq, -1)
        if tokens.complete and key_mask is not None:  # padding computed along: zeros, as to_grid leaves it
            hidden = hidden.masked_fill(~attention_mask.bool()[..., None], 0)
        return hidden, x[tokens.first]
    return x[positions[queries.keep]], x[queries.first]


def _layer(layer: nn.Module, config, x: torch.Tensor, tokens: _Rows, key_mask: torch.Tensor | None,
           queries: _Rows | None, training: bool) -> torch.Tensor:
    """One ``BertLayer`` (post-LayerNorm): self-attention, then the feed-forward block.

    ``x`` holds the rows of ``tokens``; ``key_mask`` marks real keys in their padded layout.
    With ``queries`` (a subset of ``tokens``), only their outputs, ``(len(queries), hidden)``:
    their queries attend to every token's keys and values, and nothing else is computed.
    """
    projections = layer.attention.self
    hidden = x.shape[1]
    heads = projections.num_attention_heads
    dim = hidden // heads
    p = config.attention_probs_dropout_prob if training else 0.0
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
    x = out.LayerNorm(dropout(out.dense(context), config.hidden_dropout_prob, training) + x)
    inner = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
    out = layer.output
    return out.LayerNorm(dropout(out.dense(inner), config.hidden_dropout_prob, training) + x)


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
