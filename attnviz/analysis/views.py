"""Other views of the same attention: rollout (Abnar & Zuidema 2020) and norms (Kobayashi et al. 2020).

Both take plain arrays; the pipeline collects them from the encoder. Shapes: L layers, H heads,
T tokens, D d_model, Dh = D / H.
"""

from __future__ import annotations

import numpy as np

VIEWS = ("attention", "rollout", "norm")

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
    mixed = 0.5 * weights.mean(axis=1) + 0.5 * np.eye(T)[None]                      # [L, T, T]
    mixed /= mixed.sum(axis=-1, keepdims=True)
    out = np.empty_like(mixed)
    acc = np.eye(T)
    for layer in range(L):
        acc = mixed[layer] @ acc
        out[layer] = acc
    return out


def transformed_value_norms(values: np.ndarray, out_weight: np.ndarray, num_heads: int) -> np.ndarray:
    """||f_h(x_j)|| per head and key token: [H, T].

    values [T, D]: x W_v + b_v, the output of the value projection (all heads side by side);
    out_weight [D, D]: the output projection in torch's Linear layout (y = c @ out_weight.T + b).
    Head h's slice of the value vector, v_j^h [Dh], goes through the columns of the output
    projection that read head h: f_h(x_j) = v_j^h @ out_weight[:, h*Dh:(h+1)*Dh].T, a [D] vector.
    The output bias is left out: it is added once per query, not carried by any key.
    """
    values = np.asarray(values, dtype=np.float64)
    out_weight = np.asarray(out_weight, dtype=np.float64)
    T, D = values.shape
    Dh = D // num_heads
    per_head = values.reshape(T, num_heads, Dh)                                      # [T, H, Dh]
    w = out_weight.reshape(D, num_heads, Dh)                                         # [D(out), H, Dh]
    f = np.einsum("thk,ehk->hte", per_head, w)                                       # [H, T, D]
    return np.linalg.norm(f, axis=-1)                                                # [H, T]


def norm_view(probs: np.ndarray, values: np.ndarray, out_weight: np.ndarray) -> np.ndarray:
    """Kobayashi et al. 2020: ||alpha_ij f_h(x_j)|| = alpha_ij ||f_h(x_j)|| (alpha >= 0).

    probs [H, T, T] attention of one layer; values [T, D]; out_weight [D, D]. Returns [H, T, T]
    in float64. Rows no longer sum to one: a weight on a key whose transformed value is short
    ([SEP]-like sinks) shrinks, showing how little information actually flows there.
    """
    probs = np.asarray(probs, dtype=np.float64)
    norms = transformed_value_norms(values, out_weight, probs.shape[0])              # [H, T]
    return probs * norms[:, None, :]
