"""Names in an export folder: a sentence's folder (`003-the-animal-didnt-cross`), its images
(`L2-H05.png`) and the layouts that decide which images there are.

Names are predictable: the sentence's position among all inputs, then a short Unicode-aware slug
of its first words (`003-the-animal-didnt-cross`, `012-그-동물은-길을`), at most 24 characters and
72 bytes of UTF-8 (a first word longer than that is cut and tagged with a hash of the sentence), so
names fit every file system whatever the script.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from ..errors import AttnvizError
from .inputs import Sentence

LAYOUTS = ("model", "layers", "heads", "focus")  # export names: one file, one per layer, one per head
DEFAULT_LAYOUTS = ("model", "layers", "focus")
SLUG_CHARS = 24
SLUG_BYTES = 72  # 24 characters of 3-byte UTF-8 (Hangul, CJK); folder names stay far below 255 bytes
HASH_CHARS = 6  # the tag of a cut word: 24 bits of the sentence's SHA-1
HTML_VIEW = "view.html"


def slugify(text: str, limit: int = SLUG_CHARS, max_bytes: int = SLUG_BYTES) -> str:
    """The first words of `text`, lower case, joined by '-': safe in file names on every system.

    Letters and digits of any script survive (NFKC-normalised and case-folded), apostrophes vanish
    ("didn't" -> "didnt"), everything else separates words. Whole words are kept up to `limit`
    characters and `max_bytes` bytes of UTF-8. A first word longer than that (a long compound, a
    script written without spaces) is cut at a character and tagged with a short hash of the whole
    text, so two such sentences that start alike still get different names. A text without letters
    or digits gives "text". The same text always gives the same slug.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = re.sub(r"['’ʼ‘`´]", "", folded)
    words = [unicodedata.normalize("NFC", w) for w in re.findall(r"[^\W_]+", folded)]

    def fits(candidate: str) -> bool:
        return len(candidate) <= limit and len(candidate.encode("utf-8")) <= max_bytes

    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if not fits(candidate):
            break
        slug = candidate
    if not slug and words:
        tag = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
        head = words[0][:limit]
        while head and not fits(f"{head}-{tag}"):
            head = head[:-1]
        slug = f"{head}-{tag}" if head else tag
    return slug or "text"


def sentence_folder(sentence: Sentence, count: int) -> str:
    width = max(3, len(str(count)))
    return f"{sentence.index:0{width}d}-{slugify(sentence.text)}"


@dataclass(frozen=True)
class ImageJob:
    """One image to draw: which layout of which layer/head, and its path relative to OUTDIR."""

    layout: str  # render layout: head, layer, model, focus
    path: str  # POSIX, relative to OUTDIR
    layer: int | None = None
    head: int | None = None


def plan_images(
    folder: str,
    layouts: Iterable[str],
    layers: list[int],
    heads: list[int],
    num_layers: int,
    num_heads: int,
    fmt: str,
    focus: int | None,
) -> list[ImageJob]:
    """The files of one sentence, in a fixed order. Layer numbers are padded to the model's width,
    head numbers to at least two digits (L2-H05), so names sort in order."""
    lw = len(str(max(num_layers - 1, 0)))
    hw = max(2, len(str(max(num_heads - 1, 0))))
    jobs: list[ImageJob] = []
    for layout in layouts:
        if layout == "model":
            jobs.append(ImageJob("model", f"{folder}/model.{fmt}"))
        elif layout == "layers":
            jobs += [ImageJob("layer", f"{folder}/L{l:0{lw}d}.{fmt}", layer=l) for l in layers]
        elif layout == "heads":
            jobs += [
                ImageJob("head", f"{folder}/L{l:0{lw}d}-H{h:0{hw}d}.{fmt}", layer=l, head=h)
                for l in layers
                for h in heads
            ]
        elif layout == "focus":
            if focus is not None:
                jobs.append(ImageJob("focus", f"{folder}/focus.{fmt}"))
        else:
            raise AttnvizError(f"unknown layout {layout!r}: use {', '.join(LAYOUTS)}")
    return jobs


def parse_layouts(spec: str | None) -> tuple[str, ...]:
    """'model,layers' -> ("model", "layers"); 'all' -> every layout; None -> the default."""
    if spec is None:
        return DEFAULT_LAYOUTS
    names = [part.strip().lower() for part in spec.split(",") if part.strip()]
    if "all" in names:  # "all,heads" is still every layout
        return LAYOUTS
    aliases = {"layer": "layers", "head": "heads"}
    names = [aliases.get(n, n) for n in names]
    bad = [n for n in names if n not in LAYOUTS]
    if bad or not names:
        raise AttnvizError(
            f"unknown layout {', '.join(bad) or repr(spec)}: use a comma list of {', '.join(LAYOUTS)}, or all"
        )
    return tuple(dict.fromkeys(names))
