"""GGUF checkpoints (llama.cpp's single-file format) of the `llama` and `gpt2` architectures.

The metadata (`llama.block_count`, `llama.attention.head_count_kv`, ...) becomes an EncoderConfig,
the tensors (llama.cpp names: `blk.N.attn_q.weight`, ...) are dequantized to float32 and copied
into attnviz's parameters with every shape checked (weights.fill_encoder), and the tokenizer is
rebuilt from the metadata (gguf_tokenizer.py). Only the tensors of the layers asked for are read.
The token embedding is not read at load at all: a LazyEmbedding (lazy_rows.py) dequantizes the
rows of the ids each forward pass is given, from the memory-mapped file, which stays open for the
model's life.

Two things differ from the Hugging Face weights the file was converted from:
  * llama.cpp rotates adjacent pairs of dimensions (2i, 2i+1), Hugging Face LLaMA the two halves
    of a head (i, i + Dh/2); its converter therefore permutes the rows of Q and K within each
    head (convert_hf_to_gguf.py, LlamaModel.permute). `_unpermute` undoes it.
  * GPT-2's fused Conv1D `c_attn` is stored transposed as one `attn_qkv` [3D, D]; it is split
    into our separate Q, K and V.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import EncoderConfig, finite_positive
from ..errors import AttnvizError
from ..result import ModelInfo
from ..text import shown
from ..tokenize import TextTokenizer
from .gguf_file import GGUFFile
from .loaded import LoadedModel, build_encoder, place, torch_device, torch_dtype
from .weights import WeightFile, fill_encoder

if TYPE_CHECKING:
    from .lazy_rows import LazyEmbedding

ARCHITECTURES = ("gpt2", "llama")
# Within one layer: attnviz module -> llama.cpp tensor (weights; biases where the file has them).
LLAMA_LAYER = {
    "attention.query": "attn_q",
    "attention.key": "attn_k",
    "attention.value": "attn_v",
    "attention.out": "attn_output",
    "attention_norm": "attn_norm",
    "ffn_norm": "ffn_norm",
    "ffn.gate": "ffn_gate",
    "ffn.up": "ffn_up",
    "ffn.down": "ffn_down",
}
GPT2_LAYER = {
    "attention.out": "attn_output",
    "attention_norm": "attn_norm",
    "ffn_norm": "ffn_norm",
    "ffn.up": "ffn_up",
    "ffn.down": "ffn_down",
}
GLOBAL = {"embeddings.word": "token_embd", "embeddings.position": "position_embd", "final_norm": "output_norm"}
TOKEN_TABLE = "token_embd.weight"  # read row by row (lazy_rows.LazyEmbedding), never whole
QKV = {"attention.query": 0, "attention.key": 1, "attention.value": 2}  # row blocks of GPT-2's attn_qkv


def load_gguf(
    path: Path,
    tokenizer: TextTokenizer | None = None,
    source: str | None = None,
    *,
    last_layer: int | None = None,
    dtype=None,
    device=None,
) -> LoadedModel:
    """The model in a .gguf file, with layers 0..last_layer only (all by default); keywords as for
    `checkpoints.load_model`. `info.config` describes the whole file, as for every loader."""
    from . import check_vocab

    dtype, device = torch_dtype(dtype), torch_device(device)
    _release_temporaries()
    file = GGUFFile(path)
    try:
        arch = file.fields.get("general.architecture")
        if not isinstance(arch, str) or arch not in ARCHITECTURES:  # an array is no name (nor hashable)
            raise file.error(
                f"architecture {shown(arch)} is not supported; supported GGUF architectures: {', '.join(ARCHITECTURES)}"
            )
        file.check_types()
        config = gguf_config(file, arch)
        tokenizer = tokenizer or _tokenizer(file)
        file.forget_metadata()  # parsed into config and tokenizer: not held while the tensors load
        weights = GGUFWeights(file, arch, config)
        encoder = build_encoder(config, weights.file, file.label, last_layer=last_layer)
        # The token table stays in the file: every other tensor is filled now (the table is out of
        # the state dict meanwhile), then the lazy module that reads its rows takes its place.
        encoder.embeddings.word = None
        mapping = {name: weights.key_for(name) for name in encoder.state_dict()}
        fill_encoder(encoder, mapping, weights.file, file.label, dtype)
        encoder.embeddings.word = weights.lazy_embedding(dtype)
    except BaseException:
        file.close()
        raise
    # On success the file stays open (memory-mapped) for as long as the model reads rows from it.
    info = ModelInfo(
        source=source or str(path), config=config, seed=None, learned=True, tokenizer=tokenizer.source, kind=arch
    )
    loaded = LoadedModel(place(encoder, dtype, device), tokenizer, info)
    check_vocab(loaded)
    return loaded


def _release_temporaries() -> None:
    """Dequantizing makes a few temporary arrays of a tensor's size each (SmolLM2: up to 3.5 MB).
    glibc serves such sizes from its heap once its dynamic mmap threshold has grown (to 32 MB,
    after the first large free), and a freed heap block stays resident: measured, 12-18 MB of
    SmolLM2's peak. A fixed 1 MB threshold gives them back to the system as soon as they are
    freed. Elsewhere than glibc this does nothing."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def gguf_config(file: GGUFFile, arch: str) -> EncoderConfig:
    """The EncoderConfig the metadata and the tensor directory describe (one-line errors otherwise)."""
    f, p = file.fields, arch + "."
    layers = _positive(file, p + "block_count")
    d_model = _positive(file, p + "embedding_length")
    heads = _positive(file, p + "attention.head_count")
    d_ff = _positive(file, p + "feed_forward_length")
    context = _positive(file, p + "context_length")
    embedding = file.tensors.get("token_embd.weight")
    if embedding is None:
        raise file.error("missing tensor 'token_embd.weight'")
    if len(embedding.shape) != 2 or embedding.shape[1] != d_model:
        raise file.error(f"token_embd.weight has shape {list(embedding.shape)} but {p}embedding_length is {d_model}")
    for key in (p + "expert_count", p + "attention.sliding_window"):
        value = f.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:  # an array, a string, a float
            raise file.error(f"metadata {key} must be a non-negative integer, got {shown(value)}")
        if value:
            raise file.error(f"{key} is {value}: mixture-of-experts and sliding-window models are not supported")
    pad = f.get("tokenizer.ggml.padding_token_id", 0)
    common = dict(
        vocab_size=embedding.shape[0],
        num_layers=layers,
        num_heads=heads,
        d_model=d_model,
        d_ff=d_ff,
        causal=True,
        norm_placement="pre",
        embedding_layernorm=False,
        final_norm=True,
        type_vocab_size=0,
        dropout=0.0,
        pad_token_id=pad if isinstance(pad, int) else 0,
        extra={"format": "gguf", "architecture": arch, "name": _text(file, "general.name", "")},
    )
    if arch == "gpt2":
        return _config(
            file,
            **common,
            max_len=context,
            positional="learned",
            norm="layer",
            activation="gelu_tanh",
            layer_norm_eps=_number(file, p + "attention.layer_norm_epsilon"),
        )
    kv = _positive(file, p + "attention.head_count_kv", default=heads)
    head_dim = _positive(file, p + "attention.key_length", default=d_model // heads if d_model % heads == 0 else None)
    if _positive(file, p + "attention.value_length", default=head_dim) != head_dim:
        raise file.error(f"{p}attention.value_length differs from the key length; not supported")
    rotary = _positive(file, p + "rope.dimension_count", default=head_dim)
    if rotary != head_dim:
        # llama.cpp's pair layout and the converter's row permutation cover the whole head only.
        raise file.error(
            f"{p}rope.dimension_count ({rotary}) differs from the head width ({head_dim}); "
            "partial rotary embeddings are not supported for llama GGUF files"
        )
    scaling = _text(file, p + "rope.scaling.type", "none")
    factor = _number(file, p + "rope.scaling.factor", 1.0)
    if (
        scaling not in ("none", "linear")
        or (scaling == "linear" and factor != 1.0)
        or "rope_freqs.weight" in file.tensors
    ):
        raise file.error(
            f"rope scaling ({scaling}, factor {factor}) is not supported; attnviz computes plain rotary embeddings"
        )
    has = file.tensors.__contains__
    return _config(
        file,
        **common,
        max_len=context,
        positional="rope",
        norm="rms",
        ffn="gated",
        activation="silu",
        num_kv_heads=kv if kv != heads else None,
        head_dim=head_dim if head_dim * heads != d_model else None,
        rope_base=_number(file, p + "rope.freq_base", 10000.0),
        layer_norm_eps=_number(file, p + "attention.layer_norm_rms_epsilon"),
        attention_bias=has("blk.0.attn_q.bias"),
        output_bias=has("blk.0.attn_output.bias"),
        ffn_bias=has("blk.0.ffn_up.bias"),
    )


class GGUFWeights:
    """The file's tensors under llama.cpp names, behind the WeightFile interface fill_encoder reads:
    shapes from the directory, data dequantized on demand (Q/K un-permuted, GPT-2's QKV split)."""

    def __init__(self, file: GGUFFile, arch: str, config: EncoderConfig):
        self.gguf, self.arch, self.config = file, arch, config
        shapes, extra = {n: t.shape for n, t in file.tensors.items()}, {}
        if arch == "gpt2":
            for name, info in file.tensors.items():
                if ".attn_qkv." in name and len(info.shape) in (1, 2) and info.shape[0] % 3 == 0:
                    for part in "qkv":  # virtual keys "blk.N.attn_qkv.weight[q]"
                        extra[f"{name}[{part}]"] = (info.shape[0] // 3,) + info.shape[1:]
        shapes.update(extra)
        self.file = WeightFile(file.label, shapes, {n: "F32" for n in shapes}, {}, self._get)

    def key_for(self, name: str) -> str:
        """The tensor (or virtual key) that attnviz parameter `name` reads."""
        module, leaf = name.rsplit(".", 1)
        if not module.startswith("layers."):
            return f"{GLOBAL[module]}.{leaf}"
        _, index, local = module.split(".", 2)
        if self.arch == "gpt2" and local in QKV:
            return f"blk.{index}.attn_qkv.{leaf}[{'qkv'[QKV[local]]}]"
        table = GPT2_LAYER if self.arch == "gpt2" else LLAMA_LAYER
        return f"blk.{index}.{table[local]}.{leaf}"

    def lazy_embedding(self, dtype) -> "LazyEmbedding":
        """The token embedding as a LazyEmbedding over `token_embd.weight` (in `dtype`)."""
        from .lazy_rows import LazyEmbedding

        vocab, width = self.gguf.tensors[TOKEN_TABLE].shape
        return LazyEmbedding(vocab, width, self.fetch_rows, dtype=dtype)

    def fetch_rows(self, ids):
        """ids: sorted unique int64 tensor [U] -> their token_embd rows, float32 [U, D], refused in
        one line if they hold NaN or inf (as the eager load refused the whole table)."""
        import numpy as np
        import torch

        rows = self.gguf.read_rows(TOKEN_TABLE, ids.numpy())  # [U, D]
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            raise self.gguf.error(f"{TOKEN_TABLE} contains NaN or infinite values (row {int(ids[bad.argmax()])})")
        return torch.from_numpy(rows)

    def _get(self, key: str):
        import torch

        if key.endswith("]"):  # one third of GPT-2's fused attn_qkv
            name, part = key[:-3], "qkv".index(key[-2])
            whole = self.gguf.read(name)
            rows = whole.shape[0] // 3
            return torch.from_numpy(whole[part * rows : (part + 1) * rows].copy())
        array = self.gguf.read(key)
        if self.arch == "llama" and (".attn_q." in key or ".attn_k." in key):
            heads = self.config.num_heads if ".attn_q." in key else self.config.kv_heads
            array = _unpermute(array, heads)
        return torch.from_numpy(array)


def _unpermute(rows, heads: int):
    """Undo llama.cpp's per-head row order of Q/K (weights [heads*Dh, D] or biases [heads*Dh]).

    The converter maps Hugging Face row (h, half, i) to (h, i, half), i < Dh/2; reading the rows
    as (h, i, half) and swapping back gives the half-split layout our RoPE uses."""
    shape = rows.shape
    d_half = shape[0] // heads // 2
    return rows.reshape(heads, d_half, 2, *shape[1:]).swapaxes(1, 2).reshape(shape).copy()


def _tokenizer(file: GGUFFile) -> TextTokenizer:
    from .gguf_tokenizer import gguf_tokenizer

    return gguf_tokenizer(file.fields, file.label)


def _config(file: GGUFFile, **fields) -> EncoderConfig:
    try:
        return EncoderConfig(**fields)
    except AttnvizError as exc:  # name the file: "invalid config: ..." alone would not say which
        raise file.error(str(exc)) from None


def _positive(file: GGUFFile, key: str, default: int | None = None) -> int:
    value = file.fields.get(key, default)
    if value is None:
        raise file.error(f"missing metadata key {key!r}")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise file.error(f"metadata {key} must be a positive integer, got {shown(value)}")
    return value


def _text(file: GGUFFile, key: str, default: str) -> str:
    value = file.fields.get(key, default)
    if not isinstance(value, str):
        raise file.error(f"metadata {key} must be a string, got {shown(value)}")
    return value


def _number(file: GGUFFile, key: str, default: float | None = None) -> float:
    value = file.fields.get(key, default)
    if value is None:
        raise file.error(f"missing metadata key {key!r}")
    if not finite_positive(value):  # inf or NaN epsilon: every head would come out uniform
        raise file.error(f"metadata {key} must be a positive finite number, got {shown(value)}")
    return float(value)
