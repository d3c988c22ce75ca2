"""Every head's patched readout (and the fraction of the gap it restores) equals transformers with a
forward hook that copies the head's clean context into the corrupt run."""

from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz.checkpoints.lm_head import load_lm_head
from attnviz.errors import AttnvizError
from attnviz.interventions.patching import patch
from attnviz.interventions.readout import build_readout
from causal_models import hf_contexts, hf_readout, write_model

pytestmark = pytest.mark.slow
CLEAN = "The queen thanked the king because she had won."
CORRUPT = "The queen thanked the king because he had won."


@pytest.mark.parametrize("key", ["gpt2", "llama-gqa", "qwen2", "bert-mlm"])
@pytest.mark.parametrize("position", ["all", "focus", "last", "3"])
def test_every_head_patched_matches_transformers(tmp_path, key, position):
    folder, reference = write_model(tmp_path, key)
    loaded = attnviz.load_model(str(folder))
    head = load_lm_head(loaded)
    clean = build_readout(loaded, head, CLEAN, ("queen", "king"))
    corrupt = build_readout(loaded, head, CORRUPT, ("queen", "king"))
    result = patch(loaded, head, clean, corrupt, position)
    assert result.clean == pytest.approx(hf_readout(reference, clean), abs=1e-4)
    assert result.corrupt == pytest.approx(hf_readout(reference, corrupt), abs=1e-4)
    H, Dh = loaded.config.num_heads, loaded.config.d_head
    expected = np.zeros_like(result.patched)
    for layer in range(loaded.config.num_layers):
        sources = hf_contexts(reference, clean, layer)  # [T, H*Dh] per sequence
        for h in range(H):

            def edit(context, s, h=h, sources=sources):
                context = context.clone()
                cols = slice(h * Dh, (h + 1) * Dh)
                rows = slice(None) if result.positions is None else result.positions
                context[0, rows, cols] = sources[s][rows, cols]
                return context

            expected[layer, h] = hf_readout(reference, corrupt, edit, layer)
    np.testing.assert_allclose(result.patched, expected, rtol=0, atol=1e-3)
    gap = result.clean - result.corrupt
    np.testing.assert_allclose(result.fraction, (expected - result.corrupt) / gap, rtol=0, atol=1e-3 / abs(gap))
    if position == "all":
        assert np.abs(result.fraction).max() > 1e-3


def test_twins_of_different_length_are_one_line(tmp_path):
    folder, _ = write_model(tmp_path, "gpt2")
    loaded = attnviz.load_model(str(folder))
    head = load_lm_head(loaded)
    clean = build_readout(loaded, head, CLEAN, ("queen", "king"))
    longer = build_readout(loaded, head, "The queen thanked the king because she had really won.", ("queen", "king"))
    with pytest.raises(AttnvizError, match="the twins tokenize to \\d+ and \\d+ tokens"):
        patch(loaded, head, clean, longer)
    with pytest.raises(AttnvizError, match="--position"):
        patch(loaded, head, clean, clean, "99")
