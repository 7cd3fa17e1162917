"""PretrainingCollator: layout, padding, truncation, MLM statistics, whole words, determinism.

Pairs are built by hand. Vocabulary: 1000 ids; specials 0 (PAD), 1 (UNK), 2 (CLS), 3 (SEP),
4 (MASK) and 500 (an extra special in the middle, to check it is never selected nor drawn).
Statistical checks use fixed keys and binomial z-tests at |z| <= 4 (two-sided 6e-5 per check).
"""

import math
import time

import numpy as np
import pytest
import torch

from linkbert.collator import (
    PretrainingCollator,
    flat_bucket,
    max_predictions_for,
    pair_arrays,
    pair_batch,
    truncated_lengths,
)
from linkbert.objectives import IGNORE_INDEX
from linkbert.pairs import Pair

PAD, UNK, CLS, SEP, MASK, EXTRA = 0, 1, 2, 3, 4, 500
VOCAB = 1000
SPECIAL = {PAD, UNK, CLS, SEP, MASK, EXTRA}


def collator(**overrides):
    settings = dict(cls_id=CLS, sep_id=SEP, pad_id=PAD, mask_id=MASK, vocab_size=VOCAB,
                    special_ids=[UNK, EXTRA], seed=0)
    settings.update(overrides)
    return PretrainingCollator(**settings)


def pair(a, b, index=0, relation=0, epoch=0):
    return Pair(a=np.asarray(a, dtype=np.uint16), b=np.asarray(b, dtype=np.uint16), relation=relation,
                a_segment=0, b_segment=1, key=(0, epoch, index))


def random_pairs(n, rng, low=10, high=120, vocab=VOCAB):
    """Pairs of random lengths whose tokens include the specials UNK and EXTRA now and then."""
    out = []
    for i in range(n):
        a, b = (rng.integers(5, vocab, rng.integers(low, high)) for _ in range(2))
        a[rng.random(len(a)) < 0.02] = EXTRA
        b[rng.random(len(b)) < 0.02] = UNK
        out.append(pair(a, b, index=i, relation=i % 3))
    return out


def test_layout_token_types_and_padding():
    batch = collator(mlm_probability=0.0)([pair([10, 11, 12], [20, 21], relation=2),
                                          pair([30], [40, 41, 42, 43, 44, 45, 46], index=1, relation=1)])
    assert batch["input_ids"].shape == (2, 16)  # longest is 11 -> rounded up to 16
    assert batch["input_ids"][0].tolist() == [CLS, 10, 11, 12, SEP, 20, 21, SEP] + [PAD] * 8
    assert batch["input_ids"][1].tolist() == [CLS, 30, SEP, 40, 41, 42, 43, 44, 45, 46, SEP] + [PAD] * 5
    assert batch["token_type_ids"][0].tolist() == [0] * 5 + [1] * 3 + [0] * 8
    assert batch["token_type_ids"][1].tolist() == [0] * 3 + [1] * 8 + [0] * 5
    assert batch["attention_mask"].sum(1).tolist() == [8, 11]
    assert (batch["labels"] == -100).all()
    assert batch["relation_labels"].tolist() == [2, 1]
    assert all(t.dtype == torch.int64 for t in batch.values())
    assert collator(mlm_probability=0.0, pad_to_multiple_of=None)([pair([10], [11])])["input_ids"].shape == (1, 5)


def test_truncation_is_longest_first():
    def reference(a, b, budget):  # BERT's truncate_seq_pair, cutting from the end
        a, b = list(a), list(b)
        while len(a) + len(b) > budget:
            (a if len(a) > len(b) else b).pop()
        return len(a), len(b)

    for la in range(0, 25):
        for lb in range(0, 25):
            for budget in (0, 1, 7, 12, 20, 30, 60):
                assert truncated_lengths(la, lb, budget) == reference(range(la), range(lb), budget)

    batch = collator(mlm_probability=0.0, max_length=16)([pair(range(10, 30), range(40, 45))])
    assert batch["input_ids"][0].tolist() == [CLS, *range(10, 18), SEP, *range(40, 45), SEP]
    assert batch["input_ids"].shape == (1, 16)
    batch = collator(mlm_probability=0.0, max_length=13)([pair(range(10, 30), range(40, 60))])
    assert batch["input_ids"][0].tolist() == [CLS, *range(10, 15), SEP, *range(40, 45), SEP]
    assert batch["input_ids"].shape == (1, 13)  # never padded past max_length


def test_pair_batch_lays_out_and_truncates_as_pretraining():
    batch = pair_batch([np.array([5, 6, 7])], [np.array([8, 9])], cls_id=CLS, sep_id=SEP, pad_id=PAD, max_length=7)
    assert batch["input_ids"].tolist() == [[CLS, 5, 6, SEP, 8, 9, SEP]]  # A cut first: the longer one
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 1]]
    assert batch["attention_mask"].tolist() == [[1] * 7]
    batch = pair_batch([[5], [5, 6, 7]], [[8], [8]], cls_id=CLS, sep_id=SEP, pad_id=PAD, max_length=16)
    assert batch["input_ids"].tolist() == [[CLS, 5, SEP, 8, SEP, PAD, PAD], [CLS, 5, 6, 7, SEP, 8, SEP]]  # no rounding
    assert batch["attention_mask"].sum(1).tolist() == [5, 7]
    assert all(t.dtype == torch.int64 for t in batch.values())


def reference_layout(a, b, max_length):
    """``[CLS] A [SEP] B [SEP]`` after BERT's ``truncate_seq_pair`` (pop from the longer, B on a tie)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > max_length - 3:
        (a if len(a) > len(b) else b).pop()
    return [CLS, *a, SEP, *b, SEP], [0] * (len(a) + 2) + [1] * (len(b) + 1)


def test_pair_batch_and_the_collator_share_the_reference_layout():
    pairs = random_pairs(12, np.random.default_rng(5), low=0, high=90)
    a_list, b_list = [p.a for p in pairs], [p.b for p in pairs]
    assert any(len(a) + len(b) > 125 for a, b in zip(a_list, b_list))  # some pairs are cut
    batch = pair_batch(a_list, b_list, cls_id=CLS, sep_id=SEP, pad_id=PAD, max_length=128)
    expected = [reference_layout(a, b, 128) for a, b in zip(a_list, b_list)]
    assert batch["input_ids"].shape[1] == max(len(ids) for ids, _ in expected)  # padded to the longest pair
    for row, (ids, types) in enumerate(expected):
        n = len(ids)
        assert batch["input_ids"][row, :n].tolist() == ids and (batch["input_ids"][row, n:] == PAD).all()
        assert batch["token_type_ids"][row, :n].tolist() == types and batch["attention_mask"][row].sum() == n
    for multiple in (None, 8):  # the collator's unmasked batch is the same layout
        unmasked = collator(mlm_probability=0.0, max_length=128, pad_to_multiple_of=multiple)(pairs)
        arrays = pair_arrays(a_list, b_list, cls_id=CLS, sep_id=SEP, pad_id=PAD, max_length=128,
                             pad_to_multiple_of=multiple)
        for name, array in zip(("input_ids", "token_type_ids", "attention_mask"), arrays):
            assert unmasked[name].tolist() == array.tolist()
        width = unmasked["input_ids"].shape[1]
        assert unmasked["input_ids"][:, :batch["input_ids"].shape[1]].tolist() == batch["input_ids"].tolist()
        assert (unmasked["input_ids"][:, batch["input_ids"].shape[1]:] == PAD).all() and width % (multiple or 1) == 0


def test_masking_statistics():
    rng = np.random.default_rng(0)
    pairs = random_pairs(600, rng)
    batch = collator()(pairs)
    ids, labels = batch["input_ids"].numpy(), batch["labels"].numpy()
    original = np.where(labels != -100, labels, ids)  # unselected positions are left as they were
    maskable = ~np.isin(original, list(SPECIAL))
    selected = labels != -100
    assert not selected[~maskable].any()  # specials (CLS/SEP/PAD/UNK/EXTRA) never selected
    n, k = maskable.sum(), selected.sum()
    assert_fraction(k, n, 0.15)
    masked = selected & (ids == MASK)
    replaced = selected & (ids != MASK) & (ids != original)
    kept = selected & (ids == original)
    assert masked.sum() + replaced.sum() + kept.sum() == k
    # a random replacement draws the original token again with probability 1 / 994
    p_same = 1 / (VOCAB - len(SPECIAL))
    assert_fraction(masked.sum(), k, 0.8)
    assert_fraction(replaced.sum(), k, 0.1 * (1 - p_same))
    assert_fraction(kept.sum(), k, 0.1 + 0.1 * p_same)
    assert not np.isin(ids[replaced], list(SPECIAL)).any()
    assert len(np.unique(ids[replaced])) > 300  # spread over the vocabulary, not one token
    # unselected positions are untouched, and the reconstruction is exact
    assert (ids[~selected] == original[~selected]).all()
    expected_ids = np.full_like(ids, PAD)
    for row, p in enumerate(pairs):
        seq = [CLS, *p.a.tolist(), SEP, *p.b.tolist(), SEP]
        expected_ids[row, :len(seq)] = seq
    assert (original == expected_ids).all()


def test_whole_word_masking_selects_whole_words():
    continuation = np.zeros(VOCAB, dtype=bool)
    continuation[600:900] = True  # ids 600..899 are "##" pieces
    rng = np.random.default_rng(1)
    pairs = random_pairs(400, rng)
    batch = collator(whole_word_mask=True, continuation=continuation[:900])(pairs)  # a short table is padded
    labels = batch["labels"].numpy()
    ids = np.where(labels != -100, labels, batch["input_ids"].numpy())
    selected = labels != -100
    maskable = ~np.isin(ids, list(SPECIAL))
    assert not selected[~maskable].any()
    # a word = a start (a maskable token that is no continuation, or follows a special token)
    # and the continuations after it: inside a word, every token shares its neighbour's fate
    previous_maskable = np.pad(maskable, ((0, 0), (1, 0)))[:, :-1]
    inside = maskable & continuation[ids] & previous_maskable
    assert inside.sum() > 1000
    assert (selected[inside] == np.roll(selected, 1, axis=1)[inside]).all()
    starts = maskable & ~inside
    assert_fraction(selected[starts].sum(), starts.sum(), 0.15)  # words are selected with p = 0.15
    # a continuation right after [SEP] (a segment cut inside a word) is a word of its own,
    # not glued to the end of A: over 60 keys the two are selected independently
    col = collator(whole_word_mask=True, continuation=continuation, mlm_probability=0.5)
    lone = col([pair([10], [701], index=i) for i in range(60)])["labels"].numpy()
    assert (lone[:, 1] != -100).any() and ((lone[:, 1] != -100) != (lone[:, 3] != -100)).any()


def test_masks_depend_only_on_the_key():
    rng = np.random.default_rng(2)
    pairs = random_pairs(40, rng)
    col = collator()
    whole = col(pairs)
    reordered = col(pairs[::-1][:25] + random_pairs(3, np.random.default_rng(99), low=150, high=200))
    for j, row in enumerate(range(39, 14, -1)):  # the same examples, another batch, other padding
        n = int(whole["attention_mask"][row].sum())
        assert n == int(reordered["attention_mask"][j].sum())
        for name in ("input_ids", "labels"):
            assert whole[name][row, :n].tolist() == reordered[name][j, :n].tolist()
    again = collator()(pairs)
    assert all((whole[k] == again[k]).all() for k in whole)
    moved = [pair(p.a, p.b, index=p.key[2], epoch=1) for p in pairs]
    assert not (collator()(moved)["input_ids"] == whole["input_ids"]).all()  # another epoch, other masks
    assert not (collator(seed=1)(pairs)["input_ids"] == whole["input_ids"]).all()


def test_full_batch_of_64_by_512():
    rng = np.random.default_rng(3)
    pairs = [pair(rng.integers(5, VOCAB, 300), rng.integers(5, VOCAB, 300), index=i) for i in range(64)]
    col = collator()
    start = time.perf_counter()
    batch = col(pairs)
    elapsed = time.perf_counter() - start
    assert batch["input_ids"].shape == (64, 512) and (batch["attention_mask"] == 1).all()
    assert batch["token_type_ids"].sum(1).tolist() == [255] * 64  # 254 + 1 tokens of B after truncation
    print(f"64 x 512 collated in {elapsed * 1000:.1f} ms")  # informative only: no timing assertion


def test_settings_are_checked():
    with pytest.raises(ValueError, match="continuation"):
        collator(whole_word_mask=True)
    with pytest.raises(ValueError):
        collator(mask_replace=0.9, random_replace=0.2)
    with pytest.raises(ValueError, match="special"):
        collator(special_ids=[VOCAB])
    with pytest.raises(ValueError, match="empty"):
        collator()([])


def assert_fraction(count, n, p, z=4.0):
    sd = np.sqrt(p * (1 - p) / n)
    assert abs(count / n - p) <= z * sd, f"{count}/{n} = {count / n:.4f}, expected {p:.4f} ± {z * sd:.4f}"


def test_the_collator_caps_the_masked_positions_per_sequence():
    pairs_a = [np.arange(10, 60) for _ in range(6)]
    collator = PretrainingCollator(cls_id=2, sep_id=3, pad_id=0, mask_id=4, vocab_size=100, max_length=128,
                                   mlm_probability=0.5, max_predictions=7)
    batch = collator([Pair(a, a[::-1], 0, 0, 1, (0, 0, i)) for i, a in enumerate(pairs_a)])
    per_row = (batch["labels"] != IGNORE_INDEX).sum(1)
    assert per_row.max() == 7 and per_row.min() > 0
    uncapped = PretrainingCollator(cls_id=2, sep_id=3, pad_id=0, mask_id=4, vocab_size=100, max_length=128,
                                   mlm_probability=0.5)([Pair(a, a[::-1], 0, 0, 1, (0, 0, i)) for i, a in enumerate(pairs_a)])
    kept = batch["labels"] != IGNORE_INDEX
    assert torch.equal(batch["labels"][kept], uncapped["labels"][kept])  # a subset of the same selection


def test_roberta_pairs_have_two_separators_between_the_segments():
    ids, types, mask = pair_arrays([np.array([7, 8])], [np.array([9])], cls_id=0, sep_id=2, pad_id=1, max_length=16,
                                   separators_between=2)
    assert ids[0].tolist() == [0, 7, 8, 2, 2, 9, 2]
    assert mask[0].tolist() == [1] * 7


def test_the_flattened_layout_holds_the_padded_batchs_tokens_and_masks():
    """``flatten=True``: the same tokens, token types and masks as the padded batch, the pairs one
    after another with positions restarting, then a tail of padding up to a multiple of the
    bucket (a sequence of its own in ``cu_seqlens``, never longer than max_length)."""
    pairs = random_pairs(8, np.random.default_rng(0), low=5, high=60)
    padded = collator(max_length=128, max_predictions=20)(pairs)
    flat = collator(max_length=128, max_predictions=20, flatten=True)(pairs)
    real = padded["attention_mask"].bool()
    n, lengths = int(real.sum()), real.sum(1)
    width = flat["input_ids"].shape[1]
    assert flat["input_ids"].shape == (1, width) and width % flat_bucket(8, 128) == 0 and n < width <= n + 128
    for key in ("input_ids", "token_type_ids", "labels", "attention_mask"):
        assert torch.equal(flat[key][0, :n], padded[key][real])
    assert (flat["input_ids"][0, n:] == PAD).all() and (flat["labels"][0, n:] == IGNORE_INDEX).all()
    assert (flat["attention_mask"][0, n:] == 0).all() and torch.equal(flat["relation_labels"], padded["relation_labels"])
    assert flat["cu_seqlens"].dtype == torch.int32
    assert flat["cu_seqlens"].tolist() == [0, *lengths.cumsum(0).tolist(), width]
    starts = flat["cu_seqlens"][:-1].long()
    assert (flat["position_ids"][0, starts] == 0).all()
    assert flat["position_ids"][0, :n].tolist() == [i for length in lengths.tolist() for i in range(length)]


def test_flattened_batches_take_a_few_lengths():
    """32 pairs of up to 512 tokens: the flattened length is a multiple of 512 (1/64 of the batch
    left as padding on average), so a corpus's batches take a handful of shapes."""
    assert flat_bucket(32, 512) == 512 and flat_bucket(8, 128) == 64 and flat_bucket(2, 40) == 40
    rng = np.random.default_rng(1)
    widths = {collator(max_length=512, flatten=True)(random_pairs(32, rng, low=180, high=254))["input_ids"].shape[1]
              for _ in range(20)}
    assert len(widths) <= 4 and all(w % 512 == 0 for w in widths)


def test_max_predictions_auto_is_the_binomial_tail():
    """auto: the smallest cap a full-length sequence's selection exceeds with probability <= 1e-4."""
    assert max_predictions_for(512, 0.15) == 108 and max_predictions_for(128, 0.15) == 35
    n, p, cap = 509, 0.15, 108
    tail = sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(cap + 1, n + 1))
    below = tail + math.comb(n, cap) * p ** cap * (1 - p) ** (n - cap)
    assert tail <= 1e-4 < below
