"""Candidates of an ambiguous word: how much attention the focus word gives to each of them, per head.

Spans of text map onto units (tokens or words) of a result through character offsets:
- a string ("animal", "the brown suitcase") matches whole words case-insensitively; a multi-word
  string uses its last word (the head noun); a Korean noun also matches with a particle attached
  ("동물" matches "동물은"). The span becomes every unit of the word(s) it touches.
- a pinned span {"text", "start", "end"} covers every unit whose offsets fall inside it, even when
  that is several words.

The weight from span F to span C in a head follows the word-level rule (Clark et al. 2019):
mean over F's units of the sum over C's units. On a word-level result with one unit per span this
is simply the cell of the matrix. Pure NumPy on the result object.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from ..result import AttentionResult, printable
from ..errors import AttnvizError
from .focus import KOREAN_PARTICLES

NO_WINNER = -1
_PARTICLES = "|".join(re.escape(p) for p in sorted(KOREAN_PARTICLES - {""}, key=len, reverse=True))


@dataclass(frozen=True)
class Span:
    label: str  # the text as written in the sentence
    start: int  # character span in the text
    end: int
    units: list[int]  # unit (token or word) indices of the result, ascending
    note: str | None = None


@dataclass(frozen=True)
class CandidateScores:
    """Per head, the weight from the focus span to each candidate span."""

    focus: Span
    candidates: list[Span]
    weights: np.ndarray  # float64 [len(layers), len(heads), C]
    layers: list[int]
    heads: list[int]
    notes: list[str] = field(default_factory=list)

    @property
    def winners(self) -> np.ndarray:
        """[L, H] index of the candidate with the most weight, NO_WINNER (-1) on an exact tie."""
        return winners(self.weights)

    def counts(self) -> list[int]:
        """How many heads each candidate wins."""
        won = self.winners
        return [int((won == c).sum()) for c in range(len(self.candidates))]

    def ties(self) -> int:
        return int((self.winners == NO_WINNER).sum())

    def to_dict(self) -> dict:
        won = self.winners
        return {
            "focus": _span_dict(self.focus),
            "candidates": [_span_dict(c) for c in self.candidates],
            "heads": [
                {
                    "layer": layer,
                    "head": head,
                    "weights": [float(w) for w in self.weights[li, hi]],
                    "winner": None if won[li, hi] == NO_WINNER else int(won[li, hi]),
                }
                for li, layer in enumerate(self.layers)
                for hi, head in enumerate(self.heads)
            ],
            "wins": self.counts(),
            "ties": self.ties(),
            "notes": self.notes,
        }


def _span_dict(span: Span) -> dict:
    return {"text": span.label, "start": span.start, "end": span.end, "units": span.units}


def winners(weights: np.ndarray) -> np.ndarray:
    """[..., C] -> [...] argmax over the last axis, NO_WINNER where the maximum is shared."""
    best = weights.argmax(axis=-1)
    top = weights.max(axis=-1, keepdims=True)
    shared = (weights == top).sum(axis=-1) > 1
    return np.where(shared, NO_WINNER, best)


def span_weights(weights: np.ndarray, source: list[int], target: list[int]) -> np.ndarray:
    """weights [..., T, T] -> [...]: mean over the source rows of the sum over the target columns."""
    return weights[..., source, :][..., target].sum(axis=-1).mean(axis=-1)


def occurrences(text: str, word: str) -> list[tuple[int, int]]:
    """Whole-word, case-insensitive occurrences of `word` in `text` as (start, end) spans.

    A word ending in a Hangul syllable may carry a particle ("동물" in "동물은"); the span then
    includes the particle, like the word the tokenizer sees.
    """
    word = unicodedata.normalize("NFC", word.strip())
    if not word:
        return []
    hangul = "\uac00" <= word[-1] <= "\ud7a3"
    pattern = rf"(?<!\w){re.escape(word)}" + (rf"(?:{_PARTICLES})?" if hangul else "") + r"(?!\w)"
    folded = unicodedata.normalize("NFC", text)
    if len(folded) != len(text):  # offsets must index the original text; do not normalise then
        folded = text
    return [(m.start(), m.end()) for m in re.finditer(pattern, folded, flags=re.IGNORECASE)]


def _real_units(result: AttentionResult) -> list[int]:
    return [i for i, (s, e) in enumerate(result.offsets) if not result.special[i] and e > s]


def units_touching(result: AttentionResult, start: int, end: int) -> list[int]:
    """Units of every word that overlaps [start, end): whole words, all their pieces."""
    touched = [i for i in _real_units(result) if result.offsets[i][0] < end and result.offsets[i][1] > start]
    words = {result.word_ids[i] for i in touched}
    return [i for i in _real_units(result) if result.word_ids[i] in words] if touched else []


def units_inside(result: AttentionResult, start: int, end: int) -> list[int]:
    """Units whose offsets fall inside [start, end); if none does (a span cutting through a
    token), the units that overlap it."""
    real = _real_units(result)
    inside = [i for i in real if start <= result.offsets[i][0] and result.offsets[i][1] <= end]
    return inside or [i for i in real if result.offsets[i][0] < end and result.offsets[i][1] > start]


def head_word(phrase: str) -> tuple[str, str | None]:
    """The last word of a multi-word phrase, and a note saying so (None for a single word)."""
    words = phrase.split()
    if len(words) <= 1:
        return phrase.strip(), None
    return words[-1], f"candidate {phrase!r}: using its last word {words[-1]!r} (the head noun)"


def find_span(result: AttentionResult, phrase: str, what: str = "candidate", before: int | None = None) -> Span:
    """Match `phrase` (a string) in the sentence and return its span.

    Which occurrence: with `before` (a character position, the pronoun's start), the one nearest
    before it, else the first; without, the first. Raises AttnvizError when it is not there.
    """
    word, note = head_word(phrase)
    if not word:
        raise AttnvizError(f"a {what} is empty; give words of the sentence separated by commas")
    found = [(s, e) for s, e in occurrences(result.text, word) if units_touching(result, s, e)]
    if not found:
        raise AttnvizError(
            f"{what} {phrase!r} is not a word of the sentence"
            + (f" (looked for {word!r})" if note else "")
            + "; give a word that occurs in it (whole words, any case)"
        )
    start, end = found[0]
    if before is not None:
        earlier = [(s, e) for s, e in found if e <= before]
        if earlier:
            start, end = earlier[-1]
    if len(found) > 1:
        extra = f"{what} {word!r} occurs {len(found)} times; using the one at characters {start}-{end}" + (
            " (nearest before the focus)" if before is not None and end <= before else ""
        )
        note = f"{note}; {extra}" if note else extra
    return Span(result.text[start:end], start, end, units_touching(result, start, end), note)


def pinned_span(result: AttentionResult, label: str, start: int, end: int, what: str = "candidate") -> Span:
    """A span given by character offsets; its text must match the sentence there."""
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool) or isinstance(end, bool):
        raise AttnvizError(f"{what} span offsets must be integers")
    if not 0 <= start < end <= len(result.text):
        raise AttnvizError(f"{what} span {start}-{end} is outside the text (0-{len(result.text)})")
    if result.text[start:end] != label:
        raise AttnvizError(f"{what} span {start}-{end} is {result.text[start:end]!r} in the text, not {label!r}")
    units = units_inside(result, start, end)
    if not units:
        raise AttnvizError(f"{what} {label!r} at {start}-{end} was cut off (--truncate) or has no tokens")
    return Span(label, start, end, units)


def focus_span(result: AttentionResult, index: int) -> Span:
    """The whole word containing unit `index` (a special token stays alone)."""
    if result.special[index] or result.word_ids[index] is None:
        units = [index]
    else:
        units = [i for i in _real_units(result) if result.word_ids[i] == result.word_ids[index]] or [index]
    start, end = result.offsets[units[0]][0], result.offsets[units[-1]][1]
    label = result.text[start:end] if end > start else result.tokens[index]
    return Span(label, start, end, units)


def parse_candidates(spec: str) -> list[str]:
    """ "animal, street" -> ["animal", "street"]; at least two, no empty ones."""
    parts = [p.strip() for p in spec.split(",")]
    if any(not p for p in parts) or len(parts) < 2:
        raise AttnvizError(
            f"invalid --candidates {spec!r}: give at least two words of the sentence "
            'separated by commas, e.g. --candidates "animal,street"'
        )
    return parts


def resolve_candidates(result: AttentionResult, phrases: list[str], focus: Span) -> list[Span]:
    """Spans of the candidate phrases (each its occurrence nearest before the focus, else its first)."""
    spans = [find_span(result, p, "candidate", before=focus.start) for p in phrases]
    seen: dict[tuple[int, ...], str] = {}
    for phrase, span in zip(phrases, spans):
        key = tuple(span.units)
        if key in seen:
            raise AttnvizError(
                f"candidates {seen[key]!r} and {phrase!r} are the same word of the sentence; give different words"
            )
        if set(span.units) & set(focus.units):
            raise AttnvizError(f"candidate {phrase!r} is the focus word itself; give other words")
        check_candidate(result, focus, span, f"candidate {phrase!r}")
        seen[key] = phrase
    return spans


def check_candidate(result: AttentionResult, focus: Span, candidate: Span, what: str) -> None:
    """Refuse a candidate the focus cannot attend to, or that the result leaves out of rankings.

    In a causal model (a decoder) a token sees only itself and earlier tokens, so a candidate
    after the focus would score 0 in every head: an antecedent precedes its pronoun.
    """
    if result.causal and max(candidate.units) > min(focus.units):
        raise AttnvizError(
            f"{what} comes after the focus {printable(focus.label)!r}: in a causal model a token sees only "
            "itself and the words before it, so it cannot attend to a later word; an antecedent precedes "
            "the pronoun, give candidates that come before the focus"
        )
    sinks = sorted(set(candidate.units) & set(result.excluded))
    if sinks:
        raise AttnvizError(
            f"{what} is {result.unit_name} {sinks[0]}, an attention sink left out of the rankings "
            "(in a causal model the first token soaks up attention); give another candidate, or keep the "
            "sinks in (without --exclude-sinks)"
        )


def score_candidates(result: AttentionResult, focus: Span, candidates: list[Span]) -> CandidateScores:
    """The weight from the focus to each candidate in every head of the result."""
    weights = result.weights.astype(np.float64)  # [L, H, T, T]
    scores = np.stack([span_weights(weights, focus.units, c.units) for c in candidates], axis=-1)  # [L, H, C]
    notes = [s.note for s in [focus, *candidates] if s.note]
    return CandidateScores(focus, candidates, scores, list(result.layers), list(result.heads), notes)


def candidate_label(span: Span) -> str:
    return printable(span.label)
