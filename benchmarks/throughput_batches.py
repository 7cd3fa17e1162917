"""The batches ``pretrain_throughput.py`` times both models on: synthetic pairs (BERT's masking,
``DataCollatorForLanguageModeling``'s 80/10/10) or a prepared corpus's, and the flattened layout
``linkbert pretrain`` feeds varlen attention.

Synthetic batches are ``[CLS] A [SEP] B [SEP]`` of random tokens, lengths 90-100% of ``seq``,
15% of the non-special tokens selected. With ``equal_totals`` every batch holds the same lengths
in another order, so their flattened rows have one length: a compiled model compiles once
(a corpus's batches take a few lengths, and compile a dynamic shape at the second: the trainer's
own step in ``gpu_step_timeline.py`` sees that).
"""

from __future__ import annotations

import torch

from linkbert.collator import flatten_pairs
from linkbert.objectives import IGNORE_INDEX

# name -> (preset, sequence length, batch size); CPU sizes keep a step around a second on 2 cores
CONFIGS = {
    "tiny": ("tiny", 128, 32),
    "mini": ("mini", 128, 32),
    "base": ("base", 512, 32),
    "modernbert-base": ("modernbert-base", 512, 32),
    "modernbert-tiny": ("modernbert-tiny", 128, 32),
}
# ModernBERT-base (answerdotai/ModernBERT-base's config.json), the fields that shape the work
MODERNBERT_BASE = dict(hidden_size=768, num_hidden_layers=22, num_attention_heads=12, intermediate_size=1152,
                       vocab_size=50368, max_position_embeddings=8192, global_attn_every_n_layers=3,
                       local_attention=128)
# the same architecture at tiny's size (a CPU smoke of the ModernBERT path: local and global layers)
MODERNBERT_TINY = {**MODERNBERT_BASE, "hidden_size": 128, "num_hidden_layers": 3, "num_attention_heads": 2,
                   "intermediate_size": 192, "local_attention": 32}
MODERNBERT = {"modernbert-base": MODERNBERT_BASE, "modernbert-tiny": MODERNBERT_TINY}
PAD, UNK, CLS, SEP, MASK = 0, 100, 101, 102, 103  # BERT uncased ids
SPECIAL = (PAD, UNK, CLS, SEP, MASK)


def synthetic_batches(n: int, batch: int, seq: int, vocab: int, seed: int = 0, equal_totals: bool = False) -> list[dict]:
    """``n`` batches of ``[CLS] A [SEP] B [SEP]`` with random tokens, padded to ``seq``
    (``equal_totals``: each batch the same lengths, shuffled)."""
    gen = torch.Generator().manual_seed(seed)
    fixed = torch.randint(int(0.9 * seq), seq + 1, (batch,), generator=gen) if equal_totals else None

    def lengths() -> torch.Tensor:
        if fixed is None:
            return torch.randint(int(0.9 * seq), seq + 1, (batch,), generator=gen)
        return fixed[torch.randperm(batch, generator=gen)]
    return [_synthetic_batch(lengths(), seq, vocab, gen) for _ in range(n)]


def _synthetic_batch(lengths: torch.Tensor, seq: int, vocab: int, gen: torch.Generator) -> dict:
    batch = len(lengths)
    positions = torch.arange(seq)
    attention_mask = (positions < lengths[:, None]).long()
    ids = torch.randint(MASK + 1, vocab, (batch, seq), generator=gen)
    sep_a = lengths // 2
    ids[:, 0] = CLS
    ids[torch.arange(batch), sep_a] = SEP
    ids[torch.arange(batch), lengths - 1] = SEP
    ids[attention_mask == 0] = PAD
    token_type_ids = ((positions > sep_a[:, None]) & (attention_mask == 1)).long()
    input_ids, labels = mask_tokens(ids, vocab, gen)
    relation_labels = torch.randint(0, 3, (batch,), generator=gen)
    return {"input_ids": input_ids, "token_type_ids": token_type_ids, "attention_mask": attention_mask,
            "labels": labels, "relation_labels": relation_labels}


def mask_tokens(ids: torch.Tensor, vocab: int, gen: torch.Generator, p: float = 0.15):
    """BERT's masking as ``DataCollatorForLanguageModeling.torch_mask_tokens``: select each
    non-special token with probability ``p``; of those 80% -> [MASK], 10% random, 10% kept."""
    special = torch.zeros_like(ids, dtype=torch.bool)
    for token in SPECIAL:
        special |= ids == token
    selected = (torch.rand(ids.shape, generator=gen) < p) & ~special
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE_INDEX))
    replaced = selected & (torch.rand(ids.shape, generator=gen) < 0.8)
    randomised = selected & ~replaced & (torch.rand(ids.shape, generator=gen) < 0.5)
    inputs = ids.clone()
    inputs[replaced] = MASK
    inputs[randomised] = torch.randint(vocab, ids.shape, generator=gen)[randomised]
    return inputs, labels


def corpus_batches(folder: str, n: int, batch: int, seq: int) -> tuple[list[dict], int]:
    """``n`` batches from a prepared corpus (its pairs and collator, as pretraining builds them;
    pairs longer than ``seq`` are cut to it, as the collator cuts them, where pretraining would
    refuse a ``max_length`` that cannot hold two segments); also the vocabulary size."""
    from linkbert.pairs import PairSampler
    from linkbert.pretrain.data import open_corpus, pair_collator

    corpus = open_corpus(folder)
    sampler, collate = PairSampler(corpus.store, corpus.graph(), seed=0), pair_collator(corpus, max_length=seq)
    size = len(sampler)  # pairs per epoch; a small corpus wraps into later epochs
    batches = [collate([sampler.pair(j // size, j % size) for j in range(b * batch, (b + 1) * batch)])
               for b in range(n)]
    return batches, corpus.store.vocab_size


def config_batches(name: str, steps: int, data: str | None = None, batch: int | None = None,
                   seq: int | None = None, equal_totals: bool = False) -> tuple[list[dict], int]:
    """``steps`` batches for configuration ``name`` (its batch size and sequence length unless
    given): from the prepared corpus ``data``, else synthetic; also the vocabulary size."""
    _, default_seq, default_batch = CONFIGS[name]
    seq, batch = seq or default_seq, batch or default_batch
    vocab = config_vocab(name, data) or 30522  # refuses ModernBERT on a corpus
    if data:
        return corpus_batches(data, steps, batch, seq)
    return synthetic_batches(steps, batch, seq, vocab, equal_totals=equal_totals), vocab


def config_vocab(name: str, data: str | None) -> int | None:
    """The vocabulary a configuration's batches must be drawn from (None: BERT's, or the data's)."""
    if name in MODERNBERT:
        if data:
            raise SystemExit(f"{name} runs on synthetic batches only (its vocabulary is not the corpus's)")
        return MODERNBERT[name]["vocab_size"]
    return None


def flattened(batch: dict, seq: int, device: str) -> dict:
    """``batch`` (host tensors) flattened as ``linkbert pretrain`` feeds varlen attention."""
    flat = flatten_pairs(*(batch[k].numpy() for k in ("input_ids", "token_type_ids", "attention_mask", "labels")),
                         pad_id=PAD, max_length=seq)
    return {**{k: v.to(device) for k, v in flat.items()}, "relation_labels": batch["relation_labels"].to(device),
            "_max_length": seq}
