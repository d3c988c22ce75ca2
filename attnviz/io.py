"""Atomic file writes: a temporary name in the same folder, fsync, then rename into place.

An interrupted write leaves either the old file or the whole new one, never half of it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import AttnvizError


def read_text(path: str | Path, wanted: str) -> str:
    """A UTF-8 text file's contents (a byte-order mark dropped), or an AttnvizError that names the
    file; `wanted` says what the user should give instead, e.g. "a .jsonl file"."""
    path = Path(path)
    if path.is_dir():
        raise AttnvizError(f"{path} is a folder; give {wanted}")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AttnvizError(f"no such file: {path}; give {wanted}") from None
    except OSError as exc:
        raise AttnvizError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise AttnvizError(f"{path} is not UTF-8 text (bad byte at line {line}); save it as UTF-8") from None


def check_writable(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise AttnvizError(f"{path} already exists; pass --overwrite to replace it")
    if path.is_dir():
        raise AttnvizError(f"{path} is a folder; give a file name")


def atomic_write(path: str | Path, data: bytes | str, overwrite: bool = False) -> Path:
    path = Path(path)
    check_writable(path, overwrite)
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise AttnvizError(f"cannot write {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
