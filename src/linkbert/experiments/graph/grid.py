"""What the link benchmark is: its variants, its modes (sizes), and where everything lives in ``--out``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from linkbert.experiments.first_stage import FIRST_STAGE
from linkbert.experiments.grid import Variant
from linkbert.experiments.layout import GridLayout

# Every pretraining variant names a graph without the withheld pairs, even ``bert``, whose NSP
# pairs never use one: no pretraining run of the benchmark is ever handed a withheld link.
VARIANTS = {
    "bert": Variant("BERT (contiguous/random pairs, NSP)", "links", objective="bert"),
    "linkbert": Variant("LinkBERT (the corpus's links minus the withheld, diversity sampling)", "links"),
    "random-links": Variant("random links (the same out-degrees, never a withheld pair)", "random"),
    "no-drp": Variant("no DRP (LinkBERT's pairs, MLM loss only)", "links", objective="mlm-only"),
    "tfidf": Variant("TF-IDF top-k links (minus the withheld pairs)", "tfidf"),
    "init": Variant("init (the initial model, no further pretraining: a floor)", None, pretrain=False),
}
DEFAULT_VARIANTS = ("bert", "linkbert", "random-links", "init")  # what the paired comparisons need
CURVE_VARIANTS = ("bert", "linkbert")
COMPARISONS = (("linkbert", "bert"), ("linkbert", "random-links"), ("linkbert", "no-drp"))  # where both ran
BOW = "bow"  # the bag-of-words floor's row: TF-IDF + logistic regression, TF-IDF cosine
INITS = ("scratch", "minilm", FIRST_STAGE)


@dataclass(frozen=True)
class Mode:
    """Sizes of one way to run the benchmark."""

    segment_budget: int          # tokens per segment when preparing (pairs of two fit max_length)
    max_length: int              # pretraining input; also the classification input (the document cut to it)
    batch_size: int
    scratch_preset: str
    lr_scratch: float
    lr_continued: float
    seeds: int                   # default number of seeds
    budget_minutes: float        # default budget of the whole grid
    shots: tuple[int, ...]       # labelled documents per class of the few-shot training sets
    test_docs: int               # few-shot test documents per seed (a fixed sample of the rest)
    ft_examples: int             # examples one few-shot fine-tuning run sees (epochs = this / training set)
    ft_min_epochs: float
    ft_lr_continued: float
    ft_lr_scratch: float
    ft_batch_size: int
    probe_c: float               # inverse L2 strength of the probes' logistic regression
    lp_queries: int              # withheld links ranked
    lp_candidates: int           # non-linked candidates per query
    eval_pairs: int = 256        # held-out pretraining pairs scored at the end of a run
    min_steps: int = 50          # the planner refuses a grid whose cells would pretrain less
    target_steps: int = 0        # fewer seeds (down to min_seeds) rather than cells shorter than this; 0: min_steps
    max_steps: int = 100_000
    withheld_fraction: float = 0.1
    tfidf_k: int = 5
    default_init: str = ""       # --init's default: "" = minilm when installed, else scratch
    min_seeds: int = 0           # the mode's seeds may shrink to this many rather than cells too short (0: never)
    optional_variants: tuple[str, ...] = ()  # added to the default variants when the budget allows
    # pretraining on the device: torch.compile, the fixed-shape MLM gather, DataLoader processes
    compile: bool = False
    max_predictions: int = 0
    num_workers: int = 0
    prepare_workers: int = 1     # processes preparing the corpus (linkbert prepare --workers)
    eval_batch_size: int = 64    # inference batches of the evaluations (fine-tuning's test, probe, link prediction)
    first_stage_share: float = 1 / 3   # of the pretraining time, for the masked-LM first stage (init first-stage)
    probe_steps: int = 20        # the planner's probe run (init first-stage): a cell's run of this many steps
    # an in-grid compute curve: linkbert and bert also pretrained for these fractions of the grid's
    # steps (the grid's own cells the last point), planned only when it costs the grid's cells at
    # most curve_max_cost of their steps; () = none (the separate --curve)
    curve_fractions: tuple[float, ...] = ()
    curve_max_cost: float = 1 / 3


MODES = {
    # 3 pretrained variants + init x 5 seeds in about 60 minutes on 2 CPU cores (docs/graph_experiment.md)
    "cpu": Mode(segment_budget=62, max_length=128, batch_size=32, scratch_preset="tiny", lr_scratch=1e-3,
                lr_continued=1e-4, seeds=5, budget_minutes=60, shots=(5, 20), test_docs=300, ft_examples=280,
                ft_min_epochs=2, ft_lr_continued=1e-4, ft_lr_scratch=5e-4, ft_batch_size=16, probe_c=10.0,
                lp_queries=100, lp_candidates=9),
    # the whole grid in at most 6 minutes of one H100, start-up and evaluation included (the planner
    # sizes it from a probe on the device): a `mini` BERT trained here with masked LM only (the
    # first stage), continued per variant; batch 256 x 128 tokens in bf16 (precision auto), the
    # fixed-shape MLM gather (15% of 128 + 4); eager, not compiled: every cell builds a fresh model
    # for a few hundred steps, and compiling each would cost more than it saves at that length
    "gpu": Mode(segment_budget=62, max_length=128, batch_size=256, scratch_preset="mini", lr_scratch=1e-3,
                lr_continued=1e-4, seeds=5, budget_minutes=6, shots=(5, 20), test_docs=1000, ft_examples=1000,
                ft_min_epochs=3, ft_lr_continued=1e-4, ft_lr_scratch=5e-4, ft_batch_size=16, probe_c=10.0,
                lp_queries=500, lp_candidates=9, eval_pairs=1024, min_steps=20, target_steps=200,
                default_init=FIRST_STAGE,
                min_seeds=3, optional_variants=("no-drp",),
                max_predictions=23, num_workers=4, prepare_workers=8, eval_batch_size=256, probe_steps=30,
                curve_fractions=(0.25, 0.5)),
    # for tests: seconds on a tiny corpus
    "smoke": Mode(segment_budget=14, max_length=32, batch_size=4, scratch_preset="tiny", lr_scratch=1e-3,
                  lr_continued=1e-4, seeds=2, budget_minutes=3, shots=(1, 2), test_docs=6, ft_examples=8,
                  ft_min_epochs=1, ft_lr_continued=1e-4, ft_lr_scratch=1e-3, ft_batch_size=4, probe_c=1.0,
                  lp_queries=4, lp_candidates=3, eval_pairs=8, min_steps=2, max_steps=3, withheld_fraction=0.2,
                  tfidf_k=2, probe_steps=2, curve_fractions=(0.5,), curve_max_cost=1.0),
}


@dataclass
class Context(GridLayout):
    """Where everything is: the corpus, the output folder, the init, the mode and the device (the
    folders the grids share: ``GridLayout``)."""

    out: Path
    corpus_path: Path            # the corpus file or folder, as its reader takes it
    init: str                    # scratch, minilm, first-stage, or the folder given
    init_source: str             # "scratch", "first-stage" or a BERT checkpoint folder
    tokenizer: str               # what prepare tokenizes with
    mode: Mode
    mode_name: str
    device: str
    corpus_format: str = "jsonl"  # a reader of linkbert.corpus (prepare's --format)
    reader_options: dict = field(default_factory=dict)  # its field options (prepare's --id-field, --edges, ...)

    @property
    def first_stage(self) -> bool:
        """The variants continue the grid's own masked-LM first stage (``experiments.first_stage``)."""
        return self.init_source == FIRST_STAGE

    @property
    def trained_here(self) -> bool:
        """A small model trained by this grid (from scratch or the first stage): its learning
        rates are the ``*_scratch`` ones; a continued checkpoint's are ``*_continued``."""
        return self.init_source in ("scratch", FIRST_STAGE)

    def fewshot_dir(self, seed: int) -> Path:
        return self.eval_dir / "fewshot" / f"seed-{seed}"

    def cell_dir(self, variant: str, seed: int, minutes: float | None = None, *,
                 curve_steps: int | None = None) -> Path:
        """``cells/<variant>/seed-<s>``, or for a compute-curve cell ``curve/<m>min/<variant>/seed-<s>``
        (``--curve``) or ``curve-steps/<n>/<variant>/seed-<s>`` (the in-grid curve's points)."""
        if curve_steps is not None:
            return self.out / "curve-steps" / str(curve_steps) / variant / f"seed-{seed}"
        root = self.out / "cells" if minutes is None else self.out / "curve" / f"{minutes:g}min"
        return root / variant / f"seed-{seed}"
