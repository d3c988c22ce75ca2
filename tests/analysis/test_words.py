"""Word-level aggregation (Clark et al. 2019): to a word = sum over pieces, from a word = mean."""

import json

import numpy as np
import pytest

from attnviz.analysis.words import is_word_level, to_words, word_groups
from attnviz.pipeline import run_attention

from builders import hand_result
from cli_runs import invoke


def test_aggregation_matches_hand_computed_example():
    # "abc d" tokenized as [CLS] ab ##c d [SEP]; the word "abc" is split into two pieces.
    W = [
        [0.1, 0.2, 0.3, 0.4, 0.0],
        [0.5, 0.1, 0.1, 0.1, 0.2],
        [0.3, 0.3, 0.1, 0.1, 0.2],
        [0.0, 0.25, 0.25, 0.5, 0.0],
        [0.2, 0.2, 0.2, 0.2, 0.2],
    ]
    result = hand_result(
        [[W]],
        ["[CLS]", "ab", "##c", "d", "[SEP]"],
        [(0, 0), (0, 2), (2, 3), (4, 5), (0, 0)],
        [None, 0, 0, 1, None],
        "abc d",
    )
    words = to_words(result)
    # Worked by hand: columns of "ab" and "##c" summed (0.2+0.3, 0.1+0.1, ...); the rows of
    # "ab" and "##c" averaged: ([0.5, 0.2, 0.1, 0.2] + [0.3, 0.4, 0.1, 0.2]) / 2.
    expected = [[0.1, 0.5, 0.4, 0.0], [0.4, 0.3, 0.1, 0.2], [0.0, 0.5, 0.5, 0.0], [0.2, 0.4, 0.2, 0.2]]
    np.testing.assert_allclose(words.weights[0, 0], expected, atol=1e-7)
    assert words.tokens == ["[CLS]", "abc", "d", "[SEP]"]
    assert words.labels == ["[CLS]", "abc", "d", "[SEP]"]
    assert words.offsets == [(0, 0), (0, 3), (4, 5), (0, 0)]
    assert words.word_ids == [None, 0, 1, None]
    assert words.special == [True, False, False, True]
    assert words.view == "attention" and words.units == "words" and is_word_level(words)
    assert any("Word level" in n for n in words.notes)
    # Idempotent, and the input is untouched.
    assert to_words(words) is words
    assert result.weights.shape == (1, 1, 5, 5)


def test_word_groups_keep_specials_alone_and_follow_word_ids():
    result = hand_result(
        np.full((1, 1, 6, 6), 1 / 6),
        ["[CLS]", "a", "##b", "##c", "[SEP]", "[SEP]"],
        [(0, 0), (0, 1), (1, 2), (2, 3), (0, 0), (0, 0)],
        [None, 0, 0, 0, None, None],
        "abc",
    )
    assert word_groups(result) == [[0], [1, 2, 3], [4], [5]]


def loop_words(result):
    """An independent, loop-by-loop aggregation over the word ids."""
    units = []
    for i, w in enumerate(result.word_ids):
        if w is not None and units and units[-1][0] == w:
            units[-1][1].append(i)
        else:
            units.append((w, [i]))
    L, H = result.weights.shape[:2]
    out = np.zeros((L, H, len(units), len(units)))
    for l in range(L):
        for h in range(H):
            for a, (_, rows) in enumerate(units):
                for b, (_, cols) in enumerate(units):
                    out[l, h, a, b] = sum(result.weights[l, h, i, j] for i in rows for j in cols) / len(rows)
    return out


@pytest.mark.parametrize(
    "text",
    [
        "The animal didn't cross the street because it was too tired.",
        "동물은 너무 피곤해서 길을 건너지 않았다. 그것은 지쳤다.",
    ],
)
@pytest.mark.parametrize("view", ["attention", "rollout", "norm"])
def test_real_model_words_match_loop_and_rows_sum_to_one(small_model, text, view):
    result = run_attention(small_model, text, view=view)
    words = to_words(result)
    np.testing.assert_allclose(words.weights, loop_words(result), rtol=1e-5, atol=1e-6)
    assert words.view == view and words.units == "words"
    if view != "norm":
        np.testing.assert_allclose(words.weights.sum(-1), 1.0, atol=1e-5)
    else:  # norms are not probabilities; the row totals are kept by the column sums, averaged by rows
        assert (words.weights >= 0).all()
    # The words are what the user wrote, in order, from the offsets.
    real = [label for label, s in zip(words.labels, words.special) if not s]
    assert "".join(real) == "".join(text.split())


def test_korean_particles_stay_with_their_word(small_model):
    words = to_words(run_attention(small_model, "동물은 너무 피곤해서 길을 건너지 않았다."))
    assert words.labels == ["[CLS]", "동물은", "너무", "피곤해서", "길을", "건너지", "않았다", ".", "[SEP]"]


@pytest.mark.slow
def test_show_words_json_and_table():
    text = "The animal didn't cross the street because it was too tired."
    result = invoke("show", text, "--words", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["view"] == "attention" and data["units"] == "words"
    assert "didn't" in data["tokens"] and "##'t" not in data["tokens"]
    weights = np.array(data["weights"])
    assert weights.shape[-1] == len(data["tokens"]) == 14
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    table = invoke("show", text, "--words", "--layer", "0", "--head", "0")
    assert table.exit_code == 0, table.output
    assert "didn't" in table.stdout and "Word level" in table.stdout


@pytest.mark.slow
def test_show_words_image_has_word_columns(tmp_path):
    from PIL import Image

    text = "The animal didn't cross the street because it was too tired."
    words, tokens = tmp_path / "words.png", tmp_path / "tokens.png"
    for path, extra in ((words, ["--words"]), (tokens, [])):
        out = invoke("show", text, "--layer", "0", "--head", "0", "--png", str(path), *extra)
        assert out.exit_code == 0, out.output
    # One fewer column and row ("didn" + "'t" -> "didn't"): the images differ.
    assert Image.open(words).tobytes() != Image.open(tokens).tobytes()
