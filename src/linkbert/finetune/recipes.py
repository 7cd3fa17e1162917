"""The fine-tuning recipes beside the released scripts' settings, every difference explained.

    python -m linkbert.finetune.recipes              # writes docs/recipes.md from configs/finetune/

``configs/finetune/released/run_examples.yaml`` transcribes the released LinkBERT fine-tuning
scripts (``src/run_examples_{blurb,mrqa,medqa}_*-{base,large}.sh``) flag by flag. Each script's
task has one recipe of ours: ``configs/finetune/<dataset>.yaml`` for the base scripts,
``configs/finetune/large/<dataset>.yaml`` for the large ones. :func:`compare` maps every released
flag (or the HF Trainer's default, for a flag a script leaves out) to our setting of the same
meaning and puts the two values side by side; a value that differs must have an entry in
``EXPLAINED`` (why ours differs), or the comparison reports it as unexplained, and the tests fail.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import yaml

from linkbert import settings
from linkbert.finetune.run import FinetuneConfig

RELEASED = Path("configs/finetune/released/run_examples.yaml")
RECIPES = Path("configs/finetune")
DOC = Path("docs/recipes.md")

# released flag -> our setting; the value passes through the function (a flag can mean another value)
FLAG_TO_SETTING = {
    "learning_rate": ("lr", float),
    "per_device_train_batch_size": ("batch_size", int),
    "per_device_eval_batch_size": ("eval_batch_size", int),
    "gradient_accumulation_steps": ("grad_accum_steps", int),
    "num_train_epochs": ("epochs", float),
    "warmup_ratio": ("warmup_ratio", float),
    "warmup_steps": ("warmup_steps", int),
    "weight_decay": ("weight_decay", float),
    "adam_beta1": ("adam_beta1", float),
    "adam_beta2": ("adam_beta2", float),
    "adam_epsilon": ("adam_eps", float),
    "max_grad_norm": ("max_grad_norm", float),
    "max_seq_length": ("max_length", int),
    "doc_stride": ("doc_stride", int),
    "seed": ("seed", int),
    "metric_name": ("metric", str),
    "return_macro_metrics": ("metric", lambda on: "pico" if on else "seqeval"),
    "fp16": ("precision", lambda on: "fp16" if on else "fp32"),
    "do_train": ("eval_only", lambda on: not on),
}
# what a script that does not pass a flag gets: transformers 4.9.1's TrainingArguments, and the
# released run_*.py scripts' own defaults
TRAINER_DEFAULTS = {"learning_rate": 5e-5, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 8,
                    "gradient_accumulation_steps": 1, "num_train_epochs": 3.0, "warmup_ratio": 0.0, "warmup_steps": 0,
                    "weight_decay": 0.0, "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8,
                    "max_grad_norm": 1.0, "seed": 42, "fp16": False, "do_train": True}
PROGRAM_DEFAULTS = {  # the metric each released program scores with when no flag names one
    "run_seqcls.py": {"metric_name": "accuracy"}, "run_ner.py": {"return_macro_metrics": False},
    "run_qa.py": {"metric_name": "squad"}, "run_multiple_choice.py": {"metric_name": "accuracy"}}
TASK_OF_PROGRAM = {"run_seqcls.py": "seqcls", "run_ner.py": "tokcls", "run_qa.py": "qa", "run_multiple_choice.py": "mc"}
# the released data folder name -> our dataset name, where they are not the same less "_hf"
DATASET_OF_FOLDER = {"professional_medicine": "mmlu"}
EVALUATION_ONLY = {"mmlu"}  # zero-shot with a MedQA model: one recipe whatever the size
# settings that change nothing the model learns or scores
NOT_COMPARED = {"eval_batch_size"}
# what an evaluation-only run's result depends on (its training settings apply to no training)
EVALUATION = {"task", "metric", "max_length", "precision", "eval_only"}

# (setting, recipe or "*" for every recipe) -> why ours differs from the released value
EXPLAINED = {
    ("precision", "*"): (
        "Every released run used `--fp16` (mixed precision on V100/A100 GPUs). Ours is `auto`: bf16 autocast "
        "where the GPU supports it (A100, H100: same speed as fp16, no loss scaling, no overflow), fp16 with a "
        "gradient scaler on GPUs without bf16 (what the released runs did), and on a CPU bf16 where it has fast "
        "bf16 arithmetic, else fp32. `precision=fp16` on a GPU reproduces the released setting exactly."),
}


def released_scripts(path: Path = RELEASED) -> dict[str, dict[str, dict]]:
    """``{script: {task folder: {"program": ..., flag: value}}}``."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def recipe_path(script: str, folder: str, recipes: Path = RECIPES) -> Path:
    """Our recipe for a released script's task: ``<dataset>.yaml``, under ``large/`` for a large
    script (an evaluation-only dataset has one recipe for every model size)."""
    dataset = DATASET_OF_FOLDER.get(folder, folder.removesuffix("_hf"))
    large = script.removesuffix(".sh").endswith("-large") and dataset not in EVALUATION_ONLY
    return Path(recipes) / ("large" if large else "") / f"{dataset}.yaml"


def released_settings(flags: dict) -> dict:
    """Our settings, as the released flags (and the defaults of those it leaves out) set them."""
    program = flags["program"]
    given = {**TRAINER_DEFAULTS, **PROGRAM_DEFAULTS[program], **{k: v for k, v in flags.items() if k != "program"}}
    values = {"task": TASK_OF_PROGRAM[program]}
    for flag, value in given.items():
        if flag not in FLAG_TO_SETTING:
            raise ValueError(f"released flag --{flag} has no setting of ours: add it to FLAG_TO_SETTING")
        name, convert = FLAG_TO_SETTING[flag]
        values[name] = convert(value)
    if "warmup_steps" in flags:  # the HF Trainer: warmup_steps, when given, wins over warmup_ratio
        values["warmup_ratio"] = 0.0
    return values


def recipe_settings(path: Path) -> dict:
    """Every setting of a recipe, its defaults filled in (``FinetuneConfig``'s)."""
    values = settings.read_settings(FinetuneConfig, path)
    return {f.name: values.get(f.name, f.default) for f in dataclasses.fields(FinetuneConfig)}


@dataclasses.dataclass
class Row:
    script: str
    folder: str
    recipe: Path  # relative to the recipes folder
    setting: str
    released: object
    ours: object
    why: str | None  # None: the same value

    @property
    def unexplained(self) -> bool:
        return self.why == ""


def compare(released: Path = RELEASED, recipes: Path = RECIPES) -> list[Row]:
    """One row per (released task, setting) the released flags or defaults decide."""
    rows = []
    for script, tasks in released_scripts(released).items():
        for folder, flags in tasks.items():
            path = recipe_path(script, folder, recipes)
            ours = recipe_settings(path) if path.is_file() else None
            values = released_settings(flags)
            for name, value in values.items():
                if name in NOT_COMPARED or (values["eval_only"] and name not in EVALUATION):
                    continue
                mine = None if ours is None else ours[name]
                if ours is None:
                    why = "no recipe"
                elif _same(value, mine):
                    why = None
                else:
                    why = EXPLAINED.get((name, path.stem), EXPLAINED.get((name, "*"), ""))
                rows.append(Row(script, folder, path.relative_to(recipes), name, value, mine, why))
    return rows


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)))
    return a == b


COLUMNS = ("task", "metric", "lr", "batch_size", "grad_accum_steps", "epochs", "warmup_ratio", "warmup_steps",
           "weight_decay", "adam_beta1", "adam_beta2", "adam_eps", "max_grad_norm", "max_length", "doc_stride", "seed",
           "precision", "eval_only")


def render(rows: list[Row]) -> str:
    """docs/recipes.md: per released script, a row per task with every setting that decides the
    result, "released → ours" where they differ; then why they differ."""
    out = ["# Fine-tuning recipes beside the released scripts", "",
           "Generated by `python -m linkbert.finetune.recipes` from `configs/finetune/` and",
           "`configs/finetune/released/run_examples.yaml` (the released scripts' flags); do not edit by hand.",
           "A setting a released script does not pass has the HF Trainer's default (transformers 4.9.1);",
           "one our recipe does not set has `linkbert finetune`'s default. A cell holds the value both",
           "use, or **released → ours** where they differ (the reasons are below). The evaluation-only",
           "MMLU run compares only what its result depends on.", ""]
    for script in dict.fromkeys(row.script for row in rows):
        mine = [row for row in rows if row.script == script]
        columns = [c for c in COLUMNS if any(row.setting == c for row in mine)]
        out += [f"## {script}", "", "| released task | recipe | " + " | ".join(columns) + " |",
                "|---|---|" + "---|" * len(columns)]
        for folder in dict.fromkeys(row.folder for row in mine):
            cells = {row.setting: row for row in mine if row.folder == folder}
            first = next(iter(cells.values()))
            shown = (RECIPES / first.recipe).as_posix()
            line = [folder, f"`{shown}`" if first.ours is not None else f"(no `{shown}`)"]
            line += [_cell(cells[c]) if c in cells else "" for c in columns]
            out.append("| " + " | ".join(line) + " |")
        out.append("")
    out += ["## Why ours differs", ""]
    for (setting, recipe), why in EXPLAINED.items():
        where = "every recipe" if recipe == "*" else f"`{recipe}`"
        out.append(f"* `{setting}` ({where}): {why}")
    unexplained = [row for row in rows if row.unexplained]
    if unexplained:
        out += ["", "## Unexplained differences", ""]
        out += [f"* {row.script} {row.folder}: `{row.setting}` released {_show(row.released)}, ours "
                f"{_show(row.ours)}" for row in unexplained]
    return "\n".join(out) + "\n"


def _cell(row: Row) -> str:
    if row.why is None:
        return _show(row.ours)
    return f"**{_show(row.released)} → {_show(row.ours)}**"


def _show(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=str(RECIPES), help="the recipes folder (default: %(default)s)")
    parser.add_argument("--released", default=str(RELEASED), help="the released scripts' flags (default: %(default)s)")
    parser.add_argument("--out", default=str(DOC), help="the Markdown file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    rows = compare(Path(args.released), Path(args.recipes))
    Path(args.out).write_text(render(rows), encoding="utf-8")
    missing = sorted({row.recipe.as_posix() for row in rows if row.ours is None})
    unexplained = [row for row in rows if row.unexplained]
    print(f"wrote {args.out}: {len(rows)} settings of {len({(r.script, r.folder) for r in rows})} released tasks; "
          f"{len(missing)} recipes missing, {len(unexplained)} unexplained differences")
    return 1 if missing or unexplained else 0


if __name__ == "__main__":
    raise SystemExit(main())
