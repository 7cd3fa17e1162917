"""``linkbert finetune``: fine-tune a BERT checkpoint on one downstream dataset, or evaluate one.

    linkbert finetune --task tokcls --model DIR_OR_NAME --data DIR --out DIR \\
        [--recipe configs/finetune/NCBI-disease.yaml] [--eval-only] [KEY=VALUE ...]

Settings come, later ones winning, from the defaults of ``FinetuneConfig``, the recipe YAML
(the released hyperparameters of a dataset), the flags, and ``KEY=VALUE`` overrides (anywhere
on the command line). Values are converted to the setting's type; a bad one is an error
(``linkbert.cli.main`` prints it as one line) that names the setting.
"""

from __future__ import annotations

import argparse
import logging

from linkbert import settings
from linkbert.errors import ConfigError
from linkbert.finetune.data import TASKS
from linkbert.finetune.run import FinetuneConfig, run


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", metavar="|".join(TASKS), help="task type (may come from the recipe instead)")
    parser.add_argument("--model", help="model folder or hub name (safetensors weights)")
    parser.add_argument("--data", help="folder with train.json / dev.json / test.json")
    parser.add_argument("--out", help="run folder to write")
    parser.add_argument("--recipe", help="YAML settings of a dataset, e.g. configs/finetune/NCBI-disease.yaml")
    parser.add_argument("--eval-only", action="store_true", help="no training: evaluate --model on dev/test")
    settings.add_overrides(parser, FinetuneConfig)


def build_config(args: argparse.Namespace) -> FinetuneConfig:
    """Defaults < recipe < flags < ``KEY=VALUE`` overrides, checked."""
    if args.task and args.recipe:
        recipe_task = settings.read_settings(FinetuneConfig, args.recipe).get("task")
        if recipe_task not in (None, "", args.task):
            raise ConfigError(f"the recipe {args.recipe} is for task {recipe_task}, but --task {args.task} was given")
    flags = {"task": args.task, "model": args.model, "data": args.data, "out": args.out,
             "eval_only": True if args.eval_only else None}  # None: not given
    return settings.load(FinetuneConfig, args.recipe, args.overrides, **flags)


def _setup_logging() -> None:
    """Log lines on stderr unless the application already configured logging."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("linkbert.finetune").setLevel(logging.INFO)


def main(args: argparse.Namespace) -> int:
    _setup_logging()
    result = run(build_config(args))
    scores = "  ".join(f"{split} {result[split]['main']:.2f}" for split in ("dev", "test") if split in result)
    print(f"{result['dataset']} ({result['metric']}): {scores}  [{result['seconds']:.0f} s]")
    return 0
