"""Each metric on small hand-checked inputs; expected values are worked out in the comments."""

from __future__ import annotations

import math

import pytest

from linkbert import metrics
from linkbert.paper import PAPER_RESULTS

# ---------------------------------------------------------------- SQuAD normalisation


@pytest.mark.parametrize("text, expected", [
    ("The Theater!", "theater"),              # article removed, "the" inside "theater" stays
    ("another Athens thesis", "another athens thesis"),  # a/an/the inside words stay
    ("an apple, a pear and the end", "apple pear and end"),
    ("A.B.C.", "abc"),                        # punctuation first: no lone "a" is left
    ("the-end", "theend"),                    # "-" removed before articles: no word "the"
    ("THE", ""),
    ("\tNew\n  York  ", "new york"),
    ("ÉCOLE  Café", "école café"),            # unicode letters are lowercased and kept
    ("“the” answer", "“ ” answer"),           # curly quotes are not string.punctuation
    ("$1,000.50", "100050"),
])
def test_normalize_answer(text, expected):
    assert metrics.normalize_answer(text) == expected


def test_exact_match_takes_the_best_gold():
    assert metrics.exact_match("the Denver Broncos", ["Broncos", "Denver Broncos"]) == 1.0
    assert metrics.exact_match("Denver", ["Broncos", "Denver Broncos"]) == 0.0


def test_f1_hand_computed():
    # pred [denver, broncos, won] vs gold [denver, broncos]: 2 common, P 2/3, R 1 -> F1 0.8
    assert metrics.f1("Denver Broncos won", ["the Denver Broncos"]) == pytest.approx(0.8)
    # vs "Broncos": 1 common, P 1/3, R 1 -> 0.5; the max over golds is 0.8
    assert metrics.f1("Denver Broncos won", ["Broncos", "Denver Broncos"]) == pytest.approx(0.8)
    # repeated tokens count once per match: [x x y] & [x y y] = {x:1, y:1} -> P = R = 2/3
    assert metrics.f1("x x y", ["x y y"]) == pytest.approx(2 / 3)


def test_v11_empty_answers_em_one_f1_zero():
    # "the" and "a" both normalise to "": equal strings (EM 1) but no tokens in common (F1 0)
    assert metrics.exact_match("the", ["a"]) == 1.0
    assert metrics.f1("the", ["a"]) == 0.0


def test_no_gold_answers_is_an_error():
    with pytest.raises(ValueError, match="no gold answers"):
        metrics.f1("x", [])


def test_squad_scores_counts_unanswered_as_zero(capsys):
    golds = {"q1": ["Denver Broncos"], "q2": ["Santa Clara", "Levi's Stadium"], "q3": ["1"]}
    predictions = {"q1": "Denver Broncos won", "q2": "santa clara.", "extra": "ignored"}
    scores = metrics.squad_scores(golds, predictions)
    # q1: EM 0, F1 0.8; q2: EM 1, F1 1; q3 missing: 0, 0 -> EM 100/3, F1 100*1.8/3 = 60
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(60.0)
    assert "Unanswered question q3 will receive score 0." in capsys.readouterr().err


# ---------------------------------------------------------------- seqeval


def test_seqeval_bare_bio_tags_are_typeless_chunks():
    # gold chunks (0-1) and (3); predicted (0-1): P 1, R 1/2, F1 2/3
    scores = metrics.seqeval_f1([["B", "I", "O", "B"]], [["B", "I", "O", "O"]])
    assert scores == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})
    # predicted (0) and (3): only (3) matches a gold chunk exactly -> P = R = F1 = 1/2
    scores = metrics.seqeval_f1([["B", "I", "O", "B"]], [["B", "O", "O", "B"]])
    assert scores == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})


def test_seqeval_typed_tags_need_the_type_to_match():
    # PER (0-1) matches; LOC (3) predicted as ORG: 1 of 2 either way
    scores = metrics.seqeval_f1([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    assert scores == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})


def test_seqeval_length_mismatch():
    with pytest.raises(ValueError, match="sequence 0"):
        metrics.seqeval_f1([["B", "O"]], [["B"]])


def test_pico_macro_f1_is_word_level_and_counts_predicted_only_types():
    true = [["I-PAR", "I-PAR", "O", "I-INT"]]
    pred = [["I-PAR", "O", "I-INT", "I-OUT"]]
    # after I-X -> B-X every word is an entity:
    #   PAR gold {0,1} pred {0}: P 1, R 1/2, F1 2/3
    #   INT gold {3} pred {2}: F1 0
    #   OUT gold {} pred {3}: F1 0 (the type is in the report because it was predicted)
    scores = metrics.pico_macro_f1(true, pred)
    assert scores["by_type"] == pytest.approx({"PAR": 2 / 3, "INT": 0.0, "OUT": 0.0})
    assert scores["f1"] == pytest.approx(2 / 9)
    assert scores["precision"] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    # plain seqeval would read I-PAR I-PAR as one 2-word chunk: the rewrite matters
    assert metrics.seqeval_f1(true, pred)["f1"] == pytest.approx(0.0)


# ---------------------------------------------------------------- sequence classification


def test_prf1_ignores_the_negative_class():
    true = ["0", "CPR:3", "CPR:4", "0", "CPR:3"]
    pred = ["CPR:3", "CPR:3", "0", "0", "CPR:4"]
    # TP: position 1 only; non-negative predictions 0,1,4 (3); non-negative golds 1,2,4 (3)
    scores = metrics.prf1(true, pred)
    assert scores == pytest.approx({"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3})


def test_prf1_nothing_predicted_is_zero_not_an_error():
    assert metrics.prf1(["1", "0"], ["0", "0"]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_hoc_f1_ors_labels_per_abstract():
    ids = ["d1_s0", "d1_s1", "d2_s0"]
    true = [[1, 0, 0], [0, 1, 0], [0, 0, 0]]  # d1 gold {0, 1}, d2 gold {}
    pred = [[0, 0, 0], [1, 0, 1], [0, 0, 1]]  # d1 pred {0, 2}, d2 pred {2}
    # cells: TP (d1, 0) = 1; predicted 3; gold 2 -> P 1/3, R 1/2, F1 2*(1/6)/(5/6) = 0.4
    # (sentence by sentence there would be no true positive at all)
    scores = metrics.hoc_f1(ids, true, pred)
    assert scores["precision"] == pytest.approx(1 / 3)
    assert scores["recall"] == pytest.approx(0.5)
    assert scores["f1"] == pytest.approx(0.4)
    assert scores["n_abstracts"] == 2


def test_pearson_hand_computed():
    # x - mean = (-1, 0, 1), y - mean = (-7/3, -1/3, 8/3): cov sum 5, sum dx^2 2, sum dy^2 114/9
    # r = 5 / sqrt(2 * 114 / 9) = 15 / sqrt(228)
    assert metrics.pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228))


def test_accuracy():
    assert metrics.accuracy(["a", "b", "c", "a"], ["a", "c", "c", "b"]) == 0.5  # 2 of 4
    with pytest.raises(ValueError):
        metrics.accuracy([1, 2], [1])


# ---------------------------------------------------------------- BLURB score

# SPEC section 4, typed from the text: PubMedBERT-base / BioLinkBERT-base / BioLinkBERT-large
SPEC_BLURB = {
    "BC5CDR-chem": (93.33, 93.75, 94.04),
    "BC5CDR-disease": (85.62, 86.10, 86.39),
    "NCBI-disease": (87.82, 88.18, 88.76),
    "BC2GM": (84.52, 84.90, 85.18),
    "JNLPBA": (80.06, 79.03, 80.06),
    "ebmnlp": (73.38, 73.97, 74.19),
    "chemprot": (77.24, 77.57, 79.98),
    "DDI": (82.36, 82.72, 83.35),
    "GAD": (82.34, 84.39, 84.90),
    "BIOSSES": (92.30, 93.25, 93.63),
    "HoC": (82.32, 84.35, 84.87),
    "pubmedqa": (55.84, 70.20, 72.18),
    "bioasq": (87.56, 91.43, 94.82),
}
SPEC_MODELS = ("PubMedBERT-base", "BioLinkBERT-base", "BioLinkBERT-large")
SPEC_SCORES = (81.10, 83.39, 84.30)
# MRQA F1, SPEC section 4: HotpotQA, TriviaQA, SearchQA, NaturalQ, NewsQA, SQuAD
SPEC_MRQA = {
    "BERT-base": (76.0, 70.3, 74.2, 76.5, 65.7, 88.7),
    "LinkBERT-base": (78.2, 73.9, 76.8, 78.3, 69.3, 90.1),
    "BERT-large": (78.1, 73.7, 78.3, 79.0, 70.9, 91.1),
    "LinkBERT-large": (80.8, 78.2, 80.5, 81.0, 72.6, 92.7),
    "BERT-tiny": (49.8, 43.4, 50.2, 58.9, 41.3, 56.6),
    "LinkBERT-tiny": (54.6, 50.0, 58.6, 60.3, 42.8, 58.0),
}


@pytest.mark.parametrize("column", range(3))
def test_blurb_score_reproduces_the_paper(column):
    scores = {task: row[column] for task, row in SPEC_BLURB.items()}
    result = metrics.blurb_score(scores)
    assert round(result["score"], 2) == SPEC_SCORES[column]


def test_blurb_type_means_hand_computed():
    scores = {task: row[0] for task, row in SPEC_BLURB.items()}
    by_type = metrics.blurb_score(scores)["by_type"]
    # NER (93.33 + 85.62 + 87.82 + 84.52 + 80.06) / 5 = 431.35 / 5 = 86.27
    assert by_type["NER"] == pytest.approx(86.27)
    # RE (77.24 + 82.36 + 82.34) / 3 = 80.6466..., QA (55.84 + 87.56) / 2 = 71.70
    assert by_type["relation extraction"] == pytest.approx(241.94 / 3)
    assert by_type["question answering"] == pytest.approx(71.70)
    # (86.27 + 73.38 + 80.6467 + 92.30 + 82.32 + 71.70) / 6 = 81.1028
    assert len(by_type) == 6


def test_blurb_score_names_missing_tasks():
    scores = {task: row[0] for task, row in SPEC_BLURB.items() if task not in ("GAD", "HoC")}
    scores["hoc"] = 80.0
    with pytest.raises(ValueError, match=r"missing: GAD, HoC \(also given, not BLURB task names: hoc\)"):
        metrics.blurb_score(scores)


def test_paper_results_match_the_spec():
    blurb = PAPER_RESULTS["blurb"]
    for column, model in enumerate(SPEC_MODELS):
        assert {t: blurb[model][t] for t in SPEC_BLURB} == {t: r[column] for t, r in SPEC_BLURB.items()}
        assert blurb[model]["score"] == SPEC_SCORES[column]
    names = ("hotpot", "triviaqa", "searchqa", "naturalqa", "newsqa", "squad")
    assert PAPER_RESULTS["mrqa"] == {m: dict(zip(names, row)) for m, row in SPEC_MRQA.items()}
    assert PAPER_RESULTS["medqa"]["BioLinkBERT-large"] == {"medqa_usmle": 44.6, "mmlu": 50.7}


# ---------------------------------------------------------------- ranking (link prediction)


def test_rank_metrics_on_a_hand_made_case():
    true = [0.9, 0.5, 0.1, 0.3]
    negatives = [[0.1, 0.2], [0.6, 0.1], [0.5, 0.7], [0.3, 0.0]]  # ranks 1, 2, 3, 2 (a tie counts against)
    m = metrics.rank_metrics(true, negatives)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    assert m["hits1"] == 0.25 and m["hits3"] == 1.0 and m["n"] == 4 and m["candidates"] == 3
    assert m["chance_mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3) and m["chance_hits1"] == pytest.approx(1 / 3)


def test_rank_metrics_rank_a_constant_scorer_last():
    constant = metrics.rank_metrics([0.0] * 4, [[0.0] * 4] * 4)  # 5 candidates, all tied
    assert constant["hits1"] == 0.0 and constant["hits3"] == 0.0 and constant["mrr"] == pytest.approx(1 / 5)
    assert constant["mrr"] < constant["chance_mrr"]


# ---------------------------------------------------------------- seed-paired comparison


def test_paired_comparison_hand_worked():
    # d = a - b = [1, 2, 3, 4, 5]: mean 3, std sqrt(2.5) = 1.5811, se = 1.5811 / sqrt(5) = 0.7071,
    # t = 3 / 0.7071 = 4.2426 on 4 df -> two-sided p 0.01324; t_0.975,4 = 2.77645 -> 3 ± 1.96324;
    # d_z = 3 / 1.5811 = 1.8974; Wilcoxon: all 5 differences positive, rank sum 15 is the most
    # extreme of 2^5 sign patterns, two-sided p = 2 / 32 = 0.0625
    result = metrics.paired_comparison([3, 4, 5, 6, 7], [2, 2, 2, 2, 2])
    assert result["n"] == 5 and result["mean_a"] == 5 and result["mean_b"] == 2
    assert result["mean_diff"] == pytest.approx(3.0)
    assert result["std_diff"] == pytest.approx(math.sqrt(2.5))
    assert result["ci_low"] == pytest.approx(1.03676, abs=1e-4)
    assert result["ci_high"] == pytest.approx(4.96324, abs=1e-4)
    assert result["t_p"] == pytest.approx(0.01324, abs=1e-5)
    assert result["wilcoxon_p"] == pytest.approx(0.0625)
    assert result["d_z"] == pytest.approx(1.89737, abs=1e-5)


def test_paired_comparison_matches_scipy():
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(70, 3, 8), rng.normal(69, 3, 8)
    result = metrics.paired_comparison(a, b)
    d = a - b
    assert result["t_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert result["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    low, high = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert (result["ci_low"], result["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert result["d_z"] == pytest.approx(d.mean() / d.std(ddof=1))
    swapped = metrics.paired_comparison(b, a)  # the order only flips the sign
    assert swapped["mean_diff"] == pytest.approx(-result["mean_diff"]) and swapped["t_p"] == pytest.approx(result["t_p"])


def test_paired_comparison_degenerate_cases():
    same = metrics.paired_comparison([1, 2, 3], [1, 2, 3])  # no difference at all
    assert (same["mean_diff"], same["t_p"], same["wilcoxon_p"], same["d_z"]) == (0, 1.0, 1.0, 0.0)
    constant = metrics.paired_comparison([3, 3, 3], [1, 1, 1])  # the same non-zero difference every time
    assert constant["mean_diff"] == 2 and constant["t_p"] is None and constant["d_z"] is None
    assert constant["wilcoxon_p"] == pytest.approx(0.25)  # 3 positive signs of 3: 2 / 2^3
    assert constant["ci_low"] == constant["ci_high"] == 2
    one = metrics.paired_comparison([1.0], [0.5])
    assert one["mean_diff"] == 0.5 and one["t_p"] is None and one["ci_low"] is None and one["d_z"] is None
    with pytest.raises(ValueError, match="same length"):
        metrics.paired_comparison([1, 2], [1])
    with pytest.raises(ValueError, match="no pairs"):
        metrics.paired_comparison([], [])


def test_holm_adjusts_a_family_of_p_values():
    # hand-worked: sorted 0.01, 0.02, 0.04 of m=3 -> 0.03, 0.04, 0.04 (made non-decreasing)
    assert metrics.holm([0.04, 0.01, None, 0.02]) == [pytest.approx(0.04), pytest.approx(0.03), None,
                                                      pytest.approx(0.04)]
    assert metrics.holm([0.5, 0.9]) == [1.0, 1.0]
    assert metrics.holm([]) == []
