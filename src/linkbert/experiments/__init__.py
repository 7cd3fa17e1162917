"""``linkbert experiment NAME``: experiments built from the pipeline's parts.

* ``ablation``: the paper's link ablations in miniature on Wikispeedia (``experiments/ablation/``).
* ``graph``: did the links help, on my data? A link benchmark for any linked JSON-lines corpus
  (``experiments/graph/``; docs/graph_experiment.md).
"""

from __future__ import annotations

EXPERIMENTS = {"ablation": "linkbert.experiments.ablation", "graph": "linkbert.experiments.graph"}


def configure(parser) -> None:
    import importlib

    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))


def main(args) -> int:
    import importlib

    return int(importlib.import_module(EXPERIMENTS[args.experiment]).main(args) or 0)
