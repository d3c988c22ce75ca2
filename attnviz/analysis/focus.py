"""Questions asked of an AttentionResult: which token is the focus, where does it attend.

Pure NumPy on the result object; no torch, no tokenizer.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from ..result import AttentionResult
from ..selection import ascii_index
from ..errors import AttnvizError

ENGLISH_PRONOUNS = frozenset("it its he him his she her hers they them their theirs".split())
# Korean third-person and demonstrative pronouns. In text they carry a particle ("그것은", "그가")
# or stand alone ("그것"), the plural 들 may come first ("그것들을").
KOREAN_PRONOUNS = ("그녀", "그것", "그들", "이것", "저것", "그분", "이분", "저분", "그이", "걔", "얘", "쟤")
# Bare 그/이/저 before a noun are determiners ("그 동물은": "that animal"). Only 그 is also a
# pronoun ("he"), and then it always carries a particle ("그가", "그는", "그를"); 이/저 with a
# particle are other words (이가 "tooth", 저는 "I, humbly").
KOREAN_HE = "그"
# Spoken contractions of 그것/이것/저것 with a particle: 그게 = 그것이, 그건 = 그것은, 그걸 = 그것을.
KOREAN_CONTRACTIONS = frozenset(f"{d}{p}" for d in "그이저" for p in "게건걸")
KOREAN_PARTICLES = frozenset(
    "은 는 이 가 을 를 의 에게 에게서 도 와 과 랑 이랑 만 에 에서 로 으로 한테 께서".split()
) | {""}
# 그 + particle spellings that are words of their own: 그만 ("enough", "stop").
_KOREAN_NOT_PRONOUNS = frozenset({"그만"})


def is_korean_pronoun(word: str) -> bool:
    """True for a Korean pronoun word, with or without its particle: 그것, 그것이, 그녀가,
    그들을, 그것들은, 그가, 그게. False for the determiner 그/이/저 before a noun ("그 동물은")."""
    word = fold(word.strip())
    if word in KOREAN_CONTRACTIONS:
        return True
    if word in _KOREAN_NOT_PRONOUNS:
        return False
    for stem in KOREAN_PRONOUNS:
        if word.startswith(stem):
            rest = word[len(stem) :].removeprefix("들")
            if rest in KOREAN_PARTICLES:
                return True
    rest = word.removeprefix(KOREAN_HE)
    return rest != word and rest != "" and rest in KOREAN_PARTICLES


def is_pronoun(word: str) -> bool:
    """A common English pronoun ("it", "They") or a Korean one (see is_korean_pronoun)."""
    return fold(word.strip()) in ENGLISH_PRONOUNS or is_korean_pronoun(word)


@dataclass(frozen=True)
class Focus:
    index: int  # token index in the result
    label: str
    note: str | None = None  # e.g. "'it' occurs 2 times; using the first (token 9)"


@dataclass(frozen=True)
class HeadTargets:
    layer: int
    head: int
    targets: list[tuple[int, float]]  # (key token index, weight), strongest first


def fold(text: str) -> str:
    """`text` as words are compared: NFC-normalised and case-folded ("It" == "it", "ＩＴ" != "it")."""
    return unicodedata.normalize("NFC", text).casefold()


def word_spans(result: AttentionResult) -> list[tuple[str, list[int]]]:
    """Each word's original text and its token indices, in order (special tokens excluded)."""
    groups: dict[int, list[int]] = {}
    for i, w in enumerate(result.word_ids):
        if w is not None:
            groups.setdefault(w, []).append(i)
    spans = []
    for indices in groups.values():
        start, end = result.offsets[indices[0]][0], result.offsets[indices[-1]][1]
        spans.append((result.text[start:end], indices))
    return spans


def resolve_focus(result: AttentionResult, query: str) -> Focus:
    """A token index ("9"), or a word matched case-insensitively against tokens, then words.

    A word split into several tokens is represented by its first token.
    """
    labels = result.labels
    text = query.strip()
    index = ascii_index(text)
    if index is not None:
        if index >= len(labels):
            raise AttnvizError(
                f"focus token {text[:40]} is out of range: the sentence has {len(labels)} tokens (0-{len(labels) - 1})"
            )
        return Focus(index, labels[index])
    wanted = fold(text.strip())
    if not wanted:
        raise AttnvizError("the focus word is empty; give a word of the sentence or a token index")
    matches = [i for i, label in enumerate(labels) if not result.special[i] and fold(label.strip()) == wanted]
    if not matches:
        matches = [indices[0] for word, indices in word_spans(result) if fold(word.strip()) == wanted]
    if not matches:
        raise AttnvizError(
            f"focus word {query!r} is not in the sentence; give one of its words or a token index 0-{len(labels) - 1}"
        )
    note = None
    if len(matches) > 1:
        note = (
            f"{query!r} occurs {len(matches)} times; using the first (token {matches[0]}); "
            f"pass a token index ({', '.join(map(str, matches))}) to pick another"
        )
    return Focus(matches[0], labels[matches[0]], note)


def find_pronoun(result: AttentionResult) -> Focus | None:
    """The first common English or Korean pronoun of the sentence, if any.

    In a causal model a token sees only the tokens before it, so a pronoun that opens the text
    (nothing before it to refer to) is passed over when a later one exists.
    """
    found = [indices for word, indices in word_spans(result) if is_pronoun(word)]
    if not found:
        return None
    if result.causal:
        first_word = min((i for i, s in enumerate(result.special) if not s), default=0)
        found = [indices for indices in found if indices[0] > first_word] or found
    return Focus(found[0][0], result.labels[found[0][0]])


def ranked_keys(result: AttentionResult, index: int, layer: int | None = None) -> np.ndarray:
    """[Tk] bool (Tk = T, or the source's tokens for cross-attention): the keys a ranking of query
    `index` in model layer `layer` may name. Not the masked ones (a causal model's later tokens, a
    local layer's keys outside its window, which the query cannot see) nor the excluded ones
    (sinks, when the result was made `without_sinks`). layer None: the look-ahead mask only."""
    keys = ~result.masked_rows(layer, index, index + 1)[0]  # row `index` of ~result.masked(layer)
    keys[list(result.excluded)] = False
    return keys


def top_targets(result: AttentionResult, index: int, k: int = 3) -> list[HeadTargets]:
    """Per layer and head, the `k` keys that token `index` attends to most (ties: earlier token),
    among its ranked keys (fewer than `k` when fewer are left); the weights are the real ones."""
    layers, heads = result.layers, result.heads
    if result.focus_rows is not None and result.focus_index == index:
        # A long text: the maps of the heads shown only, the focus row of every head.
        rows, layers, heads = result.focus_rows, result.focus_layers, result.focus_heads  # [L, H, T]
    else:
        rows = result.weights[:, :, index, :]  # [L, H, T]
    out = []
    for li, layer in enumerate(layers):
        keys = np.flatnonzero(ranked_keys(result, index, layer))  # [K]: a local layer sees its window only
        order = keys[np.argsort(-rows[li][:, keys], axis=-1, kind="stable")[:, :k]]  # [H, min(k, K)]
        for hi, head in enumerate(heads):
            out.append(HeadTargets(layer, head, [(int(j), float(rows[li, hi, j])) for j in order[hi]]))
    return out
