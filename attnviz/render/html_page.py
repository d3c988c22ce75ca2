"""What every offline page attnviz writes shares: its assets read from html_assets/, JSON safe
inside a <script> element, zero runs for the packed weights, and the Hangul font subset, so the
short-text page (html.py) and the long-text page (html_long.py) build on the same parts."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from importlib import resources

import numpy as np


HANGUL = re.compile("[\u3000-\u303f\u3130-\u318f\uac00-\ud7a3\uff01-\uff60]")


def asset(name: str) -> str:
    return resources.files("attnviz.render").joinpath("html_assets", name).read_text(encoding="utf-8")


def script_json(data) -> str:
    """JSON that is safe inside a <script> element: no '<' (so no '</script>' or '<!--'), and no
    U+2028/2029 (line terminators to old JavaScript parsers)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def zero_runs(levels: np.ndarray, longest: int) -> np.ndarray:
    """Replace each run of zeros by (0, length) pairs, runs cut at `longest` (vectorised)."""
    zero = levels == 0
    edges = np.diff(np.concatenate(([0], zero.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    lengths = np.flatnonzero(edges == -1) - starts
    chunks = -(-lengths // longest)  # pairs per run
    run = np.repeat(np.arange(len(starts)), chunks)
    k = np.arange(len(run)) - np.repeat(np.cumsum(chunks) - chunks, chunks)  # pair number within its run
    pair_start = starts[run] + k * longest
    pair_length = np.minimum(longest, lengths[run] - k * longest)
    # Every non-zero level emits itself, every pair's first zero emits two units, other zeros none.
    emit = (~zero).astype(np.int64)
    emit[pair_start] = 2
    out = np.repeat(levels, emit)
    out[np.cumsum(emit)[pair_start] - 1] = pair_length
    return out


def hangul_font_css(text: str) -> str:
    """An @font-face holding just the Hangul glyphs `text` uses, from attnviz's own Hangul font
    (SIL OFL, data/fonts/OFL.txt), as a data: URL: Korean reads on a machine without a Korean
    font too, for a few KB (the whole font is 0.5 MB). "" when the text has no Hangul."""
    chars = sorted({ch for ch in text if HANGUL.match(ch)})
    if not chars:
        return ""
    # fontTools comes with matplotlib, an attnviz dependency; imported only for Korean text.
    from fontTools import subset
    from fontTools.ttLib import TTFont

    source = resources.files("attnviz.data").joinpath("fonts", "AttnvizHangul-Regular.ttf")
    with source.open("rb") as handle:
        font = TTFont(handle, recalcTimestamp=False)  # keep the shipped timestamp: same bytes every run
        options = subset.Options()
        options.name_IDs = ["*"]  # keep the copyright and licence names
        options.hinting = False
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=[ord(ch) for ch in chars])
        subsetter.subset(font)
        buffer = io.BytesIO()
        font.save(buffer)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        "/* Attnviz Hangul: a subset of NanumSquare (NAVER), SIL Open Font License 1.1 */\n"
        f'@font-face {{ font-family: "Attnviz Hangul"; src: url(data:font/ttf;base64,{data}) format("truetype"); '
        "unicode-range: U+3000-303F, U+3130-318F, U+AC00-D7A3, U+FF01-FF60; }\n"
    )


def page_script(name: str) -> tuple[str, str]:
    """(the inline script of a page: the shared colour table and mask rule, then html_assets/`name`,
    and its sha256 for the page's Content-Security-Policy)."""
    script = asset("viridis.js") + asset("masks.js") + asset(name)
    if "</script" in script.lower():
        raise AssertionError(f"{name} must not contain '</script'")
    return script, base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
