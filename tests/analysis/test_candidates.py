"""Candidates: matching words of the sentence, and the weight from the focus to each, per head."""

import json

import numpy as np
import pytest

from attnviz.analysis.candidates import (
    NO_WINNER,
    find_span,
    focus_span,
    occurrences,
    parse_candidates,
    pinned_span,
    resolve_candidates,
    score_candidates,
)
from attnviz.analysis.words import to_words
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention

from builders import hand_result
from cli_runs import assert_one_error_line, invoke

SENTENCE = "The animal didn't cross the street because it was too tired."


def cat_dog_it():
    # "cat dog it" as [CLS] ca ##t dog it [SEP]: "cat" is split in two pieces.
    T = 6
    w = np.full((2, 2, T, T), 1 / T)
    w[0, 0, 4] = [0.1, 0.2, 0.3, 0.25, 0.05, 0.1]  # cat 0.2+0.3 = 0.5, dog 0.25 -> cat
    w[0, 1, 4] = [0.1, 0.1, 0.1, 0.4, 0.2, 0.1]  # cat 0.2, dog 0.4 -> dog
    w[1, 0, 4] = [0.2, 0.1, 0.1, 0.2, 0.2, 0.2]  # cat 0.2, dog 0.2 -> tie
    w[1, 1, 4] = [0.0, 0.6, 0.0, 0.3, 0.1, 0.0]  # cat 0.6, dog 0.3 -> cat
    w[1, 1, 1] = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0]  # rows of "ca" and "##t" (for focus "cat")
    w[1, 1, 2] = [0.0, 0.0, 0.0, 0.5, 0.5, 0.0]
    return hand_result(
        w,
        ["[CLS]", "ca", "##t", "dog", "it", "[SEP]"],
        [(0, 0), (0, 2), (2, 3), (4, 7), (8, 10), (0, 0)],
        [None, 0, 0, 1, 2, None],
        "cat dog it",
    )


def test_scores_winners_and_counts_match_hand_computation():
    result = cat_dog_it()
    focus = focus_span(result, 4)
    cands = resolve_candidates(result, ["cat", "dog"], focus)
    assert [c.units for c in cands] == [[1, 2], [3]]
    scores = score_candidates(result, focus, cands)
    np.testing.assert_allclose(scores.weights, [[[0.5, 0.25], [0.2, 0.4]], [[0.2, 0.2], [0.6, 0.3]]], atol=1e-6)
    assert scores.winners.tolist() == [[0, 1], [NO_WINNER, 0]]
    assert scores.counts() == [2, 1] and scores.ties() == 1
    data = scores.to_dict()
    assert data["wins"] == [2, 1] and data["heads"][2]["winner"] is None
    # The same numbers on the word-level result, where each span is one unit.
    words = to_words(result)
    wf = focus_span(words, 3)
    wscores = score_candidates(words, wf, resolve_candidates(words, ["cat", "dog"], wf))
    np.testing.assert_allclose(wscores.weights, scores.weights, atol=1e-6)


def test_split_focus_word_is_the_mean_over_its_pieces():
    result = cat_dog_it()
    focus = find_span(result, "cat", "focus")
    assert focus.units == [1, 2]
    scores = score_candidates(result, focus, resolve_candidates(result, ["dog", "it"], focus))
    # Layer 1 head 1: rows of "ca" [.., dog 1.0, it 0] and "##t" [.., dog 0.5, it 0.5], averaged.
    np.testing.assert_allclose(scores.weights[1, 1], [0.75, 0.25], atol=1e-6)


def test_whole_word_case_insensitive_matching(small_model):
    result = run_attention(small_model, "The Animal saw animals and the animal near streets because it was tired.")
    focus = find_span(result, "it", "focus")
    # "animal" is not "animals"; "ANIMAL" matches "Animal"; the occurrence nearest before "it" wins.
    span = find_span(result, "ANIMAL", before=focus.start)
    assert result.text[span.start : span.end] == "animal" and span.start == result.text.index("the animal") + 4
    assert "occurs 2 times" in span.note
    second = result.text.index("the animal") + 4
    assert occurrences(result.text, "animal") == [(4, 10), (second, second + 6)]
    with pytest.raises(AttnvizError, match="'street' is not a word of the sentence"):
        find_span(result, "street", before=focus.start)
    with pytest.raises(AttnvizError, match="not a word"):
        find_span(result, "ani")


def test_multi_word_candidate_uses_its_last_word(small_model):
    result = run_attention(small_model, "The trophy doesn't fit into the brown suitcase because it is too large.")
    focus = find_span(result, "it", "focus")
    spans = resolve_candidates(result, ["the trophy", "the brown suitcase"], focus)
    assert [s.label for s in spans] == ["trophy", "suitcase"]
    assert "using its last word 'suitcase' (the head noun)" in spans[1].note


def test_occurrence_after_the_focus_falls_back_to_the_first(small_model):
    result = run_attention(small_model, "It was there before the dog and the dog came back.")
    focus = find_span(result, "it", "focus")
    span = find_span(result, "dog", before=focus.start)
    assert span.start == result.text.index("dog")


def test_korean_candidate_matches_with_particle(small_model):
    text = "트로피가 가방에 들어가지 않는다. 그것이 너무 크기 때문이다."
    result = run_attention(small_model, text)
    focus = find_span(result, "그것", "focus")
    spans = resolve_candidates(result, ["트로피", "가방"], focus)
    assert [s.label for s in spans] == ["트로피가", "가방에"]
    assert [result.word_ids[i] for i in spans[0].units] == [0] * len(spans[0].units)
    with pytest.raises(AttnvizError, match="not a word"):
        find_span(result, "트로")


def test_pinned_span_covers_every_token_inside(small_model):
    text = "The city councilmen refused the demonstrators a permit."
    result = run_attention(small_model, text)
    span = pinned_span(result, "city councilmen", 4, 19)
    covered = "".join(result.text[result.offsets[i][0] : result.offsets[i][1]] for i in span.units)
    assert covered == "citycouncilmen"
    with pytest.raises(AttnvizError, match="not 'mayor'"):
        pinned_span(result, "mayor", 4, 9)
    with pytest.raises(AttnvizError, match="outside the text"):
        pinned_span(result, "x", 50, 90)


def test_candidate_errors():
    with pytest.raises(AttnvizError, match="at least two"):
        parse_candidates("animal")
    with pytest.raises(AttnvizError, match="at least two"):
        parse_candidates("animal,,street")
    result = cat_dog_it()
    focus = focus_span(result, 4)
    with pytest.raises(AttnvizError, match="same word"):
        resolve_candidates(result, ["dog", "DOG"], focus)
    with pytest.raises(AttnvizError, match="focus word itself"):
        resolve_candidates(result, ["dog", "it"], focus)


@pytest.mark.slow
def test_show_candidates_table_and_json():
    # Like the focus summary, the candidate table covers every head unless --layer/--head narrow it.
    out = invoke("show", SENTENCE, "--focus", "it", "--candidates", "The animal,street")
    assert out.exit_code == 0, out.output
    assert "using its last word 'animal'" in out.stdout
    assert "over 8 heads:" in out.stdout and "'animal' wins" in out.stdout and "'street' wins" in out.stdout
    js = invoke("show", SENTENCE, "--focus", "it", "--candidates", "animal,street", "--words", "--format", "json")
    assert js.exit_code == 0, js.output
    data = json.loads(js.stdout)
    labels = data["labels"]
    weights = np.array(data["weights"])
    i, a, s = labels.index("it"), labels.index("animal"), labels.index("street")
    got = np.array([h["weights"] for h in data["candidates"]["heads"]]).reshape(2, 4, 2)
    np.testing.assert_allclose(got[..., 0], weights[:, :, i, a], atol=1e-6)
    np.testing.assert_allclose(got[..., 1], weights[:, :, i, s], atol=1e-6)
    expected_wins = [int((got[..., 0] > got[..., 1]).sum()), int((got[..., 1] > got[..., 0]).sum())]
    assert data["candidates"]["wins"] == expected_wins


@pytest.mark.slow
def test_show_missing_candidate_is_a_clean_error():
    out = invoke("show", SENTENCE, "--focus", "it", "--candidates", "animal,zebra")
    assert_one_error_line(out, "'zebra' is not a word of the sentence")
