"""The drawing engine: reusable figures (scenes), text measuring and cached glyphs.

Text dominates matplotlib's time, and building figures and axes is the next cost. So each
process keeps one figure per layout shape (a `Scene`) and reuses it: a new image only swaps the
data of existing AxesImages, moves axes and relabels a pool of Text artists. Labels are plain
Text artists placed in inches (not tick machinery), measured once per string, and drawn only
when they can be read.

A `Page` (built by layouts.py, pure geometry in inches) says everything one image shows; the
scene turns it into artists. Every piece of figure state is set from the page and the options on
every draw, so nothing of one image leaks into the next one drawn on the same scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .options import ImageOptions, Style

MAX_SCENES = 8
# Cells a causal model cannot attend to (future keys): a light neutral grey, outside every
# colormap's scale, explained by a swatch under the colour bar.
MASKED_COLOR = "#d9d9d9"
_SCENES: dict[tuple, "Scene"] = {}


def scene_for(layout: str, panels: int, cmap: str) -> "Scene":
    """The process's figure for this layout shape (most recently used last; the oldest beyond
    MAX_SCENES are closed). Only what a figure is built with is in the key: everything else,
    the background included, is set again on every draw."""
    key = (layout, panels, cmap)
    scene = _SCENES.pop(key, None)
    if scene is None:
        scene = Scene(layout, panels, cmap)
    _SCENES[key] = scene
    while len(_SCENES) > MAX_SCENES:
        _SCENES.pop(next(iter(_SCENES))).close()
    return scene


def last_scene() -> "Scene":
    """The scene drawn most recently (tests read its artists)."""
    return next(reversed(_SCENES.values()))


def rc(style: Style) -> dict:
    from ..fonts import register_fonts

    return {
        "font.family": list(register_fonts()),
        "font.size": style.small,
        "text.parse_math": False,  # a token such as "$5" is text, never mathtext
        "text.usetex": False,
        "svg.hashsalt": "attnviz",  # ids in SVG files are otherwise random per run
        "svg.fonttype": "path",  # glyphs as paths: the SVG looks the same without our fonts
        "pdf.fonttype": 42,  # TrueType, embedded and subset: selectable, editable text
        "image.interpolation": "none",  # cells stay crisp; PDF/SVG embed the [T, T] data itself
        "image.resample": False,
        "figure.facecolor": "white",
        "savefig.facecolor": "auto",
        "savefig.bbox": None,
        "savefig.pad_inches": 0.0,
    }


class Measure:
    """Text widths in inches, measured once per string with the Agg renderer (font fallback included)."""

    REF = 10.0  # points

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import RendererAgg
        from matplotlib.font_manager import FontProperties

        self._renderer = RendererAgg(1, 1, 72)  # at 72 dpi, pixels are points
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


_MEASURE: Measure | None = None


def measure() -> Measure:
    global _MEASURE
    if _MEASURE is None:
        _MEASURE = Measure()
    return _MEASURE


@dataclass
class Label:
    text: str
    x: float  # inches from the figure's left
    y: float  # inches from the figure's bottom
    size: float
    ha: str = "center"
    va: str = "center"
    rotation: float = 0.0
    color: str = "black"
    weight: str = "normal"


@dataclass
class Panel:
    x: float  # the cells' box, inches
    y: float
    w: float
    h: float
    data: np.ndarray  # [rows, cols]
    mask: np.ndarray | None = None  # [rows, cols] True: a masked cell (drawn MASKED_COLOR), None: none


@dataclass
class Page:
    """Everything one image shows, in inches; `Scene.apply` turns it into artists."""

    width: float
    height: float
    panels: list[Panel] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    cbar: tuple[float, float, float, float] | None = None
    vmax: float = 1.0
    over: bool = False  # some weight is above vmax (clipped): the top tick reads "≥ vmax"
    swatch: tuple[float, float, float, float] | None = None  # the masked-cell key, inches
    markers: list[tuple[float, float]] = field(default_factory=list)  # inches
    rules: list[tuple[float, float, float, float]] = field(default_factory=list)  # x0, y0, x1, y1 inches
    notes: list[str] = field(default_factory=list)  # what the image leaves out, for the user


class _GlyphRecorder:
    """Stands in for Agg's C++ renderer while one text is drawn, keeping the glyph bitmaps."""

    def __init__(self) -> None:
        self.glyphs: list[tuple[np.ndarray, int, int]] = []

    def draw_text_image(self, image, x, y, angle, gc) -> None:
        if angle != 0:
            raise _NoFastText
        self.glyphs.append((np.array(image, copy=True), int(x), int(y)))

    def draw_path(self, *args, **kwargs) -> None:  # box glyphs (rare): not cacheable
        raise _NoFastText


class _NoFastText(Exception):
    pass


_GLYPHS: dict[tuple, list[tuple[np.ndarray, int, int]]] = {}
_GLYPH_CACHE_LIMIT = 20000
FAST_TEXT = True  # tests switch it off to check that cached text draws the same pixels


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
            key = (
                s,
                hash(prop),
                prop.get_size_in_points(),
                angle,
                self.dpi,
                self.height,
                x - ix,
                y - iy,
                gc.get_antialiased(),
            )
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


class Scene:
    """One reusable figure: panel axes with their images, a colour bar, a pool of Text artists.

    Axes are switched off (no spines, ticks or background to draw, which is most of an Axes'
    cost); panel frames, colour-bar ticks, focus markers and rules between layers are single
    Line2D artists placed in inches.
    """

    def __init__(self, layout: str, panels: int, cmap: str) -> None:
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        from matplotlib import colormaps
        from matplotlib.patches import Rectangle

        self.layout = layout
        self.fig = Figure()
        _caching_canvas_class()(self.fig)
        self.norm = Normalize(0.0, 1.0)  # shared: one colour scale for every panel
        self.axes, self.images = [], []
        masked_cmap = colormaps[cmap].with_extremes(bad=MASKED_COLOR)
        for _ in range(panels + 1):  # the last one is the colour bar
            ax = self.fig.add_axes((0, 0, 1, 1))
            ax.set_axis_off()
            self.axes.append(ax)
            if len(self.images) < panels:
                self.images.append(
                    ax.imshow(
                        np.zeros((1, 1), np.float32),
                        cmap=masked_cmap,
                        norm=self.norm,
                        interpolation="none",
                        aspect="auto",
                    )
                )
        self.cax = self.axes.pop()
        gradient = np.linspace(0.0, 1.0, 256, dtype=np.float32)[:, None]  # [256, 1], bottom to top
        self.cax.imshow(
            gradient,
            cmap=cmap,
            norm=Normalize(0.0, 1.0),
            origin="lower",
            interpolation="nearest",
            aspect="auto",
            extent=(0, 1, 0, 1),
        )
        self.texts = []  # the Text pool, grown on demand
        inches = self.fig.dpi_scale_trans

        def line(**kw):
            artist = Line2D([], [], transform=inches, solid_joinstyle="miter", **kw)
            self.fig.add_artist(artist)
            return artist

        self.swatch = Rectangle((0, 0), 1, 1, transform=inches, facecolor=MASKED_COLOR, edgecolor="none")
        self.fig.add_artist(self.swatch)
        self.frames = line(color="#8a8a8a", linewidth=0.5)
        self.rule_line = line(color="white", linewidth=1.2)
        self.marks = line(
            linestyle="none", marker="o", markerfacecolor="none", markeredgecolor="#ff3b30", markeredgewidth=1.2
        )

    def close(self) -> None:
        self.fig.clear()

    def apply(self, page: Page, style: Style, options: ImageOptions) -> None:
        fig = self.fig
        # The background is set on every draw: a transparent image must not leave the reused
        # figure transparent for the next one (savefig's facecolor "auto" reads it).
        fig.patch.set_alpha(0.0 if options.transparent else 1.0)
        fig.set_size_inches(page.width, page.height)
        fig.set_dpi(style.dpi)
        W, H = page.width, page.height
        self.norm.vmax = max(page.vmax, 1e-6)
        frames: list[tuple[float, float, float, float]] = []
        for ax, image, panel in zip(self.axes, self.images, page.panels):
            rows, cols = panel.data.shape
            ax.set_position((panel.x / W, panel.y / H, panel.w / W, panel.h / H))
            ax.set_visible(True)
            image.set_data(panel.data if panel.mask is None else np.ma.masked_array(panel.data, panel.mask))
            image.set_extent((-0.5, cols - 0.5, rows - 0.5, -0.5))
            ax.set_xlim(-0.5, cols - 0.5)
            ax.set_ylim(rows - 0.5, -0.5)
            frames.append((panel.x, panel.y, panel.w, panel.h))
        for ax in self.axes[len(page.panels) :]:
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
            values = nice_ticks(self.norm.vmax, h / (style.small * 1.6 / 72))
            for value in values:
                ty = y + h * value / self.norm.vmax
                ticks_x += [x + w, x + w + tick, np.nan]
                ticks_y += [ty, ty, np.nan]
                text = ("≥" if page.over and value == values[-1] else "") + fmt_tick(value)
                labels.append(Label(text, x + w + tick + 0.03, ty, style.small, ha="left"))
        else:
            self.cax.set_visible(False)
        if page.swatch is not None:
            x, y, w, h = page.swatch
            self.swatch.set_bounds(x, y, w, h)
            frames.append(page.swatch)
        self.swatch.set_visible(page.swatch is not None)
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

    def _place_labels(self, labels: list[Label], dpi: float) -> None:
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
        for text in self.texts[len(labels) :]:
            if text.get_visible():
                text.set_visible(False)


def nice_ticks(vmax: float, room: float = 6.0) -> list[float]:
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


def fmt_tick(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"
