"""Benchmark of ``linkbert prepare`` on one very long document: time and memory must grow linearly.

    python benchmarks/long_documents.py [--sizes 1,10,50] [--tokenizer DIR] [--timeout 900]

For each size (MB of UTF-8 text) a corpus of two documents is written as JSONL: one synthetic
document of that size (English-looking sentences and paragraphs, a few multi-byte characters,
generated from a fixed seed) and one short document, linked both ways. Each size is prepared in
its own child process (``--child``), which reports seconds, tokens per second and its peak RSS.
Without ``--tokenizer`` a WordPiece vocabulary is trained in-process on other text of the same
generator (no download).

Linear work means the seconds per MB stay about the same as the document grows: the
``seconds_per_mb_ratio`` of two sizes (larger over smaller) is about 1; quadratic work makes it
grow with the sizes' ratio (``50/10``: about 5). ``--timeout`` ends a size that runs too long
(reported as ``timed_out``). The last line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = {
    "det": "the a this that every each another some no one".split(),
    "adj": ("old new large small early late modern ancient northern southern local national public private "
            "common rare simple complex natural human social political economic cultural famous important "
            "strong weak long short bright dark quiet busy rich poor wide narrow").split(),
    "noun": ("city river mountain village king queen army church school market bridge island country "
             "language history science theory system model method study report book letter song film "
             "company museum garden forest desert ocean harbour railway station festival treaty empire "
             "province museum library teacher student doctor farmer writer painter engineer soldier").split(),
    "verb": ("built crossed described founded studied changed followed reached opened closed visited "
             "defended replaced measured explained recorded published expanded protected joined named "
             "supported designed discovered restored governed").split(),
    "prep": "in near across after before during along beyond under over within without around".split(),
    "name": ("Paris London Zürich Kraków Lisbon Dublin Oslo Vienna Prague Athens Cairo Lima Quito "
             "Smith Müller García O'Brien Nakamura Dvořák Søren Élodie Chloé").split(),
    "adv": "later soon quickly slowly often rarely finally again".split(),
}
TEMPLATES = [
    "{Det} {adj} {noun} {verb} {det} {noun} {prep} {name}.",
    "In {year}, {name} {verb} {det} {adj} {noun} {prep} {det} {noun}.",
    "{Det} {noun} of {name} was {adv} {verb} by {det} {adj} {noun}, and {det} {noun} {verb} {det} {noun}.",
    "Dr. {name} {verb} {det} {noun} {prep} {det} {adj} {noun} — {det} {noun} {prep} {name}.",
    "Why was {det} {noun} {verb} {prep} {name}?",
    "\"{Det} {adj} {noun},\" {name} wrote, \"{verb} {det} {noun} café {prep} {det} {noun}!\"",
    "{Det} {noun} ({year}–{year2}) {verb} about {number} {noun}s {prep} {det} {adj} {noun}.",
]


def english(size_bytes: int, seed: int) -> str:
    """About ``size_bytes`` of UTF-8 English-looking text: sentences, paragraphs of 3 to 8."""
    rng = random.Random(seed)
    parts, size, in_paragraph, paragraph = [], 0, 0, rng.randint(3, 8)

    def pick(kind: str) -> str:
        return rng.choice(WORDS[kind])

    while size < size_bytes:
        det = pick("det")
        sentence = rng.choice(TEMPLATES).format(
            Det=det.capitalize(), det=pick("det"), adj=pick("adj"), noun=pick("noun"), verb=pick("verb"),
            prep=pick("prep"), name=pick("name"), adv=pick("adv"), year=rng.randint(1200, 2020),
            year2=rng.randint(1200, 2020), number=rng.randint(2, 90000))
        in_paragraph += 1
        separator = " "
        if in_paragraph == paragraph:
            separator, in_paragraph, paragraph = "\n\n", 0, rng.randint(3, 8)
        piece = sentence + separator
        parts.append(piece)
        size += len(piece.encode("utf-8"))
    return "".join(parts).rstrip()


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# -- child -------------------------------------------------------------------------------------

def child_prepare(spec: dict) -> dict:
    from transformers import AutoTokenizer, BertTokenizer  # noqa: F401  imported before the clock starts

    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    started = time.perf_counter()
    stats = prepare(PrepareConfig(format="jsonl", input=spec["input"], tokenizer=spec["tokenizer"], out=spec["out"],
                                  workers=1, progress=False))
    seconds = time.perf_counter() - started
    return {"mb": spec["mb"], "text_bytes": spec["text_bytes"], "documents": stats["documents"],
            "tokens": stats["tokens"], "segments": stats["segments"], "seconds": round(seconds, 2),
            "tokens_per_s": round(stats["tokens"] / seconds), "peak_rss_mb": peak_rss_mb()}


def run_child(spec: dict, timeout: float) -> dict:
    try:
        result = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mb": spec["mb"], "timed_out": True, "seconds": f">{timeout:g}"}
    if result.returncode != 0:
        sys.exit(f"prepare of {spec['mb']} MB failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- parent ------------------------------------------------------------------------------------

def write_corpus(path: Path, mb: float) -> int:
    """The two-document corpus of a size; returns the long text's UTF-8 bytes."""
    text = english(int(mb * 2**20), seed=1)
    docs = [{"id": "long", "title": "Long", "text": text, "links": ["Short"]},
            {"id": "short", "title": "Short", "text": english(2000, seed=2), "links": ["Long"]}]
    with open(path, "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps(doc, ensure_ascii=False) + "\n")
    return len(text.encode("utf-8"))


def trained_tokenizer(folder: Path) -> str:
    from linkbert.tokenization import train_wordpiece

    sample = english(400_000, seed=3).split("\n\n")
    train_wordpiece(sample, vocab_size=4000).save_pretrained(folder)
    return str(folder)


def ratios(runs: list[dict]) -> dict:
    """Seconds per MB of each larger size over each smaller one (linear: about 1)."""
    done = [r for r in runs if not r.get("timed_out")]
    out = {}
    for i, small in enumerate(done):
        for large in done[i + 1:]:
            per_mb = (large["seconds"] / large["mb"]) / (small["seconds"] / small["mb"])
            out[f"{large['mb']:g}/{small['mb']:g}"] = round(per_mb, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,50", help="document sizes in MB, comma-separated (smoke: 0.1,0.2)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: a WordPiece trained here)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one size may take")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_prepare(json.loads(args.child))))
        return
    sizes = sorted(float(s) for s in args.sizes.split(",") if s.strip())
    if not sizes or min(sizes) <= 0:
        sys.exit("--sizes: give positive sizes in MB, e.g. 1,10,50")
    results = {"sizes": {}, "tokenizer": args.tokenizer or "trained here (4000 tokens)"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tokenizer = args.tokenizer or trained_tokenizer(tmp / "tokenizer")
        runs = []
        for mb in sizes:
            corpus = tmp / f"long_{mb:g}.jsonl"
            text_bytes = write_corpus(corpus, mb)
            spec = {"mb": mb, "text_bytes": text_bytes, "input": str(corpus), "tokenizer": tokenizer,
                    "out": str(tmp / f"out_{mb:g}")}
            run = run_child(spec, args.timeout)
            corpus.unlink()
            runs.append(run)
            results["sizes"][f"{mb:g}"] = run
            print(f"{mb:g} MB: {run}", file=sys.stderr)
    results["seconds_per_mb_ratio"] = ratios(runs)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
