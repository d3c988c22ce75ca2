"""The encoder's configuration: a plain dataclass, validated on creation, free of torch.

Kept apart from `encoder.py` so the CLI, checkpoints and renderers can read and describe a
model without importing torch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .errors import AttnvizError

ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu")
POSITIONAL = ("sinusoidal", "learned", "rope", "none")
NORMS = ("layer", "rms")
FFNS = ("standard", "gated")
NORM_PLACEMENTS = ("post", "pre")
CONFIG_FORMAT_VERSION = 1
MAX_SIZE = 2**31 - 1  # the largest count or length a config may give (vocabulary, positions, window...)
# Precisions a model's weights may be loaded in (attention always comes back as float32).
DTYPES = ("float32", "bfloat16", "float16")
# What a run can return (analysis/views.py): the weights, rollout, or weights times value norms.
VIEWS = ("attention", "rollout", "norm", "value-zeroing")  # value zeroing: interventions/value_zeroing.py
LAYER_TYPES = ("full_attention", "sliding_attention")


@dataclass(frozen=True)
class EncoderConfig:
    """Shape and behaviour of an attnviz encoder.

    The defaults describe the small random model of `attnviz show`. BERT-family checkpoints map
    onto it by setting the family-specific fields (embedding LayerNorm, token types, position
    offset, activation variant).
    """

    vocab_size: int = 34394
    num_layers: int = 2
    num_heads: int = 4
    d_model: int = 64
    d_ff: int = 256
    max_len: int = 256
    activation: str = "gelu"
    dropout: float = 0.1  # only active in training mode; attnviz always runs eval()
    norm_placement: str = "post"  # "post": x = LN(x + f(x)) as in the paper and BERT; "pre": x + f(LN(x))
    positional: str = "sinusoidal"
    layer_norm_eps: float = 1e-12
    type_vocab_size: int = 0  # 0: no token-type (segment) embeddings
    embedding_layernorm: bool = True
    position_offset: int = 0  # RoBERTa counts positions from padding_idx + 1
    embedding_size: int | None = None  # ELECTRA: embeddings narrower than d_model, then projected
    pad_token_id: int = 0
    # Decoder features (GPT-2, LLaMA family). The defaults describe a BERT-style encoder.
    causal: bool = False  # look-ahead mask: token i attends to keys 0..i only
    norm: str = "layer"  # "layer": LayerNorm; "rms": RMSNorm (LLaMA), eps = layer_norm_eps
    num_kv_heads: int | None = None  # grouped-query attention: K/V heads shared by groups of query heads
    head_dim: int | None = None  # per-head width when not d_model / num_heads (some LLaMA-shaped models)
    ffn: str = "standard"  # "standard": down(act(up x)); "gated": down(act(gate x) * up x) (SwiGLU)
    rope_base: float = 10000.0  # positional="rope": rotary base (theta)
    rotary_dim: int | None = None  # rotary dimensions per head (None: all of head_dim), half-split layout
    attention_bias: bool = True  # biases on the Q/K/V projections (BERT, GPT-2, Qwen2; not LLaMA)
    output_bias: bool = True  # bias on the attention output projection (not LLaMA, not Qwen2)
    ffn_bias: bool = True  # biases in the feed-forward (not LLaMA)
    final_norm: bool | None = None  # a norm after the last layer (None: only with pre-LN)
    # Gemma 3 / Qwen3 features (checkpoints/decoders.py, gemma.py). Defaults: off.
    qk_norm: bool = False  # RMSNorm over each head's query and key (weights [Dh]), before RoPE
    norm_offset: float = 0.0  # RMSNorm scales by (norm_offset + weight): Gemma stores w - 1 (offset 1.0)
    sandwich_norm: bool = False  # norms after attention and after the feed-forward too (Gemma 2/3)
    embedding_scale: float | None = None  # token embeddings multiplied by this (Gemma: sqrt(d_model))
    attention_scale: float | None = None  # logits' scale when not Dh ** -0.5 (Gemma: query_pre_attn_scalar ** -0.5)
    rope_local_base: float | None = None  # rotary base of local (sliding-window) layers when not rope_base
    # Keys j a query i may see in a local layer: i - sliding_window < j <= i (HF semantics).
    sliding_window: int | None = None
    layer_types: tuple[str, ...] | None = None  # per layer "sliding_attention" or "full_attention" (HF names);
    # None with sliding_window set: every layer is local (Mistral)
    extra: dict = field(default_factory=dict, compare=False)  # free-form provenance, not validated

    def __post_init__(self) -> None:
        for name in ("vocab_size", "num_layers", "num_heads", "d_model", "d_ff", "max_len"):
            _size(name, getattr(self, name))
        if self.head_dim is None and self.d_model % self.num_heads:
            raise AttnvizError(
                f"invalid config: d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})"
            )
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("positional", self.positional, POSITIONAL)
        _choice("norm_placement", self.norm_placement, NORM_PLACEMENTS)
        _choice("norm", self.norm, NORMS)
        _choice("ffn", self.ffn, FFNS)
        for name in ("num_kv_heads", "head_dim", "rotary_dim"):
            if getattr(self, name) is not None:
                _size(name, getattr(self, name))
        if self.num_kv_heads is not None and self.num_heads % self.num_kv_heads:
            raise AttnvizError(
                f"invalid config: num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
            )
        if self.rotary_dim is not None and (self.rotary_dim > self.d_head or self.rotary_dim % 2):
            raise AttnvizError(
                f"invalid config: rotary_dim ({self.rotary_dim}) must be even and at most "
                f"the head width ({self.d_head})"
            )
        if self.positional == "rope" and self.rotary_dim is None and self.d_head % 2:
            raise AttnvizError(
                f"invalid config: rotary positions turn pairs of dimensions, so the head width "
                f"d_model / num_heads ({self.d_model} / {self.num_heads} = {self.d_head}) must be even"
            )
        if not finite_positive(self.rope_base):
            raise AttnvizError(f"invalid config: rope_base must be a positive finite number, got {self.rope_base!r}")
        for name in ("causal", "attention_bias", "output_bias", "ffn_bias", "qk_norm", "sandwich_norm"):
            if not isinstance(getattr(self, name), bool):
                raise AttnvizError(f"invalid config: {name} must be true or false, got {getattr(self, name)!r}")
        if not (_is_number(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise AttnvizError(f"invalid config: dropout must be in [0, 1), got {self.dropout!r}")
        # Finite too: an infinite epsilon (1e999 or Infinity in a config.json, inf in a GGUF) makes
        # every normalised vector 0 and every head uniform, silently.
        if not finite_positive(self.layer_norm_eps):
            raise AttnvizError(
                f"invalid config: layer_norm_eps must be a positive finite number, got {self.layer_norm_eps!r}"
            )
        for name in ("type_vocab_size", "position_offset", "pad_token_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise AttnvizError(f"invalid config: {name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.embedding_layernorm, bool):
            raise AttnvizError(
                f"invalid config: embedding_layernorm must be true or false, got {self.embedding_layernorm!r}"
            )
        if self.final_norm is not None and not isinstance(self.final_norm, bool):
            raise AttnvizError(f"invalid config: final_norm must be true, false or null, got {self.final_norm!r}")
        if self.embedding_size is not None and (
            not isinstance(self.embedding_size, int)
            or isinstance(self.embedding_size, bool)
            or self.embedding_size <= 0
        ):
            raise AttnvizError(
                f"invalid config: embedding_size must be a positive integer, got {self.embedding_size!r}"
            )
        self._check_windows()
        self._check_gemma_fields()

    def _check_gemma_fields(self) -> None:
        if not (_is_number(self.norm_offset) and self.norm_offset >= 0):
            raise AttnvizError(f"invalid config: norm_offset must be a non-negative number, got {self.norm_offset!r}")
        for name in ("embedding_scale", "attention_scale", "rope_local_base"):
            value = getattr(self, name)
            if value is not None and not finite_positive(value):
                raise AttnvizError(f"invalid config: {name} must be a positive finite number, got {value!r}")

    def is_local(self, layer: int) -> bool:
        """Whether `layer` attends within the sliding window only (see sliding_window)."""
        if self.sliding_window is None:
            return False
        return self.layer_types is None or self.layer_types[layer] == "sliding_attention"

    @property
    def d_head(self) -> int:
        return self.head_dim or self.d_model // self.num_heads

    def _check_windows(self) -> None:
        if self.sliding_window is not None:
            _size("sliding_window", self.sliding_window)
        if self.layer_types is None:
            return
        types = self.layer_types
        if not isinstance(types, (list, tuple)) or len(types) != self.num_layers:
            raise AttnvizError(
                f"invalid config: layer_types must be a list of {self.num_layers} layer types, got {str(types)[:60]}"
            )
        for kind in types:
            if kind not in LAYER_TYPES:
                raise AttnvizError(
                    f"invalid config: layer_types holds {str(kind)[:40]!r}; each must be one of {', '.join(LAYER_TYPES)}"
                )
        object.__setattr__(self, "layer_types", tuple(types))  # a JSON list, kept as a tuple

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def has_final_norm(self) -> bool:
        return self.norm_placement == "pre" if self.final_norm is None else self.final_norm

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if not data["extra"]:
            del data["extra"]
        return data

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "EncoderConfig":
        """Build from a dict, refusing unknown keys (a typo must not silently become a default)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - {"attnviz_format"})  # a native config.json as it is
        if unknown:
            raise AttnvizError(f"{source}: unknown config key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def describe(self) -> str:
        def plural(n: int, word: str) -> str:
            return f"{n} {word}{'' if n == 1 else 's'}"

        shape = f"{plural(self.num_layers, 'layer')} x {plural(self.num_heads, 'head')} x d_model {self.d_model}"
        if self.num_kv_heads and self.num_kv_heads != self.num_heads:
            shape += f" ({self.num_kv_heads} KV heads)"
        shape += " · causal" if self.causal else ""
        if self.sliding_window is not None:  # which layers see only the window (Gemma 3: 5 of every 6)
            full = [str(i) for i in range(self.num_layers) if not self.is_local(i)]
            shape += f" · window {self.sliding_window}" + (f" (global layers {', '.join(full)})" if full else "")
        return shape


def _size(name: str, value) -> None:
    """A count or length: a positive integer that torch can index (below 2**63; past it torch fails
    with a Python message). Sizes that fit int64 but not memory are check_model_size's to refuse,
    naming the flag or key; config.json readers bound them by MAX_SIZE (foreign.positive_int)."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise AttnvizError(f"invalid config: {name} must be a positive integer, got {value!r}")
    if value >= 2**63:
        # bit_length, not the digits: str() of a huge int is slow and refused past 4,300 digits
        raise AttnvizError(f"invalid config: {name} is about 2**{value.bit_length() - 1}, larger than any model's")


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise AttnvizError(f"invalid config: {name} must be one of {', '.join(allowed)}, got {value!r}")


def _is_number(value) -> bool:
    """An int or float from a config file; not a bool (JSON true is no number), a string, or None."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def finite_positive(value) -> bool:
    """A number above 0 that is finite as a float (not inf, NaN, or an integer of 400 digits)."""
    try:
        return _is_number(value) and value > 0 and math.isfinite(float(value))
    except OverflowError:
        return False
