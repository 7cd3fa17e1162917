import numpy as np
import pytest

from linkbert.graph import DocGraph, clean_row


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
