"""``linkbert experiment NAME``: the subcommand of each experiment.

* ``graph``: did the links help, on my data? A link benchmark for any labelled, linked JSON-lines
  corpus (``experiments/graph/``; docs/graph_experiment.md).
* ``ablation``: the paper's link ablations in miniature on Wikispeedia (``experiments/ablation/``;
  docs/ablation.md).
"""

from __future__ import annotations

import importlib

EXPERIMENTS = {"ablation": "linkbert.experiments.ablation.command", "graph": "linkbert.experiments.graph.command"}


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))


def main(args) -> int:
    return int(importlib.import_module(EXPERIMENTS[args.experiment]).main(args) or 0)
