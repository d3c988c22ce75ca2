"""SentencePiece BPE vocabularies of GGUF files (`tokenizer.ggml.model` "llama": Gemma 3, Phi-3,
LLaMA 2), rebuilt with the `tokenizers` library as transformers' GGUF loader builds them, so the
token ids are the same (tests/models compare them on every sample text).

A GGUF file stores the pieces ("▁the"), their scores and types, but no merges: BPE merges are
recovered from the vocabulary (every split of a piece into two pieces that exist), ranked by
the piece's score, or for Gemma by the piece's position in the file (Gemma's scores do not
follow its merge order). Spaces become "▁" (Gemma: a normalizer; LLaMA: Metaspace with a space
prepended to the text; Phi-3: a normalizer that also prepends one), unknown characters fall back
to their UTF-8 bytes (<0x41> pieces), control tokens are kept whole, and BOS is added when the
file says so.
"""

from __future__ import annotations

from ..errors import AttnvizError
from ..tokenize import TextTokenizer

CONTROL, USER_DEFINED = 3, 4
GEMMA = ("gemma", "gemma2", "gemma3")


def sentencepiece_tokenizer(fields: dict, label: str) -> TextTokenizer:
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    arch = fields.get("general.architecture")
    tokens = fields.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise AttnvizError(f"{label}: missing or corrupt metadata 'tokenizer.ggml.tokens' (a list of strings)")
    types = fields.get("tokenizer.ggml.token_type")
    types = [] if types is None else [int(t) for t in types]
    gemma = arch in GEMMA
    if gemma:
        # Runs of spaces are stored as real spaces; the normalizer turns the text's spaces into "▁".
        pieces = ["\u2581" * len(t) if " " in t and not t.strip() else t for t in tokens]
        rank = {t: -i for i, t in enumerate(pieces)}  # earlier in the file merges first
    else:
        scores = fields.get("tokenizer.ggml.scores")
        if scores is None or len(scores) != len(tokens):
            raise AttnvizError(f"{label}: missing or corrupt metadata 'tokenizer.ggml.scores'")
        pieces = list(tokens)
        rank = {t: float(s) for t, s in zip(pieces, scores)}
    vocab = {t: i for i, t in enumerate(pieces)}
    unk = fields.get("tokenizer.ggml.unknown_token_id")
    unk_token = pieces[unk] if isinstance(unk, int) and 0 <= unk < len(pieces) else "<unk>"
    try:
        tok = Tokenizer(
            BPE(
                vocab=vocab,
                merges=_cached_merges(pieces, vocab, rank),
                fuse_unk=True,
                unk_token=unk_token,
                byte_fallback=True,
            )
        )
    except Exception as exc:
        raise AttnvizError(f"{label}: corrupt tokenizer in the metadata ({str(exc).splitlines()[0][:160]})") from None
    steps = [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    if gemma:
        # No pre-tokenizer (transformers' Split(" ") finds no space once they are "▁"), so words
        # come from the offsets (tokenize.py): a piece starting after a gap starts a word.
        tok.normalizer = normalizers.Replace(" ", "\u2581")
    elif arch == "phi3":
        tok.normalizer = normalizers.Sequence(
            [normalizers.Prepend(prepend="\u2581"), normalizers.Replace(pattern=" ", content="\u2581")]
        )
        steps.append(decoders.Strip(content=" ", left=1))
    else:
        prepend = "first" if fields.get("tokenizer.ggml.add_space_prefix", True) else "never"
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme=prepend, split=False)
        steps.append(decoders.Strip(content=" ", left=1))
    tok.decoder = decoders.Sequence(steps)
    tok.add_special_tokens(
        [AddedToken(t, normalized=False, special=True) for t, kind in zip(tokens, types) if kind == CONTROL]
    )
    tok.add_tokens(
        [
            AddedToken(t, normalized=False, special=False)
            for t, kind in zip(tokens, types)
            if kind == USER_DEFINED and t in vocab
        ]
    )
    if fields.get("tokenizer.ggml.add_bos_token", True):  # llama.cpp adds BOS unless told otherwise
        bos = fields.get("tokenizer.ggml.bos_token_id")
        if not isinstance(bos, int) or not 0 <= bos < len(tokens):
            raise AttnvizError(f"{label}: tokenizer.ggml.add_bos_token is set but bos_token_id is {bos!r}")
        tok.post_processor = processors.TemplateProcessing(
            single=f"{pieces[bos]}:0 $A:0", special_tokens=[(pieces[bos], bos)]
        )
    return TextTokenizer(tok, f"{label} (GGUF metadata, SentencePiece BPE)")


def _cached_merges(pieces: list[str], vocab: dict[str, int], rank: dict[str, float]) -> list[tuple[str, str]]:
    """`_merges`, remembered in attnviz's cache folder under a digest of the vocabulary and its
    ranks: recovering Gemma's 515k merges takes 1-2 s, reading them back 0.1 s. The memo is
    written with `marshal` (plain lists and strings; loading it runs no code) and checked on
    reading: anything unexpected is recomputed."""
    import hashlib
    import marshal

    from .named import cache_dir

    digest = hashlib.sha256("\x00".join(pieces).encode("utf-8", "surrogatepass"))
    digest.update(repr(sorted(set(rank.values()))[:16]).encode())  # Gemma's positions or the scores
    digest.update(str(len(set(rank.values())) == len(rank)).encode())
    memo = cache_dir() / "gguf-merges" / (digest.hexdigest()[:32] + ".marshal")
    try:
        merges = marshal.loads(memo.read_bytes())
        if isinstance(merges, list) and all(type(m) is tuple and len(m) == 2 for m in merges[:1000]):
            return merges
    except (OSError, EOFError, ValueError, TypeError):
        pass
    merges = _merges(vocab, rank)
    try:
        from ..files import atomic_write

        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(memo, marshal.dumps(merges), overwrite=True)
    except (OSError, AttnvizError):
        pass  # only a memo
    return merges


def _merges(vocab: dict[str, int], rank: dict[str, float]) -> list[tuple[str, str]]:
    """transformers' generate_merges: every (left, right) split of a piece into two pieces of the
    vocabulary, best-ranked piece first (ties: longer left, then longer right, then file order)."""
    if len(set(rank.values())) == len(rank):
        # Every piece ranked apart (Gemma: by position): the order is piece by piece, best first,
        # and within a piece by decreasing left length; no sort of the 500k merges is needed.
        out = []
        for piece in sorted(rank, key=rank.__getitem__, reverse=True):
            for i in range(len(piece) - 1, 0, -1):
                left, right = piece[:i], piece[i:]
                if left in vocab and right in vocab:
                    out.append((left, right))
        return out
    merges = []
    for piece, score in rank.items():
        local = []
        for i in range(1, len(piece)):
            left, right = piece[:i], piece[i:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(m[0], m[1]) for m in merges]
