"""What the grid is: the variants, the inits, the modes (sizes), and where everything lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linkbert.experiments.first_stage import FIRST_STAGE, trained_checkpoint
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
INITS = ("scratch", "minilm", FIRST_STAGE)
COMPARISONS = (("linkbert", "bert"), ("linkbert", "random-links"), ("linkbert", "no-drp"))  # seed-paired, per init
EVALUATIONS = ("qa", "category", "linkpred", "hotpotqa")  # SQuAD (+ few-shot), category, link prediction, HotpotQA
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
    qa_lr_scratch: float = 0.0   # QA's learning rate for a model trained here (scratch, first stage); 0: qa_lr
    min_steps: int = 10          # the planner refuses a grid whose cells would pretrain less
    target_steps: int = 0        # fewer seeds (down to min_seeds) rather than cells shorter than this; 0: min_steps
    max_steps: int = 100_000     # and never plans more than this
    withheld_fraction: float = 0.1
    tfidf_k: int = 5
    evaluations: tuple[str, ...] = EVALUATIONS  # which of EVALUATIONS every cell runs
    inits: tuple[str, ...] = ("scratch", "minilm")  # --inits' default
    variants: tuple[str, ...] = ()  # --variants' default; () = every variant
    optional_variants: tuple[str, ...] = ()  # added to the default variants when the budget allows
    min_seeds: int = 0           # the mode's seeds may shrink to this many rather than cells too short (0: never)
    eval_pairs: int = 256        # held-out pretraining pairs scored at the end of a run
    # pretraining on the device: torch.compile, the fixed-shape MLM gather, DataLoader processes
    compile: bool = False
    max_predictions: int = 0
    num_workers: int = 0
    prepare_workers: int = 1     # processes preparing the corpus (linkbert prepare --workers)
    eval_batch_size: int = 64    # inference batches of the evaluations
    first_stage_share: float = 1 / 3   # of the pretraining time, for the masked-LM first stage (init first-stage)
    probe_steps: int = 20        # the planner's probe run (init first-stage): a cell's run of this many steps
    # an in-grid compute curve: linkbert and bert also pretrained for these fractions of the grid's
    # steps (the grid's own cells the last point), planned only when it (and any optional variant)
    # costs the grid's cells at most curve_max_cost of their steps; () = none
    curve_fractions: tuple[float, ...] = ()
    curve_max_cost: float = 1 / 3


MODES = {
    # whole grid (7 variants x 2 inits x 3 seeds) in about 90 minutes on 2 CPU cores
    "cpu-mini": Mode(segment_budget=62, max_length=128, batch_size=32, scratch_preset="tiny", lr_scratch=1e-3,
                     lr_continued=1e-4, seeds=3, budget_minutes=90, qa_train=240, qa_test=160,
                     qa_max_length=192, qa_doc_stride=64, qa_epochs=1, qa_lr=1e-4, fewshot_epochs=4,
                     hotpot_train=96, hotpot_test=128, hotpot_epochs=1,
                     cat_train=480, cat_test=240, cat_segments=1, cat_epochs=2, cat_lr=1e-4, lp_queries=150,
                     lp_candidates=9),
    # the comparison the paper's claim rests on, in at most 6 minutes of one H100 (start-up and
    # evaluation included; the planner sizes it from a probe on the device): a `mini` BERT trained
    # here with masked LM only on Wikispeedia without its links (the first stage), continued as
    # bert, linkbert, random-links (and no-drp when the budget allows; no `init` reference row: its
    # evaluations would cost a variant's, and the first stage's own figures are reported), 5 seeds
    # (fewer, down to 3, rather than cells too short to learn); batch 256 x 128 in
    # bf16, the fixed-shape MLM gather; eager (a fresh model per cell: compiling each costs more than
    # it saves over a few hundred steps). Evaluations: withheld-hyperlink prediction and HotpotQA
    # distractor QA by type, every fine-tuning question (738) for 1 epoch in windows of 384 tokens
    "gpu": Mode(segment_budget=62, max_length=128, batch_size=256, scratch_preset="mini", lr_scratch=1e-3,
                lr_continued=1e-4, seeds=5, budget_minutes=6, qa_train=-1, qa_test=-1, qa_max_length=384,
                qa_doc_stride=128, qa_epochs=2, qa_lr=5e-5, qa_lr_scratch=3e-4, fewshot_epochs=8,
                hotpot_train=-1, hotpot_test=-1, hotpot_epochs=1, cat_train=-1, cat_test=-1,
                cat_segments=2, cat_epochs=3, cat_lr=5e-5, lp_queries=1000, lp_candidates=9, ft_batch_size=32,
                min_steps=20, target_steps=200, evaluations=("linkpred", "hotpotqa"), inits=(FIRST_STAGE,),
                variants=("bert", "linkbert", "random-links"), optional_variants=("no-drp",), min_seeds=3,
                eval_pairs=1024, max_predictions=23, num_workers=4, prepare_workers=8, eval_batch_size=256,
                probe_steps=30,
                curve_fractions=(0.25, 0.5)),
    # for tests: seconds on a tiny corpus (QA windows of 128 tokens: a real HotpotQA question takes up
    # to ~60 of them, and a window must hold it, its stride and a little context)
    "smoke": Mode(segment_budget=14, max_length=32, batch_size=4, scratch_preset="tiny", lr_scratch=1e-3,
                  lr_continued=1e-4, seeds=1, budget_minutes=2, qa_train=8, qa_test=4, qa_max_length=128,
                  qa_doc_stride=32, qa_epochs=1, qa_lr=1e-4, fewshot_epochs=1,
                  hotpot_train=8, hotpot_test=6, hotpot_epochs=1, cat_train=8, cat_test=4,
                  cat_segments=1, cat_epochs=1, cat_lr=1e-4, lp_queries=4, lp_candidates=3, ft_batch_size=4,
                  min_steps=2, max_steps=3, withheld_fraction=0.2, tfidf_k=2, eval_pairs=8, probe_steps=2),
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
    tokenizer: str | None = None  # what Wikispeedia is prepared with; None: MiniLM's, else one trained on it

    def cell_dir(self, init: str, variant: str, seed: int, curve_steps: int | None = None) -> Path:
        """``cells/<init>/<variant>/seed-<s>``, or ``curve-steps/<n>/<init>/<variant>/seed-<s>`` for a
        point of the in-grid compute curve."""
        root = self.out / "cells" if curve_steps is None else self.out / "curve-steps" / str(curve_steps)
        return root / init / variant / f"seed-{seed}"

    def evaluates(self, name: str) -> bool:
        """Whether the mode's cells run the evaluation ``name`` (one of EVALUATIONS)."""
        return name in self.mode.evaluations

    def init_source(self, init: str) -> str:
        """What an init's cells start from: ``scratch``, MiniLM's folder, or the trained first stage's checkpoint."""
        if init == "scratch":
            return "scratch"
        if init == FIRST_STAGE:
            return trained_checkpoint(self)
        if self.minilm is None:
            raise FileNotFoundError("init minilm needs the MiniLM checkpoint: give --minilm DIR")
        return str(self.minilm)

    def prepare_tokenizer(self) -> str:
        """The tokenizer Wikispeedia is prepared with (every init shares the one segment store):
        ``tokenizer`` when given, else MiniLM's, else one trained on the corpus."""
        return self.tokenizer or (str(self.minilm) if self.minilm else "train")
