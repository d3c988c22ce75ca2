"""Attention heatmaps as PNG, SVG or PDF, from an AttentionResult (never torch, never a tokenizer).

The package, by job:
  options.py   ImageOptions, presets, size parsing, the choice of layout: what the CLI imports
  layouts.py   the page layouts (head, layer, model, focus) as geometry in inches
  engine.py    the drawing engine: reusable figures, text measuring, cached glyphs
  writer.py    the PNG writer, and SVG/PDF without metadata
  pooled.py    long texts: cells pooled into blocks of tokens, labels thinned, a note that says so

Importing it loads no matplotlib: that happens on the first drawing.

Determinism. Every image is drawn inside one rc context built from matplotlib's defaults (a
user's matplotlibrc or style cannot change the bytes), with a fixed SVG hash salt, and saved
without metadata (no date, no software name or version).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...result import AttentionResult
from .options import (
    FORMATS,
    LAYOUTS,
    STYLES,
    ImageOptions,
    Style,
    check_cmap,
    choose_layout,
    format_for,
    parse_size,
    validate_options,
)
from .pooled import BLANK, FOCUS_LABELS, LAYOUT_CELLS, pool_for_image
from .writer import PNG_COMPRESS_LEVEL, png_bytes


@dataclass(frozen=True)
class Rendered:
    """One drawn image: the file's bytes and what the image had to leave out (say it to the user)."""

    data: bytes
    notes: tuple[str, ...] = ()


def render_image(
    result: AttentionResult,
    layout: str,
    options: ImageOptions = ImageOptions(),
    *,
    fmt: str = "png",
    layer: int | None = None,
    head: int | None = None,
    focus: int | None = None,
) -> Rendered:
    """One image, with its notes.

    layout "head" draws model layer `layer`, head `head` (default: the result's only ones);
    "layer" draws every head of `layer`; "model" every layer and head of the result; "focus" the
    row of token index `focus` in every layer and head.
    """
    import matplotlib

    from . import engine, layouts, writer

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    # A long text is drawn pooled into blocks (pooled.py), with a note that says so.
    result, focus, pooled_note = pool_for_image(
        result, focus, LAYOUT_CELLS[layout], name_every=FOCUS_LABELS if layout == "focus" else None
    )
    style = options.style()
    with matplotlib.rc_context():
        matplotlib.rcdefaults()  # ignore the user's matplotlibrc: same bytes everywhere
        matplotlib.rcParams.update(engine.rc(style))
        scene = engine.scene_for(layout, layouts.panel_count(result, layout), options.cmap)
        page = layouts.BUILDERS[layout](result, style, options, layer=layer, head=head, focus=focus)
        if pooled_note is not None:
            page.notes.insert(0, pooled_note)
            page.labels = [label for label in page.labels if label.text != BLANK]
        scene.apply(page, style, options)
        data = writer.figure_bytes(scene.fig, fmt, style.dpi, options.transparent)
    return Rendered(data, tuple(dict.fromkeys(page.notes)))


__all__ = [
    "FORMATS",
    "LAYOUTS",
    "PNG_COMPRESS_LEVEL",
    "STYLES",
    "ImageOptions",
    "Rendered",
    "Style",
    "check_cmap",
    "choose_layout",
    "format_for",
    "parse_size",
    "png_bytes",
    "render_image",
    "validate_options",
]
