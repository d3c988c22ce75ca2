"""The explorer as a newcomer meets it: a one-line status that says where you are as index and
count, a typed @word focus that stays with its sentence, messages without command-line flags, and
a heatmap that still shows on a 40 x 12 terminal."""

from __future__ import annotations

import asyncio

import pytest

from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.explore.app import ExploreApp
from attnviz.explore.session import Options
from explore_pilot import settle, enter

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ATTNVIZ_STATE_DIR", raising=False)
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def wide_model():
    """6 layers x 12 heads, MiniLM's shape, so the status line is as long as a real model's."""
    return random_model(EncoderConfig(num_layers=6, num_heads=12, d_model=96), seed=0)


def message(app) -> str:
    return str(app.query_one("#message").render())


def test_the_status_is_one_line_that_gives_index_and_count(wide_model, tmp_path):
    async def run():
        app = ExploreApp(lambda: wide_model, "random", "A dog ate food because it was hungry.", save_dir=tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            status = app.query_one("#status")
            assert str(status.render()).startswith("layer 0 (of 6) · head 0 (of 12) · attention")
            assert status.region.height == 1  # cut with an ellipsis at 80 columns, never wrapped
            await pilot.press("escape", "left", "up")  # clamped at the first head
            await pilot.press("down", "down", "down", "right")
            assert str(status.render()).startswith("layer 3 (of 6) · head 1 (of 12)")
            # The last head of the model reads as the 12th of 12, not 11/11.
            for _ in range(100):
                await pilot.press("right")
            assert str(status.render()).startswith("layer 5 (of 6) · head 11 (of 12)")

    asyncio.run(run())


def test_a_typed_focus_stays_with_its_sentence(small_model, tmp_path):
    async def run():
        app = ExploreApp(lambda: small_model, "random", save_dir=tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "The dog chased the cat.")
            await enter(app, pilot, "@dog")
            result = app.session.result()
            assert result.labels[app.session.focus] == "dog"
            # The next sentence has no "dog": it starts from its own pronoun, with no complaint.
            await enter(app, pilot, "A bird sang because it was happy.")
            result = app.session.result()
            assert result.labels[app.session.focus] == "it"
            assert "not in the sentence" not in message(app)

    asyncio.run(run())


def test_a_focus_given_at_start_still_holds_for_every_sentence(small_model, tmp_path):
    async def run():
        app = ExploreApp(lambda: small_model, "random", options=Options(focus="sang"), save_dir=tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "A bird sang because it was happy.")
            assert app.session.result().labels[app.session.focus] == "sang"
            await enter(app, pilot, "Then the bird sang again.")
            assert app.session.result().labels[app.session.focus] == "sang"

    asyncio.run(run())


def test_a_text_too_long_is_a_message_without_a_command_line_flag(tmp_path):
    model = random_model(EncoderConfig(max_len=8), seed=0)

    async def run():
        app = ExploreApp(lambda: model, "random", save_dir=tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            await enter(app, pilot, "a sentence far too long for a model of eight positions")
            text = message(app)
            assert "the model takes at most 8" in text and text.rstrip().endswith("shorten it")
            assert "--" not in text and app.is_running

    asyncio.run(run())


def test_a_40_by_12_terminal_still_shows_the_heatmap(small_model, tmp_path):
    async def run():
        app = ExploreApp(lambda: small_model, "random", "A dog ate food because it was hungry.", save_dir=tmp_path)
        async with app.run_test(size=(40, 12)) as pilot:
            await settle(app, pilot)
            frame = app.query_one("#heat-scroll")
            assert frame.region.width >= 36 and frame.region.height >= 3
            # What the frame shows of the heatmap: its first lines, with the focus row's cells.
            heat = app.query_one("#heatmap")
            assert heat.region.intersection(frame.region).area > 0
            assert len(heat.lines) > heat.header_rows
            assert app.query_one("#status").region.height == 1

    asyncio.run(run())
