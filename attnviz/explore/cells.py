"""Lines for the explorer's heatmap, head strip and token bar, coloured as `attnviz show`
colours its tables (render.terminal's viridis and cell style).

The colour scale follows the HTML view: 0-1 for views whose rows sum to one (attention,
rollout); otherwise, or with sinks left out, 0 to the largest coloured weight of the head.
Masked cells (AttentionResult.masked: a decoder's keys after the query, a local layer's keys
outside its sliding window) are drawn as masked, never as zero.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style

from ..render.terminal import MARK, cell_style, viridis
from ..result import AttentionResult

UNIT_SCALE_VIEWS = ("attention", "rollout", "value-zeroing")  # rows that sum to one
ROW_LABEL = 12  # query label column, as in `show`
NORMAL_CELL = 6  # "0.42* ": two decimals, the row-maximum mark, a space
COMPACT_CELL = 3  # "*42": weights x100
SINK_STYLE = "grey50 on grey15"
MASKED_STYLE = "grey35"
FOCUS_STYLE = "bold reverse"


@functools.lru_cache(maxsize=4096)
def _style(spec: str) -> Style:
    return Style.parse(spec) if spec else Style.null()


class Line:
    """One drawn line as (text, style) pieces; `segments()` gives rich Segments for a Strip.
    Plainer than rich Text on purpose: a heatmap redraw makes some 300 pieces, and Text's
    span bookkeeping took most of a head change's time."""

    __slots__ = ("pieces",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self.pieces: list[tuple[str, str]] = [(text, style)] if text else []

    def append(self, text: str, style: str = "") -> None:
        self.pieces.append((text, style))

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.pieces)

    def style_at(self, column: int) -> str:
        """The style of the piece drawn at terminal column `column`."""
        x = 0
        for text, style in self.pieces:
            x += cell_len(text)
            if column < x:
                return style
        raise IndexError(column)

    def segments(self) -> list[Segment]:
        return [Segment(text, _style(style)) for text, style in self.pieces]


def scale_top(result: AttentionResult, values: np.ndarray, coloured: np.ndarray) -> float:
    """The weight drawn brightest among `values` (a head's [T, T] or one row [T]); `coloured`
    (same shape, bool) says which cells get a colour (not masked, not a sink)."""
    if result.view in UNIT_SCALE_VIEWS and not result.excluded:
        return 1.0
    top = float(values[coloured].max()) if coloured.any() else 0.0
    return top if top > 0 else 1.0


def coloured_cells(result: AttentionResult, layer: int) -> np.ndarray:
    """[T, T] bool: the cells of model layer `layer` that get a colour (masked cells and sinks do not)."""
    mask = ~result.masked(layer)
    if result.excluded:
        mask[:, list(result.excluded)] = False
    return mask


def layout_mode(n_units: int, width: int) -> str:
    """ "normal" (two decimals) when the whole head fits `width` columns, else "compact"."""
    return "normal" if ROW_LABEL + 1 + n_units * NORMAL_CELL <= width else "compact"


def fit(label: str, width: int) -> str:
    """`label` cut to `width` terminal cells (wide characters count two), with an ellipsis."""
    return label if cell_len(label) <= width else set_cell_size(label, max(width - 1, 0)) + "…"


def pad(label: str, width: int) -> str:
    """`label` fitted and padded to exactly `width` terminal cells."""
    return set_cell_size(fit(label, width), width)


def cell_body(value: float, is_max: bool, mode: str) -> str:
    """The text of one cell, as `show` writes it."""
    if mode == "normal":
        number = f"{value:.2f}" if value < 9.995 else f"{value:.1f}"[:4]
        return f"{number:>4}" + (MARK if is_max else " ") + " "
    return (MARK if is_max else " ") + f"{min(round(value * 100), 99):02d}"


@dataclass(frozen=True)
class Heatmap:
    """One head as Lines: `header_rows` rows, then one row per query unit."""

    lines: list[Line]
    header_rows: int
    mode: str
    top: float


def heatmap(result: AttentionResult, layer: int, head: int, focus: int, width: int) -> Heatmap:
    weights = result.head(layer, head)  # [T, T]
    labels = result.labels
    T = len(labels)
    mode = layout_mode(T, width)
    masked = result.masked(layer)  # [T, T]
    coloured = coloured_cells(result, layer)
    top = scale_top(result, weights, coloured)
    excluded = set(result.excluded)
    ranked = np.where(coloured, weights, -np.inf)
    row_max = ranked.argmax(axis=1)  # [T]
    index_width = len(str(T - 1))
    cell = NORMAL_CELL if mode == "normal" else COMPACT_CELL

    numbers = Line(" " * (ROW_LABEL + 1))
    names = Line(" " * (ROW_LABEL + 1))
    for j in range(T):
        style = FOCUS_STYLE if j == focus else ("dim" if j in excluded else "")
        numbers.append(f"{j:>{cell - (mode == 'normal')}}" + (" " if mode == "normal" else ""), style)
        names.append(pad(labels[j], cell - 1) + " ", style)
    lines = [numbers] + ([names] if mode == "normal" else [])

    for i in range(T):
        row_label = pad(f"{i:>{index_width}} {labels[i]}", ROW_LABEL)
        line = Line()
        line.append(row_label, FOCUS_STYLE if i == focus else "")
        line.append(" ")
        for j in range(T):
            if masked[i, j]:
                line.append(f"{'·':>{cell - (mode == 'normal')}}" + (" " if mode == "normal" else ""), MASKED_STYLE)
                continue
            v = float(weights[i, j])
            is_max = j == row_max[i]
            body = cell_body(v, is_max, mode)
            if j in excluded:
                line.append(body, SINK_STYLE)
            else:
                line.append(body, cell_style(min(v / top, 1.0), is_max))
        lines.append(line)
    return Heatmap(lines, len(lines) - T, mode, top)


def strip_line(
    result: AttentionResult,
    layer: int,
    head: int,
    focus: int,
    current: bool,
    target: tuple[int, float] | None,
    mark: str,
) -> Line:
    """One head of the strip: where the focus unit goes, one block per key, then its top target."""
    row = result.head(layer, head)[focus]  # [T]
    masked = result.masked(layer)[focus]  # [T]
    top = scale_top(result, row, coloured_cells(result, layer)[focus])
    name = f"h{head:<2}" if head >= 0 else "mix"
    line = Line(("▶" if current else " ") + name + " ", "bold" if current else "")
    for j, v in enumerate(row):
        if masked[j]:
            line.append("·", MASKED_STYLE)
        elif j in result.excluded:
            line.append("░", "grey50")
        else:
            line.append("█", "rgb({},{},{})".format(*viridis(min(float(v) / top, 1.0))))
    if target is not None:
        j, w = target
        line.append(f" {fit(result.labels[j], 8)} {w:.2f}")
    if mark:
        line.append(f" {mark}", "bold magenta")
    return line


def token_bar(result: AttentionResult, focus: int, width: int) -> tuple[list[Line], list[tuple[int, int, int, int]]]:
    """The sentence's units as "index label" items, wrapped to `width`, the focus highlighted.
    Returns the Lines and each unit's (row, first column, last column + 1, index), for clicks."""
    lines = [Line()]
    spans = []
    col = 0
    for i, label in enumerate(result.labels):
        item = f"{i} {fit(label, max(width - 8, 4))}"
        size = cell_len(item)
        if col and col + 1 + size > width:
            lines.append(Line())
            col = 0
        elif col:
            lines[-1].append(" ")
            col += 1
        style = FOCUS_STYLE if i == focus else ("dim" if result.special[i] else "")
        lines[-1].append(item, style)
        spans.append((len(lines) - 1, col, col + size, i))
        col += size
    return lines, spans
