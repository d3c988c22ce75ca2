"""Running the encoder's layers piecewise, with edits of the per-head context.

The layer loop mirrors Encoder.forward (same masks, same rotary tables, same layers) but can start
at any layer from a cached residual stream, and sets MultiHeadAttention.edit_context on the layers
being intervened on. Shapes: S sequences, R repeats (one per intervened head), T tokens, D width.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..checkpoints.loaded import LoadedModel
from ..encoder import rope_tables

Edit = Callable[[torch.Tensor], torch.Tensor]  # context [B, H, T, Dh] -> context


class Runner:
    """The layers of `loaded.encoder` over fixed inputs ids [S, T] (+ attention mask [S, T])."""

    def __init__(self, loaded: LoadedModel, ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        self.encoder = loaded.encoder
        self.config = loaded.encoder.config
        self.ids, self.attention_mask = ids, attention_mask
        self.S, self.T = ids.shape
        type_ids = torch.zeros_like(ids) if self.config.type_vocab_size else None
        self.x0 = self.encoder.embeddings(ids, type_ids)  # [S, T, D]
        self.mask = self.encoder.additive_mask(attention_mask, self.T, self.x0.dtype, self.x0.device)
        self.rope = None
        if self.config.positional == "rope":
            cos, sin = rope_tables(self.config, self.T, self.x0.device)
            self.rope = (cos.to(self.x0.dtype), sin.to(self.x0.dtype))

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layers)

    def run(self, x: torch.Tensor, start: int = 0, edits: dict[int, Edit] | None = None, stop: int | None = None):
        """The residual stream after layers start..stop-1 (default: all, then the final norm) from
        `x` [R*S, T, D], the input of layer `start`, with edits {layer: edit}. The final norm is
        applied only when `stop` is None (a run to the end)."""
        edits = edits or {}
        R = x.shape[0] // self.S
        mask = self.mask
        if mask is not None and mask.shape[0] > 1 and R > 1:
            mask = mask.repeat(R, 1, 1, 1)  # [R*S, 1, T, T], repeat-major like x
        final = stop is None
        stop = self.num_layers if stop is None else stop
        for i in range(start, stop):
            layer = self.encoder.layers[i]
            layer.attention.edit_context = edits.get(i)
            try:
                x, _ = layer(x, mask, need_weights=False, rope=self.rope)
            finally:
                layer.attention.edit_context = None
        if final and self.encoder.final_norm is not None:
            x = self.encoder.final_norm(x)
        return x

    def clean(self, record_context: bool = False):
        """The clean run: the input of every layer [S, T, D] (N + 1 of them: the last is the final
        hidden state after the final norm) and, if asked, every layer's context [S, H, T, Dh]."""
        inputs, contexts = [self.x0], []  # inputs[-1] is then the final hidden state

        def record(context):
            contexts.append(context.clone())
            return context

        x = self.x0
        for i in range(self.num_layers):
            x = self.run(x, i, {i: record} if record_context else None, stop=i + 1)
            inputs.append(x)
        if self.encoder.final_norm is not None:
            inputs[-1] = self.encoder.final_norm(x)
        return inputs, contexts
