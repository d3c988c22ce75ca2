"""Attention heatmaps as PNG, SVG or PDF, from an AttentionResult (never torch, never a tokenizer).

Layouts:
  head   one head: a square [T, T] heatmap, query tokens down the left, key tokens along the bottom
  layer  the heads of one layer in a grid, one shared colour scale
  model  layers x heads small multiples; token labels only when they are readable
  focus  one row per (layer, head), one column per token: where the focus token attends

Speed. Text dominates matplotlib's time, and building figures and axes is the next cost. So each
process keeps one figure per layout shape (a `_Scene`) and reuses it: a new image only swaps the
data of existing AxesImages, moves axes and relabels a pool of Text artists. Labels are plain
Text artists placed in inches (not tick machinery), measured once per string, and drawn only
when they can be read; rows and columns that cannot hold a readable label get none.

Determinism. Every image is drawn inside one rc context built from matplotlib's defaults (a
user's matplotlibrc or style cannot change the bytes), with a fixed SVG hash salt, and saved
without metadata (no date, no software name or version).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..result import AttentionResult
from ..errors import AttnvizError

LAYOUTS = ("head", "layer", "model", "focus")
FORMATS = ("png", "svg", "pdf")
PRESETS = ("slide", "paper")

# No metadata that changes between runs or versions: the date, and the software name+version.
_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
}


@dataclass(frozen=True)
class Style:
    """Sizes of one preset. Lengths in inches, fonts in points; width/height None = automatic."""

    name: str
    dpi: float
    font: float            # token labels at most this size
    title: float
    small: float           # panel titles, colour-bar ticks, axis names
    min_font: float        # smaller labels are not drawn
    width: float | None = None
    height: float | None = None
    grid_width: float | None = None   # width for layer/model grids when `width` is automatic
    max_height: float = 14.0
    pad: float = 0.12
    gap: float = 0.08
    cbar: float = 0.14
    label_chars: int = 16  # longer token labels are cut with an ellipsis
    subtitle: bool = True  # the sentence under the title


STYLES = {
    # On screen, in notebooks, in reports: sized to the sentence.
    None: Style("default", dpi=120, font=10, title=12, small=9, min_font=6),
    # 16:9 at 2000x1125 pixels, type readable from the back of a room.
    "slide": Style("slide", dpi=150, font=16, title=22, small=14, min_font=8, width=40 / 3, height=7.5,
                   pad=0.2, gap=0.14, cbar=0.22, label_chars=18),
    # A journal column (3.5 in; grids take the text width, 7 in); small type, vector output friendly.
    "paper": Style("paper", dpi=300, font=7, title=8, small=6.5, min_font=4, width=3.5, grid_width=7.0,
                   max_height=9.0, pad=0.05, gap=0.05, cbar=0.08, label_chars=14, subtitle=False),
}


@dataclass(frozen=True)
class ImageOptions:
    cmap: str = "viridis"
    annotate: bool = False
    dpi: float | None = None                  # None: the preset's
    size: tuple[float, float] | None = None   # (width, height) in inches; None: the preset's / automatic
    preset: str | None = None                 # None, "slide" or "paper"
    transparent: bool = False

    def style(self) -> Style:
        style = STYLES[self.preset]
        if self.dpi is not None:
            style = replace(style, dpi=float(self.dpi))
        if self.size is not None:
            style = replace(style, width=float(self.size[0]), height=float(self.size[1]), grid_width=None)
        return style


def validate_options(options: ImageOptions) -> ImageOptions:
    """Check user-given options; AttnvizError with what to do when one is wrong."""
    if options.preset not in STYLES:
        raise AttnvizError(f"unknown preset {options.preset!r}: use slide or paper")
    if options.dpi is not None and not 20 <= options.dpi <= 1200:
        raise AttnvizError(f"--dpi {options.dpi:g} is out of range: use 20-1200")
    if options.size is not None:
        w, h = options.size
        if not (0.5 <= w <= 100 and 0.5 <= h <= 100):
            raise AttnvizError(f"--size {w:g}x{h:g} in is out of range: use 0.5-100 inches a side")
        dpi = options.style().dpi
        if w * h * dpi * dpi > 20e7:
            raise AttnvizError("--size and --dpi give an image over 200 megapixels: lower one of them")
    check_cmap(options.cmap)
    return options


def check_cmap(name: str) -> None:
    import matplotlib

    if name not in matplotlib.colormaps:
        raise AttnvizError(f"unknown colormap {name!r}: try viridis (the default), magma, cividis, "
                           "inferno, plasma or Blues (any matplotlib colormap name works)")


_UNITS = {"in": 1.0, "": 1.0, "cm": 1 / 2.54, "mm": 1 / 25.4, "px": None}


def parse_size(spec: str, dpi: float | None = None, preset: str | None = None) -> tuple[float, float]:
    """'8x4.5' (inches), '20x12cm', '160x90mm' or '1600x900px' (at the --dpi in force) -> inches."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[xX×]\s*(\d+(?:\.\d+)?)\s*(in|cm|mm|px)?\s*", spec or "")
    if not match:
        raise AttnvizError(f"invalid --size {spec!r}: use WIDTHxHEIGHT in inches (8x4.5) or with a unit "
                           "(20x12cm, 160x90mm, 1600x900px)")
    w, h, unit = float(match[1]), float(match[2]), match[3] or ""
    if unit == "px":
        per = dpi if dpi is not None else STYLES[preset if preset in STYLES else None].dpi
        return w / per, h / per
    return w * _UNITS[unit], h * _UNITS[unit]


def format_for(path: str | Path) -> str:
    """The image format from a file name's extension."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise AttnvizError(f"cannot tell the image format of {str(path)!r}: end the name with .png, .svg or .pdf")
    return suffix


def choose_layout(result: AttentionResult, focus: int | None = None) -> str:
    """The layout that shows a selection: focus map, one head, one layer, or the model grid."""
    if focus is not None:
        return "focus"
    if len(result.layers) == 1:
        return "head" if len(result.heads) == 1 else "layer"
    return "model"


def render_image(result: AttentionResult, layout: str, options: ImageOptions = ImageOptions(), *,
                 fmt: str = "png", layer: int | None = None, head: int | None = None,
                 focus: int | None = None) -> bytes:
    """The bytes of one image.

    layout "head" draws model layer `layer`, head `head` (default: the result's only ones);
    "layer" draws every head of `layer`; "model" every layer and head of the result; "focus" the
    row of token index `focus` in every layer and head.
    """
    import matplotlib

    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    style = options.style()
    with matplotlib.rc_context():
        matplotlib.rcdefaults()             # ignore the user's matplotlibrc: same bytes everywhere
        matplotlib.rcParams.update(_rc(style))
        key = (layout, _panel_count(result, layout), options.cmap)
        scene = _SCENES.get(key)
        if scene is None:
            scene = _SCENES[key] = _Scene(layout, key[1], options.cmap)
            while len(_SCENES) > _MAX_SCENES:
                _SCENES.pop(next(iter(_SCENES))).close()
        else:
            _SCENES[key] = _SCENES.pop(key)  # most recently used last
        scene.draw(result, style, options, layer=layer, head=head, focus=focus)
        buffer = io.BytesIO()
        if fmt == "png":
            _save_png(scene.fig, buffer, style.dpi, options.transparent)
        else:
            scene.fig.savefig(buffer, format=fmt, dpi=style.dpi, metadata=_METADATA[fmt],
                              transparent=options.transparent)
    return buffer.getvalue()


def _save_png(fig, buffer, dpi: float, transparent: bool) -> None:
    """Draw with Agg and write the PNG ourselves: only IHDR, pHYs (the dpi), IDAT and IEND."""
    fig.patch.set_alpha(0.0 if transparent else 1.0)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())                            # [height, width, 4] uint8
    buffer.write(png_bytes(rgba if transparent else rgba[..., :3], dpi))


# zlib level 1 with the "Up" filter on every row: heatmap cells and the white background repeat row
# after row, so most filtered bytes are zero. A third the time of Pillow's adaptive filtering at
# the same file size, and the bytes depend only on the pixels (and zlib).
PNG_COMPRESS_LEVEL = 1


def png_bytes(pixels: np.ndarray, dpi: float) -> bytes:
    """A PNG of `pixels` ([height, width, 3] RGB or [height, width, 4] RGBA, uint8)."""
    import zlib

    height, width, channels = pixels.shape
    if not pixels.flags.c_contiguous:   # RGB taken from Agg's RGBA: one channel at a time is 5x faster
        packed = np.empty(pixels.shape, np.uint8)
        for c in range(channels):
            packed[..., c] = pixels[..., c]
        pixels = packed
    flat = pixels.reshape(height, width * channels)                        # [H, W*C]
    rows = np.empty((height, width * channels + 1), np.uint8)              # [H, 1 + W*C]: filter byte, pixels
    rows[:, 0] = 2                                                         # filter type 2: Up
    rows[0, 1:] = flat[0]                                                  # (the row above the first is zeros)
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])                     # modulo 256, as PNG wants

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))

    color_type = 6 if channels == 4 else 2
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, color_type, 0, 0, 0])
    per_metre = round(dpi / 0.0254).to_bytes(4, "big")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"pHYs", per_metre + per_metre + b"\x01")
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), PNG_COMPRESS_LEVEL)) + chunk(b"IEND", b""))


def last_notes() -> list[str]:
    """What the last render_image in this process left out (e.g. unreadable cell values)."""
    return list(_NOTES)


# ---------------------------------------------------------------------------------------------
# Internals

_MAX_SCENES = 8
_SCENES: dict[tuple, "_Scene"] = {}
_NOTES: list[str] = []
_ELLIPSIS = "…"


def _rc(style: Style) -> dict:
    from .fonts import register_fonts

    return {
        "font.family": list(register_fonts()),
        "font.size": style.small,
        "text.parse_math": False,     # a token such as "$5" is text, never mathtext
        "text.usetex": False,
        "svg.hashsalt": "attnviz",    # ids in SVG files are otherwise random per run
        "svg.fonttype": "path",       # glyphs as paths: the SVG looks the same without our fonts
        "pdf.fonttype": 42,           # TrueType, embedded and subset: selectable, editable text
        "image.interpolation": "none",  # cells stay crisp; PDF/SVG embed the [T, T] data itself
        "image.resample": False,
        "figure.facecolor": "white",
        "savefig.facecolor": "auto",
        "savefig.bbox": None,
        "savefig.pad_inches": 0.0,
    }


def _panel_count(result: AttentionResult, layout: str) -> int:
    return {"head": 1, "focus": 1, "layer": len(result.heads),
            "model": len(result.layers) * len(result.heads)}[layout]


def _shorten(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + _ELLIPSIS


class _Measure:
    """Text widths in inches, measured once per string with the Agg renderer (font fallback included)."""

    REF = 10.0  # points

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.font_manager import FontProperties

        self._renderer = RendererAgg(1, 1, 72)   # at 72 dpi, pixels are points
        self._props = FontProperties(size=self.REF)
        self._cache: dict[str, float] = {}

    def width(self, text: str, size: float) -> float:
        w = self._cache.get(text)
        if w is None:
            w = self._renderer.get_text_width_height_descent(text, self._props, ismath=False)[0] / 72
            self._cache[text] = w
        return w * size / self.REF

    def widest(self, texts, size: float) -> float:
        return max((self.width(t, size) for t in texts), default=0.0)


_MEASURE: _Measure | None = None


def _measure() -> _Measure:
    global _MEASURE
    if _MEASURE is None:
        _MEASURE = _Measure()
    return _MEASURE


@dataclass
class _Label:
    text: str
    x: float                 # inches from the figure's left
    y: float                 # inches from the figure's bottom
    size: float
    ha: str = "center"
    va: str = "center"
    rotation: float = 0.0
    color: str = "black"
    weight: str = "normal"


@dataclass
class _Panel:
    x: float                 # the cells' box, inches
    y: float
    w: float
    h: float
    data: np.ndarray         # [rows, cols]


@dataclass
class _Page:
    """Everything one image shows, in inches; `_Scene.apply` turns it into artists."""

    width: float
    height: float
    panels: list[_Panel] = field(default_factory=list)
    labels: list[_Label] = field(default_factory=list)
    cbar: tuple[float, float, float, float] | None = None
    vmax: float = 1.0
    markers: list[tuple[float, float]] = field(default_factory=list)   # inches
    rules: list[tuple[float, float, float, float]] = field(default_factory=list)   # x0, y0, x1, y1 inches


class _GlyphRecorder:
    """Stands in for Agg's C++ renderer while one text is drawn, keeping the glyph bitmaps."""

    def __init__(self) -> None:
        self.glyphs: list[tuple[np.ndarray, int, int]] = []

    def draw_text_image(self, image, x, y, angle, gc) -> None:
        if angle != 0:
            raise _NoFastText
        self.glyphs.append((np.array(image, copy=True), int(x), int(y)))

    def draw_path(self, *args, **kwargs) -> None:   # box glyphs (rare): not cacheable
        raise _NoFastText


class _NoFastText(Exception):
    pass


_GLYPHS: dict[tuple, list[tuple[np.ndarray, int, int]]] = {}
_GLYPH_CACHE_LIMIT = 20000
FAST_TEXT = True   # tests switch it off to check that cached text draws the same pixels


def _caching_canvas_class():
    """FigureCanvasAgg whose renderer keeps the glyph bitmaps of every text it draws.

    matplotlib lays out and rasterises each text from scratch on every draw; labels repeat from
    image to image (the same tokens in every panel and every head), so we rasterise a text once
    per (string, font, size, angle, sub-pixel phase) and later only copy its bitmaps. The phase
    is part of the key, so a cached text gives exactly the pixels a fresh one would. Anything
    unusual (mathtext, box glyphs, an Agg without these internals) takes matplotlib's own path.
    """
    global _CANVAS_CLASS
    if _CANVAS_CLASS is not None:
        return _CANVAS_CLASS
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg

    class _CachingRenderer(RendererAgg):
        def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if ismath or not FAST_TEXT:
                return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
            ix, iy = math.floor(x), math.floor(y)
            key = (s, hash(prop), prop.get_size_in_points(), angle, self.dpi, self.height,
                   x - ix, y - iy, gc.get_antialiased())
            glyphs = _GLYPHS.get(key)
            if glyphs is None:
                real, recorder = self._renderer, _GlyphRecorder()
                self._renderer = recorder
                try:
                    super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
                except _NoFastText:
                    self._renderer = real
                    return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
                finally:
                    self._renderer = real
                glyphs = [(image, gx - ix, gy - iy) for image, gx, gy in recorder.glyphs]
                if len(_GLYPHS) >= _GLYPH_CACHE_LIMIT:
                    _GLYPHS.clear()
                _GLYPHS[key] = glyphs
            draw = self._renderer.draw_text_image
            for image, dx, dy in glyphs:
                draw(image, ix + dx, iy + dy, 0, gc)

    class _CachingCanvas(FigureCanvasAgg):
        def get_renderer(self):
            w, h = self.get_width_height(physical=True)
            key = (w, h, self.figure.dpi)
            if getattr(self, "_attnviz_key", None) != key:
                self.renderer = _CachingRenderer(w, h, self.figure.dpi)
                self._attnviz_key = key
            return self.renderer

    _CANVAS_CLASS = _CachingCanvas
    return _CANVAS_CLASS


_CANVAS_CLASS = None


class _Scene:
    """One reusable figure: panel axes with their images, a colour bar, a pool of Text artists.

    Axes are switched off (no spines, ticks or background to draw, which is most of an Axes'
    cost); panel frames, colour-bar ticks, focus markers and rules between layers are single
    Line2D artists placed in inches.
    """

    def __init__(self, layout: str, panels: int, cmap: str) -> None:
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        self.layout = layout
        self.fig = Figure()
        _caching_canvas_class()(self.fig)
        self.norm = Normalize(0.0, 1.0)           # shared: one colour scale for every panel
        self.axes, self.images = [], []
        for _ in range(panels + 1):               # the last one is the colour bar
            ax = self.fig.add_axes((0, 0, 1, 1))
            ax.set_axis_off()
            self.axes.append(ax)
            if len(self.images) < panels:
                self.images.append(ax.imshow(np.zeros((1, 1), np.float32), cmap=cmap, norm=self.norm,
                                             interpolation="none", aspect="auto"))
        self.cax = self.axes.pop()
        gradient = np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None]     # [256, 1], bottom to top
        self.cax.imshow(gradient, cmap=cmap, norm=Normalize(0.0, 1.0), origin="lower",
                        interpolation="nearest", aspect="auto", extent=(0, 1, 0, 1))
        self.texts = []                            # the Text pool, grown on demand
        inches = self.fig.dpi_scale_trans

        def line(**kw):
            artist = Line2D([], [], transform=inches, solid_joinstyle="miter", **kw)
            self.fig.add_artist(artist)
            return artist

        self.frames = line(color="#8a8a8a", linewidth=0.5)
        self.rule_line = line(color="white", linewidth=1.2)
        self.marks = line(linestyle="none", marker="o", markerfacecolor="none", markeredgecolor="#ff3b30",
                          markeredgewidth=1.2)

    def close(self) -> None:
        self.fig.clear()

    def draw(self, result, style, options, *, layer, head, focus) -> None:
        builder = {"head": _page_head, "layer": _page_layer, "model": _page_model, "focus": _page_focus}
        _NOTES.clear()
        page = builder[self.layout](result, style, options, layer=layer, head=head, focus=focus)
        self.apply(page, style, options)

    def apply(self, page: _Page, style: Style, options: ImageOptions) -> None:
        fig = self.fig
        fig.set_size_inches(page.width, page.height)
        fig.set_dpi(style.dpi)
        W, H = page.width, page.height
        self.norm.vmax = max(page.vmax, 1e-6)
        frames: list[tuple[float, float, float, float]] = []
        for ax, image, panel in zip(self.axes, self.images, page.panels):
            rows, cols = panel.data.shape
            ax.set_position((panel.x / W, panel.y / H, panel.w / W, panel.h / H))
            ax.set_visible(True)
            image.set_data(panel.data)
            image.set_extent((-0.5, cols - 0.5, rows - 0.5, -0.5))
            ax.set_xlim(-0.5, cols - 0.5)
            ax.set_ylim(rows - 0.5, -0.5)
            frames.append((panel.x, panel.y, panel.w, panel.h))
        for ax in self.axes[len(page.panels):]:
            ax.set_visible(False)
        labels = list(page.labels)
        ticks_x: list[float] = []
        ticks_y: list[float] = []
        if page.cbar is not None:
            x, y, w, h = page.cbar
            self.cax.set_position((x / W, y / H, w / W, h / H))
            self.cax.set_visible(True)
            frames.append(page.cbar)
            tick = max(0.03, style.small / 250)
            for value in _nice_ticks(self.norm.vmax, h / (style.small * 1.6 / 72)):
                ty = y + h * value / self.norm.vmax
                ticks_x += [x + w, x + w + tick, np.nan]
                ticks_y += [ty, ty, np.nan]
                labels.append(_Label(_fmt_tick(value), x + w + tick + 0.03, ty, style.small, ha="left"))
        else:
            self.cax.set_visible(False)
        xs, ys = ticks_x, ticks_y
        for x, y, w, h in frames:
            xs += [x, x + w, x + w, x, x, np.nan]
            ys += [y, y, y + h, y + h, y, np.nan]
        self.frames.set_data(xs, ys)
        self.marks.set_data([m[0] for m in page.markers], [m[1] for m in page.markers])
        self.marks.set_markersize(max(3.0, style.small * 0.45))
        xs, ys = [], []
        for x0, y0, x1, y1 in page.rules:
            xs += [x0, x1, np.nan]
            ys += [y0, y1, np.nan]
        self.rule_line.set_data(xs, ys)
        self._place_labels(labels, style.dpi)

    def _place_labels(self, labels: list[_Label], dpi: float) -> None:
        inches = self.fig.dpi_scale_trans
        while len(self.texts) < len(labels):
            text = self.fig.text(0, 0, "", transform=inches, rotation_mode="anchor")
            self.texts.append(text)
        for text, label in zip(self.texts, labels):
            text.set_text(label.text)
            # Anchors on whole pixels: a repeated label then lands on the same sub-pixel phase and
            # its cached glyphs can be reused (see _caching_canvas_class).
            text.set_position((round(label.x * dpi) / dpi, round(label.y * dpi) / dpi))
            text.set_fontsize(label.size)
            text.set_horizontalalignment(label.ha)
            text.set_verticalalignment(label.va)
            text.set_rotation(label.rotation)
            text.set_color(label.color)
            text.set_fontweight(label.weight)
            text.set_visible(True)
        for text in self.texts[len(labels):]:
            if text.get_visible():
                text.set_visible(False)


def _nice_ticks(vmax: float, room: float = 6.0) -> list[float]:
    """Colour-bar ticks: 0, round values, and vmax itself; at most `room` labels fit the bar."""
    if room < 3:
        return [0.0, vmax]
    raw = vmax / min(4.0, room - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw), default=raw)
    ticks = [i * step for i in range(int(vmax / step + 1e-9) + 1)]
    if vmax - ticks[-1] > step * 0.35:
        # vmax says how strong the strongest weight is: keep it, drop a round tick too close to it.
        if (vmax - ticks[-1]) / vmax * room < 1.0 and len(ticks) > 1:
            ticks.pop()
        ticks.append(vmax)
    return ticks


def _fmt_tick(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _cell_value(value: float) -> str:
    """Cell annotations: two decimals without the leading zero (".42"), so they fit a cell."""
    if value >= 0.995:
        return "1"
    text = f"{value:.2f}"
    return text[1:] if text.startswith("0") else text


# --- page builders: pure geometry in inches -----------------------------------------------------

def _token_labels(result: AttentionResult, style: Style) -> tuple[list[str], list[str]]:
    """Labels and their colours (special tokens in grey)."""
    from .fonts import drawable

    labels = [_shorten(drawable(label), style.label_chars) for label in result.labels]
    colors = ["#777777" if special else "black" for special in result.special]
    return labels, colors


def _header(page: _Page, result: AttentionResult, style: Style, title: str) -> float:
    """Title (and the sentence as subtitle); returns the inches the header takes from the top."""
    from .fonts import drawable

    m = _measure()
    top = page.height - style.pad
    room = page.width - 2 * style.pad
    title = drawable(title)
    size = style.title
    while size > style.min_font and m.width(title, size) > room:
        size -= 0.5
    page.labels.append(_Label(_fit(title, size, room), page.width / 2, top, size, va="top"))
    used = style.pad + size * 1.3 / 72
    if style.subtitle:
        sentence = drawable(" ".join(result.text.split()))
        if result.truncated:
            sentence += " [truncated]"
        page.labels.append(_Label(_fit(sentence, style.small, room), page.width / 2, top - used + style.pad,
                                  style.small, va="top", color="#333333"))
        used += style.small * 1.35 / 72
    return used + style.gap


def _fit(text: str, size: float, room: float) -> str:
    m = _measure()
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


def _cbar_width(style: Style) -> float:
    """Inches the colour bar takes on the right: gap, bar, tick labels, padding."""
    return style.gap * 2 + style.cbar + _measure().width("0.000", style.small) + 0.05 + style.pad


def _model_title(result: AttentionResult) -> str:
    name = result.model.name
    title = name if result.model.learned else f"{name}, not trained"
    return title if result.view_label == "attention" else f"{result.view_label} · {title}"


def _head_name(head: int) -> str:
    return "rollout" if head < 0 else f"head {head}"     # rollout mixes the heads: index -1


@dataclass
class _Grid:
    """A block of rows x cols square panels of side s, with token labels around it."""

    s: float
    font: float            # token label size (0: none)
    step: int              # label every step-th token
    left: float            # inches left of the panels (labels, names)
    bottom: float          # below
    head_row: float        # above every panel row (panel titles) or once above (column headers)

    def size(self, rows: int, cols: int, gap: float, every_row: bool) -> tuple[float, float]:
        heads = self.head_row * (rows if every_row else 1)
        return (self.left + cols * self.s + (cols - 1) * gap,
                self.bottom + heads + rows * self.s + (rows - 1) * gap)


def _solve_grid(labels, T, rows, cols, room_w, room_h, style, *, axis_names, panel_titles,
                headers, model_grid, s_target=None) -> _Grid:
    """Largest square panels that fit the room, with the largest readable token labels.

    Token labels at size f need f * 1.15 points per cell, so f = min(style.font, cell / 1.15);
    below style.min_font every step-th label is drawn instead (model grids: none at all).
    """
    m = _measure()
    gap = style.gap
    name_band = style.small * 1.5 / 72 if axis_names else 0.0
    title_band = style.small * 1.45 / 72 if (panel_titles or headers) else 0.0
    header_left = m.widest([f"L{i}" for i in range(10)], style.small) + 0.08 if headers else 0.0
    font, step = style.font, 1
    s = s_target
    for _ in range(6):
        label_w = m.widest(labels[::step], font) + 0.05 if font else 0.0
        left = header_left + name_band + label_w
        bottom = name_band + label_w
        if s_target is None:
            s = min((room_w - left - (cols - 1) * gap) / cols,
                    (room_h - bottom - title_band * (rows if panel_titles else 1) - (rows - 1) * gap) / rows)
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
    return _Grid(s, font, step, left, bottom, title_band)


def _token_label_artists(page, labels, colors, font, step, *, x0, y0, s, T, left_side=True, bottom_side=True):
    """Key labels under a panel (rotated) and query labels left of it, every step-th token."""
    cell = s / T
    for j in range(0, T, step):
        if bottom_side:
            page.labels.append(_Label(labels[j], x0 + (j + 0.5) * cell, y0 - 0.04, font, ha="right", va="center",
                                      rotation=90, color=colors[j]))
        if left_side:
            page.labels.append(_Label(labels[j], x0 - 0.04, y0 + s - (j + 0.5) * cell, font, ha="right",
                                      va="center", color=colors[j]))


def _annotate(page, data, x0, y0, w, h, style, cmap_values) -> None:
    rows, cols = data.shape
    cell_pt = min(w / cols, h / rows) * 72
    size = min(style.font * 0.8, cell_pt / 2.4)
    if size < style.min_font * 0.75:
        _NOTES.append("cells are too small for --annotate values; they were left out "
                      "(use a larger --size or fewer tokens)")
        return
    for i in range(rows):
        for j in range(cols):
            r, g, b = cmap_values[i, j, :3]
            light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5
            page.labels.append(_Label(_cell_value(float(data[i, j])), x0 + (j + 0.5) * w / cols,
                                      y0 + h - (i + 0.5) * h / rows, size, color="black" if light else "white"))


def _colors_of(data: np.ndarray, vmax: float, cmap: str) -> np.ndarray:
    import matplotlib

    return matplotlib.colormaps[cmap](np.clip(data / max(vmax, 1e-6), 0, 1))


def _auto_size(style: Style, grid_layout: bool) -> tuple[float | None, float | None]:
    width = style.grid_width if grid_layout and style.grid_width else style.width
    return width, style.height


def _frame(result, style: Style, grid_layout: bool):
    """What the layer, model and focus layouts start from: token labels and their colours, the
    requested width and height (None: fit to content), the colour bar's width, and the height the
    header takes (measured on a scratch page)."""
    labels, colors = _token_labels(result, style)
    width, height = _auto_size(style, grid_layout)
    top = _header(_Page(width or 10.0, height or 100.0), result, style, "x")
    return labels, colors, width, height, _cbar_width(style), top


def _page_head(result, style, options, *, layer, head, focus) -> _Page:
    layer = result.layers[0] if layer is None else layer
    head = result.heads[0] if head is None else head
    data = result.head(layer, head)                                       # [T, T]
    T = data.shape[0]
    labels, colors = _token_labels(result, style)
    width, height = _auto_size(style, False)
    cbar = _cbar_width(style)
    kw = dict(axis_names=True, panel_titles=False, headers=False, model_grid=False)
    if width is None:  # default preset: cells sized for the label font
        s_target = min(max(T * style.font * 1.25 / 72, 3.0), 12.0)
        grid = _solve_grid(labels, T, 1, 1, 0, 0, style, s_target=s_target, **kw)
        width = 2 * style.pad + grid.left + grid.s + cbar
    page = _Page(width, height or 100.0)
    top = _header(page, result, style, f"layer {layer} · {_head_name(head)} · {_model_title(result)}")
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
    page.panels.append(_Panel(x0, y0, grid.s, grid.s, data))
    page.vmax = float(data.max())
    page.cbar = (x0 + grid.s + style.gap * 2, y0, style.cbar, grid.s)
    _token_label_artists(page, labels, colors, grid.font, grid.step, x0=x0, y0=y0, s=grid.s, T=T)
    name = style.small
    page.labels.append(_Label("query (attending)", x0 - grid.left + 0.02, y0 + grid.s / 2, name,
                              ha="center", va="top", rotation=90, color="#444444"))
    page.labels.append(_Label("key (attended to)", x0 + grid.s / 2, y0 - grid.bottom + 0.02, name,
                              va="bottom", color="#444444"))
    if options.annotate:
        _annotate(page, data, x0, y0, grid.s, grid.s, style, _colors_of(data, page.vmax, options.cmap))
    return page


def _grid_shape(n: int, room_w: float | None, room_h: float | None, fit) -> tuple[int, int]:
    """Columns x rows for n panels: the biggest panels for a fixed room, else a ~16:10 block."""
    best, best_score = (n, 1), None
    for cols in range(1, n + 1):
        rows = math.ceil(n / cols)
        if (rows - 1) * cols >= n:
            continue
        if room_w is not None and room_h is not None:
            score = fit(rows, cols)
        else:
            score = -abs(math.log(cols / rows / 1.6)) - 0.1 * (rows * cols - n)
        if best_score is None or score > best_score + 1e-9:
            best, best_score = (rows, cols), score
    return best


def _page_layer(result, style, options, *, layer, head, focus) -> _Page:
    layer = result.layers[0] if layer is None else layer
    li = result.layers.index(layer)
    data = result.weights[li]                                             # [H, T, T]
    H, T = data.shape[0], data.shape[1]
    labels, colors, width, height, cbar, top = _frame(result, style, True)
    kw = dict(axis_names=False, panel_titles=True, headers=False, model_grid=False)
    if width is None:
        rows, cols = _grid_shape(H, None, None, None)
        s_target = min(max(T * style.font * 1.2 / 72, 1.6), 4.5)
        grid = _solve_grid(labels, T, rows, cols, 0, 0, style, s_target=s_target, **kw)
        width = 2 * style.pad + grid.size(rows, cols, style.gap, True)[0] + cbar - style.pad
    room_w = width - style.pad - cbar
    if height is None:
        rows, cols = _grid_shape(H, None, None, None)
        grid = _solve_grid(labels, T, rows, cols, room_w, 100.0, style, **kw)
        height = min(top + grid.size(rows, cols, style.gap, True)[1] + style.pad, style.max_height)
    room_h = height - top - style.pad
    rows, cols = _grid_shape(H, room_w, room_h, lambda r, c: _solve_grid(
        labels, T, r, c, room_w, room_h, style, **kw).s)
    grid = _solve_grid(labels, T, rows, cols, room_w, room_h, style, **kw)
    page = _Page(width, height)
    _header(page, result, style, f"layer {layer} · all heads · {_model_title(result)}")
    block_w, block_h = grid.size(rows, cols, style.gap, True)
    bx = style.pad + (room_w - block_w) / 2
    by = style.pad + (room_h - block_h) / 2
    page.vmax = float(data.max())
    colors_all = _colors_of(data, page.vmax, options.cmap) if options.annotate else None
    for k in range(H):
        r, c = divmod(k, cols)
        x0 = bx + grid.left + c * (grid.s + style.gap)
        y0 = by + grid.bottom + (rows - 1 - r) * (grid.s + grid.head_row + style.gap)
        page.panels.append(_Panel(x0, y0, grid.s, grid.s, data[k]))
        page.labels.append(_Label(_head_name(result.heads[k]), x0 + grid.s / 2, y0 + grid.s + 0.03, style.small,
                                  va="bottom"))
        last_in_column = k + cols >= H
        _token_label_artists(page, labels, colors, grid.font, grid.step, x0=x0, y0=y0, s=grid.s, T=T,
                             left_side=c == 0, bottom_side=last_in_column)
        if colors_all is not None:
            _annotate(page, data[k], x0, y0, grid.s, grid.s, style, colors_all[k])
    top_y = by + block_h
    page.cbar = (bx + block_w + style.gap * 2, by + grid.bottom, style.cbar, top_y - by - grid.bottom - grid.head_row)
    return page


def _page_model(result, style, options, *, layer, head, focus) -> _Page:
    data = result.weights                                                 # [L, H, T, T]
    L, H, T = data.shape[0], data.shape[1], data.shape[2]
    labels, colors, width, height, cbar, top = _frame(result, style, True)
    kw = dict(axis_names=False, panel_titles=False, headers=True, model_grid=True)
    if width is None:
        # Big enough for token labels when the model is small; whole figure within ~13 x 9 in.
        s_target = min(max(min(T * style.font / 72, 13.0 / H, 9.0 / L), 0.6), 3.0)
        grid = _solve_grid(labels, T, L, H, 0, 0, style, s_target=s_target, **kw)
        width = min(style.pad + grid.size(L, H, style.gap, False)[0] + cbar, 30.0)
    room_w = width - style.pad - cbar
    if height is None:
        grid = _solve_grid(labels, T, L, H, room_w, 100.0, style, **kw)
        height = min(top + grid.size(L, H, style.gap, False)[1] + style.pad, style.max_height)
    room_h = height - top - style.pad
    grid = _solve_grid(labels, T, L, H, room_w, room_h, style, **kw)
    page = _Page(width, height)
    _header(page, result, style, f"all layers and heads · {_model_title(result)}")
    block_w, block_h = grid.size(L, H, style.gap, False)
    bx = style.pad + (room_w - block_w) / 2
    by = style.pad + (room_h - block_h) / 2
    page.vmax = float(data.max())
    header_size = style.small if grid.s * 72 >= style.small * 2.2 else max(style.min_font, grid.s * 72 / 2.2)
    for i in range(L):
        y0 = by + grid.bottom + (L - 1 - i) * (grid.s + style.gap)
        page.labels.append(_Label(f"L{result.layers[i]}", bx, y0 + grid.s / 2, header_size, ha="left"))
        for j in range(H):
            x0 = bx + grid.left + j * (grid.s + style.gap)
            page.panels.append(_Panel(x0, y0, grid.s, grid.s, data[i, j]))
            if i == 0:
                page.labels.append(_Label("all" if result.heads[j] < 0 else f"H{result.heads[j]}", x0 + grid.s / 2, y0 + grid.s + 0.03, header_size,
                                          va="bottom"))
            if grid.font:
                _token_label_artists(page, labels, colors, grid.font, grid.step, x0=x0, y0=y0, s=grid.s, T=T,
                                     left_side=j == 0, bottom_side=i == L - 1)
    if not grid.font:
        _NOTES.append("token labels left out: the panels are too small to read them "
                      "(use --layer to show fewer layers, or a larger --size)")
    page.cbar = (bx + block_w + style.gap * 2, by + grid.bottom, style.cbar, block_h - grid.bottom - grid.head_row)
    return page


def _page_focus(result, style, options, *, layer, head, focus) -> _Page:
    if focus is None:
        raise ValueError("the focus layout needs a focus token index")
    rows_data = result.weights[:, :, focus, :]                            # [L, H, T]
    L, H, T = rows_data.shape
    data = rows_data.reshape(L * H, T)                                    # row = (layer, head)
    n = L * H
    labels, colors, width, height, cbar, top = _frame(result, style, False)
    colors = list(colors)
    colors[focus] = "#d0021b"
    m = _measure()
    row_names = [f"L{result.layers[i]}" + ("" if result.heads[j] < 0 else f" H{result.heads[j]}") for i in range(L) for j in range(H)]
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
    row_font, col_font, rotated = style.font, style.font, True
    for _ in range(6):
        row_w = m.widest(row_names, row_font) + 0.08 if row_font else m.widest(["L00"], style.small) + 0.08
        col_w = m.widest(labels, col_font)
        bottom = (col_w if rotated else col_font * 1.3 / 72) + 0.06
        cw = (room_w - row_w) / T
        ch = min((room_h - bottom) / n, cw)
        cw = min(cw, ch * 6)
        fs_rot = min(style.font, cw * 72 / 1.15)
        fs_flat = min(style.font, style.font * 0.92 * cw / max(m.widest(labels, style.font), 1e-6))
        rotated = fs_flat < max(0.75 * fs_rot, style.min_font)   # upright labels read better
        col_font = max(fs_rot if rotated else fs_flat, style.min_font)
        row_font = min(style.font, ch * 72 / 1.15)
        if row_font < style.min_font:
            row_font = 0.0   # rows too thin: name the layers only
    page = _Page(width, height)
    _header(page, result, style, f"where “{_shorten(labels[focus], 20)}” ({result.unit_name} {focus}) attends · "
                                 f"{_model_title(result)}")
    block_w = row_w + T * cw
    block_h = bottom + n * ch
    x0 = style.pad + (room_w - block_w) / 2 + row_w
    y0 = style.pad + (room_h - block_h) / 2 + bottom
    page.panels.append(_Panel(x0, y0, T * cw, n * ch, data))
    page.vmax = float(data.max())
    page.cbar = (x0 + T * cw + style.gap * 2, y0, style.cbar, n * ch)
    for j in range(T):
        cx = x0 + (j + 0.5) * cw
        page.labels.append(_Label(labels[j], cx, y0 - 0.04, col_font, ha="right" if rotated else "center",
                                  va="center" if rotated else "top", rotation=90 if rotated else 0,
                                  color=colors[j], weight="normal"))
    top_y = y0 + n * ch
    for r in range(n):
        cy = top_y - (r + 0.5) * ch
        if row_font:
            page.labels.append(_Label(row_names[r], x0 - 0.04, cy, row_font, ha="right"))
        best = int(np.argmax(data[r]))
        page.markers.append((x0 + (best + 0.5) * cw, cy))
    if not row_font:
        group_font = min(style.small, H * ch * 72 / 1.2)
        for i in range(L):
            if group_font >= style.min_font * 0.8:
                page.labels.append(_Label(f"L{result.layers[i]}", x0 - 0.04, top_y - (i + 0.5) * H * ch,
                                          group_font, ha="right"))
    for i in range(1, L):   # white rules between layers
        y = top_y - i * H * ch
        page.rules.append((x0, y, x0 + T * cw, y))
    if options.annotate:
        _annotate(page, data, x0, y0, T * cw, n * ch, style, _colors_of(data, page.vmax, options.cmap))
    return page
