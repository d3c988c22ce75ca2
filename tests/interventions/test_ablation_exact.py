"""The readout and every head's ablation equal transformers doing the same with forward hooks
(tiny random GPT-2, LLaMA with grouped-query attention, Qwen2, BERT with its masked-LM head)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz.checkpoints.lm_head import load_lm_head
from attnviz.errors import AttnvizError
from attnviz.interventions.ablation import ablate
from attnviz.interventions.readout import build_readout
from causal_models import hf_contexts, hf_readout, write_model

pytestmark = pytest.mark.slow
CASES = [
    ("The queen thanked the king because she had won.", ("queen", "king")),
    ("The trophy did not fit in the suitcase because it was too big.", ("trophy", "suitcase")),
]


def loaded_pair(tmp_path, key):
    folder, reference = write_model(tmp_path, key)
    loaded = attnviz.load_model(str(folder))
    return loaded, load_lm_head(loaded), reference


@pytest.mark.parametrize("key", ["gpt2", "llama-gqa", "qwen2", "bert-mlm"])
def test_readout_and_every_head_ablation_match_transformers(tmp_path, key):
    loaded, head, reference = loaded_pair(tmp_path, key)
    assert head.masked == (key == "bert-mlm")
    H, Dh = loaded.config.num_heads, loaded.config.d_head
    for text, cands in CASES:
        readout = build_readout(loaded, head, text, cands)
        clean = hf_readout(reference, readout)
        for mode in ("zero", "mean"):
            result = ablate(loaded, head, readout, mode=mode, layer_level=True)
            assert result.clean == pytest.approx(clean, abs=1e-4)
            expected = np.zeros_like(result.ablated)
            for layer in range(loaded.config.num_layers):
                means = [c[:n].mean(0) for c, n in zip(hf_contexts(reference, readout, layer), readout.mean_lengths)]
                for h in range(H):

                    def edit(context, s, h=h, means=means, mode=mode):
                        context = context.clone()
                        cols = slice(h * Dh, (h + 1) * Dh)
                        context[..., cols] = 0.0 if mode == "zero" else means[s][cols]
                        return context

                    expected[layer, h] = hf_readout(reference, readout, edit, layer)
                whole = hf_readout(
                    reference,
                    readout,
                    lambda c, s, means=means, mode=mode: (
                        torch.zeros_like(c) if mode == "zero" else means[s].expand_as(c)
                    ),
                    layer,
                )
                assert result.layer_ablated[layer] == pytest.approx(whole, abs=1e-3)
            np.testing.assert_allclose(result.ablated, expected, rtol=0, atol=1e-3)
            assert np.abs(result.effect).max() > 1e-3  # the heads matter: the test could fail


def test_multi_token_candidates_sum_their_tokens(tmp_path):
    """A candidate of several tokens: its log-probability is the sum over its tokens (checked against
    transformers running prompt + candidate)."""
    loaded, head, reference = loaded_pair(tmp_path, "llama-gqa")
    readout = build_readout(loaded, head, "The zebra helped the walrus because he was kind.", ("zebra", "walrus"))
    prompt = loaded.tokenizer.encode(readout.prompt).ids
    total = 0.0
    for name, sign in (("right", 1), ("wrong", -1)):
        cand = readout.candidate_ids[name]
        ids = torch.tensor([prompt + cand])
        with torch.inference_mode():
            logp = reference(input_ids=ids).logits[0].log_softmax(-1)
        total += sign * sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(cand))
    assert max(len(c) for c in readout.candidate_ids.values()) > 1  # the byte-level vocabulary splits them
    assert ablate(loaded, head, readout).clean == pytest.approx(total, abs=1e-4)


def test_one_head_per_layer_head_ablation_equals_layer_ablation(tmp_path):
    loaded, head, _ = loaded_pair(tmp_path, "gpt2-one-head")
    readout = build_readout(loaded, head, *CASES[0])
    for mode in ("zero", "mean"):
        result = ablate(loaded, head, readout, mode=mode, layer_level=True)
        np.testing.assert_allclose(result.ablated[:, 0], result.layer_ablated, rtol=0, atol=1e-6)


def test_models_without_a_head_are_one_line(tmp_path):
    folder, _ = write_model(tmp_path, "bert-bare")
    with pytest.raises(AttnvizError, match="no language-model head.*masked-LM head"):
        load_lm_head(attnviz.load_model(str(folder)))
    with pytest.raises(AttnvizError, match="random model"):
        load_lm_head(attnviz.load_model("random"))
