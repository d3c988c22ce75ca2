"""Fonts for images: Latin from matplotlib's DejaVu Sans, Hangul from the font attnviz ships.

matplotlib's default font has no Hangul, so Korean labels would come out as empty boxes (with a
"Glyph ... missing" warning). attnviz ships `data/fonts/AttnvizHangul-Regular.ttf` (a renamed
subset of NAVER's NanumSquare, SIL OFL 1.1; see data/fonts/OFL.txt) and registers it by file
path with `fontManager.addfont`, so neither a system font nor matplotlib's font cache is needed:
a stale cache from before the install cannot hide it. Text is set with the family list
["DejaVu Sans", "Attnviz Hangul"]: matplotlib's per-glyph fallback takes Hangul from the second.
Both files come with the installed packages, so every machine draws the same glyphs, which is
what makes image bytes reproducible across machines.

A character neither font has (Chinese, emoji, ...) is written as a visible `<U+XXXX>` escape by
`drawable`, never as a box: a missing-glyph warning is a bug.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

HANGUL_FAMILY = "Attnviz Hangul"
LATIN_FAMILY = "DejaVu Sans"
FAMILIES = (LATIN_FAMILY, HANGUL_FAMILY)
HANGUL_FONT = Path(__file__).resolve().parent.parent / "data" / "fonts" / "AttnvizHangul-Regular.ttf"


@functools.lru_cache(maxsize=None)
def register_fonts() -> tuple[str, ...]:
    """Register the shipped Hangul font with matplotlib (once per process); return the family list."""
    from matplotlib import font_manager

    if not HANGUL_FONT.is_file():  # a broken install, not a user error
        raise RuntimeError(f"attnviz's Hangul font is missing: {HANGUL_FONT}; reinstall attnviz")
    names = {entry.name for entry in font_manager.fontManager.ttflist}
    if HANGUL_FAMILY not in names:
        font_manager.fontManager.addfont(str(HANGUL_FONT))
    return FAMILIES


@functools.lru_cache(maxsize=None)
def font_files() -> tuple[str, ...]:
    """The files matplotlib uses for FAMILIES, in fallback order."""
    from matplotlib import font_manager

    register_fonts()
    return tuple(
        font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        for family in FAMILIES
    )


@functools.lru_cache(maxsize=None)
def coverage() -> frozenset[int]:
    """Code points that some font of FAMILIES can draw."""
    from matplotlib.ft2font import FT2Font

    covered: set[int] = set()
    for path in font_files():
        covered.update(FT2Font(path).get_charmap())
    return frozenset(covered)


def drawable(text: str) -> str:
    """`text` with every character no font can draw replaced by a visible `<U+XXXX>` escape."""
    # Decomposed Hangul (jamo sequences, as macOS file names have them) composes to syllables.
    text = unicodedata.normalize("NFC", text)
    covered = coverage()
    if all(ord(ch) in covered for ch in text):
        return text
    return "".join(ch if ord(ch) in covered else f"<U+{ord(ch):04X}>" for ch in text)
