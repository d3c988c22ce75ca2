"""`e`: the current head as a PNG (render.image) and the sentence as an interactive HTML page
(render.html), under fresh names in the save folder: atomically written, never overwriting."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from ..analysis.views import mixed_name
from ..errors import AttnvizError
from ..files import atomic_write
from ..result import AttentionResult

MAX_SLUG = 40


def slug(text: str) -> str:
    """A file-name stem from the sentence: its first whole words (at most MAX_SLUG characters),
    letters and digits only."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    out = ""
    for word in re.findall(r"\w+", folded):
        joined = f"{out}-{word}" if out else word[:MAX_SLUG]
        if len(joined) > MAX_SLUG:
            break
        out = joined
    return out or "sentence"


def free_name(folder: Path, stem: str, suffixes: tuple[str, ...]) -> str:
    """The first `stem`, `stem-2`, `stem-3`... for which no file with any of `suffixes` exists,
    so the PNG and HTML of one save share a name."""
    n = 1
    while True:
        name = stem if n == 1 else f"{stem}-{n}"
        if not any((folder / f"{name}{s}").exists() for s in suffixes):
            return name
        n += 1


def save_view(
    folder: Path,
    result: AttentionResult,
    token_results: dict[str, AttentionResult],
    layer: int,
    head: int,
    token_focus: int,
    pronoun_heads=None,
) -> list[Path]:
    """Write `result`'s head (layer, head) as PNG and the page of `token_results` (view -> token-level
    result) as HTML, at the same word level, focus and sinks setting. Returns the paths written."""
    from ..render.html import render_html
    from ..render.image import ImageOptions, render_image

    if not folder.is_dir():
        raise AttnvizError(f"cannot save into {folder}: no such folder")
    head_part = f"h{head}" if head >= 0 else "-" + mixed_name(result.view).replace(" ", "-")
    stem = f"{slug(result.text)}-{result.view}-{result.units}-l{layer}{head_part}"
    name = free_name(folder, stem, (".png", ".html"))
    image = render_image(result.select([layer], [head]), "head", ImageOptions(), fmt="png", layer=layer, head=head)
    # render.image returns the bytes, or (as its package split plans) an object carrying them.
    data = getattr(image, "data", image)
    known = (
        None
        if pronoun_heads is None
        else {
            "probe_set": pronoun_heads.probe_set,
            "heads": [
                {"layer": h["layer"], "head": h["head"], "accuracy": h["accuracy"]} for h in pronoun_heads.resolving()
            ],
        }
    )
    page = render_html(
        token_results,
        focus=str(token_focus),
        level=result.units,
        exclude_sinks=bool(result.excluded),
        pronoun_heads=known,
    )
    png = atomic_write(folder / f"{name}.png", data)
    html = atomic_write(folder / f"{name}.html", page)
    return [png, html]
