"""Gemma 3 (text) config.json mapped onto attnviz's EncoderConfig.

Gemma 3 is LLaMA's pre-RMSNorm decoder with these differences, each a config field:
  * RMSNorm scales by (1 + weight) (the checkpoint stores weight - 1): norm_offset 1.0;
  * four norms per block, before and after attention and before and after the feed-forward:
    sandwich_norm (Hugging Face calls the norm after attention `post_attention_layernorm`, which
    in LLaMA is the one before the feed-forward);
  * RMSNorm over each head's queries and keys before RoPE: qk_norm;
  * token embeddings x sqrt(d_model): embedding_scale;
  * logits scaled by query_pre_attn_scalar ** -0.5 instead of Dh ** -0.5: attention_scale;
  * sliding-window layers (window 512 in the 270M) between global ones (every sixth):
    sliding_window and layer_types, with their own rotary base (10,000; global 1,000,000):
    rope_local_base;
  * a gated feed-forward with tanh-approximated GELU, one key/value head per four query heads.
Logit soft-capping of the attention (Gemma 2) and bidirectional attention are refused; the final
logits' soft-capping does not touch attention (attnviz computes no logits) and is ignored.
"""

from __future__ import annotations

from ..config import EncoderConfig
from ..errors import AttnvizError
from .foreign import LLAMA_BLOCK, checked_layer_types, decoder_activation, decoder_eps, decoder_flag, positive_int

# Gemma3TextConfig's defaults (a gemma3 config.json's text_config may list only what differs).
DEFAULTS = {
    "vocab_size": 262_208,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "max_position_embeddings": 131_072,
    "query_pre_attn_scalar": 256,
    "sliding_window": 4096,
}
GLOBAL_THETA, LOCAL_THETA = 1_000_000.0, 10_000.0


def gemma_text(data: dict) -> dict:
    """The text model's config: config.json itself (gemma3_text), or its text_config (gemma3)."""
    if data.get("model_type") == "gemma3":
        text = data.get("text_config") or {}
        if not isinstance(text, dict):
            return {"model_type": "gemma3", "text_config": text}
        return {**text, "model_type": "gemma3"}
    return data


def gemma_config(data: dict, label: str) -> EncoderConfig:

    data = gemma_text(data)
    if not isinstance(data.get("text_config", {}), dict):
        raise AttnvizError(f"{label}: text_config must be an object")
    for key in ("attn_logit_softcapping",):
        if data.get(key) is not None:
            raise AttnvizError(
                f"{label}: {key} {data[key]!r} is not supported (soft-capped attention logits); "
                "attnviz reads Gemma 3 with attn_logit_softcapping null"
            )
    if data.get("use_bidirectional_attention"):
        raise AttnvizError(f"{label}: use_bidirectional_attention is not supported; attnviz reads causal Gemma 3")
    get = {k: positive_int(data, k, label, v) for k, v in DEFAULTS.items()}
    heads, kv = get["num_attention_heads"], get["num_key_value_heads"]
    if heads % kv:
        raise AttnvizError(f"{label}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv})")
    layers = get["num_hidden_layers"]
    types = checked_layer_types(data, label, layers)
    if types is None:
        pattern = positive_int(data, "sliding_window_pattern", label, 6)
        types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(layers)]
    global_base, local_base = _gemma_rope(data, label)
    head_dim, d_model = get["head_dim"], get["hidden_size"]
    scale = float(get["query_pre_attn_scalar"]) ** -0.5
    attention_bias = decoder_flag(data, "attention_bias", label)
    return EncoderConfig(
        **LLAMA_BLOCK,
        vocab_size=get["vocab_size"],
        num_layers=layers,
        num_heads=heads,
        d_model=d_model,
        d_ff=get["intermediate_size"],
        max_len=get["max_position_embeddings"],
        activation=decoder_activation(data, "hidden_activation", "gelu_pytorch_tanh", label),
        layer_norm_eps=decoder_eps(data, "rms_norm_eps", 1e-6, label),
        num_kv_heads=kv if kv != heads else None,
        head_dim=head_dim if head_dim * heads != d_model else None,
        rope_base=global_base,
        attention_bias=attention_bias,
        output_bias=attention_bias,
        ffn_bias=False,
        qk_norm=True,
        norm_offset=1.0,
        sandwich_norm=True,
        embedding_scale=d_model**0.5,
        attention_scale=None if scale == head_dim**-0.5 else scale,
        rope_local_base=None if local_base == global_base else local_base,
        sliding_window=get["sliding_window"] if "sliding_attention" in types else None,
        layer_types=tuple(types) if "sliding_attention" in types else None,
        extra={"model_type": data.get("model_type", "gemma3_text")},
    )


def _gemma_rope(data: dict, label: str) -> tuple[float, float]:
    """(global, local) rotary bases; only unscaled RoPE is implemented."""
    params = data.get("rope_parameters")
    if params is None:  # older config.json: rope_theta, rope_local_base_freq, rope_scaling
        params = {
            "full_attention": {"rope_theta": data.get("rope_theta", GLOBAL_THETA), **(data.get("rope_scaling") or {})},
            "sliding_attention": {"rope_theta": data.get("rope_local_base_freq", LOCAL_THETA)},
        }
    if not isinstance(params, dict):
        raise AttnvizError(f"{label}: rope_parameters must be an object, got {params!r}")
    bases = []
    for kind, default in (("full_attention", GLOBAL_THETA), ("sliding_attention", LOCAL_THETA)):
        rope = params.get(kind) or {}
        if not isinstance(rope, dict):
            raise AttnvizError(f"{label}: rope_parameters.{kind} must be an object, got {rope!r}")
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise AttnvizError(
                f"{label}: RoPE type {rope_type!r} ({kind} layers) is not supported; "
                "supported: default (rotary positions without scaling)"
            )
        base = rope.get("rope_theta", default)
        if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 0:
            raise AttnvizError(f"{label}: rope_theta of {kind} layers must be a positive number, got {base!r}")
        bases.append(float(base))
    return bases[0], bases[1]
