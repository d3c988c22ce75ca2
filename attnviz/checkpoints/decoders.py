"""Decoder folders (GPT-2 and the LLaMA family, as transformers writes them) mapped onto attnviz's
Encoder with `causal` set.

As for the BERT families (`families.py`): translate config.json into an EncoderConfig, build our
model, copy every tensor into the parameter it corresponds to with its shape asserted. Nothing
comes from `transformers`; the tables below are the whole mapping.

  GPT-2    pre-LN block, learned absolute positions, LayerNorm, GELU (tanh) feed-forward. Its
           linear maps are Conv1D weights stored [in, out], and Q, K, V are fused in one
           `c_attn` [D, 3D]: both undone on load (`weights.Part`).
  LLaMA    pre-RMSNorm block, rotary positions (half-split layout) on Q and K, grouped-query
           attention, gated feed-forward down(silu(gate x) * up x), no biases (attention_bias
           and mlp_bias add them).
  Mistral  LLaMA's block with a sliding window: query i sees keys i - window < j <= i in every
           layer (config sliding_window; blockwise.Masking builds the mask per block).
  Qwen2    LLaMA's block with biases on Q, K and V (not on the output projection); with
           use_sliding_window, the layers layer_types marks "sliding_attention" (by default
           those from max_window_layers on) attend within the window.
  Qwen3    LLaMA's block with RMSNorm over each head's queries and keys (QK-norm), no biases,
           head_dim given; sliding-window layers as layer_types says.
  Phi-3    LLaMA's block with Q, K, V fused in one `qkv_proj` [H*Dh + 2*G*Dh, D] and gate and up
           in one `gate_up_proj` [2*d_ff, D] (split on load, `weights.Part` rows); partial rotary
           dims (partial_rotary_factor); a sliding window over every layer.
  Gemma 3  see `gemma.py` (text model of gemma3_text and gemma3 folders).

A config this module does not implement exactly (another RoPE scaling, ALiBi, mixtures of
experts, attention without the 1/sqrt(d) scale...) is refused in one line that names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import EncoderConfig, finite_positive
from ..errors import AttnvizError
from ..result import ModelInfo
from ..tokenize import TextTokenizer
from .loaded import LoadedModel, build_encoder, place
from ..text import shown
from .foreign import (
    LLAMA_BLOCK,
    checked_layer_types,
    decoder_activation,
    decoder_eps,
    decoder_flag,
    find_prefix,
    positive_int,
)  # noqa: F401
from .weights import Part, WeightFile, fill_encoder, layer_of

# model_types people will try, with what attnviz lacks to read them exactly.
UNSUPPORTED = {
    "mixtral": "a mixture of experts",
    "qwen2_moe": "a mixture of experts",
    "qwen3_moe": "a mixture of experts",
    "dbrx": "a mixture of experts",
    "deepseek_v2": "a mixture of experts",
    "deepseek_v3": "a mixture of experts",
    "bloom": "ALiBi positions",
    "mpt": "ALiBi positions",
    "falcon": "parallel attention and ALiBi options",
    "gemma": "scaled embeddings and (1 + w) RMSNorm",
    "gemma2": "soft-capped attention logits",
    "olmo2": "Q/K RMSNorm over all heads at once",
    "phimoe": "a mixture of experts",
    "gpt_neox": "parallel residual and interleaved fused QKV",
    "gptj": "interleaved rotary positions",
}


@dataclass(frozen=True)
class Decoder:
    model_type: str
    prefix: str  # how the task model (…ForCausalLM) prefixes the base model's names
    embed: str  # the token embedding, relative to the prefix (anchors prefix detection)
    layers: str  # where the layers live
    ignored: tuple[str, ...] = ()  # per-layer keys some checkpoints carry that are functions of the config


LLAMA_IGNORED = ("self_attn.rotary_emb.inv_freq",)
DECODERS = {
    d.model_type: d
    for d in (
        Decoder("gpt2", "transformer.", "wte.weight", "h", ("attn.bias", "attn.masked_bias")),
        Decoder("llama", "model.", "embed_tokens.weight", "layers", LLAMA_IGNORED),
        Decoder("mistral", "model.", "embed_tokens.weight", "layers", LLAMA_IGNORED),
        Decoder("qwen2", "model.", "embed_tokens.weight", "layers", LLAMA_IGNORED),
        Decoder("qwen3", "model.", "embed_tokens.weight", "layers", LLAMA_IGNORED),
        Decoder("phi3", "model.", "embed_tokens.weight", "layers", LLAMA_IGNORED),
        Decoder("gemma3_text", "model.", "embed_tokens.weight", "layers"),
        Decoder("gemma3", "model.language_model.", "embed_tokens.weight", "layers"),
    )
}

# attnviz module -> the LLaMA family's, within one layer.
LLAMA_LAYER = {
    "attention.query": "self_attn.q_proj",
    "attention.key": "self_attn.k_proj",
    "attention.value": "self_attn.v_proj",
    "attention.out": "self_attn.o_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "ffn.gate": "mlp.gate_proj",
    "ffn.up": "mlp.up_proj",
    "ffn.down": "mlp.down_proj",
    "attention.query_norm": "self_attn.q_norm",  # QK-norm (Qwen3, Gemma 3)
    "attention.key_norm": "self_attn.k_norm",
}
# Gemma 3's four norms: its post_attention_layernorm is the norm after attention (sandwich_norm).
GEMMA_LAYER = {
    **LLAMA_LAYER,
    "attention_post_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "ffn_post_norm": "post_feedforward_layernorm",
}
GEMMA_TYPES = ("gemma3", "gemma3_text")
# GPT-2: attnviz module -> (stored module, chunk of c_attn or None, stored as Conv1D [in, out]).
GPT2_LAYER = {
    "attention.query": ("attn.c_attn", (0, 3), True),
    "attention.key": ("attn.c_attn", (1, 3), True),
    "attention.value": ("attn.c_attn", (2, 3), True),
    "attention.out": ("attn.c_proj", None, True),
    "attention_norm": ("ln_1", None, False),
    "ffn_norm": ("ln_2", None, False),
    "ffn.up": ("mlp.c_fc", None, True),
    "ffn.down": ("mlp.c_proj", None, True),
}


def unsupported_reason(model_type) -> str:
    """ " (a mixture of experts)" for the known architectures attnviz cannot read, else ""."""
    reason = UNSUPPORTED.get(model_type)
    return f" (it uses {reason})" if reason else ""


def decoder_config(data: dict, label: str) -> EncoderConfig:
    """config.json of a decoder family as an EncoderConfig (errors name the family's own keys)."""
    model_type = data["model_type"]
    if model_type == "gpt2":
        return _gpt2_config(data, label)
    if model_type in GEMMA_TYPES:
        from .gemma import gemma_config

        return gemma_config(data, label)
    return _llama_config(data, label, model_type)


def _gpt2_config(data: dict, label: str) -> EncoderConfig:
    for key, needed in (
        ("scale_attn_weights", True),
        ("scale_attn_by_inverse_layer_idx", False),
        ("add_cross_attention", False),
    ):
        if decoder_flag(data, key, label, default=needed) != needed:
            raise AttnvizError(
                f"{label}: {key} {shown(data[key])} is not supported; attnviz reads GPT-2 with {key} {str(needed).lower()}"
            )
    d_model = positive_int(data, "n_embd", label, 768)
    heads = positive_int(data, "n_head", label, 12)
    _divisible(d_model, heads, "n_embd", "n_head", label)
    d_ff = 4 * d_model if data.get("n_inner") is None else positive_int(data, "n_inner", label)
    return EncoderConfig(
        vocab_size=positive_int(data, "vocab_size", label, 50257),
        num_layers=positive_int(data, "n_layer", label, 12),
        num_heads=heads,
        d_model=d_model,
        d_ff=positive_int({"n_inner": d_ff}, "n_inner", label),
        max_len=positive_int(data, "n_positions", label, 1024),
        activation=decoder_activation(data, "activation_function", "gelu_new", label),
        dropout=0.0,
        norm_placement="pre",
        positional="learned",
        layer_norm_eps=decoder_eps(data, "layer_norm_epsilon", 1e-5, label),
        type_vocab_size=0,
        embedding_layernorm=False,
        pad_token_id=0,
        causal=True,
        final_norm=True,
        extra={"model_type": "gpt2"},
    )


def _llama_config(data: dict, label: str, model_type: str) -> EncoderConfig:
    d_model = positive_int(data, "hidden_size", label)
    heads = positive_int(data, "num_attention_heads", label)
    kv_heads = positive_int(data, "num_key_value_heads", label, heads)
    if heads % kv_heads:
        raise AttnvizError(
            f"{label}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})"
        )
    head_dim = data.get("head_dim")
    if head_dim is None:
        _divisible(d_model, heads, "hidden_size", "num_attention_heads", label)
    else:
        head_dim = positive_int(data, "head_dim", label)
    max_len = positive_int(data, "max_position_embeddings", label)
    layers = positive_int(data, "num_hidden_layers", label)
    if model_type in ("qwen3", "phi3"):
        window, layer_types = _window_layers(data, label, model_type)
    else:
        window, layer_types = _sliding_window(data, label, model_type, layers)
    rotary = None
    if model_type == "qwen2":
        qkv_bias, out_bias, ffn_bias = True, False, False
    elif model_type in ("mistral", "phi3"):
        qkv_bias = out_bias = ffn_bias = False
        if model_type == "phi3":
            rotary = _partial_rotary(data, label, head_dim or d_model // heads)
    elif model_type == "qwen3":
        qkv_bias = out_bias = decoder_flag(data, "attention_bias", label)
        ffn_bias = False
    else:
        qkv_bias = out_bias = decoder_flag(data, "attention_bias", label)
        ffn_bias = decoder_flag(data, "mlp_bias", label)
    return EncoderConfig(
        **LLAMA_BLOCK,
        vocab_size=positive_int(data, "vocab_size", label),
        num_layers=layers,
        num_heads=heads,
        d_model=d_model,
        d_ff=positive_int(data, "intermediate_size", label),
        max_len=max_len,
        activation=decoder_activation(data, "hidden_act", "silu", label),
        layer_norm_eps=decoder_eps(data, "rms_norm_eps", 1e-6, label),
        num_kv_heads=kv_heads if kv_heads != heads else None,
        head_dim=head_dim if head_dim is not None and head_dim * heads != d_model else None,
        rope_base=_rope_base(data, label),
        attention_bias=qkv_bias,
        output_bias=out_bias,
        ffn_bias=ffn_bias,
        rotary_dim=rotary,
        qk_norm=model_type == "qwen3",
        sliding_window=window,
        layer_types=layer_types,
        extra={"model_type": model_type},
    )


def _window_layers(data: dict, label: str, model_type: str) -> tuple[int | None, tuple[str, ...] | None]:
    """Qwen3: (window, layer_types) when use_sliding_window; Phi-3: (window, None), every layer local."""
    layers = positive_int(data, "num_hidden_layers", label)
    types = checked_layer_types(data, label, layers)
    if data.get("sliding_window") is None:
        return None, None
    window = positive_int(data, "sliding_window", label)
    if model_type == "phi3":
        return window, None
    if not decoder_flag(data, "use_sliding_window", label):
        return None, None
    if types is None:
        types = _from_max_window_layers(data, label, layers, layers)
    return (window, tuple(types)) if "sliding_attention" in types else (None, None)


def _partial_rotary(data: dict, label: str, head_dim: int) -> int | None:
    """Phi-3's rotary dims: head_dim x partial_rotary_factor (None: the whole head)."""
    rope = data.get("rope_parameters") or {}
    factor = (
        rope.get("partial_rotary_factor", data.get("partial_rotary_factor", 1.0)) if isinstance(rope, dict) else 1.0
    )
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= 1:
        raise AttnvizError(f"{label}: partial_rotary_factor must be in (0, 1], got {factor!r}")
    dims = int(head_dim * factor)
    return None if dims == head_dim else dims


def _rope_base(data: dict, label: str) -> float:
    """The rotary base; only the default RoPE (no scaling) is implemented."""
    # transformers 5 writes rope_parameters {"rope_type", "rope_theta"}; older configs rope_theta
    # at the top and rope_scaling (null, or {"type"/"rope_type": ...}).
    for key in ("rope_parameters", "rope_scaling"):
        if data.get(key) is not None and not isinstance(data[key], dict):  # [] or "" must not read as absent
            raise AttnvizError(f"{label}: {key} must be an object, got {shown(data[key])}")
    rope = data.get("rope_parameters") or data.get("rope_scaling") or {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind != "default":
        raise AttnvizError(
            f"{label}: RoPE type {kind!r} is not supported; supported: default (rotary positions without scaling)"
        )
    base = rope.get("rope_theta", data.get("rope_theta", 10000.0))
    if not finite_positive(base):
        raise AttnvizError(f"{label}: rope_theta must be a positive finite number, got {shown(base)}")
    return float(base)


def _from_max_window_layers(data: dict, label: str, layers: int, default: int) -> list[str]:
    """Layer types as transformers derives them without layer_types: local from max_window_layers on."""
    first = data.get("max_window_layers", default)
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise AttnvizError(f"{label}: max_window_layers must be a non-negative integer, got {str(first)[:40]}")
    return ["sliding_attention" if i >= first else "full_attention" for i in range(layers)]


def _sliding_window(data: dict, label: str, model_type: str, layers: int) -> tuple[int | None, tuple | None]:
    """(window, layer types) as transformers reads them: Mistral's window applies to every layer
    (layer types None); Qwen2's only with use_sliding_window, in the layers `layer_types` marks
    "sliding_attention" (written by transformers 5; else those from max_window_layers on)."""
    types = checked_layer_types(data, label, layers)
    if model_type == "qwen2":
        if not decoder_flag(data, "use_sliding_window", label) or data.get("sliding_window") is None:
            return None, None
        window = positive_int(data, "sliding_window", label)
        if types is None:
            types = _from_max_window_layers(data, label, layers, 28)
        return window, tuple(types)
    if model_type == "mistral" and data.get("sliding_window") is not None:
        return positive_int(data, "sliding_window", label), None
    return None, None


def weight_map(
    decoder: Decoder,
    names: list[str],
    weights: WeightFile,
    num_layers: int,
    label: str,
    config: EncoderConfig | None = None,
) -> dict[str, str | Part]:
    """attnviz state-dict name -> the checkpoint's key (or the Part of it), for every name of our
    (possibly truncated) encoder.

    Refuses keys inside the model's part of the checkpoint that nothing maps (a layer beyond
    config.json's count, a parameter this family does not have): they mean the config is not
    the model's. Keys of real layers beyond a truncated encoder are left unread. The LM head
    (lm_head.*) is outside that part and ignored.
    """
    prefix = find_prefix(weights, decoder.embed, decoder.prefix, decoder.model_type)
    layers = prefix + decoder.layers
    mapping: dict[str, str | Part] = {}
    for name in names:
        module, leaf = name.rsplit(".", 1)
        if module.startswith("layers."):
            _, index, local = module.split(".", 2)
            if decoder.model_type == "gpt2":
                theirs, chunk, conv = GPT2_LAYER[local]
                mapping[name] = Part(
                    f"{layers}.{index}.{theirs}.{leaf}", transpose=conv and leaf == "weight", chunk=chunk
                )
            elif decoder.model_type == "phi3" and local in PHI3_FUSED:
                mapping[name] = _phi3_part(f"{layers}.{index}", local, leaf, config)
            else:
                table = GEMMA_LAYER if decoder.model_type in GEMMA_TYPES else LLAMA_LAYER
                mapping[name] = f"{layers}.{index}.{table[local]}.{leaf}"
        else:
            mapping[name] = prefix + _outer_name(decoder, module, leaf)
    used = {m.key if isinstance(m, Part) else m for m in mapping.values()}
    built = 1 + max((int(n.split(".")[1]) for n in names if n.startswith("layers.")), default=-1)
    for key in sorted(weights.keys()):
        if not key.startswith(prefix) or key in used or key.startswith("lm_head."):
            continue
        index = layer_of(key, layers)
        if index is not None and any(key == f"{layers}.{index}.{ign}" for ign in decoder.ignored):
            continue
        if index is not None and built <= index < num_layers:
            continue  # a real layer the command does not need: never read
        raise AttnvizError(
            f"{weights.file_of(key)}: unexpected key {key!r} (not part of the "
            f"{decoder.model_type} model that {label} describes)"
        )
    return mapping


PHI3_FUSED = ("attention.query", "attention.key", "attention.value", "ffn.gate", "ffn.up")


def _phi3_part(layer: str, local: str, leaf: str, config: EncoderConfig) -> Part:
    """Phi-3's fused projections as row ranges: qkv_proj [H*Dh | G*Dh | G*Dh, D], gate_up_proj [d_ff | d_ff, D]."""
    if local.startswith("ffn."):
        ff = config.d_ff
        start = 0 if local == "ffn.gate" else ff
        return Part(f"{layer}.mlp.gate_up_proj.{leaf}", rows=(start, start + ff, 2 * ff))
    q, kv = config.num_heads * config.d_head, config.kv_heads * config.d_head
    start, size = {"attention.query": (0, q), "attention.key": (q, kv), "attention.value": (q + kv, kv)}[local]
    return Part(f"{layer}.self_attn.qkv_proj.{leaf}", rows=(start, start + size, q + 2 * kv))


def _outer_name(decoder: Decoder, module: str, leaf: str) -> str:
    if decoder.model_type == "gpt2":
        return {"embeddings.word": "wte", "embeddings.position": "wpe", "final_norm": "ln_f"}[module] + "." + leaf
    return {"embeddings.word": "embed_tokens", "final_norm": "norm"}[module] + "." + leaf


def load_decoder(
    folder: Path,
    data: dict,
    weights: WeightFile,
    tokenizer: TextTokenizer,
    source: str,
    last_layer: int | None = None,
    dtype=None,
    device=None,
) -> LoadedModel:
    """Build the decoder that config.json describes, up to `last_layer`, and fill it from `weights`."""
    label = str(folder / "config.json")
    config = decoder_config(data, label)
    decoder = DECODERS[data["model_type"]]
    encoder = build_encoder(config, weights, label, data, last_layer=last_layer)
    mapping = weight_map(decoder, list(encoder.state_dict()), weights, config.num_layers, label, config)
    fill_encoder(encoder, mapping, weights, label, dtype)
    info = ModelInfo(
        source=source, config=config, seed=None, learned=True, tokenizer=tokenizer.source, kind=decoder.model_type
    )
    return LoadedModel(place(encoder, dtype, device), tokenizer, info)


def _divisible(width: int, heads: int, width_key: str, heads_key: str, label: str) -> None:
    if width % heads:
        raise AttnvizError(f"{label}: {width_key} ({width}) is not divisible by {heads_key} ({heads})")
