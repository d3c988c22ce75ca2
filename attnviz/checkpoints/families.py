"""BERT-family folders (as written by common transformer libraries) mapped onto attnviz's Encoder.

Like nanoGPT's `from_pretrained`: translate the family's config.json into an EncoderConfig, build
our encoder, then copy every foreign tensor into the parameter it corresponds to, asserting each
shape. Nothing is imported from `transformers`; the name tables below are the whole mapping.

What differs between the families (all post-LN encoders with learned absolute positions):
  BERT (MiniLM too)  embeddings LayerNorm, token-type embeddings, positions counted from 0
  RoBERTa, XLM-R     the same block, positions counted from pad_token_id + 1 (position_offset)
  ELECTRA            embeddings narrower than the hidden size, then a linear projection
  DistilBERT         no token types, its own parameter names (q_lin, sa_layer_norm, ffn.lin1, ...)

Decoder families (GPT-2, LLaMA, Mistral, Qwen2, Qwen3, Phi-3, Gemma 3) live in `decoders.py`; the entry points here
dispatch to it by model_type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..result import ModelInfo
from ..config import EncoderConfig, finite_positive
from ..errors import AttnvizError
from ..tokenize import TextTokenizer
from . import decoders
from .loaded import LoadedModel, build_encoder, place
from ..text import shown
from .foreign import find_prefix, positive_int
from .weights import WeightFile, fill_encoder, layer_of


# Activation names of transformers' ACT2FN that our encoder computes identically.
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}

# attnviz parameter (module path) -> the family's name, within one layer.
BERT_LAYER = {
    "attention.query": "attention.self.query",
    "attention.key": "attention.self.key",
    "attention.value": "attention.self.value",
    "attention.out": "attention.output.dense",
    "attention_norm": "attention.output.LayerNorm",
    "ffn.up": "intermediate.dense",
    "ffn.down": "output.dense",
    "ffn_norm": "output.LayerNorm",
}
DISTILBERT_LAYER = {
    "attention.query": "attention.q_lin",
    "attention.key": "attention.k_lin",
    "attention.value": "attention.v_lin",
    "attention.out": "attention.out_lin",
    "attention_norm": "sa_layer_norm",
    "ffn.up": "ffn.lin1",
    "ffn.down": "ffn.lin2",
    "ffn_norm": "output_layer_norm",
}
EMBEDDINGS = {
    "embeddings.word": "embeddings.word_embeddings",
    "embeddings.position": "embeddings.position_embeddings",
    "embeddings.token_type": "embeddings.token_type_embeddings",
    "embeddings.norm": "embeddings.LayerNorm",
    "embeddings.project": "embeddings_project",  # ELECTRA only
}
# Buffers some checkpoints carry next to the weights; they are functions of the config.
IGNORED = ("embeddings.position_ids", "embeddings.token_type_ids")


@dataclass(frozen=True)
class Family:
    model_type: str
    prefix: str  # how task models (BertForMaskedLM, ...) prefix the encoder's names
    layers: str  # where the layers live
    layer_names: dict
    pad_token_id: int  # transformers' default when config.json leaves it out
    offset_positions: bool = False
    narrow_embeddings: bool = False


FAMILIES = {
    f.model_type: f
    for f in (
        Family("bert", "bert.", "encoder.layer", BERT_LAYER, 0),
        Family("roberta", "roberta.", "encoder.layer", BERT_LAYER, 1, offset_positions=True),
        Family("xlm-roberta", "roberta.", "encoder.layer", BERT_LAYER, 1, offset_positions=True),
        Family("electra", "electra.", "encoder.layer", BERT_LAYER, 0, narrow_embeddings=True),
        Family("distilbert", "distilbert.", "transformer.layer", DISTILBERT_LAYER, 0),
    )
}
SUPPORTED = tuple(sorted([*FAMILIES, *decoders.DECODERS]))


def family_of(data: dict, label: str) -> Family:
    model_type = data.get("model_type")
    if model_type not in FAMILIES:
        raise AttnvizError(
            f"{label}: model_type {model_type!r} is not supported"
            f"{decoders.unsupported_reason(model_type)}; supported: {', '.join(SUPPORTED)}"
        )
    return FAMILIES[model_type]


def family_config(data: dict, label: str) -> EncoderConfig:
    """Translate a family's config.json into an EncoderConfig, naming the family's own keys in errors."""
    if data.get("model_type") in decoders.DECODERS:
        return decoders.decoder_config(data, label)
    family = family_of(data, label)
    if not isinstance(data.get("is_decoder", False), bool):
        raise AttnvizError(f"{label}: is_decoder must be true or false, got {shown(data['is_decoder'])}")
    if data.get("is_decoder"):
        raise AttnvizError(f"{label}: is_decoder is true; attnviz reads encoders (bidirectional attention) only")
    if family.model_type == "distilbert":
        names = {
            "vocab_size": "vocab_size",
            "d_model": "dim",
            "num_layers": "n_layers",
            "num_heads": "n_heads",
            "d_ff": "hidden_dim",
            "max_len": "max_position_embeddings",
        }
        act_key, act_default = "activation", "gelu"
    else:
        names = {
            "vocab_size": "vocab_size",
            "d_model": "hidden_size",
            "num_layers": "num_hidden_layers",
            "num_heads": "num_attention_heads",
            "d_ff": "intermediate_size",
            "max_len": "max_position_embeddings",
        }
        act_key, act_default = "hidden_act", "gelu"
        kind = data.get("position_embedding_type", "absolute")
        if kind != "absolute":
            raise AttnvizError(
                f"{label}: position_embedding_type {shown(kind)} is not supported; "
                "attnviz maps absolute position embeddings only"
            )
    fields = {ours: positive_int(data, theirs, label) for ours, theirs in names.items()}
    if fields["d_model"] % fields["num_heads"]:
        raise AttnvizError(
            f"{label}: {names['d_model']} ({fields['d_model']}) is not divisible by "
            f"{names['num_heads']} ({fields['num_heads']})"
        )
    act = data.get(act_key, act_default)
    if not isinstance(act, str) or act not in ACTIVATIONS:  # a list or object is no name (and unhashable)
        raise AttnvizError(
            f"{label}: {act_key} {shown(act)} is not supported; supported: {', '.join(sorted(ACTIVATIONS))}"
        )
    pad = _int(data, "pad_token_id", family.pad_token_id, label, allow_none=True)
    pad = family.pad_token_id if pad is None else pad
    if family.model_type == "distilbert":
        eps, type_vocab = 1e-12, 0  # DistilBERT hard-codes eps=1e-12 and has no segment embeddings
    else:
        eps = data.get("layer_norm_eps", 1e-12)
        if not finite_positive(eps):  # inf would make every head uniform
            raise AttnvizError(f"{label}: layer_norm_eps must be a positive finite number, got {shown(eps)}")
        type_vocab = _int(data, "type_vocab_size", 2, label)
    offset = pad + 1 if family.offset_positions else 0
    max_len = fields["max_len"] - offset
    if max_len <= 0:
        raise AttnvizError(
            f"{label}: max_position_embeddings ({fields['max_len']}) leaves no "
            f"positions after the offset pad_token_id + 1 = {offset}"
        )
    embedding_size = None
    if family.narrow_embeddings:
        embedding_size = positive_int(data, "embedding_size", label, default=128)
        if embedding_size == fields["d_model"]:
            embedding_size = None  # same width: transformers has no projection either
    dropout = data.get("hidden_dropout_prob", data.get("dropout", 0.1))
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        dropout = 0.1  # training-only; never used by attnviz, so no reason to refuse the model
    return EncoderConfig(
        **{**fields, "max_len": max_len},
        activation=ACTIVATIONS[act],
        dropout=float(dropout),
        norm_placement="post",
        positional="learned",
        layer_norm_eps=float(eps),
        type_vocab_size=type_vocab,
        embedding_layernorm=True,
        position_offset=offset,
        embedding_size=embedding_size,
        pad_token_id=pad,
        extra={"model_type": family.model_type},
    )


def weight_map(family: Family, names: list[str], weights: WeightFile, num_layers: int | None = None) -> dict[str, str]:
    """attnviz state-dict name -> the checkpoint's key, for every name of our encoder.

    Also refuses keys inside the encoder's part of the checkpoint that nothing maps (a layer more
    than config.json says, relative position tables, ...): they mean the config is not the
    model's. Task heads (pooler, cls.*, lm_head, ...) are outside that part and ignored.
    """
    prefix = find_prefix(weights, "embeddings.word_embeddings.weight", family.prefix, family.model_type)
    mapping = {}
    for name in names:
        module, leaf = name.rsplit(".", 1)
        if module.startswith("layers."):
            _, index, local = module.split(".", 2)
            theirs = f"{prefix}{family.layers}.{index}.{family.layer_names[local]}"
        else:
            theirs = prefix + EMBEDDINGS[module]
        mapping[name] = _leaf_key(weights, theirs, leaf)
    owned = tuple(prefix + root for root in ("embeddings.", "embeddings_project.", family.layers + "."))
    ignored = {prefix + key for key in IGNORED}
    used = set(mapping.values())
    built = 1 + max((int(n.split(".")[1]) for n in names if n.startswith("layers.")), default=-1)
    for key in sorted(weights.keys()):
        index = layer_of(key, prefix + family.layers)
        if num_layers is not None and index is not None and built <= index < num_layers:
            continue  # a real layer that a truncated encoder (last_layer) leaves unread
        if key.startswith(owned) and key not in used and key not in ignored:
            raise AttnvizError(
                f"{weights.file_of(key)}: unexpected key {key!r} (not part of the "
                f"{family.model_type} encoder that config.json describes)"
            )
    return mapping


def load_family(
    folder: Path,
    data: dict,
    weights: WeightFile,
    tokenizer: TextTokenizer,
    source: str,
    last_layer: int | None = None,
    dtype=None,
    device=None,
) -> LoadedModel:
    """Build the model config.json describes, up to `last_layer` (None: all), and fill it."""
    if data.get("model_type") in decoders.DECODERS:
        return decoders.load_decoder(folder, data, weights, tokenizer, source, last_layer, dtype, device)
    label = str(folder / "config.json")
    config = family_config(data, label)
    family = FAMILIES[data["model_type"]]
    encoder = build_encoder(config, weights, label, data, last_layer=last_layer)
    mapping = weight_map(family, list(encoder.state_dict()), weights, config.num_layers)
    fill_encoder(encoder, mapping, weights, label, dtype)
    info = ModelInfo(
        source=source, config=config, seed=None, learned=True, tokenizer=tokenizer.source, kind=family.model_type
    )
    return LoadedModel(place(encoder, dtype, device), tokenizer, info)


def _leaf_key(weights: WeightFile, module: str, leaf: str) -> str:
    key = f"{module}.{leaf}"
    if key not in weights:
        # Checkpoints converted from TensorFlow name LayerNorm parameters gamma and beta.
        old = {"weight": "gamma", "bias": "beta"}.get(leaf)
        if old and module.endswith(("LayerNorm", "layer_norm")) and f"{module}.{old}" in weights:
            return f"{module}.{old}"
    return key  # a missing key is reported by fill_encoder with the file's name


def _int(data: dict, key: str, default: int, label: str, allow_none: bool = False) -> int | None:
    value = data.get(key, default)
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AttnvizError(f"{label}: {key} must be a non-negative integer, got {value!r}")
    return value
