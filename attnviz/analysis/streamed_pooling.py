"""The terminal overview's pooled grids, made while the maps stream past (a keep.KeepRequest consumer).

An overview draws each head of a long text pooled to a few dozen blocks a side, yet drawing it
from full maps means keeping them: 9 heads x 8,192² float32 is 2.4 GB for grids of 22 x 44
blocks. `StreamedPooling` keeps only the grids. The grid is known before the pass (the terminal's
size and T: render/overview.overview_grid), so as each block of query rows arrives it is copied
into the rows of the pooled row block it belongs to ([H', rows of one pooled block, T], the only
full-width buffer), and when that pooled row block is complete it is pooled with the reductions
of pooling.pool_map, the function that pools full maps, and let go. Same reductions on the same
numbers: the grids equal those of pooling the full maps (the max exactly; the mean too, since
NumPy's row sums over one block do not depend on the rows around it; the tests hold it).

Cells left out are those of AttentionResult.masked_rows (look-ahead, sliding window) and the
excluded sink keys, as render/overview.py leaves out of full maps. NumPy only: the blocks arrive
as torch tensors and are read through `.numpy()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..result import AttentionResult, PooledMaps
from .pooling import POOLINGS, block_edges


@dataclass(frozen=True)
class PoolPlan:
    """What to pool instead of keeping: the maps of `layers` x `heads` into `rows` x `cols` blocks
    (at most; fewer when T is smaller), the max or mean (`how`), leaving the `excluded` keys out."""

    layers: tuple[int, ...]
    heads: tuple[int, ...]
    rows: int
    cols: int
    how: str = "max"
    excluded: tuple[int, ...] = ()


class StreamedPooling:
    """A RowConsumer (keep.py) that pools the maps of `plan` block by block; `pooled()` gives the
    PooledMaps once the pass is done. `skeleton` is the result of the text without maps (its
    tokens, model and masks)."""

    def __init__(self, skeleton: AttentionResult, plan: PoolPlan) -> None:
        if plan.how not in POOLINGS:
            raise ValueError(f"unknown pooling {plan.how!r}; use one of {', '.join(POOLINGS)}")
        self.skeleton, self.plan = skeleton, plan
        self.layers = frozenset(plan.layers)
        self.order = sorted(plan.layers)
        T = len(skeleton.tokens)
        self.T = T
        self.row_edges = block_edges(T, plan.rows)  # [R + 1]
        self.col_edges = block_edges(T, plan.cols)  # [C + 1]
        R, C = len(self.row_edges) - 1, len(self.col_edges) - 1
        self.values = np.zeros((len(self.order), len(plan.heads), R, C), dtype=np.float32)
        self.empty = np.zeros((len(self.order), R, C), dtype=bool)
        self.done = np.zeros((len(self.order), R), dtype=bool)
        self.slab: np.ndarray | None = None  # [H', rows of pooled row block `block`, T] float32
        self.block = -1

    def rows(self, layer: int, r0: int, k0: int, probs) -> None:
        """probs [1, H, R, W]: query rows r0.., keys k0.. of every head (keys outside: weight 0)."""
        block = probs[0].numpy()  # [H, R, W] float32, a view of the tensor
        if list(self.plan.heads) != list(range(block.shape[0])):
            block = block[list(self.plan.heads)]  # [H', R, W]
        R, W = block.shape[-2:]
        edges = self.row_edges
        first = int(np.searchsorted(edges, r0, side="right") - 1)
        for b in range(first, len(edges) - 1):
            start, stop = int(edges[b]), int(edges[b + 1])
            if start >= r0 + R:
                break
            a, z = max(r0, start), min(r0 + R, stop)
            if self.block != b:
                # A new pooled row block: zeros, so keys outside a stream block's range are weight 0
                # as in a kept map (np.zeros maps fresh pages: no cost for what stays untouched).
                self.slab = np.zeros((block.shape[0], stop - start, self.T), dtype=np.float32)
                self.block = b
            self.slab[:, a - start : z - start, k0 : k0 + W] = block[:, a - r0 : z - r0]
            if z == stop:
                self._finish(layer, b)

    def _finish(self, layer: int, b: int) -> None:
        """Pool the complete row block `b` of `layer` as pooling.pool_map pools a full map, every
        head at once: the same reductions on the same numbers (NumPy's row sums of one block,
        here along axis 1 of [H', rows, T], are those of pool_map's axis 0, bit for bit)."""
        start, stop = int(self.row_edges[b]), int(self.row_edges[b + 1])
        skip = self.skeleton.masked_rows(layer, start, stop)  # [rows, T]
        if self.plan.excluded:
            skip[:, list(self.plan.excluded)] = True
        starts = self.col_edges[:-1]
        kept = ~skip
        counts = np.add.reduceat(np.add.reduceat(kept, [0], axis=0, dtype=np.int64), starts, axis=1)[0]  # [C]
        empty = counts == 0
        slab = self.slab  # [H', rows, T], filled in place (no second copy of it)
        if self.plan.how == "max":
            # Weights are >= 0, so skipped cells set to -1 never win a block that has a kept cell.
            np.copyto(slab, np.float32(-1.0), where=skip[None])
            values = np.maximum.reduceat(slab.max(axis=1), starts, axis=1)  # [H', C]
        else:
            np.copyto(slab, np.float32(0.0), where=skip[None])
            rows = np.add.reduceat(slab, [0], axis=1)[:, 0]  # [H', T] float32, as pool_map's row sums
            values = np.add.reduceat(rows.astype(np.float64), starts, axis=1) / np.maximum(counts, 1)  # [H', C]
        li = self.order.index(layer)
        self.values[li, :, b] = np.where(empty, 0.0, values).astype(np.float32)
        self.empty[li, b] = empty
        self.done[li, b] = True
        self.slab, self.block = None, -1

    def layer_done(self, layer: int) -> None:
        if not self.done[self.order.index(layer)].all():
            raise RuntimeError(f"layer {layer}: rows of the pooled overview were never computed")

    def pooled(self) -> PooledMaps:
        if not self.done.all():
            raise RuntimeError("the pooled overview is incomplete: its layers were not all computed")
        return PooledMaps(
            layers=list(self.order),
            heads=list(self.plan.heads),
            values=self.values,
            empty=self.empty,
            row_edges=self.row_edges,
            col_edges=self.col_edges,
            how=self.plan.how,
            excluded=tuple(self.plan.excluded),
        )
