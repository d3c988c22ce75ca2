"""Head ablation: the readout with one head's output removed, for every head.

A head's output is its slice of the attention output before the output projection, context
[B, H, T, Dh][:, h]. Zero ablation sets it to 0 at every position; mean ablation replaces it by
its mean over the prompt's positions in the clean run (for a masked LM, over the whole masked
sentence). With grouped-query attention the slice is a query head's. Layer-level ablation does
the same to every head of a layer at once (the attention block then adds only its output bias).

Speed: the clean run is made once and the residual stream at each layer's input is kept; all H
heads of layer L are then ablated in one batched pass over layers L..N-1 (batch = H x sequences),
instead of H full passes from the embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..checkpoints.lm_head import LMHead
from ..checkpoints.loaded import LoadedModel
from .readout import Readout

MODES = ("zero", "mean")


@dataclass
class AblationResult:
    clean: float
    ablated: np.ndarray  # [L, H] readout with head (l, h) ablated
    mode: str
    readout: Readout
    layer_ablated: np.ndarray | None = None  # [L] readout with layer l's whole attention ablated

    @property
    def effect(self) -> np.ndarray:
        """clean - ablated, [L, H]: positive where removing the head hurts the right answer."""
        return self.clean - self.ablated

    @property
    def layer_effect(self) -> np.ndarray | None:
        return None if self.layer_ablated is None else self.clean - self.layer_ablated


def head_edit(heads: list[int], S: int, mode: str, mean=None):
    """An edit of context [R*S, H, T, Dh] (R = len(heads) repeats of S sequences) that ablates head
    heads[r] in repeat r: zeroed, or set to mean [S, H, Dh] at every position."""
    import torch

    def edit(context):
        B, H, T, Dh = context.shape
        R = B // S
        pick = torch.zeros(R, 1, H, 1, 1, dtype=torch.bool, device=context.device)
        pick[torch.arange(R), 0, torch.tensor(heads)] = True  # repeat r ablates heads[r]
        view = context.view(R, S, H, T, Dh)
        if mode == "zero":
            return view.masked_fill(pick, 0.0).view(B, H, T, Dh)
        return torch.where(pick, mean[None, :, :, None, :].to(context.dtype), view).view(B, H, T, Dh)

    return edit


def context_means(contexts, lengths: list[int]):
    """Per layer, each head's mean context over the first lengths[s] positions: [S, H, Dh]."""
    import torch

    return [torch.stack([c[s, :, :n].mean(dim=1) for s, n in enumerate(lengths)]) for c in contexts]


def ablate(
    loaded: LoadedModel,
    head: LMHead,
    readout: Readout,
    mode: str = "zero",
    layer_level: bool = False,
    progress: Callable[[int], None] | None = None,
) -> AblationResult:
    """Every head of every layer ablated in turn (and, with layer_level, every layer's attention).
    `progress(1)` is called after each layer."""
    import torch

    from .forward import Runner

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    ids, attention_mask = readout.inputs(loaded)
    S = ids.shape[0]
    H = loaded.encoder.config.num_heads
    with torch.inference_mode():
        runner = Runner(loaded, ids, attention_mask)
        inputs, contexts = runner.clean(record_context=mode == "mean")
        clean = float(readout.value(head, inputs[-1])[0])
        means = context_means(contexts, readout.mean_lengths) if mode == "mean" else [None] * runner.num_layers
        ablated = np.zeros((runner.num_layers, H))
        whole = np.zeros(runner.num_layers) if layer_level else None
        for layer in range(runner.num_layers):
            x = inputs[layer].repeat(H, 1, 1)  # [H*S, T, D], repeat r ablates head r
            out = runner.run(x, layer, {layer: head_edit(list(range(H)), S, mode, means[layer])})
            ablated[layer] = readout.value(head, out).cpu().numpy()
            if layer_level:
                out = runner.run(inputs[layer], layer, {layer: _all_heads(H, mode, means[layer])})
                whole[layer] = float(readout.value(head, out)[0])
            if progress:
                progress(1)
    return AblationResult(clean, ablated, mode, readout, whole)


def _all_heads(H: int, mode: str, mean):
    """An edit that ablates every head of the layer (mean [S, H, Dh] for mode mean)."""
    import torch

    def edit(context):
        if mode == "zero":
            return torch.zeros_like(context)
        return mean[:, :, None, :].to(context.dtype).expand_as(context).clone()

    return edit
