"""The explorer's heatmap of a long text: a pooled overview of the head, and a zoomed window.

When a head has more than LONG_FROM units (and they would not fit the frame in two screens of
columns: render.overview's needs_overview), the explorer draws the head pooled to the frame (the overview of `show`:
half-blocks, two row blocks per line, the max of each block) instead of thousands of lines of
cells. `z` zooms in: a window of the head at full resolution (one compact cell per token pair,
as in `show`), around the focus token; shift+arrows move the window by half its size; `z` again
goes back to the overview. The focus strip pools the focus row to the side panel's width.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.text import Text

from ..analysis.pooling import DEFAULT_POOLING, pool_map, pool_row, skipped_cells
from ..render.overview import head_overview, needs_overview
from ..render.terminal import MARK, cell_style, viridis
from ..result import AttentionResult
from .cells import COMPACT_CELL, FOCUS_STYLE, MASKED_STYLE, ROW_LABEL, SINK_STYLE, Heatmap, Line, fit, pad, scale_top


@dataclass(frozen=True)
class Zoom:
    """The zoomed window: its first query row and first key column (token indices)."""

    r0: int
    c0: int


# The explorer scrolls a head wider and taller than its frame; past this many units the head is
# drawn pooled (T x T cells: 16,384 at 128, four million at 2,000, which no frame scrolls through).
LONG_FROM = 128


def is_long(n_units: int, width: int) -> bool:
    """A head of `n_units` is drawn pooled: too many cells to scroll, and more than two screens of
    columns in this frame (render.overview's rule for `show`)."""
    return n_units > LONG_FROM and needs_overview(n_units, width)


def window_size(width: int, height: int, T: int) -> tuple[int, int]:
    """(query rows, key columns) of the zoomed window in a frame of width x height cells."""
    cols = max(4, (width - ROW_LABEL - 1) // COMPACT_CELL)
    rows = max(4, height - 2)
    return min(rows, T), min(cols, T)


def around(focus: int, rows: int, cols: int, T: int) -> Zoom:
    """A window with the focus row in its middle and, to its right end, the focus's own key (in a
    causal model everything the focus sees lies to the left of it)."""
    return clamp(Zoom(focus - rows // 2, focus - cols + max(1, cols // 4)), rows, cols, T)


def clamp(zoom: Zoom, rows: int, cols: int, T: int) -> Zoom:
    return Zoom(min(max(zoom.r0, 0), T - rows), min(max(zoom.c0, 0), T - cols))


def heatmap(
    result: AttentionResult,
    layer: int,
    head: int,
    focus: int,
    width: int,
    height: int,
    zoom: Zoom | None,
    how: str = DEFAULT_POOLING,
) -> tuple[Heatmap, list[int], Zoom | None]:
    """The head as Lines: the overview (zoom None) or the window. Returns the Heatmap, the token
    of each line below the header (what a click on it focuses) and the window, kept inside the text."""
    T = len(result.tokens)
    if zoom is None:
        return _overview(result, layer, head, width, height, how) + (None,)
    rows, cols = window_size(width, height, T)
    zoom = clamp(zoom, rows, cols, T)
    heat, tokens = _window(result, layer, head, focus, zoom, rows, cols)
    return heat, tokens, zoom


def _to_line(text: Text) -> Line:
    """A rich Text built of styled runs (render.overview's lines) as a cells.Line."""
    line = Line()
    plain, base = text.plain, str(text.style or "")
    pos = 0
    for span in sorted(text.spans, key=lambda s: s.start):
        if span.start > pos:
            line.append(plain[pos : span.start], base)
        line.append(plain[span.start : span.end], " ".join(filter(None, (base, str(span.style)))))
        pos = span.end
    if pos < len(plain):
        line.append(plain[pos:], base)
    return line


def _overview(result, layer, head, width, height, how) -> tuple[Heatmap, list[int]]:
    T = len(result.tokens)
    li, hi = result.layers.index(layer), result.heads.index(head)
    skip = skipped_cells(result.masked(layer), result.excluded)  # [T, T]
    cols = max(8, min(width - ROW_LABEL - 1, 2 * max(4, height - 3), T))
    pooled = pool_map(result.weights[li, hi], skip, cols, cols, how)  # two row blocks per line
    texts = head_overview(pooled, layer, head, result.labels, True, result.causal)
    hint = Line(fit(f"{T:,} tokens pooled to fit · z: zoom in (full resolution)", width), "dim")
    title = Line(fit(texts[0].plain, width), "bold")  # "layer 0 · head 1 · 27 x 54 blocks, max over ..."
    lines = [hint, title] + [_to_line(t) for t in texts[1:]]
    header = 3  # the hint, the title and the ticks
    tokens = [int(pooled.row_edges[min(2 * k, len(pooled.row_edges) - 2)]) for k in range(len(lines) - header)]
    return Heatmap(lines, header, "overview", 1.0), tokens


def _window(result, layer, head, focus, zoom: Zoom, rows: int, cols: int) -> tuple[Heatmap, list[int]]:
    weights = result.head(layer, head)  # [T, T]
    labels = result.labels
    T = len(labels)
    masked = result.masked(layer)  # [T, T]
    coloured = ~masked
    if result.excluded:
        coloured[:, list(result.excluded)] = False
    top = scale_top(result, weights, coloured)
    ranked = np.where(coloured, weights, -np.inf)
    row_max = ranked.argmax(axis=1)  # [T]
    excluded = set(result.excluded)
    r1, c1 = zoom.r0 + rows, zoom.c0 + cols
    title = Line(
        fit(
            f"zoom: queries {zoom.r0}-{r1 - 1}, keys {zoom.c0}-{c1 - 1} of {T:,} · x100, {MARK} row max · "
            "shift+arrows move · z: overview",
            ROW_LABEL + 1 + cols * COMPACT_CELL,
        ),
        "bold",
    )
    ticks = [" "] * (cols * COMPACT_CELL)
    for b in range(0, cols, 5):
        mark = f"╵{zoom.c0 + b}"
        x = b * COMPACT_CELL + 1
        if x + len(mark) <= len(ticks) and all(ch == " " for ch in ticks[max(0, x - 1) : x + len(mark)]):
            ticks[x : x + len(mark)] = list(mark)
    lines = [title, Line(" " * (ROW_LABEL + 1) + "".join(ticks), "dim")]
    width = len(str(T - 1))
    for i in range(zoom.r0, r1):
        line = Line()
        line.append(pad(f"{i:>{width}} {labels[i]}", ROW_LABEL), FOCUS_STYLE if i == focus else "")
        line.append(" ")
        for j in range(zoom.c0, c1):
            if masked[i, j]:
                line.append("  ·", MASKED_STYLE)
                continue
            v = float(weights[i, j])
            is_max = j == row_max[i]
            body = (MARK if is_max else " ") + f"{min(round(v * 100), 99):02d}"
            line.append(body, SINK_STYLE if j in excluded else cell_style(min(v / top, 1.0), is_max))
        lines.append(line)
    return Heatmap(lines, 2, "zoom", top), list(range(zoom.r0, r1))


def strip_line(
    result: AttentionResult,
    layer: int,
    head: int,
    focus: int,
    current: bool,
    target: tuple[int, float] | None,
    mark: str,
    cols: int,
) -> Line:
    """cells.strip_line for a long text: the focus row pooled (max) to `cols` blocks."""
    li, hi = result.layers.index(layer), result.heads.index(head)
    skip = result.masked(layer)[focus].copy()  # [T]
    if result.excluded:
        skip[list(result.excluded)] = True
    strip = pool_row(result.weights[li, hi, focus], skip, cols)
    kept = strip.values[~strip.empty]
    top = float(kept.max()) if kept.size and kept.max() > 0 else 1.0
    name = f"h{head:<2}" if head >= 0 else "mix"
    line = Line(("▶" if current else " ") + name + " ", "bold" if current else "")
    for c in range(strip.values.shape[1]):
        if strip.empty[0, c]:
            line.append("·", MASKED_STYLE)
        else:
            line.append("█", "rgb({},{},{})".format(*viridis(min(float(strip.values[0, c]) / top, 1.0))))
    if target is not None:
        j, w = target
        line.append(f" {fit(result.labels[j], 8)} {j} {w:.2f}")
    if mark:
        line.append(f" {mark}", "bold magenta")
    return line
