"""Activation patching: each head's output copied from the clean twin's run into the corrupt twin's.

For twins that differ in the cue ("... because she ..." / "... because he ..."), the readout is
clean on one and corrupt on the other; patching head (l, h) at the chosen positions runs the corrupt
text with that head's slice of the attention output (context [B, H, T, Dh][:, h], the input of the
output projection) taken from the clean run, and reports the fraction of the clean - corrupt gap it
restores: (patched - corrupt) / (clean - corrupt). Positions: every position, the focus word's
tokens, the prompt's last token, or a token index.

Batched as ablation is: the corrupt residual stream at each layer's input is kept, and the H heads of
a layer are patched in one pass (batch = heads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..checkpoints.lm_head import LMHead
from ..checkpoints.loaded import LoadedModel
from ..errors import AttnvizError
from .readout import Readout

POSITIONS = ("all", "focus", "last")


@dataclass
class PatchResult:
    clean: float
    corrupt: float
    patched: np.ndarray  # [L, H] readout of the corrupt run with head (l, h) patched from the clean one
    positions: list[int] | None  # token positions patched (None: all)
    position: str  # as asked: all, focus, last or N
    clean_readout: Readout
    corrupt_readout: Readout

    @property
    def gap(self) -> float:
        return self.clean - self.corrupt

    @property
    def fraction(self) -> np.ndarray:
        """(patched - corrupt) / (clean - corrupt) [L, H]; NaN when the twins read the same."""
        if abs(self.gap) < 1e-9:
            return np.full_like(self.patched, np.nan)
        return (self.patched - self.corrupt) / self.gap


def check_twins(clean: Readout, corrupt: Readout) -> None:
    """Patching copies position t to position t: the twins must tokenize to the same lengths."""
    if clean.lengths != corrupt.lengths:
        a, b = len(clean.prompt_tokens), len(corrupt.prompt_tokens)
        raise AttnvizError(
            f"the twins tokenize to {a} and {b} tokens; patching copies each position to the same one, "
            "so give twins whose differing words have the same number of tokens"
        )


def resolve_positions(readout: Readout, position: str) -> list[int] | None:
    """Token positions for --position: None (all), the focus word's tokens, the prompt's last token,
    or one index N (0-based, into the prompt's tokens)."""
    n = len(readout.prompt_tokens)
    if position == "all":
        return None
    if position == "last":
        return [n - 1]
    if position == "focus":
        match = re.search(rf"(?<!\w){re.escape(readout.focus)}(?!\w)", readout.text)
        start, end = readout.text_start + match.start(), readout.text_start + match.end()
        found = [i for i, (a, b) in enumerate(readout.prompt_offsets) if a < end and b > start and b > a]
        if not found:
            raise AttnvizError(f"the focus word {readout.focus!r} has no token of its own in the prompt")
        return found
    if position.isascii() and position.isdigit():
        index = int(position)
        if index >= n:
            raise AttnvizError(f"--position {index} is beyond the prompt's {n} tokens (0-{n - 1})")
        return [index]
    raise AttnvizError(f"--position takes all, focus, last or a token index, got {position!r}")


def patch_edit(S: int, H: int, clean_context, positions: list[int] | None):
    """An edit of context [H*S, H, T, Dh]: repeat r takes head r's slice from clean_context [S, H, T, Dh]
    at `positions` (all when None)."""
    import torch

    def edit(context):
        B, _, T, Dh = context.shape
        pick = torch.eye(H, dtype=torch.bool, device=context.device)[:, None, :, None, None]  # [H, 1, H, 1, 1]
        if positions is not None:
            at = torch.zeros(T, dtype=torch.bool, device=context.device)
            at[positions] = True
            pick = pick & at[None, None, None, :, None]  # [H, 1, H, T, 1]
        view = context.view(H, S, H, T, Dh)
        return torch.where(pick, clean_context[None].to(context.dtype), view).view(B, H, T, Dh)

    return edit


def patch(
    loaded: LoadedModel,
    head: LMHead,
    clean: Readout,
    corrupt: Readout,
    position: str = "all",
    progress: Callable[[int], None] | None = None,
) -> PatchResult:
    import torch

    from .forward import Runner

    check_twins(clean, corrupt)
    positions = resolve_positions(clean, position)
    H = loaded.encoder.config.num_heads
    with torch.inference_mode():
        clean_runner = Runner(loaded, *clean.inputs(loaded))
        clean_inputs, clean_contexts = clean_runner.clean(record_context=True)
        clean_value = float(clean.value(head, clean_inputs[-1])[0])
        runner = Runner(loaded, *corrupt.inputs(loaded))
        inputs, _ = runner.clean()
        corrupt_value = float(corrupt.value(head, inputs[-1])[0])
        S = runner.S
        patched = np.zeros((runner.num_layers, H))
        for layer in range(runner.num_layers):
            x = inputs[layer].repeat(H, 1, 1)  # [H*S, T, D]
            edit = patch_edit(S, H, clean_contexts[layer], positions)
            patched[layer] = corrupt.value(head, runner.run(x, layer, {layer: edit})).cpu().numpy()
            if progress:
                progress(1)
    return PatchResult(clean_value, corrupt_value, patched, positions, position, clean, corrupt)
