"""Build document links for corpora that have none.

LinkBERT pretrains on pairs of linked documents. Where the corpus gives no hyperlinks or
citations, links are built here, in one of two ways:

* **title mention**: document ``i`` links to document ``j`` when ``i``'s text mentions
  ``j``'s title (whole words, case-insensitive, longest match first);
* **TF-IDF**: ``i`` links to the ``k`` other documents most similar to it by TF-IDF cosine.

Documents are identified by their position ``0..n-1`` in the corpus. Both builders return a
CSR adjacency ``(indptr, indices)``: ``indptr`` is ``int64 [n+1]``, ``indices`` is ``int32
[indptr[-1]]`` and row ``i`` is ``indices[indptr[i]:indptr[i+1]]``, in a deterministic order,
with neither self-links nor duplicates. Both are pure functions of their inputs.

``random_links`` draws links with given out-degrees (the "random links" ablation).

``compare_links`` scores a built graph against real links (precision, recall, F1, micro and
per document); ``benchmarks/title_mention_quality.py`` runs it on Wikispeedia.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

import numpy as np

# Anything that is not a letter or a digit separates words ("_" counts as a word character
# for ``\w``, so it is named explicitly).
_SEPARATORS = re.compile(r"[\W_]+")
# A trailing disambiguation: "Mercury (planet)" -> "Mercury".
_DISAMBIGUATION = re.compile(r"\s*\([^()]*\)\s*$")


def normalise(text: str) -> str:
    """Lower-case words joined by two spaces and padded by one: ``"New-York!"`` -> ``" new  york "``.

    Padding puts the word boundaries inside an automaton key, so a title only matches whole
    words. The boundary is doubled between words because ``iter_long`` matches never overlap:
    with single spaces, the space after "paris" in " paris london " would be used up by the
    key " paris " and the key " london " could no longer start on it.
    """
    return " " + _SEPARATORS.sub("  ", text.casefold()).strip() + " "


def title_key(title: str) -> str:
    """The automaton key of a title: trailing parenthetical dropped, then ``normalise``d.

    ``title_key(t) in normalise(text)`` says whether ``text`` mentions ``t`` at all, whether
    or not ``TitleMentionLinker`` would link it (skipped title, overlapping longer match).
    """
    return normalise(_DISAMBIGUATION.sub("", title))


def _csr(indptr: array, indices: array) -> tuple[np.ndarray, np.ndarray]:
    """Growable arrays -> the ``(int64 [n+1], int32 [nnz])`` pair every builder returns."""
    return np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int32)


class TitleMentionLinker:
    """Finds which documents' titles a text mentions, with one Aho-Corasick automaton.

    ``titles[j]`` is the title of document ``j``. Each title is normalised (trailing
    parenthetical dropped, lower-cased, punctuation turned into word separators) and becomes
    one automaton key whose value is ``j``. Matching is leftmost-longest and non-overlapping
    (``iter_long``), so "New York City" is found rather than "New York" inside it.

    Titles are skipped when, normalised, they are shorter than ``min_chars`` characters or
    (``skip_numeric``) made of digits only: "Ohm" or "1984" would link nearly everything.
    When several documents share a normalised title, the key belongs to the first of them
    whose title has no trailing parenthetical, else to the first of them: "Turkey" mentions go
    to "Turkey", not to an earlier "Turkey (bird)". The others, the documents left without
    their key, are counted in ``collisions``. Memory is that of the automaton, i.e. of the
    titles: texts are matched one at a time and not kept.
    """

    def __init__(self, titles: Sequence[str], *, min_chars: int = 4, skip_numeric: bool = True):
        import ahocorasick  # imported here so that ``import linkbert`` stays light

        self.n_documents = len(titles)
        self.collisions = 0  # documents whose normalised title belongs to another document
        self.skipped_short = 0
        self.skipped_numeric = 0
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        qualified_owners: set[int] = set()  # key owners whose title has a parenthetical; only while building
        for doc, title in enumerate(titles):
            self._add(doc, title, min_chars, skip_numeric, qualified_owners)
        self.n_keys = len(self._automaton)
        if self.n_keys:  # pyahocorasick cannot search an empty automaton; links() returns early instead
            self._automaton.make_automaton()

    def _add(self, doc: int, title: str, min_chars: int, skip_numeric: bool, qualified_owners: set[int]) -> None:
        key = title_key(title)
        words = key.split()
        qualified = _DISAMBIGUATION.search(title) is not None
        if not words or len(" ".join(words)) < min_chars:  # an empty key would match every word boundary
            self.skipped_short += 1
        elif skip_numeric and "".join(words).isdigit():
            self.skipped_numeric += 1
        elif key not in self._automaton:
            self._automaton.add_word(key, doc)
            if qualified:
                qualified_owners.add(doc)
        else:
            # one of the two is left without the key: the earlier owner, when it is qualified and
            # this title is not ("Turkey" after "Turkey (bird)"); else this one (document order)
            self.collisions += 1
            owner = self._automaton.get(key)
            if not qualified and owner in qualified_owners:
                qualified_owners.discard(owner)
                self._automaton.add_word(key, doc)  # replaces the value

    def links(self, text: str, source: int) -> list[int]:
        """Distinct documents whose titles ``text`` mentions, in order of first mention, without ``source``."""
        if not self.n_keys:
            return []
        seen: dict[int, None] = {}  # an ordered set
        for _end, target in self._automaton.iter_long(normalise(text)):
            if target != source:
                seen.setdefault(target)
        return list(seen)

    def csr(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Links of every document: ``texts`` in document order, one per title.

        Returns ``(indptr int64 [n+1], indices int32 [nnz])``. Raises ``ValueError`` when the
        number of texts differs from the number of titles.
        """
        indptr, indices = array("q", [0]), array("i")
        for source, text in enumerate(texts):
            if source >= self.n_documents:
                raise ValueError(f"more texts than titles ({self.n_documents})")
            indices.extend(self.links(text, source))
            indptr.append(len(indices))
        if len(indptr) - 1 != self.n_documents:
            raise ValueError(f"{len(indptr) - 1} texts for {self.n_documents} titles")
        return _csr(indptr, indices)


def title_mention_links(titles: Sequence[str], texts: Iterable[str], **options) -> tuple[np.ndarray, np.ndarray]:
    """Title-mention links as CSR ``(indptr int64 [n+1], indices int32 [nnz])``.

    ``texts`` is streamed in document order. ``options`` go to ``TitleMentionLinker``; build
    the linker yourself to read its ``collisions`` and skip counts.
    """
    return TitleMentionLinker(titles, **options).csr(texts)


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def tfidf_matrix(
    texts: Iterable[str],
    *,
    n_features: int = 2**20,
    min_df: int = 2,
    max_df: float = 0.5,
    stop_words: str | None = "english",
    batch_size: int = 4096,
    dtype: type = np.float32,
):
    """L2-normalised TF-IDF rows of ``texts``: a CSR matrix ``[n, n_features]`` with sorted indices.

    Terms are hashed (``HashingVectorizer``) rather than counted into a vocabulary, so that
    ``texts`` is read once, batch by batch, and memory is that of the sparse matrix alone.
    Hashing loses ``TfidfVectorizer``'s ``min_df``/``max_df``, so they are applied here to
    the hashed columns: terms in fewer than ``min_df`` documents cannot link two documents
    and only weigh on norms; terms in more than ``max_df * n`` documents carry little
    information and are what makes the similarity product expensive (its cost grows with the
    sum of squared document frequencies). TF is sublinear (``1 + log tf``) so that a word
    repeated in one document does not dominate it.

    ``min_df`` is a number of documents, ``max_df`` a fraction of them (as in scikit-learn);
    ``n_features`` hash buckets make collisions between distinct terms rare; ``dtype``
    float32 halves the memory of the matrix and of each similarity chunk.
    """
    from scipy import sparse
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    hasher = HashingVectorizer(n_features=n_features, stop_words=stop_words, alternate_sign=False,
                               norm=None, dtype=dtype)
    parts = [hasher.transform(batch) for batch in _batches(texts, batch_size)]
    if not parts:  # TfidfTransformer refuses an empty corpus
        return sparse.csr_matrix((0, n_features), dtype=dtype)
    counts = sparse.vstack(parts, format="csr", dtype=dtype)
    _drop_columns_by_df(counts, min_df=min_df, max_df=max_df)
    weights = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True).fit_transform(counts)
    weights = weights.astype(dtype, copy=False).tocsr()
    weights.sort_indices()  # a fixed summation order makes similarities independent of chunking
    return weights


def _drop_columns_by_df(counts, *, min_df: int, max_df: float) -> None:
    """Zero, in place, the columns of CSR ``counts [n, V]`` whose document frequency is outside [min_df, max_df*n]."""
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])  # one stored entry per (document, term)
    keep = (df >= min_df) & (df <= max_df * n)
    counts.data *= keep[counts.indices]
    counts.eliminate_zeros()


def top_k_neighbours(weights, *, k: int = 5, chunk_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar other rows of L2-normalised CSR ``weights [n, V]``, as CSR.

    Similarities are computed ``chunk_size`` rows at a time (``chunk [c, V] @ weights.T [V, n]``,
    sparse, at most ``c x n`` entries), never as an ``n x n`` matrix. Row ``i`` lists
    ``min(k, #{j != i : sim(i, j) > 0})`` targets by decreasing similarity, ties by lower index.
    Returns ``(indptr int64 [n+1], indices int32 [nnz])``.
    """
    if k < 1 or chunk_size < 1:
        raise ValueError(f"need k >= 1 and chunk_size >= 1, got k={k}, chunk_size={chunk_size}")
    n = weights.shape[0]
    transposed = weights.T.tocsr()
    indptr, indices = array("q", [0]), array("i")
    for start in range(0, n, chunk_size):
        similarities = (weights[start:start + chunk_size] @ transposed).tocsr()
        for row in range(similarities.shape[0]):
            lo, hi = similarities.indptr[row], similarities.indptr[row + 1]
            targets = _top_k_row(similarities.data[lo:hi], similarities.indices[lo:hi], start + row, k)
            indices.extend(targets.tolist())
            indptr.append(len(indices))
    return _csr(indptr, indices)


def _top_k_row(values: np.ndarray, columns: np.ndarray, source: int, k: int) -> np.ndarray:
    """Columns of the ``k`` largest positive ``values [m]``, skipping ``source``; ties by lower column."""
    keep = (columns != source) & (values > 0)
    values, columns = values[keep], columns[keep]
    if len(values) > k:
        # argpartition finds the k-th largest value but breaks ties at it arbitrarily, so keep
        # every candidate at least as large and let the exact sort below choose among them.
        kth = values[np.argpartition(values, len(values) - k)[len(values) - k]]
        candidates = values >= kth
        values, columns = values[candidates], columns[candidates]
    order = np.lexsort((columns, -values))[:k]
    return columns[order]


def tfidf_links(texts: Iterable[str], *, k: int = 5, chunk_size: int = 1024, **options) -> tuple[np.ndarray, np.ndarray]:
    """TF-IDF top-``k`` links as CSR ``(indptr int64 [n+1], indices int32 [nnz])``.

    Row ``i`` holds the ``min(k, #other documents with nonzero similarity)`` documents most
    cosine-similar to ``i``, by decreasing similarity, ties by lower index. ``options`` go to
    ``tfidf_matrix`` (``min_df``, ``max_df``, ``stop_words``, ``n_features``, ...).
    """
    return top_k_neighbours(tfidf_matrix(texts, **options), k=k, chunk_size=chunk_size)


# -- random links -------------------------------------------------------------------------------

def random_links(out_degree: Sequence[int], *, seed: int = 0,
                 exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random links with the given out-degree per document, as CSR ``(indptr int64 [n+1],
    indices int32 [nnz])``: document ``i``'s ``out_degree[i]`` targets are drawn by ``seed``
    uniformly without replacement among the other documents, never the other document of a
    row of ``exclude`` (an ``(m, 2)`` array of pairs, either direction). Rows are sorted.

    The "random links" ablation: a graph with a real graph's degrees but no meaning. Raises
    ``ValueError`` when a document needs more targets than it is allowed.
    """
    n = len(out_degree)
    rng = np.random.default_rng((seed, 977))
    partners = _pair_partners(exclude)
    rows = [_random_targets(rng, i, int(k), n, partners.get(i, set()) | {i})
            for i, k in enumerate(out_degree) if k > 0]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.asarray(out_degree, dtype=np.int64), out=indptr[1:])
    indices = np.array([j for row in rows for j in row], dtype=np.int32)
    return indptr, indices


def _pair_partners(pairs: np.ndarray | None) -> dict[int, set[int]]:
    """Each document of ``pairs`` -> the documents it is paired with, either direction."""
    partners: dict[int, set[int]] = {}
    for a, b in (pairs if pairs is not None else ()):
        partners.setdefault(int(a), set()).add(int(b))
        partners.setdefault(int(b), set()).add(int(a))
    return partners


def _random_targets(rng: np.random.Generator, source: int, k: int, n: int, banned: set[int]) -> list[int]:
    """``k`` distinct documents of ``0..n-1`` outside ``banned``, sorted."""
    if k > n - len(banned):
        raise ValueError(f"document {source} needs {k} random targets but only {n - len(banned)} are allowed")
    targets: set[int] = set()
    while len(targets) < k:  # rejection, in rounds of twice what is missing: degrees are far below n
        for j in rng.integers(0, n, size=2 * (k - len(targets))).tolist():
            if j not in banned and len(targets) < k:
                targets.add(j)
    return sorted(targets)


# -- evaluation --------------------------------------------------------------------------------

def _edge_codes(graph: tuple[np.ndarray, np.ndarray], n: int, name: str) -> tuple[np.ndarray, int, int]:
    """CSR ``graph`` over ``n`` documents -> sorted unique ``source * n + target`` codes without
    self-links, with the numbers of self-links and duplicates dropped."""
    indptr, indices = (np.asarray(a, dtype=np.int64) for a in graph)
    if len(indptr) != n + 1 or indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
        raise ValueError(f"{name}: not a CSR graph over {n} documents")
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"{name}: a target is outside 0..{n - 1}")
    sources = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    not_self = sources != indices
    codes = sources[not_self] * n + indices[not_self]
    unique = np.unique(codes)
    return unique, int((~not_self).sum()), len(codes) - len(unique)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def compare_links(predicted: tuple[np.ndarray, np.ndarray], gold: tuple[np.ndarray, np.ndarray]) -> dict:
    """Precision and recall of ``predicted`` links against ``gold`` links, both CSR over the same documents.

    Each graph is ``(indptr [n+1], indices [nnz])`` as the builders return. Links are
    (source, target) pairs: self-links and duplicates are dropped from both sides first and
    counted (``*_self``, ``*_duplicates``), so a pair counts once however often it is listed.

    Returns ``tp`` (pairs in both), ``predicted`` and ``gold`` (distinct non-self pairs), micro
    ``precision = tp / predicted``, ``recall = tp / gold`` and ``f1``; macro figures average
    per document: ``macro_precision`` over the ``documents_with_predicted`` documents that
    have at least one predicted link, ``macro_recall`` over the ``documents_with_gold`` with at
    least one gold link. A ratio with a zero denominator is 0.0. Raises ``ValueError`` when
    the graphs are not CSR over the same number of documents.
    """
    n = len(predicted[0]) - 1
    if n < 0 or len(gold[0]) - 1 != n:
        raise ValueError(f"graphs over different numbers of documents: {len(predicted[0]) - 1} and {len(gold[0]) - 1}")
    pred_codes, pred_self, pred_dup = _edge_codes(predicted, n, "predicted")
    gold_codes, gold_self, gold_dup = _edge_codes(gold, n, "gold")
    hits = np.intersect1d(pred_codes, gold_codes, assume_unique=True)
    # n >= 1 whenever there is an edge, so the divisions below are by a positive n
    pred_out = np.bincount(pred_codes // max(n, 1), minlength=n)
    gold_out = np.bincount(gold_codes // max(n, 1), minlength=n)
    hit_out = np.bincount(hits // max(n, 1), minlength=n)
    has_pred, has_gold = pred_out > 0, gold_out > 0
    tp, n_pred, n_gold = len(hits), len(pred_codes), len(gold_codes)
    precision, recall = _ratio(tp, n_pred), _ratio(tp, n_gold)
    return {
        "tp": tp,
        "predicted": n_pred,
        "gold": n_gold,
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "macro_precision": float(np.mean(hit_out[has_pred] / pred_out[has_pred])) if has_pred.any() else 0.0,
        "macro_recall": float(np.mean(hit_out[has_gold] / gold_out[has_gold])) if has_gold.any() else 0.0,
        "documents": n,
        "documents_with_predicted": int(has_pred.sum()),
        "documents_with_gold": int(has_gold.sum()),
        "predicted_self": pred_self,
        "predicted_duplicates": pred_dup,
        "gold_self": gold_self,
        "gold_duplicates": gold_dup,
    }
