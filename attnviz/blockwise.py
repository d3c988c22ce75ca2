"""Scaled dot-product attention that keeps only what is asked, in blocks of query rows for long texts.

Shapes: B batch, H query heads, G key/value heads (H // G query heads share one), T tokens, Dh
head width, R query rows of one block, W keys of one block.

Short texts (one layer's H x T x T scores fit in BLOCK_BYTES) run the whole-matrix computation
exactly as before, so their numbers stay bit for bit what they were. Longer texts run block by
block: query rows r0..r1 against the keys they may see (in a decoder keys 0..r1-1, in a local
layer only the window), so one layer never holds H x T x T floats and a decoder skips the masked
half of the work. Each block's probabilities go where the `LayerKeep` says (kept maps, the focus
row, consumers) and are dropped; the attention output is written per block.

Masks are built per block from a `Masking` (padding, look-ahead, sliding window): no T x T float
mask exists on the block path. Masked cells get the lowest float before the softmax, so their
probability is exactly 0 and the other cells' are the same as with an additive mask (x + 0 == x).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .sizes import BLOCK_BYTES  # noqa: F401  (scores of one block stay under it: 64 MB, 227 rows at 9 x 8,192)


def block_rows(batch: int, heads: int, tokens: int, block_bytes: int | None = None) -> int:
    """Query rows per block so that batch x heads x rows x tokens float32 scores fit in block_bytes."""
    limit = BLOCK_BYTES if block_bytes is None else block_bytes
    return max(1, limit // (4 * batch * heads * max(tokens, 1)))


class Masking:
    """Which keys each query may see: padding (keys after a text's end), the look-ahead mask of a
    decoder, and a sliding window (query i sees keys i - window < j <= i, HF semantics)."""

    def __init__(self, padding: torch.Tensor | None, causal: bool, window: int | None, T: int, dtype, device) -> None:
        self.padding = None if padding is None else padding.to(torch.bool)  # [B, T], True: a real token
        self.causal = causal
        self.window = window if causal and window is not None and window < T else None
        self.T, self.dtype, self.device = T, dtype, device
        self._additive: torch.Tensor | None = None
        self._built = False

    def repeated(self, R: int) -> "Masking":
        """The same masks for a batch of R copies of every sequence (repeat-major, as
        torch.Tensor.repeat lays them out): interventions run R edited copies at once."""
        if self.padding is None or R == 1:
            return self
        return Masking(self.padding.repeat(R, 1), self.causal, self.window, self.T, self.dtype, self.device)

    @property
    def trivial(self) -> bool:
        return self.padding is None and not self.causal

    def additive(self) -> torch.Tensor | None:
        """The whole-matrix mask added to the scores (the short-text path): 0 where a query may
        look, the most negative float where it may not; padded keys [B, 1, 1, T], with a look-ahead
        mask [B or 1, 1, T, T]. Built once per pass and shared by the layers that use it."""
        if self._built:
            return self._additive
        lowest = torch.finfo(self.dtype).min
        T, mask = self.T, None
        if self.padding is not None:
            mask = (1.0 - self.padding[:, None, None, :].to(self.dtype)) * lowest  # [B, 1, 1, T]
        if self.causal:
            hidden = torch.ones(T, T, dtype=torch.bool, device=self.device).triu(1)
            if self.window is not None:
                hidden |= torch.ones(T, T, dtype=torch.bool, device=self.device).tril(-self.window)
            causal = torch.zeros(T, T, dtype=self.dtype, device=self.device).masked_fill(hidden, lowest)[None, None]
            # A padded key in the past and the future mask both at the lowest float would overflow
            # to -inf when added; clamp keeps it finite (its exp is 0 either way).
            mask = causal if mask is None else (mask + causal).clamp(min=lowest)  # [B, 1, T, T]
        self._additive, self._built = mask, True
        return mask

    def key_range(self, r0: int, r1: int) -> tuple[int, int]:
        """Keys k0..k1-1 that queries r0..r1-1 may see at all (a decoder sees nothing after r1-1)."""
        if not self.causal:
            return 0, self.T
        k0 = 0 if self.window is None else max(0, r0 - self.window + 1)
        return k0, r1

    def block(self, r0: int, r1: int, k0: int, k1: int) -> torch.Tensor | None:
        """[B or 1, 1, R, W] bool, True where query r0+i may not see key k0+j; None: all visible."""
        hidden = None
        if self.causal:
            i = torch.arange(r0, r1, device=self.device)[:, None]
            j = torch.arange(k0, k1, device=self.device)[None, :]
            hidden = j > i
            if self.window is not None:
                hidden |= j <= i - self.window
            hidden = hidden[None, None]  # [1, 1, R, W]
        if self.padding is not None:
            pad = ~self.padding[:, None, None, k0:k1]  # [B, 1, 1, W]
            hidden = pad if hidden is None else hidden | pad
        return hidden


@dataclass
class LayerKeep:
    """What one layer's attention hands back besides its output (see keep.KeepRequest)."""

    layer: int = 0
    heads: list[int] | None = None  # heads of `maps_out`; None: all
    maps_out: torch.Tensor | None = None  # [B, H', T, T] float32 slot for the kept maps, or None
    focus: int | None = None  # query row whose weights go to focus_out
    focus_out: torch.Tensor | None = None  # [B, H, T] float32
    consumers: list = field(default_factory=list)
    collect: bool = False  # return the kept heads' probabilities (no slot: autograd or half precision)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    masking: Masking,
    keep: LayerKeep | None,
    dropout: float = 0.0,
    training: bool = False,
    block_bytes: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """softmax(q k^T * scale + mask) v for q [B, H, T, Dh], k and v [B, G, T, Dh].

    Returns the per-head context [B, H, T, Dh] and the kept heads' probabilities [B, H', T, T]
    (float32) when `keep.collect`, or on the whole-matrix path when every head is kept. Everything else `keep` asks for is written into its
    slots. keep None: nobody reads the probabilities, the fused kernel may skip them.
    """
    B, H, T, _ = q.shape
    if block_rows(B, H, T, block_bytes) >= T:
        return _whole(q, k, v, scale, masking, keep, dropout, training)
    return _blocks(q, k, v, scale, masking, keep, dropout, training, block_rows(B, H, T, block_bytes))


def _whole(q, k, v, scale, masking, keep, dropout, training):
    """The whole [B, H, T, T] matrix at once: the original computation, bit for bit."""
    B, H, T, Dh = q.shape
    G = k.shape[1]
    group = H // G  # grouped-query attention: query head h reads key/value head h // group
    mask = masking.additive()
    dropout = dropout if training else 0.0
    # Even when nobody reads this layer's probabilities they are computed the same way: the fused
    # kernel's output differs in the last bits, and the layers above would then show other numbers
    # than a run that keeps every layer (`show -l 1` must equal layer 1 of `show`). A short text's
    # layer costs little; long texts (the block path) do use the fused kernel.
    keep = keep if keep is not None else LayerKeep(heads=[])
    # Scale q [B, H, T, Dh] rather than the scores [B, H, T, T]: same logits, T/Dh times less work
    # on long inputs. When every head's map is kept the scores are computed in that slot and
    # normalised there (softmax's row-wise kernel is safe in place; the parity tests against
    # transformers guard it), so no [B, H, T, T] temporary is allocated. With G < H key/value
    # heads, the `group` query heads of each key head are stacked along the rows,
    # q [B, G, group*T, Dh]: one matmul per key head against keys never copied H/G times.
    slot = keep.maps_out if keep.heads is None else None
    if q.dtype != torch.float32:
        # Half precision: the logits and the softmax in float32 (bfloat16 keeps 3 digits, a logit
        # of 20 would be off by 0.1), and those float32 probabilities are returned.
        qg = q.float().reshape(B, G, group * T, Dh)
        scores = (torch.matmul(qg, k.float().transpose(-1, -2)) * scale).view(B, H, T, T)
        if mask is not None:
            scores += mask.float()
        probs = scores.softmax(dim=-1)  # [B, H, T, T] float32
        attended = F.dropout(probs, dropout, training).to(v.dtype)
        if slot is not None:
            slot.copy_(probs)
    else:
        qg = (q * scale).reshape(B, G, group * T, Dh)
        out = slot.view(B, G, group * T, T) if slot is not None else None
        scores = torch.matmul(qg, k.transpose(-1, -2), out=out).view(B, H, T, T)
        if mask is not None:
            scores += mask
        probs = scores.softmax(dim=-1) if slot is None else torch.softmax(scores, dim=-1, out=scores)
        attended = F.dropout(probs, dropout, training)
    context = (attended.view(B, G, group * T, T) @ v).view(B, H, T, Dh)  # [B, H, T, Dh]
    _hand_out(keep, probs, 0, 0, slot is not None)
    if keep.heads is None:
        return context, probs  # as before: every head's probabilities (in the slot when there is one)
    return context, (probs[:, keep.heads] if keep.collect else None)


def _blocks(q, k, v, scale, masking, keep, dropout, training, rows):
    """Query rows in blocks of `rows`: scores [B, H, R, W] per block, never [B, H, T, T]."""
    B, H, T, Dh = q.shape
    G = k.shape[1]
    group = H // G
    dropout = dropout if training else 0.0
    context = q.new_empty((B, H, T, Dh), dtype=v.dtype)
    if keep is None and masking.trivial:
        context = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, enable_gqa=group > 1)
        return context, None
    if keep is None and masking.padding is None and masking.window is None:
        # A plain decoder: the fused kernel's own look-ahead mask, no mask tensor at all.
        context = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True, enable_gqa=group > 1)
        return context, None
    lowest = torch.finfo(torch.float32).min
    collected = None
    if keep is not None and keep.collect:
        collected = q.new_zeros((B, H if keep.heads is None else len(keep.heads), T, T), dtype=torch.float32)
    kt = k.transpose(-1, -2)  # [B, G, Dh, T]
    half = q.dtype != torch.float32
    for r0 in range(0, T, rows):
        r1 = min(T, r0 + rows)
        k0, k1 = masking.key_range(r0, r1)
        R, W = r1 - r0, k1 - k0
        hidden = masking.block(r0, r1, k0, k1)  # [B or 1, 1, R, W] or None
        qb = q[:, :, r0:r1]  # [B, H, R, Dh]
        if keep is None:
            allowed = None if hidden is None else ~hidden
            context[:, :, r0:r1] = F.scaled_dot_product_attention(
                qb, k[:, :, k0:k1], v[:, :, k0:k1], attn_mask=allowed, dropout_p=dropout, enable_gqa=group > 1
            )
            continue
        if half:
            qg = qb.float().reshape(B, G, group * R, Dh)
            scores = (torch.matmul(qg, kt[..., k0:k1].float()) * scale).view(B, H, R, W)
        else:
            qg = (qb * scale).reshape(B, G, group * R, Dh)  # [B, G, group*R, Dh]
            scores = torch.matmul(qg, kt[..., k0:k1]).view(B, H, R, W)
        if hidden is not None:
            scores.masked_fill_(hidden, lowest)
        probs = torch.softmax(scores, dim=-1, out=scores)  # [B, H, R, W] float32
        attended = F.dropout(probs, dropout, training).to(v.dtype)
        block = (attended.reshape(B, G, group * R, W) @ v[:, :, k0:k1]).view(B, H, R, Dh)
        context[:, :, r0:r1] = block
        _hand_out(keep, probs, r0, k0, False)
        if collected is not None:
            collected[:, :, r0:r1, k0:k1] = probs if keep.heads is None else probs[:, keep.heads]
    return context, collected


def _hand_out(keep: LayerKeep, probs: torch.Tensor, r0: int, k0: int, in_slot: bool) -> None:
    """Copy what `keep` asks of probs [B, H, R, W] (query rows r0.., keys k0..) into its slots:
    the kept maps (zero outside the keys the block covers), the focus row, the consumers."""
    R, W = probs.shape[-2], probs.shape[-1]
    if keep.maps_out is not None and not in_slot:
        dest = keep.maps_out[:, :, r0 : r0 + R]  # [B, H', R, T]
        dest[..., :k0].zero_()
        dest[..., k0 + W :].zero_()
        dest[..., k0 : k0 + W] = probs if keep.heads is None else probs[:, keep.heads]
    if keep.focus is not None and keep.focus_out is not None and r0 <= keep.focus < r0 + R:
        keep.focus_out.zero_()
        keep.focus_out[..., k0 : k0 + W] = probs[:, :, keep.focus - r0]
    for consumer in keep.consumers:
        if keep.layer in consumer.layers:
            consumer.rows(keep.layer, r0, k0, probs)
