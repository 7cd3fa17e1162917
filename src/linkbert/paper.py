"""The paper's published numbers (LinkBERT, ACL 2022; SPEC section 4), for tables that put ours beside them.

Keys are our dataset names (the released data folders without ``_hf``). BLURB task scores and
MRQA F1 are on 0-100; MedQA-USMLE and MMLU are accuracies in percent. The BLURB ``score`` entries
are the paper's own aggregates, which ``linkbert.metrics.blurb_score`` reproduces from the tasks.
"""

from __future__ import annotations

_BLURB_TASKS = ("BC5CDR-chem", "BC5CDR-disease", "NCBI-disease", "BC2GM", "JNLPBA", "ebmnlp",
                "chemprot", "DDI", "GAD", "BIOSSES", "HoC", "pubmedqa", "bioasq", "score")
_BLURB_ROWS = {
    "PubMedBERT-base": (93.33, 85.62, 87.82, 84.52, 80.06, 73.38, 77.24, 82.36, 82.34, 92.30,
                        82.32, 55.84, 87.56, 81.10),
    "BioLinkBERT-base": (93.75, 86.10, 88.18, 84.90, 79.03, 73.97, 77.57, 82.72, 84.39, 93.25,
                         84.35, 70.20, 91.43, 83.39),
    "BioLinkBERT-large": (94.04, 86.39, 88.76, 85.18, 80.06, 74.19, 79.98, 83.35, 84.90, 93.63,
                          84.87, 72.18, 94.82, 84.30),
}

_MRQA_TASKS = ("hotpot", "triviaqa", "searchqa", "naturalqa", "newsqa", "squad")
_MRQA_ROWS = {
    "BERT-tiny": (49.8, 43.4, 50.2, 58.9, 41.3, 56.6),
    "LinkBERT-tiny": (54.6, 50.0, 58.6, 60.3, 42.8, 58.0),
    "BERT-base": (76.0, 70.3, 74.2, 76.5, 65.7, 88.7),
    "LinkBERT-base": (78.2, 73.9, 76.8, 78.3, 69.3, 90.1),
    "BERT-large": (78.1, 73.7, 78.3, 79.0, 70.9, 91.1),
    "LinkBERT-large": (80.8, 78.2, 80.5, 81.0, 72.6, 92.7),
}

PAPER_RESULTS: dict[str, dict[str, dict[str, float]]] = {
    # benchmark -> model -> dataset -> published number
    "blurb": {model: dict(zip(_BLURB_TASKS, row)) for model, row in _BLURB_ROWS.items()},
    "mrqa": {model: dict(zip(_MRQA_TASKS, row)) for model, row in _MRQA_ROWS.items()},
    "medqa": {
        "PubMedBERT-base": {"medqa_usmle": 38.1},
        "BioLinkBERT-base": {"medqa_usmle": 40.0},
        "BioLinkBERT-large": {"medqa_usmle": 44.6, "mmlu": 50.7},
    },
}
