"""The explorer on a model with a sliding window (layer 0 local, window 4; layer 1 global): the
heatmap and the head strip draw a local layer's out-of-window keys as masked, like its look-ahead
keys, and colour the same cells in the global layer; the long text's zoom does the same."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.explore import cells, long_view
from attnviz.pipeline import run_attention

WINDOW = 4


def windowed_model(max_len: int = 256):
    config = EncoderConfig(
        num_layers=2,
        num_heads=2,
        d_model=32,
        d_ff=64,
        max_len=max_len,
        causal=True,
        norm="rms",
        norm_placement="pre",
        positional="rope",
        sliding_window=WINDOW,
        layer_types=("sliding_attention", "full_attention"),
    )
    return random_model(config, 0)


@pytest.fixture(scope="module")
def windowed():
    return run_attention(windowed_model(), "one two three four five six seven eight nine ten")


def drawn_cells(heat: cells.Heatmap, T: int) -> list[list[tuple[str, str]]]:
    """Per query row, the (text, style) of each key's cell (the pieces after the label and space)."""
    return [line.pieces[2 : 2 + T] for line in heat.lines[heat.header_rows :]]


def test_the_heatmap_masks_the_window_of_the_local_layer_only(windowed):
    T = len(windowed.tokens)
    for layer in (0, 1):
        rows = drawn_cells(cells.heatmap(windowed, layer, 0, 3, 200), T)
        masked = np.array([[style == cells.MASKED_STYLE for _, style in row] for row in rows])
        np.testing.assert_array_equal(masked, windowed.masked(layer))
        assert masked[T - 1, 0] == (layer == 0)  # the last query, the first key: out of layer 0's window


def test_the_strip_masks_the_window_of_the_local_layer_only(windowed):
    T = len(windowed.tokens)
    focus = T - 1
    for layer in (0, 1):
        line = cells.strip_line(windowed, layer, 0, focus, True, None, "")
        keys = line.pieces[1 : 1 + T]
        assert [style == cells.MASKED_STYLE for _, style in keys] == windowed.masked(layer)[focus].tolist()


def test_the_zoom_of_a_long_text_masks_the_window():
    text = " ".join(["the cat sat on the mat and then it slept"] * 16)
    result = run_attention(windowed_model(512), text)
    T = len(result.tokens)
    assert long_view.is_long(T, 100)
    heat, tokens, zoom = long_view.heatmap(result, 0, 0, T - 1, 100, 30, long_view.Zoom(T - 20, T - 20))
    shown = [[style == cells.MASKED_STYLE for _, style in line.pieces[2:]] for line in heat.lines[heat.header_rows :]]
    rows, cols = len(shown), len(shown[0])
    expected = result.masked(0)[zoom.r0 : zoom.r0 + rows, zoom.c0 : zoom.c0 + cols]
    np.testing.assert_array_equal(np.array(shown), expected)
    assert expected.sum() > expected.shape[0] * (expected.shape[0] - 1) / 2  # more than the look-ahead
