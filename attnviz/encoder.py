"""A configurable Transformer (encoder, or decoder with `causal`) that returns the attention
probabilities it used.

Shapes: B batch, T tokens, D d_model, H query heads, G key/value heads (H for plain multi-head
attention, fewer with grouped-query attention), Dh head width, K kept layers.

The block is the textbook one (Vaswani et al. 2017; BERT): per layer, multi-head self-attention
softmax(Q K^T / sqrt(Dh) + mask) V, output projection, residual + LayerNorm, position-wise
feed-forward, residual + LayerNorm ("post"), or the same with the norm moved in front of each
sub-block and one final norm ("pre"). Decoders (GPT-2, the LLaMA family) are the same block with a
look-ahead mask, and the config's options: RMSNorm, rotary positions (RoPE) on queries and keys,
fewer key/value heads shared by groups of query heads, a gated feed-forward (SwiGLU), and biases
per projection.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .blockwise import LayerKeep, Masking, attend
from .config import EncoderConfig
from .numerics import check_layer
from .keep import KeepRequest

_ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),  # exact erf GELU (BERT "gelu")
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),  # "gelu_new" / "gelu_pytorch_tanh"
    "relu": F.relu,
    "silu": F.silu,
}


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """[length, dim] sin/cos positional table of the original Transformer (sin on even dims)."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : dim // 2]
    return table.float()


class RMSNorm(nn.RMSNorm):
    """weight * x / sqrt(mean(x^2) + eps), normalised in float32 whatever the weights' dtype, as
    LLaMA's reference code does (in bfloat16 the mean of squares alone loses most of its digits).
    Written out rather than torch's fused rms_norm: on CPU the fused kernel is 2-3x slower than
    these three element-wise ops (0.5 vs 1.3 ms at 512 x 576)."""

    offset = 0.0  # Gemma: (1 + weight), multiplied in float32 before the cast back, as its reference does

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.offset:
            return (normed * (self.offset + self.weight.float())).to(x.dtype)
        return self.weight * normed.to(x.dtype)


def make_norm(config: EncoderConfig, width: int) -> nn.Module:
    """LayerNorm, or RMSNorm (LLaMA: weight * x / sqrt(mean(x^2) + eps), no bias, no centring;
    Gemma: (1 + weight) * x / ...)."""
    if config.norm == "rms":
        norm = RMSNorm(width, eps=config.layer_norm_eps)
        norm.offset = float(config.norm_offset)
        return norm
    return nn.LayerNorm(width, eps=config.layer_norm_eps)


def rope_tables(
    config: EncoderConfig, T: int, device=None, base: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T, R] for rotary positions 0..T-1 over the first R = rotary_dim dims of a head,
    in the half-split layout of LLaMA checkpoints (frequency i drives dims i and i + R/2).
    `base`: the rotary base (default config.rope_base; Gemma's local layers have their own)."""
    R = config.rotary_dim or config.d_head
    base = config.rope_base if base is None else base
    inv_freq = 1.0 / (base ** (torch.arange(0, R, 2, dtype=torch.int64, device=device).float() / R))
    freqs = torch.arange(T, device=device, dtype=torch.float32)[:, None] * inv_freq[None, :]  # [T, R/2]
    emb = torch.cat((freqs, freqs), dim=-1)  # [T, R]
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, heads, T, Dh]: rotate its first R dims (R = cos.shape[-1]) pairwise (i, i + R/2)."""
    R = cos.shape[-1]
    rot, rest = x[..., :R], x[..., R:]
    half = R // 2
    rotated = torch.cat((-rot[..., half:], rot[..., :half]), dim=-1)  # rotate_half
    out = rot * cos + rotated * sin
    return torch.cat((out, rest), dim=-1) if rest.shape[-1] else out


class Embeddings(nn.Module):
    """Token (+ position) (+ token type) embeddings, optional LayerNorm, optional projection."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        width = config.embedding_size or config.d_model
        self.word = nn.Embedding(config.vocab_size, width)
        self.position = None
        if config.positional == "learned":
            self.position = nn.Embedding(config.max_len + config.position_offset, width)
        self.token_type = nn.Embedding(config.type_vocab_size, width) if config.type_vocab_size else None
        self.norm = make_norm(config, width) if config.embedding_layernorm else None
        self.project = nn.Linear(width, config.d_model) if width != config.d_model else None
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        T = input_ids.shape[1]
        x = self.word(input_ids)  # [B, T, E]
        if self.position is not None:
            positions = torch.arange(T, device=input_ids.device) + self.config.position_offset
            x = x + self.position(positions)[None]
        if self.config.embedding_scale is not None:  # Gemma: x sqrt(D), the factor rounded to x's dtype as HF does
            x = x * torch.tensor(self.config.embedding_scale, dtype=x.dtype)
        elif self.config.positional == "sinusoidal":
            # Made for the T positions of this text, not kept for all max_len: a function of the
            # position alone, so the rows are the same either way, and a table of max_len rows
            # (with the float64 temporaries that build it) cost 36 bytes a cell: 57 GB at 1e8 x 16.
            x = x + sinusoidal_table(T, x.shape[-1]).to(x.device, x.dtype)[None]
        if self.token_type is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            x = x + self.token_type(token_type_ids)
        if self.norm is not None:
            x = self.norm(x)
        x = self.dropout(x)
        if self.project is not None:
            x = self.project(x)  # [B, T, D]
        return x


class MultiHeadAttention(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        D, H, G, Dh = config.d_model, config.num_heads, config.kv_heads, config.d_head
        self.num_heads, self.kv_heads, self.d_head = H, G, Dh
        self.rope = config.positional == "rope"
        self.query = nn.Linear(D, H * Dh, bias=config.attention_bias)
        self.key = nn.Linear(D, G * Dh, bias=config.attention_bias)
        self.value = nn.Linear(D, G * Dh, bias=config.attention_bias)
        self.out = nn.Linear(H * Dh, D, bias=config.output_bias)
        self.dropout_p = config.dropout
        self.scale = config.attention_scale or Dh**-0.5  # Gemma: query_pre_attn_scalar ** -0.5
        # QK-norm (Qwen3, Gemma 3): RMSNorm over each head's Dh dims of q and k, before RoPE.
        self.query_norm = make_norm(config, Dh) if config.qk_norm else None
        self.key_norm = make_norm(config, Dh) if config.qk_norm else None
        # Interventions (attnviz.interventions): fn(context [B, H, T, Dh]) -> context, applied to
        # each head's output right before the output projection; None in every ordinary run.
        self.edit_context = None

    def split_heads(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, heads, self.d_head).transpose(1, 2)  # [B, heads, T, Dh]

    def forward(
        self,
        x: torch.Tensor,
        mask: Masking,
        need_weights: LayerKeep | bool,
        weights_out: torch.Tensor | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x [B, T, D]; mask: which keys each query may see (blockwise.Masking: padding, and in a
        decoder future keys and a sliding window); rope: cos, sin [T, R] or None.
        need_weights: what to keep of the probabilities (blockwise.LayerKeep; True: all heads,
        written into `weights_out` [B, H, T, T] when given; False: nothing).

        Returns the output [B, T, D] and the probabilities the LayerKeep collects (else None).
        """
        B, T, D = x.shape
        q = self.split_heads(self.query(x), self.num_heads)  # [B, H, T, Dh]
        k = self.split_heads(self.key(x), self.kv_heads)  # [B, G, T, Dh]
        v = self.split_heads(self.value(x), self.kv_heads)  # [B, G, T, Dh]
        if self.query_norm is not None:  # QK-norm, per head
            q, k = self.query_norm(q), self.key_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if need_weights is True:
            need_weights = LayerKeep(maps_out=weights_out, collect=weights_out is None)
        # Block-wise for long texts, the whole matrix for short ones (blockwise.py).
        context, probs = attend(
            q, k, v, self.scale, mask, need_weights or None, self.dropout_p, self.training
        )  # [B, H, T, Dh]
        if self.edit_context is not None:  # an intervention: ablate or patch heads (interventions/)
            context = self.edit_context(context)
        context = context.transpose(1, 2).reshape(B, T, self.num_heads * self.d_head)
        return self.out(context), probs


class FeedForward(nn.Module):
    """down(act(up x)), or gated (SwiGLU in LLaMA): down(act(gate x) * up x)."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        bias = config.ffn_bias
        self.gate = nn.Linear(config.d_model, config.d_ff, bias=bias) if config.ffn == "gated" else None
        self.up = nn.Linear(config.d_model, config.d_ff, bias=bias)
        self.down = nn.Linear(config.d_ff, config.d_model, bias=bias)
        self.act = _ACTIVATIONS[config.activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            return self.down(self.act(self.gate(x)) * self.up(x))
        return self.down(self.act(self.up(x)))


class EncoderLayer(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.pre_norm = config.norm_placement == "pre"
        self.attention = MultiHeadAttention(config)
        self.attention_norm = make_norm(config, config.d_model)
        self.ffn = FeedForward(config)
        self.ffn_norm = make_norm(config, config.d_model)
        # Sandwich norms (Gemma 2/3): each sub-block's output is normed again before the residual add.
        self.attention_post_norm = make_norm(config, config.d_model) if config.sandwich_norm else None
        self.ffn_post_norm = make_norm(config, config.d_model) if config.sandwich_norm else None
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        mask: Masking,
        need_weights: LayerKeep | bool,
        weights_out: torch.Tensor | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.pre_norm:
            attended, probs = self.attention(self.attention_norm(x), mask, need_weights, weights_out, rope)
            if self.attention_post_norm is not None:
                attended = self.attention_post_norm(attended)
            x = x + self.dropout(attended)
            fed = self.ffn(self.ffn_norm(x))
            if self.ffn_post_norm is not None:
                fed = self.ffn_post_norm(fed)
            x = x + self.dropout(fed)
        else:
            attended, probs = self.attention(x, mask, need_weights, weights_out, rope)
            x = self.attention_norm(x + self.dropout(attended))
            x = self.ffn_norm(x + self.dropout(self.ffn(x)))
        return x, probs


@dataclass
class EncoderOutput:
    attentions: torch.Tensor  # [B, K, H', T, T] for the kept layers, in order (H': the kept heads)
    layers: list[int]  # which layers `attentions` holds
    hidden: torch.Tensor | None  # [B, T, D] after the last layer; None if the pass stopped early
    values: torch.Tensor | None = None  # [B, K, T, G*Dh] value vectors x W_v + b_v of the kept layers (keep_values)
    heads: list[int] | None = None  # the heads `attentions` holds; None: all
    focus_rows: torch.Tensor | None = None  # [B, Lf, H, T] the focus token's row of every head (KeepRequest.focus)
    focus_layers: list[int] | None = None  # which layers `focus_rows` holds


class Encoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.final_norm = make_norm(config, config.d_model) if config.has_final_norm else None
        self.eval()  # dropout is for training; attnviz only ever looks

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        keep_layers: list[int] | None = None,
        keep_values: bool = False,
        keep: KeepRequest | None = None,
    ) -> EncoderOutput:
        """input_ids [B, T]; attention_mask [B, T], 1 for real tokens and 0 for padding.

        keep_layers: the layers whose attention to return, every head (default: all). Layers
        after the last kept one are not computed at all, and `hidden` is then None.
        keep: instead of keep_layers, what to keep (keep.KeepRequest: the maps of some heads, the
        focus token's row of every head, consumers fed block by block).
        keep_values: also return the kept layers' value vectors (for the norm view).
        """
        n = self.config.num_layers
        if keep is None:
            keep = KeepRequest.maps(range(n) if keep_layers is None else keep_layers)
        kept = list(keep.layers)
        if any(not 0 <= i < n for i in kept + list(keep.focus_layers)):
            raise IndexError(f"keep_layers {kept} out of range for {n} layers")
        heads = None if keep.heads is None else list(keep.heads)
        H = self.config.num_heads
        B, T = input_ids.shape
        x = self.embeddings(input_ids, token_type_ids)
        check_layer(None, x)  # inf/NaN: one error naming where it appeared (numerics.py)
        masks = self.maskings(attention_mask, T, x.dtype, x.device)
        rope = rope_tables(self.config, T, x.device) if self.config.positional == "rope" else None
        if rope is not None:
            rope = (rope[0].to(x.dtype), rope[1].to(x.dtype))
        # Sliding-window layers (Gemma 3: 5 of 6) may have their own rotary base.
        local_rope = rope
        if rope is not None and self.config.rope_local_base is not None:
            local_rope = tuple(
                t.to(x.dtype) for t in rope_tables(self.config, T, x.device, self.config.rope_local_base)
            )
        # One float32 buffer for all kept maps, [K, B, H', T, T]: each layer's probabilities go
        # straight into its slot, so keeping K layers holds K maps and no more (stacking a list at
        # the end would briefly hold two copies). Returned as [B, K, H', T, T] (a strided view
        # when B > 1). With autograd on (softmax(out=) has no gradient) the maps are collected.
        grad = torch.is_grad_enabled()
        buffer = None if grad else x.new_empty((len(kept), B, keep.head_count(H), T, T), dtype=torch.float32)
        focus_rows = None
        if keep.focus is not None:
            focus_rows = x.new_zeros((len(keep.focus_layers), B, H, T), dtype=torch.float32)
        collected, values = [], []
        last = keep.last_layer

        def output(hidden):
            return EncoderOutput(
                _attentions(buffer, collected, B, T),
                kept,
                hidden,
                _values(values, keep_values),
                heads,
                None if focus_rows is None else focus_rows.transpose(0, 1),
                list(keep.focus_layers) if focus_rows is not None else None,
            )

        for i, layer in enumerate(self.layers):
            if i > last:
                return output(None)
            if keep_values and i in kept:
                # What this layer's attention reads (LayerNormed first in pre-LN), through W_v + b_v.
                seen = layer.attention_norm(x) if layer.pre_norm else x
                values.append(layer.attention.value(seen))  # [B, T, G*Dh]
            plan = False
            if keep.probabilities_needed(i):
                plan = LayerKeep(
                    layer=i,
                    heads=heads if i in kept else [],
                    maps_out=buffer[kept.index(i)] if buffer is not None and i in kept else None,
                    focus=keep.focus if i in keep.focus_layers else None,
                    focus_out=focus_rows[keep.focus_layers.index(i)]
                    if focus_rows is not None and i in keep.focus_layers
                    else None,
                    consumers=list(keep.consumers),
                    collect=grad and i in kept,
                )
            x, probs = layer(x, masks[i], need_weights=plan, rope=local_rope if self.config.is_local(i) else rope)
            check_layer(i, x, probs)  # inf/NaN: one error naming this layer (numerics.py)
            if buffer is None and probs is not None:
                collected.append(probs)
            for consumer in keep.consumers:
                if i in consumer.layers:
                    consumer.layer_done(i)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return output(x)

    def maskings(self, attention_mask: torch.Tensor | None, T: int, dtype, device) -> list[Masking]:
        """Per layer, which keys each query may see: padding, a decoder's look-ahead mask, and in
        local layers the sliding window. Layers of one kind share one Masking (and so the one
        whole-matrix mask a short text builds)."""
        padding = None if attention_mask is None else attention_mask.to(torch.bool)  # [B, T]
        config = self.config
        full = Masking(padding, config.causal, None, T, dtype, device)
        local = None
        if config.sliding_window is not None:
            local = Masking(padding, config.causal, config.sliding_window, T, dtype, device)
        return [local if local is not None and config.is_local(i) else full for i in range(config.num_layers)]


def _attentions(buffer: torch.Tensor | None, collected: list[torch.Tensor], B: int, T: int) -> torch.Tensor:
    if buffer is not None and len(buffer):
        return buffer.transpose(0, 1)  # [B, K, H', T, T]
    if collected:
        return torch.stack(collected, dim=1).float()  # [B, K, H', T, T]
    return torch.zeros(B, 0, 0, T, T)


def _values(values: list[torch.Tensor], keep: bool) -> torch.Tensor | None:
    return torch.stack(values, dim=1) if keep and values else None  # [B, K, T, G*Dh]


# Random initialisation --------------------------------------------------------------------------

# Std of the attention logits QK^T/sqrt(Dh) that the random Q/K weights aim for. With the usual
# small init (std 0.02) logits are ~0 and every row is a flat 1/T: nothing to see. At std 3 the
# softmax is peaked, so each random head has a few clear favourites per token, visibly different
# from head to head, while rows still spread some weight (std 10 would be one-hot).
RANDOM_LOGIT_STD = 3.0


def init_random(model: Encoder, seed: int) -> Encoder:
    """Fill `model` with weights that depend only on its config, the seed and each parameter's name.

    Every parameter draws from its own NumPy PCG64 stream seeded with (seed, crc32(name)), so
    values are identical on every run and machine (no dependence on torch's RNG, thread count or
    CPU features), and adding a layer leaves the existing layers' weights unchanged.

    Scheme (inputs to every sub-block are LayerNormed, so unit variance per feature):
      embeddings ~ N(0, 1); query/key weights ~ N(0, RANDOM_LOGIT_STD / D) so the logits have std
      RANDOM_LOGIT_STD (var of q.k/sqrt(Dh) is (D * sigma^2)^2); value, output and feed-forward
      weights ~ N(0, 1 / fan_in) to keep activations at unit scale (the gate of a gated feed-forward
      too); biases 0; LayerNorm and RMSNorm weights 1, biases 0.
    """
    D = model.config.d_model
    with torch.no_grad():
        for name, param in model.named_parameters():
            owner, leaf = model.get_submodule(name.rsplit(".", 1)[0]), name.rsplit(".", 1)[-1]
            if isinstance(owner, (nn.LayerNorm, nn.RMSNorm)):
                param.fill_(1.0 if leaf == "weight" else 0.0)
                continue
            if leaf == "bias":
                param.zero_()
                continue
            if isinstance(owner, nn.Embedding):
                std = 1.0
            elif name.endswith(("query.weight", "key.weight")):
                std = math.sqrt(RANDOM_LOGIT_STD / D)
            else:
                std = 1.0 / math.sqrt(param.shape[1])
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            values = rng.standard_normal(tuple(param.shape), dtype=np.float32)
            values *= np.float32(std)  # in place: one temporary the size of the parameter, not two
            param.copy_(torch.from_numpy(values))
    return model
