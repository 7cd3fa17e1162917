"""What the link benchmark is: its variants, its modes (sizes), and where everything lives in ``--out``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
COMPARISONS = (("linkbert", "bert"), ("linkbert", "random-links"))
BOW = "bow"  # the bag-of-words floor's row: TF-IDF + logistic regression, TF-IDF cosine
INITS = ("scratch", "minilm")


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
    max_steps: int = 100_000
    withheld_fraction: float = 0.1
    tfidf_k: int = 5


MODES = {
    # 3 pretrained variants + init x 5 seeds in about 60 minutes on 2 CPU cores (docs/graph_experiment.md)
    "cpu": Mode(segment_budget=62, max_length=128, batch_size=32, scratch_preset="tiny", lr_scratch=1e-3,
                lr_continued=1e-4, seeds=5, budget_minutes=60, shots=(5, 20), test_docs=300, ft_examples=280,
                ft_min_epochs=2, ft_lr_continued=1e-4, ft_lr_scratch=5e-4, ft_batch_size=16, probe_c=10.0,
                lp_queries=100, lp_candidates=9),
    # for tests: seconds on a tiny corpus
    "smoke": Mode(segment_budget=14, max_length=32, batch_size=4, scratch_preset="tiny", lr_scratch=1e-3,
                  lr_continued=1e-4, seeds=2, budget_minutes=3, shots=(1, 2), test_docs=6, ft_examples=8,
                  ft_min_epochs=1, ft_lr_continued=1e-4, ft_lr_scratch=1e-3, ft_batch_size=4, probe_c=1.0,
                  lp_queries=4, lp_candidates=3, eval_pairs=8, min_steps=2, max_steps=3, withheld_fraction=0.2,
                  tfidf_k=2),
}


@dataclass
class Context(GridLayout):
    """Where everything is: the corpus, the output folder, the init, the mode and the device (the
    folders the grids share: ``GridLayout``)."""

    out: Path
    corpus_file: Path
    init: str                    # scratch, minilm, or the folder given
    init_source: str             # "scratch" or a BERT checkpoint folder (pretrain's ``init``)
    tokenizer: str               # what prepare tokenizes with
    mode: Mode
    mode_name: str
    device: str

    @property
    def scratch(self) -> bool:
        return self.init_source == "scratch"

    def fewshot_dir(self, seed: int) -> Path:
        return self.eval_dir / "fewshot" / f"seed-{seed}"

    def cell_dir(self, variant: str, seed: int, minutes: float | None = None) -> Path:
        """``cells/<variant>/seed-<s>``, or ``curve/<m>min/<variant>/seed-<s>`` for a compute-curve cell."""
        root = self.out / "cells" if minutes is None else self.out / "curve" / f"{minutes:g}min"
        return root / variant / f"seed-{seed}"
