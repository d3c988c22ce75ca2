"""What the BERT-family and decoder loaders share about checkpoints written by other libraries:
reading their config.json values, and finding the prefix their task models put before every
weight name ("bert.", "transformer.", "model.")."""

from __future__ import annotations

from ..config import LAYER_TYPES, MAX_SIZE, finite_positive
from ..errors import AttnvizError
from ..text import shown
from .weights import WeightFile


def positive_int(data: dict, key: str, label: str, default: int | None = None) -> int:
    """config.json's `key` as a positive integer (`default` when absent), else a one-line error."""
    value = data.get(key, default)
    if value is None:
        raise AttnvizError(f"{label}: missing {key!r}")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise AttnvizError(f"{label}: {key} must be a positive integer, got {shown(value)}")
    if value > MAX_SIZE:
        raise AttnvizError(f"{label}: {key} is about 2**{value.bit_length() - 1}, larger than any model's")
    return value


def find_prefix(weights: WeightFile, anchor: str, wrapper: str, model_type: str) -> str:
    """The prefix before `anchor` (the token-embedding weight's name): "" for a bare model,
    `wrapper` ("bert.", "transformer."...) for a task model that wraps it, or the one other prefix
    found; several candidates, or none, are one-line errors."""
    found = sorted({k[: -len(anchor)] for k in weights.keys() if k.endswith(anchor)})
    for prefix in ("", wrapper):
        if prefix in found:
            return prefix
    if len(found) == 1:
        return found[0]
    if not found:
        raise AttnvizError(
            f"{weights.label}: missing key {anchor!r} (with or without a "
            f"{wrapper!r} prefix); is this a {model_type} checkpoint?"
        )
    raise AttnvizError(
        f"{weights.label}: several models in one file ({', '.join(found)}); "
        "attnviz cannot tell which one config.json describes"
    )


# transformers' ACT2FN names that our feed-forward computes identically.
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}

# What every LLaMA-shaped decoder config shares (LLaMA, Mistral, Qwen, Phi-3, Gemma 3): pre-RMSNorm
# blocks with a final norm, rotary positions, a gated feed-forward, a look-ahead mask.
LLAMA_BLOCK = dict(
    dropout=0.0,
    norm_placement="pre",
    positional="rope",
    type_vocab_size=0,
    embedding_layernorm=False,
    pad_token_id=0,
    causal=True,
    norm="rms",
    ffn="gated",
    final_norm=True,
)


def checked_layer_types(data: dict, label: str, layers: int) -> list | None:
    """config.json's layer_types, checked whenever it is there (whether or not a window uses it)."""
    types = data.get("layer_types")
    if types is not None and (
        not isinstance(types, list) or len(types) != layers or any(t not in LAYER_TYPES for t in types)
    ):
        raise AttnvizError(
            f"{label}: layer_types must be a list of {layers} entries, each one of {', '.join(LAYER_TYPES)}"
        )
    return types


def decoder_activation(data: dict, key: str, default: str, label: str) -> str:
    act = data.get(key, default)
    if not isinstance(act, str) or act not in ACTIVATIONS:  # a list or object is no name (and unhashable)
        raise AttnvizError(f"{label}: {key} {shown(act)} is not supported; supported: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[act]


def decoder_eps(data: dict, key: str, default: float, label: str) -> float:
    eps = data.get(key, default)
    if not finite_positive(eps):  # inf (1e999, Infinity) would make every head uniform
        raise AttnvizError(f"{label}: {key} must be a positive finite number, got {eps!r}")
    return float(eps)


def decoder_flag(data: dict, key: str, label: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise AttnvizError(f"{label}: {key} must be true or false, got {shown(value)}")
    return value
