"""PyTorch state-dict files (`.bin`, `.pt`, `.pth`), loaded without running pickled code.

A `torch.save` file is a pickle, and unpickling can call any Python function: a downloaded
checkpoint could run code on the user's machine the moment it is opened. attnviz only ever calls
`torch.load(..., weights_only=True)`, whose restricted unpickler accepts tensors, dicts, lists and
plain values and refuses every other global *before* calling it. Passing `weights_only=True`
explicitly also keeps the environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD from turning the
check off (it only changes the default). A refused file becomes a one-line AttnvizError.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path

from ..errors import AttnvizError, first_line

STATE_DICT_SUFFIXES = (".bin", ".pt", ".pth")
# Training scripts often wrap the weights: {"state_dict": {...}} or {"model": {...}}.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


def load_state_dict(path: str | Path) -> dict:
    """{name: tensor} from a torch.save file; never unpickles anything but tensors and containers."""
    import pickle

    import torch

    path = Path(path)
    try:
        # mmap keeps a 400 MB checkpoint out of RAM until its tensors are copied into the model;
        # it needs the zip format (torch >= 1.6), older files are read whole.
        with warnings.catch_warnings():  # torch warns about odd pickle protocols: the error says enough
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except FileNotFoundError:
        raise AttnvizError(f"{path}: file not found") from None
    except pickle.UnpicklingError as exc:
        message = str(exc)
        wanted = re.search(r"GLOBAL (\S+)", message)
        if wanted:  # the pickle asks to call or build something that is not plain data
            raise AttnvizError(
                f"{path}: refused: the file needs arbitrary code to unpickle (it asks for "
                f"{wanted.group(1)}); attnviz loads state dicts only with torch.load(weights_only=True). "
                "If you trust it, re-save it as safetensors or as a plain state dict"
            ) from None
        raise AttnvizError(
            f"{path}: not a readable PyTorch state dict (the weights-only unpickler "
            f"stops at: {_unpickler_reason(message)})"
        ) from None
    except Exception as exc:  # truncated zip, bad magic number, ...: torch raises many types
        raise AttnvizError(f"{path}: not a readable PyTorch state dict ({first_line(exc)})") from None
    return _flatten(data, path)


def _flatten(data, path: Path) -> dict:
    import torch

    if isinstance(data, dict):
        for key in _WRAPPER_KEYS:
            if len(data) == 1 and isinstance(data.get(key), dict):
                data = data[key]
    if not isinstance(data, dict) or not data:
        raise AttnvizError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(data).__name__}")
    for key, value in data.items():
        if not isinstance(key, str):
            raise AttnvizError(f"{path}: state dict key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise AttnvizError(f"{path}: {key} is a {type(value).__name__}, not a tensor")
        # A meta tensor has a shape but no values; a sparse or quantized one would not copy into
        # a dense parameter: both would fail later with torch's own message (or load nothing).
        if value.is_meta:
            raise AttnvizError(f"{path}: {key} is a meta tensor (a shape without values); save the real weights")
        if value.layout != torch.strided:
            raise AttnvizError(
                f"{path}: {key} is a {value.layout} tensor; attnviz reads dense tensors (save .to_dense())"
            )
        if value.is_quantized or value.is_complex():
            raise AttnvizError(f"{path}: {key} is a {value.dtype} tensor; attnviz reads real floating-point weights")
    return data


def _unpickler_reason(message: str) -> str:
    """The useful line of torch's long weights-only error ("Unsupported operand 149")."""
    tail = message.split("WeightsUnpickler error:", 1)[-1]
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[0][:160] if lines else "unknown"
