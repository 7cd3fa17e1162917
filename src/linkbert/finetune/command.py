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
import typing
from pathlib import Path

import yaml

from linkbert.errors import BadInput
from linkbert.finetune.data import TASKS
from linkbert.finetune.run import ConfigError, FinetuneConfig, config_help, run
from linkbert.finetune.tasks import TaskSetupError

TRUE, FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


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


def _types() -> dict[str, type]:
    return typing.get_type_hints(FinetuneConfig)


def coerce(key: str, value, source: str):
    """``value`` (a YAML scalar or a command-line string) as the type of setting ``key``."""
    types = _types()
    if key not in types:
        raise ConfigError(f"{source}: unknown setting {key!r}; valid settings: {', '.join(types)}")
    kind = types[key]
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in TRUE | FALSE:
                return text in TRUE
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                return value
            number = float(value)  # "100", "1e3"; but not "2.5"
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)  # also YAML's "2e-5", which YAML 1.1 reads as a string
        if isinstance(value, (dict, list)) or value is None:
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key} should be {kind.__name__}, got {value!r}") from None


def read_recipe(path: str) -> dict:
    """The settings of a recipe YAML file, typed."""
    recipe = Path(path)
    if not recipe.is_file():
        raise BadInput(recipe, "", "missing_path", "recipe file not found", fatal=True)
    try:
        values = yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise BadInput(recipe, "", "malformed_yaml", f"not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise BadInput(recipe, "", "malformed_yaml", "a recipe is a mapping of setting: value")
    return {key: coerce(str(key), value, f"recipe {recipe}") for key, value in values.items()}


def parse_overrides(items: list[str]) -> dict:
    values = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not KEY=VALUE")
        values[key.strip()] = coerce(key.strip(), value, "override")
    return values


def build_config(args: argparse.Namespace) -> FinetuneConfig:
    """Defaults < recipe < flags < ``KEY=VALUE`` overrides."""
    values = read_recipe(args.recipe) if args.recipe else {}
    if args.task and values.get("task") not in (None, "", args.task):
        raise ConfigError(f"the recipe {args.recipe} is for task {values['task']}, but --task {args.task} was given")
    for flag in ("task", "model", "data", "out"):
        if getattr(args, flag):
            values[flag] = getattr(args, flag)
    if args.eval_only:
        values["eval_only"] = True
    values.update(parse_overrides(args.overrides))
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
