"""Non-finite numbers caught where they first appear in the forward pass.

Finite weights can still make inf or NaN: query and key weights large enough that Q K^T overflows
float32 (the softmax of inf - inf is NaN), or a float16/bfloat16 cast whose range (65,504 for
float16) the activations outgrow. Left alone, NaN flows into every renderer: tables that crash on
the colour scale, JSON full of NaN literals, PNG cells that look masked. The encoder calls
`check_layer` after each layer instead, so the user gets one line naming the layer and what to
check, and everything downstream only ever sees finite attention.

Cost: one reduction per tensor (`sum`), which is finite exactly when every element is, except for
finite values large enough that their sum overflows; only then the elementwise test runs.
"""

from __future__ import annotations

from .errors import AttnvizError

_NARROW = {"torch.float16": "float16", "torch.bfloat16": "bfloat16"}


class NonFiniteError(AttnvizError):
    """inf or NaN appeared in the forward pass (exit 2, one line naming the layer)."""


def all_finite(tensor) -> bool:
    import torch

    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def check_layer(layer: int | None, hidden, probs=None) -> None:
    """Raise NonFiniteError if layer `layer`'s attention probabilities `probs` [B, H, T, T] (None:
    not kept) or its output `hidden` [B, T, D] hold inf or NaN; layer None: the embeddings."""
    if probs is not None and not all_finite(probs):
        raise NonFiniteError(_message(layer, "attention weights", hidden.dtype))
    if not all_finite(hidden):
        raise NonFiniteError(_message(layer, "hidden states", hidden.dtype))


def _message(layer: int | None, what: str, dtype) -> str:
    where = "the embeddings" if layer is None else f"layer {layer}"
    narrow = _NARROW.get(str(dtype))
    if narrow:
        return (
            f"{where}: the {what} overflowed to inf/NaN in {narrow} (the weights are finite, the {narrow} range "
            f"is too small for these activations); run with --dtype float32"
        )
    return (
        f"{where}: the {what} became inf/NaN although the weights are finite; the model's weights of "
        f"{where} are too large for float32 arithmetic (check that layer's query and key weights and the "
        f"config's norm settings)"
    )
