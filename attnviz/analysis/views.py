"""Other views of the same attention: rollout (Abnar & Zuidema 2020) and norms (Kobayashi et al. 2020).

Both take plain arrays; the pipeline collects them from the encoder. Shapes: L layers, H (query)
heads, G key/value heads (G < H with grouped-query attention, else G = H), T tokens, Dh head width.
"""

from __future__ import annotations

import numpy as np

from ..config import VIEWS as VIEWS  # the names; defined with the other choices, free of NumPy

# `--view value-zeroing --per-head`: one value-zeroing map per head (interventions/value_zeroing.py).
VALUE_ZEROING_HEADS = "value-zeroing-heads"

# A rollout map mixes all heads of a layer; in an AttentionResult it sits on this head index, so
# `heads == [ROLLOUT_HEAD]` marks it. Every output names it ROLLOUT_NAME (head_name, head_label).
ROLLOUT_HEAD = -1
ROLLOUT_NAME = "rollout"


def is_rollout(head: int) -> bool:
    """Whether `head` is the rollout's pseudo-head (all heads of a layer mixed), not a real head."""
    return head == ROLLOUT_HEAD


def mixed_name(view: str) -> str:
    """The one name of the pseudo-head ROLLOUT_HEAD in every output: "rollout", or "all heads"
    for value zeroing in all heads (both mix every head of a layer into one map)."""
    return ROLLOUT_NAME if view == "rollout" else "all heads"


def head_label(head: int) -> str:
    """ "head 5", or "rollout" for the pseudo-head: how titles name a head."""
    return ROLLOUT_NAME if is_rollout(head) else f"head {head}"


def head_name(layer: int, head: int) -> str:
    """ "L2 H5", or "L2 rollout": how tables and lists name a layer's head."""
    return f"L{layer} {ROLLOUT_NAME}" if is_rollout(head) else f"L{layer} H{head}"


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


class RolloutProducts:
    """`rollout` computed while the maps stream past (a keep.KeepRequest consumer): per layer the
    mean of `heads` is filled block by block into one [T, T] float64 array, mixed with the
    identity and multiplied into the running product when the layer is done. The same operations
    in the same order as `rollout` on the full [L, H, T, T] maps, so the same numbers, while only
    one layer's mean is held (not every layer's heads in float64: 8.6 GB at 30 x 9 x 2,000²).

    kept[l]: rollout through layer l [T, T] float64, for each l of `keep`."""

    def __init__(self, layers: list[int], heads: list[int], tokens: int, keep: list[int]) -> None:
        self.layers = frozenset(layers)
        self.heads = list(heads)
        self.keep = set(keep)
        self.mixed = np.zeros((tokens, tokens))  # [T, T] this layer's head mean
        self.acc = np.eye(tokens)
        self.kept: dict[int, np.ndarray] = {}

    def rows(self, layer: int, r0: int, k0: int, probs) -> None:
        """probs [1, H, R, W]: query rows r0.., keys k0.. of every head (keys outside: weight 0)."""
        block = np.asarray(probs[0].numpy(), dtype=np.float64)[self.heads]  # [H', R, W]
        R, W = block.shape[-2:]
        self.mixed[r0 : r0 + R, :] = 0.0
        self.mixed[r0 : r0 + R, k0 : k0 + W] = block.mean(axis=0)

    def layer_done(self, layer: int) -> None:
        T = len(self.mixed)
        mixed = 0.5 * self.mixed + 0.5 * np.eye(T)
        mixed /= mixed.sum(axis=-1, keepdims=True)
        self.acc = mixed @ self.acc
        if layer in self.keep:
            self.kept[layer] = self.acc


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
