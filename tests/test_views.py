"""Rollout (Abnar & Zuidema 2020) and the norm view (Kobayashi et al. 2020) against direct computations."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from attnviz.analysis.views import ROLLOUT_HEAD, norm_view, rollout
from attnviz.checkpoints import random_model
from attnviz.cli import app
from attnviz.config import EncoderConfig
from attnviz.pipeline import run_attention

TEXT = "The animal didn't cross the street because it was too tired."
runner = CliRunner()


def random_attention(rng, L, H, T):
    w = rng.random((L, H, T, T))
    return w / w.sum(-1, keepdims=True)


def direct_rollout(weights):
    """Straight from the paper: per layer mean over heads, add I, renormalise rows, multiply up."""
    L, H, T, _ = weights.shape
    result = None
    out = []
    for layer in range(L):
        A = sum(weights[layer, h] for h in range(H)) / H
        A = 0.5 * A + 0.5 * np.eye(T)
        A = A / A.sum(axis=1)[:, None]
        result = A if result is None else A @ result
        out.append(result)
    return np.array(out)


def test_first_layer_rollout_is_half_attention_plus_half_identity():
    rng = np.random.default_rng(0)
    w = random_attention(rng, 1, 1, 6)
    np.testing.assert_allclose(rollout(w)[0], 0.5 * w[0, 0] + 0.5 * np.eye(6), atol=1e-12)


def test_rollout_matches_direct_implementation():
    rng = np.random.default_rng(1)
    w = random_attention(rng, 4, 3, 7)
    got = rollout(w)
    np.testing.assert_allclose(got, direct_rollout(w), atol=1e-12)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-12)


def test_pipeline_rollout_uses_every_layer_below(small_model):
    full = run_attention(small_model, TEXT)                                          # all layers, heads
    expected = direct_rollout(full.weights.astype(np.float64))
    only_last = run_attention(small_model, TEXT, layers=[1], view="rollout")
    assert only_last.heads == [ROLLOUT_HEAD] and only_last.layers == [1] and only_last.view == "rollout"
    np.testing.assert_allclose(only_last.weights[0, 0], expected[1], atol=1e-5)
    both = run_attention(small_model, TEXT, view="rollout")
    np.testing.assert_allclose(both.weights[:, 0], expected, atol=1e-5)
    # --head picks the heads that are averaged.
    two = run_attention(small_model, TEXT, heads=[1, 3], view="rollout")
    np.testing.assert_allclose(two.weights[:, 0], direct_rollout(full.weights[:, [1, 3]].astype(np.float64)), atol=1e-5)


def direct_norms(model, text, layer):
    """Run the encoder by hand up to `layer` and compute ||alpha_ij f_h(x_j)|| head by head."""
    enc = model.tokenizer.encode(text)
    ids = torch.tensor([enc.ids])
    encoder = model.encoder
    captured = {}
    attn = encoder.layers[layer].attention
    hook = attn.out.register_forward_hook(lambda mod, inp, out: captured.update(out=out[0]))
    with torch.no_grad():
        x = encoder.embeddings(ids)
        for block in encoder.layers[:layer]:
            x, _ = block(x, None, need_weights=False)
        block = encoder.layers[layer]
        seen = block.attention_norm(x) if block.pre_norm else x
        _, probs = block(x, None, need_weights=True)                                # [1, H, T, T]
    hook.remove()
    H, Dh = attn.num_heads, attn.d_head
    Wv, bv = attn.value.weight.detach().double(), attn.value.bias.detach().double()
    Wo = attn.out.weight.detach().double()
    v = seen[0].double() @ Wv.T + bv                                                  # [T, D]
    T = v.shape[0]
    norms = torch.zeros(H, T, T, dtype=torch.float64)
    total = torch.zeros(T, Wo.shape[0], dtype=torch.float64)
    for h in range(H):
        f = v[:, h * Dh:(h + 1) * Dh] @ Wo[:, h * Dh:(h + 1) * Dh].T                # [T, D]: f_h(x_j)
        for i in range(T):
            for j in range(T):
                vec = probs[0, h, i, j].double() * f[j]
                norms[h, i, j] = torch.linalg.vector_norm(vec)
                total[i] += vec
    # The decomposition is exact: summing alpha f(x) over heads and keys, plus the output bias,
    # gives what the attention block really produced.
    torch.testing.assert_close(total + attn.out.bias.detach().double(), captured["out"].double(), atol=1e-4, rtol=1e-4)
    return norms.numpy()


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_norm_view_matches_direct_computation_with_module_weights(placement):
    model = random_model(EncoderConfig(num_layers=3, num_heads=4, d_model=32, d_ff=64, norm_placement=placement), seed=3)
    result = run_attention(model, TEXT, layers=[0, 2], view="norm")
    assert result.view == "norm" and result.heads == [0, 1, 2, 3]
    for k, layer in enumerate([0, 2]):
        np.testing.assert_allclose(result.weights[k], direct_norms(model, TEXT, layer), rtol=1e-4, atol=1e-5)
    heads = run_attention(model, TEXT, layers=[2], heads=[1, 3], view="norm")
    np.testing.assert_allclose(heads.weights[0], result.weights[1, [1, 3]], rtol=1e-5, atol=1e-6)


def test_norm_view_array_math_on_a_tiny_example():
    # 2 heads of width 1 (D = 2): f_h(x_j) = v_j[h] * Wo[:, h], so ||f_h(x_j)|| = |v_j[h]| * ||Wo[:, h]||.
    values = np.array([[1.0, -2.0], [3.0, 0.5]])                                     # [T=2, D=2]
    Wo = np.array([[3.0, 0.0], [4.0, 1.0]])                                          # column norms 5 and 1
    probs = np.array([[[0.25, 0.75], [1.0, 0.0]], [[0.5, 0.5], [0.1, 0.9]]])         # [H, T, T]
    expected = np.array([[[0.25 * 5, 0.75 * 15], [1.0 * 5, 0.0]],
                         [[0.5 * 2, 0.5 * 0.5], [0.1 * 2, 0.9 * 0.5]]])
    np.testing.assert_allclose(norm_view(probs, values, Wo), expected)


def test_encoder_keep_values_is_opt_in(small_model):
    ids = torch.tensor([small_model.tokenizer.encode(TEXT).ids])
    plain = small_model.encoder(ids)
    with_values = small_model.encoder(ids, keep_layers=[0, 1], keep_values=True)
    assert plain.values is None
    assert with_values.values.shape == (1, 2, ids.shape[1], small_model.config.d_model)
    torch.testing.assert_close(plain.attentions, with_values.attentions)


@pytest.mark.parametrize("view", ["rollout", "norm"])
def test_show_views_in_json_and_terminal(view):
    out = runner.invoke(app, ["show", TEXT, "--view", view, "--format", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["view"] == view
    assert data["heads"] == ([ROLLOUT_HEAD] if view == "rollout" else [0, 1, 2, 3])
    table = runner.invoke(app, ["show", TEXT, "--view", view, "--words"])
    assert table.exit_code == 0, table.output
    assert ("Rollout view" if view == "rollout" else "Norm view") in table.stdout
    if view == "rollout":
        assert "heads averaged" in table.stdout


@pytest.mark.parametrize("view", ["rollout", "norm"])
def test_show_views_as_images(tmp_path, view):
    from PIL import Image

    path = tmp_path / f"{view}.png"
    out = runner.invoke(app, ["show", TEXT, "--view", view, "--words", "--png", str(path)])
    assert out.exit_code == 0, out.output
    image = Image.open(path)
    assert image.format == "PNG" and image.width > 100
    # Rollout has one map per layer: its model layout is a single column of panels, narrower
    # than the norm view's four heads side by side.
    other = tmp_path / "attention.png"
    assert runner.invoke(app, ["show", TEXT, "--words", "--png", str(other)]).exit_code == 0
    if view == "rollout":
        assert image.width < Image.open(other).width
