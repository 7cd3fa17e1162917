"""What pretraining learns: the objectives, the relation classes of a segment pair, the ignored label.

Every module that names an objective or a relation, or marks a position without a loss, imports
it from here.
"""

from __future__ import annotations

from enum import IntEnum

IGNORE_INDEX = -100  # label of positions (MLM, token tasks) or pairs (relation) that carry no loss


class Relation(IntEnum):
    """How segment B of a pair was chosen. 0/1 double as BERT's NSP labels (HF
    ``next_sentence_label``: 0 = B continues A, 1 = B is random)."""

    CONTIGUOUS = 0
    RANDOM = 1
    LINKED = 2


# objective -> number of relation classes the model predicts: LinkBERT's {contiguous, random,
# linked}, BERT's NSP {contiguous, random}, and the "no DRP" ablation (LinkBERT's pairs, MLM only)
OBJECTIVES = {"linkbert": 3, "bert": 2, "mlm-only": 0}


def relation_names(count: int = 3) -> list[str]:
    """``["contiguous", "random", "linked"][:count]``: the classes of a ``count``-way relation head."""
    return [Relation(i).name.lower() for i in range(count)]


def pair_probabilities(objective: str, p_contiguous: float, p_random: float, p_linked: float) -> tuple[float, ...]:
    """``(contiguous, random, linked)`` probabilities of a pair's B under ``objective``: BERT's
    NSP draws contiguous or random halves and never a linked document; the others as given."""
    if objective == "bert":
        return 0.5, 0.5, 0.0
    return p_contiguous, p_random, p_linked
