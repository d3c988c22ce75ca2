"""The comparison figure: two focus maps side by side and their difference.

Each focus map has one row per (layer, head) and one column per word: where the focus word goes.
Columns are the words of both sentences lined up (analysis.compare.align_units), so the third
panel, B - A, shows what moved. Candidate columns are labelled in red, heads that flip their
winning candidate are boxed on every panel. For a causal model the words after the focus word
(which it cannot see) are drawn in the images' neutral grey, never as a dark 0.

The image flags of `show` apply (ImageOptions: preset, size, dpi, colormap, scale, transparent,
annotate): cells and type are sized from the preset, as in render/image. Drawn with matplotlib's
object API on an Agg canvas, inside the rc of render/image (a user's matplotlibrc cannot change
the bytes), and written by its writer without metadata, so a comparison gives the same bytes.
"""

from __future__ import annotations

import math

import numpy as np

from ..analysis.compare import Comparison
from ..analysis.views import head_name
from .image import ImageOptions, Rendered

FLIP_MARK = "⇄"
LABEL_CHARS = 14


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _side_mask(comp: Comparison, key: str) -> np.ndarray | None:
    """[C] True for the columns a causal side's focus cannot see (words after the whole focus span)."""
    side = getattr(comp, key)
    if not side.result.causal or not side.focus.units:
        return None
    last = max(side.focus.units)
    return np.array([(getattr(col, key) is not None and getattr(col, key) > last) for col in comp.columns])


def _excluded_columns(comp: Comparison) -> np.ndarray:
    """[C] True for the columns of tokens a side leaves out of colour scales (its sinks)."""
    out = np.zeros(len(comp.columns), bool)
    for key in ("a", "b"):
        excluded = set(getattr(comp, key).result.excluded)
        out |= [getattr(col, key) in excluded for col in comp.columns]
    return out


def render_compare_image(comp: Comparison, options: ImageOptions = ImageOptions(), fmt: str = "png") -> Rendered:
    """The comparison figure as PNG, SVG or PDF bytes, with its notes."""
    import matplotlib

    from .image.engine import rc

    style = options.style()
    with matplotlib.rc_context():  # measuring and drawing both: the fonts and sizes of the rc
        matplotlib.rcdefaults()  # ignore the user's matplotlibrc: same bytes everywhere
        matplotlib.rcParams.update(rc(style))
        return _draw(comp, options, style, fmt)


def _draw(comp: Comparison, options: ImageOptions, style, fmt: str) -> Rendered:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from .fonts import drawable
    from .image.engine import MASKED_COLOR, fmt_tick, measure, nice_ticks
    from .image.layouts import CAPTIONS, fit_text, ordinal
    from .image.writer import figure_bytes

    notes: list[str] = []
    ma, mb = comp.maps()  # [R, C] each
    diff = mb - ma
    R, C = ma.shape
    mask_a, mask_b = _side_mask(comp, "a"), _side_mask(comp, "b")
    masks = [None if m is None else np.broadcast_to(m, (R, C)) for m in (mask_a, mask_b)]
    mask_d = (
        None
        if masks[0] is None and masks[1] is None
        else np.logical_or(*(np.zeros((R, C), bool) if m is None else m for m in masks))
    )
    causal = mask_d is not None
    flips = comp.flips.reshape(-1)
    row_names = [
        head_name(layer, head) + (f" {FLIP_MARK}" if flips[r] else "")
        for r, (layer, head) in enumerate((la, h) for la in comp.layers for h in comp.heads)
    ]
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
    labels = {k: [drawable(_short(x, LABEL_CHARS)) for x in v] for k, v in labels.items()}
    if comp.kind == "models":
        titles = [
            f"{comp.a.name}: {comp.a.result.model.name}",
            f"{comp.b.name}: {comp.b.result.model.name}",
            f"{comp.b.name} − {comp.a.name}",
        ]
        lines = [f"text: {comp.a.result.text}"]
    else:
        titles = ["A", "B", "B − A"]
        lines = [
            f"A: {comp.a.result.text}",
            f"B: {comp.b.result.text}",
            f"{comp.a.result.model.name} · {comp.a.result.model.config.describe()} · {comp.a.result.view_label}",
        ]
    if causal:
        lines.append("causal model: grey cells are words after the focus word, which it cannot see")
    focus = comp.a.focus.label or "all words (mean over rows)"

    # Colour scales: the two maps share one (fixed 0-1 by default, like every attention image);
    # the difference is symmetric around 0, scaled to its largest change unless a maximum is given.
    view = comp.a.result.view
    scale = options.scale_for(view)
    keep = ~_excluded_columns(comp)
    shown = [np.where(m, 0.0, x) if m is not None else x for x, m in ((ma, masks[0]), (mb, masks[1]))]
    if scale == "fixed" and view != "norm":
        vmax, scale_note = 1.0, ""
    elif isinstance(scale, float):
        vmax, scale_note = scale, f" · scale 0–{scale:g}"
    else:
        vmax = max(max(float(x[:, keep].max()) if keep.any() else 0.0 for x in shown), 1e-6)
        scale_note = " · auto scale"
    d_shown = diff if mask_d is None else np.where(mask_d, 0.0, diff)
    # (at least ±0.01: twins that differ by nothing get a readable bar, not ±1e-6)
    dmax = (
        scale if isinstance(scale, float) else max(float(np.abs(d_shown[:, keep]).max()) if keep.any() else 0.0, 0.01)
    )
    captions = [CAPTIONS.get(view, view) + scale_note] * 2 + [
        f"{titles[2]} · " + ("auto scale" if not isinstance(scale, float) else f"±{scale:g}")
    ]

    # Geometry in inches. Rows and columns take the label font when the figure is automatic;
    # a preset or --size fixes the figure and the cells share what is left.
    m = measure()
    font = style.font
    # Between panels: room for the colour bars' end ticks ("1.0" meets "−0.25").
    pad, gap = style.pad + 0.05, max(style.gap * 3, 0.25, measure().width("1.0 −0.00", style.small) + 0.05)
    head_band = style.title * 1.5 / 72 + len(lines) * style.small * 1.45 / 72 + style.small * 1.6 / 72
    bar_band = 0.1 + 0.12 + style.small * 2.8 / 72  # gap, bar, ticks, caption
    row_w = m.widest(row_names, font) + 0.1
    col_w = m.widest([x for v in labels.values() for x in v], font) + 0.08
    width, height = style.grid_width or style.width, style.height  # three panels: a grid's width
    right = pad + measure().width("+0.00", style.small) / 2  # the last bar's end tick
    if width is None:
        cw = max(font * 1.6 / 72, 0.18)
        width = min(pad + right + row_w + 3 * C * cw + 2 * gap, 30.0)
    if height is None:
        rh = font * 1.35 / 72
        height = min(head_band + R * rh + col_w + bar_band + 2 * pad, style.max_height)
    row_font, col_font = font, font
    for _ in range(4):  # labels shrink with the cells, and the cells grow as the labels shrink
        row_w = m.widest(row_names, row_font or style.min_font) + 0.1
        col_w = m.widest([x for v in labels.values() for x in v], col_font) + 0.08
        cw = (width - pad - right - row_w - 2 * gap) / (3 * C)
        rh = (height - 2 * pad - head_band - col_w - bar_band) / R
        if cw <= 0 or rh <= 0:
            from ..errors import AttnvizError

            raise AttnvizError(f"the figure is too small for {R} heads x {C} words: use a larger --size")
        col_font = max(min(font, cw * 72 / 1.2), style.min_font)
        row_font = min(font, rh * 72 / 1.15)
    step = 1
    if row_font < style.min_font:  # rows too thin for every name: every step-th head's
        step = math.ceil(style.min_font * 1.15 / (rh * 72))
        row_font = style.min_font
        notes.append(
            f"the comparison names every {ordinal(step)} head: its rows are too thin for all "
            "(use a larger --size, or fewer layers/heads)"
        )
    if cw * 72 < col_font * 1.15:
        notes.append("word labels overlap: the columns are too narrow (use a larger --size)")
    panel_w, panel_h = C * cw, R * rh
    left = pad + row_w
    bottom = pad + bar_band + col_w
    fig = Figure(figsize=(width, height), dpi=style.dpi)
    FigureCanvasAgg(fig)
    fig.patch.set_alpha(0.0 if options.transparent else 1.0)
    top = height - pad
    title = drawable(f"where {focus!r} attends, per head (rows) and word (columns)")
    fig.text(
        pad / width,
        top / height,
        fit_text(title, style.title, width - pad - right),
        ha="left",
        va="top",
        fontsize=style.title,
    )
    y = top - style.title * 1.45 / 72
    swatch = style.small / 72  # the grey key's side, before the line about masking
    for n, line in enumerate(lines):
        indent = swatch + 0.06 if causal and n == len(lines) - 1 else 0.0
        fig.text(
            (pad + indent) / width,
            y / height,
            fit_text(drawable(line), style.small, width - pad - right - indent),
            ha="left",
            va="top",
            fontsize=style.small,
            color="#333333",
        )
        y -= style.small * 1.45 / 72
    masked_cmap = matplotlib.colormaps[options.cmap].with_extremes(bad=MASKED_COLOR)
    diff_cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad=MASKED_COLOR)
    panels = ((ma, "a", masks[0]), (mb, "b", masks[1]), (diff, "d", mask_d))
    for k, (data, key, mask) in enumerate(panels):
        x0 = left + k * (panel_w + gap)
        ax = fig.add_axes((x0 / width, bottom / height, panel_w / width, panel_h / height))
        shown_data = data if mask is None else np.ma.masked_array(data, mask)
        if key == "d":
            image = ax.imshow(shown_data, cmap=diff_cmap, vmin=-dmax, vmax=dmax, aspect="auto", interpolation="none")
        else:
            image = ax.imshow(shown_data, cmap=masked_cmap, vmin=0.0, vmax=vmax, aspect="auto", interpolation="none")
        ax.set_title(fit_text(drawable(titles[k]), style.small, panel_w), fontsize=style.small, pad=3)
        ax.set_xticks(range(C))
        ax.set_xticklabels(labels[key], rotation=90, fontsize=col_font)
        for c, tick in enumerate(ax.get_xticklabels()):
            if c in cand_cols:  # colour only: the Hangul font has no bold face
                tick.set_color("#b2182b")
        ax.set_yticks(range(0, R, step))
        ax.set_yticklabels(row_names[::step] if k == 0 else [], fontsize=row_font)
        ax.tick_params(length=2, width=0.5, pad=1.5)
        if k > 0:
            ax.tick_params(axis="y", length=0)
        for b in range(1, len(comp.layers)):  # white rules between layers
            ax.axhline(b * len(comp.heads) - 0.5, color="white", linewidth=1.0)
        for r in np.flatnonzero(flips):
            ax.add_patch(Rectangle((-0.5, r - 0.5), C, 1, fill=False, lw=0.8, ec="magenta"))
        if options.annotate:
            _annotate(ax, image, data, mask, rh, cw, style, notes)
        cax = fig.add_axes((x0 / width, (pad + style.small * 2.8 / 72) / height, panel_w / width, 0.12 / height))
        bar = fig.colorbar(image, cax=cax, orientation="horizontal")
        # Few round ticks that fit the bar (matplotlib's own crowd a narrow one).
        room = panel_w / (m.width("−0.000", style.small) * 1.6)
        if key == "d":
            ticks = [-dmax, 0.0, dmax] if room >= 3 else [-dmax, dmax]
            names = [("−" if t < 0 else "+" if t > 0 else "") + fmt_tick(abs(t)) for t in ticks]
        else:
            ticks = nice_ticks(vmax, room)
            names = [fmt_tick(t) for t in ticks]
        bar.set_ticks(ticks, labels=names)
        bar.ax.tick_params(labelsize=style.small, length=2, width=0.5, pad=1.5)
        bar.outline.set_linewidth(0.5)
        bar.set_label(fit_text(drawable(captions[k]), style.small, panel_w), fontsize=style.small, labelpad=2)
    if causal:  # the key to the grey cells, before the last text line
        fig.add_artist(
            Rectangle(
                (pad / width, (y + style.small * 1.45 / 72 - swatch * 1.05) / height),
                swatch / width,
                swatch / height,
                transform=fig.transFigure,
                facecolor=MASKED_COLOR,
                edgecolor="#8a8a8a",
                linewidth=0.5,
            )
        )
    data = figure_bytes(fig, fmt, style.dpi, options.transparent)
    return Rendered(data, tuple(dict.fromkeys(notes)))


def _annotate(ax, image, data, mask, rh, cw, style, notes) -> None:
    """Each cell's value written in it, when the cells can hold two decimals."""
    size = min(style.font * 0.8, rh * 72 / 1.3, cw * 72 / 2.4)
    if size < style.min_font * 0.75:
        notes.append("cells are too small for --annotate values; they were left out (use a larger --size)")
        return
    for (i, j), value in np.ndenumerate(data):
        if mask is not None and mask[i, j]:
            continue
        text = f"{value:.2f}".replace("0.", ".", 1)
        r, g, b, _ = image.cmap(image.norm(value))
        light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5
        ax.text(j, i, text, ha="center", va="center", fontsize=size, color="black" if light else "white")
