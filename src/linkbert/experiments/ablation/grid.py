"""What the grid is: the variants, the inits, the modes (sizes), and where everything lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linkbert.experiments.grid import Variant
from linkbert.experiments.layout import GridLayout

VARIANTS = {
    "bert": Variant("BERT (contiguous/random, NSP)", None, objective="bert"),
    "linkbert": Variant("LinkBERT (hyperlinks, diversity)", "hyperlinks"),
    "no-diversity": Variant("no diversity (uniform over links)", "hyperlinks", linked_sampling="uniform"),
    "tfidf": Variant("TF-IDF top-5 links", "tfidf"),
    "random-links": Variant("random links (same out-degrees)", "random"),
    "no-drp": Variant("no DRP (LinkBERT pairs, MLM only)", "hyperlinks", objective="mlm-only"),
    "init": Variant("init (no further pretraining; reference)", None, pretrain=False),
}
INITS = ("scratch", "minilm")
HOTPOT_FILE = Path("hotpotqa") / "hotpot_distractor_1450.jsonl"  # under --data-root; optional


@dataclass(frozen=True)
class Mode:
    """Sizes of one way to run the grid. ``-1`` = everything available."""

    segment_budget: int          # tokens per segment when preparing the corpus
    max_length: int              # pretraining input length
    batch_size: int
    scratch_preset: str
    lr_scratch: float
    lr_continued: float
    seeds: int                   # default number of seeds
    budget_minutes: float        # default budget
    qa_train: int                # training questions (articles 1-16); few-shot takes 10% of them
    qa_test: int                 # test questions (articles 21-24), each also with distractors
    qa_max_length: int
    qa_doc_stride: int
    qa_epochs: float
    qa_lr: float
    fewshot_epochs: float
    hotpot_train: int            # HotpotQA distractor: fine-tuning questions (init minilm only), of its pool
    hotpot_test: int             # HotpotQA test questions (bridge and comparison, as drawn)
    hotpot_epochs: float
    cat_train: int               # category classification: training documents
    cat_test: int
    cat_segments: int            # leading segments of a document that make its input text
    cat_epochs: float
    cat_lr: float
    lp_queries: int              # withheld links ranked
    lp_candidates: int           # non-linked candidates per query
    ft_batch_size: int = 16
    min_steps: int = 10          # the planner refuses a grid whose cells would pretrain less
    max_steps: int = 100_000     # and never plans more than this
    withheld_fraction: float = 0.1
    tfidf_k: int = 5


MODES = {
    # whole grid (7 variants x 2 inits x 3 seeds) in about 90 minutes on 2 CPU cores
    "cpu-mini": Mode(segment_budget=62, max_length=128, batch_size=32, scratch_preset="tiny", lr_scratch=1e-3,
                     lr_continued=1e-4, seeds=3, budget_minutes=90, qa_train=240, qa_test=160,
                     qa_max_length=192, qa_doc_stride=64, qa_epochs=1, qa_lr=1e-4, fewshot_epochs=4,
                     hotpot_train=96, hotpot_test=128, hotpot_epochs=1,
                     cat_train=480, cat_test=240, cat_segments=1, cat_epochs=2, cat_lr=1e-4, lp_queries=150,
                     lp_candidates=9),
    "gpu": Mode(segment_budget=126, max_length=256, batch_size=256, scratch_preset="tiny", lr_scratch=2e-3,
                lr_continued=1e-4, seeds=3, budget_minutes=240, qa_train=-1, qa_test=-1, qa_max_length=384,
                qa_doc_stride=128, qa_epochs=2, qa_lr=5e-5, fewshot_epochs=8,
                hotpot_train=-1, hotpot_test=-1, hotpot_epochs=2, cat_train=-1, cat_test=-1,
                cat_segments=2, cat_epochs=3, cat_lr=5e-5, lp_queries=1000, lp_candidates=49, ft_batch_size=32),
    # for tests: seconds on a tiny corpus
    "smoke": Mode(segment_budget=14, max_length=32, batch_size=4, scratch_preset="tiny", lr_scratch=1e-3,
                  lr_continued=1e-4, seeds=1, budget_minutes=2, qa_train=8, qa_test=4, qa_max_length=48,
                  qa_doc_stride=16, qa_epochs=1, qa_lr=1e-4, fewshot_epochs=1,
                  hotpot_train=8, hotpot_test=6, hotpot_epochs=1, cat_train=8, cat_test=4,
                  cat_segments=1, cat_epochs=1, cat_lr=1e-4, lp_queries=4, lp_candidates=3, ft_batch_size=4,
                  min_steps=2, max_steps=3, withheld_fraction=0.2, tfidf_k=2),
}


@dataclass
class Context(GridLayout):
    """Where everything is: inputs, the output folder, the mode and the device (the folders the
    grids share: ``GridLayout``; ``corpus()`` is the prepared Wikispeedia)."""

    out: Path
    wikispeedia: Path
    squad: Path
    minilm: Path | None
    mode: Mode
    mode_name: str
    device: str
    hotpotqa: Path | None = None  # HotpotQA distractor questions (JSON lines); absent: that evaluation is skipped

    def cell_dir(self, init: str, variant: str, seed: int) -> Path:
        return self.out / "cells" / init / variant / f"seed-{seed}"

    def init_source(self, init: str) -> str:
        if init == "scratch":
            return "scratch"
        if self.minilm is None:
            raise FileNotFoundError("init minilm needs the MiniLM checkpoint: give --minilm DIR")
        return str(self.minilm)
