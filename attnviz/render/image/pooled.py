"""Images of long texts: cells pooled to a size an image can show, labels thinned, and said so.

A 3,000-token head is nine million cells; drawn as they are, a 12-inch panel gives each less than
a pixel (what shows is whatever the resampler keeps) and its 6,000 token labels take matplotlib
longer to lay out than everything else. Above MAX_CELLS tokens, `pool_for_image` turns the
result into one of blocks of consecutive tokens: every map pooled to at most MAX_CELLS x MAX_CELLS
(analysis/pooling.py, the max of each block by default), each block labelled by its first token
("1200:lighthouse", thinned by the layouts to what fits); the title says "attention · blocks", the
subtitle (where the text was) and a note say how the cells are pooled and over how many tokens.

Masked cells (look-ahead, and outside the sliding window of a local layer) are left out of each
block's value; a block with only masked cells is drawn masked: the pooled result keeps its block
edges (`AttentionResult.blocks`), and its `masked(layer)` marks exactly those blocks
(masks.BlockAxes). The row of the block that holds the focus token is that token's own row pooled
over the columns (not the block's maximum), so the focus layout shows the focus token's attention.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...analysis.pooling import DEFAULT_POOLING, block_edges, nice_ticks, pool_map, pool_row
from ...errors import AttnvizError
from ...masks import BlockAxes
from ...result import AttentionResult

MAX_CELLS = 1000  # cells per side drawn at most (a panel of 12 inches at 100 dpi: ~1 pixel each)
# Per layout: a layer's or the model's panels are smaller; the focus layout's cells must be wide
# enough for a ring and a row (24 inches at most for every column).
LAYOUT_CELLS = {"head": MAX_CELLS, "layer": 500, "model": 250, "focus": 200}
FOCUS_LABELS = 40  # the focus layout labels every column: at most this many are named
LABEL_CHARS = 14
BLANK = "∅"  # what AttentionResult.labels makes of an empty token: a block left unnamed


def pool_for_image(
    result: AttentionResult,
    focus: int | None = None,
    max_cells: int = MAX_CELLS,
    how: str = DEFAULT_POOLING,
    name_every: int | None = None,
) -> tuple[AttentionResult, int | None, str | None]:
    """(the result to draw, the focus index in it, a note) — unchanged with no note when the text
    has at most `max_cells` tokens, else the pooled result of blocks, the focus's block and the note.
    name_every: label only about this many blocks, at round token positions (None: every block)."""
    T = len(result.tokens)
    if result.key_tokens is not None:  # cross-attention: rows and columns are different texts
        if max(T, len(result.key_tokens)) <= max_cells:
            return result, focus, None
        raise AttnvizError(
            f"cross-attention images draw at most {max_cells} tokens a side in this layout; "
            "choose one head with --layer and --head, or shorter texts"
        )
    if T <= max_cells:
        return result, focus, None
    edges = block_edges(T, max_cells)
    R = len(edges) - 1
    L, H = len(result.layers), len(result.heads)
    weights = np.zeros((L, H, R, R), dtype=np.float32)
    block_of = np.searchsorted(edges, np.arange(T), side="right") - 1  # [T] token -> block
    for li in range(L):
        # [T, T]: per layer (look-ahead, and outside a local layer's window); the pooled result's
        # own mask (BlockAxes) marks the blocks left empty, the same as pool_map's `empty`
        mask = result.masked(result.layers[li])
        for hi in range(H):
            pooled = pool_map(result.weights[li, hi], mask, R, R, how)
            weights[li, hi] = pooled.values
            if focus is not None:
                row = pool_row(result.weights[li, hi, focus], mask[focus], R, how)
                weights[li, hi, block_of[focus]] = row.values[0]
    size = int(np.diff(edges).max())
    labels = result.labels
    # Each block is named by its first token ("1203:lighthouse"); the head, layer and model layouts
    # thin them to what their panels hold at a readable size. The focus layout names every column,
    # so there only the blocks at round positions are named (the others are BLANK, dropped).
    named = {b: int(edges[b]) for b in range(R)}  # block -> the token that names it
    if name_every is not None:
        ticks = nice_ticks(T, R, max(1, -(-R // name_every)))
        named = {int(np.searchsorted(edges, t, side="right") - 1): t for t in ticks}
    tokens = [f"{named[b]}:{labels[named[b]][:LABEL_CHARS]}" if b in named else "" for b in range(R)]
    if focus is not None:
        fb = int(block_of[focus])
        tokens[fb] = f"{focus}:{labels[focus][:LABEL_CHARS]}"
    word = "largest weight" if how == "max" else "mean weight"
    note = (
        f"cells are pooled: {T:,} tokens in {R} blocks of up to {size} tokens, each cell the {word} of its "
        f"block (at most {max_cells} cells per side); labels name "
        + ("each block's first token" if name_every is None else "the tokens at round positions")
    )
    if focus is not None:
        note += f"; the focus token's block row is token {focus}'s own row"
    pooled_result = replace(
        result,
        tokens=tokens,
        offsets=[(0, 0)] * R,
        word_ids=list(range(R)),
        special=[False] * R,
        weights=weights,
        excluded=tuple(sorted({int(block_of[i]) for i in result.excluded})),
        # The title says "attention · blocks" and the subtitle, where the text was, the pooling.
        units="blocks",
        blocks=BlockAxes(tuple(int(e) for e in edges), None if focus is None else (focus, int(block_of[focus]))),
        text=f"{T:,} tokens pooled to {R} x {R} blocks of up to {size} x {size}, the {how} of each · "
        + _opening(result.text),
        notes=list(result.notes),
    )
    return pooled_result, None if focus is None else int(block_of[focus]), note


def _opening(text: str, chars: int = 60) -> str:
    """The first words of a long text for the subtitle (the layouts' fitting measures a long line
    a few percent short at print resolution, so it is cut here, well inside the width)."""
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " …"
