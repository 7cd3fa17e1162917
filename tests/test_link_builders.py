"""Link builders: title mentions (Aho-Corasick) and TF-IDF top-k, on hand-built inputs."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from linkbert.link_builders import (
    TitleMentionLinker,
    compare_links,
    normalise,
    random_links,
    tfidf_links,
    title_key,
    title_mention_links,
)


def rows(indptr: np.ndarray, indices: np.ndarray) -> list[list[int]]:
    return [indices[indptr[i]:indptr[i + 1]].tolist() for i in range(len(indptr) - 1)]


# --- title mention -------------------------------------------------------------------------

TITLES = ["New York", "New York City", "Paris", "Mercury (planet)", "1984", "Ohm", "Paris (Texas)", "Mars"]


@pytest.fixture(scope="module")
def linker() -> TitleMentionLinker:
    return TitleMentionLinker(TITLES)


def test_title_key_drops_the_disambiguation():
    assert title_key("Mercury (planet)") == normalise("Mercury") == " mercury "
    assert title_key("New-York City") in normalise("I live in new york city, NY")


def test_normalise_pads_and_doubles_word_boundaries():
    assert normalise("New-York,  CITY!") == " new  york  city "
    assert normalise("") == "  "


def test_longest_match_wins(linker):
    assert linker.links("I live in New York City.", source=7) == [1]
    assert linker.links("I live in New York.", source=7) == [0]


def test_whole_words_only(linker):
    assert linker.links("Parisian cafes and comparisons", source=7) == []
    assert linker.links("Paris's cafes", source=7) == [2]


def test_case_insensitive_and_punctuation_as_separator(linker):
    assert linker.links("PARIS, then new-york city", source=7) == [2, 1]


def test_disambiguation_is_stripped(linker):
    assert linker.links("Mercury is close to the sun", source=7) == [3]


def test_no_self_link(linker):
    assert linker.links("Paris is in Paris, near Mercury", source=2) == [3]


def test_duplicates_collapse_in_order_of_first_mention(linker):
    assert linker.links("Mars, Paris, Mars, New York, Paris", source=5) == [7, 2, 0]


def test_numeric_and_short_titles_are_skipped(linker):
    assert linker.links("In 1984 Ohm measured Mars", source=0) == [7]
    assert linker.skipped_numeric == 1 and linker.skipped_short == 1
    with_numbers = TitleMentionLinker(TITLES, skip_numeric=False, min_chars=3)
    assert with_numbers.links("In 1984 Ohm measured Mars", source=0) == [4, 5, 7]


def test_collisions_go_to_the_first_document_and_are_counted(linker):
    # "Paris (Texas)" normalises to "paris", already the key of document 2.
    assert linker.collisions == 1
    assert linker.links("Paris", source=6) == [2]
    assert linker.n_keys == len(TITLES) - 3  # 1984, Ohm, Paris (Texas)


def test_an_unqualified_title_wins_its_key_over_an_earlier_qualified_one():
    titles = ["Turkey (bird)", "Turkey", "Turkey (country)", "TURKEY", "Jupiter (mythology)", "Jupiter (planet)"]
    linker = TitleMentionLinker(titles)
    # "Turkey" takes the key from the earlier "Turkey (bird)"; among equals the first keeps it.
    assert linker.links("A turkey in Turkey", source=4) == [1]
    assert linker.links("Jupiter", source=1) == [4]
    assert linker.collisions == 4  # Turkey (bird), Turkey (country), TURKEY, Jupiter (planet)
    assert linker.n_keys == 2
    assert linker.links("Turkey", source=1) == []  # no self-link, and no fallback to the losers


def test_title_mention_links_csr():
    texts = ["New York City is not Paris", "nothing here", "Mars and Paris", "Paris"]
    indptr, indices = title_mention_links(["Paris", "Mars", "New York City", "Rome"], texts)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    assert rows(indptr, indices) == [[2], [], [1, 0], [0]]


def test_title_mention_links_counts_must_agree():
    with pytest.raises(ValueError):
        title_mention_links(["Paris", "Rome"], ["Paris"])
    with pytest.raises(ValueError):
        title_mention_links(["Paris"], ["Rome", "Paris"])


def test_no_usable_title_links_nothing():
    indptr, indices = title_mention_links(["1984", "Ohm"], ["1984 Ohm", "Ohm 1984"])
    assert indptr.tolist() == [0, 0, 0] and indices.size == 0


# --- TF-IDF --------------------------------------------------------------------------------

SPACE = ["planet", "orbit", "galaxy", "telescope", "comet", "asteroid"]
BAKING = ["bread", "flour", "oven", "yeast", "dough", "butter"]


def two_topics() -> list[str]:
    """Eight documents, four per topic, sharing no word across topics."""
    rng = np.random.default_rng(1)
    docs = []
    for topic in (SPACE, BAKING) * 4:
        docs.append(" ".join(rng.choice(topic, size=6)))
    return docs


def test_neighbours_come_from_the_same_topic():
    docs = two_topics()
    indptr, indices = tfidf_links(docs, k=3)
    for source, targets in enumerate(rows(indptr, indices)):
        assert len(targets) == 3
        assert source not in targets
        assert all(target % 2 == source % 2 for target in targets)


def test_rows_hold_at_most_the_documents_with_nonzero_similarity():
    # Each document has three topic mates and no word in common with the other four.
    indptr, indices = tfidf_links(two_topics(), k=5)
    assert np.diff(indptr).tolist() == [3] * 8
    assert len({tuple(row) for row in rows(indptr, indices)}) > 1
    for targets in rows(indptr, indices):
        assert len(set(targets)) == len(targets)


def test_k_is_respected():
    docs = random_docs(30, seed=3)
    for k in (1, 2, 4):
        indptr, _ = tfidf_links(docs, k=k)
        assert np.diff(indptr).max() == k


def test_empty_and_single_document_corpora():
    assert [a.tolist() for a in tfidf_links([], k=5)] == [[0], []]
    assert [a.tolist() for a in tfidf_links(["lonely planet"], k=5)] == [[0, 0], []]


def test_bad_k_is_rejected():
    with pytest.raises(ValueError):
        tfidf_links(two_topics(), k=0)


def random_docs(n: int, seed: int) -> list[str]:
    """``n`` documents of 5 to 40 words from a 150-word made-up vocabulary, Zipf-like frequencies."""
    rng = np.random.default_rng(seed)
    vocab = []
    while len(vocab) < 150:
        word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=rng.integers(5, 9)))
        if word not in ENGLISH_STOP_WORDS and word not in vocab:
            vocab.append(word)
    p = 1 / np.arange(1, 151)
    return [" ".join(rng.choice(vocab, size=rng.integers(5, 41), p=p / p.sum())) for _ in range(n)]


def brute_force_links(docs: list[str], k: int, min_df: int = 2, max_df: float = 0.5) -> list[list[int]]:
    """The same TF-IDF definition, computed densely from word counts, and ranked by a full sort."""
    counts = [Counter(doc.split()) for doc in docs]
    n = len(docs)
    df = Counter(word for c in counts for word in c)
    vocab = sorted(w for w, d in df.items() if min_df <= d <= max_df * n)
    column = {w: j for j, w in enumerate(vocab)}
    weights = np.zeros((n, len(vocab)))
    for i, c in enumerate(counts):
        for word, tf in c.items():
            if word in column:
                idf = math.log((1 + n) / (1 + df[word])) + 1
                weights[i, column[word]] = (1 + math.log(tf)) * idf
    norms = np.linalg.norm(weights, axis=1, keepdims=True)
    weights = np.divide(weights, norms, out=np.zeros_like(weights), where=norms > 0)
    similarity = weights @ weights.T
    result = []
    for i in range(n):
        ranked = sorted((-similarity[i, j], j) for j in range(n) if j != i and similarity[i, j] > 1e-12)
        result.append([j for _, j in ranked[:k]])
    return result


def test_matches_a_brute_force_dense_computation():
    docs = random_docs(50, seed=0)
    indptr, indices = tfidf_links(docs, k=5, chunk_size=8, dtype=np.float64)
    assert rows(indptr, indices) == brute_force_links(docs, k=5)


def test_identical_whatever_the_chunk_size():
    docs = random_docs(50, seed=1)
    reference = tfidf_links(docs, k=4, chunk_size=50)
    for chunk_size in (1, 3, 7, 49, 1000):
        indptr, indices = tfidf_links(docs, k=4, chunk_size=chunk_size)
        assert np.array_equal(indptr, reference[0]) and np.array_equal(indices, reference[1])


def test_ties_are_broken_by_lower_index():
    # Documents 1, 2 and 3 are identical, so equally similar to document 0.
    docs = ["alpha beta gamma", "alpha beta delta", "alpha beta delta", "alpha beta delta", "zeta eta theta",
            "zeta eta iota", "gamma delta"]
    indptr, indices = tfidf_links(docs, k=2, max_df=1.0)
    assert rows(indptr, indices)[0] == [1, 2]
    assert rows(indptr, indices)[3] == [1, 2]


# --- comparing link graphs -----------------------------------------------------------------

def csr(rows_: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.cumsum([0] + [len(r) for r in rows_]).astype(np.int64)
    return indptr, np.array([t for r in rows_ for t in r], dtype=np.int32)


# Worked by hand. Predicted pairs: (0,1) (0,2) (1,0) (3,0) (3,1) (3,2): 6. Gold pairs: (0,1)
# (0,3) (1,2) (1,0) (2,0): 5. Both: (0,1) (1,0): tp = 2.
PREDICTED = [[1, 2], [0], [], [2, 0, 1]]
GOLD = [[3, 1], [0, 2], [0], []]


def test_compare_links_by_hand():
    m = compare_links(csr(PREDICTED), csr(GOLD))
    assert (m["tp"], m["predicted"], m["gold"]) == (2, 6, 5)
    assert m["precision"] == pytest.approx(2 / 6)
    assert m["recall"] == pytest.approx(2 / 5)
    assert m["f1"] == pytest.approx(4 / 11)  # 2 * (1/3) * (2/5) / (1/3 + 2/5)
    # per document: precision 1/2, 1/1, -, 0/3 (3 documents); recall 1/2, 1/2, 0/1, - (3 documents)
    assert m["macro_precision"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert m["macro_recall"] == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert (m["documents"], m["documents_with_predicted"], m["documents_with_gold"]) == (4, 3, 3)


def test_swapping_the_graphs_swaps_precision_and_recall():
    m = compare_links(csr(GOLD), csr(PREDICTED))
    assert m["precision"] == pytest.approx(2 / 5) and m["recall"] == pytest.approx(2 / 6)
    assert m["macro_precision"] == pytest.approx(1 / 3) and m["macro_recall"] == pytest.approx(1 / 2)


def test_self_links_and_duplicates_do_not_count():
    # predicted: 0 -> 0 (self), 1, 1 (duplicate); 1 -> 1 (self). gold: 0 -> 1; 1 -> 0, 1 (self), 0 (duplicate)
    m = compare_links(csr([[0, 1, 1], [1]]), csr([[1], [0, 1, 0]]))
    assert (m["tp"], m["predicted"], m["gold"]) == (1, 1, 2)
    assert (m["precision"], m["recall"]) == (1.0, 0.5)
    assert (m["predicted_self"], m["predicted_duplicates"], m["gold_self"], m["gold_duplicates"]) == (2, 1, 1, 1)
    assert m["documents_with_predicted"] == 1  # document 1 only had a self-link
    assert (m["macro_precision"], m["macro_recall"]) == (1.0, 0.5)  # recall: (1/1 + 0/1) / 2


def test_row_order_does_not_matter():
    shuffled = [row[::-1] for row in PREDICTED]
    assert compare_links(csr(shuffled), csr(GOLD)) == compare_links(csr(PREDICTED), csr(GOLD))


def test_empty_graphs_give_zeros():
    m = compare_links(csr([[], []]), csr([[1], []]))
    assert (m["tp"], m["predicted"], m["gold"]) == (0, 0, 1)
    assert (m["precision"], m["recall"], m["f1"], m["macro_precision"], m["macro_recall"]) == (0, 0, 0, 0, 0)
    assert compare_links(csr([]), csr([]))["documents"] == 0


def test_compare_links_rejects_mismatched_graphs():
    with pytest.raises(ValueError):
        compare_links(csr([[1], []]), csr([[1], [], []]))
    with pytest.raises(ValueError):
        compare_links(csr([[2], []]), csr([[1], []]))  # target 2 outside 0..1
    with pytest.raises(ValueError):
        compare_links((np.array([0, 2]), np.array([1])), csr([[]]))  # indptr[-1] != len(indices)


# --- the title-mention builder against Wikispeedia's real hyperlinks -----------------------

def _quality_benchmark():
    """benchmarks/title_mention_quality.py as a module (benchmarks/ is not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "title_mention_quality.py"
    spec = importlib.util.spec_from_file_location("title_mention_quality", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _links_tsv_pairs(folder) -> tuple[set[tuple[str, str]], int]:
    """Distinct (source, target) names of links.tsv with both ends an article, self-links apart; and their number."""
    import tarfile
    from pathlib import PurePosixPath
    from urllib.parse import unquote

    with tarfile.open(folder / "plaintext_articles.tar.gz", "r:gz") as tar:
        articles = {unquote(PurePosixPath(m.name).stem) for m in tar if m.isfile() and m.name.endswith(".txt")}
    distinct, n_self = set(), 0
    for line in (folder / "links.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        source, target = (unquote(name) for name in line.split("\t"))
        if source in articles and target in articles:
            if source == target:
                n_self += 1
            else:
                distinct.add((source, target))
    return distinct, n_self


@pytest.mark.data
def test_title_mentions_against_wikispeedia_hyperlinks(shared_data):
    from conftest import require

    folder = shared_data / "wikispeedia"
    require(folder / "links.tsv")
    corpus = _quality_benchmark().load(str(folder))
    n = len(corpus.titles)
    predicted = title_mention_links(corpus.titles, corpus.texts)  # what prepare --link-builder title-mention does
    m = compare_links(predicted, corpus.gold)

    distinct, n_self = _links_tsv_pairs(folder)
    assert m["gold"] == len(distinct) and m["gold_self"] == n_self > 0
    assert 0 < m["tp"] <= min(m["predicted"], m["gold"])
    assert 0 < m["precision"] < 1 and 0 < m["recall"] < 1
    assert 0 < m["macro_precision"] < 1 and 0 < m["macro_recall"] < 1

    # Random links with the same out-degrees (distinct, never self) hit a gold link about
    # gold_out(i) / (n - 1) of the time: precision below 1%, where title mentions reach ~35%.
    rng = np.random.default_rng(0)
    out_degrees = np.diff(predicted[0])
    random_rows = []
    for source, k in enumerate(out_degrees):
        others = rng.choice(n - 1, size=min(k, n - 1), replace=False)
        random_rows.append((others + (others >= source)).tolist())  # skip the source itself
    baseline = compare_links(csr(random_rows), corpus.gold)
    assert baseline["predicted"] == m["predicted"]
    assert m["precision"] > 10 * baseline["precision"]
    assert m["recall"] > 10 * baseline["recall"]


# --- random links ---------------------------------------------------------------------------


def test_random_links_keep_out_degrees_and_avoid_excluded_pairs():
    n = 40
    out_degree = np.random.default_rng(3).integers(0, 7, size=n)
    exclude = np.array([[0, 1], [2, 0], [5, 9], [9, 7], [11, 30]])
    indptr, indices = random_links(out_degree, seed=0, exclude=exclude)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    assert np.diff(indptr).tolist() == out_degree.tolist()
    banned = {(int(a), int(b)) for a, b in exclude} | {(int(b), int(a)) for a, b in exclude}
    for i, row in enumerate(rows(indptr, indices)):
        assert row == sorted(set(row)) and i not in row  # sorted, no duplicate, no self-link
        assert not {(i, j) for j in row} & banned
    again = random_links(out_degree, seed=0, exclude=exclude)
    assert all(np.array_equal(x, y) for x, y in zip(again, (indptr, indices)))  # deterministic
    assert not np.array_equal(random_links(out_degree, seed=1, exclude=exclude)[1], indices)


def test_random_links_when_the_exclusions_leave_no_choice():
    # 4 documents; 0 may not link 1 or 2, so its one link is 3; 1 may not link 0, so its two are 2 and 3
    indptr, indices = random_links([1, 2, 0, 0], exclude=np.array([[0, 1], [2, 0]]))
    assert rows(indptr, indices) == [[3], [2, 3], [], []]
    with pytest.raises(ValueError, match="document 1 needs 3 random targets but only 2 are allowed"):
        random_links([0, 3, 0, 0], exclude=np.array([[1, 0]]))
