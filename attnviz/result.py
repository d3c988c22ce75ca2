"""The attention result: the one object that flows from the encoder to analysis and renderers.

Holds NumPy arrays only (no torch), so renderers, analysis and exports stay light.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field, replace

import numpy as np

from .config import EncoderConfig
from .masks import BlockAxes, MaskRule

# An encoder-decoder model's three kinds of attention (AttentionResult.attention), as the tables
# and the page name them (images use shorter titles: render/image/layouts.KIND_TITLES).
KIND_NAMES = {
    "encoder": "encoder self-attention (source → source)",
    "decoder": "decoder self-attention (target → target, causal)",
    "cross": "cross-attention: target → source",
}


@dataclass(frozen=True)
class ModelInfo:
    """What produced the weights, for headers, titles and JSON."""

    source: str  # "random", a checkpoint path, or a named model
    config: EncoderConfig
    seed: int | None = None  # random models only
    learned: bool = False  # False: random weights, patterns mean nothing
    tokenizer: str = ""
    kind: str = "random"  # "random", "attnviz", or a family such as "bert"

    @property
    def name(self) -> str:
        return f"random (seed {self.seed})" if self.kind == "random" else self.source

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "kind": self.kind,
            "seed": self.seed,
            "learned": self.learned,
            "tokenizer": self.tokenizer,
            "config": self.config.to_dict(),
        }


@dataclass(frozen=True)
class PooledMaps:
    """Maps pooled while they streamed past, kept instead of the full maps (a long text drawn as the
    terminal overview: analysis/streamed_pooling.py). Equal to pooling the full maps with
    analysis.pooling.pool_map(weights, skipped cells, ...), block for block.

    values[i, j] pools model layer layers[i], head heads[j]; row block r covers query tokens
    row_edges[r]:row_edges[r + 1], column block c key tokens col_edges[c]:col_edges[c + 1]."""

    layers: list[int]
    heads: list[int]
    values: np.ndarray  # float32 [len(layers), len(heads), R, C]: the max or mean (`how`) of each block's kept cells
    empty: np.ndarray  # bool [len(layers), R, C]: blocks with no kept cell (all masked or excluded), values 0 there
    row_edges: np.ndarray  # int64 [R + 1]
    col_edges: np.ndarray  # int64 [C + 1]
    how: str  # "max" or "mean"
    excluded: tuple[int, ...] = ()  # key tokens left out of the pooling (sinks), as AttentionResult.excluded


@dataclass(frozen=True)
class AttentionResult:
    """Attention of one text: weights[i, j] is layer layers[i], head heads[j], shape [T, T].

    Rows are queries, columns keys; every row sums to one.
    """

    text: str
    tokens: list[str]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    special: list[bool]
    weights: np.ndarray  # float32 [len(layers), len(heads), T, T]
    layers: list[int]
    heads: list[int]
    model: ModelInfo
    truncated: bool = False
    view: str = "attention"  # "attention", "rollout" (one map per layer, head -1) or "norm"
    units: str = "tokens"  # "tokens", or "words" after analysis.words.to_words
    # Key tokens left out of rankings (focus, candidates) and colour scales, e.g. the attention
    # sinks; the weights themselves stay whole. Set by `without_sinks`, said in headers.
    excluded: tuple[int, ...] = ()
    notes: list[str] = field(default_factory=list)
    # Long texts keep the full maps of the heads shown only (`weights`); the focus summary, which
    # covers every head, reads the focus token's row of each, kept while the maps streamed past:
    # focus_rows[i, j] is the row of token `focus_index` in layer focus_layers[i], head
    # focus_heads[j], float32 [len(focus_layers), len(focus_heads), T]. None: read `weights`.
    focus_rows: np.ndarray | None = None
    focus_index: int | None = None
    focus_layers: list[int] = field(default_factory=list)
    focus_heads: list[int] = field(default_factory=list)
    # `inspect` on a long text keeps no map at all: each head's statistics are summed while the
    # maps stream past, block of query rows by block (analysis.heads.StreamedHeadStats), and kept
    # as head_stats, an analysis.heads.RowSums of shape [len(stats_layers), len(stats_heads)]: per
    # statistic the sum over the query rows that have it (float64 [L, H]), the number of those
    # rows and the sum of what uniform attention gives them. None: the statistics read `weights`.
    head_stats: object | None = None
    stats_layers: list[int] = field(default_factory=list)
    stats_heads: list[int] = field(default_factory=list)
    # Encoder-decoder models (engines/transformers_engine.py): which attention this is ("self";
    # "encoder", "decoder" or "cross"). Cross-attention's rows are the target's tokens (`tokens`,
    # `offsets` into `text`, the target) and its columns the source's: key_tokens, key_offsets
    # into key_text, key_special; weights [L, H, T, Tk]. None for self-attention (keys = queries).
    attention: str = "self"
    key_tokens: list[str] | None = None
    key_offsets: list[tuple[int, int]] | None = None
    key_special: list[bool] | None = None
    key_text: str | None = None
    # A result pooled into blocks of tokens (units "blocks", render/image/pooled.py): the blocks'
    # token edges, so that `masked` marks the blocks entirely masked. None: rows are units.
    blocks: BlockAxes | None = None
    # A long text drawn as the terminal overview keeps no full maps of the heads it draws: their
    # pooled grids (PooledMaps, a few KB per head) are made while the maps stream. None: pool `weights`.
    pooled: PooledMaps | None = None

    @classmethod
    def of_encoding(cls, enc, text: str, **fields) -> "AttentionResult":
        """A result over the tokens of `enc` (tokenize.Encoding: tokens, offsets, word ids, special
        tokens, truncation) of `text`; `fields` give the weights, layers, heads, model and the rest."""
        return cls(
            text=text,
            tokens=enc.tokens,
            offsets=enc.offsets,
            word_ids=enc.word_ids,
            special=enc.special,
            truncated=enc.truncated,
            **fields,
        )

    def __post_init__(self) -> None:
        T = len(self.tokens)
        Tk = T if self.key_tokens is None else len(self.key_tokens)
        expected = (len(self.layers), len(self.heads), T, Tk)
        if self.weights.shape != expected:
            raise ValueError(f"weights shape {self.weights.shape} != {expected}")
        if self.focus_rows is not None:
            rows = (len(self.focus_layers), len(self.focus_heads), T)
            if self.focus_rows.shape != rows or self.focus_index is None or not 0 <= self.focus_index < T:
                raise ValueError(f"focus_rows shape {self.focus_rows.shape} != {rows} (focus {self.focus_index})")
        if self.head_stats is not None and self.head_stats.shape != (len(self.stats_layers), len(self.stats_heads)):
            raise ValueError(
                f"head_stats shape {self.head_stats.shape} != {(len(self.stats_layers), len(self.stats_heads))}"
            )

    @property
    def labels(self) -> list[str]:
        """What the user wrote for each token (specials keep their token string), made printable."""
        out = []
        for token, (start, end), special in zip(self.tokens, self.offsets, self.special):
            piece = token if special or end <= start else self.text[start:end]
            out.append(printable(piece))
        return out

    @property
    def key_labels(self) -> list[str]:
        """The labels of the columns: `labels`, or for cross-attention the source's tokens."""
        if self.key_tokens is None:
            return self.labels
        out = []
        for token, (start, end), special in zip(self.key_tokens, self.key_offsets, self.key_special):
            piece = token if special or end <= start else self.key_text[start:end]
            out.append(printable(piece))
        return out

    @property
    def view_label(self) -> str:
        """ "attention", "rollout · words"...: what the numbers are, for titles and headers."""
        return self.view if self.units == "tokens" else f"{self.view} · {self.units}"

    @property
    def unit_name(self) -> str:
        """ "token" or "word": what an index into this result counts."""
        return self.units.removesuffix("s")

    @property
    def causal(self) -> bool:
        """A decoder's look-ahead mask: row i has weights on keys 0..i only (the rest are masked, not 0)."""
        return self.model.config.causal

    def masked(self, layer: int | None = None) -> np.ndarray:
        """[T, Tk] bool, True where query i cannot see key j in model layer `layer` (mask_rule): in
        a causal model every j > i (the look-ahead mask, also between words of a word-level
        result), and in a layer that attends within a sliding window the keys outside it. Those
        cells hold 0 in `weights` but are not weights of 0: views draw them as masked and
        rankings skip them. A pooled result (`blocks`): the blocks whose every cell is masked.
        layer None: the look-ahead mask only."""
        return self.masked_rows(layer, 0, len(self.tokens))

    def masked_rows(self, layer: int | None, start: int, stop: int) -> np.ndarray:
        """Rows start..stop-1 of `masked(layer)`, [stop - start, Tk] bool, without the [T, Tk] mask
        (a focus row; views that stream a long text's maps block by block)."""
        rule = self.mask_rule(layer)
        if self.blocks is not None:
            return self.blocks.masked(rule)[start:stop]
        keys = len(self.tokens) if self.key_tokens is None else len(self.key_tokens)
        return rule.blocks(np.arange(start, stop + 1), np.arange(keys + 1))

    def mask_rule(self, layer: int | None = None) -> MaskRule:
        """What queries of model layer `layer` may see (masks.py): look-ahead in a causal model,
        and the layer's sliding window (`window`). Cross-attention: every target token sees the
        whole source. layer None: the look-ahead mask only."""
        if self.key_tokens is not None:
            return MaskRule()
        return MaskRule(causal=self.causal, window=self.window(layer))

    def window(self, layer: int | None) -> int | None:
        """The sliding window of model layer `layer` when it has one and the text is longer (else
        None). Word-level results keep the look-ahead mask only (a window cuts words), and so does
        rollout (its product of layers reaches past any one layer's window)."""
        config = self.model.config
        window = config.sliding_window
        if layer is None or window is None or self.view == "rollout":
            return None
        if self.units == "blocks" and self.blocks is not None:
            tokens = self.blocks.tokens
        elif self.units == "tokens":
            tokens = len(self.tokens)
        else:
            return None
        return window if window < tokens and config.is_local(layer) else None

    def sink_indices(self) -> list[int]:
        """Tokens that soak up attention without meaning: special tokens ([CLS], [SEP], <s>), and
        in a causal model the first token, which every query can see (the attention sink). Key
        indices: for cross-attention the source's special tokens."""
        if self.key_tokens is not None:  # cross-attention: the keys are the source's tokens
            return [j for j, special in enumerate(self.key_special) if special]
        sinks = {i for i, special in enumerate(self.special) if special}
        if self.causal and self.tokens:
            sinks.add(0)
        return sorted(sinks)

    def without_sinks(self) -> "AttentionResult":
        """The same result with its sink tokens left out of rankings and colour scales."""
        return replace(self, excluded=tuple(self.sink_indices()))

    def head(self, layer: int, head: int) -> np.ndarray:
        """[T, T] weights of model layer `layer`, head `head` (model indices, not positions)."""
        return self.weights[self.layers.index(layer), self.heads.index(head)]

    def select(self, layers: list[int] | None = None, heads: list[int] | None = None) -> "AttentionResult":
        """The maps (and focus rows) of `layers` x `heads` (default: all). A result whose maps were
        pooled while streaming (`pooled`) has no maps of those layers: the choice narrows its
        focus rows, and its maps to the layers it kept."""
        layers = self.layers if layers is None else layers
        heads = self.heads if heads is None else heads
        mapped = layers if self.pooled is None else [i for i in layers if i in self.layers]
        li = [self.layers.index(i) for i in mapped]
        hi = [self.heads.index(i) for i in heads]
        # All of it in order: the same array, not a copy (a long text's maps are large).
        whole = li == list(range(len(self.layers))) and hi == list(range(len(self.heads)))
        weights = self.weights if whole else self.weights[np.ix_(li, hi)]
        out = replace(self, weights=weights, layers=list(mapped), heads=list(heads))
        if self.focus_rows is None or (layers is self.layers and heads is self.heads):
            return out
        # An explicit choice narrows the focus rows too (to the chosen layers and heads they hold).
        fl = [i for i in layers if i in self.focus_layers] if layers is not self.layers else self.focus_layers
        fh = [h for h in heads if h in self.focus_heads] if heads is not self.heads else self.focus_heads
        rows = self.focus_rows[
            np.ix_([self.focus_layers.index(i) for i in fl], [self.focus_heads.index(h) for h in fh])
        ]
        return replace(out, focus_rows=rows, focus_layers=list(fl), focus_heads=list(fh))

    def to_dict(self) -> dict:
        keys = {}
        if self.attention != "self":
            keys["attention"] = self.attention
        if self.key_tokens is not None:  # cross-attention: columns are the source's tokens
            keys.update(
                key_text=self.key_text,
                key_tokens=self.key_tokens,
                key_labels=self.key_labels,
                key_offsets=[list(o) for o in self.key_offsets],
                key_special=self.key_special,
            )
        return {
            "text": self.text,
            "tokens": self.tokens,
            "labels": self.labels,
            "offsets": [list(o) for o in self.offsets],
            "word_ids": self.word_ids,
            "special": self.special,
            "truncated": self.truncated,
            "view": self.view,
            "units": self.units,
            "causal": self.causal,
            "excluded": list(self.excluded),
            "model": self.model.to_dict(),
            "layers": self.layers,
            "heads": self.heads,
            # float32 -> Python float is exact, and JSON's shortest repr of that double reads back
            # to the same float32: weights round-trip bit for bit.
            "weights": self.weights.astype(np.float32).tolist(),
            **keys,
        }

    def npz_arrays(self) -> dict[str, np.ndarray]:
        """The same content as to_dict, as arrays for np.savez (word_ids: -1 for None; for
        cross-attention also the source's key_* arrays)."""
        return {
            "weights": self.weights.astype(np.float32),
            "tokens": np.array(self.tokens, dtype=str),
            "labels": np.array(self.labels, dtype=str),
            "offsets": np.array(self.offsets, dtype=np.int64).reshape(-1, 2),
            "word_ids": np.array([-1 if w is None else w for w in self.word_ids], dtype=np.int64),
            "special": np.array(self.special, dtype=bool),
            "layers": np.array(self.layers, dtype=np.int64),
            "heads": np.array(self.heads, dtype=np.int64),
            "text": np.array(self.text),
            "view": np.array(self.view),
            "units": np.array(self.units),
            "causal": np.array(self.causal),
            "excluded": np.array(self.excluded, dtype=np.int64),
            "model": np.array(json.dumps(self.model.to_dict(), ensure_ascii=False)),
            **self._key_arrays(),
        }

    def _key_arrays(self) -> dict[str, np.ndarray]:
        """An encoder-decoder's kind, and for cross-attention the columns' (source's) tokens."""
        if self.attention == "self":
            return {}
        arrays = {"attention": np.array(self.attention)}
        if self.key_tokens is not None:
            arrays.update(
                key_text=np.array(self.key_text),
                key_tokens=np.array(self.key_tokens, dtype=str),
                key_labels=np.array(self.key_labels, dtype=str),
                key_offsets=np.array(self.key_offsets, dtype=np.int64).reshape(-1, 2),
                key_special=np.array(self.key_special, dtype=bool),
            )
        return arrays


def printable(text: str) -> str:
    """Make a token safe to print: control, format (ZWJ, bidi overrides) and other invisible
    characters become visible escapes, so no token can move the cursor or reorder a line."""
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"<U+{ord(ch):04X}>")
        elif ch == "\t" or cat == "Zs":
            out.append("␣")
        else:
            out.append(ch)
    return "".join(out) or "∅"
