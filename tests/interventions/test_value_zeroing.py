"""Value zeroing equals a direct implementation that runs the model once per zeroed token (a hook
zeroes token j's value vectors in the layer), on encoders and decoders; and the view runs through
run_attention and `show --view value-zeroing`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz.cli import main
from attnviz.interventions.value_zeroing import value_zeroing
from causal_models import write_model

TEXT = "The queen thanked the king because she had won."


def direct(loaded, ids, layer: int, head: int | None = None) -> np.ndarray:
    """[T, T] scores: for each j, the whole model run with layer `layer`'s value vector of token j
    zeroed (in every head, or only in `head`: multi-head attention, one value head per query head)."""
    encoder = loaded.encoder
    T = ids.shape[1]
    Dh = encoder.config.d_head
    captured = {}
    block = encoder.layers[layer]
    hook_out = block.register_forward_hook(lambda m, a, out: captured.__setitem__("y", out[0][0].double()))
    try:
        with torch.inference_mode():
            encoder(ids)
            clean = captured["y"]
            scores = np.zeros((T, T))
            for j in range(T):

                def zero(module, args, out, j=j):
                    out = out.clone()
                    cols = slice(None) if head is None else slice(head * Dh, (head + 1) * Dh)
                    out[:, j, cols] = 0.0
                    return out

                hook = block.attention.value.register_forward_hook(zero)
                try:
                    encoder(ids)
                finally:
                    hook.remove()
                cos = torch.nn.functional.cosine_similarity(captured["y"], clean, dim=-1)
                scores[:, j] = (1 - cos).clamp(min=0).numpy()
    finally:
        hook_out.remove()
    if encoder.config.causal:
        scores *= np.tril(np.ones((T, T)))
    return scores / scores.sum(-1, keepdims=True)


@pytest.mark.slow
@pytest.mark.parametrize("key", ["gpt2", "llama-gqa", "bert-mlm"])
def test_value_zeroing_equals_one_run_per_zeroed_token(tmp_path, key):
    folder, _ = write_model(tmp_path, key)
    loaded = attnviz.load_model(str(folder))
    ids = torch.tensor([loaded.tokenizer.encode(TEXT).ids])
    got = value_zeroing(loaded, ids, [0, 2])
    assert got.shape == (2, 1, ids.shape[1], ids.shape[1])
    for k, layer in enumerate([0, 2]):
        np.testing.assert_allclose(got[k, 0], direct(loaded, ids, layer), rtol=0, atol=1e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-9)
    if key != "llama-gqa":  # per head: one value head per query head
        per_head = value_zeroing(loaded, ids, [1], per_head=True)
        assert per_head.shape[1] == loaded.config.num_heads
        for h in (0, 3):
            np.testing.assert_allclose(per_head[0, h], direct(loaded, ids, 1, h), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_the_view_through_run_attention_and_show(tmp_path, capsys):
    folder, _ = write_model(tmp_path, "bert-bare")  # no LM head needed: any native model
    loaded = attnviz.load_model(str(folder))
    result = attnviz.run_attention(loaded, TEXT, view="value-zeroing")
    assert result.weights.shape[:2] == (3, 1) and result.view == "value-zeroing"
    np.testing.assert_allclose(result.weights.sum(-1), 1.0, atol=1e-5)
    per_head = attnviz.run_attention(loaded, TEXT, view="value-zeroing-heads", heads=[1, 2])
    assert per_head.weights.shape[:2] == (3, 2) and per_head.heads == [1, 2]
    code = main(["show", TEXT, "-m", str(folder), "--view", "value-zeroing", "-l", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "all heads" in out
    code = main(["show", TEXT, "-m", "random", "--view", "value-zeroing", "--per-head", "-l", "0", "--head", "1"])
    out = capsys.readouterr().out
    assert code == 0 and "one head at a time" in " ".join(out.split())
    code = main(["show", TEXT, "-m", "random", "--per-head"])
    err = capsys.readouterr().err
    assert code == 2 and "--per-head goes with --view value-zeroing" in err
