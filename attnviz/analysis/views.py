"""Other views of the same attention: rollout (Abnar & Zuidema 2020) and norms (Kobayashi et al. 2020).

Both take plain arrays; the pipeline collects them from the encoder. Shapes: L layers, H (query)
heads, G key/value heads (G < H with grouped-query attention, else G = H), T tokens, Dh head width.
"""

from __future__ import annotations

import numpy as np

VIEWS = ("attention", "rollout", "norm", "value-zeroing")  # value zeroing: interventions/value_zeroing.py

# `--view value-zeroing --per-head`: one value-zeroing map per head (interventions/value_zeroing.py).
VALUE_ZEROING_HEADS = "value-zeroing-heads"

# A rollout map mixes all heads of a layer; in an AttentionResult it sits on this head index, so
# `heads == [ROLLOUT_HEAD]` marks it and renderers can title it "heads averaged".
ROLLOUT_HEAD = -1


def rollout(weights: np.ndarray) -> np.ndarray:
    """Attention rollout through each layer.

    weights [L, H, T, T] of consecutive layers starting at layer 0. Per layer, the residual
    connection is modelled as an identity: A = 0.5 * mean over heads + 0.5 * I, rows renormalised.
    Rollout through layer l is A_l @ A_{l-1} @ ... @ A_0 (row i: how much of each input token
    reaches position i after layer l). Returns [L, T, T] in float64; rows sum to one.
    """
    weights = np.asarray(weights, dtype=np.float64)
    L, _, T, _ = weights.shape
    mixed = 0.5 * weights.mean(axis=1) + 0.5 * np.eye(T)[None]  # [L, T, T]
    mixed /= mixed.sum(axis=-1, keepdims=True)
    out = np.empty_like(mixed)
    acc = np.eye(T)
    for layer in range(L):
        acc = mixed[layer] @ acc
        out[layer] = acc
    return out


def transformed_value_norms(
    values: np.ndarray, out_weight: np.ndarray, num_heads: int, kv_heads: int | None = None
) -> np.ndarray:
    """||f_h(x_j)|| per query head and key token: [H, T].

    values [T, G*Dh]: x W_v + b_v, the output of the value projection (the G key/value heads side
    by side; G = kv_heads, default num_heads); out_weight [E, H*Dh]: the output projection in
    torch's Linear layout (y = c @ out_weight.T + b, E = d_model). With grouped-query attention
    (G < H) query head h reads key/value head h // (H // G), as in encoder.MultiHeadAttention, so
    its value slice v_j^{h // (H/G)} [Dh] goes through the columns of the output projection that
    read query head h: f_h(x_j) = v_j^{h // (H/G)} @ out_weight[:, h*Dh:(h+1)*Dh].T, an [E] vector.
    The output bias is left out: it is added once per query, not carried by any key.
    """
    values = np.asarray(values, dtype=np.float64)
    out_weight = np.asarray(out_weight, dtype=np.float64)
    H, G = num_heads, kv_heads or num_heads
    T, width = values.shape
    E, inner = out_weight.shape
    Dh = inner // H
    if H % G or inner != H * Dh or width != G * Dh:
        raise ValueError(
            f"values [{T}, {width}] and output projection [{E}, {inner}] do not fit "
            f"{H} query heads over {G} key/value heads"
        )
    per_kv = values.reshape(T, G, Dh)  # [T, G, Dh]
    # Query heads g*group .. g*group+group-1 share key/value head g: no copy of the values.
    w = out_weight.reshape(E, G, H // G, Dh)  # [E, G, group, Dh]
    f = np.einsum("tgk,egqk->gqte", per_kv, w).reshape(H, T, E)  # [H, T, E]
    return np.linalg.norm(f, axis=-1)  # [H, T]


def norm_view(probs: np.ndarray, values: np.ndarray, out_weight: np.ndarray, kv_heads: int | None = None) -> np.ndarray:
    """Kobayashi et al. 2020: ||alpha_ij f_h(x_j)|| = alpha_ij ||f_h(x_j)|| (alpha >= 0).

    probs [H, T, T] attention of one layer; values [T, G*Dh] of its kv_heads (G, default H)
    key/value heads; out_weight [E, H*Dh]. Returns [H, T, T] in float64. Rows no longer sum to
    one: a weight on a key whose transformed value is short ([SEP]-like sinks) shrinks, showing
    how little information actually flows there.
    """
    probs = np.asarray(probs, dtype=np.float64)
    norms = transformed_value_norms(values, out_weight, probs.shape[0], kv_heads)  # [H, T]
    return probs * norms[:, None, :]
