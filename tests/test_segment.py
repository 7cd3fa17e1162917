import numpy as np
import pytest

from linkbert.segment import (DEFAULT_BUDGET, char_starts_to_tokens, encoding_offsets, segment_lengths, sentence_starts,
                              sentence_token_starts, sentence_token_starts_from_offsets)
from linkbert.tokenization import continuation_mask, load_tokenizer, plain_backend

from conftest import TINY_TEXTS


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


# -- sentence starts to tokens: one pass over the offsets, the same answer as char_to_token --------

def reference_token_starts(encoding, text: str) -> list[int]:
    """The former mapping: ``char_to_token`` per sentence start (each call scans the encoding)."""
    starts = []
    for char in sentence_starts(text).tolist():
        token = encoding.char_to_token(char)
        while token is None and char + 1 < len(text):
            char += 1
            token = encoding.char_to_token(char)
        if token is not None:
            starts.append(token)
    return starts


VARIED_TEXTS = [
    "",
    "   ",
    "One.",
    "One. ",  # a sentence start at the text's end
    "  Leading spaces. Then more.\n\n  Indented line.\n",
    "Café au lait. Naïve façade! Ünïcode straße? Zürich.\nÉcole normale.",
    "東京は大きい。 Tokyo is big. 日本語のテキスト. Emoji 😀 here. 😀 Starts a sentence.",
    "Control \x00\x01\x07 chars. \x00\x00Removed start. \x07Bell start.\n\x00\n\x00Line.",
    "Combining e\u0301 accents. \u0301Starts with a mark. A\u030a.",
    "Unknown ☃☃☃ snowmen. ☃ Snowman starts. Words like supercalifragilisticexpialidocious" * 3,
    "[MASK] and [SEP] literal. [CLS] starts here. Dr. Smith said \"Hi.\" Then left.",
    "Tabs\tand\u00a0non-breaking\u2003spaces. \u2028Line separator. \ufeffBOM start.",
    "x" * 300 + ". " + "y" * 150 + "\n" + "z",
]


def _backend(tiny_tokenizer_dir):
    return plain_backend(load_tokenizer(str(tiny_tokenizer_dir)))


@pytest.mark.parametrize("text", VARIED_TEXTS)
def test_offsets_mapping_equals_char_to_token(tiny_tokenizer_dir, text):
    encoding = _backend(tiny_tokenizer_dir).encode(text, add_special_tokens=False)
    expected = reference_token_starts(encoding, text)
    assert sentence_token_starts(encoding, text).tolist() == expected
    # the one-pass path over the offsets, whatever the number of sentences
    assert char_starts_to_tokens(sentence_starts(text), encoding_offsets(encoding), len(text)).tolist() == expected
    assert sentence_token_starts_from_offsets(text, encoding_offsets(encoding)).tolist() == expected


def test_offsets_mapping_equals_char_to_token_on_random_texts(tiny_tokenizer_dir):
    backend = _backend(tiny_tokenizer_dir)
    rng = np.random.default_rng(0)
    pieces = ["The", "cat", "é", "日本", "😀", "\x00", "\x07", " ", "  ", "\n", "\n\n", ". ", "! ", "? ", '." ',
              "capital", "Paris", "☃", "e\u0301", "\t", "ß", "İ", "ﬁ", "[SEP]", "x" * 120]
    for _ in range(300):
        text = "".join(rng.choice(pieces, size=int(rng.integers(0, 60))))
        encoding = backend.encode(text, add_special_tokens=False)
        expected = reference_token_starts(encoding, text)
        offsets = encoding_offsets(encoding)
        assert char_starts_to_tokens(sentence_starts(text), offsets, len(text)).tolist() == expected, repr(text)
        assert sentence_token_starts(encoding, text).tolist() == expected, repr(text)


def brute_force(chars, offsets, text_length):
    """char_to_token's rule on raw offsets: the first token containing the position, else that of
    the next position a token contains (before the text's end)."""
    def first(p):
        return next((i for i, (s, e) in enumerate(offsets) if s <= p < e), None)

    out = []
    for c in chars:
        token = first(c)
        while token is None and c + 1 < text_length:
            c += 1
            token = first(c)
        if token is not None:
            out.append(token)
    return out


def test_offsets_out_of_order_take_the_exact_path():
    rng = np.random.default_rng(1)
    for _ in range(300):
        n, length = int(rng.integers(0, 12)), int(rng.integers(1, 40))
        starts = rng.integers(0, length, size=n)
        offsets = np.stack([starts, np.minimum(length, starts + rng.integers(0, 5, size=n))], axis=1)
        if rng.random() < 0.5:  # sometimes in text order, with zero-width tokens and repeats
            offsets = offsets[np.lexsort((offsets[:, 1], offsets[:, 0]))]
            offsets[:, 1] = np.maximum.accumulate(offsets[:, 1])
        chars = np.unique(rng.integers(0, length + 1, size=int(rng.integers(0, 8))))
        expected = brute_force(chars.tolist(), offsets.tolist(), length)
        assert char_starts_to_tokens(chars, offsets.reshape(-1, 2), length).tolist() == expected, (chars, offsets)


class CountingEncoding:
    """An encoding that counts calls of ``char_to_token`` (each one scans the encoding)."""

    def __init__(self, encoding):
        self.encoding, self.calls = encoding, 0

    def char_to_token(self, char):
        self.calls += 1
        return self.encoding.char_to_token(char)

    @property
    def offsets(self):
        return self.encoding.offsets


def test_a_long_document_does_not_call_char_to_token_per_sentence(tiny_tokenizer_dir):
    text = " ".join(TINY_TEXTS) * 400  # 2,000 sentences
    encoding = CountingEncoding(_backend(tiny_tokenizer_dir).encode(text, add_special_tokens=False))
    starts = sentence_token_starts(encoding, text)
    assert len(starts) > 1500 and encoding.calls <= 256
    assert starts.tolist() == reference_token_starts(encoding.encoding, text)


def test_segment_lengths_match_the_former_packing_on_many_long_sentences():
    """Sentences longer than the budget, one after the other (where the former code summed every
    length so far per sentence): the same segments as that code gave."""
    def former(sentence_tokens, continuation, budget):
        n = len(continuation)
        bounds = np.unique(np.concatenate([[0], sentence_tokens[sentence_tokens < n], [n]]))
        lengths, current = [], 0
        for length in np.diff(bounds).tolist():
            if current + length <= budget:
                current += length
                continue
            if current:
                lengths.append(current)
            start, end = sum(lengths), sum(lengths) + length
            while end - start > budget:
                cut = start + budget
                while cut > start and continuation[cut]:
                    cut -= 1
                cut = start + budget if cut == start else cut
                lengths.append(cut - start)
                start = cut
            current = end - start
        return lengths + ([current] if current else [])

    rng = np.random.default_rng(2)
    for _ in range(100):
        n = int(rng.integers(1, 3000))
        continuation = rng.random(n) < 0.4
        starts = np.sort(rng.choice(n, size=min(n, int(rng.integers(1, 40))), replace=False))
        budget = int(rng.integers(1, 50))
        assert segment_lengths(starts, continuation, budget) == former(starts, continuation, budget)
