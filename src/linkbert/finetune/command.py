"""``linkbert finetune``: fine-tune a BERT checkpoint on one downstream dataset, or evaluate one.

    linkbert finetune --task tokcls --model DIR_OR_NAME --data DIR --out DIR \\
        [--recipe configs/finetune/NCBI-disease.yaml] [--eval-only] [--SETTING VALUE ...] [KEY=VALUE ...]

Settings come, later ones winning, from the defaults of ``FinetuneConfig``, the recipe YAML
(the released hyperparameters of a dataset), the flags (one per setting:
``settings.add_arguments``), and ``KEY=VALUE`` overrides (anywhere on the command line). Values
are converted to the setting's type; a bad one is an error (``linkbert.cli.main`` prints it as
one line) that names the setting.
"""

from __future__ import annotations

import argparse
import logging

from linkbert import settings
from linkbert.errors import ConfigError
from linkbert.finetune.run import FinetuneConfig, run


def configure(parser: argparse.ArgumentParser) -> None:
    settings.add_arguments(parser, FinetuneConfig, overrides=True, file_flag="--recipe",
                           file_help="YAML settings of a dataset, e.g. configs/finetune/NCBI-disease.yaml "
                                     "(flags and key=value words win over it)")


def build_config(args: argparse.Namespace) -> FinetuneConfig:
    """Defaults < recipe < flags < ``KEY=VALUE`` overrides, checked; a ``--task`` other than the
    recipe's is refused rather than winning over it (the recipe's settings are for its task)."""
    recipe = args.settings_file
    if args.task and recipe:
        recipe_task = settings.read_settings(FinetuneConfig, recipe).get("task")
        if recipe_task not in (None, "", args.task):
            raise ConfigError(f"the recipe {recipe} is for task {recipe_task}, but --task {args.task} was given")
    return settings.from_arguments(FinetuneConfig, args)


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
