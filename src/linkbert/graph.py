"""DocGraph: the directed document graph in compressed sparse row (CSR) form.

Node ``i`` is document ``i`` of the segment store. Edge ``i -> j``: document i links to (or
cites) document j. Rows are sorted, with no duplicates and no self-links. Memory: 8 bytes per
node for ``indptr`` and 4 per edge for ``indices`` (+4 per node for the cached in-degree), so
Wikipedia's 6.5M documents and 150M links take about 0.68 GB, memory-mapped on load.

Diversity sampling (SPEC §1): the linked document j is drawn with probability proportional
to 1 / in-degree(j) among the out-neighbours of i. ``linked_probabilities`` gives that
distribution; the pair sampler draws from it.

Held-out links: ``withhold_links`` sets a share of the links aside (``withhold_pairs``: a share
of the linked pairs of documents, a pair linked both ways counted once) and ``without_pairs``
removes given document pairs, both directions, so that a link-prediction evaluation asks about
pairs pretraining never saw linked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

INDPTR = "indptr.npy"
INDICES = "indices.npy"
IN_DEGREE = "in_degree.npy"
META = "graph.json"
_CHUNK = 1 << 22  # elements per step of the chunked passes in from_edges: small temporaries


class DocGraph:
    def __init__(self, indptr: np.ndarray, indices: np.ndarray, in_degree: np.ndarray | None = None):
        self.source_dir: Path | None = None  # set by load(): workers then re-map the files
        self.indptr = indptr
        self.indices = indices
        self.num_nodes = len(indptr) - 1
        self.in_degree = (np.bincount(indices, minlength=self.num_nodes).astype(np.int32)
                          if in_degree is None else in_degree)

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_edges(cls, src: np.ndarray, dst: np.ndarray, num_nodes: int) -> "DocGraph":
        """Build from edge lists (any order, duplicates and self-links allowed: both are dropped).

        One int64 key ``src * n + dst`` per edge is sorted in place, then duplicates and
        self-links are squeezed out in place, chunk by chunk: beyond the inputs, the peak is
        about 13 bytes per edge (the key, a mask, the int32 targets), so 150M edges build in
        about 2 GB on top of the 1.2 GB of input arrays, and take 0.6 GB once built.
        """
        src = np.asarray(src)
        dst = np.asarray(dst)
        if len(src) != len(dst):
            raise ValueError("src and dst must have the same length")
        if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_nodes):
            raise ValueError(f"edge endpoints must lie in [0, {num_nodes})")
        key = src.astype(np.int64)
        key *= num_nodes
        key += dst
        key.sort()  # in place: by (src, dst)
        key = _squeeze_sorted(key, num_nodes)
        # row i's edges are the keys in [i * n, (i + 1) * n)
        indptr = np.searchsorted(key, np.arange(num_nodes + 1, dtype=np.int64) * num_nodes).astype(np.int64)
        indices = np.empty(len(key), dtype=np.int32)
        for start in range(0, len(key), _CHUNK):
            indices[start:start + _CHUNK] = key[start:start + _CHUNK] % num_nodes
        return cls(indptr, indices)

    @classmethod
    def from_rows(cls, rows: Iterable[np.ndarray], num_nodes: int) -> "DocGraph":
        """Build from each node's targets in node order (sorted, unique, no self-link: see
        ``clean_row``), streamed: only the edges are held, in blocks."""
        indptr = np.zeros(num_nodes + 1, dtype=np.int64)
        blocks, block = [], []
        for i, row in enumerate(rows):
            indptr[i + 1] = indptr[i] + len(row)
            block.append(row)
            if len(block) == 65536:
                blocks.append(np.concatenate(block))
                block = []
        blocks.append(np.concatenate(block) if block else np.zeros(0, np.int32))
        return cls(indptr, np.concatenate(blocks).astype(np.int32))

    # -- queries ----------------------------------------------------------------------------

    @property
    def num_edges(self) -> int:
        return int(self.indptr[-1])

    @property
    def out_degree(self) -> np.ndarray:
        return np.diff(self.indptr)

    def neighbors(self, i: int) -> np.ndarray:
        """Out-neighbours of node ``i``, sorted."""
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    def linked_probabilities(self, i: int, scheme: str = "inverse_indegree") -> np.ndarray:
        """P(j | i) over ``neighbors(i)``: ∝ 1/in-degree(j) (diversity sampling) or uniform.

        Every neighbour has in-degree >= 1 (the edge from i), so the weights are finite.
        Returns an empty array for a node without out-links.
        """
        neighbors = self.neighbors(i)
        if scheme == "uniform":
            return np.full(len(neighbors), 1.0 / len(neighbors)) if len(neighbors) else np.zeros(0)
        if scheme != "inverse_indegree":
            raise ValueError(f"unknown linked-document sampling {scheme!r}; expected inverse_indegree or uniform")
        weights = 1.0 / self.in_degree[neighbors].astype(np.float64)
        return weights / weights.sum() if len(weights) else weights

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """``(src, dst)``: every edge as two int64 arrays, in row order."""
        src = np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.out_degree)
        return src, np.asarray(self.indices, dtype=np.int64)

    # -- held-out links ---------------------------------------------------------------------

    def without_pairs(self, pairs: np.ndarray) -> "DocGraph":
        """This graph minus every edge between the two documents of a row of ``pairs`` (an
        ``(m, 2)`` array), in either direction."""
        src, dst = self.edges()
        keep = ~joins_pairs(src, dst, pairs, self.num_nodes)
        return DocGraph.from_edges(src[keep], dst[keep], self.num_nodes)

    def withhold_links(self, fraction: float, seed: int = 0) -> tuple["DocGraph", np.ndarray]:
        """``(remaining graph, withheld (m, 2) int64 array of (source, target))``: ``fraction``
        of the links drawn by ``seed`` are withheld, and the remaining graph has neither a
        withheld link nor its reverse, so no withheld pair of documents is ever linked in it
        (held-out link prediction asks about exactly those pairs). A pair linked both ways is
        two links here, each drawn on its own: ``withhold_pairs`` counts it once."""
        withheld = self._draw_links(fraction, seed)
        return self.without_pairs(withheld), withheld

    def withhold_pairs(self, fraction: float, seed: int = 0) -> tuple["DocGraph", np.ndarray]:
        """``(remaining graph, withheld (m, 2) int64 array)``: ``fraction`` of the linked *pairs*
        of documents, drawn by ``seed``, withheld in both directions. A pair counts once whether
        one or both documents link the other (Cora lists each citation both ways), and each
        withheld row keeps a direction the graph has. The draw is ``withhold_links``'s, over the
        graph of pairs (one edge ``min -> max`` per pair)."""
        n = self.num_nodes
        src, dst = self.edges()
        pairs = DocGraph.from_edges(np.minimum(src, dst), np.maximum(src, dst), n)  # one row per pair
        withheld = pairs._draw_links(fraction, seed)
        forward = np.isin(withheld[:, 0] * n + withheld[:, 1], src * n + dst)
        withheld[~forward] = withheld[~forward][:, ::-1]
        return self.without_pairs(withheld), withheld

    def _draw_links(self, fraction: float, seed: int) -> np.ndarray:
        """``fraction`` of the links, drawn by ``seed``: an ``(m, 2)`` int64 array of (source,
        target) in row order."""
        src, dst = self.edges()
        n_withheld = round(fraction * len(src))
        chosen = np.sort(np.random.default_rng((seed, 4241)).choice(len(src), size=n_withheld, replace=False))
        return np.stack([src[chosen], dst[chosen]], axis=1)

    def validate(self) -> None:
        """Check the CSR invariants; raises ``ValueError`` naming the first one broken."""
        n = self.num_nodes
        if self.indptr[0] != 0 or (np.diff(self.indptr) < 0).any() or self.indptr[-1] != len(self.indices):
            raise ValueError("indptr must start at 0, never decrease and end at the number of edges")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= n):
            raise ValueError("an edge points outside the graph")
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.indptr))
        if (rows == self.indices).any():
            raise ValueError("the graph has a self-link")
        same_row = rows[1:] == rows[:-1]
        if (self.indices[1:][same_row] <= self.indices[:-1][same_row]).any():
            raise ValueError("a row is not strictly increasing (unsorted or duplicate link)")
        if not np.array_equal(self.in_degree, np.bincount(self.indices, minlength=n)):
            raise ValueError("the stored in-degree does not match the edges")

    def stats(self) -> dict:
        out = self.out_degree
        return {
            "nodes": self.num_nodes,
            "edges": self.num_edges,
            "docs_without_outlinks": int((out == 0).sum()),
            "docs_without_inlinks": int((self.in_degree == 0).sum()),
            "out_degree_mean": round(float(out.mean()), 3) if self.num_nodes else 0.0,
            "out_degree_max": int(out.max()) if self.num_nodes else 0,
            "in_degree_max": int(self.in_degree.max()) if self.num_nodes else 0,
            "in_degree_percentiles": _percentiles(self.in_degree),
        }

    # -- files ------------------------------------------------------------------------------

    def save(self, graph_dir: str | Path) -> None:
        graph_dir = Path(graph_dir)
        graph_dir.mkdir(parents=True, exist_ok=True)
        np.save(graph_dir / INDPTR, self.indptr)
        np.save(graph_dir / INDICES, self.indices)
        np.save(graph_dir / IN_DEGREE, self.in_degree)
        (graph_dir / META).write_text(json.dumps({"nodes": self.num_nodes, "edges": self.num_edges}) + "\n")

    @classmethod
    def load(cls, graph_dir: str | Path, mmap: bool = True) -> "DocGraph":
        """The graph saved in ``graph_dir``; files that are not its arrays (damaged, truncated, of
        shapes that do not fit together) are a ``BadInput`` naming the file. These checks cost
        nothing (worker processes load the graph again); :meth:`check_bounds` reads the arrays."""
        graph_dir = Path(graph_dir)
        if not (graph_dir / META).exists():
            raise FileNotFoundError(f"{graph_dir} holds no document graph ({META} missing)")
        mode = "r" if mmap else None
        indptr, indices, in_degree = (_load_array(graph_dir / name, mode) for name in (INDPTR, INDICES, IN_DEGREE))
        if len(indptr) < 1 or int(indptr[0]) != 0 or int(indptr[-1]) != len(indices):
            raise _damaged(graph_dir / INDPTR, f"its {len(indptr):,} row offsets must run from 0 to the "
                                               f"{len(indices):,} edges of {INDICES}")
        if len(in_degree) != len(indptr) - 1:
            raise _damaged(graph_dir / IN_DEGREE, f"{len(in_degree):,} in-degrees for {len(indptr) - 1:,} nodes")
        graph = cls(indptr, indices, in_degree)
        graph.source_dir = graph_dir if mmap else None
        return graph

    def check_bounds(self, folder: str | Path) -> None:
        """The arrays of a loaded graph (saved in ``folder``): row offsets that never fall, every
        edge's target a node, the stored in-degrees those of the edges; a ``BadInput`` naming the
        first file that breaks one. Chunked passes over the arrays (O(edges) time, O(nodes)
        memory): not :meth:`validate`'s full check of sorted, duplicate-free rows. (A graph of
        another corpus, with another number of nodes, is the pair sampler's to refuse.)"""
        folder = Path(folder)
        for start in range(0, self.num_nodes, _CHUNK):
            if (np.diff(self.indptr[start:start + _CHUNK + 1]) < 0).any():
                raise _damaged(folder / INDPTR, f"row offsets fall (near node {start:,})")
        degrees = np.zeros(self.num_nodes, dtype=np.int64)
        for start in range(0, len(self.indices), _CHUNK):
            chunk = np.asarray(self.indices[start:start + _CHUNK])
            if len(chunk) and (int(chunk.min()) < 0 or int(chunk.max()) >= self.num_nodes):
                raise _damaged(folder / INDICES, f"an edge (near edge {start:,}) points outside the "
                                                 f"{self.num_nodes:,} documents")
            degrees += np.bincount(chunk, minlength=self.num_nodes)
        if not np.array_equal(degrees, self.in_degree):
            raise _damaged(folder / IN_DEGREE, "the stored in-degrees are not those of the edges")

    def __reduce__(self):
        # a memory-mapped graph travels to worker processes as its folder, not as 0.7 GB of arrays
        if self.source_dir is not None:
            return (DocGraph.load, (str(self.source_dir),))
        return (DocGraph, (self.indptr, self.indices, self.in_degree))


def _damaged(path: Path, detail: str):
    from linkbert.errors import BadInput

    return BadInput(str(path), "", "damaged_corpus", f"{detail}: the document graph is damaged; prepare the corpus "
                                                     "again")


def _load_array(path: Path, mmap_mode) -> np.ndarray:
    """A 1-D integer array saved by :meth:`DocGraph.save`; anything else a ``BadInput``."""
    try:
        array = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except FileNotFoundError:
        raise _damaged(path, "missing") from None
    except (ValueError, EOFError, OSError) as e:  # not an .npy file, truncated, a pickle
        if isinstance(e, OSError) and e.errno is not None:
            raise
        raise _damaged(path, f"not a saved array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise _damaged(path, f"a {array.ndim}-D array of {array.dtype}, not a 1-D integer array")
    return array


def joins_pairs(src: np.ndarray, dst: np.ndarray, pairs: np.ndarray, num_nodes: int) -> np.ndarray:
    """Boolean per edge ``(src[i], dst[i])``: True where it joins the two documents of a row of
    ``pairs`` (an ``(m, 2)`` array), in either direction."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if len(pairs) == 0:
        return np.zeros(len(src), dtype=bool)
    keys = np.concatenate([pairs[:, 0] * num_nodes + pairs[:, 1], pairs[:, 1] * num_nodes + pairs[:, 0]])
    return np.isin(np.asarray(src, np.int64) * num_nodes + np.asarray(dst, np.int64), keys)


def _squeeze_sorted(key: np.ndarray, num_nodes: int) -> np.ndarray:
    """Drop repeated keys and self-links (``key = s * (n + 1)``) from sorted ``key``, in place.

    Returns a view of ``key``'s first part: no second array of the input's size is made.
    """
    kept, previous = 0, None
    for start in range(0, len(key), _CHUNK):
        chunk = key[start:start + _CHUNK]
        keep = chunk % (num_nodes + 1) != 0
        keep[1:] &= chunk[1:] != chunk[:-1]
        if previous is not None:
            keep[0] &= chunk[0] != previous
        previous = chunk[-1]
        selected = chunk[keep]  # a copy, so writing below its source range is safe
        key[kept:kept + len(selected)] = selected
        kept += len(selected)
    return key[:kept]


def clean_row(source: int, targets: list[int]) -> tuple[np.ndarray, int, int]:
    """One node's targets sorted and unique, without ``source``; also how many self-links and
    duplicates were dropped."""
    row = np.asarray(targets, dtype=np.int64)
    n_self = int((row == source).sum())
    row = row[row != source]
    unique = np.unique(row)
    return unique.astype(np.int32), n_self, len(row) - len(unique)


def _percentiles(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {}
    qs = (50, 90, 99)
    return {f"p{q}": float(v) for q, v in zip(qs, np.percentile(values, qs))}
