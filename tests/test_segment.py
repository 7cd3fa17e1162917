import numpy as np
import pytest

from linkbert.segment import DEFAULT_BUDGET, segment_lengths, sentence_starts, sentence_token_starts
from linkbert.tokenization import continuation_mask, load_tokenizer, plain_backend


def test_default_budget_fits_two_segments_in_512():
    assert DEFAULT_BUDGET == 254 and 2 * DEFAULT_BUDGET + 3 <= 512


def test_sentence_starts_after_terminal_punctuation_and_at_lines():
    text = 'One here. "Two" there! three stays? Four.\nFive\n\n  Six'
    starts = sentence_starts(text).tolist()
    assert [text[s:s + 4] for s in starts] == ["One ", '"Two', "Four", "Five", "Six"]


def test_lengths_cover_every_token_within_budget():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(0, 400))
        continuation = rng.random(n) < 0.3
        starts = np.sort(rng.choice(max(n, 1), size=min(n, int(rng.integers(0, 30))), replace=False))
        budget = int(rng.integers(1, 60))
        lengths = segment_lengths(starts, continuation, budget)
        assert sum(lengths) == n
        assert all(0 < length <= budget for length in lengths)


def test_whole_sentences_are_packed_and_long_ones_cut_at_word_starts():
    continuation = np.zeros(20, dtype=bool)
    continuation[[6, 7]] = True  # tokens 5,6,7 form one word
    # sentences of 3, 3 and 14 tokens
    lengths = segment_lengths(np.array([0, 3, 6]), continuation, budget=7)
    # 3+3 fit; the 14-token sentence is cut at budget 7 -> cut at 6+7=13 (not a continuation)
    assert lengths == [6, 7, 7]
    continuation[[13]] = True
    # now token 13 continues a word: the cut moves back to 12
    assert segment_lengths(np.array([0, 3, 6]), continuation, budget=7) == [6, 6, 7, 1]


def test_segments_round_trip_to_text(tiny_tokenizer_dir):
    backend = plain_backend(load_tokenizer(str(tiny_tokenizer_dir)))
    text = ("Paris is the capital of France. Dogs and foxes are animals! "
            "Graphs have nodes and edges.\n\nProteins fold into structures. Cells contain proteins.")
    encoding = backend.encode(text, add_special_tokens=False)
    ids = np.array(encoding.ids)
    lengths = segment_lengths(sentence_token_starts(encoding, text), continuation_mask(backend)[ids], budget=12)
    bounds = np.cumsum([0] + lengths)
    pieces = [backend.decode(ids[a:b].tolist()) for a, b in zip(bounds[:-1], bounds[1:])]
    assert " ".join(pieces) == backend.decode(ids.tolist())
    assert pieces[0] == "paris is the capital of france."
    assert all(len(p.split()) > 0 for p in pieces)


@pytest.mark.parametrize("budget", [0, -3])
def test_budget_must_be_positive(budget):
    with pytest.raises(ValueError):
        segment_lengths(np.array([0]), np.zeros(5, bool), budget)
