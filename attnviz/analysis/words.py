"""Word-level attention: merge subword pieces back into the words the user wrote.

Follows Clark et al. 2019 ("What Does BERT Look At?"): attention *to* a split word is the sum
of the attention to its pieces, attention *from* a split word is the mean of its pieces' rows.
Summing columns keeps every row's total, and averaging rows of equal total keeps it too, so rows
of an attention view still sum to one. Special tokens ([CLS], [SEP], <s>) stay units of their own.

Words come from the tokenizer's word ids (one per pre-tokenizer word) and offsets, never from
re-splitting strings. Pure NumPy on the result object.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..result import AttentionResult


def is_word_level(result: AttentionResult) -> bool:
    return result.units == "words"


def word_groups(result: AttentionResult) -> list[list[int]]:
    """Token indices of each unit, in order: a special token alone, or the pieces of one word.

    Pieces of a word are consecutive tokens with the same word id; a token without a word id
    (a special token) is a unit of its own.
    """
    groups: list[list[int]] = []
    previous = None
    for i, (word, special) in enumerate(zip(result.word_ids, result.special)):
        if special or word is None or word != previous or not groups:
            groups.append([i])
        else:
            groups[-1].append(i)
        previous = None if special else word
    return groups


def merge_matrices(groups: list[list[int]], n_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """The two linear maps of the aggregation: words = rows @ weights @ cols.

    rows [U, T]: 1/|g| on a word's pieces (mean over the query pieces);
    cols [T, U]: 1 on a word's pieces (sum over the key pieces).
    """
    rows = np.zeros((len(groups), n_tokens), dtype=np.float64)
    cols = np.zeros((n_tokens, len(groups)), dtype=np.float64)
    for u, group in enumerate(groups):
        rows[u, group] = 1.0 / len(group)
        cols[group, u] = 1.0
    return rows, cols


def to_words(result: AttentionResult) -> AttentionResult:
    """A new result whose units are words (and special tokens): `units` becomes "words".

    weights[l, h] becomes rows @ weights[l, h] @ cols, computed in float64 and stored as float32.
    A result that is already word-level is returned unchanged.
    """
    if is_word_level(result):
        return result
    groups = word_groups(result)
    rows, cols = merge_matrices(groups, len(result.tokens))
    # Two matrix products, not one three-operand einsum: einsum's unoptimised loop took 17 s for
    # MiniLM at 128 tokens, this takes milliseconds.
    merged = rows @ result.weights.astype(np.float64) @ cols  # [L, H, U, U]
    tokens, offsets, word_ids, special = [], [], [], []
    for group in groups:
        first, last = group[0], group[-1]
        is_special = result.special[first]
        start, end = result.offsets[first][0], result.offsets[last][1]
        if is_special or end <= start:
            tokens.append(result.tokens[first] if len(group) == 1 else "".join(result.tokens[i] for i in group))
        else:
            tokens.append(result.text[start:end])
        offsets.append((start, end))
        word_ids.append(None if is_special else result.word_ids[first])
        special.append(is_special)
    # Excluded tokens (sinks) exclude the unit that holds them. Causality needs no care: a word's
    # pieces see only earlier tokens, which belong to it or to earlier words, so the merged
    # matrix stays lower-triangular and result.causal still says so.
    excluded = tuple(u for u, group in enumerate(groups) if set(group) & set(result.excluded))
    split = sum(1 for g in groups if len(g) > 1)
    notes = list(result.notes)
    notes.append(
        f"Word level: {len(result.tokens)} tokens merged into {len(groups)} units "
        f"({split} split word{'s' if split != 1 else ''}); attention to a word is the sum over "
        "its pieces, from a word the mean over its pieces."
    )
    return replace(
        result,
        tokens=tokens,
        offsets=offsets,
        word_ids=word_ids,
        special=special,
        weights=merged.astype(np.float32),
        units="words",
        excluded=excluded,
        notes=notes,
        focus_rows=None,  # token rows; the word level merges whole maps
        focus_index=None,
        focus_layers=[],
        focus_heads=[],
    )
