"""The benchmark's evaluations of one model, and the bag-of-words floor.

* few-shot classification, per k of the mode's shots: fine-tuned (``finetune.run``, seqcls) and a
  linear probe (logistic regression on frozen mean-pooled embeddings of the document's first
  max_length tokens); accuracy and macro-F1 on the seed's test documents;
* link prediction of the withheld links: the relation head's log P(linked) and the embedding
  cosine (``link_prediction.score_link_prediction``), MRR and hits@1;
* the floor: TF-IDF + logistic regression on the same first tokens, TF-IDF cosine of the same
  first segments; no neural model.

Every figure is in %, and every step keeps its output in the cell's folder (read back on a rerun).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from linkbert.experiments.frame import timed
from linkbert.experiments.graph.assets import build_fewshot_data, fewshot_path, first_tokens, split_labels
from linkbert.experiments.graph.grid import Context
from linkbert.experiments.steps import export_once, finetune_once, link_prediction_once, load_pretraining_model
from linkbert.files import write_json


def classification_scores(gold, predicted) -> dict:
    """``{"acc", "f1"}`` in %: accuracy and macro-F1 over the classes in the gold labels or the
    predictions (a gold class never predicted, or a class predicted but absent, scores 0)."""
    from sklearn.metrics import accuracy_score, f1_score

    return {"acc": 100 * float(accuracy_score(gold, predicted)),
            "f1": 100 * float(f1_score(gold, predicted, average="macro", zero_division=0))}


def probe_scores(train_x, train_y, test_x, test_y, c: float) -> dict:
    """A linear probe: logistic regression fitted on the k-shot features, scored on the test set."""
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(C=c, max_iter=2000).fit(train_x, train_y)
    return classification_scores(test_y, probe.predict(test_x))


def rank_figures(prefix: str, ranks: dict | None) -> dict:
    """``{prefix_mrr, prefix_hits1}`` in % from ``metrics.rank_metrics``' result (None: n/a)."""
    if ranks is None:
        return {f"{prefix}_mrr": None, f"{prefix}_hits1": None}
    return {f"{prefix}_mrr": 100 * ranks["mrr"], f"{prefix}_hits1": 100 * ranks["hits1"]}


# -- one model ---------------------------------------------------------------------------------------

def evaluate_model(ctx: Context, checkpoint: Path, folder: Path, seed: int, classify: bool,
                   seconds: dict | None = None) -> dict:
    """Every evaluation of the pretraining checkpoint ``checkpoint`` (``classify``: the corpus
    has labels), in the cell's ``folder``; ``seconds``, when given, gets each evaluation's
    wall-clock time (what the planner's probe measures)."""
    model = None

    def loaded():
        nonlocal model
        model = model or load_pretraining_model(checkpoint, ctx.device)
        return model

    metrics = {}
    if classify:
        with timed(seconds, "finetuned"):
            metrics.update(finetuned(ctx, export_once(ctx, checkpoint, folder / "model"), folder, seed))
        with timed(seconds, "probe"):
            metrics.update(probe(ctx, loaded, folder / "probe.json", seed))
    path = folder / "linkpred.json"
    with timed(seconds, "link_prediction"):
        if path.exists():
            result = json.loads(path.read_text())
        else:
            queries = json.loads(ctx.linkpred_file.read_text())["queries"]
            result = link_prediction_once(loaded(), ctx.corpus(), queries, path, max_length=ctx.mode.max_length,
                                          device=ctx.device, batch_size=ctx.mode.eval_batch_size)
    metrics.update(rank_figures("lp_head", result["head"]), **rank_figures("lp_emb", result["embedding"]))
    return metrics


def finetuned(ctx: Context, model_dir: Path, folder: Path, seed: int) -> dict:
    """``ft_k<k>_{acc,f1}``: one fine-tuning run per k, scored from its test predictions.

    Epochs: ``ft_examples`` over the k-shot set's size (at least ``ft_min_epochs``), so every run
    sees about as many examples whatever k, and costs about the same."""
    mode, labels = ctx.mode, split_labels(ctx, seed)
    split = build_fewshot_data(ctx, seed)
    names = ctx.corpus().store.document_names()
    out = {}
    for k, train in split["train"].items():
        run_dir = folder / f"ft-k{k}"
        finetune_once(model_dir, "seqcls", fewshot_path(ctx, seed, k), run_dir, seed=seed, device=ctx.device,
                      epochs=max(mode.ft_min_epochs, mode.ft_examples / len(train)), batch_size=mode.ft_batch_size,
                      lr=mode.ft_lr_scratch if ctx.trained_here else mode.ft_lr_continued, max_length=mode.max_length,
                      warmup_ratio=0.1, eval_batch_size=mode.eval_batch_size)
        predictions = json.loads((run_dir / "predictions_test.json").read_text())
        gold = [labels[d] for d in split["test"]]
        scores = classification_scores(gold, [predictions[names[d]["id"]] for d in split["test"]])
        out.update({f"ft_k{k}_{name}": value for name, value in scores.items()})
    return out


def probe(ctx: Context, model, path: Path, seed: int) -> dict:
    """``probe_k<k>_{acc,f1}``: logistic regression on frozen embeddings (``model()`` loads the model)."""
    from linkbert.link_prediction import embeddings

    if path.exists():
        return json.loads(path.read_text())
    split, labels = build_fewshot_data(ctx, seed), split_labels(ctx, seed)
    corpus = ctx.corpus()
    tokenizer = corpus.tokenizer()
    docs = sorted({*split["test"], *split["train"][max(split["train"])]})
    vectors = embeddings(model(), first_tokens(corpus.store, docs, ctx.mode.max_length - 2),
                         cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id, pad_id=tokenizer.pad_token_id,
                         max_length=ctx.mode.max_length, device=ctx.device, batch_size=ctx.mode.eval_batch_size)
    row = {d: i for i, d in enumerate(docs)}
    result = probe_all(split, labels, lambda ds: vectors[[row[d] for d in ds]], ctx.mode.probe_c)
    write_json(path, result)
    return result


def probe_all(split: dict, labels: dict[int, str], features, c: float, prefix: str = "probe") -> dict:
    """``<prefix>_k<k>_{acc,f1}`` of a probe per k on ``features(documents)``."""
    out = {}
    test_x, test_y = features(split["test"]), [labels[d] for d in split["test"]]
    for k, train in split["train"].items():
        scores = probe_scores(features(train), [labels[d] for d in train], test_x, test_y, c)
        out.update({f"{prefix}_k{k}_{name}": value for name, value in scores.items()})
    return out


# -- the bag-of-words floor ----------------------------------------------------------------------

def bow_metrics(ctx: Context, seed: int, classify: bool) -> dict:
    """The floor of one seed, in the model cells' keys: ``probe_*`` = TF-IDF + logistic
    regression on each document's first max_length tokens, ``lp_emb_*`` = TF-IDF cosine of the
    first segments (the text a model reads), ``lp_head_*`` = n/a."""
    from linkbert.link_builders import tfidf_matrix
    from linkbert.link_prediction import first_segment
    from linkbert.metrics import rank_metrics

    corpus = ctx.corpus()
    store, tokenizer = corpus.store, corpus.tokenizer()
    metrics = {}
    if classify:
        split, labels = build_fewshot_data(ctx, seed), split_labels(ctx, seed)
        texts = [tokenizer.decode(t.tolist()) for t in first_tokens(store, range(store.num_documents),
                                                                   ctx.mode.max_length - 2)]
        weights = tfidf_matrix(texts, min_df=1)  # fitted on every document's text, no label
        metrics.update(probe_all(split, labels, lambda ds: weights[list(ds)], ctx.mode.probe_c))
    queries = json.loads(ctx.linkpred_file.read_text())["queries"]
    weights = tfidf_matrix([tokenizer.decode(first_segment(store, d).tolist()) for d in range(store.num_documents)],
                           min_df=1)

    def cosine(a, b):
        return float(weights[a].multiply(weights[b]).sum())

    scores = np.array([[cosine(q["source"], c) for c in (q["target"], *q["candidates"])] for q in queries])
    metrics.update(rank_figures("lp_head", None), **rank_figures("lp_emb", rank_metrics(scores[:, 0], scores[:, 1:])))
    return metrics
