"""Which head a view opens on: one head that answers the focus question, not every head at once.

The best known pronoun head when the focus is a pronoun and such heads are known (`attnviz
inspect` found them); otherwise the head in which the focus token gives its largest weight to one
key other than itself and the sinks (the most decided head); without a focus, none."""

from __future__ import annotations

import numpy as np

from ..result import AttentionResult


def opening_head(
    result: AttentionResult, focus: int | None, pronoun_heads: list[dict] | None = None
) -> tuple[int, int, str] | None:
    """(layer position, head position, why) in `result.layers` / `result.heads`, or None.

    `pronoun_heads`: [{"layer", "head", "accuracy"}] as `show --html` embeds them."""
    if focus is None:
        return None
    known = [h for h in pronoun_heads or () if h["layer"] in result.layers and h["head"] in result.heads]
    if known:
        best = max(known, key=lambda h: (h["accuracy"], -h["layer"], -h["head"]))
        li, hi = result.layers.index(best["layer"]), result.heads.index(best["head"])
        return li, hi, f"its best pronoun head ({100 * best['accuracy']:.0f}% on the agreement set)"
    sinks = set(result.sink_indices())
    cross = result.key_tokens is not None  # cross-attention: the keys are the source's tokens, none is the focus
    seen = [j for j in range(result.weights.shape[-1]) if j not in sinks]
    keys = seen if cross else [j for j in seen if j != focus and not (result.causal and j > focus)]
    if not keys:
        return None
    top = result.weights[:, :, focus, :][:, :, keys].max(axis=-1)  # [layers, heads]
    li, hi = np.unravel_index(int(np.argmax(top)), top.shape)  # the first maximum, in layer/head order
    label = result.labels[focus]
    other = "source token" if cross else f"other {result.unit_name}"
    return (int(li), int(hi), f"the head where {label!r} sends the most weight to one {other}, sinks aside")
