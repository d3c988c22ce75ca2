"""The interactive page of a long text: a pooled overview of each head and a zoom at full resolution.

The page of html.py stores every weight of every view and level and draws all of a head's cells or
lines: right for a sentence, megabytes of JSON and seconds of drawing for a page of text. Above
html.LONG_FROM tokens, render_html builds this page instead (same offline, self-contained file, same
Content-Security-Policy):

- an overview of every head it holds: the map pooled to at most OVERVIEW_CELLS blocks per side
  (the max of each block, analysis/pooling.py), drawn on a canvas;
- a zoom: a window of the selected head at full resolution (one cell per token pair, labels on
  both axes), moved by dragging on the overview, clicking the focus strip, or with the arrow keys
  (Shift: a whole window; + and -: the window's size; [ and ]: the previous or next head);
- the focus word's row in full (one pixel column per token) with its strongest targets.

Storage. Every map is kept whole for the zoom, as bytes: a level 0..255 per cell on a square-root
scale (weight = (level / 255)^2 x the head's largest weight, so small weights keep about two
significant digits where a linear byte would round them to 0), then zero runs (html_page.zero_runs),
then base64, each map in a script element of its own (the first before the page's script, the
others after it, so the first view is drawn while the browser still reads them). 2,000 tokens x 9
heads of SmolLM2's layer 0 (its broadest) make 17.5 MB (layer 13: 2 MB). A page holds at most
MAX_VALUES stored cells (one layer of 9 heads at 2,000 tokens, four at 1,000); `show --html` puts in only
the layers chosen with --layer (layer 0 by default) and the page says which it holds. Tokens
only (no word level) and the first view only (attention); the page says so when others were asked.
"""

from __future__ import annotations

import base64
import html

import numpy as np

from ..analysis.pooling import DEFAULT_POOLING, pool_map
from ..result import AttentionResult

FORMAT = "attnviz-long/1"
OVERVIEW_CELLS = 200  # blocks per side of an overview at most
ZOOM = 64  # tokens per side of the zoom window at first
TARGETS = 10  # targets of the focus word listed per head
# Weights below this fraction of a head's top (its largest outside masked cells and sinks) are
# stored as 0 in the zoom's maps: a linear colour scale cannot show them (1/255), the square-root
# one barely (3%); most weights of a long text are that small, and zero runs store them for free.
FLOOR = 1e-3
MAX_VALUES = 40_000_000  # stored cells in a page at most: one layer of 9 heads at 2,000 tokens, four at 1,000


def sqrt_levels(weights: np.ndarray, scale: float) -> np.ndarray:
    """[...] weights -> uint8-range int levels on a square-root scale of `scale`."""
    return np.rint(np.sqrt(np.clip(weights / scale, 0.0, 1.0)) * 255).astype(np.int64)


def encode(weights: np.ndarray, floor: float = 0.0) -> dict:
    """{"scale", "b64"}: the square-root levels of `weights`, those below `floor` stored as 0,
    zero-run encoded, base64."""
    from .html_page import zero_runs

    top = float(weights.max()) if weights.size else 0.0
    scale = top if top > 0 else 1.0
    flat = weights.astype(np.float64, copy=False).ravel()
    levels = sqrt_levels(np.where(flat < floor, 0.0, flat), scale)
    raw = zero_runs(levels, 255).astype("u1").tobytes()
    return {"scale": scale, "b64": base64.b64encode(raw).decode("ascii")}


def decode(entry: dict, count: int) -> np.ndarray:
    """The inverse of `encode`, computed as the page does: (level / 255)^2 x scale."""
    units = np.frombuffer(base64.b64decode(entry["b64"]), dtype="u1").astype(np.int64)
    levels = np.zeros(count, dtype=np.int64)
    i = o = 0
    while i < len(units):
        if units[i] == 0:
            o += int(units[i + 1])
            i += 2
        else:
            levels[o] = units[i]
            o += 1
            i += 1
    if o != count:
        raise ValueError(f"decoded {o} values, expected {count}")
    return (levels / 255.0) ** 2 * entry["scale"]


def long_page_data(
    result: AttentionResult, *, focus: str | None = None, notes: list[str] | None = None, how: str = DEFAULT_POOLING
) -> dict:
    """The JSON the long page's script reads (one result, token level)."""
    from ..analysis.focus import find_pronoun, resolve_focus

    T = len(result.tokens)
    notes = list(notes or []) + list(result.notes)
    found = resolve_focus(result, focus) if focus is not None else find_pronoun(result)
    if found is not None and found.note:
        notes.append(found.note)
    # Maps in order while they fit MAX_VALUES (the first always: a page shows something).
    pairs = [(layer, head) for layer in result.layers for head in result.heads]
    held = pairs[: max(1, MAX_VALUES // max(T * T, 1))]
    if len(held) < len(pairs):
        left = pairs[len(held) :]
        notes.append(
            f"This page holds {len(held)} of the {len(pairs)} maps asked for (up to layer {held[-1][0]} head "
            f"{held[-1][1]}): the maps of {T:,} tokens are large, so layer {left[0][0]} head {left[0][1]} and "
            "the ones after it were left out; choose layers and heads with --layer and --head."
        )
    held_set = set(held)
    R = min(T, OVERVIEW_CELLS)
    heads = []
    for li, layer in enumerate(result.layers):
        if (layer, result.heads[0]) not in held_set:
            break
        mask = result.masked(layer)  # [T, T]
        skip = mask.copy()
        skip[:, result.sink_indices()] = True  # [T, T] for the colour top without the sinks
        for hi, head in enumerate(result.heads):
            if (layer, head) not in held_set:
                break
            w = result.weights[li, hi]  # [T, T]
            pooled = pool_map(w, mask, R, R, how)
            # In a causal model the first queries see a handful of keys (the very first only itself,
            # with weight 1): the colour scale starts below the overview's first block row.
            first = int(pooled.row_edges[1]) if result.causal and T > 1 else 0
            top = float(np.where(mask, 0.0, w)[first:].max())
            top_no_sinks = float(np.where(skip, 0.0, w)[first:].max())
            entry = {
                "layer": layer,
                "head": head,
                # colour scales: the largest weight outside masked cells, with and without the sinks
                "top": max(top, 1e-9),
                "top_no_sinks": max(top_no_sinks, 1e-9),
                "overview": encode(pooled.values),
                "full": encode(w, FLOOR * top_no_sinks),
            }
            if found is not None:
                row = np.where(mask[found.index], -1.0, w[found.index])  # [T]
                if result.excluded:
                    row[list(result.excluded)] = -1.0
                order = np.argsort(-row, kind="stable")[:TARGETS]
                entry["targets"] = [[int(j), float(w[found.index, j])] for j in order if row[j] >= 0]
            heads.append(entry)
    return {
        "format": FORMAT,
        "text": result.text,
        "model": {
            "name": result.model.name,
            "learned": result.model.learned,
            "num_layers": result.model.config.num_layers,
            "num_heads": result.model.config.num_heads,
        },
        "T": T,
        "labels": result.labels,
        "special": result.special,
        "sinks": result.sink_indices(),
        "excluded": list(result.excluded),
        # Sinks out of the colour scale at first: with --exclude-sinks, and for any causal model (its
        # first token takes most of every row, which would leave the rest of a long map dark).
        "sinks_out": bool(result.excluded) or result.causal,
        "causal": result.causal,
        # Per layer held, what its queries see (masks.py; masks.js applies it to cells and blocks).
        "masks": {str(layer): result.mask_rule(layer).to_json() for layer in sorted({layer for layer, _ in held})},
        "layers": sorted({layer for layer, _ in held}),
        "pool": {"how": how, "edges": pooled.row_edges.tolist(), "block": int(np.diff(pooled.row_edges).max())},
        "zoom": min(ZOOM, T),
        "focus": None if found is None else {"index": found.index, "label": result.labels[found.index]},
        "heads": heads,
        "notes": notes,
    }


def render_long_html(
    result: AttentionResult,
    *,
    focus: str | None = None,
    notes: list[str] | None = None,
) -> str:
    """The long-text page as a string (same input, same bytes)."""
    from .html_page import asset, page_script, hangul_font_css, script_json

    data = long_page_data(result, focus=focus, notes=notes)
    # The full maps go into script elements of their own, the first head's before the script and
    # the others after it: the script draws the overviews, the zoom and the focus row of the first
    # head while the browser is still reading the rest (megabytes), and the JSON it parses is small.
    maps = []
    for k, entry in enumerate(data["heads"]):
        maps.append(entry["full"].pop("b64"))
        entry["full"]["id"] = f"attnviz-full-{k}"
    blocks = [
        f'<script type="application/octet-stream" id="attnviz-full-{k}">{b64}</script>\n' for k, b64 in enumerate(maps)
    ]
    script, digest = page_script("long.js")
    font = hangul_font_css(data["text"] + "".join(data["labels"]))
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
        + ("font-src data:; " if font else "")
        + "base-uri 'none'; form-action 'none'"
    )
    text = data["text"]
    short = text if len(text) <= 80 else text[:79] + "…"
    e = html.escape
    size = f"{len(result.tokens):,} tokens"
    return "".join(
        [
            "<!doctype html>\n",
            '<html lang="und"><head><meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>attnviz: {e(short)}</title>\n",
            f"<style>{font}{asset('long.css')}</style>\n",
            "</head><body>\n",
            f'<main id="attnviz" class="long" aria-label="attention of a long text ({size})">'
            f'<h1 dir="auto">{e(short)} <span class="meta">({size})</span></h1><noscript>This interactive view '
            "needs JavaScript; the same data is available with attnviz show --format json.</noscript></main>\n",
            f'<script type="application/json" id="attnviz-data">{script_json(data)}</script>\n',
            *blocks[:1],
            f"<script>{script}</script>\n",
            *blocks[1:],
            "</body></html>\n",
        ]
    )


def long_notes(results: dict, candidates: list[str] | None, level: str | None) -> list[str]:
    """What the long page leaves out of what was asked, said on the page."""
    notes = []
    others = [name for name in results if name != "attention"]
    if others and "attention" in results:
        notes.append(f"The page of a long text shows the attention only ({', '.join(others)} left out).")
    if candidates:
        notes.append("--candidates are not shown on the page of a long text; the terminal summary has them.")
    if level == "words":
        notes.append("The page of a long text shows tokens only (no word level).")
    return notes
