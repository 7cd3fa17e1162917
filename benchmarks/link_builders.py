"""Time and peak memory of the two link builders on a synthetic corpus.

    nice python benchmarks/link_builders.py [--documents 100000] [--words 200]

The corpus is deterministic: a vocabulary drawn with Zipfian frequencies (exponent
``--zipf``), ``--words`` words per document, and one title per document of one to three rarer
words (some with a disambiguation, some numeric, some shared by two documents); each text
also mentions a few titles, as an article mentions the subjects it links to. As in real
text, the head of the vocabulary is English stop words (scikit-learn's list, which the
TF-IDF builder removes) and the rest made-up words; ``--no-stop-head`` makes it all made-up
words, a much harder case for TF-IDF, whose cost grows with squared document frequencies.

Each builder runs in a fresh child process (this script, ``--builder NAME``) so that its peak
RSS is its own. A child first builds the corpus recipe (word ids, not strings: texts are
spelled out lazily while the builder streams them), reports the RSS it holds then as
``baseline`` and restarts the peak from there. The last line printed is one JSON object with
every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def vocabulary(size: int, rng: np.random.Generator, stop_head: bool) -> list[str]:
    """``size`` distinct words, most frequent first: stop words (if ``stop_head``), then made-up words of 4 to 11 letters."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    head = sorted(ENGLISH_STOP_WORDS) if stop_head else []
    words: dict[str, None] = dict.fromkeys(head)
    while len(words) < size:
        for length in rng.integers(4, 12, size=size):
            word = "".join(rng.choice(LETTERS, size=length))
            if word not in ENGLISH_STOP_WORDS:  # a made-up word must not be dropped as a stop word
                words.setdefault(word)
    return list(words)[:size]


class Corpus:
    """Titles and lazily spelled texts of ``n`` synthetic documents."""

    def __init__(self, n: int, words_per_doc: int, vocab_size: int, zipf: float, stop_head: bool, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.vocab = vocabulary(vocab_size, rng, stop_head)
        p = 1.0 / np.arange(1, vocab_size + 1) ** zipf
        # Drawn 10,000 documents at a time: one draw of all ids would make a transient peak
        # (float64 and int64 temporaries) above what the builders use, hiding their own.
        self.word_ids = np.concatenate([
            rng.choice(vocab_size, size=(min(10_000, n - start), words_per_doc), p=p / p.sum()).astype(np.int32)
            for start in range(0, n, 10_000)])
        self.titles = self._titles(n, rng)
        # Five title mentions per document, at random positions of its text.
        self.mentions = rng.integers(0, n, size=(n, 5))
        self.mention_at = np.sort(rng.integers(0, words_per_doc, size=(n, 5)), axis=1)

    def _titles(self, n: int, rng: np.random.Generator) -> list[str]:
        """Titles of one to three words from the rarer part of the vocabulary (ranks past 2000)."""
        lengths = rng.choice([1, 2, 3], size=n, p=[0.2, 0.5, 0.3])
        titles = []
        for doc, length in enumerate(lengths):
            title = " ".join(self.vocab[i].capitalize() for i in rng.integers(2000, len(self.vocab), size=length))
            if doc % 10 == 3:
                title += " (disambiguation)"
            elif doc % 100 == 7:
                title = str(1000 + doc % 1000)  # a year-like title, skipped by the linker
            elif doc % 100 == 9 and doc:
                title = titles[doc - 1]  # a shared title: a collision
            titles.append(title)
        return titles

    def texts(self):
        """Texts in document order, spelled out one at a time (memory: one text)."""
        for doc, ids in enumerate(self.word_ids):
            words = [self.vocab[i] for i in ids]
            for at, target in zip(self.mention_at[doc][::-1], self.mentions[doc][::-1]):
                words.insert(at, self.titles[target])
            yield " ".join(words) + "."


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def reset_peak_rss() -> None:
    """Restart the peak at the current RSS, so that the corpus's transients do not hide the builder's.

    Linux resets the high-water mark that ``ru_maxrss`` reads when 5 is written to clear_refs;
    elsewhere the peak simply stays the process's.
    """
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def run_builder(name: str, args: argparse.Namespace) -> dict:
    """Build the corpus, run one builder, return its figures (this runs in a child)."""
    from linkbert.link_builders import TitleMentionLinker, tfidf_links

    corpus = Corpus(args.documents, args.words, args.vocab, args.zipf, args.stop_head)
    start = time.perf_counter()
    characters = sum(len(text) for text in corpus.texts())
    # Spelling the texts out is the benchmark's own cost, included in each builder's time.
    figures: dict = {"texts_s": round(time.perf_counter() - start, 2), "text_mib": round(characters / 2**20)}
    reset_peak_rss()
    baseline = peak_rss_mib()  # imports and the corpus recipe
    start, cpu_start = time.perf_counter(), time.process_time()  # CPU time: the machine is shared
    if name == "title":
        linker = TitleMentionLinker(corpus.titles)
        figures["automaton_s"] = round(time.perf_counter() - start, 2)
        indptr, indices = linker.csr(corpus.texts())
        figures.update(keys=linker.n_keys, collisions=linker.collisions,
                       skipped_short=linker.skipped_short, skipped_numeric=linker.skipped_numeric)
    else:
        indptr, indices = tfidf_links(corpus.texts(), k=args.k, chunk_size=args.chunk_size, max_df=args.max_df)
    degrees = np.diff(indptr)
    figures.update(seconds=round(time.perf_counter() - start, 2),
                   cpu_seconds=round(time.process_time() - cpu_start, 2), peak_rss_mib=round(peak_rss_mib()),
                   baseline_rss_mib=round(baseline), links=int(indptr[-1]),
                   mean_out_degree=round(float(degrees.mean()), 2), max_out_degree=int(degrees.max()),
                   documents_without_links=int((degrees == 0).sum()))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=200, help="words per document")
    parser.add_argument("--vocab", type=int, default=100_000, help="vocabulary size")
    parser.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of word frequencies")
    parser.add_argument("--stop-head", action=argparse.BooleanOptionalAction, default=True,
                        help="make the most frequent words English stop words, as in real text")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--max-df", type=float, default=0.5)
    parser.add_argument("--builder", choices=["title", "tfidf"], help="run one builder here (used by the parent)")
    args = parser.parse_args()
    if args.builder:
        print(json.dumps(run_builder(args.builder, args)))
        return 0
    results = {"documents": args.documents, "words_per_document": args.words, "vocab": args.vocab,
               "zipf": args.zipf, "stop_head": args.stop_head, "k": args.k, "chunk_size": args.chunk_size, "max_df": args.max_df}
    for name in ("title", "tfidf"):
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--builder", name],
                               check=True, capture_output=True, text=True)
        results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"{name}: {results[name]}", flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
