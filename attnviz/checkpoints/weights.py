"""Reading checkpoint tensors by name, and copying them into an Encoder with every shape checked.

One reader covers the weight files a checkpoint folder may hold: `model.safetensors` (read lazily
through a memory map, so only the tensors we use are touched), a sharded
`model.safetensors.index.json`, or a PyTorch state dict (`pytorch_model.bin`, `.pt`, `.pth`; see
`statedict.py`). Every problem becomes one line naming the file and the offending key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import AttnvizError
from .statedict import STATE_DICT_SUFFIXES, load_state_dict

if TYPE_CHECKING:
    import torch

    from ..encoder import Encoder

# Looked for in this order when --model names a folder.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_FLOAT_DTYPES = ("F64", "F32", "F16", "BF16", "float64", "float32", "float16", "bfloat16")


class WeightFile:
    """Named tensors of one checkpoint: their shapes up front, the data on demand."""

    def __init__(self, label: str, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str],
                 files: dict[str, str], getter: Callable[[str], "torch.Tensor"]):
        self.label = label        # what messages call the checkpoint as a whole
        self._shapes = shapes
        self._dtypes = dtypes
        self._files = files       # key -> the file that holds it (shards differ)
        self._get = getter

    def keys(self) -> list[str]:
        return list(self._shapes)

    def __contains__(self, key: str) -> bool:
        return key in self._shapes

    def file_of(self, key: str) -> str:
        return self._files.get(key, self.label)

    def shape(self, key: str) -> tuple[int, ...]:
        if key not in self._shapes:
            raise AttnvizError(f"{self.label}: missing key {key!r}")
        return self._shapes[key]

    def get(self, key: str) -> "torch.Tensor":
        """The tensor as float32, refusing non-float dtypes and NaN/inf (silent garbage otherwise)."""
        import torch

        self.shape(key)
        if self._dtypes[key] not in _FLOAT_DTYPES:
            raise AttnvizError(f"{self.file_of(key)}: {key} has dtype {self._dtypes[key]}; "
                               "expected floating-point weights")
        try:
            tensor = self._get(key)
        except AttnvizError:
            raise
        except Exception as exc:
            raise AttnvizError(f"{self.file_of(key)}: cannot read {key} ({_first_line(exc)})") from None
        tensor = tensor.to(torch.float32).contiguous()
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
    raise AttnvizError(f"{path}: unknown weights format; use .safetensors, "
                       f"{', '.join(STATE_DICT_SUFFIXES)} or a folder")


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
        raise AttnvizError(f"{path}: not a valid safetensors file ({_first_line(exc)})") from None
    return WeightFile(str(path), shapes, dtypes, {}, handle.get_tensor)


def _open_sharded(index: Path) -> WeightFile:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError("weight_map is not an object")
    except Exception as exc:
        raise AttnvizError(f"{index}: not a valid safetensors index ({_first_line(exc)})") from None
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


def fill_encoder(encoder: "Encoder", mapping: dict[str, str], weights: WeightFile, config_label: str) -> None:
    """Give every parameter `name` of `encoder` the tensor weights[mapping[name]], asserting each shape.

    `encoder` comes from `build_encoder` (parameters on the meta device, never initialised): the
    loaded tensors become its parameters, so nothing is initialised only to be overwritten and
    the weights are never held twice. `mapping` must name every tensor of the encoder's state
    dict; `config_label` is the config file the expected shapes come from.
    """
    state = encoder.state_dict()  # [name] -> placeholder tensors with the expected shapes
    if set(mapping) != set(state):
        missing = sorted(set(state) - set(mapping)) or sorted(set(mapping) - set(state))
        raise RuntimeError(f"internal: weight map and encoder disagree on {missing[:3]}")
    loaded = {}
    for name, key in mapping.items():
        expected = tuple(state[name].shape)
        got = weights.shape(key)
        if got != expected:
            raise AttnvizError(f"{weights.file_of(key)}: {key} has shape {list(got)} but "
                               f"{config_label} implies {list(expected)}")
        loaded[name] = weights.get(key)
    encoder.load_state_dict(loaded, strict=True, assign=True)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:160] if lines else type(exc).__name__
