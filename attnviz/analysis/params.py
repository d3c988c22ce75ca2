"""Parameter counts of an encoder, per part and per layer, from its parameter names and shapes.

Takes `(name, shape)` pairs (`checkpoints.lazy_rows.weight_shapes(encoder)`: the parameters plus a
GGUF model's token table, which is read row by row and is no parameter) so it needs no torch. Names
follow `attnviz.encoder.Encoder`: `embeddings.<part>.*`, `layers.<i>.attention.*`,
`layers.<i>.attention_norm.*`, `layers.<i>.ffn.*`, `layers.<i>.ffn_norm.*`, `final_norm.*`. Anything else is counted under "other", so the total is always every parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

EMBEDDING_PARTS = ("word", "position", "token_type", "norm", "project")
LAYER_PARTS = ("attention", "feed_forward", "norms", "other")


@dataclass
class ParameterCounts:
    embeddings: dict[str, int] = field(default_factory=dict)  # EMBEDDING_PARTS (+ unknown) -> count
    layers: list[dict[str, int]] = field(default_factory=list)  # per layer: LAYER_PARTS -> count
    final_norm: int = 0
    other: int = 0

    @property
    def embeddings_total(self) -> int:
        return sum(self.embeddings.values())

    def layer_total(self, index: int) -> int:
        return sum(self.layers[index].values())

    def part_total(self, part: str) -> int:
        """A layer part ("attention", ...) summed over all layers."""
        return sum(layer.get(part, 0) for layer in self.layers)

    @property
    def total(self) -> int:
        return (
            self.embeddings_total + sum(map(self.layer_total, range(len(self.layers)))) + self.final_norm + self.other
        )

    def to_dict(self) -> dict:
        return {
            "embeddings": {**self.embeddings, "total": self.embeddings_total},
            "layers": [{**layer, "total": self.layer_total(i)} for i, layer in enumerate(self.layers)],
            "attention": self.part_total("attention"),
            "feed_forward": self.part_total("feed_forward"),
            "norms": self.part_total("norms") + self.final_norm + self.embeddings.get("norm", 0),
            "final_norm": self.final_norm,
            "other": self.other,
            "total": self.total,
        }


_LAYER = re.compile(r"layers\.(\d+)\.([^.]+)\.")


def parameter_counts(named_shapes: Iterable[tuple[str, tuple[int, ...]]], num_layers: int) -> ParameterCounts:
    """Count parameters per part. `num_layers` fixes the length of `layers` (empty layers count 0)."""
    counts = ParameterCounts(layers=[{part: 0 for part in LAYER_PARTS} for _ in range(num_layers)])
    for name, shape in named_shapes:
        n = math.prod(shape)
        match = _LAYER.match(name)
        if name.startswith("embeddings."):
            part = name.split(".")[1]
            counts.embeddings[part] = counts.embeddings.get(part, 0) + n
        elif match and int(match[1]) < num_layers:
            sub = match[2]
            part = (
                "attention"
                if sub == "attention"
                else "feed_forward"
                if sub == "ffn"
                else "norms"
                if sub.endswith("_norm")
                else "other"
            )
            counts.layers[int(match[1])][part] += n
        elif name.startswith("final_norm."):
            counts.final_norm += n
        else:
            counts.other += n
    return counts


def human(n: int) -> str:
    """12_345_678 -> "12.3M"; small numbers stay exact."""
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)
