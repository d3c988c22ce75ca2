"""Tokenization: the default tokenizer, loading any `tokenizer.json`, and word alignment.

Every token keeps its character offsets into the original text (so views can always show what
the user wrote, even for [UNK] or lowercased pieces) and the index of the word it belongs to (so
views can merge subword pieces back into words).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import AttnvizError, first_line
from .reading import TOKENIZER_LIMIT, read_text

DEFAULT_TOKENIZER = "default_tokenizer.json"
# Words no vocabulary holds whole (and a symbol): encoding them needs the unknown-token or byte
# fallback that a sound tokenizer has (see TextTokenizer.check_encodes).
UNKNOWN_PROBE = "the zqxjvbk Żółwiątkowy ⟁ 12345"


@dataclass(frozen=True)
class Encoding:
    ids: list[int]
    tokens: list[str]  # the tokenizer's own strings ("##'t", "[CLS]", "Ġit")
    offsets: list[tuple[int, int]]  # character [start, end) in the text; (0, 0) for added specials
    word_ids: list[int | None]  # word index per token; None for special tokens
    special: list[bool]
    type_ids: list[int]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.ids)


class TextTokenizer:
    """A `tokenizers.Tokenizer` with attnviz's expectations: no padding, no silent truncation."""

    def __init__(self, tokenizer, source: str):
        self._tok = tokenizer
        self.source = source
        # Checkpoints often ship tokenizers that pad or truncate everything to a fixed length
        # (MiniLM's pads to 128): attnviz decides about length itself.
        self._tok.no_padding()
        self._tok.no_truncation()

    @classmethod
    def default(cls) -> "TextTokenizer":
        text = resources.files("attnviz.data").joinpath(DEFAULT_TOKENIZER).read_text(encoding="utf-8")
        return cls.from_str(text, "attnviz default")

    @classmethod
    def from_str(cls, text: str, source: str) -> "TextTokenizer":
        from tokenizers import Tokenizer

        try:
            return cls(Tokenizer.from_str(text), source)
        except Exception as exc:  # tokenizers raises its own Exception subclass with long messages
            raise AttnvizError(f"{source}: not a valid tokenizer.json ({first_line(exc)})") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> "TextTokenizer":
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        return cls.from_str(read_text(path, "a tokenizer.json (or a folder holding one)", TOKENIZER_LIMIT), str(path))

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def _encode(self, text: str, **options):
        """The tokenizers library's encode; its errors become one line naming this tokenizer. A
        WordLevel model whose `unk_token` is missing from its vocabulary, for one, raises
        "Missing [UNK] token from the vocabulary" on every word it does not know."""
        try:
            return self._tok.encode(text, **options)
        except Exception as exc:  # tokenizers raises a bare Exception
            raise AttnvizError(
                f"{self.source}: the tokenizer cannot encode the text ({first_line(exc)}); "
                "fix its tokenizer.json or use another tokenizer"
            ) from None

    def check_encodes(self) -> None:
        """Refuse a tokenizer that fails on words outside its vocabulary (see `_encode`): a
        checkpoint saved with it would break on the first such word of any text."""
        try:
            self._tok.encode(UNKNOWN_PROBE)
        except Exception as exc:
            raise AttnvizError(
                f"{self.source}: the tokenizer cannot encode words outside its vocabulary "
                f"({first_line(exc)}); give a tokenizer.json whose unk_token is in its "
                "vocabulary"
            ) from None

    def to_str(self) -> str:
        return self._tok.to_str(pretty=True)

    def repeated_random_words(self, n: int, seed: int) -> str:
        """A text of n random words of the vocabulary, then the same n words again, each word one
        token wherever it stands (for induction and duplicate-token tests). Deterministic in `seed`."""
        import numpy as np

        rng = np.random.default_rng([seed, n])
        vocab = sorted(self._tok.get_vocab().items(), key=lambda item: item[1])  # (piece, id) by id
        special = {i for i, added in self._tok.get_added_tokens_decoder().items() if added.special}
        pool = [i for _, i in vocab if i not in special]
        for _ in range(50):
            words: list[str] = []
            for i in rng.permutation(pool):
                word = self._tok.decode([int(i)]).strip()
                # Plain lower-case words, one token alone and after a space, not yet chosen.
                if (
                    len(word) >= 3
                    and word.isascii()
                    and word.isalpha()
                    and word.islower()
                    and word not in words
                    and len(self._encode(word, add_special_tokens=False).ids) == 1
                    and len(self._encode(" " + word, add_special_tokens=False).ids) == 1
                ):
                    words.append(word)
                    if len(words) == n:
                        break
            # Byte-level BPE (GPT-2, SmolLM) spells a word differently after a space ("Ġcat"):
            # a leading space makes the first word match its repeat.
            for text in (" ".join(words + words), " " + " ".join(words + words)):
                ids = self._encode(text, add_special_tokens=False).ids
                if len(words) == n and len(ids) == 2 * n and ids[:n] == ids[n:]:
                    return text
        raise AttnvizError(
            f"{self.source}: cannot find {n} words that stay one token each; "
            "this tokenizer has too few whole-word pieces"
        )

    def encode(self, text: str, max_len: int | None = None, truncate: bool = False) -> Encoding:
        """Tokenize `text`; with `max_len`, refuse longer inputs unless `truncate` is set."""
        if not text or not text.strip():
            raise AttnvizError("the text is empty; give a sentence to visualise")
        enc = self._encode(text)
        truncated = False
        if max_len is not None and len(enc.ids) > max_len:
            if not truncate:
                raise AttnvizError(
                    f"the text has {len(enc.ids)} tokens but the model takes at most {max_len}; "
                    f"shorten it or pass --truncate"
                )
            # The special tokens are added after truncation: with max_len at or below their count
            # the library returns more than max_len tokens (3 for max_len 1), or only specials.
            specials = self._tok.num_special_tokens_to_add(False)
            if max_len <= specials:
                raise AttnvizError(
                    f"the model takes at most {max_len} token{'s' * (max_len != 1)}: no room for "
                    f"a word beside the tokenizer's {specials} special tokens"
                )
            self._tok.enable_truncation(max_len)
            try:
                enc = self._encode(text)
            finally:
                self._tok.no_truncation()
            truncated = True
        special = [bool(s) for s in enc.special_tokens_mask]
        if all(special):
            raise AttnvizError("the text has no tokens the tokenizer can read; give a sentence to visualise")
        offsets = cover_marks(
            text, [tuple(o) if s else trim_spaces(text, o) for o, s in zip(enc.offsets, special)], special
        )
        word_ids = list(enc.word_ids)
        # Without a pre-tokenizer (SentencePiece as Gemma's GGUF vocabulary is rebuilt) the whole
        # text is one "word" to the library: words then come from the gaps between tokens.
        if self._tok.pre_tokenizer is None or all(w is None for w, s in zip(word_ids, special) if not s):
            word_ids = _words_from_offsets(offsets, special)
        word_ids = [None if s else w for w, s in zip(word_ids, special)]
        return Encoding(list(enc.ids), list(enc.tokens), offsets, word_ids, special, list(enc.type_ids), truncated)


def _joins_previous(ch: str) -> bool:
    """A character that belongs to the one before it: a combining mark, or a Hangul medial vowel
    or final consonant jamo (NFC composes ᄒ ᅡ ᆫ into 한)."""
    return unicodedata.category(ch)[0] == "M" or "\u1160" <= ch <= "\u11ff" or "\ud7b0" <= ch <= "\ud7ff"


def cover_marks(text: str, offsets: list[tuple[int, int]], special: list[bool]) -> list[tuple[int, int]]:
    """Give back to their tokens the characters that normalisation merged away.

    Accent stripping removes a decomposed acute (e + U+0301) and Indic vowel signs from what the
    model reads, and NFC folds typed jamo into one syllable; the tokenizers library then maps no
    token onto them, so the label would read "Cafe" for "Café". Such a character that no token
    covers joins the token that ends right before it (or, when none does, the one that starts
    right after it): labels show exactly the characters written.
    """
    covered = [False] * len(text)
    for (start, end), is_special in zip(offsets, special):
        if not is_special:
            covered[start:end] = [True] * (end - start)
    out = list(offsets)
    for k, ((start, end), is_special) in enumerate(zip(offsets, special)):
        if is_special or end <= start:
            continue
        while end < len(text) and not covered[end] and _joins_previous(text[end]):
            covered[end] = True
            end += 1
        while start > 0 and not covered[start - 1] and _joins_previous(text[start - 1]):
            covered[start - 1] = True
            start -= 1
        out[k] = (start, end)
    return out


def trim_spaces(text: str, span) -> tuple[int, int]:
    """A token's span without the spaces around it. Byte-level BPE (GPT-2, LLaMA 3, SmolLM) and
    SentencePiece pieces carry the space before a word ("Ġit" spans " it"): trimmed, labels show
    the word as written ("it"), as for BERT's pieces. A piece that is only spaces keeps its span."""
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else tuple(span)


def _words_from_offsets(offsets: list[tuple[int, int]], special: list[bool]) -> list[int | None]:
    """Fallback for tokenizers without a pre-tokenizer: a new word starts after any gap."""
    words: list[int | None] = []
    current, last_end = -1, None
    for (start, end), is_special in zip(offsets, special):
        if is_special:
            words.append(None)
            continue
        if last_end is None or start != last_end:
            current += 1
        words.append(current)
        last_end = end
    return words
