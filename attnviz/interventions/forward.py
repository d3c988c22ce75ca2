"""Running the encoder's layers piecewise, with edits of the per-head context.

The clean run is Encoder.forward itself: a pre-hook on every layer records the layer's input and
the other arguments Encoder.forward gave it (the mask, the rotary tables, whatever a layer of this
model needs), so the piecewise runs call each layer exactly as the model does (local and global
layers, per-layer positions...) without repeating that logic here. Later runs start at any layer
from the recorded residual stream, with MultiHeadAttention.edit_context set on the layers being
intervened on. Shapes: S sequences, R repeats (one per intervened head), T tokens, D width.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..blockwise import Masking
from ..checkpoints.loaded import LoadedModel

Edit = Callable[[torch.Tensor], torch.Tensor]  # context [B, H, T, Dh] -> context


class Runner:
    """The layers of `loaded.encoder` over fixed inputs ids [S, T] (+ attention mask [S, T])."""

    def __init__(self, loaded: LoadedModel, ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        self.encoder = loaded.encoder
        self.config = loaded.encoder.config
        self.ids, self.attention_mask = ids, attention_mask
        self.S, self.T = ids.shape
        self._record_clean()

    def _record_clean(self) -> None:
        """One Encoder.forward: every layer's input [S, T, D], its call arguments, and the final hidden
        state (after the final norm)."""
        inputs, calls = [], []

        def record(module, args, kwargs):
            inputs.append(args[0])
            calls.append((args[1:], dict(kwargs)))

        hooks = [layer.register_forward_pre_hook(record, with_kwargs=True) for layer in self.encoder.layers]
        try:
            type_ids = torch.zeros_like(self.ids) if self.config.type_vocab_size else None
            last = len(self.encoder.layers) - 1
            out = self.encoder(self.ids, self.attention_mask, type_ids, keep_layers=[last])
        finally:
            for hook in hooks:
                hook.remove()
        self.inputs = inputs + [out.hidden]  # N + 1: the last is the final hidden state
        self.calls = calls
        self.x0 = inputs[0]

    @property
    def num_layers(self) -> int:
        return len(self.encoder.layers)

    def _call(self, i: int, x: torch.Tensor, R: int):
        """Layer i on x [R*S, T, D] with the arguments the clean run gave it (no weights kept)."""
        args, kwargs = self.calls[i]
        args = tuple(self._repeat(a, R) for a in args)
        kwargs = {k: self._repeat(v, R) for k, v in kwargs.items()}
        if "need_weights" in kwargs:
            kwargs["need_weights"] = False
        if "weights_out" in kwargs:
            kwargs["weights_out"] = None
        if len(args) >= 2 and isinstance(args[1], bool):  # need_weights given by position
            args = (args[0], False, *args[2:])
        return self.encoder.layers[i](x, *args, **kwargs)

    def _repeat(self, value, R: int):
        """A per-sequence mask (blockwise.Masking, or a tensor [S, 1, T, T]) repeated for R
        repeats (repeat-major, like x)."""
        if R > 1 and self.S > 1 and isinstance(value, Masking):
            return value.repeated(R)
        if R > 1 and self.S > 1 and isinstance(value, torch.Tensor) and value.dim() == 4 and value.shape[0] == self.S:
            return value.repeat(R, 1, 1, 1)
        return value

    def run(self, x: torch.Tensor, start: int = 0, edits: dict[int, Edit] | None = None, stop: int | None = None):
        """The residual stream after layers start..stop-1 (default: all, then the final norm) from
        `x` [R*S, T, D], the input of layer `start`, with edits {layer: edit}. The final norm is
        applied only when `stop` is None (a run to the end)."""
        edits = edits or {}
        R = x.shape[0] // self.S
        final = stop is None
        stop = self.num_layers if stop is None else stop
        for i in range(start, stop):
            layer = self.encoder.layers[i]
            layer.attention.edit_context = edits.get(i)
            try:
                x, _ = self._call(i, x, R)
            finally:
                layer.attention.edit_context = None
        if final and self.encoder.final_norm is not None:
            x = self.encoder.final_norm(x)
        return x

    def clean(self, record_context: bool = False):
        """The clean run: the input of every layer [S, T, D] (N + 1 of them: the last is the final
        hidden state after the final norm) and, if asked, every layer's context [S, H, T, Dh]."""
        contexts = []
        if record_context:

            def record(context):
                contexts.append(context.clone())
                return context

            for i in range(self.num_layers):
                self.run(self.inputs[i], i, {i: record}, stop=i + 1)
        return self.inputs, contexts

    def layer_args(self, i: int):
        """(mask, rope) as the clean run gave layer i (for code that calls the attention itself)."""
        args, kwargs = self.calls[i]
        mask = args[0] if args else kwargs.get("mask")
        rope = kwargs.get("rope", args[3] if len(args) > 3 else None)
        return mask, rope
