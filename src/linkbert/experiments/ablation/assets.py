"""What every cell shares, built once and kept in ``--out``: the prepared Wikispeedia, the
pretraining graphs with the withheld links, and the evaluation data (QA, category, link prediction).

Each builder returns its statistics, or, when its output exists already, what it recorded then.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path

import numpy as np

from linkbert.corpus.texts import document_texts
from linkbert.experiments.ablation.grid import HOTPOT_FILE, Context
from linkbert.experiments.frame import say
from linkbert.experiments.steps import linkpred_queries_once
from linkbert.files import write_json, write_jsonl


def prepare_assets(ctx: Context) -> dict:
    """Prepare Wikispeedia, the graphs and the evaluation data the mode's cells use; each step
    only once (an evaluation the mode does not run: ``{"skipped": ...}``)."""
    prepare_corpus(ctx)
    skipped = {"skipped": f"not evaluated in mode {ctx.mode_name}"}
    assets = {"graphs": build_graphs(ctx), "qa": build_qa_data(ctx) if ctx.evaluates("qa") else skipped,
              "category": build_category_data(ctx) if ctx.evaluates("category") else skipped,
              "hotpotqa": build_hotpotqa_data(ctx, ctx.corpus().tokenizer()) if ctx.evaluates("hotpotqa") else skipped}
    queries = linkpred_queries_once(ctx, ctx.mode.lp_queries, ctx.mode.lp_candidates)
    assets["linkpred"] = {"queries": len(queries["queries"]), "candidates": ctx.mode.lp_candidates}
    return assets


def prepare_corpus(ctx: Context) -> None:
    """Wikispeedia prepared with MiniLM's tokenizer (``Context.prepare_tokenizer``), so that
    scratch, first-stage and continued cells share one segment store; written beside and
    renamed, so an existing folder is a complete one."""
    from linkbert.prepare.build import prepare
    from linkbert.prepare.settings import PrepareConfig
    from linkbert.prepared import is_prepared

    if is_prepared(ctx.prepared):
        return
    tokenizer = ctx.prepare_tokenizer()
    tmp = ctx.out / f".{ctx.prepared.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    say("ablation", f"preparing {ctx.wikispeedia} (segments of <= {ctx.mode.segment_budget} tokens, "
                    f"tokenizer {tokenizer})")
    prepare(PrepareConfig(format="wikispeedia", input=str(ctx.wikispeedia), tokenizer=tokenizer, out=str(tmp),
                          segment_budget=ctx.mode.segment_budget, progress=False, workers=ctx.mode.prepare_workers))
    os.replace(tmp, ctx.prepared)


# -- graphs ----------------------------------------------------------------------------------------

def build_graphs(ctx: Context) -> dict:
    """The pretraining graphs of every variant and the withheld links (once; kept on disk)."""
    from linkbert.graph import DocGraph
    from linkbert.link_builders import random_links, tfidf_links

    stats_file = ctx.out / "graphs" / "stats.json"
    if stats_file.exists():
        return json.loads(stats_file.read_text())
    corpus = ctx.corpus()
    full = corpus.graph()
    hyperlinks, withheld = full.withhold_links(ctx.mode.withheld_fraction)
    hyperlinks.save(ctx.graph_dir("hyperlinks"))
    np.save(ctx.withheld_file, withheld)
    started = time.time()
    tfidf = DocGraph(*tfidf_links(document_texts("wikispeedia", ctx.wikispeedia, corpus.store), k=ctx.mode.tfidf_k))
    tfidf.without_pairs(withheld).save(ctx.graph_dir("tfidf"))
    DocGraph(*random_links(hyperlinks.out_degree, exclude=withheld)).save(ctx.graph_dir("random"))
    stats = {"full": full.stats(), "withheld_links": len(withheld), "tfidf_seconds": round(time.time() - started, 1)}
    for name in ("hyperlinks", "tfidf", "random"):
        stats[name] = DocGraph.load(ctx.graph_dir(name)).stats()
    write_json(stats_file, stats)
    return stats


# -- QA ----------------------------------------------------------------------------------------------

def build_qa_data(ctx: Context) -> dict:
    """``eval/qa``: train = questions of the first 2/3 of the articles, test = the last 1/6,
    and dev = the same test questions with distractors (so one fine-tuning run scores both)."""
    from linkbert.finetune.convert_qa import squad_records

    folder = ctx.eval_dir / "qa"
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
    write_json(folder / "stats.json", stats)
    return stats


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


def _subset(records: list, n: int, salt: str) -> list:
    """``n`` records chosen by a fixed hash order (all when ``n`` < 0), in their original order."""
    if n < 0 or n >= len(records):
        return records
    keep = set(sorted(range(len(records)), key=lambda i: stable_hash(f"{salt}/{i}"))[:n])
    return [r for i, r in enumerate(records) if i in keep]


def stable_hash(text: str) -> int:
    """A hash of ``text`` that does not change between processes (``hash()`` does)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


# -- HotpotQA (distractor setting) ---------------------------------------------------------------

HOTPOT_TYPES = ("bridge", "comparison")


def hotpot_part(question_id: str) -> str:
    """Where a HotpotQA *dev* question goes: ``"train"`` (fine-tuning) for half of them by a fixed
    hash of the question id, else ``"test"``. HotpotQA's own train questions always train."""
    return "train" if stable_hash(f"hotpot-split/{question_id}") % 2 == 0 else "test"


def build_hotpotqa_data(ctx: Context, tokenizer=None) -> dict:
    """``eval/hotpotqa``: HotpotQA in the distractor setting (MRQA's context over all 10 paragraphs,
    yes/no answers dropped), split by question id: train = HotpotQA's train questions plus the
    dev questions :func:`hotpot_part` sends to training; test = the other dev questions. The
    mode then takes a fixed subset of each (``hotpot_train``, ``hotpot_test``, by id hash).

    Returns the statistics (``{"skipped": why}`` when the input file is absent: the grid runs
    without the HotpotQA evaluation). ``tokenizer``: when given, the windows of the mode's QA
    ``max_length`` / ``doc_stride`` are counted (the cost of the fine-tuning and the test)."""
    from linkbert.finetune.convert_qa import hotpotqa_records

    folder = ctx.eval_dir / "hotpotqa"
    if (folder / "stats.json").exists():
        return json.loads((folder / "stats.json").read_text())
    if ctx.hotpotqa is None or not Path(ctx.hotpotqa).is_file():
        why = f"{ctx.hotpotqa or HOTPOT_FILE} not found"
        say("ablation", f"HotpotQA: {why}: the HotpotQA evaluation is skipped (the grid runs without it)")
        return {"skipped": why}
    splits, dropped = hotpotqa_records(Path(ctx.hotpotqa))
    pools = {"train": list(splits.get("train", [])), "test": []}
    for record in splits.get("dev", []):
        pools[hotpot_part(record["id"])].append(record)
    train = _subset_by_id(pools["train"], ctx.mode.hotpot_train, "hotpot-train")
    test = _subset_by_id(pools["test"], ctx.mode.hotpot_test, "hotpot-test")
    write_jsonl(folder / "train.json", train)
    write_jsonl(folder / "test.json", test)
    stats = {"source": str(ctx.hotpotqa), "questions": {k: len(v) for k, v in splits.items()},
             "dropped": dict(dropped),
             "pool": {"train": len(pools["train"]), "train_from_hotpot_train": len(splits.get("train", [])),
                      "train_from_hotpot_dev": len(pools["train"]) - len(splits.get("train", [])),
                      "test": len(pools["test"])},
             "train": len(train), "test": len(test),
             "train_types": _type_counts(train), "test_types": _type_counts(test)}
    if tokenizer is not None:
        stats["windows"] = {"train": qa_windows(tokenizer, train, ctx.mode.qa_max_length, ctx.mode.qa_doc_stride),
                            "test": qa_windows(tokenizer, test, ctx.mode.qa_max_length, ctx.mode.qa_doc_stride)}
    write_json(folder / "stats.json", stats)
    return stats


def _subset_by_id(records: list[dict], n: int, salt: str) -> list[dict]:
    """``n`` records chosen by a fixed hash of their id (all when ``n`` < 0), in their original order."""
    if n < 0 or n >= len(records):
        return records
    keep = {r["id"] for r in sorted(records, key=lambda r: stable_hash(f"{salt}/{r['id']}"))[:n]}
    return [r for r in records if r["id"] in keep]


def _type_counts(records: list[dict]) -> dict[str, int]:
    return {kind: sum(r.get("type") == kind for r in records) for kind in HOTPOT_TYPES}


def qa_windows(tokenizer, records: list[dict], max_length: int, doc_stride: int) -> int:
    """How many windows the QA task cuts ``records`` into (its question / context / stride rule)."""
    if not records:
        return 0
    enc = tokenizer([r["question"].lstrip() for r in records], [r["context"] for r in records],
                    truncation="only_second", max_length=max_length, stride=doc_stride,
                    return_overflowing_tokens=True)
    return len(enc["input_ids"])


# -- category ------------------------------------------------------------------------------------

def build_category_data(ctx: Context) -> dict:
    """``eval/category``: a document's first segments -> its top-level Wikispeedia subject.

    Documents are split 60/40 into train/test by a hash of their name; classes with fewer
    than 10 documents are dropped, and the test set keeps only classes seen in training."""
    folder = ctx.eval_dir / "category"
    if (folder / "stats.json").exists():
        return json.loads((folder / "stats.json").read_text())
    examples = category_examples(ctx)
    train = _subset(examples["train"], ctx.mode.cat_train, "cat-train")
    labels = {r["label"] for r in train}
    test = _subset([r for r in examples["test"] if r["label"] in labels], ctx.mode.cat_test, "cat-test")
    write_jsonl(folder / "train.json", train)
    write_jsonl(folder / "test.json", test)
    # sorted first: a tie goes to the first label by name, not by the process's string-hash order
    majority = max(sorted(labels), key=lambda label: sum(r["label"] == label for r in train))
    stats = {"train": len(train), "test": len(test), "classes": sorted(labels),
             "majority_baseline": round(100 * sum(r["label"] == majority for r in test) / max(1, len(test)), 2)}
    write_json(folder / "stats.json", stats)
    return stats


def category_examples(ctx: Context) -> dict[str, list[dict]]:
    """``{"train": [...], "test": [...]}``: ``{"id", "sentence", "label"}`` per document of a
    frequent enough class, in store order."""
    categories = read_categories(ctx.wikispeedia / "categories.tsv")
    corpus = ctx.corpus()
    store, tokenizer = corpus.store, corpus.tokenizer()
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
    return examples


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
