"""Rebuild AttnvizHangul-Regular.ttf, the Hangul font attnviz ships for its images.

Source: NanumSquareR.ttf from Debian's `fonts-nanum` package (version 20200506-1; NAVER's
NanumSquare Regular 1.000, SIL Open Font License 1.1). We keep only what Korean labels need
(Hangul syllables U+AC00-D7A3, compatibility jamo, CJK and full-width punctuation; Latin comes
from matplotlib's own DejaVu Sans), drop hinting, and rename the family: the OFL reserves the
names "Nanum..." for the original, so a modified version must carry another name. The result is
~0.5 MB instead of 0.7 MB, with the same outlines.

    apt-get download fonts-nanum && dpkg-deb -x fonts-nanum_*.deb nanum
    python attnviz/data/fonts/build_hangul_font.py nanum/usr/share/fonts/truetype/nanum/NanumSquareR.ttf

Not part of the package at run time; kept so the shipped file can be reproduced and audited.
"""

from __future__ import annotations

import sys
from pathlib import Path

FAMILY = "Attnviz Hangul"
POSTSCRIPT = "AttnvizHangul-Regular"
UNICODES = "U+3000-303F,U+3130-318F,U+AC00-D7A3,U+FF01-FF60"
OUT = Path(__file__).with_name("AttnvizHangul-Regular.ttf")


def build(source: str) -> Path:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    options = subset.Options()
    options.hinting = False
    options.layout_features = []
    options.drop_tables += ["kern", "TSI0", "TSI1", "TSI2", "TSI3", "TSI5"]
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 13, 14]  # keep copyright and licence fields
    options.name_languages = [0x409]
    font = TTFont(source, recalcTimestamp=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=subset.parse_unicodes(UNICODES))
    subsetter.subset(font)

    name = font["name"]
    copyright_ = name.getDebugName(0)
    name.names = [r for r in name.names if r.nameID in (0, 2, 5)]
    name.setName(copyright_ + " Modified (subset, renamed) for attnviz.", 0, 3, 1, 0x409)
    name.setName(FAMILY, 1, 3, 1, 0x409)
    name.setName(f"{POSTSCRIPT};attnviz", 3, 3, 1, 0x409)
    name.setName(f"{FAMILY} Regular", 4, 3, 1, 0x409)
    name.setName(POSTSCRIPT, 6, 3, 1, 0x409)
    name.setName("This Font Software is licensed under the SIL Open Font License, Version 1.1.", 13, 3, 1, 0x409)
    name.setName("https://openfontlicense.org", 14, 3, 1, 0x409)
    font["OS/2"].fsType = 0  # OFL: installable embedding, so PDFs may embed it
    font["head"].modified = font["head"].created  # no build timestamp: reproducible bytes
    font.save(OUT, reorderTables=True)
    return OUT


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(build(sys.argv[1]))
