"""Pretraining pairs (A, B, relation): contiguous, random or linked (SPEC §1).

``PairSampler.pair(epoch, index)`` is a pure function of ``(seed, epoch, index)``: any
DataLoader worker, any rank, any call order, any fresh process gives the same pair, and
nothing is materialised on disk. That makes resuming mid-epoch and sharding across ranks a
matter of handing out indices.

Randomness, all keyed by integers (never Python's ``hash``, which changes between processes):

* the epoch's anchor order: a keyed Feistel permutation of ``[0, n_anchors)``
  (``FeistelPermutation``), keys from ``SeedSequence((seed, epoch), spawn_key=(tag,))``;
* everything else about one pair: ``np.random.default_rng((seed, epoch, index))``;
* the collator's masking: ``default_rng((seed, epoch, index, 1, collator_seed))`` from ``Pair.key``.
  (``SeedSequence`` pads short entropy with zeros, so ``(s, e)`` and ``(s, e, 0)`` would give
  the same stream: the permutation keys carry a spawn key to stay apart from pair streams.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkbert.errors import ConfigError
from linkbert.graph import DocGraph
from linkbert.objectives import OBJECTIVES, Relation
from linkbert.store import SegmentStore

LINKED_SAMPLING = ("inverse_indegree", "uniform")
LINKED_SEGMENT = ("random", "first")

_M64 = (1 << 64) - 1
_PERMUTATION_TAG = 0x5045524D  # "PERM": spawn key that separates permutation keys from pair streams


@dataclass(frozen=True, eq=False)
class Pair:
    """One pretraining instance. ``a``/``b``: token ids (views into the store's memory map);
    ``key``: (seed, epoch, index), what the collator seeds its masking from.
    (``eq=False``: comparing arrays field by field has no single truth value.)"""

    a: np.ndarray
    b: np.ndarray
    relation: int
    a_segment: int
    b_segment: int
    key: tuple[int, int, int]


# -- the epoch permutation -----------------------------------------------------------------------


def _mix64(z):
    """splitmix64's finaliser: a bijective 64-bit mixer with full avalanche.

    Works unchanged on Python ints (masked to 64 bits) and on ``uint64`` arrays (which wrap),
    so the scalar hot path and the vectorised path share one definition."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class FeistelPermutation:
    """A keyed pseudo-random bijection of ``[0, n)``, computed per element in O(1) memory.

    Why not ``rng.permutation(n)``: at Wikipedia/PubMed scale (100M+ segments) that is 0.8 GB
    per epoch in every DataLoader worker of every rank, rebuilt each epoch. A balanced Feistel
    network over ``2 * half`` bits (the smallest even width with ``4**half >= n``, so the domain
    is < 4n) is a bijection whatever the round function; cycle-walking (re-applying it while the
    value is >= n) restricts it to a bijection of ``[0, n)`` in < 4 expected steps. Six rounds of
    a splitmix64-mixed round function give a shuffle with no visible structure (4 rounds already
    make a pseudo-random permutation, Luby-Rackoff).
    """

    ROUNDS = 6

    def __init__(self, n: int, keys: list[int]):
        if n < 0:
            raise ValueError("n must be >= 0")
        if len(keys) != self.ROUNDS:
            raise ValueError(f"need {self.ROUNDS} round keys")
        self.n = int(n)
        self.half = max(1, ((max(self.n - 1, 1)).bit_length() + 1) // 2)
        self.half_mask = (1 << self.half) - 1
        self.keys = [int(k) & _M64 for k in keys]

    @classmethod
    def from_seed(cls, n: int, seed: int, epoch: int) -> "FeistelPermutation":
        state = np.random.SeedSequence((seed, epoch), spawn_key=(_PERMUTATION_TAG,))
        return cls(n, [int(k) for k in state.generate_state(cls.ROUNDS, np.uint64)])

    def _encrypt(self, x):
        left, right = x >> self.half, x & self.half_mask
        for key in self.keys:
            left, right = right, left ^ (_mix64(right ^ key) & self.half_mask)
        return (left << self.half) | right

    def __call__(self, i):
        """The image of ``i``: an int for an int, an int64 array (same shape) for an array."""
        if isinstance(i, (int, np.integer)):
            i = int(i)
            if not 0 <= i < self.n:
                raise IndexError(f"index {i} outside [0, {self.n})")
            x = self._encrypt(i)
            while x >= self.n:
                x = self._encrypt(x)
            return x
        x = np.asarray(i, dtype=np.int64)
        if x.size and (x.min() < 0 or x.max() >= self.n):
            raise IndexError(f"indices outside [0, {self.n})")
        x = x.astype(np.uint64)
        walking = np.ones(x.shape, dtype=bool)
        while walking.any():
            x[walking] = self._encrypt(x[walking])
            walking = x >= self.n
        return x.astype(np.int64)


# -- the sampler ---------------------------------------------------------------------------------


class PairSampler:
    """Draws (A, B, relation) pairs over a segment store and (optionally) a document graph.

    Settings (plain keywords; the trainer maps its config onto them):

    * ``objective``: ``linkbert`` (contiguous/random/linked with ``p_contiguous, p_random,
      p_linked``), ``mlm-only`` (the same inputs; the loss ignores the relation), ``bert``
      (contiguous/random 1/2 each: BERT's NSP; never linked, the p_* are ignored).
    * ``linked_sampling``: ``inverse_indegree`` (diversity sampling, P(j|i) ∝ 1/indeg(j)) or
      ``uniform`` over the usable out-links.
    * ``linked_segment``: which segment of the other document B is: ``random`` (uniform) or
      ``first``. It applies to *random* B as well as linked B, so the two differ only in which
      document B comes from: with ``first`` for linked B alone, "B is a lead segment" would
      give the linked label away and the relation head could learn position, not relatedness.
    * ``anchors``: the segments A is drawn from (a train or held-out subset); default all.
      B may come from any segment of the store.

    Random B: a uniformly random *document* j ≠ i (among documents with segments), then the
    segment by ``linked_segment``. Document-first, as the paper words it ("a segment of a random
    document") and as BERT's create_pretraining_data does; uniform over segments would favour long
    documents, which linked B (document-first too) does not.

    Without a graph (a corpus without links, e.g. BookCorpus) no anchor can link, so the
    fallback below turns ``linkbert`` into contiguous/random 1/2 each, as SPEC asks.

    Edge cases (SPEC), the label always being how B was really chosen. The relation is drawn
    first; if A cannot have it, another is drawn uniformly among those A can have and the
    objective allows (probability > 0): no usable out-link -> contiguous or random 1/2 each;
    A is its document's last segment -> random or linked 1/2 each; neither -> random. A usable
    out-link points to another document with at least one segment.
    """

    def __init__(self, store: SegmentStore, graph: DocGraph | None = None, *, objective: str = "linkbert",
                 p_contiguous: float = 1 / 3, p_random: float = 1 / 3, p_linked: float = 1 / 3,
                 linked_sampling: str = "inverse_indegree", linked_segment: str = "random",
                 seed: int = 0, anchors: np.ndarray | None = None):
        _check_choice("objective", objective, OBJECTIVES)
        _check_choice("linked_sampling", linked_sampling, LINKED_SAMPLING)
        _check_choice("linked_segment", linked_segment, LINKED_SEGMENT)
        if int(seed) < 0:
            raise ValueError("seed must be >= 0 (it seeds numpy's SeedSequence)")
        self.store, self.graph = store, graph
        self.objective, self.linked_sampling, self.linked_segment = objective, linked_sampling, linked_segment
        self.seed = int(seed)
        self.probabilities = _relation_probabilities(objective, p_contiguous, p_random, p_linked)
        self.allowed = [Relation(r) for r in range(3) if self.probabilities[r] > 0]
        self._cumulative = np.cumsum(self.probabilities)
        if graph is not None and graph.num_nodes != store.num_documents:
            raise ConfigError(f"the graph has {graph.num_nodes} nodes but the corpus {store.num_documents} documents: "
                              "a graph of another corpus?")
        self._doc_offsets = np.asarray(store.document_offsets)
        self._setup_documents()
        self.anchors = self._check_anchors(anchors)
        self._permutation: FeistelPermutation | None = None

    def _setup_documents(self) -> None:
        """Documents B may come from: those with a segment. The list is kept only when some
        document is empty (``prepare`` never writes one), to stay O(1) memory otherwise."""
        sizes = np.diff(self._doc_offsets)
        nonempty = np.flatnonzero(sizes > 0)
        if len(nonempty) < 2:
            raise ConfigError(f"the corpus has {len(nonempty)} document(s) with segments; random pairs "
                              "need at least 2 (B must come from another document)")
        self._n_nonempty = len(nonempty)
        self._nonempty = None if len(nonempty) == len(sizes) else nonempty

    def _check_anchors(self, anchors) -> np.ndarray | None:
        if anchors is None:
            return None
        anchors = np.asarray(anchors)
        if anchors.ndim != 1 or not np.issubdtype(anchors.dtype, np.integer):
            raise ValueError("anchors must be a 1-D integer array of segment indices")
        if len(anchors) and (anchors.min() < 0 or anchors.max() >= self.store.num_segments):
            raise ValueError(f"anchors must lie in [0, {self.store.num_segments})")
        return anchors

    def __len__(self) -> int:
        """Pairs in one epoch: one per anchor."""
        return self.store.num_segments if self.anchors is None else len(self.anchors)

    # -- one pair -----------------------------------------------------------------------------

    def anchor(self, epoch: int, index: int) -> int:
        """The anchor segment A of ``index`` in ``epoch``: a shuffled order, every anchor once."""
        position = self._epoch_permutation(epoch)(index)
        return position if self.anchors is None else int(self.anchors[position])

    def anchors_of_epoch(self, epoch: int, indices: np.ndarray) -> np.ndarray:
        """``anchor`` for many indices at once: (n,) int64."""
        positions = self._epoch_permutation(epoch)(np.asarray(indices, dtype=np.int64))
        return positions if self.anchors is None else self.anchors[positions].astype(np.int64)

    def _epoch_permutation(self, epoch: int) -> FeistelPermutation:
        # one cached epoch: a worker walks through one epoch at a time
        if self._permutation is None or self._permutation_epoch != epoch:
            if int(epoch) < 0:
                raise ValueError("epoch must be >= 0")
            self._permutation = FeistelPermutation.from_seed(len(self), self.seed, int(epoch))
            self._permutation_epoch = epoch
        return self._permutation

    def choose(self, epoch: int, index: int) -> tuple[int, int, Relation]:
        """(A segment, B segment, relation) of ``index`` in ``epoch``, without reading tokens."""
        a = self.anchor(epoch, index)
        rng = np.random.default_rng((self.seed, int(epoch), int(index)))
        doc = int(self.store.segment_document(a))
        is_last = a == self._doc_offsets[doc + 1] - 1
        targets, weights = self._usable_links(doc)
        relation = self._relation(rng, can_contiguous=not is_last, can_link=len(targets) > 0)
        if relation == Relation.CONTIGUOUS:
            return a, a + 1, relation
        if relation == Relation.LINKED:
            j = int(targets[np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right")])
        else:
            j = self._other_document(rng, doc)
        return a, self._segment_of(rng, j), relation

    def pair(self, epoch: int, index: int) -> Pair:
        """The pair of ``index`` (0 <= index < len(self)) in ``epoch``; deterministic."""
        a, b, relation = self.choose(epoch, index)
        return Pair(a=np.asarray(self.store.segment(a)), b=np.asarray(self.store.segment(b)),
                    relation=int(relation), a_segment=a, b_segment=b, key=(self.seed, int(epoch), int(index)))

    # -- the pieces of one choice --------------------------------------------------------------

    def _relation(self, rng: np.random.Generator, can_contiguous: bool, can_link: bool) -> Relation:
        drawn = Relation(int(np.searchsorted(self._cumulative, rng.random() * self._cumulative[-1], side="right")))
        possible = {Relation.CONTIGUOUS: can_contiguous, Relation.RANDOM: True, Relation.LINKED: can_link}
        if possible[drawn]:
            return drawn
        fallback = [r for r in self.allowed if possible[r] and r != drawn]
        return fallback[int(rng.integers(len(fallback)))] if fallback else Relation.RANDOM

    def _usable_links(self, doc: int) -> tuple[np.ndarray, np.ndarray]:
        """Out-neighbours of ``doc`` that B may come from, with their unnormalised weights."""
        if self.graph is None or Relation.LINKED not in self.allowed:
            return np.zeros(0, np.int64), np.zeros(0)
        targets = np.asarray(self.graph.neighbors(doc))
        if len(targets) == 0:
            return targets, np.zeros(0)
        weights = self.graph.linked_probabilities(doc, self.linked_sampling)
        usable = (targets != doc) & (self._doc_offsets[targets + 1] > self._doc_offsets[targets])
        return targets[usable], weights[usable]

    def _other_document(self, rng: np.random.Generator, doc: int) -> int:
        """A uniformly random document with segments, other than ``doc``."""
        k = int(rng.integers(self._n_nonempty - 1))
        own = doc if self._nonempty is None else int(np.searchsorted(self._nonempty, doc))
        k += k >= own  # skip A's own document
        return k if self._nonempty is None else int(self._nonempty[k])

    def _segment_of(self, rng: np.random.Generator, doc: int) -> int:
        start, stop = int(self._doc_offsets[doc]), int(self._doc_offsets[doc + 1])
        return start if self.linked_segment == "first" else start + int(rng.integers(stop - start))


def realised_distribution(sampler: PairSampler, epoch: int, indices) -> dict[str, float]:
    """Frequencies of the realised relations over ``indices`` of ``epoch`` (SPEC: report them
    and keep them near 1/3 each): ``{"contiguous", "random", "linked"}`` fractions, plus ``n``."""
    relations = [sampler.choose(epoch, int(i))[2] for i in indices]
    counts = np.bincount(np.asarray(relations, dtype=np.int64), minlength=3)
    n = max(len(relations), 1)
    out: dict = {r.name.lower(): float(counts[r] / n) for r in Relation}
    out["n"] = len(relations)
    return out


def _relation_probabilities(objective: str, p_contiguous: float, p_random: float, p_linked: float) -> np.ndarray:
    if objective == "bert":
        return np.array([0.5, 0.5, 0.0])
    p = np.array([p_contiguous, p_random, p_linked], dtype=np.float64)
    if (p < 0).any() or not np.isclose(p.sum(), 1.0, atol=1e-6):
        raise ValueError(f"p_contiguous, p_random, p_linked must be >= 0 and sum to 1, got {p.tolist()}")
    return p / p.sum()


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def split_anchors(store: SegmentStore, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out anchor segments: ``fraction`` of the documents (at least one, never
    all), chosen by ``seed``, are held out whole, so no held-out text is ever an anchor in training."""
    rng = np.random.default_rng((seed, 7919))
    n_docs = store.num_documents
    n_heldout = min(n_docs - 1, max(1, round(fraction * n_docs))) if fraction > 0 and n_docs > 1 else 0
    heldout_docs = np.zeros(n_docs, dtype=bool)
    heldout_docs[rng.choice(n_docs, size=n_heldout, replace=False)] = True
    heldout = heldout_docs[store.segment_document(np.arange(store.num_segments))]
    return np.flatnonzero(~heldout), np.flatnonzero(heldout)
