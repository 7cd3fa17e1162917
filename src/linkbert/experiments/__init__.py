"""``linkbert experiment NAME``: experiments built from the pipeline's parts.

* ``ablation``: the paper's link ablations in miniature on Wikispeedia (``experiments/ablation/``).
"""

from __future__ import annotations

EXPERIMENTS = {"ablation": "linkbert.experiments.ablation"}


def configure(parser) -> None:
    import importlib

    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))


def main(args) -> int:
    import importlib

    return int(importlib.import_module(EXPERIMENTS[args.experiment]).main(args) or 0)
