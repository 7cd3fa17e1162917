"""What a pretraining run is fed: the prepared corpus opened for pretraining (``open_corpus``), its
train and held-out pair samplers and collator from the run's settings (``pretraining_data``), and
the batches of every step on every rank (``StepBatches``, loaded by ``step_loader``).

Every batch is a function of (seed, step): the pairs and their masks are keyed by their position
in the data stream, so a resumed run, or a run on any number of ranks with the same global batch,
sees exactly the same batches. The corpus and its pairs themselves live in ``prepared.py`` and
``pairs.py``.
"""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING

import numpy as np
import torch

from linkbert.errors import ConfigError
from linkbert.prepared import PreparedCorpus

if TYPE_CHECKING:
    from linkbert.pretrain_config import PretrainConfig
    from linkbert.runtime import Dist


def open_corpus(data_dir: str) -> PreparedCorpus:
    """The prepared corpus, refused when it cannot give pairs: a random pair's B comes from
    another document, so at least two are needed (PairSampler would raise a bare ValueError)."""
    corpus = PreparedCorpus(data_dir)
    n = corpus.store.num_documents
    if n < 2:
        raise ConfigError(f"{data_dir} holds {n} document{'' if n == 1 else 's'}: pretraining pairs need at least "
                          "2; prepare a larger corpus")
    return corpus


def pretraining_data(corpus: PreparedCorpus, config: PretrainConfig):
    """``(train sampler, held-out sampler, collator)``; a corpus they cannot use is a ConfigError."""
    try:
        return corpus.pretraining_data(
            max_length=config.max_length, seed=config.seed, objective=config.objective,
            p_contiguous=config.p_contiguous, p_random=config.p_random, p_linked=config.p_linked,
            linked_sampling=config.linked_sampling, linked_segment=config.linked_segment,
            mlm_probability=config.mlm_probability, whole_word_mask=config.whole_word_mask,
            heldout_fraction=config.heldout_fraction, graph=config.graph or None,
            max_predictions=config.max_predictions,
            # torch.compile with a fixed number of predicted positions: one shape, every batch padded to max_length
            pad_to_multiple_of=config.max_length if config.compile and config.max_predictions else 8)
    except ValueError as e:  # PairSampler's checks of the store and the graph
        raise ConfigError(f"{corpus.folder}: {e}") from None


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


def step_loader(sampler, collator, config: PretrainConfig, dist: Dist, *, micro_batch_size: int,
                start_step: int) -> torch.utils.data.DataLoader:
    """This rank's micro-batches from ``start_step`` to ``config.max_steps``, in order, built in
    ``config.num_workers`` processes."""
    dataset = StepBatches(sampler, collator, batch_size=config.batch_size,
                          micro_batch_size=micro_batch_size, rank=dist.rank, world=dist.world,
                          start_step=start_step,
                          max_steps=config.max_steps)
    workers = config.num_workers
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=workers, pin_memory=dist.device.type == "cuda",
        persistent_workers=False, prefetch_factor=4 if workers else None,
        multiprocessing_context=worker_context(sampler, collator) if workers else None,
        # its own generator: creating the iterator must not draw from the global RNG, or a
        # resumed run's dropout masks would be one draw off an uninterrupted run's
        generator=torch.Generator().manual_seed(config.seed))


def worker_context(*shipped) -> multiprocessing.context.BaseContext:
    """How DataLoader workers start: from a fork server (one process that imports torch, numpy
    and the modules of the ``shipped`` objects once; each worker is forked from it) where the
    platform has one, else spawned. Never forked from the trainer, whose CUDA context a child
    cannot use.

    Spawned workers start one after another: each is a fresh interpreter, and the trainer's
    write of the pickled dataset (larger than a pipe's buffer: the samplers and the tokenizer)
    waits until that child has imported torch and the rest and read it. ``docs/performance.md``
    has the start-up times.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    modules = ["torch", "numpy", __name__] + [type(obj).__module__ for obj in shipped]
    context.set_forkserver_preload(list(dict.fromkeys(modules)))  # read when the server starts
    return context
