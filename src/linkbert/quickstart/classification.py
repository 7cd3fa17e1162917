"""Stage 4: document classification on the corpus's real labels (``corpus/labels.py``), on a fixed
split of the labelled documents by a hash of their id; fine-tuned (``linkbert.finetune``) from
each pretrained encoder and from the same architecture with the same initial weights but no
pretraining, each test accuracy with its Wilson 95% interval. Labels that make no
classification task skip the stage, saying why."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

from linkbert.quickstart.config import DEFAULT_FORMAT, QuickstartConfig
from linkbert.quickstart.pipeline import EDGE_OPTIONS, parsed_documents, untrained_checkpoint
from linkbert.quickstart.report import wilson_interval

MIN_PER_LABEL = 2  # labelled documents per label below which a classifier has nothing to learn from


def finetune_skip_reason(labels: dict[str, str]) -> str:
    """Why these labels make no classification task ("" when they do): none, a single label,
    fewer than ``MIN_PER_LABEL`` labelled documents a label, or a split without training or test
    documents. Said in the stage line instead of failing (or "learning" from one example)."""
    from collections import Counter

    if not labels:
        return "no document labels in this corpus"
    per_label = Counter(labels.values())
    if len(per_label) == 1:
        return f"every labelled document has the same label ({next(iter(per_label))}): nothing to classify"
    if len(labels) < MIN_PER_LABEL * len(per_label):
        return (f"{len(labels)} labelled documents for {len(per_label)} labels, fewer than {MIN_PER_LABEL} "
                "a label")
    split = Counter(split_of(doc_id) for doc_id in labels)
    missing = [name for name in ("train", "test") if not split[name]]
    if missing:
        return (f"the fixed 80/10/10 split of the {len(labels)} labelled documents leaves no "
                f"{' or '.join(missing)} documents")
    return ""


def split_of(doc_id: str) -> str:
    """A fixed 80/10/10 train/dev/test split by a hash of the document id: independent of file
    order and of the titles (a JSONL title may be empty or repeated; the default corpus's ids
    are its titles)."""
    bucket = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:4], "big") % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def labelled_documents(fmt: str, corpus: Path, labels: dict[str, str], reader_options: dict[str, str],
                       skip_bad: bool = False):
    """The corpus's documents that have a label and some text, in file order; of documents
    sharing an id, the first (the one prepare kept, whose label ``labels`` holds).
    ``reader_options``: the corpus's field options (``--id-field``, ...: prepare's ``READER_OPTIONS``);
    ``skip_bad``: a malformed record is left out, as prepare left it out (and counted it), not an error."""
    from linkbert.corpus import open_reader

    # the documents' ids and texts only: reading an edge table (--edges) again would give links unused here
    fields = {name: value for name, value in reader_options.items() if name not in EDGE_OPTIONS}
    reader = open_reader(fmt, str(corpus), **fields)
    seen: set[str] = set()
    for doc in parsed_documents(reader, skip_bad):
        if doc.id in seen:
            continue
        seen.add(doc.id)
        if doc.id in labels and doc.text.strip():
            yield doc


def write_classification_data(fmt: str, corpus: Path, labels: dict[str, str], folder: Path,
                              reader_options: dict[str, str] | None = None, skip_bad: bool = False) -> dict[str, int]:
    """train/dev/test JSON lines (``id``, ``sentence``, ``label``) in the fine-tuning format; a
    split without documents gets no file (fine-tuning then leaves it out). ``reader_options``: as
    :func:`labelled_documents` takes them."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {"train": 0, "dev": 0, "test": 0}
    with contextlib.ExitStack() as stack:
        files = {name: stack.enter_context(open(folder / f"{name}.json", "w", encoding="utf-8")) for name in counts}
        for doc in labelled_documents(fmt, corpus, labels, reader_options or {}, skip_bad):
            name = split_of(doc.id)
            files[name].write(json.dumps({"id": doc.id, "sentence": doc.text, "label": labels[doc.id]},
                                         ensure_ascii=False) + "\n")
            counts[name] += 1
    for name, count in counts.items():
        if not count:
            (folder / f"{name}.json").unlink()
    return counts


def finetune_all(config: QuickstartConfig, out: Path, summaries: dict[str, dict], fmt: str, corpus: Path,
                 labels: dict[str, str], reader_options: dict[str, str]) -> dict:
    """The same classifier fine-tuned from each pretrained encoder and from their untrained twin
    (LinkBERT's and BERT's runs start from the same encoder weights), on the same split; the
    corpus is read with ``reader_options`` (prepare's ``--id-field``, ...)."""
    from linkbert.export import export

    models = out / "models"
    shutil.rmtree(models, ignore_errors=True)
    shutil.rmtree(out / "finetune", ignore_errors=True)
    export(summaries["linkbert"]["checkpoint"], models / "pretrained")
    if "bert" in summaries:
        export(summaries["bert"]["checkpoint"], models / "bert")
    untrained = untrained_checkpoint(summaries["linkbert"]["checkpoint"], out / "work" / "untrained",
                                     preset=config.preset, seed=config.seed)
    export(untrained, models / "untrained")
    data = out / "finetune" / "data"
    counts = write_classification_data(fmt, corpus, labels, data, reader_options, config.skip_bad)
    names = sorted(set(labels.values()))
    print(f"classification: {counts['train']} train / {counts['dev']} dev / {counts['test']} test documents, "
          f"{len(names)} labels; training on {min(counts['train'], config.finetune_examples)}", flush=True)
    results = {}
    for name in ("pretrained", "bert", "untrained"):
        if (models / name).is_dir():
            print(f"fine-tuning the {MODEL_NAMES[name]} model", flush=True)
            results[name] = finetune_one(config, fmt, models / name, data, out / "finetune" / name, counts["test"])
    results["majority_test_accuracy"] = majority_accuracy(data)
    results["documents"] = counts
    results["labels"] = names
    results["differences"] = accuracy_differences(results, counts["test"])
    return results


MODEL_NAMES = {"pretrained": "pretrained LinkBERT", "bert": "pretrained BERT", "untrained": "untrained"}


def finetune_one(config: QuickstartConfig, fmt: str, model: Path, data: Path, run_dir: Path, test_documents: int) -> dict:
    """One fine-tuning run's accuracies, the test one with its Wilson 95% interval."""
    from linkbert.finetune.run import FinetuneConfig
    from linkbert.finetune.run import run as finetune

    result = finetune(FinetuneConfig(
        task="seqcls", model=str(model), data=str(data), out=str(run_dir),
        dataset="vital-article-topics" if fmt == DEFAULT_FORMAT else "document-labels", metric="accuracy",
        lr=config.finetune_lr, batch_size=32, epochs=config.finetune_epochs, warmup_ratio=0.1,
        weight_decay=0.01, max_length=config.max_length, seed=config.seed, precision="auto",
        max_train_examples=config.finetune_examples, save_model=False, log_every=10 ** 6))
    test = result["test"]["accuracy"]
    return {"dev_accuracy": result.get("dev", {}).get("accuracy"), "test_accuracy": test,
            "test_interval95": list(wilson_interval(round(test * test_documents), test_documents)),
            "seconds": result["seconds"], "train_examples": result["train_examples"]}


def accuracy_differences(results: dict, test_documents: int) -> dict:
    """Pretrained LinkBERT's test accuracy minus each other model's, and whether their 95%
    intervals overlap: if they do, this one run cannot tell the two apart."""
    differences = {}
    for other in ("bert", "untrained"):
        if other in results:
            a, b = results["pretrained"], results[other]
            overlap = a["test_interval95"][0] <= b["test_interval95"][1] and b["test_interval95"][0] <= a["test_interval95"][1]
            differences[f"pretrained - {other}"] = {"points": round(100 * (a["test_accuracy"] - b["test_accuracy"]), 1),
                                                    "intervals_overlap": overlap, "test_documents": test_documents}
    return differences


def majority_accuracy(data: Path) -> float:
    """Test accuracy of always answering the most frequent training label."""
    from collections import Counter

    def labels(name):
        with open(data / f"{name}.json", encoding="utf-8") as f:
            return [json.loads(line)["label"] for line in f if line.strip()]

    top = Counter(labels("train")).most_common(1)[0][0]
    test = labels("test")
    return sum(label == top for label in test) / max(len(test), 1)
