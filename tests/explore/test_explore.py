"""`attnviz explore`: the Textual app driven by its pilot (keys, clicks, the cells it draws
against the result object), SVG snapshots of the screen, and the command's exits."""

import asyncio
import json
import os
import pty
import re
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from attnviz.analysis.focus import find_pronoun
from attnviz.analysis.words import to_words, word_groups
from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.explore import cells
from attnviz.explore.app import ExploreApp, HelpScreen
from attnviz.explore.history import History
from attnviz.explore.session import Options, Session
from attnviz.pipeline import run_attention
from attnviz.render.terminal import MARK
from attnviz.render.terminal import cell_style as show_style
from cli_runs import assert_one_error_line
from explore_pilot import settle, enter

SENTENCE = "The animal didn't cross the street because it was too tired."
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    """History and the pronoun-heads cache in the test's own folders: no test sees the user's
    files, and snapshots never depend on what a machine has cached."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ATTNVIZ_STATE_DIR", raising=False)
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def make_app(model, tmp_path, text=None, **options):
    return ExploreApp(lambda: model, "random", text, Options(**options), save_dir=tmp_path)


def cell_values(app):
    """The numbers the heatmap draws, parsed back from its lines ([T, T] of cell texts)."""
    heat = app.query_one("#heatmap")
    rows = heat.lines[heat.header_rows :]
    mode = cells.layout_mode(len(rows), app.query_one("#heat-scroll").size.width)
    width = cells.NORMAL_CELL if mode == "normal" else cells.COMPACT_CELL
    out = []
    for line in rows:
        body = line.plain[cells.ROW_LABEL + 1 :]
        out.append([body[k : k + width] for k in range(0, len(body), width)])
    return out, mode


def cell_style(app, i, j):
    """The style of heatmap cell (query i, key j) as drawn."""
    heat = app.query_one("#heatmap")
    line = heat.lines[heat.header_rows + i]
    mode = cells.layout_mode(len(heat.lines) - heat.header_rows, app.query_one("#heat-scroll").size.width)
    width = cells.NORMAL_CELL if mode == "normal" else cells.COMPACT_CELL
    return line.style_at(cells.ROW_LABEL + 1 + j * width)


def expected_cell(result, layer, head, i, j, mode):
    """Cell text and style as `show` would draw them (attention: the scale is 0-1)."""
    weights = result.head(layer, head)
    is_max = j == int(weights[i].argmax())
    return cells.cell_body(float(weights[i, j]), is_max, mode), show_style(float(weights[i, j]), is_max)


# -- the pilot ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_typed_sentence_draws_the_head_of_the_result(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.click("#sentence")
            await pilot.press(*SENTENCE, "enter")
            await settle(app, pilot)
            reference = run_attention(small_model, SENTENCE)
            result = app.session.result()
            assert result.tokens == reference.tokens
            np.testing.assert_array_equal(result.weights, reference.weights)
            # The focus starts on the pronoun, as in `show`.
            assert app.session.focus == find_pronoun(reference).index == reference.labels.index("it")
            assert (app.session.layer, app.session.head) == (0, 0)
            drawn, mode = cell_values(app)
            T = len(reference.tokens)
            assert len(drawn) == T and all(len(row) == T for row in drawn)
            for i in range(T):
                for j in range(T):
                    body, style = expected_cell(reference, 0, 0, i, j, mode)
                    assert drawn[i][j] == body
                    assert cell_style(app, i, j) == style
            # Each row's maximum carries the mark, exactly once.
            assert all(sum(MARK in c for c in row) == 1 for row in drawn)
            # The keyboard moved to the heatmap: arrows now walk the heads.
            assert app.focused is app.query_one("#heat-scroll")
            assert "random (seed 0)" in str(app.query_one("#status").render())

    asyncio.run(run())


@pytest.mark.slow
def test_arrows_and_hjkl_walk_every_head_of_the_model(tmp_path):
    model = random_model(EncoderConfig(num_layers=3, num_heads=4, d_model=32, d_ff=64), seed=1)

    async def run():
        app = make_app(model, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "A dog ate food because it was hungry.")
            result = app.session.result()
            seen = [(app.session.layer, app.session.head)]
            for _ in range(3 * 4 - 1):
                await pilot.press("right")
                seen.append((app.session.layer, app.session.head))
                # The heatmap on screen is the current head's.
                drawn, mode = cell_values(app)
                assert drawn[0][0] == cells.cell_body(
                    float(result.head(*seen[-1])[0, 0]), int(result.head(*seen[-1])[0].argmax()) == 0, mode
                )
            assert seen == [(layer, head) for layer in range(3) for head in range(4)]
            await pilot.press("right")  # the last head stays the last
            assert (app.session.layer, app.session.head) == (2, 3)
            await pilot.press("h", "k")
            assert (app.session.layer, app.session.head) == (1, 2)
            await pilot.press("j", "j", "l")
            assert (app.session.layer, app.session.head) == (2, 3)
            await pilot.press("up", "up", "up", "left")
            assert (app.session.layer, app.session.head) == (0, 2)
            strip = app.query_one("#strip")
            assert len(strip.heads) == 4 and strip.heads[2].plain.startswith("▶h2")
            assert "layer 0 (of 3) · head 2 (of 4)" in str(app.query_one("#status").render())

    asyncio.run(run())


@pytest.mark.slow
def test_clicks_on_tokens_rows_and_strip_set_focus_and_head(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, SENTENCE)
            labels = app.session.result().labels
            street = labels.index("street")
            assert await pilot.click("#tokens", offset=app.query_one("#tokens").offset_of(street))
            await pilot.pause()
            assert app.session.focus == street
            assert f"focus 'street' (token {street})" in app.query_one("#summary").render().plain
            # The strip shows the focus row of every head of the layer.
            result = app.session.result()
            for head, line in enumerate(app.query_one("#strip").heads):
                j, w = max(enumerate(result.head(0, head)[street]), key=lambda p: p[1])
                assert f"{labels[j]} {w:.2f}" in line.plain
            # A heatmap row label: its query becomes the focus.
            heat = app.query_one("#heatmap")
            assert await pilot.click("#heatmap", offset=(2, heat.header_rows + 2))
            await pilot.pause()
            assert app.session.focus == 2
            # A head of the strip opens it.
            assert await pilot.click("#strip", offset=(1, 1 + 3))
            await pilot.pause()
            assert (app.session.layer, app.session.head) == (0, 3)
            # Tab walks the non-special tokens, wrapping.
            await pilot.press("tab")
            assert app.session.focus == 3
            await pilot.press("shift+tab", "shift+tab")
            assert app.session.focus == 1
            await pilot.press("shift+tab")
            assert app.session.focus == len(labels) - 2  # the last token before [SEP]

    asyncio.run(run())


@pytest.mark.slow
def test_word_level_keeps_the_focus_word_and_draws_word_weights(small_model, tmp_path):
    text = "Tokenization splits unbelievable words."

    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, text)
            tokens = run_attention(small_model, text)
            groups = word_groups(tokens)
            assert any(len(g) > 1 for g in groups), "the sentence must split a word"
            split = next(g for g in groups if len(g) > 1)
            app.session.set_focus(split[-1])  # the last piece of a split word
            await pilot.press("w")
            words = to_words(tokens)
            result = app.session.result()
            assert result.units == "words" and result.tokens == words.tokens
            np.testing.assert_array_equal(result.weights, words.weights)
            assert app.session.focus == groups.index(split)
            drawn, mode = cell_values(app)
            assert len(drawn) == len(groups)
            for i in range(len(groups)):
                for j in range(len(groups)):
                    assert drawn[i][j] == expected_cell(words, 0, 0, i, j, mode)[0]
            assert "word level" in str(app.query_one("#status").render())
            await pilot.press("w")
            assert app.session.result().units == "tokens" and app.session.focus == split[0]

    asyncio.run(run())


@pytest.mark.slow
def test_v_cycles_the_views_through_the_pipeline(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, SENTENCE)
            await pilot.press("right", "right")
            await pilot.press("v")
            await settle(app, pilot)
            rollout = run_attention(small_model, SENTENCE, view="rollout")
            result = app.session.result()
            assert result.view == "rollout" and result.heads == [-1]
            np.testing.assert_array_equal(result.weights, rollout.weights)
            assert "rollout" in str(app.query_one("#status").render())
            await pilot.press("v")
            await settle(app, pilot)
            norm = run_attention(small_model, SENTENCE, view="norm")
            np.testing.assert_array_equal(app.session.result().weights, norm.weights)
            assert app.session.head == 2  # remembered across rollout's single map
            # Norm rows do not sum to one: the scale tops at the head's largest weight.
            top = cells.heatmap(app.session.result(), 0, 2, 0, 200).top
            assert top == pytest.approx(float(norm.head(0, 2).max()))
            await pilot.press("v")
            await settle(app, pilot)
            zeroing = run_attention(small_model, SENTENCE, view="value-zeroing")
            result = app.session.result()
            assert result.view == "value-zeroing" and result.heads == [-1]
            np.testing.assert_allclose(result.weights, zeroing.weights, atol=1e-6)
            assert "all heads" in str(app.query_one("#status").render())
            await pilot.press("v")
            assert app.session.result().view == "attention" and app.session.head == 2

    asyncio.run(run())


def test_a_session_started_in_value_zeroing_cycles_on():
    session = Session(Options(view="value-zeroing"))
    assert session.next_view() == "attention"


@pytest.mark.slow
def test_s_leaves_sinks_out_of_the_scale_and_the_rankings(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, SENTENCE)
            await pilot.press("s")
            result = app.session.result()
            sinks = result.sink_indices()
            assert sinks == [0, len(result.tokens) - 1] and list(result.excluded) == sinks
            weights = result.head(0, 0)
            heat = cells.heatmap(result, 0, 0, app.session.focus, 200)
            real = [j for j in range(len(result.tokens)) if j not in sinks]
            assert heat.top == pytest.approx(float(weights[:, real].max()))
            for j in sinks:
                assert cell_style(app, 1, j) == cells.SINK_STYLE
            j = real[0]
            assert cell_style(app, 1, j).endswith(show_style(float(weights[1, j]) / heat.top, False).split(" on ")[-1])
            assert all(j not in sinks for row in app.session.targets() for j, _ in row.targets)
            assert "sinks out of scale" in str(app.query_one("#status").render())

    asyncio.run(run())


@pytest.mark.slow
def test_e_saves_png_and_html_under_fresh_names(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, SENTENCE)
            await pilot.press("right", "w", "e")
            await settle(app, pilot)
            png, html = app.saved
            assert png.name == "the-animal-didn-t-cross-the-street-attention-words-l0h1.png"
            assert html.with_suffix(".png") == png
            with Image.open(png) as image:
                assert image.format == "PNG" and image.size[0] > 100
            page = html.read_text(encoding="utf-8")
            assert page.startswith("<!doctype html>") and "didn&#x27;t cross" in page
            first = png.read_bytes()
            message = app.query_one("#message").render().plain
            assert str(png) in message and str(html) in message
            await pilot.press("e")
            await settle(app, pilot)
            assert [p.name for p in app.saved[2:]] == [png.stem + "-2.png", png.stem + "-2.html"]
            assert png.read_bytes() == first  # never overwritten
            # A save folder that vanished: a message, and the app goes on.
            app.save_dir = tmp_path / "gone"
            await pilot.press("e")
            await settle(app, pilot)
            assert "not saved" in app.query_one("#message").render().plain
            assert app.is_running

    asyncio.run(run())


@pytest.mark.slow
def test_errors_are_messages_in_place(tmp_path):
    model = random_model(EncoderConfig(max_len=8), seed=0)

    async def run():
        app = make_app(model, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.press("escape", "right")  # no sentence yet
            assert "no sentence yet" in app.query_one("#message").render().plain
            await enter(app, pilot, "a dog ate")
            before = app.session.result()
            await enter(app, pilot, "a sentence far too long for a model of eight positions")
            assert "the model takes at most 8" in app.query_one("#message").render().plain
            assert app.session.result() is before and app.is_running
            await enter(app, pilot, "@zebra")
            assert "'zebra' is not in the sentence" in app.query_one("#message").render().plain
            await enter(app, pilot, "@99")
            assert "out of range" in app.query_one("#message").render().plain
            await enter(app, pilot, "@dog")
            assert app.session.focus == before.labels.index("dog")
            await enter(app, pilot, "   ")
            assert "empty" in app.query_one("#message").render().plain
            # Odd Unicode and control characters are drawn as visible escapes, never raw.
            await enter(app, pilot, "a\u202edog\u200d")
            assert all("\u202e" not in line.plain for line in app.query_one("#tokens").lines)
            assert app.is_running

    asyncio.run(run())


@pytest.mark.slow
def test_unexpected_failure_of_a_sentence_is_a_message(small_model, tmp_path, monkeypatch):
    import attnviz.explore.app as explore_app

    def broken(*args):
        raise RuntimeError("boom")

    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "a dog")
            monkeypatch.setattr(explore_app, "compute", broken)
            await enter(app, pilot, "a cat")
            assert app.query_one("#message").render().plain == "internal error: RuntimeError: boom"
            assert app.is_running and app.session.text == "a dog"

    asyncio.run(run())


@pytest.mark.slow
def test_known_pronoun_heads_are_starred_as_in_show(small_model, tmp_path, monkeypatch):
    import attnviz.explore.app as explore_app
    from attnviz.pronoun_heads import PronounHeads

    entry = {"layer": 1, "head": 2, "accuracy": 0.94, "resolves": True}
    known = PronounHeads("agreement", 10, {}, [entry, {**entry, "head": 3, "resolves": False}])
    monkeypatch.setattr(explore_app, "_pronoun_heads", lambda loaded, resolve: known)

    async def run():
        app = make_app(small_model, tmp_path, layer=1)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, SENTENCE)
            strip = app.query_one("#strip").heads
            assert [line.plain.endswith("★ 94%") for line in strip] == [False, False, True, False]
            assert "★ pronoun heads (agreement): L1H2 94%" in app.query_one("#summary").render().plain
            await enter(app, pilot, "@animal")  # not a pronoun: no stars, as in show
            assert not any("★" in line.plain for line in app.query_one("#strip").heads)

    asyncio.run(run())


@pytest.mark.slow
def test_rollout_head_saves_as_png(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path, view="rollout")
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "a dog ate food")
            await pilot.press("down", "e")
            await settle(app, pilot)
            png = app.saved[0]
            assert png.name == "a-dog-ate-food-rollout-tokens-l1-rollout.png"
            with Image.open(png) as image:
                assert image.format == "PNG"

    asyncio.run(run())


@pytest.mark.slow
def test_candidates_and_bad_candidates(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path, candidates=["animal", "street"])
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, SENTENCE)
            scores = app.session.candidate_scores()
            summary = app.query_one("#summary").render().plain
            assert f"animal {scores.weights[0, 0, 0]:.3f}" in summary
            assert f"'animal' wins {scores.counts()[0]}" in summary
            await enter(app, pilot, "A cat sat.")  # neither candidate is in it
            assert "candidate 'animal' is not a word of the sentence" in app.query_one("#summary").render().plain

    asyncio.run(run())


@pytest.mark.slow
def test_causal_model_draws_future_keys_as_masked(tmp_path):
    model = random_model(EncoderConfig(causal=True), seed=0)

    async def run():
        app = make_app(model, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "a dog ate food")
            drawn, _ = cell_values(app)
            T = len(drawn)
            for i in range(T):
                for j in range(T):
                    assert ("·" in drawn[i][j]) == (j > i)
            assert "causal" in str(app.query_one("#status").render())

    asyncio.run(run())


@pytest.mark.slow
def test_loading_state_keeps_the_sentence_line_usable(small_model, tmp_path):
    release = threading.Event()

    def slow_loader():
        release.wait(10)
        return small_model

    async def run():
        app = ExploreApp(slow_loader, "random", None, Options(), save_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.loaded is None and "loading" in str(app.query_one("#status").render())
            assert app.focused is app.query_one("#sentence")
            await pilot.press(*"a dog", "enter")
            assert "still loading" in app.query_one("#message").render().plain
            release.set()
            await settle(app, pilot)
            assert app.session.text == "a dog"

    asyncio.run(run())


@pytest.mark.slow
def test_load_failure_ends_the_app_with_status_2():
    def broken():
        raise AttnvizError("no such model: nowhere")

    async def run():
        app = ExploreApp(broken, "nowhere")
        async with app.run_test() as pilot:
            for _ in range(100):
                if app.return_code is not None:
                    break
                await pilot.pause(0.02)
        assert app.return_code == 2 and app.load_error == "no such model: nowhere"

    asyncio.run(run())


@pytest.mark.slow
def test_history_is_kept_across_runs(small_model, tmp_path):
    path = tmp_path / "state" / "attnviz" / "explore-history.jsonl"

    async def first():
        app = make_app(small_model, tmp_path)
        async with app.run_test() as pilot:
            await settle(app, pilot)
            for text in ("one dog", "two cats\u00a0«ok»", "three birds"):
                await enter(app, pilot, text)

    async def second():
        app = make_app(small_model, tmp_path)
        async with app.run_test() as pilot:
            await settle(app, pilot)
            line = app.query_one("#sentence")
            line.focus()
            await pilot.press("up")
            assert line.value == "three birds"
            await pilot.press("up")
            assert line.value == "two cats\u00a0«ok»"
            await pilot.press("up")
            assert line.value == "one dog"
            await pilot.press("up")
            assert line.value == "one dog"
            await pilot.press("down", "down", "down")
            assert line.value == ""

    asyncio.run(first())
    assert [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] == [
        "one dog",
        "two cats\u00a0«ok»",
        "three birds",
    ]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]
    asyncio.run(second())


def test_damaged_or_unwritable_history_never_stops_the_app(small_model, tmp_path):
    folder = tmp_path / "state" / "attnviz"
    folder.mkdir(parents=True)
    (folder / "explore-history.jsonl").write_bytes(b'"kept"\nnot json\n\xff\xfe\n"also kept"\n')
    history = History()
    assert history.entries == [] and "not read" in history.note  # not UTF-8: starts empty
    (folder / "explore-history.jsonl").write_text('"kept"\nnot json\n42\n"also kept"\n', encoding="utf-8")
    assert History().entries == ["kept", "also kept"]
    blocked = History(tmp_path / "a-file" / "history.jsonl")
    (tmp_path / "a-file").write_text("not a folder")
    assert "history not saved" in blocked.add("a dog")


@pytest.mark.slow
def test_resize_reflows_the_heatmap_and_the_side_panel(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "a dog ate food")
            assert app.screen.has_class("-narrow")
            assert cell_values(app)[1] == "compact"
            await pilot.resize_terminal(160, 40)
            await pilot.pause()
            await pilot.pause()
            assert app.screen.has_class("-wide")
            assert cell_values(app)[1] == "normal"
            assert app.query_one("#side").outer_size.width == 52

    asyncio.run(run())


@pytest.mark.slow
def test_long_sentence_scrolls_to_keep_the_focus_row_in_view(small_model, tmp_path):
    text = " ".join(f"word{i}" for i in range(60))

    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, text)
            frame = app.query_one("#heat-scroll")
            assert frame.scroll_y == 0
            assert frame.max_scroll_x > 0 and frame.max_scroll_y > 0  # wider and taller than the screen
            await pilot.press("shift+tab")  # wraps to the last word
            await pilot.pause()
            row = app.query_one("#heatmap").header_rows + app.session.focus
            assert frame.scroll_y > 0
            assert frame.scroll_y <= row < frame.scroll_y + frame.scrollable_content_region.height
            await pilot.press("tab")  # back to the first word
            await pilot.pause()
            assert frame.scroll_y == 0

    asyncio.run(run())


@pytest.mark.slow
def test_help_screen_opens_and_closes(small_model, tmp_path):
    async def run():
        app = make_app(small_model, tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "a dog")
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert "word level on/off" in app.screen.query_one("#help-text").render().plain
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("q")
        assert app.return_code in (0, None)

    asyncio.run(run())


# -- snapshots ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.real_model
def test_minilm_walk_from_typing_to_a_saved_word_level_png(tmp_path, minilm):
    """Type the sentence, see where "it" goes in every head of a layer, walk all 72 heads with
    the arrow keys, switch to word level and save the head as PNG."""
    model = minilm

    async def run():
        app = ExploreApp(lambda: model, "minilm", None, Options(), save_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            await pilot.click("#sentence")
            await pilot.press(*SENTENCE, "enter")
            await settle(app, pilot)
            reference = run_attention(model, SENTENCE)
            it = reference.labels.index("it")
            assert app.session.focus == it
            seen = set()
            for step in range(72):
                layer, head = app.session.layer, app.session.head
                seen.add((layer, head))
                if head == 0:  # the strip: where "it" goes in each of the layer's 12 heads
                    strip = app.query_one("#strip").heads
                    assert len(strip) == 12
                    for h, line in enumerate(strip):
                        row = reference.head(layer, h)[it]
                        assert f"{reference.labels[int(row.argmax())][:8]} {row.max():.2f}" in line.plain
                if step < 71:
                    await pilot.press("right")
            assert len(seen) == 72 and (app.session.layer, app.session.head) == (5, 11)
            await pilot.press("w", "e")
            await settle(app, pilot)
            png = app.saved[0]
            assert png.name.endswith("-attention-words-l5h11.png")
            with Image.open(png) as image:
                assert image.format == "PNG"

    asyncio.run(run())


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize("which", ["random", "minilm"])
def test_snapshot_main_screen(request, snap_compare, small_model, tmp_path, which, size):
    model = small_model if which == "random" else request.getfixturevalue("minilm")
    app = ExploreApp(lambda: model, which, SENTENCE, Options(), save_dir=tmp_path)

    async def ready(pilot):
        await settle(app, pilot)

    assert snap_compare(app, terminal_size=size, run_before=ready)


# -- the command ----------------------------------------------------------------------------------


def _env():
    return {**os.environ, "PYTHONPATH": ROOT}


@pytest.mark.slow
@pytest.mark.subprocess
def test_explore_off_terminal_exits_2_pointing_to_show():
    proc = subprocess.run(
        [sys.executable, "-m", "attnviz", "explore", "-m", "minilm"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert_one_error_line(proc, "attnviz show")
    assert proc.stdout == ""


@pytest.mark.slow
@pytest.mark.subprocess
def test_explore_load_failure_exits_2_with_the_line_of_show(tmp_path):
    missing = str(tmp_path / "no-such-model")
    shown = subprocess.run(
        [sys.executable, "-m", "attnviz", "show", "a dog", "-m", missing],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    shown_line = assert_one_error_line(shown)
    # explore needs a terminal: a pseudo-terminal, on which Textual draws (through stderr) and
    # after which the error line comes, once the app has given the screen back.
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnviz", "explore", "-m", missing],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**_env(), "TERM": "xterm-256color"},
    )
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(main)
    assert proc.wait(timeout=120) == 2
    # What comes after Textual leaves the alternate screen is what the user sees in the terminal.
    assert b"\x1b[?1049l" in output
    output = output.rsplit(b"\x1b[?1049l", 1)[1]
    text = re.sub(r"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-Za-z]|[=>])", "", output.decode())
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    assert lines == [shown_line]


@pytest.mark.slow
@pytest.mark.subprocess
def test_help_does_not_import_textual():
    code = (
        "import sys; from attnviz.cli import main; rc = main(['--help']); "
        "print('textual' in sys.modules, 'torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.stdout.strip().splitlines()[-1] == "False False"
    assert "explore" in proc.stdout
