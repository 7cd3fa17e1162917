import numpy as np
import pytest

from linkbert.graph import DocGraph, clean_row, joins_pairs


def hand_graph() -> DocGraph:
    # 0 -> 1, 2, 3 ; 1 -> 2 ; 2 -> 3 ; 3 -> (none) ; 4 -> 2
    src = [0, 0, 0, 1, 2, 4, 0, 2, 1]
    dst = [1, 2, 3, 2, 3, 2, 2, 2, 1]  # (0,2) duplicated, (2,2) and (1,1) self-links
    return DocGraph.from_edges(np.array(src), np.array(dst), num_nodes=5)


def test_from_edges_drops_self_links_and_duplicates():
    g = hand_graph()
    g.validate()
    assert g.num_edges == 6
    assert g.neighbors(0).tolist() == [1, 2, 3]
    assert g.neighbors(3).tolist() == []
    assert g.in_degree.tolist() == [0, 1, 3, 2, 0]  # 2 is linked from 0, 1 and 4
    assert g.out_degree.tolist() == [3, 1, 1, 0, 1]


def test_inverse_indegree_probabilities_follow_the_formula():
    g = hand_graph()
    p = g.linked_probabilities(0)
    weights = np.array([1 / 1, 1 / 3, 1 / 2])  # in-degrees of nodes 1, 2, 3 -> 6/11, 2/11, 3/11
    np.testing.assert_allclose(p, weights / weights.sum())
    np.testing.assert_allclose(g.linked_probabilities(0, "uniform"), [1 / 3] * 3)
    assert g.linked_probabilities(3).size == 0
    with pytest.raises(ValueError):
        g.linked_probabilities(0, "degree")


def test_save_and_load_round_trip(tmp_path):
    g = hand_graph()
    g.save(tmp_path / "graph")
    loaded = DocGraph.load(tmp_path / "graph")
    loaded.validate()
    for name in ("indptr", "indices", "in_degree"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(g, name))
    assert loaded.stats() == g.stats()
    assert g.stats()["docs_without_outlinks"] == 1 and g.stats()["docs_without_inlinks"] == 2


def test_validate_catches_broken_invariants():
    good = hand_graph()
    broken = [
        DocGraph(good.indptr, np.array([1, 2, 0, 2, 3, 2], dtype=np.int32)),  # self-link 0 -> 0
        DocGraph(good.indptr, np.array([2, 1, 3, 2, 3, 2], dtype=np.int32)),  # unsorted row
        DocGraph(good.indptr, np.array([1, 1, 3, 2, 3, 2], dtype=np.int32)),  # duplicate
        DocGraph(good.indptr, np.array([1, 2, 9, 2, 3, 2], dtype=np.int32)),  # out of range
        DocGraph(good.indptr, good.indices, in_degree=np.zeros(5, np.int32)),
    ]
    for graph in broken:
        with pytest.raises(ValueError):
            graph.validate()


@pytest.mark.parametrize("chunk", [7, 1 << 22])
def test_random_graph_matches_a_set_of_edges(monkeypatch, chunk):
    import linkbert.graph

    monkeypatch.setattr(linkbert.graph, "_CHUNK", chunk)  # small chunks: duplicates straddle chunk borders
    rng = np.random.default_rng(1)
    n = 200
    src, dst = rng.integers(0, n, 5000), rng.integers(0, n, 5000)
    g = DocGraph.from_edges(src, dst, n)
    g.validate()
    expected = {(int(a), int(b)) for a, b in zip(src, dst) if a != b}
    got = {(i, int(j)) for i in range(n) for j in g.neighbors(i)}
    assert got == expected


def test_clean_row_counts_what_it_drops():
    row, n_self, n_dup = clean_row(3, [5, 3, 1, 5, 3, 2])
    assert row.tolist() == [1, 2, 5] and n_self == 2 and n_dup == 1


def test_load_of_a_missing_graph_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no document graph"):
        DocGraph.load(tmp_path)


def test_a_loaded_graph_pickles_as_its_folder(tmp_path):
    import pickle

    g = DocGraph.from_edges(np.arange(999), np.arange(1, 1000), 1000)
    g.save(tmp_path / "g")
    data = pickle.dumps(DocGraph.load(tmp_path / "g"))
    assert len(data) < 300
    np.testing.assert_array_equal(pickle.loads(data).indices, g.indices)
    in_memory = pickle.loads(pickle.dumps(g))  # not loaded from files: the arrays travel
    np.testing.assert_array_equal(in_memory.indices, g.indices)


# -- held-out links ------------------------------------------------------------------------------


def edge_set(graph: DocGraph) -> set[tuple[int, int]]:
    src, dst = graph.edges()
    return set(zip(src.tolist(), dst.tolist()))


def test_edges_lists_every_link_in_row_order():
    src, dst = hand_graph().edges()
    assert src.tolist() == [0, 0, 0, 1, 2, 4] and dst.tolist() == [1, 2, 3, 2, 3, 2]
    assert src.dtype == dst.dtype == np.int64


def test_joins_pairs_matches_either_direction_only():
    src, dst = np.array([0, 1, 2, 3, 1]), np.array([1, 0, 3, 0, 2])
    assert joins_pairs(src, dst, np.array([[0, 1]]), 4).tolist() == [True, True, False, False, False]
    assert joins_pairs(src, dst, np.array([[3, 2], [2, 1]]), 4).tolist() == [False, False, True, False, True]
    assert not joins_pairs(src, dst, np.zeros((0, 2), np.int64), 4).any()


def test_without_pairs_drops_both_directions_and_nothing_else():
    # 0 <-> 1, 0 -> 2, 2 -> 3, 3 -> 1; removing the pair (1, 0) takes both 0 -> 1 and 1 -> 0
    graph = DocGraph.from_edges(np.array([0, 1, 0, 2, 3]), np.array([1, 0, 2, 3, 1]), 4)
    kept = graph.without_pairs(np.array([[1, 0]]))
    kept.validate()
    assert edge_set(kept) == {(0, 2), (2, 3), (3, 1)}
    assert edge_set(graph.without_pairs(np.zeros((0, 2), np.int64))) == edge_set(graph)


def random_graph(n: int = 40, seed: int = 1) -> DocGraph:
    rng = np.random.default_rng(seed)
    return DocGraph.from_edges(np.repeat(np.arange(n), 6), rng.integers(0, n, size=6 * n), n)


def test_withheld_links_and_their_reverse_are_absent_from_the_rest():
    graph = random_graph()
    rest, withheld = graph.withhold_links(0.1)
    assert withheld.shape == (round(0.1 * graph.num_edges), 2)
    full, kept = edge_set(graph), edge_set(rest)
    pairs = {tuple(p) for p in withheld.tolist()}
    assert len(pairs) == len(withheld) and pairs <= full  # distinct, real links
    assert kept == {(a, b) for a, b in full if (a, b) not in pairs and (b, a) not in pairs}  # nothing else is lost
    rest.validate()
    again_rest, again = graph.withhold_links(0.1)  # deterministic
    assert np.array_equal(again, withheld) and edge_set(again_rest) == kept
    assert not np.array_equal(graph.withhold_links(0.1, seed=5)[1], withheld)
    assert graph.withhold_links(0.0)[1].shape == (0, 2) and edge_set(graph.withhold_links(0.0)[0]) == full


# six documents: 0-1, 1-2, 2-3 and 0-3 linked both ways; 3 -> 4, 4 -> 5, 5 -> 0 one way
BOTH_WAYS = DocGraph.from_edges(np.array([0, 1, 1, 2, 2, 3, 3, 4, 5, 0, 3]),
                                np.array([1, 0, 2, 1, 3, 2, 4, 5, 0, 3, 0]), 6)


def test_withheld_links_are_the_draw_they_always_were():
    """The ablation grid's withheld links (fixed arrays of the implementation its results came from)."""
    rest, withheld = BOTH_WAYS.withhold_links(0.5, seed=0)
    assert withheld.tolist() == [[0, 3], [1, 0], [1, 2], [3, 2], [4, 5], [5, 0]] and edge_set(rest) == {(3, 4)}
    rest, withheld = BOTH_WAYS.withhold_links(0.5, seed=1)
    assert withheld.tolist() == [[0, 1], [1, 0], [1, 2], [3, 0], [3, 4], [5, 0]]
    assert edge_set(rest) == {(2, 3), (3, 2), (4, 5)}


def test_withhold_pairs_counts_a_pair_once_and_removes_both_directions():
    src = np.array([0, 1, 1, 2, 2, 3, 0, 3])
    dst = np.array([1, 0, 2, 1, 3, 2, 3, 0])  # four pairs, each listed both ways
    graph = DocGraph.from_edges(src, dst, 4)
    remaining, withheld = graph.withhold_pairs(0.5, seed=1)
    assert len(withheld) == 2 and len({frozenset(p) for p in withheld.tolist()}) == 2
    assert not {frozenset(p) for p in edge_set(remaining)} & {frozenset(p) for p in withheld.tolist()}
    assert remaining.num_edges == 4  # the two other pairs, both ways
    again = graph.withhold_pairs(0.5, seed=1)[1]
    assert np.array_equal(again, withheld)  # fixed by the seed


def test_withheld_pairs_keep_a_direction_the_graph_has():
    for seed in range(5):
        rest, withheld = BOTH_WAYS.withhold_pairs(0.5, seed=seed)
        assert {tuple(p) for p in withheld.tolist()} <= edge_set(BOTH_WAYS)  # 5 -> 0, never 0 -> 5
        assert edge_set(rest) == edge_set(BOTH_WAYS.without_pairs(withheld))


def old_withhold_pairs(graph: DocGraph, fraction: float, seed: int = 0):
    """The graph benchmark's withholding before ``DocGraph.withhold_pairs`` took it over
    (experiments/graph/assets.py), kept to show that the move changed no result."""
    n = graph.num_nodes
    src, dst = graph.edges()
    pairs = DocGraph.from_edges(np.minimum(src, dst), np.maximum(src, dst), n)
    _, withheld = pairs.withhold_links(fraction, seed)
    forward = np.isin(withheld[:, 0] * n + withheld[:, 1], src * n + dst)
    withheld[~forward] = withheld[~forward][:, ::-1]
    return graph.without_pairs(withheld), withheld


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_withhold_pairs_gives_what_the_graph_benchmark_got(seed):
    expected = {0: [[0, 1], [0, 3], [5, 0], [3, 4]], 1: [[0, 1], [0, 3], [2, 3], [4, 5]],
                2: [[0, 3], [5, 0], [1, 2], [2, 3]]}  # the arrays the benchmark's implementation gave
    rest, withheld = BOTH_WAYS.withhold_pairs(0.5, seed=seed)
    assert withheld.tolist() == expected[seed]
    graph = random_graph(60, seed=seed)
    for fraction in (0.1, 0.3):
        old_rest, old = old_withhold_pairs(graph, fraction, seed)
        rest, withheld = graph.withhold_pairs(fraction, seed)
        assert np.array_equal(withheld, old) and edge_set(rest) == edge_set(old_rest)


# -- a damaged graph, found when it is opened (issue 24) ------------------------------------------------

def _poke_npy(path, index, value):
    array = np.load(path)
    array[index] = value
    np.save(path, array)


@pytest.mark.parametrize("damage, file, words", [
    (lambda d: (d / "indices.npy").write_bytes(b"\x93NUMPY garbage" * 20), "indices.npy", "not a saved array"),
    (lambda d: (d / "indices.npy").write_bytes((d / "indices.npy").read_bytes()[:-8]), "indices.npy",
     "not a saved array"),
    (lambda d: np.save(d / "indices.npy", np.zeros((2, 3), np.int32)), "indices.npy", "2-D array"),
    (lambda d: np.save(d / "indptr.npy", np.array([0.0, 1.0])), "indptr.npy", "of float64"),
    (lambda d: _poke_npy(d / "indptr.npy", -1, 3), "indptr.npy", "from 0 to the 6 edges"),
    (lambda d: np.save(d / "in_degree.npy", np.zeros(3, np.int32)), "in_degree.npy", "3 in-degrees for 5 nodes"),
    (lambda d: (d / "indptr.npy").unlink(), "indptr.npy", "missing"),
])
def test_a_damaged_graph_is_named_when_loaded(tmp_path, damage, file, words):
    from linkbert.errors import BadInput

    hand_graph().save(tmp_path)
    damage(tmp_path)
    with pytest.raises(BadInput, match=words) as info:
        DocGraph.load(tmp_path)
    assert info.value.path == str(tmp_path / file) and "prepare the corpus again" in str(info.value)


@pytest.mark.parametrize("damage, file, words", [
    (lambda d: _poke_npy(d / "indices.npy", 0, 10 ** 6), "indices.npy", "points outside the 5 documents"),
    (lambda d: _poke_npy(d / "indices.npy", 0, -1), "indices.npy", "points outside"),
    (lambda d: _poke_npy(d / "indptr.npy", 2, 0), "indptr.npy", "row offsets fall"),
    (lambda d: _poke_npy(d / "in_degree.npy", 2, 0), "in_degree.npy", "not those of the edges"),
])
def test_out_of_bounds_graph_arrays_are_found_by_the_check(tmp_path, damage, file, words):
    from linkbert.errors import BadInput

    hand_graph().save(tmp_path)
    damage(tmp_path)
    graph = DocGraph.load(tmp_path)
    with pytest.raises(BadInput, match=words) as info:
        graph.check_bounds(tmp_path)
    assert info.value.path == str(tmp_path / file)


def test_the_bounds_check_passes_an_intact_graph_in_chunks(tmp_path, monkeypatch):
    from linkbert import graph as graph_module
    from linkbert.errors import BadInput

    monkeypatch.setattr(graph_module, "_CHUNK", 2)
    hand_graph().save(tmp_path)
    DocGraph.load(tmp_path).check_bounds(tmp_path)
    _poke_npy(tmp_path / "indices.npy", -1, 7)  # in the last chunk
    with pytest.raises(BadInput, match="near edge 4"):
        DocGraph.load(tmp_path).check_bounds(tmp_path)
