"""The comparison figure: two focus maps side by side and their difference.

Each focus map has one row per (layer, head) and one column per word: where the focus word goes.
Columns are the words of both sentences lined up (analysis.compare.align_units), so the third
panel, B - A, shows what moved. Candidate columns are drawn in bold, heads that flip their
winning candidate carry a mark on every panel.

matplotlib through its object API with the Agg canvas (no pyplot, no global backend switch),
drawn inside matplotlib's default rc (a user's matplotlibrc cannot change the bytes) and saved
without metadata, so the same comparison gives the same PNG bytes.
"""

from __future__ import annotations

import io

import numpy as np

from ..analysis.compare import Comparison, head_name

FLIP_MARK = "⇄"
CELL_W = 0.34     # inches per word column
CELL_H = 0.17     # inches per head row
LABEL_CHARS = 14


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_compare_png(comp: Comparison, cmap: str = "viridis", dpi: float = 120) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from .fonts import drawable, register_fonts

    ma, mb = comp.maps()                                                            # [R, C] each
    diff = mb - ma
    R, C = ma.shape
    flips = comp.flips.reshape(-1)
    row_labels = [head_name(layer, head) + (f" {FLIP_MARK}" if flips[r] else "")
                  for r, (layer, head) in enumerate((l, h) for l in comp.layers for h in comp.heads)]
    cand_cols: set[int] = set()
    for side, key in ((comp.a, "a"), (comp.b, "b")):
        if side.scores is not None:
            units = {u for c in side.scores.candidates for u in c.units}
            cand_cols |= {i for i, col in enumerate(comp.columns) if getattr(col, key) in units}
    labels = {
        "a": [comp.a.result.labels[col.a] if col.a is not None else "–" for col in comp.columns],
        "b": [comp.b.result.labels[col.b] if col.b is not None else "–" for col in comp.columns],
        "d": [col.label for col in comp.columns],
    }
    if comp.kind == "models":
        titles = [f"{comp.a.name}: {comp.a.result.model.name}", f"{comp.b.name}: {comp.b.result.model.name}",
                  f"{comp.b.name} − {comp.a.name}"]
        lines = [f"text: {comp.a.result.text}"]
    else:
        titles = ["A", "B", "B − A"]
        lines = [f"A: {comp.a.result.text}", f"B: {comp.b.result.text}",
                 f"{comp.a.result.model.name} · {comp.a.result.model.config.describe()} · {comp.a.result.view_label}"]
    focus = comp.a.focus.label or "all words (mean over rows)"
    vmax = max(float(ma.max()), float(mb.max()), 1e-12)
    dmax = max(float(np.abs(diff).max()), 1e-12)

    longest = max(len(_short(x, LABEL_CHARS)) for key in labels for x in labels[key])
    panel_w, panel_h = max(C * CELL_W, 1.6), R * CELL_H
    left, gap, right = 0.9, 0.5, 0.3
    head_room = 0.35 + 0.2 * len(lines) + 0.3                       # title, text lines, panel titles
    cbar_y, label_room = 0.25, 0.15 + 0.075 * longest               # colour bars under the word labels
    bottom = cbar_y + 0.1 + 0.2 + label_room
    width = left + 3 * panel_w + 2 * gap + right
    height = head_room + panel_h + bottom
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        families = list(register_fonts())
        matplotlib.rcParams.update({"font.family": families, "font.size": 8, "svg.hashsalt": "attnviz"})
        fig = Figure(figsize=(width, height), dpi=dpi)
        FigureCanvasAgg(fig)
        fig.text(left / width, 1 - 0.2 / height, drawable(f"where {focus!r} attends, per head (rows) and word (columns)"),
                 ha="left", va="center", fontsize=10)
        for n, line in enumerate(lines):
            fig.text(left / width, 1 - (0.42 + 0.2 * n) / height, drawable(_short(line, int(width * 14))),
                     ha="left", va="center", fontsize=8)
        for k, (data, key, title) in enumerate(((ma, "a", titles[0]), (mb, "b", titles[1]), (diff, "d", titles[2]))):
            x0 = left + k * (panel_w + gap)
            ax = fig.add_axes((x0 / width, bottom / height, panel_w / width, panel_h / height))
            if key == "d":
                image = ax.imshow(data, cmap="RdBu_r", vmin=-dmax, vmax=dmax, aspect="auto", interpolation="nearest")
            else:
                image = ax.imshow(data, cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto", interpolation="nearest")
            ax.set_title(drawable(_short(title, max(12, int(panel_w * 11)))), fontsize=8)
            ax.set_xticks(range(C))
            ax.set_xticklabels([drawable(_short(x, LABEL_CHARS)) for x in labels[key]], rotation=90, fontsize=7)
            for c, tick in enumerate(ax.get_xticklabels()):
                if c in cand_cols:  # colour only: the Hangul font has no bold face
                    tick.set_color("#b2182b")
            ax.set_yticks(range(R))
            ax.set_yticklabels(row_labels if k == 0 else ["" for _ in row_labels], fontsize=6)
            if k > 0:
                ax.tick_params(axis="y", length=0)
            for r in np.flatnonzero(flips):
                ax.add_patch(Rectangle((-0.5, r - 0.5), C, 1, fill=False, lw=0.8, ec="magenta"))
            cax = fig.add_axes((x0 / width, cbar_y / height, panel_w / width, 0.1 / height))
            bar = fig.colorbar(image, cax=cax, orientation="horizontal")
            bar.ax.tick_params(labelsize=6)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()
