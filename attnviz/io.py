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
    return decode_utf8(raw, str(path), "save it as UTF-8")


def decode_utf8(raw: bytes, name: str, fix: str) -> str:
    """`raw` as UTF-8 text (a byte-order mark dropped), or an AttnvizError naming `name` and the
    line of the first bad byte, then `fix` (what to do about it)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise AttnvizError(f"{name} is not UTF-8 text (bad byte at line {line}); "
                           f"{fix}") from None


def read_stdin(wanted: str) -> str:
    """Standard input as UTF-8 text, read as bytes: Python's own decoding would either fail with a
    traceback or, in UTF-8 mode, smuggle bad bytes through as lone surrogates."""
    import sys

    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stream (some test harnesses): its text is already decoded
        return check_text(sys.stdin.read(), "standard input")
    try:
        raw = stream.read()
    except OSError as exc:
        raise AttnvizError(f"cannot read standard input: {exc.strerror or exc}; give {wanted}") from None
    return decode_utf8(raw, "standard input", "convert it to UTF-8")


def check_text(text: str, name: str) -> str:
    """Refuse text that holds lone surrogates (bytes that were not UTF-8, smuggled in by the
    surrogateescape decoding of command-line arguments), naming the line; else return it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        byte = f"byte 0x{bad - 0xDC00:02x}" if 0xDC80 <= bad <= 0xDCFF else f"character U+{bad:04X}"
        line = text.count("\n", 0, exc.start) + 1
        where = f" at line {line}" if "\n" in text else ""
        raise AttnvizError(f"{name} is not valid UTF-8 (bad {byte}{where}); convert it to UTF-8") from None
    return text


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
