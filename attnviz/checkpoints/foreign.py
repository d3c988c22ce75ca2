"""What the BERT-family and decoder loaders share about checkpoints written by other libraries:
reading their config.json values, and finding the prefix their task models put before every
weight name ("bert.", "transformer.", "model.")."""

from __future__ import annotations

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
