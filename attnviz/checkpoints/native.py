"""attnviz's own checkpoint format: a folder that people and other tools can read.

    config.json        {"attnviz_format": 1, "learned": ..., "seed": ..., <EncoderConfig fields>}
    model.safetensors  the Encoder's state dict under its own parameter names
    tokenizer.json     the tokenizer the model was built for (any `tokenizers` file)

Folders are written into a temporary sibling and renamed into place, so an interrupted save
leaves either no checkpoint or a whole one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..result import ModelInfo
from ..config import CONFIG_FORMAT_VERSION, EncoderConfig
from ..errors import AttnvizError
from ..tokenize import TextTokenizer
from .loaded import LoadedModel, build_encoder, place, truncated
from .weights import WeightFile, fill_encoder, layer_of


FORMAT_KEY = "attnviz_format"
# Provenance kept next to the config fields; not part of the encoder's shape.
META_KEYS = (FORMAT_KEY, "learned", "seed")


def is_native(config: dict) -> bool:
    return FORMAT_KEY in config


def parse_config(data: dict, label: str) -> tuple[EncoderConfig, bool, int | None]:
    """(config, learned, seed) from a native config.json, checking the format version."""
    version = data.get(FORMAT_KEY)
    if version != CONFIG_FORMAT_VERSION:
        raise AttnvizError(f"{label}: {FORMAT_KEY} is {version!r}; this attnviz reads format "
                           f"{CONFIG_FORMAT_VERSION} (upgrade attnviz for newer checkpoints)")
    learned = data.get("learned", True)
    seed = data.get("seed")
    if not isinstance(learned, bool):
        raise AttnvizError(f"{label}: 'learned' must be true or false, got {learned!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise AttnvizError(f"{label}: 'seed' must be an integer or null, got {seed!r}")
    fields = {k: v for k, v in data.items() if k not in META_KEYS}
    try:
        config = EncoderConfig.from_dict(fields, source=label)
    except TypeError as exc:  # wrong value types that the dataclass cannot even hold
        raise AttnvizError(f"{label}: invalid config ({exc})") from None
    except AttnvizError as exc:
        message = str(exc)
        raise AttnvizError(message if message.startswith(label) else f"{label}: {message}") from None
    return config, learned, seed


def load_native(folder: Path, data: dict, weights: WeightFile, tokenizer: TextTokenizer,
                source: str, last_layer: int | None = None, dtype=None, device=None) -> LoadedModel:

    label = str(folder / "config.json")
    config, learned, seed = parse_config(data, label)
    encoder = build_encoder(truncated(config, last_layer))
    names = list(encoder.state_dict())
    built = encoder.config.num_layers

    def unread(key: str) -> bool:  # a real layer beyond a truncated encoder (last_layer)
        index = layer_of(key, "layers")
        return index is not None and built <= index < config.num_layers

    unexpected = sorted(k for k in set(weights.keys()) - set(names) if not unread(k))
    if unexpected:
        raise AttnvizError(f"{weights.file_of(unexpected[0])}: unexpected key {unexpected[0]!r} "
                           f"(not a parameter of the encoder that {label} describes)")
    fill_encoder(encoder, {name: name for name in names}, weights, label, dtype)
    info = ModelInfo(source=source, config=config, seed=seed, learned=learned,
                     tokenizer=tokenizer.source, kind="attnviz")
    return LoadedModel(place(encoder, dtype, device), tokenizer, info)


def checkpoint_files(model: LoadedModel, learned: bool | None = None) -> dict[str, bytes]:
    """The three files of a checkpoint, as bytes (deterministic for the same model)."""
    from safetensors.torch import save

    info = model.info
    learned = info.learned if learned is None else learned
    # seed: the random initialisation the weights started from (None for imported models).
    meta = {FORMAT_KEY: CONFIG_FORMAT_VERSION, "learned": bool(learned), "seed": info.seed}
    if info.kind not in ("random", "attnviz"):
        # An imported model saved in attnviz's format remembers where it came from.
        extra = {**model.config.extra, "imported_from": info.source, "family": info.kind}
        config_dict = {**model.config.to_dict(), "extra": extra}
    else:
        config_dict = model.config.to_dict()
    config_json = json.dumps({**meta, **config_dict}, indent=2) + "\n"
    # [name] -> contiguous CPU float tensors; safetensors refuses views and shared storage.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.encoder.state_dict().items()}
    # One metadata key only: safetensors writes metadata in hash-map order, so two keys would make
    # the bytes differ from run to run. config.json carries the format version.
    weights = save(tensors, metadata={"format": "pt"})
    # In writing order: config.json last, so a folder with a new config.json has its new weights.
    return {"model.safetensors": weights, "tokenizer.json": model.tokenizer.to_str().encode("utf-8"),
            "config.json": config_json.encode("utf-8")}


def check_target(folder: Path, overwrite: bool) -> None:
    """Refuse before any slow work: a file in the way, a non-empty folder, a missing parent."""
    if folder.exists() and not folder.is_dir():
        raise AttnvizError(f"{folder} is a file; give a folder name for the checkpoint")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise AttnvizError(f"{folder} exists and is not empty; pass --overwrite to replace its "
                           "checkpoint files")
    parent = folder.parent if str(folder.parent) else Path(".")
    if not parent.is_dir():
        raise AttnvizError(f"cannot write {folder}: folder {parent} does not exist")


def write_folder(folder: str | Path, files: dict[str, bytes], overwrite: bool = False) -> Path:
    """Write `files` into `folder` so readers only ever see a whole checkpoint.

    A new (or empty) folder is built under a temporary name and renamed into place. With
    `overwrite` on a non-empty folder, each file replaces its old version atomically (config.json
    last) and other files in the folder are left alone.
    """
    folder = Path(folder)
    check_target(folder, overwrite)
    parent = folder.parent if str(folder.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a checkpoint is an ordinary folder
        for name, data in files.items():
            with open(tmp / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        if not folder.exists():
            os.rename(tmp, folder)
        else:
            for name in files:
                os.replace(tmp / name, folder / name)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
