"""What a forward pass keeps: the request a command builds from what it will show.

Attention is quadratic: 30 layers x 9 heads x 2,000² floats is 4 GB, yet `show -l 29 --head 0`
draws one map and the focus summary reads one row per head. A `KeepRequest` names what is read,
and the encoder computes everything else and lets it go layer by layer:

  layers, heads   the full [T, T] maps kept (the same heads in every kept layer)
  focus           a token whose row of every head is kept, in `focus_layers` ([L, H, T])
  consumers       objects fed each block of probabilities as it is computed (running statistics,
                  rollout products): `rows(layer, r0, k0, probs)` with probs [B, H, R, W] for query
                  rows r0..r0+R-1 and keys k0..k0+W-1 (keys outside that range have weight 0),
                  then `layer_done(layer)`; `layers` says which layers they need.

Torch-free, so the pipeline and sizes can build and measure a request without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class RowConsumer(Protocol):
    layers: frozenset[int]

    def rows(self, layer: int, r0: int, k0: int, probs) -> None: ...

    def layer_done(self, layer: int) -> None: ...


@dataclass(frozen=True)
class KeepRequest:
    layers: tuple[int, ...] = ()  # layers whose full maps are kept, ascending
    heads: tuple[int, ...] | None = None  # heads of those maps; None: all
    focus: int | None = None  # token index whose row of every head is kept
    focus_layers: tuple[int, ...] = ()  # layers whose focus rows are kept, ascending
    consumers: tuple = field(default=(), compare=False)

    @classmethod
    def maps(cls, layers, heads=None) -> "KeepRequest":
        """Full maps of `layers` (all heads unless `heads`), nothing else: today's behaviour."""
        return cls(layers=tuple(sorted(set(layers))), heads=None if heads is None else tuple(heads))

    def with_focus(self, focus: int | None, layers) -> "KeepRequest":
        if focus is None:
            return self
        return KeepRequest(self.layers, self.heads, focus, tuple(sorted(set(layers))), self.consumers)

    def with_consumers(self, *consumers) -> "KeepRequest":
        return KeepRequest(self.layers, self.heads, self.focus, self.focus_layers, self.consumers + consumers)

    @property
    def last_layer(self) -> int:
        """The last layer the pass must run (-1: none); later layers are never computed."""
        wanted = list(self.layers) + list(self.focus_layers)
        for consumer in self.consumers:
            wanted.extend(consumer.layers)
        return max(wanted, default=-1)

    def probabilities_needed(self, layer: int) -> bool:
        """Whether anyone reads layer `layer`'s probabilities (else the fused kernel may skip them)."""
        return (
            layer in self.layers
            or (self.focus is not None and layer in self.focus_layers)
            or any(layer in c.layers for c in self.consumers)
        )

    def head_count(self, num_heads: int) -> int:
        return num_heads if self.heads is None else len(self.heads)
