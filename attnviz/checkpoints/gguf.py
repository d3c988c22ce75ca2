"""GGUF checkpoints (llama.cpp's single-file format) of the `llama`, `gpt2`, `qwen2`, `qwen3`,
`phi3` and `gemma3` architectures.

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
    into our separate Q, K and V. Phi-3's `attn_qkv` [H*Dh + 2*G*Dh, D] and `ffn_up` (gate then
    up, [2*d_ff, D]) are split by rows too.
  * Gemma 3's converter stores its norm weights as 1 + w (llama.cpp multiplies by the weight
    alone); 1 is subtracted again on load, as transformers' GGUF loader does, and the model runs
    with (1 + w). What the metadata lacks comes from llama.cpp's own constants for gemma3:
    local layers' rotary base 10,000, every sixth layer global, logits scaled by Dh ** -0.5
    (d_model / heads for the 62-layer 27B).
Qwen2, Qwen3, Phi-3 and Gemma rotate the two halves of a head as Hugging Face does: no permutation.
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

ARCHITECTURES = ("gemma3", "gpt2", "llama", "phi3", "qwen2", "qwen3")
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
    "attention.query_norm": "attn_q_norm",  # QK-norm (Qwen3, Gemma 3)
    "attention.key_norm": "attn_k_norm",
}
GEMMA_LAYER = {**LLAMA_LAYER, "attention_post_norm": "post_attention_norm", "ffn_post_norm": "post_ffw_norm"}
GEMMA_SLIDING_PATTERN, GEMMA_LOCAL_BASE = 6, 10000.0  # llama.cpp's constants for gemma3
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
    parts: list[Path] | None = None,
    last_layer: int | None = None,
    dtype=None,
    device=None,
) -> LoadedModel:
    """The model in a .gguf file, with layers 0..last_layer only (all by default); keywords as for
    `checkpoints.load_model`. `info.config` describes the whole file, as for every loader.
    `parts`: the files whose concatenation is the GGUF file (`path` then only names it)."""
    from .loaded import check_vocab

    dtype, device = torch_dtype(dtype), torch_device(device)
    _release_temporaries()
    file = GGUFFile(path, parts)
    try:
        arch = file.fields.get("general.architecture")
        if not isinstance(arch, str) or arch not in ARCHITECTURES:  # an array is no name (nor hashable)
            raise file.error(
                f"architecture {shown(arch)} is not supported; supported GGUF architectures: {', '.join(ARCHITECTURES)}"
            )
        file.check_types()
        config = gguf_config(file, arch)
        tokenizer = tokenizer or file_tokenizer(file)
        file.forget_metadata()  # parsed into config and tokenizer: not held while the tensors load
        weights = GGUFWeights(file, arch, config)
        encoder = build_encoder(config, weights.file, file.label, last_layer=last_layer)
        # The token table stays in the file: every other tensor is filled now (the table is out of
        # the state dict meanwhile), then the lazy module that reads its rows takes its place.
        encoder.embeddings.word = None
        mapping = {name: weights.key_for(name) for name in encoder.state_dict()}
        fill_encoder(encoder, mapping, weights.file, file.label, dtype)
        weights.forget_fused()
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
    if f.get(p + "expert_count"):
        raise file.error(f"{p}expert_count is {f[p + 'expert_count']}: mixture-of-experts models are not supported")
    if f.get(p + "attention.sliding_window") and arch not in ("gemma3", "phi3"):
        raise file.error(
            f"{p}attention.sliding_window is {f[p + 'attention.sliding_window']}: sliding-window "
            f"{arch} files are not supported (supported with a window: gemma3, phi3)"
        )
    for key in (p + "attn_logit_softcapping", p + "attention.logit_softcapping"):
        if f.get(key):
            raise file.error(f"{key} is {shown(f[key])}: soft-capped attention logits are not supported")
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
    if rotary != head_dim and arch == "llama":
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
        or "rope_factors_long.weight" in file.tensors
    ):
        raise file.error(
            f"rope scaling ({scaling}, factor {factor}) is not supported; attnviz computes plain rotary embeddings"
        )
    has = file.tensors.__contains__
    family = _family_fields(file, arch, d_model, heads, head_dim, layers)
    if rotary != head_dim:  # Phi-3's partial rotary dims (llama files were refused above)
        family["rotary_dim"] = rotary
    return _config(
        file,
        **common,
        **family,
        max_len=context,
        positional="rope",
        norm="rms",
        ffn="gated",
        num_kv_heads=kv if kv != heads else None,
        head_dim=head_dim if head_dim * heads != d_model else None,
        rope_base=_number(file, p + "rope.freq_base", 10000.0),
        layer_norm_eps=_number(file, p + "attention.layer_norm_rms_epsilon"),
        attention_bias=has("blk.0.attn_q.bias"),
        output_bias=has("blk.0.attn_output.bias"),
        ffn_bias=has("blk.0.ffn_up.bias"),
    )


def _family_fields(file: GGUFFile, arch: str, d_model: int, heads: int, head_dim: int, layers: int) -> dict:
    """What the LLaMA-shaped architectures add to LLaMA's config (activation, QK-norm, Gemma's
    norms and scales, sliding windows)."""
    f, p = file.fields, arch + "."
    fields: dict = {"activation": "silu", "qk_norm": "blk.0.attn_q_norm.weight" in file.tensors}
    window = f.get(p + "attention.sliding_window")
    if arch == "phi3" and window:
        fields["sliding_window"] = _positive(file, p + "attention.sliding_window")
    if arch != "gemma3":
        return fields
    pattern = f.get(p + "attention.sliding_window_pattern")
    if pattern is not None and len(pattern) == layers:  # newer files: True for local layers
        types = ["sliding_attention" if bool(x) else "full_attention" for x in pattern]
    else:
        types = ["sliding_attention" if (i + 1) % GEMMA_SLIDING_PATTERN else "full_attention" for i in range(layers)]
    local = window and "sliding_attention" in types
    scale = (d_model / heads) ** -0.5 if layers == 62 else None  # llama.cpp: the 27B's own scale
    return {
        **fields,
        "activation": "gelu_tanh",
        "norm_offset": 1.0,
        "sandwich_norm": True,
        "embedding_scale": d_model**0.5,
        "attention_scale": scale,
        "rope_local_base": _number(file, p + "rope.freq_base_swa", GEMMA_LOCAL_BASE),
        "sliding_window": _positive(file, p + "attention.sliding_window") if local else None,
        "layer_types": tuple(types) if local else None,
    }


class GGUFWeights:
    """The file's tensors under llama.cpp names, behind the WeightFile interface fill_encoder reads:
    shapes from the directory, data dequantized on demand (Q/K un-permuted, GPT-2's QKV split)."""

    def __init__(self, file: GGUFFile, arch: str, config: EncoderConfig):
        self.gguf, self.arch, self.config = file, arch, config
        shapes = {n: t.shape for n, t in file.tensors.items()}
        # Virtual keys for fused tensors, "blk.N.attn_qkv.weight[q]" -> (tensor, first row, end row).
        self.slices: dict[str, tuple[str, int, int]] = {}
        q, kv = config.num_heads * config.d_head, config.kv_heads * config.d_head
        for name, info in file.tensors.items():
            if len(info.shape) not in (1, 2):
                continue
            rows = info.shape[0]
            if arch == "gpt2" and ".attn_qkv." in name and rows % 3 == 0:
                cuts = {part: (i * rows // 3, (i + 1) * rows // 3) for i, part in enumerate("qkv")}
            elif arch == "phi3" and ".attn_qkv." in name and rows == q + 2 * kv:
                cuts = {"q": (0, q), "k": (q, q + kv), "v": (q + kv, rows)}
            elif arch == "phi3" and ".ffn_up." in name and rows == 2 * config.d_ff:
                cuts = {"gate": (0, config.d_ff), "up": (config.d_ff, rows)}
            else:
                continue
            for part, (a, b) in cuts.items():
                self.slices[f"{name}[{part}]"] = (name, a, b)
                shapes[f"{name}[{part}]"] = (b - a,) + info.shape[1:]
        self._fused: tuple[str, object] | None = None  # the last fused tensor read (cut 2-3 times)
        self.file = WeightFile(file.label, shapes, {n: "F32" for n in shapes}, {}, self._get)

    def key_for(self, name: str) -> str:
        """The tensor (or virtual key) that attnviz parameter `name` reads."""
        module, leaf = name.rsplit(".", 1)
        if not module.startswith("layers."):
            return f"{GLOBAL[module]}.{leaf}"
        _, index, local = module.split(".", 2)
        if self.arch in ("gpt2", "phi3") and local in QKV:
            return f"blk.{index}.attn_qkv.{leaf}[{'qkv'[QKV[local]]}]"
        if self.arch == "phi3" and local in ("ffn.gate", "ffn.up"):
            return f"blk.{index}.ffn_up.{leaf}[{local[4:]}]"
        table = {"gpt2": GPT2_LAYER, "gemma3": GEMMA_LAYER}.get(self.arch, LLAMA_LAYER)
        return f"blk.{index}.{table[local]}.{leaf}"

    def forget_fused(self) -> None:
        """Drop the last fused tensor read (kept only while its parts are cut)."""
        self._fused = None

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

        if key in self.slices:  # rows of a fused tensor (GPT-2's and Phi-3's attn_qkv, Phi-3's ffn_up)
            name, a, b = self.slices[key]
            if self._fused is None or self._fused[0] != name:
                self._fused = (name, self.gguf.read(name))
            return torch.from_numpy(self._fused[1][a:b].copy())
        array = self.gguf.read(key)
        if self.arch == "llama" and (".attn_q." in key or ".attn_k." in key):
            heads = self.config.num_heads if ".attn_q." in key else self.config.kv_heads
            array = _unpermute(array, heads)
        if self.arch == "gemma3" and key.endswith("norm.weight"):
            array = array - 1.0  # stored as 1 + w (see the module docstring)
        return torch.from_numpy(array)


def _unpermute(rows, heads: int):
    """Undo llama.cpp's per-head row order of Q/K (weights [heads*Dh, D] or biases [heads*Dh]).

    The converter maps Hugging Face row (h, half, i) to (h, i, half), i < Dh/2; reading the rows
    as (h, i, half) and swapping back gives the half-split layout our RoPE uses."""
    shape = rows.shape
    d_half = shape[0] // heads // 2
    return rows.reshape(heads, d_half, 2, *shape[1:]).swapaxes(1, 2).reshape(shape).copy()


def file_tokenizer(file: GGUFFile) -> TextTokenizer:
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
