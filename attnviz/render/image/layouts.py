"""The page layouts: what each image shows and where, as pure geometry in inches (no artists).

  head   one head: a square [T, T] heatmap, query tokens down the left, key tokens along the bottom
  layer  the heads of one layer in a grid, one shared colour scale
  model  layers x heads small multiples; token labels only when they are readable
  focus  one row per (layer, head), one column per token: where the focus token attends

Cross-attention of an encoder-decoder model (result.key_tokens set) is drawn the same way with
rows for the target's tokens and columns for the source's: panels are [T, Tk] rectangles of
square cells, the title names the kind ("cross-attention: target → source"), and so it does for
encoder and decoder self-attention.

Each builder returns a `Page` (engine.py draws it), with the notes of what it had to leave out.
Rows and columns that cannot hold a readable label get none. Every image has one colour scale
(`colour_scale`: fixed 0-1, auto or a given maximum) with a captioned colour bar; the cells a
query cannot see (AttentionResult.masked: look-ahead in a causal model, outside the sliding window
in a local layer) carry a mask, drawn in engine.MASKED_COLOR and keyed under the colour bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...analysis.views import mixed_name
from ...errors import AttnvizError
from ...result import AttentionResult
from .engine import Label, Page, Panel, fmt_tick, measure, nice_ticks
from .options import Style

_ELLIPSIS = "…"
MASKED_LABEL = "masked"  # next to the grey swatch under the colour bar when cells are masked
# What the colour bar measures, per view (rollout and norm state their own scale).
CAPTIONS = {
    "attention": "attention weight",
    "rollout": "rollout: attention flow",
    "norm": "norm: weight × ‖value‖",
    "value-zeroing": "value zeroing: mixing score",
    "value-zeroing-heads": "value zeroing: mixing score",
}


def panel_count(result: AttentionResult, layout: str) -> int:
    return {"head": 1, "focus": 1, "layer": len(result.heads), "model": len(result.layers) * len(result.heads)}[layout]


def _shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + _ELLIPSIS


def _cell_value(value: float) -> str:
    """Cell annotations: two decimals without the leading zero (".42"), so they fit a cell."""
    if value >= 0.995:
        return "1"
    text = f"{value:.2f}"
    return text[1:] if text.startswith("0") else text


def _token_labels(result: AttentionResult, style: Style) -> tuple[list[str], list[str]]:
    """Labels of the rows (queries) and their colours (special tokens in grey)."""
    from ..fonts import drawable

    labels = [_shorten(drawable(label), style.label_chars) for label in result.labels]
    colors = ["#777777" if special else "black" for special in result.special]
    return labels, colors


def _key_labels(result: AttentionResult, style: Style) -> tuple[list[str], list[str]]:
    """Labels of the columns (keys) and their colours: the rows' own, or for cross-attention the
    source's tokens."""
    if result.key_tokens is None:
        return _token_labels(result, style)
    from ..fonts import drawable

    labels = [_shorten(drawable(label), style.label_chars) for label in result.key_labels]
    colors = ["#777777" if special else "black" for special in result.key_special]
    return labels, colors


# Encoder-decoder models: which attention an image shows, in its title.
KIND_TITLES = {
    "encoder": "encoder self-attention",
    "decoder": "decoder self-attention (causal)",
    "cross": "cross-attention: target → source",
}


def _axis_names(result: AttentionResult) -> tuple[str, str]:
    """(the rows' name, the columns' name) of a head's heatmap."""
    if result.key_tokens is not None:
        return "target token (query)", "source token (key)"
    return "query (attending)", "key (attended to)"


def _header(page: Page, result: AttentionResult, style: Style, title: str) -> float:
    """Title (and the sentence as subtitle); returns the inches the header takes from the top."""
    from ..fonts import drawable

    m = measure()
    top = page.height - style.pad
    room = page.width - 2 * style.pad
    title = drawable(title)
    size = style.title
    while size > style.min_font and m.width(title, size) > room:
        size -= 0.5
    page.labels.append(Label(fit_text(title, size, room), page.width / 2, top, size, va="top"))
    used = style.pad + size * 1.3 / 72
    if style.subtitle:
        sentence = drawable(" ".join(result.text.split()))
        if result.key_text is not None:  # cross-attention: both texts, the rows' first
            sentence = drawable(
                f"target: {' '.join(result.text.split())} · source: {' '.join(result.key_text.split())}"
            )
        if result.truncated:
            sentence += " [truncated]"
        page.labels.append(
            Label(
                fit_text(sentence, style.small, room),
                page.width / 2,
                top - used + style.pad,
                style.small,
                va="top",
                color="#333333",
            )
        )
        used += style.small * 1.35 / 72
    return used + style.gap


def fit_text(text: str, size: float, room: float) -> str:
    m = measure()
    if m.width(text, size) <= room:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with an ellipsis
        mid = (lo + hi + 1) // 2
        if m.width(text[:mid] + _ELLIPSIS, size) <= room:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + _ELLIPSIS


def _fit_caption(caption: str, size: float, room: float) -> str:
    """The colour bar's caption, in shorter words before it is cut: a short bar (a grid's) still
    says which scale it is on ("weight · auto" rather than "attention weight · auto sc…")."""
    m = measure()
    shorter = caption.replace(" · auto scale", " · auto").replace("attention weight", "weight")
    for text in (caption, caption.replace(" · auto scale", " · auto"), shorter):
        if m.width(text, size) <= room:
            return text
    return fit_text(shorter, size, room)


@dataclass(frozen=True)
class Scale:
    """One image's colour scale: 0 to vmax, whether weights go beyond it, and what it measures."""

    vmax: float
    over: bool
    caption: str

    def tick_width(self, style: Style) -> float:
        """The widest colour-bar tick label, whatever the bar's height (engine.nice_ticks)."""
        texts = {fmt_tick(v) for room in (2, 3, 4, 5, 6) for v in nice_ticks(self.vmax, room)}
        return measure().widest([("≥" if self.over else "") + t for t in texts], style.small)


def _cbar_width(style: Style, key: list[str], scale: Scale) -> float:
    """Inches the colour bar takes on the right: gap, its caption, the bar, tick labels (or the
    masked key's lines), padding."""
    texts = max(scale.tick_width(style), measure().widest(key, style.small))
    return style.gap / 2 + _caption_band(style) + style.cbar + _tick_room(style) + texts + style.pad


def _tick_room(style: Style) -> float:
    return max(0.03, style.small / 250) + 0.03  # tick mark, then the gap to its label (engine.py)


def _caption_band(style: Style) -> float:
    """Between the panels and the colour bar: its caption, written upwards."""
    return 0.025 + style.small * 1.15 / 72


def layer_masks(result: AttentionResult, layers: list[int]) -> np.ndarray | None:
    """[len(layers), T, T] True where query i cannot see key j in each layer (AttentionResult.masked:
    look-ahead, outside a local layer's window), or None when no cell of these layers is masked."""
    masks = np.stack([result.masked(layer) for layer in layers])
    return masks if masks.any() else None


def mask_key(result: AttentionResult, layers: list[int]) -> list[str]:
    """The lines next to the grey swatch under the colour bar: [] when no cell of these layers is
    masked; "masked" for the look-ahead mask alone; with a sliding window, which cells are masked
    ("masked: look-ahead," / "outside the 4-token window")."""
    rules = [result.mask_rule(layer) for layer in layers]
    windows = sorted({rule.window for rule in rules if rule.window is not None})
    if not windows:
        return [MASKED_LABEL] if any(rule.causal for rule in rules) else []
    if result.causal:
        return [f"{MASKED_LABEL}: look-ahead,", f"outside the {windows[0]}-token window"]
    return [f"{MASKED_LABEL}: outside the", f"{windows[0]}-token window"]


def _mask_note(result: AttentionResult, layers: list[int]) -> str | None:
    """What the grey cells are, said in a note when some shown layer attends within a window."""
    local = [layer for layer in layers if result.window(layer) is not None]
    if not local:
        return None
    what = "keys after the query (look-ahead) and keys" if result.causal else "keys"
    note = f"grey cells are masked: {what} outside the sliding window of {result.window(local[0])} tokens in "
    if len(local) == len(layers):
        return note + "every layer shown"
    names = ("local layers " if len(local) > 1 else "local layer ") + ", ".join(map(str, local))
    return note + names + f" (the other layers see every {'earlier ' if result.causal else ''}token)"


def colour_scale(result: AttentionResult, options, data: np.ndarray, mask: np.ndarray | None) -> Scale:
    """The colour bar's top for `data` ([..., keys], the weights one image shows), whether some
    weight is above it, and the caption that says what the colours measure and on which scale.

    fixed: 1 (attention and rollout rows sum to one); auto: the largest weight shown, leaving out
    the keys in result.excluded (attention sinks) and masked cells; a number: that top. Without a
    --scale, a result that excludes sinks gets auto, as the terminal tables do.
    """
    from ..fonts import drawable

    scale = options.scale_for(result.view)
    if options.scale is None and result.excluded:  # sinks left out (--exclude-sinks): of the scale too
        scale = "auto"
    what = CAPTIONS.get(result.view, result.view)
    shown = data if mask is None else np.where(mask, 0.0, data)
    if scale == "fixed":
        if result.view == "norm":
            raise AttnvizError(
                "--scale fixed (0-1) does not suit the norm view, whose weights are not bounded "
                "by one: use --scale auto or a maximum such as 5"
            )
        vmax, caption = 1.0, what
    elif scale == "auto":
        keep = np.ones(shown.shape[-1], bool)
        keep[[i for i in result.excluded if i < len(keep)]] = False
        vmax = float(shown[..., keep].max()) if keep.any() else 0.0
        caption = f"{what} · auto scale"
        if result.excluded:  # the sinks would set the top and wash out everything else
            caption = f"{what} · auto, without " + " ".join(result.key_labels[i] for i in result.excluded)
    else:
        vmax, caption = float(scale), f"{what} · scale 0–{scale:g}"
    vmax = max(vmax, 1e-6)
    return Scale(vmax, bool(shown.max() > vmax * (1 + 1e-4)), drawable(caption))


def _colour_bar(
    page: Page, result: AttentionResult, style: Style, scale: Scale, right: float, y: float, h: float, layers: list[int]
) -> None:
    """The colour bar right of the panels that end at `right`, from y, h tall, its caption before
    it; when cells of `layers` are masked, the grey swatch that says which takes its bottom, its
    key's lines (mask_key) right of it."""
    page.vmax, page.over = scale.vmax, scale.over
    x = right + style.gap / 2 + _caption_band(style)
    w = style.cbar
    key = mask_key(result, layers)
    note = _mask_note(result, layers)
    if note is not None:
        page.notes.append(note)
    if key:
        line = style.small * 1.25 / 72
        room = w + style.small * 1.6 / 72 + (len(key) - 1) * line
        if h > 3 * room:
            # The swatch at the top of its room, the first line beside it, the others below.
            sy = y + (len(key) - 1) * line
            page.swatch = (x, sy, w, w)
            for k, text in enumerate(key):
                page.labels.append(
                    Label(
                        text, x + w + _tick_room(style), sy + w / 2 - k * line, style.small, ha="left", color="#444444"
                    )
                )
            y, h = y + room, h - room
        elif note is None and result.causal:
            page.notes.append("grey cells are masked: a causal model's tokens cannot attend to later ones")
    page.cbar = (x, y, w, h)
    page.labels.append(
        Label(
            _fit_caption(scale.caption, style.small, h),
            x - 0.025,
            y + h / 2,
            style.small,
            ha="center",
            va="bottom",
            rotation=90,
            color="#444444",
        )
    )


def _model_title(result: AttentionResult) -> str:
    name = result.model.name
    title = name if result.model.learned else f"{name}, not trained"
    if result.attention in KIND_TITLES:  # an encoder-decoder model: say which attention
        return f"{KIND_TITLES[result.attention]} · {title}"
    if result.causal:
        title += ", causal"
    return title if result.view_label == "attention" else f"{result.view_label} · {title}"


def _head_name(head: int, view: str = "rollout") -> str:
    if head >= 0:
        return f"head {head}"
    return mixed_name(view)  # rollout and value zeroing mix the heads: views.ROLLOUT_HEAD


@dataclass
class _Grid:
    """A block of rows x cols panels s tall and s * aspect wide (square cells: aspect = Tk / T,
    1 for self-attention), with token labels around it."""

    s: float
    font: float  # token label size (0: none)
    step: int  # label every step-th token
    left: float  # inches left of the panels (labels, names)
    bottom: float  # below
    head_row: float  # above every panel row (panel titles) or once above (column headers)
    aspect: float = 1.0

    @property
    def w(self) -> float:
        return self.s * self.aspect

    def size(self, rows: int, cols: int, gap: float, every_row: bool) -> tuple[float, float]:
        heads = self.head_row * (rows if every_row else 1)
        return (self.left + cols * self.w + (cols - 1) * gap, self.bottom + heads + rows * self.s + (rows - 1) * gap)


def _solve_grid(
    labels,
    T,
    rows,
    cols,
    room_w,
    room_h,
    style,
    *,
    axis_names,
    panel_titles,
    headers,
    model_grid,
    s_target=None,
    key_labels=None,
) -> _Grid:
    """Largest panels that fit the room, with the largest readable token labels: T rows of
    square cells, as many columns as `key_labels` (None: T, the same labels).

    Token labels at size f need f * 1.15 points per cell, so f = min(style.font, cell / 1.15);
    below style.min_font every step-th label is drawn instead (model grids: none at all).
    """
    key_labels = labels if key_labels is None else key_labels
    aspect = len(key_labels) / T
    m = measure()
    gap = style.gap
    name_band = style.small * 1.5 / 72 if axis_names else 0.0
    title_band = style.small * 1.45 / 72 if (panel_titles or headers) else 0.0
    header_left = m.widest([f"L{i}" for i in range(10)], style.small) + 0.08 if headers else 0.0
    font, step = style.font, 1
    s = s_target
    for _ in range(6):
        label_w = m.widest(labels[::step], font) + 0.05 if font else 0.0
        key_w = m.widest(key_labels[::step], font) + 0.05 if font else 0.0
        left = header_left + name_band + label_w
        bottom = name_band + key_w
        if s_target is None:
            s = min(
                (room_w - left - (cols - 1) * gap) / (cols * aspect),
                (room_h - bottom - title_band * (rows if panel_titles else 1) - (rows - 1) * gap) / rows,
            )
            s = max(s, 0.05)
        cell_pt = s * 72 / T
        font = min(style.font, cell_pt / 1.15)
        step = 1
        if font < style.min_font:
            if model_grid:
                font = 0.0
            else:
                step = math.ceil(style.min_font * 1.15 / cell_pt)
                font = style.min_font
    return _Grid(s, font, step, left, bottom, title_band, aspect)


def _token_label_artists(
    page, labels, colors, font, step, *, x0, y0, s, T, left_side=True, bottom_side=True, keys=None
):
    """Key labels under a panel (rotated) and query labels left of it, every step-th token.
    keys: (labels, colours) of the columns when they are not the rows' (cross-attention)."""
    cell = s / T
    key_labels, key_colors = (labels, colors) if keys is None else keys
    for j in range(0, len(key_labels), step):
        if bottom_side:
            page.labels.append(
                Label(
                    key_labels[j],
                    x0 + (j + 0.5) * cell,
                    y0 - 0.04,
                    font,
                    ha="right",
                    va="center",
                    rotation=90,
                    color=key_colors[j],
                )
            )
    for j in range(0, T, step):
        if left_side:
            page.labels.append(
                Label(labels[j], x0 - 0.04, y0 + s - (j + 0.5) * cell, font, ha="right", va="center", color=colors[j])
            )


def _annotate(page, data, x0, y0, w, h, style, cmap_values, mask=None) -> None:
    rows, cols = data.shape
    cell_pt = min(w / cols, h / rows) * 72
    size = min(style.font * 0.8, cell_pt / 2.4)
    if size < style.min_font * 0.75:
        page.notes.append(
            "cells are too small for --annotate values; they were left out (use a larger --size or fewer tokens)"
        )
        return
    for i in range(rows):
        for j in range(cols):
            if mask is not None and mask[i, j]:  # a masked cell has no weight to write
                continue
            r, g, b = cmap_values[i, j, :3]
            light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5
            page.labels.append(
                Label(
                    _cell_value(float(data[i, j])),
                    x0 + (j + 0.5) * w / cols,
                    y0 + h - (i + 0.5) * h / rows,
                    size,
                    color="black" if light else "white",
                )
            )


def _colors_of(data: np.ndarray, vmax: float, cmap: str) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps[cmap](np.clip(data / max(vmax, 1e-6), 0, 1))


def _auto_size(style: Style, grid_layout: bool) -> tuple[float | None, float | None]:
    width = style.grid_width if grid_layout and style.grid_width else style.width
    return width, style.height


def _frame(result, style: Style, grid_layout: bool, scale: Scale, layers: list[int]):
    """What the layer, model and focus layouts start from: token labels and their colours, the
    requested width and height (None: fit to content), the colour bar's width (with the masked
    key of `layers`), and the height the header takes (measured on a scratch page)."""
    labels, colors = _token_labels(result, style)
    width, height = _auto_size(style, grid_layout)
    top = _header(Page(width or 10.0, height or 100.0), result, style, "x")
    return labels, colors, width, height, _cbar_width(style, mask_key(result, layers), scale), top


def _page_head(result, style, options, *, layer, head, focus) -> Page:
    layer = result.layers[0] if layer is None else layer
    head = result.heads[0] if head is None else head
    data = result.head(layer, head)  # [T, Tk]: Tk = T, or the source's tokens (cross-attention)
    T, Tk = data.shape
    labels, colors = _token_labels(result, style)
    keys = _key_labels(result, style)
    width, height = _auto_size(style, False)
    masks = layer_masks(result, [layer])
    mask = None if masks is None else masks[0]  # [T, T]
    scale = colour_scale(result, options, data, mask)
    cbar = _cbar_width(style, mask_key(result, [layer]), scale)
    kw = dict(axis_names=True, panel_titles=False, headers=False, model_grid=False, key_labels=keys[0])
    if width is None:  # default preset: cells sized for the label font
        s_target = min(max(max(T, Tk) * style.font * 1.25 / 72, 3.0), 12.0) * T / max(T, Tk)
        grid = _solve_grid(labels, T, 1, 1, 0, 0, style, s_target=s_target, **kw)
        width = 2 * style.pad + grid.left + grid.w + cbar
    page = Page(width, height or 100.0)
    top = _header(page, result, style, f"layer {layer} · {_head_name(head, result.view)} · {_model_title(result)}")
    room_w = width - 2 * style.pad - cbar + style.pad
    if height is None:
        grid = _solve_grid(labels, T, 1, 1, room_w, 100.0, style, **kw)
        page.height = min(top + grid.s + grid.bottom + style.pad, style.max_height)
        for lab in page.labels:
            lab.y -= 100.0 - page.height
    room_h = page.height - top - style.pad
    grid = _solve_grid(labels, T, 1, 1, room_w, room_h, style, **kw)
    block_w, block_h = grid.size(1, 1, style.gap, False)
    x0 = style.pad + (room_w - block_w) / 2 + grid.left
    y0 = style.pad + (room_h - block_h) / 2 + grid.bottom
    page.panels.append(Panel(x0, y0, grid.w, grid.s, data, mask))
    _colour_bar(page, result, style, scale, x0 + grid.w, y0, grid.s, [layer])
    _token_label_artists(page, labels, colors, grid.font, grid.step, x0=x0, y0=y0, s=grid.s, T=T, keys=keys)
    name = style.small
    row_name, col_name = _axis_names(result)
    page.labels.append(
        Label(
            row_name,
            x0 - grid.left + 0.02,
            y0 + grid.s / 2,
            name,
            ha="center",
            va="top",
            rotation=90,
            color="#444444",
        )
    )
    page.labels.append(Label(col_name, x0 + grid.w / 2, y0 - grid.bottom + 0.02, name, va="bottom", color="#444444"))
    if options.annotate:
        _annotate(page, data, x0, y0, grid.w, grid.s, style, _colors_of(data, page.vmax, options.cmap), mask)
    return page


def _grid_shape(n: int, room_w: float | None, room_h: float | None, fit, aspect: float = 1.0) -> tuple[int, int]:
    """Columns x rows for n panels (each `aspect` times as wide as tall): the biggest panels for a
    fixed room, else a ~16:10 block."""
    best, best_score = (n, 1), None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        if (rows - 1) * cols >= n:
            continue
        if room_w is not None and room_h is not None:
            score = fit(rows, cols)
        else:
            score = -abs(math.log(cols * aspect / rows / 1.6)) - 0.1 * (rows * cols - n)
        if best_score is None or score > best_score + 1e-9:
            best, best_score = (rows, cols), score
    return best


def _page_layer(result, style, options, *, layer, head, focus) -> Page:
    layer = result.layers[0] if layer is None else layer
    li = result.layers.index(layer)
    data = result.weights[li]  # [H, T, Tk]
    H, T = data.shape[0], data.shape[1]
    masks = layer_masks(result, [layer])
    mask = None if masks is None else masks[0]  # [T, T]
    scale = colour_scale(result, options, data, mask)
    labels, colors, width, height, cbar, top = _frame(result, style, True, scale, [layer])
    keys = _key_labels(result, style)
    kw = dict(axis_names=False, panel_titles=True, headers=False, model_grid=False, key_labels=keys[0])
    if width is None:
        rows, cols = _grid_shape(H, None, None, None, data.shape[2] / T)
        s_target = min(max(T * style.font * 1.2 / 72, 1.6), 4.5)
        grid = _solve_grid(labels, T, rows, cols, 0, 0, style, s_target=s_target, **kw)
        width = 2 * style.pad + grid.size(rows, cols, style.gap, True)[0] + cbar - style.pad
    room_w = width - style.pad - cbar
    if height is None:
        rows, cols = _grid_shape(H, None, None, None, data.shape[2] / T)
        grid = _solve_grid(labels, T, rows, cols, room_w, 100.0, style, **kw)
        height = min(top + grid.size(rows, cols, style.gap, True)[1] + style.pad, style.max_height)
    room_h = height - top - style.pad
    rows, cols = _grid_shape(
        H, room_w, room_h, lambda r, c: _solve_grid(labels, T, r, c, room_w, room_h, style, **kw).s
    )
    grid = _solve_grid(labels, T, rows, cols, room_w, room_h, style, **kw)
    page = Page(width, height)
    _header(page, result, style, f"layer {layer} · all heads · {_model_title(result)}")
    block_w, block_h = grid.size(rows, cols, style.gap, True)
    bx = style.pad + (room_w - block_w) / 2
    by = style.pad + (room_h - block_h) / 2
    colors_all = _colors_of(data, page.vmax, options.cmap) if options.annotate else None
    for k in range(H):
        r, c = divmod(k, cols)
        x0 = bx + grid.left + c * (grid.w + style.gap)
        y0 = by + grid.bottom + (rows - 1 - r) * (grid.s + grid.head_row + style.gap)
        page.panels.append(Panel(x0, y0, grid.w, grid.s, data[k], mask))
        page.labels.append(
            Label(
                _head_name(result.heads[k], result.view), x0 + grid.w / 2, y0 + grid.s + 0.03, style.small, va="bottom"
            )
        )
        last_in_column = k + cols >= H
        _token_label_artists(
            page,
            labels,
            colors,
            grid.font,
            grid.step,
            x0=x0,
            y0=y0,
            s=grid.s,
            T=T,
            left_side=c == 0,
            bottom_side=last_in_column,
            keys=keys,
        )
        if colors_all is not None:
            _annotate(page, data[k], x0, y0, grid.w, grid.s, style, colors_all[k], mask)
    top_y = by + block_h
    _colour_bar(
        page, result, style, scale, bx + block_w, by + grid.bottom, top_y - by - grid.bottom - grid.head_row, [layer]
    )
    return page


def _page_model(result, style, options, *, layer, head, focus) -> Page:
    data = result.weights  # [L, H, T, Tk]
    L, H, T = data.shape[0], data.shape[1], data.shape[2]
    masks = layer_masks(result, result.layers)  # [L, T, Tk] or None
    scale = colour_scale(result, options, data, None if masks is None else masks[:, None])
    labels, colors, width, height, cbar, top = _frame(result, style, True, scale, result.layers)
    keys = _key_labels(result, style)
    aspect = data.shape[3] / T
    kw = dict(axis_names=False, panel_titles=False, headers=True, model_grid=True, key_labels=keys[0])
    if width is None:
        # Big enough for token labels when the model is small; whole figure within ~13 x 9 in.
        s_target = min(max(min(T * style.font / 72, 13.0 / H / aspect, 9.0 / L), 0.6), 3.0)
        grid = _solve_grid(labels, T, L, H, 0, 0, style, s_target=s_target, **kw)
        width = min(style.pad + grid.size(L, H, style.gap, False)[0] + cbar, 30.0)
    room_w = width - style.pad - cbar
    if height is None:
        grid = _solve_grid(labels, T, L, H, room_w, 100.0, style, **kw)
        height = min(top + grid.size(L, H, style.gap, False)[1] + style.pad, style.max_height)
    room_h = height - top - style.pad
    grid = _solve_grid(labels, T, L, H, room_w, room_h, style, **kw)
    page = Page(width, height)
    _header(page, result, style, f"all layers and heads · {_model_title(result)}")
    block_w, block_h = grid.size(L, H, style.gap, False)
    bx = style.pad + (room_w - block_w) / 2
    by = style.pad + (room_h - block_h) / 2
    header_size = style.small if grid.s * 72 >= style.small * 2.2 else max(style.min_font, grid.s * 72 / 2.2)
    for i in range(L):
        y0 = by + grid.bottom + (L - 1 - i) * (grid.s + style.gap)
        page.labels.append(Label(f"L{result.layers[i]}", bx, y0 + grid.s / 2, header_size, ha="left"))
        for j in range(H):
            x0 = bx + grid.left + j * (grid.w + style.gap)
            page.panels.append(Panel(x0, y0, grid.w, grid.s, data[i, j], None if masks is None else masks[i]))
            if i == 0:
                page.labels.append(
                    Label(
                        "all" if result.heads[j] < 0 else f"H{result.heads[j]}",
                        x0 + grid.w / 2,
                        y0 + grid.s + 0.03,
                        header_size,
                        va="bottom",
                    )
                )
            if grid.font:
                _token_label_artists(
                    page,
                    labels,
                    colors,
                    grid.font,
                    grid.step,
                    x0=x0,
                    y0=y0,
                    s=grid.s,
                    T=T,
                    left_side=j == 0,
                    bottom_side=i == L - 1,
                    keys=keys,
                )
    if options.annotate:  # values in hundreds of small panels would be unreadable
        page.notes.append("the model grid has no --annotate values; head, layer and focus images do")
    if not grid.font:
        page.notes.append(
            "token labels left out: the panels are too small to read them "
            "(use --layer to show fewer layers, or a larger --size)"
        )
    _colour_bar(
        page, result, style, scale, bx + block_w, by + grid.bottom, block_h - grid.bottom - grid.head_row, result.layers
    )
    return page


def _page_focus(result, style, options, *, layer, head, focus) -> Page:
    if focus is None:
        raise ValueError("the focus layout needs a focus token index")
    rows_data = result.weights[:, :, focus, :]  # [L, H, T] (T: the keys; the source's for cross-attention)
    L, H, T = rows_data.shape
    data = rows_data.reshape(L * H, T)  # row = (layer, head)
    n = L * H
    # The focus token's row of each layer's mask (a causal model's focus sees only itself and the
    # tokens before it; a local layer's only those within its window), once per head: [n, T].
    masks = layer_masks(result, result.layers)  # [L, T, T] or None
    mask = None if masks is None else np.repeat(masks[:, focus, :], H, axis=0)
    scale = colour_scale(result, options, data, mask)
    row_labels, _, width, height, cbar, top = _frame(result, style, False, scale, result.layers)
    labels, colors = _key_labels(result, style)
    colors = list(colors)
    if result.key_tokens is None:  # the focus token is one of the columns too
        colors[focus] = "#d0021b"
    m = measure()
    row_names = [
        f"L{result.layers[i]}" + ("" if result.heads[j] < 0 else f" H{result.heads[j]}")
        for i in range(L)
        for j in range(H)
    ]
    label_w_base = m.widest(labels, style.font)
    if width is None:
        cw = min(max(label_w_base + 0.12, style.font * 1.6 / 72), 1.2)
        width = min(2 * style.pad + m.widest(row_names, style.font) + 0.1 + T * cw + cbar, 24.0)
    if height is None:
        cw_est = (width - 2 * style.pad - cbar - m.widest(row_names, style.font)) / T
        ch = min(cw_est, style.font * 1.45 / 72)
        bottom_est = label_w_base + 0.1 if label_w_base > cw_est else style.font * 1.6 / 72
        height = min(top + n * ch + bottom_est + style.pad, style.max_height)
    room_w = width - style.pad - cbar
    room_h = height - top - style.pad
    head_names = [f"H{h}" for h in result.heads if h >= 0]
    layer_w = m.widest([f"L{i}" for i in result.layers], style.small) + 0.06
    row_font, col_font, rotated, head_step = style.font, style.font, True, 1
    for _ in range(6):
        if row_font:
            row_w = m.widest(row_names, row_font) + 0.08
        else:  # layer names on the left, then the names of every head_step-th head
            row_w = layer_w + m.widest(head_names, style.min_font) + 0.08
        col_w = m.widest(labels, col_font)
        bottom = (col_w if rotated else col_font * 1.3 / 72) + 0.06
        cw = (room_w - row_w) / T
        ch = min((room_h - bottom) / n, cw)
        cw = min(cw, ch * 6)
        fs_rot = min(style.font, cw * 72 / 1.15)
        fs_flat = min(style.font, style.font * 0.92 * cw / max(m.widest(labels, style.font), 1e-6))
        rotated = fs_flat < max(0.75 * fs_rot, style.min_font)  # upright labels read better
        col_font = max(fs_rot if rotated else fs_flat, style.min_font)
        row_font = min(style.font, ch * 72 / 1.15)
        if row_font < style.min_font:
            row_font = 0.0  # rows too thin for "L0 H3" on each: layers, and the heads where they fit
            head_step = math.ceil(style.min_font * 1.15 / max(ch * 72, 1e-6))
    page = Page(width, height)
    unit, where = result.unit_name, ""
    if result.key_tokens is not None:
        unit, where = f"target {result.unit_name}", " in the source"
    _header(
        page,
        result,
        style,
        f"where “{_shorten(row_labels[focus], 20)}” ({unit} {focus}) attends{where} · {_model_title(result)}",
    )
    block_w = row_w + T * cw
    block_h = bottom + n * ch
    x0 = style.pad + (room_w - block_w) / 2 + row_w
    y0 = style.pad + (room_h - block_h) / 2 + bottom
    page.panels.append(Panel(x0, y0, T * cw, n * ch, data, mask))
    _colour_bar(page, result, style, scale, x0 + T * cw, y0, n * ch, result.layers)
    for j in range(T):
        cx = x0 + (j + 0.5) * cw
        page.labels.append(
            Label(
                labels[j],
                cx,
                y0 - 0.04,
                col_font,
                ha="right" if rotated else "center",
                va="center" if rotated else "top",
                rotation=90 if rotated else 0,
                color=colors[j],
                weight="normal",
            )
        )
    top_y = y0 + n * ch
    ranked = np.ones(T, bool)  # [T] keys a ring may mark
    ranked[[i for i in result.excluded if i < T]] = False
    for r in range(n):
        cy = top_y - (r + 0.5) * ch
        if row_font:
            page.labels.append(Label(row_names[r], x0 - 0.04, cy, row_font, ha="right"))
        keys = ranked if mask is None else ranked & ~mask[r]  # [T] never a masked key
        if keys.any():  # the ring: the strongest target outside the sinks a result excludes
            best = int(np.argmax(np.where(keys, data[r], -np.inf)))
            page.markers.append((x0 + (best + 0.5) * cw, cy))
    if not row_font:
        group_font = min(style.small, H * ch * 72 / 1.2)
        head_x = x0 - 0.04
        names_w = m.widest(head_names, style.min_font) + 0.06 if head_names and head_step < H else 0.0
        for i in range(L):
            if group_font >= style.min_font * 0.8:
                page.labels.append(
                    Label(f"L{result.layers[i]}", head_x - names_w, top_y - (i + 0.5) * H * ch, group_font, ha="right")
                )
            if names_w:
                for j in range(0, H, head_step):
                    page.labels.append(
                        Label(
                            head_names[j],
                            head_x,
                            top_y - (i * H + j + 0.5) * ch,
                            style.min_font,
                            ha="right",
                            color="#444444",
                        )
                    )
        if names_w and head_step > 1:
            page.notes.append(
                f"the focus map names every {ordinal(head_step)} head: its rows are too thin "
                "for all (use a larger --size or fewer layers)"
            )
    for i in range(1, L):  # white rules between layers
        y = top_y - i * H * ch
        page.rules.append((x0, y, x0 + T * cw, y))
    if options.annotate:
        _annotate(page, data, x0, y0, T * cw, n * ch, style, _colors_of(data, page.vmax, options.cmap), mask)
    return page


def ordinal(n: int) -> str:
    return {2: "2nd", 3: "3rd"}.get(n, f"{n}th")


BUILDERS = {"head": _page_head, "layer": _page_layer, "model": _page_model, "focus": _page_focus}
