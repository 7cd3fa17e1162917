"""Sentence-aware segments: a document's tokens cut into pieces of at most ``budget`` tokens.

A segment "is typically a sentence or a paragraph" (SPEC §1). We tokenize the whole document
once, find sentence starts in the text, and pack whole sentences greedily into segments of at
most ``budget`` tokens (default (512 - 3) // 2 = 254, so that two segments fit one input with
[CLS] and two [SEP]). A sentence longer than the budget is cut, at a word start where possible.
Concatenating a document's segments gives back exactly its token sequence: nothing is lost.

Sentence starts come from a deliberately simple rule, not a trained splitter: every line start,
and every position after ``.``, ``!`` or ``?`` (plus closing quotes/brackets) and whitespace that
is not followed by a lowercase letter. Boundaries only matter where a segment is cut, so an
occasional extra boundary after an abbreviation ("Dr. Smith") costs little, and the rule is fast,
deterministic and language-light. (We tried blingfire: it merges paragraphs across blank lines.)
"""

from __future__ import annotations

import re

import numpy as np

DEFAULT_MAX_LENGTH = 512
DEFAULT_BUDGET = (DEFAULT_MAX_LENGTH - 3) // 2

_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*\s+(?![a-z])")
_LINE_START = re.compile(r"\n\s*(?=\S)")


def sentence_starts(text: str) -> np.ndarray:
    """Character offsets where sentences start, sorted, always including 0. Shape (n_sentences,)."""
    starts = [0]
    starts.extend(m.end() for m in _SENTENCE_END.finditer(text))
    starts.extend(m.end() for m in _LINE_START.finditer(text))
    return np.unique(np.asarray(starts, dtype=np.int64))


def sentence_token_starts(encoding, text: str) -> np.ndarray:
    """Token indices where sentences of ``text`` start, from a ``tokenizers.Encoding`` of it.

    Asks the encoding for the token at each sentence's first character (far fewer calls than
    converting every token's offsets); a character the normaliser removed maps to no token,
    and then the sentence starts at the next token that does map.
    """
    starts = []
    for char in sentence_starts(text).tolist():
        token = encoding.char_to_token(char)
        while token is None and char + 1 < len(text):
            char += 1
            token = encoding.char_to_token(char)
        if token is not None:
            starts.append(token)
    return np.asarray(starts, dtype=np.int64)


def segment_lengths(sentence_tokens: np.ndarray, continuation: np.ndarray, budget: int = DEFAULT_BUDGET) -> list[int]:
    """Token counts of consecutive segments covering all of a document's tokens.

    ``sentence_tokens``: token indices where sentences start (from ``sentence_token_starts``);
    ``continuation`` (n_tokens,): True where a token continues a word. The lengths sum to
    n_tokens and each is at most ``budget``; whole sentences are packed greedily.
    """
    if budget < 1:
        raise ValueError(f"the segment budget must be at least 1 token, got {budget}")
    n = len(continuation)
    if n == 0:
        return []
    bounds = np.unique(np.concatenate([[0], sentence_tokens[sentence_tokens < n], [n]]))
    lengths: list[int] = []
    current = 0
    for length in np.diff(bounds).tolist():
        if current + length <= budget:
            current += length
            continue
        if current:
            lengths.append(current)
        current = _split_long(sum(lengths), length, continuation, budget, lengths)
    if current:
        lengths.append(current)
    return lengths


def _split_long(start: int, length: int, continuation: np.ndarray, budget: int, lengths: list[int]) -> int:
    """Cut a sentence of ``length`` tokens at ``start`` into pieces of at most ``budget`` tokens.

    Full pieces are appended to ``lengths``; the last, partial piece is returned so that
    following sentences can still be packed after it. Each cut is moved back to the nearest
    word start within the piece, so no word is split across two segments unless a single word
    is longer than the budget.
    """
    end = start + length
    while end - start > budget:
        cut = start + budget
        while cut > start and continuation[cut]:
            cut -= 1
        if cut == start:  # one word longer than the whole budget
            cut = start + budget
        lengths.append(cut - start)
        start = cut
    return end - start
