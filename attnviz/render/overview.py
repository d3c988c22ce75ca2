"""The terminal overview of a long text: each head's map pooled to the terminal's size.

When the tables of one head would need more than MAX_TABLE_BLOCKS blocks of key columns (about 60
tokens in 100 columns), cells are unreadable, and at thousands of tokens the tables are
megabytes. The overview draws each head as a pooled heatmap instead: one character per column
block and, in colour, two row blocks per character line (the half-block ▀, its foreground the
upper block's colour and its background the lower one's), so blocks are about square. Without
colour (piped output, --output) each character is one block drawn with a shade ' ░▒▓█'.

Its size depends on the width and on how many heads are shown, never on the number of tokens:
each map has at most the width in columns and MAP_LINE_BUDGET / heads lines (at least
MIN_MAP_LINES), and the focus word's row adds a fixed few lines.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.text import Text

from ..analysis.focus import Focus
from ..analysis.pooling import (
    DEFAULT_POOLING,
    Pooled,
    nice_ticks,
    pool_map,
    pool_row,
    rank_row,
    skipped_cells,
)
from ..result import AttentionResult
from .terminal import ROW_LABEL_WIDTH, fit_label, masked_reason, viridis

# The tables of a head are split into blocks of key columns when they do not fit; past this many
# blocks the overview replaces them.
MAX_TABLE_BLOCKS = 2
# Lines all the maps of one `show` may take together (each still gets MIN_MAP_LINES).
MAP_LINE_BUDGET = 200
MIN_MAP_LINES = 8
# Colour levels of the maps: runs of equal colour are drawn as one styled span, so quantising
# (32 levels of viridis) keeps a map of mostly dark blocks to a few escape codes per line.
LEVELS = 32
MASKED_RGB = (40, 40, 40)  # masked blocks: dark grey, off the viridis scale
SHADES = " ░▒▓█"
MASKED_CHAR = "·"
TARGETS = 5  # targets listed per head for the focus word
HEADER_TOKEN_LINES = 4  # lines of the header's token list above an overview (the rest counted)


def needs_overview(n_tokens: int, width: int) -> bool:
    """True when one head's tables would need more than MAX_TABLE_BLOCKS blocks of key columns at
    this width (terminal.py's compact layout: 3 columns per key after the row labels)."""
    per_block = max(1, (width - ROW_LABEL_WIDTH - 1) // 3)
    return n_tokens > MAX_TABLE_BLOCKS * per_block


def colourful(console: Console) -> bool:
    return not console.no_color and console.color_system is not None


def map_size(n_tokens: int, width: int, n_maps: int) -> tuple[int, int]:
    """(row blocks, column blocks) of each map: as many columns as the width allows and about as
    many rows (blocks about square), within the line budget shared by `n_maps` maps."""
    lines = max(MIN_MAP_LINES, MAP_LINE_BUDGET // max(1, n_maps))
    cols = max(8, min(width - ROW_LABEL_WIDTH - 1, 2 * lines, n_tokens))
    return min(cols, n_tokens), cols


def overview_grid(n_tokens: int, width: int, n_maps: int, colour: bool) -> tuple[int, int]:
    """(row blocks, column blocks) each map is pooled to: map_size's, with one row block per line
    without colour (two per line, half-blocks, in colour). Known before the forward pass, so the
    maps can be pooled while they stream (analysis/streamed_pooling.py)."""
    rows, cols = map_size(n_tokens, width, n_maps)
    return (rows if colour else max(1, rows // 2)), cols


def render_overview(
    console: Console,
    result: AttentionResult,
    focus: Focus | None = None,
    how: str = DEFAULT_POOLING,
    full_flag: str = "--full",
) -> None:
    """The pooled overview of every head of `result` (already narrowed to the shown heads), each
    followed by the focus word's row when there is a focus. When `result.pooled` holds the grids
    (pooled while the maps streamed, no full maps kept) they are drawn, with the focus row from
    `result.focus_rows`; else the maps of `result.weights` are pooled here."""
    T = len(result.tokens)
    colour = colourful(console)
    units = f"{result.unit_name}s"
    grids = result.pooled
    shown_layers, shown_heads = (result.layers, result.heads) if grids is None else (grids.layers, grids.heads)
    n_maps = len(shown_layers) * len(shown_heads)
    rows, cols = map_size(T, console.width, n_maps)
    intro = (
        f"{T:,} {units} are too many for tables {console.width} columns wide: each head is pooled "
        f"to about {cols} x {cols} blocks, the {how} weight of each block "
        f"({'--pool mean' if how == 'max' else '--pool max'} for the {'average' if how == 'max' else 'largest'}; "
        f"{full_flag} for the tables)."
    )
    console.print(Text(intro, style="bold"))
    scale = "the map's largest value outside the sinks" if result.excluded else "the map's largest value"
    if result.causal:  # see head_overview
        scale += " below its first block row"
    reason = masked_reason(result, shown_layers)
    if colour:
        legend = (
            f"rows: query {units}, two blocks per line (▀: upper block in front, lower behind) · "
            f"columns: key {units} · colour: viridis from 0 (dark) to {scale} (bright, in its title)"
        )
        legend += f" · grey: masked ({reason})" if reason else ""
    else:
        legend = (
            f"rows: query {units} · columns: key {units} · shade of each block: ░ from 5%, ▒ from 25%, "
            f"▓ from 50%, █ from 75% of {scale} (in its title), blank below 5%"
        )
        legend += f" · {MASKED_CHAR}: masked ({reason})" if reason else ""
    if result.excluded:
        legend += " · sinks left out of the pooling"
    console.print(Text(legend, style="dim"))
    labels = result.labels
    for layer, head, pooled, row, row_skip in _maps(
        result, focus, overview_grid(T, console.width, n_maps, colour), how
    ):
        console.print()
        for line in head_overview(pooled, layer, head, labels, colour, result.causal):
            console.print(line)
        if row is not None:
            for line in focus_strip(row, row_skip, focus, labels, result.unit_name, how, colour, cols):
                console.print(line)


def _maps(result: AttentionResult, focus: Focus | None, grid: tuple[int, int], how: str):
    """(layer, head, Pooled [R, C], the focus row [T] or None, its skipped keys [T]) per map drawn:
    from the grids pooled while streaming, or pooling each full map of `weights` now."""
    grids = result.pooled
    if grids is not None:
        for li, layer in enumerate(grids.layers):
            row_skip = None
            if focus is not None:
                row_skip = result.masked_rows(layer, focus.index, focus.index + 1)[0]  # [T]
                row_skip[list(grids.excluded)] = True
            for hi, head in enumerate(grids.heads):
                pooled = Pooled(grids.values[li, hi], grids.empty[li], grids.row_edges, grids.col_edges, grids.how)
                yield layer, head, pooled, _focus_row(result, focus, layer, head), row_skip
        return
    for li, layer in enumerate(result.layers):
        skip = skipped_cells(result.masked(layer), result.excluded)  # [T, T]
        for hi, head in enumerate(result.heads):
            weights = result.weights[li, hi]  # [T, T]
            pooled = pool_map(weights, skip, grid[0], grid[1], how)
            if focus is None:
                yield layer, head, pooled, None, None
            else:
                yield layer, head, pooled, weights[focus.index], skip[focus.index]


def _focus_row(result: AttentionResult, focus: Focus | None, layer: int, head: int) -> np.ndarray | None:
    """The focus token's row [T] of one head, from the rows kept while streaming (None: not kept)."""
    if focus is None or result.focus_rows is None or result.focus_index != focus.index:
        return None
    if layer not in result.focus_layers or head not in result.focus_heads:
        return None
    return result.focus_rows[result.focus_layers.index(layer), result.focus_heads.index(head)]


def _top(pooled: Pooled, first_row: int = 0) -> float:
    """The value drawn brightest: the largest pooled value from block row `first_row` on."""
    kept = pooled.values[first_row:][~pooled.empty[first_row:]]
    if not kept.size:
        kept = pooled.values[~pooled.empty]
    return max(float(kept.max()), 1e-6) if kept.size else 1.0


def _level(values: np.ndarray, top: float) -> np.ndarray:
    return np.clip(np.round(values / top * (LEVELS - 1)), 0, LEVELS - 1).astype(np.int64)


def _rgb(level: int) -> str:
    r, g, b = viridis(level / (LEVELS - 1))
    return f"rgb({r},{g},{b})"


MASKED_STYLE = "rgb({},{},{})".format(*MASKED_RGB)


def _shade(fraction: float) -> str:
    if fraction < 0.05:
        return SHADES[0]
    return SHADES[1 + min(3, int(fraction * 4))]


def head_overview(
    pooled: Pooled, layer: int, head: int, labels: list[str], colour: bool, causal: bool = False
) -> list[Text]:
    """The lines of one head's overview: title, column ticks, then the map with row labels.

    causal: leave the first block row out of the colour scale (its queries see a handful of keys,
    the very first only itself, with weight 1, which would make the rest of the map dark)."""
    T = int(pooled.row_edges[-1])
    top = _top(pooled, 1 if causal and pooled.values.shape[0] > 1 else 0)
    R, C = pooled.values.shape
    name = f"head {head}" if head >= 0 else "heads averaged (rollout)"
    title = Text(f"layer {layer} · {name} · {R} x {C} blocks, {pooled.describe()} · colour 0-{top:.2f}", style="bold")
    lines = [title, _tick_line(pooled.col_edges, T)]
    per_line = 2 if colour else 1
    n_lines = (R + per_line - 1) // per_line
    line_starts = [int(pooled.row_edges[k * per_line]) for k in range(n_lines)]
    labelled = _row_labels(line_starts, T)
    levels = _level(pooled.values, top)
    for k in range(n_lines):
        label = fit_label(f"{line_starts[k]:>{len(str(T - 1))}} {labels[line_starts[k]]}", ROW_LABEL_WIDTH)
        row = label if k in labelled else Text("")
        row.no_wrap, row.overflow = True, "crop"
        row.pad_right(ROW_LABEL_WIDTH + 1 - row.cell_len)
        r = k * per_line
        if colour:
            styles = []
            for c in range(C):
                upper = MASKED_STYLE if pooled.empty[r, c] else _rgb(levels[r, c])
                if r + 1 < R:
                    lower = MASKED_STYLE if pooled.empty[r + 1, c] else _rgb(levels[r + 1, c])
                    styles.append(f"{upper} on {lower}")
                else:
                    styles.append(upper)
            _append_runs(row, "▀", styles)
        else:
            row.append(
                "".join(
                    MASKED_CHAR if pooled.empty[r, c] else _shade(float(pooled.values[r, c]) / top) for c in range(C)
                )
            )
        lines.append(row)
    return lines


def _append_runs(text: Text, char: str, styles: list[str]) -> None:
    """Append one `char` per style, consecutive equal styles as one span (fewer escape codes)."""
    start = 0
    for c in range(1, len(styles) + 1):
        if c == len(styles) or styles[c] != styles[start]:
            text.append(char * (c - start), styles[start])
            start = c


def _row_labels(starts: list[int], T: int) -> set[int]:
    """The lines whose first token is labelled: the first line and the lines where a round tick
    (nice_ticks, at least 3 lines apart) falls."""
    ticks = nice_ticks(T, len(starts), 3)
    edges = np.array(starts + [T])
    return {int(np.searchsorted(edges, t, side="right") - 1) for t in ticks}


def _tick_line(col_edges: np.ndarray, T: int) -> Text:
    """Token indices over the columns, at round steps, none overlapping the next."""
    C = len(col_edges) - 1
    cells = [" "] * C
    width = len(str(T - 1)) + 2
    for t in nice_ticks(T, C, width):
        c = int(np.searchsorted(col_edges, t, side="right") - 1)
        mark = f"╵{t}"
        if c + len(mark) <= C and all(ch == " " for ch in cells[max(0, c - 1) : c + len(mark)]):
            cells[c : c + len(mark)] = list(mark)
    return Text(" " * (ROW_LABEL_WIDTH + 1) + "".join(cells), style="dim", no_wrap=True, overflow="crop")


def focus_strip(
    row: np.ndarray, skip: np.ndarray, focus: Focus, labels: list[str], unit: str, how: str, colour: bool, cols: int
) -> list[Text]:
    """The focus word's row [T]: its strongest targets with their positions, then the whole row
    pooled to `cols` blocks on one line (a strip under the map's columns), with the targets' ranks
    and the focus's own position (▲) marked under it."""
    targets = rank_row(row, skip, TARGETS)
    head = f"  {focus.label!r} ({unit} {focus.index:,})"
    if not targets:
        return [Text(f"{head} sees no key outside the sinks", style="yellow")]
    items = []
    for rank, (j, w) in enumerate(targets, start=1):
        where = "itself" if j == focus.index else f"{abs(focus.index - j):,} {'back' if j < focus.index else 'ahead'}"
        items.append(f"{rank}. {labels[j][:16]!r} {unit} {j:,} ({w:.2f}, {where})")
    lines = [Text(f"{head} attends to: " + " · ".join(items))]
    strip = pool_row(row, skip, cols, how)
    top = _top(strip)
    C = strip.values.shape[1]
    line = fit_label(f"row {focus.index}", ROW_LABEL_WIDTH)
    line.overflow = "crop"
    line.pad_right(ROW_LABEL_WIDTH + 1 - line.cell_len)
    if colour:
        levels = _level(strip.values[0], top)
        _append_runs(
            line, " ", [f"on {MASKED_STYLE}" if strip.empty[0, c] else f"on {_rgb(levels[c])}" for c in range(C)]
        )
    else:
        line.append(
            "".join(MASKED_CHAR if strip.empty[0, c] else _shade(float(strip.values[0, c]) / top) for c in range(C))
        )
    lines.append(line)
    marks = [" "] * C
    for rank, (j, _) in reversed(list(enumerate(targets, start=1))):
        marks[_column(strip.col_edges, j)] = str(rank)
    marks[_column(strip.col_edges, focus.index)] = "▲"
    lines.append(Text(" " * (ROW_LABEL_WIDTH + 1) + "".join(marks), style="bold", no_wrap=True, overflow="crop"))
    return lines


def _column(edges: np.ndarray, index: int) -> int:
    return int(np.searchsorted(edges, index, side="right") - 1)
