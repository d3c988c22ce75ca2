"""Pooling an attention map down to a size a screen or a page can show, for long texts.

A [T, T] map of a 2,000-token text has four million cells; a terminal line has about a hundred
characters and an image a thousand pixels. The views of long texts split the rows and the columns
into contiguous blocks of tokens and draw one value per block: the largest weight in it ("max",
the default: one strong weight, a distant antecedent, stays visible) or the average over the cells
the query can see ("mean": the share of attention the block gets, diluted by its size).

Cells the query cannot see (a causal model's later keys, keys outside a sliding window, sinks left
out of the colour scale) are skipped: a block with only such cells is reported as empty, so views
draw it as masked instead of as a weight of 0.

Everything here takes one [T, T] map or one [T] row, so it works on the full weights of a result
and on maps streamed one head at a time alike. NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POOLINGS = ("max", "mean")
DEFAULT_POOLING = "max"


def block_edges(n_tokens: int, n_blocks: int) -> np.ndarray:
    """[n + 1] int edges splitting 0..n_tokens into n = min(n_blocks, n_tokens) contiguous blocks
    whose sizes differ by at most one token (block k is edges[k]:edges[k + 1])."""
    n = max(1, min(n_blocks, n_tokens))
    return np.linspace(0, n_tokens, n + 1).round().astype(np.int64)


@dataclass(frozen=True)
class Pooled:
    """A map pooled to [R, C] blocks: values[r, c] pools rows row_edges[r]:row_edges[r + 1] and
    columns col_edges[c]:col_edges[c + 1]; empty[r, c] is True where every cell of that block was
    skipped (masked), and values there are 0."""

    values: np.ndarray  # float32 [R, C]
    empty: np.ndarray  # bool [R, C]
    row_edges: np.ndarray  # int [R + 1]
    col_edges: np.ndarray  # int [C + 1]
    how: str

    @property
    def block(self) -> tuple[int, int]:
        """The largest block size in tokens, (rows, columns), for headers and notes."""
        return int(np.diff(self.row_edges).max()), int(np.diff(self.col_edges).max())

    def describe(self) -> str:
        """ "max over blocks of up to 23 x 23 tokens": what one drawn cell is."""
        rows, cols = self.block
        word = "max" if self.how == "max" else "mean"
        if rows == cols == 1:
            return "one cell per token (not pooled)"
        return f"{word} over blocks of up to {rows} x {cols} tokens"


def pool_map(weights: np.ndarray, skip: np.ndarray | None, rows: int, cols: int, how: str = DEFAULT_POOLING) -> Pooled:
    """Pool `weights` [T, S] into at most rows x cols blocks (fewer when T or S is smaller).

    skip: [T, S] bool or None, True for cells left out (masked, or sink keys left out of the
    colour scale). "max" takes the largest weight of the cells kept, "mean" their average.
    """
    if how not in POOLINGS:
        raise ValueError(f"unknown pooling {how!r}; use one of {', '.join(POOLINGS)}")
    weights = np.asarray(weights, dtype=np.float32)
    T, S = weights.shape
    row_edges, col_edges = block_edges(T, rows), block_edges(S, cols)
    kept = np.ones((T, S), dtype=bool) if skip is None else ~np.asarray(skip, dtype=bool)
    # reduceat over the rows first ([R, S]), then over the columns ([R, C]): never a copy of the
    # map bigger than one [T, S] temporary.
    counts = np.add.reduceat(np.add.reduceat(kept, row_edges[:-1], axis=0, dtype=np.int64), col_edges[:-1], axis=1)
    if how == "max":
        # Weights are >= 0, so skipped cells set to -1 never win a block that has a kept cell.
        filled = np.where(kept, weights, np.float32(-1.0))
        values = _reduce(_reduce(filled, np.maximum, row_edges, 0), np.maximum, col_edges, 1)
    else:
        filled = np.where(kept, weights, np.float32(0.0))
        # Row sums in float32 (a block holds at most a few hundred rows), then float64 for the rest.
        sums = _reduce(_reduce(filled, np.add, row_edges, 0).astype(np.float64), np.add, col_edges, 1)
        values = sums / np.maximum(counts, 1)
    empty = counts == 0
    values = np.where(empty, 0.0, values).astype(np.float32)
    return Pooled(values, empty, row_edges, col_edges, how)


def pool_row(row: np.ndarray, skip: np.ndarray | None, cols: int, how: str = DEFAULT_POOLING) -> Pooled:
    """One query's row [S] pooled to at most `cols` blocks: a Pooled with one row."""
    row = np.asarray(row, dtype=np.float32)[None, :]
    return pool_map(row, None if skip is None else np.asarray(skip, dtype=bool)[None, :], 1, cols, how)


def _reduce(array: np.ndarray, ufunc, edges: np.ndarray, axis: int) -> np.ndarray:
    return ufunc.reduceat(array, edges[:-1], axis=axis)


def skipped_cells(masked: np.ndarray, excluded: tuple[int, ...] | list[int] = ()) -> np.ndarray:
    """[T, T] bool: the cells a pooled view leaves out, the masked ones and the excluded (sink) keys."""
    skip = np.array(masked, dtype=bool, copy=True)
    if len(excluded):
        skip[:, list(excluded)] = True
    return skip


def nice_ticks(n_tokens: int, n_cells: int, min_gap: int) -> list[int]:
    """Token indices to label on an axis of `n_cells` cells showing `n_tokens` tokens: 0 and the
    multiples of a round step (1, 2, 5 x 10^k) far enough apart that labels are at least
    `min_gap` cells apart."""
    if n_tokens <= 0 or n_cells <= 0:
        return []
    per_cell = n_tokens / n_cells
    step = 1
    while step * 10 <= n_tokens * 10:  # bounded: the step never needs to exceed n_tokens
        for m in (1, 2, 5):
            if m * step / per_cell >= min_gap:
                return list(range(0, n_tokens, m * step))
        step *= 10
    return [0]


def rank_row(row: np.ndarray, skip: np.ndarray | None, k: int) -> list[tuple[int, float]]:
    """The `k` keys of one row with the largest weights among those not skipped, strongest first
    (ties: the earlier token), as (index, weight)."""
    row = np.asarray(row, dtype=np.float32)
    keys = np.arange(len(row)) if skip is None else np.flatnonzero(~np.asarray(skip, dtype=bool))
    order = keys[np.argsort(-row[keys], kind="stable")[:k]]
    return [(int(j), float(row[j])) for j in order]
