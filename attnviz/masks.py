"""Which cells of an attention map a query cannot see: the one rule every view draws and ranks by.

A layer's rule (HF semantics, the same the encoder computes with):
  - causal, no window: query i sees keys j <= i (the look-ahead mask);
  - causal with a sliding window w (Mistral, Gemma 3's local layers): i - w < j <= i;
  - bidirectional with a window w (ModernBERT's local layers): |i - j| < w;
  - bidirectional, no window: every key.
Masked cells hold 0 in the weights but are not weights of 0: views draw them as masked (grey),
rankings and colour scales skip them.

Cells and the pooled blocks of long texts come from one function, `MaskRule.key_range`: the keys
that the rows a0..a1-1 see together form one range lo..hi (each row's keys are a contiguous run
that moves by one per row, so the runs overlap); a block of those rows and columns b0..b1-1 is
entirely masked when its columns miss that range. A cell is the block of one row and one column.
The pages' script (render/html_assets/masks.js) implements the same `key_range`.

NumPy only; imported by result.py, so nothing here imports from attnviz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MaskRule:
    """What the queries of one layer may see: `causal` (no key after the query) and `window`
    (keys within the sliding window only; None: no window). MaskRule() masks nothing."""

    causal: bool = False
    window: int | None = None

    @property
    def masks_nothing(self) -> bool:
        return not self.causal and self.window is None

    def key_range(self, first: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), int64 arrays shaped like `first`: the keys lo..hi (inclusive) that some query
        of first..stop-1 sees (lo may be negative, hi past the last key: ranges are not clipped)."""
        first = np.asarray(first, dtype=np.int64)
        stop = np.asarray(stop, dtype=np.int64)
        w = self.window
        big = np.iinfo(np.int64).max // 4
        lo = np.full(first.shape, -big, dtype=np.int64) if w is None else first - w + 1
        if self.causal:
            hi = stop - 1
        else:
            hi = np.full(first.shape, big, dtype=np.int64) if w is None else stop + w - 2
        return lo, hi

    def blocks(self, row_edges, col_edges) -> np.ndarray:
        """[R, C] bool: True where every cell of block (r, c) is masked; block r holds the queries
        row_edges[r]..row_edges[r + 1]-1, block c the keys col_edges[c]..col_edges[c + 1]-1."""
        rows = np.asarray(row_edges, dtype=np.int64)
        cols = np.asarray(col_edges, dtype=np.int64)
        lo, hi = self.key_range(rows[:-1], rows[1:])  # [R]
        return (cols[None, 1:] - 1 < lo[:, None]) | (cols[None, :-1] > hi[:, None])

    def cells(self, n_queries: int, n_keys: int | None = None) -> np.ndarray:
        """[T, S] bool: True where query i cannot see key j (blocks of one token each)."""
        n_keys = n_queries if n_keys is None else n_keys
        return self.blocks(np.arange(n_queries + 1), np.arange(n_keys + 1))

    def to_json(self) -> dict:
        """{"causal", "window"}: what the HTML pages hold per layer (masks.js reads it)."""
        return {"causal": self.causal, "window": self.window}

    def describe(self) -> str:
        """ "look-ahead, outside the 4-token window": which cells this rule masks, for legends."""
        parts = ["look-ahead"] if self.causal else []
        if self.window is not None:
            parts.append(f"outside the {self.window}-token window")
        return ", ".join(parts)


@dataclass(frozen=True)
class BlockAxes:
    """The rows and columns of a pooled result (units "blocks", render/image/pooled.py): blocks of
    consecutive tokens of the text it was pooled from, the same edges for rows and columns.
    focus (token, block): that block's row is the token's own row pooled, not the block's."""

    edges: tuple[int, ...]  # [R + 1] token edges
    focus: tuple[int, int] | None = None

    @property
    def tokens(self) -> int:
        """How many tokens the blocks cover (the text's length)."""
        return int(self.edges[-1])

    def masked(self, rule: MaskRule) -> np.ndarray:
        """[R, R] bool: the blocks whose every cell `rule` masks (the focus block's row: the blocks
        the focus token sees no key of)."""
        edges = np.asarray(self.edges, dtype=np.int64)
        out = rule.blocks(edges, edges)
        if self.focus is not None:
            token, block = self.focus
            out[block] = rule.blocks([token, token + 1], edges)[0]
        return out
