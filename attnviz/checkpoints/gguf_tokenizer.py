"""The tokenizer a GGUF file describes, rebuilt with the `tokenizers` library.

A GGUF file has no tokenizer.json: llama.cpp keeps the vocabulary (`tokenizer.ggml.tokens`), the
BPE merges, token types and special ids as metadata, and names the pre-tokenizer its merges were
learned with (`tokenizer.ggml.pre`). attnviz reads byte-level BPE vocabularies
(`tokenizer.ggml.model` "gpt2": GPT-2, SmolLM, LLaMA 3, Qwen2...) and splits text as llama.cpp
does for that pre-tokenizer type. Offsets are trimmed to the word (no leading space), so views
show the text as written, never the byte-level spelling ("Ġit").
"""

from __future__ import annotations

from functools import lru_cache

from ..errors import AttnvizError
from ..text import shown
from ..tokenize import TextTokenizer

# llama.cpp's split expressions (llama-vocab.cpp), per tokenizer.ggml.pre. The GPT-2 expression is
# the one tokenizers' ByteLevel pre-tokenizer applies itself (use_regex=True).
_LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# pre type -> (digits one by one first, split expression or None for GPT-2's)
PRE_TOKENIZERS = {
    "default": (False, None),
    "gpt2": (False, None),
    "gpt-2": (False, None),
    "smollm": (True, None),  # SmolLM's tokenizer.json: Digits(individual) then ByteLevel
    "llama-bpe": (False, _LLAMA3),
    "llama3": (False, _LLAMA3),
    "llama-v3": (False, _LLAMA3),
    "smaug-bpe": (False, _LLAMA3),
    "qwen2": (False, _QWEN2),
}
CONTROL, USER_DEFINED = 3, 4  # tokenizer.ggml.token_type values (llama.cpp's token attributes)


def gguf_tokenizer(fields: dict, label: str) -> TextTokenizer:
    """A TextTokenizer from a GGUF file's metadata `fields`; AttnvizError naming what is unsupported."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    model = fields.get("tokenizer.ggml.model")
    if model is None:
        raise AttnvizError(
            f"{label}: no tokenizer in the file (no tokenizer.ggml.model); "
            "pass --tokenizer PATH to the model's tokenizer.json"
        )
    if model == "llama":  # SentencePiece BPE (Gemma, Phi-3, LLaMA 2)
        from .gguf_sentencepiece import sentencepiece_tokenizer

        return sentencepiece_tokenizer(fields, label)
    if not isinstance(model, str) or model != "gpt2":
        raise AttnvizError(
            f"{label}: tokenizer.ggml.model {shown(model)} is not supported; attnviz rebuilds "
            "byte-level BPE ('gpt2') and SentencePiece BPE ('llama') vocabularies; "
            "pass --tokenizer PATH to a tokenizer.json"
        )
    pre = fields.get("tokenizer.ggml.pre", "default")
    if not isinstance(pre, str) or pre not in PRE_TOKENIZERS:  # an array is no name (nor hashable)
        raise AttnvizError(
            f"{label}: tokenizer.ggml.pre {shown(pre)} is not supported; supported: "
            f"{', '.join(sorted(PRE_TOKENIZERS))}; or pass --tokenizer PATH to a tokenizer.json"
        )
    tokens = _string_list(fields, "tokenizer.ggml.tokens", label)
    merges = _string_list(fields, "tokenizer.ggml.merges", label)
    types = _token_types(fields.get("tokenizer.ggml.token_type"), len(tokens), label)
    alphabet = _byte_alphabet()
    # Tokens are stored in the byte-level spelling ("Ġit"); one outside that alphabet is spelled
    # from its UTF-8 bytes, as transformers' GGUF loader does.
    vocab = {
        t if set(t) <= alphabet.keys() else "".join(alphabet_of(b) for b in t.encode("utf-8")): i
        for i, t in enumerate(tokens)
    }
    pairs = []
    for merge in merges:
        left, sep, right = merge.partition(" ")
        if not sep or not left or not right or " " in right:
            raise AttnvizError(f"{label}: corrupt tokenizer.ggml.merges entry {merge!r} (expected 'left right')")
        pairs.append((left, right))
    try:
        tok = Tokenizer(BPE(vocab=vocab, merges=pairs, fuse_unk=False))
    except Exception as exc:  # a merge naming a token outside the vocabulary
        raise AttnvizError(f"{label}: corrupt tokenizer in the metadata ({str(exc).splitlines()[0][:160]})") from None
    digits, split = PRE_TOKENIZERS[pre]
    steps = [pre_tokenizers.Digits(individual_digits=True)] if digits else []
    if split is None:
        steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    else:
        steps += [
            pre_tokenizers.Split(Regex(split), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    tok.pre_tokenizer = steps[0] if len(steps) == 1 else pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    # Control tokens stay whole and are marked special; user-defined ones stay whole too.
    tok.add_special_tokens(
        [
            AddedToken(t, normalized=False, special=True)
            for t, kind in zip(tokens, types)
            if kind == CONTROL and set(t) <= alphabet.keys()
        ]
    )
    tok.add_tokens(
        [
            AddedToken(t, normalized=False, special=False)
            for t, kind in zip(tokens, types)
            if kind == USER_DEFINED and t in vocab
        ]
    )
    post = [processors.ByteLevel(trim_offsets=True)]  # offsets cover the word, not its leading space
    add_bos = fields.get("tokenizer.ggml.add_bos_token", False)
    if not isinstance(add_bos, bool):
        raise AttnvizError(
            f"{label}: metadata tokenizer.ggml.add_bos_token must be true or false, got {shown(add_bos)}"
        )
    if add_bos:
        bos = fields.get("tokenizer.ggml.bos_token_id")
        if isinstance(bos, bool) or not isinstance(bos, int) or not 0 <= bos < len(tokens):
            raise AttnvizError(f"{label}: tokenizer.ggml.add_bos_token is set but bos_token_id is {bos!r}")
        post.append(processors.TemplateProcessing(single=f"{tokens[bos]} $A", special_tokens=[(tokens[bos], bos)]))
    tok.post_processor = post[0] if len(post) == 1 else processors.Sequence(post)
    return TextTokenizer(tok, f"{label} (GGUF metadata, pre-tokenizer {pre})")


def _token_types(value, count: int, label: str) -> list[int]:
    """tokenizer.ggml.token_type: one integer per token, llama.cpp's 0-6 (undefined, normal,
    unknown, control, user-defined, unused, byte); absent: none special."""
    import numpy as np

    if value is None:
        return []
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu" or value.ndim != 1:
        raise AttnvizError(
            f"{label}: corrupt metadata tokenizer.ggml.token_type (expected integers, got {shown(value)})"
        )
    if len(value) != count:
        raise AttnvizError(
            f"{label}: corrupt metadata tokenizer.ggml.token_type ({len(value)} values for {count} tokens)"
        )
    if len(value) and not (0 <= int(value.min()) and int(value.max()) <= 6):
        bad = int(value[(value < 0) | (value > 6)][0])
        raise AttnvizError(f"{label}: corrupt metadata tokenizer.ggml.token_type (a value {bad}; llama.cpp's are 0-6)")
    return value.tolist()


def _string_list(fields: dict, key: str, label: str) -> list[str]:
    value = fields.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
        raise AttnvizError(f"{label}: missing or corrupt metadata {key!r} (a list of strings)")
    return value


@lru_cache(maxsize=1)
def _byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: character -> byte (printable bytes stand for themselves,
    the others are shifted past 255 so that every byte has a visible character)."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


def alphabet_of(byte: int) -> str:
    """The byte-level character that spells `byte`."""
    return _spelling()[byte]


@lru_cache(maxsize=1)
def _spelling() -> dict[int, str]:
    return {b: c for c, b in _byte_alphabet().items()}
