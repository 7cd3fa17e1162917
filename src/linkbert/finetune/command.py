"""``linkbert finetune``: fine-tune a BERT checkpoint on one downstream dataset, or evaluate one.

    linkbert finetune --task tokcls --model DIR_OR_NAME --data DIR --out DIR \\
        [--recipe configs/finetune/NCBI-disease.yaml] [KEY=VALUE ...] [--eval-only]

Settings come, later ones winning, from the defaults of ``FinetuneConfig``, the recipe YAML
(the released hyperparameters of a dataset), the flags, and ``KEY=VALUE`` overrides. Values
are converted to the setting's type; an unknown key is an error that lists the valid ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from linkbert import config
from linkbert.config import ConfigError
from linkbert.finetune.data import TASKS
from linkbert.finetune.run import FinetuneConfig, config_help, run
from linkbert.finetune.tasks import TaskSetupError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "settings (KEY=VALUE or in a recipe):\n" + "\n".join(
        f"  {key:<20} {help}" for key, help in config_help().items())
    parser.add_argument("--task", choices=TASKS, help="task type (may come from the recipe instead)")
    parser.add_argument("--model", help="model folder or hub name (safetensors weights)")
    parser.add_argument("--data", help="folder with train.json / dev.json / test.json")
    parser.add_argument("--out", help="run folder to write")
    parser.add_argument("--recipe", help="YAML settings of a dataset, e.g. configs/finetune/NCBI-disease.yaml")
    parser.add_argument("--eval-only", action="store_true", help="no training: evaluate --model on dev/test")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="override any setting (see below); give them together, after the flags")


def coerce(key: str, value, source: str):
    """``value`` as the type of the fine-tuning setting ``key``."""
    return config.coerce(FinetuneConfig, key, value, source)


def build_config(args: argparse.Namespace) -> FinetuneConfig:
    """Defaults < recipe < flags < ``KEY=VALUE`` overrides."""
    values = config.read_settings(FinetuneConfig, args.recipe) if args.recipe else {}
    if args.task and values.get("task") not in (None, "", args.task):
        raise ConfigError(f"the recipe {args.recipe} is for task {values['task']}, but --task {args.task} was given")
    for flag in ("task", "model", "data", "out"):
        if getattr(args, flag):
            values[flag] = getattr(args, flag)
    if args.eval_only:
        values["eval_only"] = True
    values.update(config.parse_overrides(FinetuneConfig, args.overrides))
    return dataclasses.replace(FinetuneConfig(), **values)


def _setup_logging() -> None:
    """Log lines on stderr unless the application already configured logging."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("linkbert.finetune").setLevel(logging.INFO)


def main(args: argparse.Namespace) -> int:
    _setup_logging()
    try:
        result = run(build_config(args))
    except (ConfigError, TaskSetupError) as e:
        print(f"linkbert finetune: error: {e}", file=sys.stderr)
        return 2
    scores = "  ".join(f"{split} {result[split]['main']:.2f}" for split in ("dev", "test") if split in result)
    print(f"{result['dataset']} ({result['metric']}): {scores}  [{result['seconds']:.0f} s]")
    return 0
