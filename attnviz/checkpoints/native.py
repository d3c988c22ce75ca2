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
import stat
from pathlib import Path

from ..result import ModelInfo
from ..config import CONFIG_FORMAT_VERSION, EncoderConfig
from ..errors import AttnvizError
from ..files import current_umask, cut_to_bytes, temporary_name, write_error
from ..text import shown
from ..tokenize import TextTokenizer
from .loaded import LoadedModel, build_encoder, place
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
        raise AttnvizError(
            f"{label}: {FORMAT_KEY} is {version!r}; this attnviz reads format "
            f"{CONFIG_FORMAT_VERSION} (upgrade attnviz for newer checkpoints)"
        )
    learned = data.get("learned", True)
    seed = data.get("seed")
    if not isinstance(learned, bool):
        raise AttnvizError(f"{label}: 'learned' must be true or false, got {learned!r}")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise AttnvizError(f"{label}: 'seed' must be a non-negative integer or null (as --seed), got {shown(seed)}")
    fields = {k: v for k, v in data.items() if k not in META_KEYS}
    try:
        config = EncoderConfig.from_dict(fields, source=label)
    except TypeError as exc:  # wrong value types that the dataclass cannot even hold
        raise AttnvizError(f"{label}: invalid config ({exc})") from None
    except AttnvizError as exc:
        message = str(exc)
        raise AttnvizError(message if message.startswith(label) else f"{label}: {message}") from None
    return config, learned, seed


def load_native(
    folder: Path,
    data: dict,
    weights: WeightFile,
    tokenizer: TextTokenizer,
    source: str,
    last_layer: int | None = None,
    dtype=None,
    device=None,
) -> LoadedModel:

    label = str(folder / "config.json")
    config, learned, seed = parse_config(data, label)
    encoder = build_encoder(config, weights, label, data, last_layer=last_layer)
    names = list(encoder.state_dict())
    built = encoder.config.num_layers

    def unread(key: str) -> bool:  # a real layer beyond a truncated encoder (last_layer)
        index = layer_of(key, "layers")
        return index is not None and built <= index < config.num_layers

    unexpected = sorted(k for k in set(weights.keys()) - set(names) if not unread(k))
    if unexpected:
        raise AttnvizError(
            f"{weights.file_of(unexpected[0])}: unexpected key {unexpected[0]!r} "
            f"(not a parameter of the encoder that {label} describes)"
        )
    fill_encoder(encoder, {name: name for name in names}, weights, label, dtype)
    info = ModelInfo(
        source=source, config=config, seed=seed, learned=learned, tokenizer=tokenizer.source, kind="attnviz"
    )
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
    return {
        "model.safetensors": weights,
        "tokenizer.json": model.tokenizer.to_str().encode("utf-8"),
        "config.json": config_json.encode("utf-8"),
    }


# The files of a checkpoint, in writing order (config.json last: see checkpoint_files).
CHECKPOINT_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def check_target(folder: Path, overwrite: bool, names=CHECKPOINT_FILES) -> None:
    """Refuse before any slow work: a file in the way, a non-empty folder, a missing parent, and,
    when overwriting, a folder (or device, pipe...) where one of the files `names` goes: replacing
    the files one by one would otherwise fail there after the others had been replaced."""
    try:
        os.stat(folder)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as exc:  # a name too long for the system, a loop of links...
        raise write_error(folder, exc) from None
    if folder.exists() and not folder.is_dir():
        raise AttnvizError(f"{folder} is a file; give a folder name for the checkpoint")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise AttnvizError(f"{folder} exists and is not empty; pass --overwrite to replace its checkpoint files")
    if folder.is_dir():
        for name in names:
            _check_replaceable(folder / name)
    parent = folder.parent if str(folder.parent) else Path(".")
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise AttnvizError(f"cannot write {folder}: {parent} {what}")


def _check_replaceable(target: Path) -> None:
    """`target` is absent or a file (or a link: os.replace swaps the link itself)."""
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise write_error(target, exc) from None
    if stat.S_ISDIR(mode):
        raise AttnvizError(
            f"cannot write {target}: a folder is in the way; remove it or give another checkpoint folder"
        )
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise AttnvizError(f"cannot write {target}: it is not a regular file (a device, pipe or socket)")


def write_folder(folder: str | Path, files: dict[str, bytes], overwrite: bool = False) -> Path:
    """Write `files` into `folder` so readers only ever see a whole checkpoint.

    A new (or empty) folder is built under a temporary name and renamed into place. With
    `overwrite` on a non-empty folder, each file replaces its old version atomically (config.json
    last) and other files in the folder are left alone. Files and folder get the modes the umask
    gives (0644 and 0755 under umask 022). A write the system refuses (read-only, disk full) is a
    WriteError naming the folder; nothing of the attempt is left behind.
    """
    folder = Path(folder)
    check_target(folder, overwrite, tuple(files))
    parent = folder.parent if str(folder.parent) else Path(".")
    sweep_stale_folders(parent, folder.name)
    tmp = temporary_name(parent, folder.name)
    where = folder  # what an OSError is about: the folder, or the file being replaced
    lock = None
    try:
        umask = current_umask()
        try:
            os.mkdir(tmp, 0o700)
        except FileExistsError:
            tmp = None  # a name clash: that folder is someone else's
            raise
        lock = _hold(tmp)  # while we live the folder is ours; after a SIGKILL the next write sweeps it
        os.chmod(tmp, 0o777 & ~umask)  # made 0700 so no one reads it half-written; then an ordinary folder
        for name, data in files.items():
            # open() applies the umask too, but say it: files are 0666 less the umask, like any tool's
            fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~umask)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        if not folder.exists():
            os.rename(tmp, folder)
        else:
            for name in files:
                where = folder / name
                os.replace(tmp / name, where)
            where = folder
            tmp.rmdir()
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(where, exc) from None
        raise
    finally:
        if lock is not None:
            os.close(lock)
    return folder


# A temporary folder younger than this is never swept: its writer may be between mkdir and flock.
_SWEEP_AGE_SECONDS = 2


def _hold(folder: Path) -> int:
    """An exclusive flock on `folder` (a descriptor to close when done). The kernel drops it when
    the process ends, however it ends (SIGKILL, power loss aside): a lock that can be taken marks a
    temporary folder whose writer is gone."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def sweep_stale_folders(parent: Path, name: str) -> list[Path]:
    """Remove the temporary folders (`.NAME.<16 hex>.part`) that a killed write of `name` left in
    `parent` (`init` SIGKILLed mid-write leaves its whole checkpoint there, 1.3 GB for a big model);
    a folder whose writer still runs holds its lock and is left alone. Returns what was removed."""
    import fcntl
    import re
    import time

    pattern = re.compile(re.escape(f".{cut_to_bytes(name)}.") + r"[0-9a-f]{16}\.part")
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if time.time() - entry.stat(follow_symlinks=False).st_mtime < _SWEEP_AGE_SECONDS:
                continue
            fd = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its writer is alive
            os.close(fd)
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
        finally:
            os.close(fd)
    return removed
