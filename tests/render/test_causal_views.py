"""Causal (decoder) results in the terminal views and the analysis, and attention sinks left out of
rankings and colour scales."""

import json
import re

import numpy as np
import pytest
from rich.console import Console

from attnviz.analysis.candidates import focus_span, resolve_candidates, score_candidates
from attnviz.analysis.focus import find_pronoun, ranked_keys, resolve_focus, top_targets
from attnviz.analysis.words import to_words
from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention
from attnviz.render.terminal import MASKED, render_focus, render_header, render_heads

from builders import hand_result
from cli_runs import assert_one_error_line, invoke

SENTENCE = "It rained, so the dog stayed in because it was cold."


@pytest.fixture(scope="module")
def causal_model(causal_random):
    """A LLaMA-shaped random decoder, 2 layers x 2 heads x 16, one KV head."""
    return causal_random(seed=3, num_layers=2, num_heads=2, d_model=16, d_ff=32)


@pytest.fixture(scope="module")
def causal_dir(causal_model, saved_model):
    return saved_model(causal_model)


@pytest.fixture(scope="module")
def causal(causal_model):
    return run_attention(causal_model, SENTENCE)


def draw(render, *args, width=200) -> str:
    console = Console(width=width, record=True, color_system=None, highlight=False)
    render(console, *args)
    return console.export_text()


def table_rows(text: str, T: int) -> list[list[str]]:
    """The cells of each query row of the first head table (normal layout: label then T cells)."""
    rows = []
    for line in text.splitlines():
        match = re.match(r"\s*(\d+) \S+\s+(.*)$", line)
        if match and len(rows) < T and int(match[1]) == len(rows):
            cells = match[2].split()
            if len(cells) == T:
                rows.append(cells)
    assert len(rows) == T, text
    return rows


# --- the result and the terminal tables ------------------------------------------------------------


def test_the_encoder_masks_the_future_and_the_result_says_which_cells(causal):
    T = len(causal.tokens)
    assert causal.causal
    assert np.array_equal(causal.masked(), np.triu(np.ones((T, T), bool), k=1))
    assert np.all(causal.weights[..., causal.masked()] == 0)
    np.testing.assert_allclose(causal.weights.sum(-1), 1.0, atol=1e-5)
    assert (
        not run_attention(random_model(EncoderConfig(num_layers=1, num_heads=2, d_model=16, d_ff=32)), SENTENCE)
        .masked()
        .any()
    )


@pytest.mark.parametrize("width", [200, 60, 40])  # normal cells, compact cells, compact in key blocks
def test_tables_draw_masked_cells_as_masked_not_as_zero(causal, width):
    result = causal.select([0], [1])
    text = draw(render_heads, result, width=width)
    T = len(result.tokens)
    per_row = {}
    body = text[text.index("\nquery") :]  # the tables, not the legend above them
    for line in body.splitlines():
        match = re.match(r"\s*(\d+) \S+\s", line)
        if match:
            per_row[int(match[1])] = per_row.get(int(match[1]), 0) + line.count(MASKED)
    # Row i cannot see the T - 1 - i keys after it, however the table is laid out.
    assert per_row == {i: T - 1 - i for i in range(T)}
    if width == 200:
        rows = table_rows(text, T)
        weights = result.head(0, 1)
        for i, cells in enumerate(rows):
            assert cells[i + 1 :] == [MASKED] * (T - 1 - i)
            # Visible cells are the real weights; the row's maximum carries the mark.
            values = [float(c.rstrip("*")) for c in cells[: i + 1]]
            np.testing.assert_allclose(values, weights[i, : i + 1], atol=0.006)
            assert cells[int(weights[i].argmax())].endswith("*")
    if width == 40:
        assert "keys 0-" in text
    legend = " ".join(text[: text.index("\nlayer 0")].split())  # the legend, however it wrapped
    assert f"{MASKED}: masked, a token cannot see later ones" in legend


def test_encoder_tables_have_no_masked_cells(small_model):
    result = run_attention(small_model, SENTENCE).select([0], [0])
    text = draw(render_heads, result)
    assert MASKED not in text[text.index("\nquery") :] and "masked" not in text
    assert all(MASKED not in cell for row in table_rows(text, len(result.tokens)) for cell in row)


def test_header_says_the_model_is_causal(causal, small_model):
    assert "Causal model" in draw(render_header, causal)
    assert "Causal model" not in draw(render_header, run_attention(small_model, SENTENCE))


def test_show_prints_causal_tables_and_a_focus_summary(causal_dir):
    done = invoke("show", SENTENCE, "-m", causal_dir, "--layer", "0", "--head", "0", env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "Causal model" in done.stdout and " · causal" in done.stdout
    rows = table_rows(done.stdout, 15)
    assert rows[0][1:] == [MASKED] * 14 and rows[-1].count(MASKED) == 0
    # The automatic focus passes over "It", which opens the text and sees nothing before it.
    assert "where 'it' (token 10) attends" in done.stdout


# --- analysis --------------------------------------------------------------------------------------


def test_focus_ranking_never_names_a_masked_key(causal):
    for index in range(len(causal.tokens)):
        for row in top_targets(causal, index, k=5):
            assert len(row.targets) == min(5, index + 1)
            assert all(j <= index for j, _ in row.targets)
            weights = causal.head(row.layer, row.head)[index, : index + 1]
            assert [w for _, w in row.targets] == pytest.approx(sorted(weights, reverse=True)[:5])


def test_focus_summary_with_few_visible_keys_renders_short_rows(causal):
    focus = resolve_focus(causal, "1")
    text = draw(render_focus, causal, focus, top_targets(causal, 1, 3))
    assert "where 'It' (token 1) attends" in text
    assert "3rd" not in text and "2nd" in text


def test_automatic_pronoun_focus_on_a_causal_result(causal, causal_model, small_model):
    assert find_pronoun(causal).index == 10  # the later "it"
    assert find_pronoun(run_attention(small_model, SENTENCE)).index == 1  # an encoder sees both ways
    # With no later pronoun, the opening one is still the focus.
    only = run_attention(causal_model, "It was cold.")
    assert find_pronoun(only).label == "It"
    korean = run_attention(causal_model, "그 동물은 길을 건너지 않았는데, 그것이 너무 피곤했기 때문이다.")
    assert korean.text[korean.offsets[find_pronoun(korean).index][0] :].startswith("그것이")


def test_candidates_before_the_focus_score_and_after_it_are_refused(causal):
    focus = focus_span(causal, 10)
    scores = score_candidates(causal, focus, resolve_candidates(causal, ["dog", "rained"], focus))
    dog, rained = causal.tokens.index("dog"), causal.tokens.index("rained")
    np.testing.assert_allclose(scores.weights[..., 0], causal.weights[:, :, 10, dog], atol=1e-7)
    np.testing.assert_allclose(scores.weights[..., 1], causal.weights[:, :, 10, rained], atol=1e-7)
    with pytest.raises(AttnvizError, match="comes after the focus 'it'.*causal.*before the focus"):
        resolve_candidates(causal, ["dog", "cold"], focus)


def test_show_candidate_after_the_focus_is_a_one_line_exit_2(causal_dir):
    line = assert_one_error_line(
        invoke("show", SENTENCE, "-m", causal_dir, "-c", "dog,cold"), "causal model", "antecedent precedes the pronoun"
    )
    assert line.startswith("attnviz: error: candidate 'cold' comes after the focus")
    ok = invoke("show", SENTENCE, "-m", causal_dir, "-c", "dog,rained", "--format", "json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["causal"] is True


def test_word_level_aggregation_stays_causal(causal_model):
    text = "The unbelievably tiredness overwhelmed everyone because it persisted."
    result = run_attention(causal_model, text)
    words = to_words(result)
    assert len(words.tokens) < len(result.tokens)  # some words were split into pieces
    assert words.causal and words.units == "words"
    U = len(words.tokens)
    assert np.all(words.weights[..., np.triu(np.ones((U, U), bool), k=1)] == 0)
    np.testing.assert_allclose(words.weights.sum(-1), 1.0, atol=1e-5)
    assert find_pronoun(words).label == "it"
    text_out = draw(render_heads, words.select([0], [0]))
    rows = table_rows(text_out, U)
    assert all(cells[i + 1 :] == [MASKED] * (U - 1 - i) for i, cells in enumerate(rows))


# --- attention sinks left out ----------------------------------------------------------------------


def test_without_sinks_leaves_specials_and_the_first_token_out_of_rankings(causal, small_model):
    assert causal.without_sinks().excluded == (0, len(causal.tokens) - 1)  # [CLS] ... [SEP]
    encoder = run_attention(small_model, SENTENCE).without_sinks()
    assert encoder.excluded == (0, len(encoder.tokens) - 1)
    # A decoder whose tokenizer adds no special token: its first word is the sink.
    w = np.tril(np.ones((1, 1, 3, 3)))
    w /= w.sum(-1, keepdims=True)
    bare = hand_result(w, ["dog", "bit", "it"], [(0, 3), (4, 7), (8, 10)], [0, 1, 2], "dog bit it", causal=True)
    assert bare.without_sinks().excluded == (0,)
    for result in (causal.without_sinks(), encoder):
        for row in top_targets(result, 9, k=4):
            assert not {j for j, _ in row.targets} & set(result.excluded)
        keys = ranked_keys(result, 9)
        assert not keys[list(result.excluded)].any()


def test_word_level_keeps_the_sinks_excluded(causal):
    words = to_words(causal.without_sinks())
    assert [words.tokens[u] for u in words.excluded] == ["[CLS]", "[SEP]"]


def test_a_candidate_that_is_a_sink_is_refused():
    w = np.tril(np.ones((1, 1, 4, 4)))
    w /= w.sum(-1, keepdims=True)
    result = hand_result(
        w,
        ["Dogs", "and", "cats", "they"],
        [(0, 4), (5, 8), (9, 13), (14, 18)],
        [0, 1, 2, 3],
        "Dogs and cats they",
        causal=True,
    ).without_sinks()
    focus = focus_span(result, 3)
    with pytest.raises(AttnvizError, match="'Dogs' is token 0, an attention sink"):
        resolve_candidates(result, ["Dogs", "cats"], focus)
    assert [c.units for c in resolve_candidates(result, ["and", "cats"], focus)] == [[1], [2]]


@pytest.mark.slow
def test_show_exclude_sinks_says_so_and_keeps_the_real_weights(causal_dir):
    plain = invoke("show", SENTENCE, "-m", causal_dir, "--format", "json")
    left = invoke("show", SENTENCE, "-m", causal_dir, "--format", "json", "--exclude-sinks")
    assert plain.exit_code == left.exit_code == 0, left.output
    a, b = json.loads(plain.stdout), json.loads(left.stdout)
    assert a["weights"] == b["weights"]
    assert a["excluded"] == [] and b["excluded"] == [0, len(b["tokens"]) - 1]
    table = invoke(
        "show", SENTENCE, "-m", causal_dir, "--exclude-sinks", "-l", "0", "--head", "0", env={"COLUMNS": "200"}
    )
    assert table.exit_code == 0, table.output
    assert "Sinks left out of rankings and colour scales: [CLS] (token 0), [SEP] (token 14)" in table.stdout
    assert "sinks left out" in table.stdout
    summary = table.stdout[table.stdout.index("where 'it'") :]
    assert "[CLS]" not in summary and "[SEP]" not in summary
    # The tables still print the sink column's real weight, and never mark it as the row maximum.
    rows = table_rows(table.stdout, 15)
    weights = np.array(b["weights"])[0, 0]
    for i, cells in enumerate(rows[1:], start=1):
        assert float(cells[0].rstrip("*")) == pytest.approx(weights[i, 0], abs=0.006)
        assert not cells[0].endswith("*")


@pytest.mark.slow
@pytest.mark.real_model
def test_minilm_focus_summary_without_sinks(minilm):
    """The MiniLM focus summary's top target is [CLS] in most heads; with --exclude-sinks in none."""
    result = run_attention(minilm, "The animal didn't cross the street because it was too tired.")
    it = find_pronoun(result).index
    before = [row.targets[0][0] for row in top_targets(result, it)]
    assert sum(result.special[j] for j in before) > len(before) // 2
    after = top_targets(result.without_sinks(), it)
    assert len(after) == 72 and not any(result.special[j] for row in after for j, _ in row.targets)
    # The real weight is reported: the same number as the matrix cell.
    row = after[0]
    assert row.targets[0][1] == pytest.approx(float(result.weights[0, 0, it, row.targets[0][0]]))


@pytest.mark.slow
def test_focus_on_the_sink_itself_has_nothing_left_to_rank(causal_dir):
    done = invoke("show", SENTENCE, "-m", causal_dir, "--focus", "0", "--exclude-sinks")
    assert done.exit_code == 0, done.output
    assert "nothing to rank: token 0 sees no key outside the sinks" in done.stdout
    words = invoke("show", SENTENCE, "-m", causal_dir, "--exclude-sinks", "--words", "--view", "rollout")
    assert words.exit_code == 0, words.output
    assert "where 'it' (word 10) attends, per head, sinks left out" in words.stdout
