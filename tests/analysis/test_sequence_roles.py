"""Induction, duplicate-token and previous-token heads on repeated random tokens, against
attention constructed by hand."""

from dataclasses import replace

import numpy as np
import pytest

from attnviz.analysis.sequence_roles import SEQUENCE_EXCESS, repeat_positions, sequence_scores
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.tokenize import TextTokenizer

from builders import hand_result

N = 4
WORDS = ["apple", "river", "stone", "cloud"]


def repeated(causal: bool):
    """[CLS] w1..w4 w1..w4 [SEP]; head 0 induction, head 1 duplicate-token, head 2 previous-token,
    head 3 uniform over what the row may see."""
    tokens = ["[CLS]", *WORDS, *WORDS, "[SEP]"]
    T = len(tokens)
    text = " ".join(WORDS + WORDS)
    offsets, start = [(0, 0)], 0
    for word in WORDS + WORDS:
        offsets.append((start, start + len(word)))
        start += len(word) + 1
    offsets.append((0, 0))
    word_ids = [None, *range(2 * N), None]
    visible = np.tril(np.ones((T, T))) if causal else np.ones((T, T))
    uniform = visible / visible.sum(-1, keepdims=True)
    w = np.stack([uniform] * 4)  # [4, T, T]
    for j in range(N):
        q = 1 + N + j  # token index of the second copy's j-th word
        for h, key in ((0, 1 + j + 1), (1, 1 + j), (2, q - 1)):
            w[h, q] = 0.0
            w[h, q, key] = 1.0
    result = hand_result(w[None], tokens, offsets, word_ids, text)
    if causal:
        config = replace(result.model.config, causal=True)
        result = replace(result, model=replace(result.model, config=config))
    return result


@pytest.mark.parametrize("causal", [False, True])
def test_constructed_heads_get_their_roles(causal):
    scores = sequence_scores([repeated(causal), repeated(causal)], N)
    assert scores.queries == 2 * N and scores.sequences == 2
    for head, name in ((0, "induction"), (1, "duplicate"), (2, "prev")):
        assert scores.scores[name][0, head] == pytest.approx(1.0)
        assert scores.excess[name][0, head] == pytest.approx(1.0)
    # The uniform head scores exactly what uniform attention gives: no excess, no role.
    T = 2 * N + 2
    expected = np.mean([1 / (1 + N + j + 1) for j in range(N)]) if causal else 1 / T
    for name in ("induction", "duplicate", "prev"):
        assert scores.scores[name][0, 3] == pytest.approx(expected)
        assert scores.excess[name][0, 3] == pytest.approx(0.0, abs=1e-6)
        assert scores.uniform[name] == pytest.approx(expected)
    assert scores.roles() == {(0, 0): ["induction"], (0, 1): ["duplicate token"], (0, 2): ["previous token"]}
    assert [h for _, h, _ in scores.heads_with("induction")] == [0]
    data = scores.to_dict()
    assert data["threshold"] == SEQUENCE_EXCESS and data["roles"]["0,0"] == ["induction"]


def test_halves_must_repeat():
    result = repeated(True)
    broken = replace(result, tokens=result.tokens[:-2] + ["other", "[SEP]"])
    with pytest.raises(AttnvizError, match="not the same tokens"):
        repeat_positions(broken, N)
    with pytest.raises(AttnvizError, match="expected 10 repeated tokens"):
        repeat_positions(result, 5)


def test_repeated_random_words_are_one_token_each_and_deterministic():
    tok = TextTokenizer.default()
    text = tok.repeated_random_words(12, seed=3)
    assert text == tok.repeated_random_words(12, seed=3) != tok.repeated_random_words(12, seed=4)
    words = text.split()
    assert len(words) == 24 and words[:12] == words[12:] and len(set(words[:12])) == 12
    enc = tok.encode(text)
    real = [t for t, s in zip(enc.tokens, enc.special) if not s]
    assert len(real) == 24 and real[:12] == real[12:]


@pytest.mark.slow
def test_random_causal_model_has_no_induction_head():
    """An untrained causal model has no mechanism to copy from the earlier occurrence: honest zero."""
    from attnviz.checkpoints import random_model
    from attnviz.pipeline import run_attention

    model = random_model(EncoderConfig(num_layers=2, num_heads=4, d_model=64, causal=True), seed=0)
    texts = [model.tokenizer.repeated_random_words(10, seed) for seed in range(4)]
    scores = sequence_scores([run_attention(model, t) for t in texts], 10)
    assert scores.heads_with("induction") == []
