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

import itertools
import re

import numpy as np

DEFAULT_MAX_LENGTH = 512
DEFAULT_BUDGET = (DEFAULT_MAX_LENGTH - 3) // 2

# up to this many sentences, asking the encoding per sentence is cheaper than converting its offsets
FEW_SENTENCES = 256

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

    The token at each sentence's first character, as ``encoding.char_to_token`` gives it; a
    character the normaliser removed maps to no token, and then the sentence starts at the next
    token that does map. ``char_to_token`` scans the encoding from its start on every call, so
    one call per sentence is quadratic in a long document: a document of more than
    ``FEW_SENTENCES`` sentences (or one whose sentence starts a token does not cover) is mapped
    in one pass over the encoding's offsets instead (:func:`char_starts_to_tokens`), the same
    answer in time linear in its length.
    """
    chars = sentence_starts(text)
    chars = chars[chars < len(text)]  # a start at the very end maps to no token
    if len(chars) <= FEW_SENTENCES:
        found = [encoding.char_to_token(char) for char in chars.tolist()]
        if None not in found:
            return np.asarray(found, dtype=np.int64)
    return char_starts_to_tokens(chars, encoding_offsets(encoding), len(text))


def encoding_offsets(encoding) -> np.ndarray:
    """A ``tokenizers.Encoding``'s character offsets as an int64 array of shape (n_tokens, 2)."""
    offsets = encoding.offsets
    flat = np.fromiter(itertools.chain.from_iterable(offsets), dtype=np.int64, count=2 * len(offsets))
    return flat.reshape(-1, 2)


def sentence_token_starts_from_offsets(text: str, offsets: np.ndarray) -> np.ndarray:
    """:func:`sentence_token_starts` from the tokens' character offsets (n_tokens, 2), ``[start, end)``."""
    return char_starts_to_tokens(sentence_starts(text), offsets, len(text))


def char_starts_to_tokens(chars: np.ndarray, offsets: np.ndarray, text_length: int) -> np.ndarray:
    """For each character position in ``chars`` (sorted), the first token whose offsets contain it;
    for a position no token contains, the first token containing the next position that one
    does (none past the text's end: such a position is dropped). Exactly what a loop of
    ``Encoding.char_to_token`` calls gives, in O((n_tokens + n_chars) log n_tokens).

    Tokens of tokenizers' encodings come in text order: starts and ends never decrease. Then the
    answer for a position ``c`` is the first token (of those that cover any character) that ends
    after ``c``: if it starts after ``c``, no token covers ``c`` nor anything before its start.
    Offsets out of that order (a tokenizer that reorders) take an exact path over a table of
    every character's first token.
    """
    chars = np.asarray(chars, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    starts, ends = offsets[:, 0], offsets[:, 1]
    wide = ends > starts  # a zero-width token contains no character
    covering = None if wide.all() else np.flatnonzero(wide)  # None: every token
    if covering is not None:
        starts, ends = starts[covering], ends[covering]
    del wide
    if len(starts) == 0 or len(chars) == 0:
        return np.zeros(0, dtype=np.int64)
    if (starts[1:] >= starts[:-1]).all() and (ends[1:] >= ends[:-1]).all():
        found = np.searchsorted(ends, chars, side="right")
        keep = found < len(ends)
        chars, found = chars[keep], found[keep]
        # a position no token contains moves to the next token's start, which must be in the text
        found = found[(starts[found] <= chars) | (starts[found] < text_length)]
        return found if covering is None else covering[found]
    if covering is None:
        covering = np.arange(len(starts))
    return _char_starts_to_tokens_unordered(chars, starts, ends, covering, text_length)


def _char_starts_to_tokens_unordered(chars, starts, ends, covering, text_length: int) -> np.ndarray:
    size = max(text_length, int(ends.max()))
    first = np.full(size, -1, dtype=np.int64)  # first[p]: the first token containing character p
    for i in range(len(covering) - 1, -1, -1):  # later tokens first, so that earlier ones win
        first[starts[i]:ends[i]] = covering[i]
    direct = np.full(len(chars), -1, dtype=np.int64)
    inside = chars < size
    direct[inside] = first[chars[inside]]
    # else the next character that a token contains, before the text's end
    reachable = np.flatnonzero(first[:text_length] >= 0)
    following = np.full(len(chars), -1, dtype=np.int64)
    if len(reachable):
        at = np.searchsorted(reachable, chars, side="right")
        ok = at < len(reachable)
        following[ok] = first[reachable[at[ok]]]
    found = np.where(direct >= 0, direct, following)
    return found[found >= 0]


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
    done = 0  # tokens in ``lengths`` so far
    for length in np.diff(bounds).tolist():
        if current + length <= budget:
            current += length
            continue
        if current:
            lengths.append(current)
            done += current
        current = _split_long(done, length, continuation, budget, lengths)
        done += length - current
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
