"""Value zeroing (Mohebbi et al. 2023): how much token i's output of a layer depends on token j.

For layer l, with the clean input of the layer (the layers below are not touched), token j's value
vectors are zeroed and the layer is run again; token i's mixing score for j is the cosine distance
between the layer's output for i with and without j's values, and each row is normalised to sum to
one. `per_head` zeroes j's value in one (query) head at a time instead of in all heads.

Zeroing v_j changes only the context of the queries that attend to j, by exactly their weight on
j times v_j (the attention weights themselves do not change: keys are untouched). So the layer is
rerun with the context edit context_i -= a_ij v_j (MultiHeadAttention.edit_context), batched over
the zeroed tokens, instead of recomputing attention once per token; with grouped-query attention,
query head h reads key/value head h // (H / G). Shapes: T tokens, H query heads, G key/value
heads, Dh head width, D width.
"""

from __future__ import annotations

import numpy as np
import torch

from ..checkpoints.loaded import LoadedModel

# Zeroed tokens (or token x head pairs) per batched pass: bounds the batch [B, T, D] and the
# context edit [B, H, T, Dh] on long texts.
CHUNK = 64


def value_zeroing(
    loaded: LoadedModel,
    ids: torch.Tensor,
    layers: list[int],
    per_head: bool = False,
    token_type_ids: torch.Tensor | None = None,
) -> np.ndarray:
    """ids [1, T] -> mixing scores [len(layers), H or 1, T, T] (row i: query token, column j:
    zeroed token), float64, rows summing to one (a row with no change at all stays 0)."""
    from .forward import Runner

    encoder = loaded.encoder
    config = encoder.config
    H, G, Dh = config.num_heads, config.kv_heads, config.d_head
    with torch.inference_mode():
        runner = Runner(loaded, ids)
        T = runner.T
        out = [_layer_scores(runner, encoder.layers[l], l, runner.inputs[l], H, G, Dh, T, per_head) for l in layers]
    scores = np.stack(out)  # [K, H or 1, T, T]
    if config.causal:
        scores = scores * np.tril(np.ones((T, T)))  # exactly 0 where j is in i's future
    sums = scores.sum(-1, keepdims=True)
    return np.divide(scores, sums, out=np.zeros_like(scores), where=sums > 0)


def _layer_scores(runner, layer, l: int, x, H: int, G: int, Dh: int, T: int, per_head: bool) -> np.ndarray:
    attention = layer.attention
    seen = layer.attention_norm(x) if layer.pre_norm else x
    mask, rope = runner.layer_args(l)
    _, probs = attention(seen, mask, True, None, rope)  # [1, H, T, T]
    probs = probs[0].to(x.dtype)  # [H, Tq, Tk]
    values = attention.split_heads(attention.value(seen), G)[0]  # [G, T, Dh]
    values = values.repeat_interleave(H // G, dim=0)  # [H, T, Dh]: query head h reads h // (H/G)
    clean = runner.run(x, l, stop=l + 1)[0]  # [T, D] (not inputs[l + 1]: the last one is final-normed)
    pairs = [(j, h) for j in range(T) for h in (range(H) if per_head else [None])]
    distances = np.zeros((len(pairs), T))
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        js = torch.tensor([j for j, _ in chunk])
        # delta[b, h, i, :] = a[h, i, j_b] * v[h, j_b, :]: what token j_b's value adds to i's context.
        delta = probs[:, :, js].permute(2, 0, 1)[..., None] * values[:, js].permute(1, 0, 2)[:, :, None, :]
        if per_head:
            keep = torch.zeros(len(chunk), H, 1, 1, dtype=delta.dtype)
            keep[torch.arange(len(chunk)), torch.tensor([h for _, h in chunk])] = 1.0
            delta = delta * keep  # only head h_b's value of j_b is zeroed

        def edit(context, delta=delta):
            return context - delta.to(context.dtype)  # [B, H, T, Dh]

        zeroed = runner.run(x.expand(len(chunk), -1, -1), l, {l: edit}, stop=l + 1)  # [B, T, D]
        cos = torch.nn.functional.cosine_similarity(zeroed.double(), clean.double()[None], dim=-1)  # [B, T]
        distances[start : start + len(chunk)] = (1.0 - cos).clamp(min=0.0).cpu().numpy()
    if per_head:
        return distances.reshape(T, H, T).transpose(1, 2, 0)  # [H, Ti, Tj]
    return distances.T[None]  # [1, Ti, Tj]


PER_HEAD_VIEW = "value-zeroing-heads"  # `--view value-zeroing --per-head`


def value_zeroing_result(model: LoadedModel, enc, text: str, layers, heads, view: str):
    """The AttentionResult of the value-zeroing view of an encoded text (pipeline.run_attention):
    per layer one map (all heads zeroed together, head index -1 as rollout's) or, for
    PER_HEAD_VIEW, one map per head."""
    from ..analysis.views import ROLLOUT_HEAD
    from ..result import AttentionResult
    from ..sizes import check_run_size

    config = model.config
    per_head = view == PER_HEAD_VIEW
    layers = list(range(model.built_layers)) if layers is None else sorted(set(layers))
    heads = list(range(config.num_heads)) if heads is None else list(heads)
    check_run_size(config, len(enc.ids), min(CHUNK, len(enc.ids) * (config.num_heads if per_head else 1)), 1)
    device = next(model.encoder.parameters()).device
    ids = torch.tensor([enc.ids], device=device)
    scores = value_zeroing(model, ids, layers, per_head)  # [L, H or 1, T, T]
    weights = scores[:, heads] if per_head else scores
    note = (
        "Value-zeroing view: token i's score for j is the cosine distance between the layer's output for i "
        "with and without j's value vectors (zeroed in "
        + ("one head at a time" if per_head else "every head")
        + "), rows normalised (Mohebbi et al. 2023)."
    )
    return AttentionResult.of_encoding(
        enc,
        text,
        weights=weights.astype(np.float32),
        layers=layers,
        heads=heads if per_head else [ROLLOUT_HEAD],
        model=model.info,
        view=view,
        notes=[note],
    )
