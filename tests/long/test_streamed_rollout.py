"""Rollout made while the maps stream past (views.RolloutProducts) equals views.rollout on the
full maps: bit for bit on the whole-matrix path, to 1e-6 in blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz import blockwise
from attnviz.analysis import views
from attnviz.config import EncoderConfig
from attnviz.keep import KeepRequest
from attnviz.pipeline import run_attention

CONFIG = EncoderConfig(num_layers=4, num_heads=4, d_model=32, d_ff=64, causal=True, positional="rope", max_len=512)


@pytest.mark.parametrize("rows", [None, 9])
def test_streamed_rollout_equals_rollout_of_full_maps(rows, monkeypatch):
    model = attnviz.load_model("random", config=CONFIG)
    ids = torch.randint(5, 300, (1, 80), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = model.encoder(ids).attentions[0].double().numpy()  # [L, H, T, T]
    expected = views.rollout(full[:, [0, 2, 3]])
    if rows:
        monkeypatch.setattr(blockwise, "BLOCK_BYTES", 4 * 4 * rows * 80)
    products = views.RolloutProducts([0, 1, 2, 3], [0, 2, 3], 80, [1, 3])
    with torch.inference_mode():
        out = model.encoder(ids, keep=KeepRequest().with_consumers(products))
    assert out.attentions.shape[1] == 0  # no map was kept
    for layer in (1, 3):
        if rows:
            np.testing.assert_allclose(products.kept[layer], expected[layer], rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(products.kept[layer], expected[layer])


def test_rollout_view_is_unchanged_on_short_texts():
    model = attnviz.load_model("random", config=CONFIG)
    text = "The animal didn't cross the street because it was too tired."
    result = run_attention(model, text, layers=[1, 3], heads=[1, 2], view="rollout")
    full = run_attention(model, text).weights.astype(np.float64)
    np.testing.assert_array_equal(result.weights[:, 0], views.rollout(full[:, [1, 2]])[[1, 3]].astype(np.float32))
