"""What the explorer shows, as AttentionResult objects: the sentence, the view, word level, sinks,
the current layer and head, the focus unit. No Textual here and no attention maths: the results
come from attnviz.pipeline, word level from analysis.words, rankings from analysis.focus.

Positions: `layer_pos`/`head_pos` index the current result's `layers`/`heads` (a rollout result
has one "head", -1, per layer); `focus` indexes its units (tokens, or words at word level).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..analysis.focus import ENGLISH_PRONOUNS, Focus, HeadTargets, find_pronoun, resolve_focus, top_targets
from ..analysis.words import to_words, word_groups
from ..config import VIEWS  # `v` cycles every view `show --view` offers
from ..errors import AttnvizError
from ..result import AttentionResult

# Views with one map per layer (head index -1): rollout mixes layers, value zeroing all heads.
MIXED_VIEWS = ("rollout", "value-zeroing")


@dataclass
class Options:
    """The flags the explorer starts with (as `show` takes them)."""

    view: str = "attention"
    words: bool = False
    sinks: bool = False  # True: sink/special tokens out of rankings and the colour scale
    focus: str | None = None  # a word or token index, for every sentence until changed
    candidates: list[str] | None = None
    top: int = 3
    truncate: bool = False
    layer: int = 0
    head: int = 0


def compute(loaded, text: str, view: str, truncate: bool) -> AttentionResult:
    """The token-level result of `text` in `view` (every layer and head): the one call into the
    pipeline, made from a worker thread."""
    from ..pipeline import run_attention

    if not text.strip():
        raise AttnvizError("the sentence is empty; type one and press Enter")
    try:
        return run_attention(loaded, text, truncate=truncate, view=view)
    except AttnvizError as exc:  # the command-line advice means nothing on the explorer's screen
        raise AttnvizError(str(exc).replace("; shorten it or pass --truncate", "; shorten it")) from None


@dataclass
class Session:
    options: Options = field(default_factory=Options)
    text: str | None = None
    pronoun_heads: object | None = None  # pronoun_heads.PronounHeads, when known
    layer_pos: int = 0
    head_pos: int = 0
    focus: int = 0
    focus_note: str | None = None
    _head_before_rollout: int = 0
    _tokens: dict = field(default_factory=dict)  # view -> token-level result of `text`
    _words: dict = field(default_factory=dict)  # view -> its word-level result

    # -- the result on screen ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.text is not None and self.options.view in self._tokens

    def token_result(self, view: str | None = None) -> AttentionResult:
        return self._tokens[view or self.options.view]

    def result(self) -> AttentionResult:
        """The current view, at word level if asked, with sinks left out of the scale if asked."""
        view = self.options.view
        base = self._tokens[view]
        if self.options.words:
            if view not in self._words:
                self._words[view] = to_words(base)
            base = self._words[view]
        return base.without_sinks() if self.options.sinks else base

    @property
    def layer(self) -> int:
        return self.result().layers[self.layer_pos]

    @property
    def head(self) -> int:
        return self.result().heads[self.head_pos]

    def token_results(self) -> dict[str, AttentionResult]:
        """view -> token-level result of the sentence, for every view computed so far."""
        return dict(self._tokens)

    def has_view(self, view: str) -> bool:
        return view in self._tokens

    # -- changes ------------------------------------------------------------------------------

    def set_sentence(self, text: str, result: AttentionResult) -> list[str]:
        """A new sentence and its result in the current view; returns notes (e.g. a bad focus)."""
        self.text = text
        self._tokens = {result.view: result}
        self._words = {}
        heads = self.result().heads
        self.layer_pos = min(max(self.layer_pos, 0), len(self.result().layers) - 1)
        self.head_pos = min(max(self.head_pos, 0), len(heads) - 1)
        return self._default_focus()

    def add_view(self, result: AttentionResult) -> None:
        """Another view of the same sentence (computed by a worker)."""
        if result.text == self.text:
            self._tokens[result.view] = result

    def _default_focus(self) -> list[str]:
        result = self.result()
        notes = []
        self.focus_note = None
        if self.options.focus is not None:
            try:
                found = resolve_focus(result, self.options.focus)
                self.focus, self.focus_note = found.index, found.note
                return notes
            except AttnvizError as exc:
                notes.append(str(exc))
        pronoun = find_pronoun(result)
        if pronoun is not None:
            self.focus = pronoun.index
        else:
            real = [i for i, s in enumerate(result.special) if not s]
            self.focus = real[0] if real else 0
        return notes

    def focus_on(self, query: str) -> None:
        """A typed focus (a word or a token index) for this sentence; AttnvizError when it is not
        in it. The next sentence starts again from --focus or its first pronoun."""
        found = resolve_focus(self.result(), query)
        self.focus, self.focus_note = found.index, found.note

    def set_focus(self, index: int) -> None:
        units = len(self.result().tokens)
        if not 0 <= index < units:
            raise AttnvizError(
                f"focus {index} is out of range: the sentence has {units} {self.result().unit_name}s (0-{units - 1})"
            )
        self.focus, self.focus_note = index, None

    def next_focus(self, step: int = 1) -> None:
        """Tab: the next unit that is not a special token (wrapping)."""
        result = self.result()
        real = [i for i, s in enumerate(result.special) if not s] or list(range(len(result.tokens)))
        after = [i for i in real if (i - self.focus) * step > 0]
        if step > 0:
            self.set_focus(after[0] if after else real[0])
        else:
            self.set_focus(after[-1] if after else real[-1])

    def move_head(self, step: int) -> None:
        """Left/right through the heads; past the last head of a layer into the next layer, so
        the arrow keys alone walk every head of the model."""
        result = self.result()
        H, L = len(result.heads), len(result.layers)
        flat = min(max(self.layer_pos * H + self.head_pos + step, 0), L * H - 1)
        self.layer_pos, self.head_pos = divmod(flat, H)

    def move_layer(self, step: int) -> None:
        self.layer_pos = min(max(self.layer_pos + step, 0), len(self.result().layers) - 1)

    def set_head(self, head_pos: int) -> None:
        self.head_pos = min(max(head_pos, 0), len(self.result().heads) - 1)

    def toggle_words(self) -> None:
        """Word level on/off; the focus stays on the same word (its first piece at token level)."""
        groups = word_groups(self.token_result())
        if self.options.words:
            self.focus = groups[self.focus][0]
        else:
            self.focus = next(u for u, g in enumerate(groups) if self.focus in g)
        self.options.words = not self.options.words
        self.focus_note = None

    def toggle_sinks(self) -> None:
        self.options.sinks = not self.options.sinks

    def next_view(self) -> str:
        return VIEWS[(VIEWS.index(self.options.view) + 1) % len(VIEWS)]

    def set_view(self, view: str) -> None:
        """Switch to a computed view; the head position is remembered across a mixed view's single map."""
        if view in MIXED_VIEWS and self.options.view not in MIXED_VIEWS:
            self._head_before_rollout = self.head_pos
        elif view not in MIXED_VIEWS and self.options.view in MIXED_VIEWS:
            self.head_pos = self._head_before_rollout
        self.options.view = view
        self.set_head(self.head_pos)

    # -- questions for the summary ----------------------------------------------------------------

    def focus_label(self) -> Focus:
        result = self.result()
        return Focus(self.focus, result.labels[self.focus], self.focus_note)

    def targets(self, result: AttentionResult | None = None, k: int | None = None) -> list[HeadTargets]:
        """Per head, where the focus goes, strongest first; excluded (sink) keys left out."""
        result = result or self.result()
        k = k or self.options.top
        out = []
        for row in top_targets(result, self.focus, k + len(result.excluded)):
            kept = [(j, w) for j, w in row.targets if j not in result.excluded][:k]
            out.append(HeadTargets(row.layer, row.head, kept))
        return out

    def layer_targets(self) -> list[HeadTargets]:
        result = self.result()
        return self.targets(result.select([self.layer], None))

    def winners(self, n: int = 3) -> tuple[int, list[tuple[int, int]]]:
        """Over every head of the model: how many heads, and the focus's most frequent top targets."""
        rows = self.targets(k=1)
        counts = Counter(row.targets[0][0] for row in rows if row.targets)
        return len(rows), counts.most_common(n)

    def pronoun_marks(self) -> dict[tuple[int, int], str]:
        """{(layer, head): "★ 94%"} for the known pronoun heads, when the focus is an English
        pronoun (the probe set is English), as `show` marks them."""
        known = self.pronoun_heads
        if known is None or self.focus_label().label.casefold() not in ENGLISH_PRONOUNS:
            return {}
        return {(h["layer"], h["head"]): f"★ {100 * h['accuracy']:.0f}%" for h in known.resolving()}

    def candidate_scores(self):
        """analysis.candidates.CandidateScores of the --candidates over every head, or None."""
        if not self.options.candidates:
            return None
        from ..analysis.candidates import focus_span, resolve_candidates, score_candidates

        result = self.result()
        span = focus_span(result, self.focus)
        return score_candidates(result, span, resolve_candidates(result, self.options.candidates, span))
