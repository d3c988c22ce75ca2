"""The explorer on a long text (explore/long_view.py): a pooled overview instead of thousands of
lines, `z` zooms into a window whose cells are the result's weights, shift+arrows move it."""

import asyncio

import numpy as np
import pytest

from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.explore.app import ExploreApp
from attnviz.explore.session import Options
from attnviz.pipeline import run_attention
from explore_pilot import settle

LONG = " ".join(f"word{i % 37} and it" for i in range(100))  # ~300 tokens


@pytest.fixture(autouse=True)
def private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ATTNVIZ_STATE_DIR", raising=False)
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def decoder():
    return random_model(EncoderConfig(max_len=512, causal=True), seed=0)


@pytest.mark.slow
def test_long_text_overview_zoom_and_pan(decoder, tmp_path):
    reference = run_attention(decoder, LONG)
    T = len(reference.tokens)
    assert T > 250

    async def run():
        app = ExploreApp(lambda: decoder, "random", LONG, Options(), save_dir=tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            heat = app.query_one("#heatmap")
            frame = app.query_one("#heat-scroll").size
            # The overview: pooled to the frame, not a line per token.
            assert "pooled to fit" in heat.lines[0].plain
            assert len(heat.lines) <= frame.height + 4
            assert max(len(line.plain) for line in heat.lines) <= frame.width
            assert any("▀" in line.plain for line in heat.lines[heat.header_rows :])
            assert app.row_tokens[0] == 0 and app.row_tokens == sorted(app.row_tokens)
            # The strip of every head: the focus row pooled to the side panel.
            strip = app.query_one("#strip")
            assert max(len(line.plain) for line in strip.lines) <= app.query_one("#side").size.width + 2

            await pilot.press("z")
            await settle(app, pilot)
            zoom = app.zoom
            assert zoom is not None and "zoom: queries" in heat.lines[0].plain
            focus = app.session.focus
            rows = heat.lines[heat.header_rows :]
            assert zoom.r0 <= focus < zoom.r0 + len(rows)
            weights = reference.head(app.session.layer, app.session.head)
            # Cells: weights x100 as in `show`, masked after the diagonal.
            i = focus
            body = rows[i - zoom.r0].plain[13:]
            cellz = [body[k : k + 3] for k in range(0, len(body), 3)]
            for b, text in enumerate(cellz):
                j = zoom.c0 + b
                if j > i:
                    assert text == "  ·"
                else:
                    assert int(text[1:]) == min(round(float(weights[i, j]) * 100), 99)

            await pilot.press("shift+left")
            await settle(app, pilot)
            moved = app.zoom
            width = len(cellz)
            assert moved.c0 == max(0, zoom.c0 - max(1, width // 2)) and moved.r0 == zoom.r0
            await pilot.press("shift+down")
            await settle(app, pilot)
            assert app.zoom.r0 > moved.r0 or app.zoom.r0 == T - len(rows)
            # Heads keep the window.
            before = app.zoom
            await pilot.press("right")
            await settle(app, pilot)
            assert app.session.head == 1 and app.zoom == before and "zoom: queries" in heat.lines[0].plain
            # A click on a line focuses its token.
            await pilot.click("#heatmap", offset=(2, heat.header_rows + 3))
            await settle(app, pilot)
            assert app.session.focus == app.zoom.r0 + 3
            await pilot.press("z")
            await settle(app, pilot)
            assert "pooled to fit" in heat.lines[0].plain

    asyncio.run(run())


def test_short_texts_are_unchanged(decoder, tmp_path):
    async def run():
        app = ExploreApp(lambda: decoder, "random", "The cat sat because it was tired.", Options(), save_dir=tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            assert app.row_tokens is None
            await pilot.press("z")
            await settle(app, pilot)
            assert app.zoom is None

    asyncio.run(run())


def test_zoom_window_cells_match_weights_directly():
    from attnviz.explore import long_view

    result = run_attention(random_model(EncoderConfig(max_len=512, causal=True), seed=1), LONG)
    heat, tokens, zoom = long_view.heatmap(result, 0, 1, 150, 70, 30, long_view.Zoom(140, 120))
    assert zoom == long_view.Zoom(140, 120) and tokens == list(range(140, 140 + len(tokens)))
    assert len(heat.lines) - heat.header_rows == len(tokens) == 28
    weights = result.head(0, 1)
    for k, i in enumerate(tokens):
        body = heat.lines[heat.header_rows + k].plain[13:]
        for b in range(len(body) // 3):
            j = 120 + b
            cell = body[3 * b : 3 * b + 3]
            assert cell == "  ·" if j > i else int(cell[1:]) == min(round(float(weights[i, j]) * 100), 99)
    np.testing.assert_array_equal(np.array(tokens), np.arange(140, 168))
