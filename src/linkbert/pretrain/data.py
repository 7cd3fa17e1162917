"""What a pretraining run is fed: the prepared corpus opened for pretraining (:func:`open_corpus`),
its train and held-out pair samplers and collator, built with the ``max_length`` check in one
call (:func:`pretraining_data`), and the batches of every step on every rank
(:class:`StepBatches`, loaded by :func:`step_loader`).

Every batch is a function of (seed, step): the pairs and their masks are keyed by their position
in the data stream, so a resumed run, or a run on any number of ranks with the same global batch,
sees exactly the same batches. The pairs themselves are ``pairs.py``'s, their masking
``collator.py``'s; the prepared folder is ``prepared.py``'s.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from linkbert import lifetime
from linkbert.errors import ConfigError
from linkbert.objectives import pair_probabilities
from linkbert.prepared import PAIR_OVERHEAD, PreparedCorpus

if TYPE_CHECKING:
    from linkbert.collator import PretrainingCollator
    from linkbert.pairs import PairSampler
    from linkbert.runtime import Dist


def open_corpus(data_dir: str) -> PreparedCorpus:
    """The prepared corpus, refused when it cannot give pairs: a random pair's B comes from
    another document, so at least two are needed."""
    corpus = PreparedCorpus(data_dir)
    n = corpus.store.num_documents
    if n < 2:
        raise ConfigError(f"{data_dir} holds {n} document{'' if n == 1 else 's'}: pretraining pairs need at least "
                          "2; prepare a larger corpus")
    return corpus


@dataclass
class PretrainingData:
    """The pair samplers of the training and the held-out documents' anchors (None: nothing
    held out) and the collator that masks and pads their pairs."""

    train: PairSampler
    heldout: PairSampler | None
    collator: PretrainingCollator


def pretraining_data(corpus: PreparedCorpus, *, max_length: int, seed: int, max_positions: int | None = None,
                     objective: str = "linkbert", p_contiguous: float = 1 / 3, p_random: float = 1 / 3,
                     p_linked: float = 1 / 3, linked_sampling: str = "inverse_indegree",
                     linked_segment: str = "first", mlm_probability: float = 0.15, whole_word_mask: bool = False,
                     heldout_fraction: float = 0.0, graph: str | Path | None = None, max_predictions: int = 0,
                     compile: bool = False, flatten: bool = False) -> PretrainingData:
    """``corpus``'s pretraining data: pairs from the training documents' anchors and from
    ``heldout_fraction`` of the documents (chosen by ``seed``), B drawn as ``objective`` says
    (``objectives.pair_probabilities``), and the MLM collator with the corpus's tokenizer's
    special tokens and pair layout. ``max_length`` must hold two whole segments and fit the
    model's ``max_positions``; a corpus or settings that cannot give pairs are a ConfigError
    saying what to change. For ``compile`` with ``max_predictions`` every batch is padded to
    ``max_length`` (one shape: torch.compile compiles once), else to its longest pair rounded up
    to a multiple of 8. ``flatten``: batches in the flattened layout, without padding
    (``collator.flatten_pairs``), for a model that takes them (``takes_flattened_pairs``).

    Example::

        >>> data = pretraining_data(open_corpus("prepared/wikispeedia"), max_length=128, seed=0)
        >>> batch = data.collator([data.train.pair(0, i) for i in range(32)])
    """
    from linkbert.pairs import PairSampler, split_anchors

    check_max_length(corpus, max_length, max_positions)
    p_contiguous, p_random, p_linked = pair_probabilities(objective, p_contiguous, p_random, p_linked)
    options = dict(objective=objective, linked_sampling=linked_sampling, linked_segment=linked_segment, seed=seed,
                   p_contiguous=p_contiguous, p_random=p_random, p_linked=p_linked)
    train_anchors, heldout_anchors = split_anchors(corpus.store, heldout_fraction, seed)
    links = corpus.graph(graph)
    try:
        train = PairSampler(corpus.store, links, anchors=train_anchors, **options)
        heldout = PairSampler(corpus.store, links, anchors=heldout_anchors, **options) if len(heldout_anchors) else None
    except ConfigError as e:  # the store or the graph cannot give pairs: name the corpus
        raise ConfigError(f"{graph or corpus.folder}: {e}") from None
    collator = pair_collator(corpus, max_length=max_length, mlm_probability=mlm_probability,
                             whole_word_mask=whole_word_mask, seed=seed, max_predictions=max_predictions,
                             pad_to_multiple_of=max_length if compile and max_predictions else 8, flatten=flatten)
    return PretrainingData(train, heldout, collator)


def pair_collator(corpus: PreparedCorpus, *, max_length: int, mlm_probability: float = 0.15,
                  whole_word_mask: bool = False, seed: int = 0, max_predictions: int = 0,
                  pad_to_multiple_of: int = 8, flatten: bool = False) -> PretrainingCollator:
    """The MLM collator with ``corpus``'s tokenizer's special tokens and pair layout."""
    from linkbert.collator import PretrainingCollator
    from linkbert.tokenization import continuation_mask, plain_backend

    tokenizer = corpus.tokenizer()
    special = [tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens]
    return PretrainingCollator(
        cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, pad_id=tokenizer.pad_token_id,
        mask_id=tokenizer.mask_token_id, vocab_size=corpus.store.vocab_size, special_ids=special,
        max_length=max_length, mlm_probability=mlm_probability, whole_word_mask=whole_word_mask,
        continuation=continuation_mask(plain_backend(tokenizer)), seed=seed,
        separators_between=corpus.separators_between, max_predictions=max_predictions,
        pad_to_multiple_of=pad_to_multiple_of, flatten=flatten)


def check_max_length(corpus: PreparedCorpus, max_length: int, max_positions: int | None = None) -> None:
    """``max_length`` must hold two whole segments of ``corpus`` and fit the model's position
    embeddings; a ``ConfigError`` says which and what to change otherwise."""
    if max_positions is not None and max_length > max_positions:
        raise ConfigError(f"max_length {max_length} is more than the model's {max_positions} position "
                          f"embeddings: use max_length <= {max_positions}")
    overhead = corpus.pair_overhead
    needed = 2 * corpus.segment_budget + overhead
    if max_length < needed:
        layout = "[CLS] A [SEP] B [SEP]" if overhead == PAIR_OVERHEAD else "<s> A </s></s> B </s>"
        raise ConfigError(
            f"max_length {max_length} cannot hold a pair of this corpus's segments ({corpus.folder} was prepared "
            f"with segments of up to {corpus.segment_budget} tokens: {layout} needs {needed}); use "
            f"max_length={needed}, or prepare again with --segment-budget {(max_length - overhead) // 2}")


class StepBatches(torch.utils.data.Dataset):
    """Item ``i`` = the ``i``-th micro-batch of this rank from ``start_step`` on, already collated.

    Global stream position ``p`` (0, 1, 2, ...) is pair ``p % len(sampler)`` of epoch
    ``p // len(sampler)``; step ``s`` consumes positions ``[s * B, (s + 1) * B)``, rank ``r`` the
    ``r``-th contiguous share of them, split into micro-batches. Only positions matter, so the
    batches are the same after a resume and for any number of DataLoader workers.
    """

    def __init__(self, sampler, collator, *, batch_size: int, micro_batch_size: int, rank: int, world: int,
                 start_step: int, max_steps: int):
        self.sampler, self.collator = sampler, collator
        self.batch_size, self.micro = batch_size, micro_batch_size
        self.local = batch_size // world
        self.rank = rank
        self.accumulation = self.local // micro_batch_size
        self.start_step = start_step
        self.length = (max_steps - start_step) * self.accumulation

    def __len__(self) -> int:
        return self.length

    def positions(self, item: int) -> np.ndarray:
        step, micro = divmod(item, self.accumulation)
        start = (self.start_step + step) * self.batch_size + self.rank * self.local + micro * self.micro
        return np.arange(start, start + self.micro, dtype=np.int64)

    def __getitem__(self, item: int) -> dict:
        n = len(self.sampler)
        return self.collator([self.sampler.pair(int(p // n), int(p % n)) for p in self.positions(item)])


def step_loader(sampler, collator, dist: Dist, *, batch_size: int, micro_batch_size: int, start_step: int,
                max_steps: int, num_workers: int, seed: int) -> torch.utils.data.DataLoader:
    """This rank's micro-batches from ``start_step`` to ``max_steps``, in order, built in
    ``num_workers`` processes."""
    dataset = StepBatches(sampler, collator, batch_size=batch_size, micro_batch_size=micro_batch_size,
                          rank=dist.rank, world=dist.world, start_step=start_step, max_steps=max_steps)
    workers = num_workers
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=workers, pin_memory=dist.device.type == "cuda",
        persistent_workers=False, prefetch_factor=4 if workers else None,
        multiprocessing_context=worker_context(sampler, collator) if workers else None,
        worker_init_fn=worker_started if workers else None,
        # its own generator: creating the iterator must not draw from the global RNG, or a
        # resumed run's dropout masks would be one draw off an uninterrupted run's
        generator=torch.Generator().manual_seed(seed))


def worker_context(*shipped) -> multiprocessing.context.BaseContext:
    """How DataLoader workers start: from a fork server (one process that imports torch, numpy
    and the modules of the ``shipped`` objects once; each worker is forked from it) where the
    platform has one, else spawned. Never forked from the trainer, whose CUDA context a child
    cannot use.

    Spawned workers start one after another: each is a fresh interpreter, and the trainer's
    write of the pickled dataset (larger than a pipe's buffer: the samplers and the tokenizer)
    waits until that child has imported torch and the rest and read it. ``docs/performance.md``
    has the start-up times.

    The workers and their fork server end with the trainer, however it ends, kill -9 included
    (:func:`worker_started`, ``fork_server.py``), and ignore the stop signals it handles.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # fork_server first: the server is bound to the trainer before it spends seconds importing torch
    modules = ["linkbert.pretrain.fork_server", "torch", "numpy", __name__] + [type(obj).__module__ for obj in shipped]
    context.set_forkserver_preload(list(dict.fromkeys(modules)))  # read when the server starts
    return context


def worker_started(worker_id: int) -> None:
    """Each DataLoader worker, as it starts: it ends with its parent (the fork server, which ends
    with the trainer; or the trainer, which spawned it) and ignores the stop signals a scheduler
    may send every process of the job: the trainer that handles them still needs it."""
    lifetime.die_with_parent()
    lifetime.ignore_stop_signals()
