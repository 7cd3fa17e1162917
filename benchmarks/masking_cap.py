"""How often a cap on the masked positions per sequence (``max_predictions``) drops selected ones.

    python benchmarks/masking_cap.py --data prepared/wikispeedia-254 --pairs 20000
    python benchmarks/masking_cap.py --data prepared/wikispeedia-254 --max-length 128 --caps 20,24,32,40

The collator selects each non-special token with probability ``mlm_probability`` (Bernoulli) and
keeps at most ``max_predictions`` of them per sequence (the smallest selection draws): the
transformers backend reads that many rows per sequence with one fixed-shape gather
(``model.heads.masked_rows``). A cap too small drops selected positions (the masking rate of
long sequences falls below 15%); one too large computes the MLM head at rows whose target is
ignored. This draws ``--pairs`` training pairs of a prepared corpus as pretraining does (its
pair sampler and collator, no cap), counts the selected positions of each, and reports per cap:
the share of sequences that would lose some, the share of all selected positions lost, and the
share of the gathered rows that carry no target; and ``collator.max_predictions_for``'s value
(``max_predictions=auto``). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def selected_counts(folder: str, pairs: int, max_length: int, mlm_probability: float, whole_word_mask: bool,
                    batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(selected positions, real tokens)`` of each of ``pairs`` training pairs, uncapped."""
    from linkbert.objectives import IGNORE_INDEX
    from linkbert.pretrain.data import open_corpus, pretraining_data

    data = pretraining_data(open_corpus(folder), max_length=max_length, seed=0, mlm_probability=mlm_probability,
                            whole_word_mask=whole_word_mask)
    sampler, collate, size = data.train, data.collator, len(data.train)
    selected, lengths = [], []
    for start in range(0, pairs, batch):
        positions = range(start, min(start + batch, pairs))
        out = collate([sampler.pair(p // size, p % size) for p in positions])
        selected.append((out["labels"] != IGNORE_INDEX).sum(1).numpy())
        lengths.append(out["attention_mask"].sum(1).numpy())
    return np.concatenate(selected), np.concatenate(lengths)


def cap_figures(selected: np.ndarray, caps: list[int]) -> dict:
    """Per cap: sequences that lose some, selected positions lost, gathered rows without a target."""
    total = max(int(selected.sum()), 1)
    figures = {}
    for cap in caps:
        kept = np.minimum(selected, cap)
        figures[str(cap)] = {"sequences_truncated": round(float((selected > cap).mean()), 5),
                             "positions_dropped": round(float((selected - kept).sum() / total), 5),
                             "rows_without_target": round(float(1 - kept.sum() / (cap * len(selected))), 4)}
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a prepared corpus folder")
    parser.add_argument("--pairs", type=int, default=20000)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--mlm-probability", type=float, default=0.15)
    parser.add_argument("--whole-word-mask", action="store_true")
    parser.add_argument("--caps", default="76,80,88,96,104,112,120,128")
    args = parser.parse_args(argv)
    from linkbert.collator import max_predictions_for

    selected, lengths = selected_counts(args.data, args.pairs, args.max_length, args.mlm_probability,
                                        args.whole_word_mask)
    caps = [int(c) for c in args.caps.split(",")]
    auto = max_predictions_for(args.max_length, args.mlm_probability)
    figures = cap_figures(selected, sorted(set(caps + [auto])))
    result = {"pairs": len(selected), "max_length": args.max_length, "mlm_probability": args.mlm_probability,
              "whole_word_mask": args.whole_word_mask,
              "real_tokens": {"mean": round(float(lengths.mean()), 1), "full_length_share":
                              round(float((lengths == args.max_length).mean()), 4)},
              "selected_per_sequence": {"mean": round(float(selected.mean()), 2), "std": round(float(selected.std()), 2),
                                        "max": int(selected.max()),
                                        "p99": float(np.percentile(selected, 99)),
                                        "p99.99": float(np.percentile(selected, 99.99))},
              "auto": auto, "caps": figures}
    for cap, row in figures.items():
        print(f"cap {cap:>4}{' (auto)' if int(cap) == auto else '       '}: {row['sequences_truncated']:.2%} of "
              f"sequences truncated, {row['positions_dropped']:.3%} of selected positions dropped, "
              f"{row['rows_without_target']:.1%} of gathered rows without a target", flush=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
