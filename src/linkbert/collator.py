"""Pairs -> a padded pretraining batch with BERT's MLM masking (SPEC §1).

``[CLS] A [SEP] B [SEP]``, token types 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``, padded
to the longest example (rounded up to ``pad_to_multiple_of``), or flattened into one row
without padding (``flatten_pairs``, for the transformers backend's variable-length attention).
This is the one place where batches become tensors: ``pair_batch`` lays out unmasked pairs the
same way, for inference.

Masking, decided per example from its own generator ``default_rng((*pair.key, 1))``: an
example's masks depend only on its (seed, epoch, index) and its tokens, never on the batch it
lands in, the padding, the worker or the rank, so resumed and multi-rank runs reproduce them.

* Selection is Bernoulli: every maskable token (not a special id) independently with
  probability ``mlm_probability``, as HF's ``DataCollatorForLanguageModeling`` and RoBERTa do.
  BERT's TF code selected a fixed ``round(15% of length)``; Bernoulli needs no per-sequence
  count, keeps the positions i.i.d. (the expected fraction is exactly 15%) and vectorises over
  the batch. A short example may get no selected token; the loss averages over the batch's
  selected tokens, so that costs nothing.
* Of the selected: ``mask_replace`` -> ``[MASK]``, ``random_replace`` -> a token uniform over
  the non-special vocabulary, the rest unchanged, decided per token (as BERT's whole-word
  masking also does).
* Whole-word masking selects words (a token that is not a ``##`` continuation, with the
  continuations that follow it) with probability ``mlm_probability`` and all their tokens.
* ``labels``: the original id at selected positions, -100 elsewhere (the loss sees only those).
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import torch

from linkbert.objectives import IGNORE_INDEX
from linkbert.pairs import Pair

# max_predictions=auto: a full-length sequence has more selected positions than the cap with at
# most this probability (docs/pretraining.md has the figures on real pairs)
TRUNCATION_TAIL = 1e-4


class PretrainingCollator:
    def __init__(self, *, cls_id: int, sep_id: int, pad_id: int, mask_id: int, vocab_size: int,
                 special_ids: Iterable[int] = (), max_length: int = 512, mlm_probability: float = 0.15,
                 mask_replace: float = 0.8, random_replace: float = 0.1, whole_word_mask: bool = False,
                 continuation: np.ndarray | None = None, pad_to_multiple_of: int | None = 8, seed: int = 0,
                 separators_between: int = 1, max_predictions: int = 0, flatten: bool = False):
        """``special_ids``: ids never selected (CLS/SEP/PAD/MASK are always added).
        ``separators_between``: separators between the segments (1: BERT's ``[CLS] A [SEP] B
        [SEP]``; 2: RoBERTa's ``<s> A </s></s> B </s>``: ``tokenization.separators_between``).
        ``max_predictions`` > 0: at most that many selected positions per sequence (those with
        the smallest selection draws), as BERT's ``max_predictions_per_seq``: what a model
        reading a fixed number of positions per sequence needs (``model.heads.masked_rows``).
        With whole-word masking the cap can keep part of a word (its pieces share one draw).
        ``continuation``: bool per token id, True for ``##`` pieces (``tokenization.continuation_mask``);
        required for whole-word masking. ``seed`` is mixed into each example's masking generator.
        ``flatten``: batches in the flattened layout (:func:`flatten_pairs`), for a model whose
        attention reads it (``model/attention.py``); the masks are the same."""
        if max_length < 5:
            raise ValueError("max_length must leave room for [CLS] A [SEP] B [SEP] with a token each")
        if not 0 <= mlm_probability <= 1 or mask_replace < 0 or random_replace < 0 or mask_replace + random_replace > 1:
            raise ValueError("need 0 <= mlm_probability <= 1 and mask_replace, random_replace >= 0 summing to <= 1")
        self.cls_id, self.sep_id, self.pad_id, self.mask_id = cls_id, sep_id, pad_id, mask_id
        self.vocab_size, self.max_length = int(vocab_size), int(max_length)
        self.mlm_probability, self.mask_replace, self.random_replace = mlm_probability, mask_replace, random_replace
        self.pad_to_multiple_of, self.seed = pad_to_multiple_of, int(seed)
        self.separators_between, self.max_predictions = int(separators_between), int(max_predictions)
        self.flatten = bool(flatten)
        specials = {cls_id, sep_id, pad_id, mask_id, *special_ids}
        if min(specials) < 0 or max(specials) >= self.vocab_size:
            raise ValueError(f"special ids must lie in [0, {self.vocab_size})")
        self.special = np.zeros(self.vocab_size, dtype=bool)
        self.special[list(specials)] = True
        self.replacements = np.flatnonzero(~self.special)  # what a random replacement may be
        if len(self.replacements) == 0:
            raise ValueError("every token is special: nothing to mask or to replace with")
        self.whole_word_mask = whole_word_mask
        self.continuation = self._continuation_table(continuation) if whole_word_mask else None

    def _continuation_table(self, continuation) -> np.ndarray:
        if continuation is None:
            raise ValueError("whole_word_mask needs the continuation mask (tokenization.continuation_mask)")
        table = np.zeros(self.vocab_size, dtype=bool)
        continuation = np.asarray(continuation, dtype=bool)[:self.vocab_size]
        table[:len(continuation)] = continuation
        return table

    # -- batch --------------------------------------------------------------------------------

    def __call__(self, pairs: Sequence[Pair]) -> dict[str, torch.Tensor]:
        """Returns int64 tensors ``input_ids, token_type_ids, attention_mask, labels`` (B, T) and
        ``relation_labels`` (B,); with ``flatten``, :func:`flatten_pairs`' layout of them."""
        if not pairs:
            raise ValueError("cannot collate an empty batch")
        input_ids, token_type_ids, attention_mask = pair_arrays(
            [p.a for p in pairs], [p.b for p in pairs], cls_id=self.cls_id, sep_id=self.sep_id, pad_id=self.pad_id,
            max_length=self.max_length, pad_to_multiple_of=self.pad_to_multiple_of,
            separators_between=self.separators_between)
        uniforms = np.ones((3, *input_ids.shape))  # per example: selection, 80/10/10 decision, replacement
        for row, (pair, n) in enumerate(zip(pairs, attention_mask.sum(1).tolist())):
            # n uniforms each, drawn from the example's own generator: independent of the padding
            uniforms[:, row, :n] = np.random.default_rng((*pair.key, 1, self.seed)).random((3, n))
        masked, labels = self._mask(input_ids, uniforms)
        relation_labels = torch.tensor([int(p.relation) for p in pairs], dtype=torch.int64)
        if self.flatten:
            return {**flatten_pairs(masked, token_type_ids, attention_mask, labels, pad_id=self.pad_id,
                                    max_length=self.max_length), "relation_labels": relation_labels}
        return {
            "input_ids": torch.from_numpy(masked),
            "token_type_ids": torch.from_numpy(token_type_ids),
            "attention_mask": torch.from_numpy(attention_mask),
            "labels": torch.from_numpy(labels),
            "relation_labels": relation_labels,
        }

    def _mask(self, input_ids: np.ndarray, uniforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MLM corruption of ``input_ids`` (B, T) from per-position ``uniforms`` (3, B, T).

        Returns the corrupted ids and the labels (B, T)."""
        maskable = ~self.special[input_ids]  # padding is [PAD]: special, never selected
        draw = self._selection_draw(input_ids, maskable, uniforms[0])
        selected = maskable & (draw < self.mlm_probability)
        if 0 < self.max_predictions < input_ids.shape[1]:  # keep the max_predictions smallest draws
            rank = np.argsort(np.argsort(np.where(selected, draw, np.inf), axis=1, kind="stable"), axis=1)
            selected &= rank < self.max_predictions
        labels = np.where(selected, input_ids, IGNORE_INDEX)
        decision = uniforms[1]
        to_mask = selected & (decision < self.mask_replace)
        to_random = selected & ~to_mask & (decision < self.mask_replace + self.random_replace)
        out = input_ids.copy()
        out[to_mask] = self.mask_id
        pick = (uniforms[2][to_random] * len(self.replacements)).astype(np.int64)
        out[to_random] = self.replacements[np.minimum(pick, len(self.replacements) - 1)]
        return out, labels

    def _selection_draw(self, input_ids: np.ndarray, maskable: np.ndarray, draw: np.ndarray) -> np.ndarray:
        """The uniform each position is selected by: its own (token level) or, for whole-word
        masking, the one at the start of its word, so a word is selected all at once."""
        if not self.whole_word_mask:
            return draw
        # a word starts at a maskable token that is no continuation, or that follows a special
        # token (a segment cut inside a word must not glue onto [SEP])
        previous_maskable = np.zeros_like(maskable)
        previous_maskable[:, 1:] = maskable[:, :-1]
        starts = maskable & (~self.continuation[input_ids] | ~previous_maskable)
        positions = np.arange(input_ids.shape[1])
        word_start = np.maximum.accumulate(np.where(starts, positions, 0), axis=1)
        return np.take_along_axis(draw, word_start, axis=1)


def flatten_pairs(input_ids: np.ndarray, token_type_ids: np.ndarray, attention_mask: np.ndarray, labels: np.ndarray,
                  *, pad_id: int, max_length: int) -> dict[str, torch.Tensor]:
    """A right-padded ``(B, T)`` batch as one row without padding (``model/attention.py``):
    ``input_ids``, ``token_type_ids``, ``attention_mask``, ``labels`` and ``position_ids``
    (int64, ``(1, N)``: the pairs' real tokens one after another, positions restarting at 0 for
    each, then a tail of padding) and ``cu_seqlens`` (int32, ``(B + 2,)``: the pairs' bounds, the
    tail a sequence of its own). ``N`` is the real tokens rounded up, past them, to a multiple of
    :func:`flat_bucket`: a few shapes for ``torch.compile``, and the tail never longer than
    ``max_length`` (the kernels' bound on a sequence)."""
    real = attention_mask.astype(bool)
    lengths = real.sum(1)
    total = int(lengths.sum())
    bucket = flat_bucket(len(lengths), max_length)
    width = (total // bucket + 1) * bucket
    tail = width - total

    def row(values: np.ndarray, fill: int) -> torch.Tensor:
        out = np.full((1, width), fill, dtype=np.int64)
        out[0, :total] = values[real]
        return torch.from_numpy(out)

    positions = np.concatenate([np.arange(n) for n in lengths] + [np.arange(tail)])
    cu_seqlens = np.concatenate([[0], np.cumsum(lengths), [width]]).astype(np.int32)
    return {"input_ids": row(input_ids, pad_id), "token_type_ids": row(token_type_ids, 0),
            "attention_mask": row(attention_mask, 0), "labels": row(labels, IGNORE_INDEX),
            "position_ids": torch.from_numpy(positions.astype(np.int64)[None]),
            "cu_seqlens": torch.from_numpy(cu_seqlens)}


def flat_bucket(pairs: int, max_length: int) -> int:
    """The multiple a flattened batch's length is rounded up to: 1/32 of ``pairs x max_length``
    in steps of 64 tokens, at least 64 and at most ``max_length`` (512 for 32 pairs of 512: the
    padding left is 1/64 of the batch on average, and the batches of a corpus take a few lengths)."""
    step = -(-pairs * max_length // 32 // 64) * 64
    return max(1, min(max_length, max(64, step)))


def max_predictions_for(max_length: int, mlm_probability: float, tail: float = TRUNCATION_TAIL) -> int:
    """``max_predictions=auto``: the smallest cap on the selected positions per sequence that a
    sequence of ``max_length`` tokens (all but ``[CLS] A [SEP] B [SEP]``'s three maskable, each
    selected with probability ``mlm_probability``) exceeds with probability at most ``tail``:
    the binomial's upper tail, summed exactly. 108 at 512 tokens and 15% (BERT, which selected
    a fixed count, used 80), 35 at 128 (BERT: 20).

    Example::

        >>> max_predictions_for(512, 0.15), max_predictions_for(128, 0.15)
        (108, 35)
    """
    n, p = max(int(max_length) - 3, 1), float(mlm_probability)
    if p >= 1:
        return n
    log_p, log_q = math.log(p), math.log1p(-p)

    def pmf(j: int) -> float:
        return math.exp(math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * log_p + (n - j) * log_q)

    above = 0.0  # P(selected > cap), from the top down
    for cap in range(n, -1, -1):
        above += pmf(cap)  # now P(selected >= cap) = P(selected > cap - 1)
        if above > tail:
            return cap
    return 0


def pair_batch(a_list: Sequence, b_list: Sequence, *, cls_id: int, sep_id: int, pad_id: int,
               max_length: int, separators_between: int = 1) -> dict[str, torch.Tensor]:
    """Unmasked ``[CLS] A [SEP] B [SEP]`` inputs of segment pairs, for inference: int64 tensors
    ``input_ids, token_type_ids, attention_mask`` (B, T) laid out and truncated as in pretraining,
    padded to the longest pair."""
    arrays = pair_arrays(a_list, b_list, cls_id=cls_id, sep_id=sep_id, pad_id=pad_id, max_length=max_length,
                         separators_between=separators_between)
    return dict(zip(("input_ids", "token_type_ids", "attention_mask"), map(torch.from_numpy, arrays)))


def pair_arrays(a_list: Sequence, b_list: Sequence, *, cls_id: int, sep_id: int, pad_id: int, max_length: int,
                pad_to_multiple_of: int | None = None,
                separators_between: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(input_ids, token_type_ids, attention_mask)``, int64 (B, T): row ``i`` is ``[CLS] A [SEP]
    B [SEP]`` of ``a_list[i]``, ``b_list[i]`` (``separators_between`` [SEP]s between A and B: 2
    for RoBERTa's ``<s> A </s></s> B </s>``) cut by :func:`truncated_lengths` to ``max_length``,
    token types 0 then 1 from B on, padded to the longest row rounded up to
    ``pad_to_multiple_of`` but never past ``max_length`` (the position embeddings end there)."""
    overhead = 2 + separators_between
    lengths = [truncated_lengths(len(a), len(b), max_length - overhead) for a, b in zip(a_list, b_list)]
    longest = max(la + lb + overhead for la, lb in lengths)
    multiple = pad_to_multiple_of or 1
    width = min(-(-longest // multiple) * multiple, max(max_length, longest))
    input_ids = np.full((len(lengths), width), pad_id, dtype=np.int64)
    token_type_ids = np.zeros_like(input_ids)
    attention_mask = np.zeros_like(input_ids)
    for row, (a, b, (la, lb)) in enumerate(zip(a_list, b_list, lengths)):
        n = la + lb + overhead
        ids = input_ids[row]
        b_start = la + 1 + separators_between
        ids[0], ids[la + 1:b_start], ids[n - 1] = cls_id, sep_id, sep_id
        ids[1:la + 1] = a[:la]
        ids[b_start:n - 1] = b[:lb]
        token_type_ids[row, b_start:n] = 1
        attention_mask[row, :n] = 1
    return input_ids, token_type_ids, attention_mask


def truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths of A and B after BERT's ``truncate_seq_pair`` (longest first, from the end; on a
    tie B gives first) so that they fit ``budget`` tokens, in closed form."""
    if len_a + len_b <= budget:
        return len_a, len_b
    if 2 * min(len_a, len_b) <= budget:  # only the longer one is cut (no tie: the sum exceeds budget)
        return (len_a, budget - len_a) if len_a < len_b else (budget - len_b, len_b)
    return budget - budget // 2, budget // 2  # both cut to half; A keeps the odd token
