"""Fonts for images: Latin from matplotlib's DejaVu Sans, Hangul from the font attnviz ships.

matplotlib's default font has no Hangul, so Korean labels would come out as empty boxes (with a
"Glyph ... missing" warning). attnviz ships `data/fonts/AttnvizHangul-Regular.ttf` (a renamed
subset of NAVER's NanumSquare, SIL OFL 1.1; see data/fonts/OFL.txt) and registers it by file
path with `fontManager.addfont`, so neither a system font nor matplotlib's font cache is needed:
a stale cache from before the install cannot hide it. Text is set with the family list
["DejaVu Sans", "Attnviz Hangul"]: matplotlib's per-glyph fallback takes Hangul from the second.
Both files come with the installed packages, so every machine draws the same glyphs, which is
what makes image bytes reproducible across machines.

A character neither font has (Chinese, emoji, ...) is drawn by `drawable` as U+FFFD (�), one per
emoji sequence, never as an empty box; a control or format character without a glyph is written
as a visible `<U+XXXX>` escape. A missing-glyph warning is a bug.
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


FALLBACK = "\ufffd"  # drawn for a character no font has (DejaVu Sans has it)
# What continues an emoji sequence: zero-width joiner, variation selectors, skin tones, keycap, tags.
_EMOJI_JOINERS = {0x200D, 0xFE0E, 0xFE0F, 0x20E3, *range(0x1F3FB, 0x1F400), *range(0xE0020, 0xE0080)}


def drawable(text: str) -> str:
    """`text` as the fonts can draw it: a character no font has becomes FALLBACK (one for a whole
    emoji sequence such as a family joined by U+200D, or a flag's two letters); a control or format
    character without a glyph becomes a visible `<U+XXXX>` escape."""
    # Decomposed Hangul (jamo sequences, as macOS file names have them) composes to syllables.
    text = unicodedata.normalize("NFC", text)
    covered = coverage()
    if all(ord(ch) in covered for ch in text):
        return text
    out: list[str] = []
    glued = False  # a zero-width joiner after a fallback: the next pictograph belongs to it
    half_flag = False  # the fallback drawn was a flag's first regional-indicator letter
    for ch in text:
        cp = ord(ch)
        after_fallback = bool(out) and out[-1] == FALLBACK
        is_letter_of_flag = 0x1F1E6 <= cp <= 0x1F1FF
        if after_fallback and cp in _EMOJI_JOINERS:
            glued = glued or cp == 0x200D
            continue
        if cp in covered:
            out.append(ch)
        elif unicodedata.category(ch)[0] in "CZ":  # control, format, private, unassigned, separators
            out.append(f"<U+{cp:04X}>")
        elif after_fallback and (glued or (half_flag and is_letter_of_flag)):
            half_flag = False  # the same emoji sequence: its fallback is drawn already
            glued = False
            continue
        else:
            out.append(FALLBACK)
            half_flag = is_letter_of_flag
            glued = False
            continue
        glued = half_flag = False
    return "".join(out)
