"""Images of long texts (render/image/pooled.py): cells pooled under a cap, labels bounded, a
note that says so, the same bytes every time."""

import io

import numpy as np
import pytest
from PIL import Image

from attnviz.analysis.pooling import pool_map, pool_row
from attnviz.render.image import engine, render_image
from attnviz.render.image.pooled import LAYOUT_CELLS, pool_for_image
from test_terminal_overview import long_result


@pytest.fixture(scope="module")
def long3000():
    return long_result(T=3000, antecedent=123, focus=2500)


def visible_texts():
    return [t.get_text() for t in engine.last_scene().texts if t.get_visible()]


@pytest.mark.slow
def test_a_3000_token_head_is_drawn_pooled_within_the_caps(long3000):
    drawn = render_image(long3000, "head")
    image = Image.open(io.BytesIO(drawn.data))
    assert image.format == "PNG"
    assert max(image.size) <= 2000  # pixels, whatever T is
    panel = engine.last_scene().images[0].get_array()
    assert panel.shape == (LAYOUT_CELLS["head"], LAYOUT_CELLS["head"])
    texts = visible_texts()
    assert len(texts) <= 300  # token labels thinned to what the panel holds
    assert any("3,000 tokens pooled to 1000 x 1000 blocks of up to 3 x 3, the max of each" in t for t in texts)
    assert "attention · blocks" in texts[0]
    assert drawn.notes[0].startswith("cells are pooled: 3,000 tokens in 1000 blocks of up to 3 tokens")
    assert render_image(long3000, "head").data == drawn.data  # deterministic bytes


def test_pooled_result_holds_the_pooled_maps_and_the_focus_row(long3000):
    pooled, focus, note = pool_for_image(long3000, 2500, 200)
    assert note is not None and focus == int(2500 // 15)
    assert pooled.weights.shape == (1, 2, 200, 200) and pooled.causal
    expected = pool_map(long3000.weights[0, 1], long3000.masked(), 200, 200)
    others = [b for b in range(200) if b != focus]
    np.testing.assert_array_equal(pooled.weights[0, 1][others], expected.values[others])
    # The focus block's row is the focus token's row, pooled: its antecedent block is the top.
    row = pool_row(long3000.weights[0, 0, 2500], long3000.masked()[2500], 200)
    np.testing.assert_array_equal(pooled.weights[0, 0, focus], row.values[0])
    assert int(pooled.weights[0, 0, focus, 1:].argmax()) + 1 == 123 // 15
    # Masked blocks (above the diagonal) are exactly the blocks the pooled result masks.
    np.testing.assert_array_equal(pooled.masked()[others], expected.empty[others])
    # Short texts are left alone.
    short = long_result(T=50, antecedent=3, focus=40)
    assert pool_for_image(short, 40) == (short, 40, None)


@pytest.mark.slow
def test_focus_and_layer_images_of_a_long_text(long3000):
    drawn = render_image(long3000, "focus", focus=2500)
    assert Image.open(io.BytesIO(drawn.data)).format == "PNG"
    labels = [t for t in visible_texts() if t and t[0].isdigit()]
    assert 5 <= len(labels) <= 50  # round positions only, not 3,000 (nor 200) labels
    assert "2500:w2500" in labels
    assert "the focus token's block row is token 2500's own row" in drawn.notes[0]
    drawn = render_image(long3000, "layer", layer=0)
    assert [a.get_array().shape for a in engine.last_scene().images[:2]] == [(500, 500)] * 2
    assert len(visible_texts()) <= 300
