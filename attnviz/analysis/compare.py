"""Twin sentences and twin models: where the focus word goes in each, and what changed.

- Twin sentences (same model): per head, the focus word's distribution over the words of each
  sentence, its top word in each, and, with candidates, the winner in each. A head "flips" when
  its winning candidate differs between the twins: it follows the meaning, not the position.
- Twin models (same sentence): per head, the Jensen-Shannon divergence between the two models'
  attention, to see what fine-tuning changed.

Works on word-level results (analysis.words.to_words), so twins whose words differ in one place
still line up. Pure NumPy on result objects.
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass

import numpy as np

from ..result import AttentionResult
from ..selection import ascii_index
from ..errors import AttnvizError
from .candidates import NO_WINNER, CandidateScores, Span, find_span, focus_span


def resolve_focus_span(result: AttentionResult, query: str | None) -> Span:
    """A unit index ("9") or a word of the sentence (whole words, any case, Korean particles
    allowed; the first occurrence); None: the first pronoun."""
    if query is None:
        from .focus import find_pronoun

        found = find_pronoun(result)
        if found is None:
            raise AttnvizError("no pronoun found in the sentence; give the focus word with --focus")
        return focus_span(result, found.index)
    text = query.strip()
    index = ascii_index(text)
    if index is not None:
        if index >= len(result.tokens):
            raise AttnvizError(
                f"focus {text[:40]} is out of range: the sentence has {len(result.tokens)} units "
                f"(0-{len(result.tokens) - 1})"
            )
        return focus_span(result, index)
    return find_span(result, text, "focus word")


def focus_rows(result: AttentionResult, focus: Span) -> np.ndarray:
    """[L, H, U] where the focus goes: the mean of its units' rows (word-level rule)."""
    return result.weights.astype(np.float64)[:, :, focus.units, :].mean(axis=2)


def jensen_shannon(p: np.ndarray, q: np.ndarray, axis: int = -1) -> np.ndarray:
    """Jensen-Shannon divergence in bits (0 = same, 1 = disjoint) along `axis`.

    Each side is normalised to sum to one first (the norm view's rows do not).
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p = p / p.sum(axis=axis, keepdims=True)
    q = q / q.sum(axis=axis, keepdims=True)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(a > 0, a * np.log2(a / m), 0.0)
        return terms.sum(axis=axis)

    return np.clip(0.5 * kl(p) + 0.5 * kl(q), 0.0, 1.0)


@dataclass(frozen=True)
class Column:
    """One column of an aligned pair of sentences: unit index in A and in B (None: absent)."""

    a: int | None
    b: int | None
    label: str


def _key(label: str) -> str:
    return unicodedata.normalize("NFC", label).casefold()


def align_units(a: AttentionResult, b: AttentionResult) -> list[Column]:
    """Line up the units of two sentences (difflib on case-folded labels).

    Equal stretches pair up; a replaced stretch of the same length pairs position by position
    ("tired/wide"); anything else gets a column of its own with the other side absent.
    """
    la, lb = a.labels, b.labels
    matcher = difflib.SequenceMatcher(a=[_key(x) for x in la], b=[_key(x) for x in lb], autojunk=False)
    columns: list[Column] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
            for i, j in zip(range(i1, i2), range(j1, j2)):
                label = la[i] if tag == "equal" else f"{la[i]}/{lb[j]}"
                columns.append(Column(i, j, label))
        else:
            columns.extend(Column(i, None, la[i]) for i in range(i1, i2))
            columns.extend(Column(None, j, lb[j]) for j in range(j1, j2))
    return columns


def aligned(rows: np.ndarray, columns: list[Column], side: str) -> np.ndarray:
    """[..., U] -> [..., len(columns)]: a side's values on the shared columns (0 where absent)."""
    out = np.zeros(rows.shape[:-1] + (len(columns),), dtype=np.float64)
    for c, col in enumerate(columns):
        index = col.a if side == "a" else col.b
        if index is not None:
            out[..., c] = rows[..., index]
    return out


@dataclass(frozen=True)
class Side:
    """One sentence (or one model) of a comparison."""

    name: str  # "A", "B", or the model's name
    result: AttentionResult  # word level
    focus: Span
    rows: np.ndarray  # [L, H, U] where the focus goes
    scores: CandidateScores | None

    def top(self, li: int, hi: int) -> tuple[int, float]:
        row = self.rows[li, hi]
        j = int(np.argmax(row))
        return j, float(row[j])


@dataclass(frozen=True)
class Comparison:
    kind: str  # "sentences" (one model, twin texts) or "models" (one text, two models)
    a: Side
    b: Side
    columns: list[Column]
    layers: list[int]
    heads: list[int]
    jsd: np.ndarray  # [L, H] divergence of the focus rows (models: of whole maps)

    @property
    def flips(self) -> np.ndarray:
        """[L, H] True where both sides have a winning candidate and they differ."""
        if self.a.scores is None or self.b.scores is None:
            return np.zeros((len(self.layers), len(self.heads)), dtype=bool)
        wa, wb = self.a.scores.winners, self.b.scores.winners
        return (wa != NO_WINNER) & (wb != NO_WINNER) & (wa != wb)

    @property
    def blind_to_the_difference(self) -> bool:
        """Twins of a causal model that are the same up to the end of the focus: the focus sees only
        itself and what comes before it, so its attention is the same in both, whatever follows."""
        return (
            self.kind == "sentences"
            and self.a.result.causal
            and self.b.result.causal
            and self.a.result.text[: self.a.focus.end] == self.b.result.text[: self.b.focus.end]
        )

    def maps(self) -> tuple[np.ndarray, np.ndarray]:
        """[L*H, C] focus maps of both sides on the shared columns (rows: layer-major heads)."""
        L, H = len(self.layers), len(self.heads)
        ma = aligned(self.a.rows, self.columns, "a").reshape(L * H, -1)
        mb = aligned(self.b.rows, self.columns, "b").reshape(L * H, -1)
        return ma, mb

    def to_dict(self) -> dict:
        flips = self.flips
        heads = []
        for li, layer in enumerate(self.layers):
            for hi, head in enumerate(self.heads):
                entry = {"layer": layer, "head": head, "jsd": float(self.jsd[li, hi])}
                for side in (self.a, self.b):
                    j, w = side.top(li, hi)
                    item = {"top": side.result.labels[j], "top_index": j, "top_weight": w}
                    if side.scores is not None:
                        won = int(side.scores.winners[li, hi])
                        item["weights"] = [float(x) for x in side.scores.weights[li, hi]]
                        item["winner"] = None if won == NO_WINNER else won
                    entry[side.name] = item
                if self.a.scores is not None:
                    entry["flip"] = bool(flips[li, hi])
                heads.append(entry)
        out = {
            "kind": self.kind,
            "sides": {
                s.name: {
                    "text": s.result.text,
                    "model": s.result.model.to_dict(),
                    "focus": {"text": s.focus.label, "start": s.focus.start, "end": s.focus.end},
                    "units": s.result.labels,
                    "candidates": [c.label for c in s.scores.candidates] if s.scores else None,
                }
                for s in (self.a, self.b)
            },
            "view": self.a.result.view,
            "layers": self.layers,
            "heads_selected": self.heads,
            "heads": heads,
        }
        if self.a.scores is not None:
            out["n_flips"] = int(flips.sum())
        if self.kind == "sentences":
            out["blind_to_the_difference"] = self.blind_to_the_difference
        return out


def _scores(result: AttentionResult, focus: Span, phrases: list[str] | None) -> CandidateScores | None:
    if not phrases:
        return None
    from .candidates import resolve_candidates, score_candidates

    return score_candidates(result, focus, resolve_candidates(result, phrases, focus))


def compare_sentences(
    a: AttentionResult, b: AttentionResult, focus: str | None, candidates: list[str] | None = None
) -> Comparison:
    """Same model, twin sentences. `a` and `b` should be word level."""
    if a.layers != b.layers or a.heads != b.heads:
        raise ValueError("both results must hold the same layers and heads")
    sides = []
    for name, result in (("A", a), ("B", b)):
        try:
            span = resolve_focus_span(result, focus)
            sides.append(Side(name, result, span, focus_rows(result, span), _scores(result, span, candidates)))
        except AttnvizError as exc:
            raise AttnvizError(f"sentence {name}: {exc}") from None
    columns = align_units(a, b)
    ra = aligned(sides[0].rows, columns, "a")
    rb = aligned(sides[1].rows, columns, "b")
    return Comparison("sentences", sides[0], sides[1], columns, list(a.layers), list(a.heads), jensen_shannon(ra, rb))


def compare_models(
    a: AttentionResult,
    b: AttentionResult,
    focus: str | None,
    candidates: list[str] | None = None,
    names: tuple[str, str] = ("A", "B"),
) -> Comparison:
    """One sentence, two models of the same shape. Per head JSD: of the focus rows with a focus,
    else the mean over all rows of the two maps."""
    if a.text != b.text:
        raise ValueError("compare_models needs the same text on both sides")
    if len(a.layers) != len(b.layers) or len(a.heads) != len(b.heads):
        raise AttnvizError(
            f"the two models have different shapes ({len(a.layers)}x{len(a.heads)} vs "
            f"{len(b.layers)}x{len(b.heads)} layers x heads selected); compare models of "
            "the same architecture (e.g. a model and its fine-tuned version)"
        )
    real_a = [o for o, s in zip(a.offsets, a.special) if not s]
    real_b = [o for o, s in zip(b.offsets, b.special) if not s]
    if real_a != real_b or a.special != b.special:
        raise AttnvizError(
            "the two models split the sentence into different words or special tokens; "
            "compare models that share a tokenizer"
        )
    columns = [Column(i, i, label) for i, label in enumerate(a.labels)]
    sides = []
    for name, result in zip(names, (a, b)):
        span = resolve_focus_span(result, focus) if focus is not None or candidates else None
        rows = focus_rows(result, span) if span is not None else result.weights.astype(np.float64).mean(axis=2)
        sides.append(
            Side(
                name,
                result,
                span or Span("", 0, 0, []),
                rows,
                _scores(result, span, candidates) if span is not None else None,
            )
        )
    if focus is not None or candidates:
        jsd = jensen_shannon(sides[0].rows, sides[1].rows)
    else:
        jsd = jensen_shannon(a.weights, b.weights).mean(axis=-1)  # mean over query rows
    return Comparison("models", sides[0], sides[1], columns, list(a.layers), list(a.heads), jsd)


__all__ = [
    "Comparison",
    "Column",
    "Side",
    "align_units",
    "aligned",
    "compare_models",
    "compare_sentences",
    "focus_rows",
    "jensen_shannon",
    "resolve_focus_span",
]
