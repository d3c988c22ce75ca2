"""The layers x heads map of a causal effect (ablation: clean - ablated; patching: fraction of the
gap restored) in the terminal, and as a PNG. Plain arrays in, no torch.

Terminal: one signed number per cell on a diverging background (red: the head supports the right
answer, blue: it works against it; white near 0), the strongest heads listed below. When piped the
colours drop away and the numbers stay.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text


def diverging(value: float, scale: float) -> tuple[int, int, int]:
    """RGB from blue (-scale) through white (0) to red (+scale), like matplotlib's RdBu_r."""
    t = 0.0 if scale <= 0 else max(-1.0, min(1.0, value / scale))
    red, blue = (178, 24, 43), (33, 102, 172)
    end = red if t > 0 else blue
    a = abs(t)
    return tuple(round(255 + (c - 255) * a) for c in end)


def _style(value: float, scale: float) -> str:
    r, g, b = diverging(value, scale)
    ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 128 else "white"
    return f"{ink} on rgb({r},{g},{b})"


def top_cells(values: np.ndarray, n: int = 5) -> list[tuple[int, int, float]]:
    """The n cells of largest |value|: (layer, head, value), largest first (ties: lower layer, head)."""
    flat = np.abs(np.nan_to_num(values)).ravel()
    order = np.lexsort((np.arange(flat.size), -flat))[:n]
    return [(int(i // values.shape[1]), int(i % values.shape[1]), float(values.ravel()[i])) for i in order]


def render_effect_grid(
    console: Console, title: str, values: np.ndarray, digits: int = 2, extra_column: np.ndarray | None = None
) -> None:
    """values [L, H] signed; `extra_column` [L] (the whole layer) drawn after the heads."""
    scale = float(np.nanmax(np.abs(values))) if values.size else 0.0
    if extra_column is not None and extra_column.size:
        scale = max(scale, float(np.nanmax(np.abs(extra_column))))
    console.print(Text(title, style="italic"))
    table = Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("layer", justify="right", no_wrap=True)
    for head in range(values.shape[1]):
        table.add_column(f"h{head}", justify="right", no_wrap=True)
    if extra_column is not None:
        table.add_column("layer", justify="right", no_wrap=True)
    for layer in range(values.shape[0]):
        cells = [str(layer)]
        row = list(values[layer]) + ([extra_column[layer]] if extra_column is not None else [])
        for v in row:
            cells.append(Text(f"{v:+.{digits}f}", style=_style(float(v), scale)))
        table.add_row(*cells)
    console.print(table)


def effect_png(
    values: np.ndarray, title: str, label: str, dpi: float = 120, extra_column: np.ndarray | None = None
) -> bytes:
    """A PNG heatmap of values [L, H] (diverging, symmetric around 0, numbers in the cells when
    they fit), with the whole-layer column after a gap when given."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .image.writer import figure_bytes

    data = values if extra_column is None else np.column_stack([values, np.full(len(values), np.nan), extra_column])
    L, W = data.shape
    scale = float(np.nanmax(np.abs(data))) if np.isfinite(data).any() else 1.0
    scale = scale or 1.0
    fig = Figure(figsize=(max(4.0, 0.55 * W + 1.8), max(3.0, 0.32 * L + 1.4)), facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto")
    labels = [f"h{h}" for h in range(values.shape[1])] + (["", "layer"] if extra_column is not None else [])
    ax.set_xticks(range(W), labels, fontsize=7)
    ax.set_yticks(range(L), [str(i) for i in range(L)], fontsize=7)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(title, fontsize=9)
    if L * W <= 400:
        for (i, j), v in np.ndenumerate(data):
            if np.isfinite(v):
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if abs(v) > 0.6 * scale else "black",
                )
    fig.colorbar(image, ax=ax, label=label)
    fig.tight_layout()
    return figure_bytes(fig, "png", dpi, False)
