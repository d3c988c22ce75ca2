"""Reading checkpoint tensors by name, and copying them into an Encoder with every shape checked.

One reader covers the weight files a checkpoint folder may hold: `model.safetensors` (read lazily
through a memory map, so only the tensors we use are touched), a sharded
`model.safetensors.index.json`, or a PyTorch state dict (`pytorch_model.bin`, `.pt`, `.pth`; see
`statedict.py`). Every problem becomes one line naming the file and the offending key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..config import EncoderConfig
from ..errors import AttnvizError, first_line
from ..reading import JSON_LIMIT, parse_json, read_bytes
from ..sizes import human_bytes, parameter_count
from .statedict import STATE_DICT_SUFFIXES, load_state_dict

if TYPE_CHECKING:
    import torch

    from ..encoder import Encoder

# Looked for in this order when --model names a folder.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_FLOAT_DTYPES = ("F64", "F32", "F16", "BF16", "float64", "float32", "float16", "bfloat16")


class WeightFile:
    """Named tensors of one checkpoint: their shapes up front, the data on demand."""

    def __init__(
        self,
        label: str,
        shapes: dict[str, tuple[int, ...]],
        dtypes: dict[str, str],
        files: dict[str, str],
        getter: Callable[[str], "torch.Tensor"],
    ):
        self.label = label  # what messages call the checkpoint as a whole
        self._shapes = shapes
        self._dtypes = dtypes
        self._files = files  # key -> the file that holds it (shards differ)
        self._get = getter

    def keys(self) -> list[str]:
        return list(self._shapes)

    def __contains__(self, key: str) -> bool:
        return key in self._shapes

    def file_of(self, key: str) -> str:
        return self._files.get(key, self.label)

    def paths(self) -> list[str]:
        """The files the tensors come from (one, or an index and its shards)."""
        return sorted(set(self._files.values()) | {self.label})

    def shape(self, key: str) -> tuple[int, ...]:
        if key not in self._shapes:
            raise AttnvizError(f"{self.label}: missing key {key!r}")
        return self._shapes[key]

    def get(self, key: str, dtype: "torch.dtype | None" = None) -> "torch.Tensor":
        """The tensor as float32 (or `dtype`), refusing non-float dtypes and NaN/inf (silent
        garbage otherwise). Only this call reads the tensor's data from disk."""
        import torch

        self.shape(key)
        if self._dtypes[key] not in _FLOAT_DTYPES:
            raise AttnvizError(
                f"{self.file_of(key)}: {key} has dtype {self._dtypes[key]}; expected floating-point weights"
            )
        try:
            tensor = self._get(key)
        except AttnvizError:
            raise
        except Exception as exc:
            raise AttnvizError(f"{self.file_of(key)}: cannot read {key} ({first_line(exc)})") from None
        tensor = tensor.to(dtype or torch.float32).contiguous()
        # One reduction instead of a boolean copy: NaN and inf survive a sum (a finite sum cannot
        # overflow float32 for any real weights); the exact test runs only to confirm.
        if not torch.isfinite(tensor.sum()) and not torch.isfinite(tensor).all():
            raise AttnvizError(f"{self.file_of(key)}: {key} contains NaN or infinite values")
        return tensor


def find_weights(folder: Path) -> Path:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise AttnvizError(f"{folder}: no weights found (looked for {', '.join(WEIGHT_FILES)})")


def open_weights(path: Path) -> WeightFile:
    name = path.name
    if name.endswith(".safetensors"):
        return _open_safetensors(path)
    if name.endswith(".safetensors.index.json"):
        return _open_sharded(path)
    if path.suffix in STATE_DICT_SUFFIXES:
        return _from_state_dict(str(path), load_state_dict(path))
    raise AttnvizError(
        f"{path}: unknown weights format; use .safetensors, {', '.join(STATE_DICT_SUFFIXES)} or a folder"
    )


def _open_safetensors(path: Path) -> WeightFile:
    from safetensors import safe_open

    try:
        handle = safe_open(str(path), framework="pt")
        shapes, dtypes = {}, {}
        for key in handle.keys():
            piece = handle.get_slice(key)
            shapes[key], dtypes[key] = tuple(piece.get_shape()), str(piece.get_dtype())
    except FileNotFoundError:
        raise AttnvizError(f"{path}: file not found") from None
    except Exception as exc:  # SafetensorError: truncated, bad header, not safetensors at all
        raise AttnvizError(f"{path}: not a valid safetensors file ({first_line(exc)})") from None
    return WeightFile(str(path), shapes, dtypes, {}, handle.get_tensor)


def _open_sharded(index: Path) -> WeightFile:
    try:
        weight_map = parse_json(read_bytes(index, "a safetensors index", JSON_LIMIT))["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
        wrong = next((k for k, v in weight_map.items() if not isinstance(v, str)), None)
        if wrong is not None:  # numbers, lists or objects where a shard's file name goes
            raise TypeError(f"weight_map[{wrong[:80]!r}] is not a file name")
    except Exception as exc:
        raise AttnvizError(f"{index}: not a valid safetensors index ({first_line(exc)})") from None
    shards: dict[str, WeightFile] = {}
    for shard in sorted(set(weight_map.values())):
        if Path(shard).name != shard:  # the index must not point outside its folder
            raise AttnvizError(f"{index}: shard name {shard!r} is not a plain file name")
        shards[shard] = _open_safetensors(index.parent / shard)
    shapes, dtypes, files = {}, {}, {}
    for key, shard in weight_map.items():
        reader = shards[shard]
        if key not in reader:
            raise AttnvizError(f"{reader.label}: missing key {key!r} (listed in {index.name})")
        shapes[key], dtypes[key], files[key] = reader.shape(key), reader._dtypes[key], reader.label
    return WeightFile(str(index), shapes, dtypes, files, lambda key: shards[weight_map[key]]._get(key))


def _from_state_dict(label: str, state: dict) -> WeightFile:
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    dtypes = {k: str(v.dtype).removeprefix("torch.") for k, v in state.items()}
    # clone(): the model must own its weights, not share storage (or an mmap) with the file.
    return WeightFile(label, shapes, dtypes, {}, lambda key: state[key].clone())


@dataclass(frozen=True)
class Part:
    """A parameter cut from a stored tensor: GPT-2 keeps Q, K and V fused in one `c_attn` and
    stores its linear maps as Conv1D weights, [in, out] (y = x W) where torch's Linear holds
    [out, in] (y = x W^T)."""

    key: str
    transpose: bool = False  # stored [in, out]: transpose into Linear's [out, in]
    chunk: tuple[int, int] | None = None  # (i, n): the i-th of n equal parts of the stored last dim
    # Phi-3's fused qkv_proj [H*Dh + 2*G*Dh, D] (parts of unequal size): rows [start, stop) of a
    # stored tensor with `total` rows.
    rows: tuple[int, int, int] | None = None  # (start, stop, total)

    @property
    def fused(self) -> bool:
        return bool(self.chunk or self.rows)

    def stored_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The stored shape that gives a parameter of `shape`."""
        if self.rows:
            return (self.rows[2],) + tuple(shape[1:])
        shape = tuple(reversed(shape)) if self.transpose else tuple(shape)
        return shape[:-1] + (shape[-1] * self.chunk[1],) if self.chunk else shape

    def cut(self, tensor: "torch.Tensor") -> "torch.Tensor":
        if self.rows:
            tensor = tensor[self.rows[0] : self.rows[1]]
        if self.chunk:
            i, n = self.chunk
            width = tensor.shape[-1] // n
            tensor = tensor[..., i * width : (i + 1) * width]
        return (tensor.T if self.transpose else tensor).contiguous()


def fill_encoder(
    encoder: "Encoder",
    mapping: dict[str, "str | Part"],
    weights: WeightFile,
    config_label: str,
    dtype: "torch.dtype | None" = None,
) -> None:
    """Give every parameter `name` of `encoder` the tensor weights[mapping[name]] (or the Part of
    it), asserting each shape, converted to `dtype` (default float32).

    `encoder` comes from `build_encoder` (parameters on the meta device, never initialised): the
    loaded tensors become its parameters, so nothing is initialised only to be overwritten and
    the weights are never held twice. `mapping` must name every tensor of the encoder's state
    dict; `config_label` is the config file the expected shapes come from. Only the mapped
    tensors are read (a truncated encoder never reads the layers it does not have), each once.
    """
    state = encoder.state_dict()  # [name] -> placeholder tensors with the expected shapes
    if set(mapping) != set(state):
        missing = sorted(set(state) - set(mapping)) or sorted(set(mapping) - set(state))
        raise RuntimeError(f"internal: weight map and encoder disagree on {missing[:3]}")
    loaded, fused = {}, {}
    for name, source in mapping.items():
        part = source if isinstance(source, Part) else Part(source)
        key, expected = part.key, part.stored_shape(tuple(state[name].shape))
        got = weights.shape(key)
        if got != expected:
            raise AttnvizError(
                f"{weights.file_of(key)}: {key} has shape {list(got)} but {config_label} implies {list(expected)}"
            )
        if part.fused:  # fused: read once, cut three times
            if key not in fused:
                fused[key] = weights.get(key, dtype)
            loaded[name] = part.cut(fused[key])
        else:
            loaded[name] = part.cut(weights.get(key, dtype))
    encoder.load_state_dict(loaded, strict=True, assign=True)


# How config.json files of the common families name our size fields (BERT, DistilBERT, GPT-2,
# LLaMA, GGUF metadata), so a check can name the key the user must fix. The first one present wins.
CONFIG_KEYS = {
    "num_layers": ("num_layers", "num_hidden_layers", "n_layers", "n_layer", "block_count"),
    "d_model": ("d_model", "hidden_size", "dim", "n_embd", "embedding_length"),
    "num_heads": ("num_heads", "num_attention_heads", "n_heads", "n_head", "head_count"),
    "num_kv_heads": ("num_kv_heads", "num_key_value_heads", "n_kv_heads", "head_count_kv"),
    "d_ff": ("d_ff", "intermediate_size", "hidden_dim", "n_inner", "feed_forward_length"),
    "vocab_size": ("vocab_size", "n_vocab"),
    "max_len": ("max_len", "max_position_embeddings", "n_positions", "context_length"),
    "type_vocab_size": ("type_vocab_size",),
    "embedding_size": ("embedding_size",),
    "head_dim": ("head_dim",),
}
# A layer index as one component of a tensor name: "encoder.layer.5.", "h.11.", "blk.3.".
_LAYER_INDEX = re.compile(r"(?:^|\.)(\d+)\.")


def config_key(field: str, config: EncoderConfig, data: dict | None) -> str:
    """The name config.json uses for our `field`: the alias holding the same value, else the first
    alias present, else the field's own name."""
    aliases = CONFIG_KEYS.get(field, (field,))
    if data:
        value = getattr(config, field)
        present = [a for a in aliases if a in data]
        for alias in present:
            if data[alias] == value:
                return alias
        if present:
            return present[0]
    return field


def check_config_fits(config: EncoderConfig, weights: WeightFile, label: str, data: dict | None = None) -> None:
    """Refuse a config that cannot describe `weights`, from the tensors' shapes alone (nothing is
    read or built): more or fewer layers than the file numbers, or a width larger than any tensor
    dimension.
    Call it before building the encoder, so that a config saying 10^9 layers is one line instead
    of a hang; `label` is the config file, `data` its raw dict (to name its own keys). What stays
    possible after it is bounded by the file's own sizes; `fill_encoder` then names any tensor
    whose shape differs.

    Every loader (native, BERT families, decoders, GGUF) can call it: it assumes only that layer
    tensors carry their index as a name component ("layers.3.", "h.3.", "blk.3.")."""

    def key(field: str) -> str:
        return config_key(field, config, data)

    keys = weights.keys()
    indices = [int(m) for k in keys for m in _LAYER_INDEX.findall(k)]
    present = max(indices) + 1 if indices else 0
    if config.num_layers > present:
        held = f"{present} layers (indices 0-{present - 1})" if present else "no numbered layers"
        raise AttnvizError(
            f"{label}: {key('num_layers')} is {config.num_layers} (a model of "
            f"{human_bytes(4 * parameter_count(config))}) but {weights.label} holds {held}; "
            "the config does not describe these weights"
        )
    if config.num_layers < present:
        # Not a shorter model to be read in part (that is `last_layer`): the config is wrong, and
        # reading it would silently drop the file's last layers.
        raise AttnvizError(
            f"{label}: {key('num_layers')} is {config.num_layers} but {weights.label} holds "
            f"{present} layers (indices 0-{present - 1}); the config does not describe these weights"
        )
    shapes = [weights.shape(k) for k in keys]
    largest = max((d for shape in shapes for d in shape), default=0)
    widths = {
        "d_model": config.d_model,
        "d_ff": config.d_ff,
        "vocab_size": config.vocab_size,
        "embedding_size": config.embedding_size or 0,
        "type_vocab_size": config.type_vocab_size,
    }
    if config.head_dim is not None:
        widths["head_dim"] = config.head_dim
    if config.positional == "learned":
        widths["max_len"] = config.max_len
    for field, value in widths.items():
        if value > largest:
            raise AttnvizError(
                f"{label}: {key(field)} is {value} but no tensor of {weights.label} has a "
                f"dimension that large (the largest is {largest})"
            )


def layer_of(key: str, layers: str) -> int | None:
    """The layer index of a checkpoint key under `layers` ("model.layers" -> 3 for
    "model.layers.3.mlp.up_proj.weight"); None for keys outside the layers."""
    match = re.match(re.escape(layers) + r"\.(\d+)\.", key)
    return int(match[1]) if match else None
