"""Image options and the choice of layout: what the command line imports before any drawing.

Plain data and validation only. Nothing here imports matplotlib at import time (check_cmap does,
when it is called), so `attnviz show --png` can check its flags before the model loads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ...errors import AttnvizError
from ...result import AttentionResult

LAYOUTS = ("head", "layer", "model", "focus")
FORMATS = ("png", "svg", "pdf")


@dataclass(frozen=True)
class Style:
    """Sizes of one preset. Lengths in inches, fonts in points; width/height None = automatic."""

    name: str
    dpi: float
    font: float  # token labels at most this size
    title: float
    small: float  # panel titles, colour-bar ticks, axis names
    min_font: float  # smaller labels are not drawn
    width: float | None = None
    height: float | None = None
    grid_width: float | None = None  # width for layer/model grids when `width` is automatic
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
    "slide": Style(
        "slide",
        dpi=150,
        font=16,
        title=22,
        small=14,
        min_font=8,
        width=40 / 3,
        height=7.5,
        pad=0.2,
        gap=0.14,
        cbar=0.22,
        label_chars=18,
    ),
    # A journal column (3.5 in; grids take the text width, 7 in); small type, vector output friendly.
    "paper": Style(
        "paper",
        dpi=300,
        font=7,
        title=8,
        small=6.5,
        min_font=4,
        width=3.5,
        grid_width=7.0,
        max_height=9.0,
        pad=0.05,
        gap=0.05,
        cbar=0.08,
        label_chars=14,
        subtitle=False,
    ),
}


@dataclass(frozen=True)
class ImageOptions:
    cmap: str = "viridis"
    annotate: bool = False
    dpi: float | None = None  # None: the preset's
    size: tuple[float, float] | None = None  # (width, height) in inches; None: the preset's / automatic
    preset: str | None = None  # None, "slide" or "paper"
    transparent: bool = False
    # The colour scale's top: "fixed" (1: attention and rollout rows sum to one, so every image is
    # comparable), "auto" (this image's largest weight, leaving out result.excluded tokens), or a
    # number, shared by every image drawn with it. None: the view's own, fixed for attention and
    # rollout, auto for the norm view (its weights are not bounded by one).
    scale: str | float | None = None

    def scale_for(self, view: str) -> str | float:
        """The colour scale in force for a view: "fixed", "auto" or a maximum (None: the view's own)."""
        if self.scale is None:
            return "auto" if view == "norm" else "fixed"
        return parse_scale(self.scale) if isinstance(self.scale, str) else float(self.scale)

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
    if isinstance(options.scale, str):
        options = replace(options, scale=parse_scale(options.scale))
    elif options.scale is not None and not (isinstance(options.scale, (int, float)) and 0 < options.scale < 1e6):
        raise AttnvizError(f"--scale {options.scale!r} is out of range: give a maximum above 0")
    return options


SCALES = ("fixed", "auto")


def parse_scale(spec: str) -> str | float:
    """--scale: "fixed", "auto" or a positive number (the colour bar's top, shared by a set of images)."""
    text = spec.strip().lower()
    if text in SCALES:
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value < 1e6):  # nan and inf too
        raise AttnvizError(
            f"invalid --scale {spec!r}: use fixed (0-1), auto (each image's largest weight) "
            "or a maximum such as 0.5 (the same for every image)"
        )
    return value


def check_cmap(name: str) -> None:
    import matplotlib

    if name not in matplotlib.colormaps:
        raise AttnvizError(
            f"unknown colormap {name!r}: try viridis (the default), magma, cividis, "
            "inferno, plasma or Blues (any matplotlib colormap name works)"
        )


_UNITS = {"in": 1.0, "": 1.0, "cm": 1 / 2.54, "mm": 1 / 25.4, "px": None}


def parse_size(spec: str, dpi: float | None = None, preset: str | None = None) -> tuple[float, float]:
    """'8x4.5' (inches), '20x12cm', '160x90mm' or '1600x900px' (at the --dpi in force) -> inches."""
    # [0-9], not \d: \d and float() also take other scripts' digits ("٣x٤"), as indices no longer do
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*[xX×]\s*([0-9]+(?:\.[0-9]+)?)\s*(in|cm|mm|px)?\s*", spec or "")
    if not match:
        raise AttnvizError(
            f"invalid --size {spec!r}: use WIDTHxHEIGHT in inches (8x4.5) or with a unit "
            "(20x12cm, 160x90mm, 1600x900px)"
        )
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
