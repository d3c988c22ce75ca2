"""JSON and NPZ of an AttentionResult written as they are produced: no whole-output string in memory.

A 2,000-token result of 30 layers x 9 heads is 1.1 billion weights: as one JSON string that is 14 GB
(and Python's float objects behind it several times more). Here the file is written piece by piece
into a temporary name beside the target, then renamed into place (io.temporary_name), so an
interrupted or refused write leaves nothing behind, as io.atomic_write does.

On the same result the bytes are exactly those of `json.dumps(result.to_dict(), ensure_ascii=False)`
and of `np.savez(**result.npz_arrays())` (tests/long/test_stream_out.py) unless asked otherwise:
  digits      JSON weights rounded to that many decimals (recorded as "digits": N before "weights")
  precision   "float16" stores NPZ weights in half precision (3 significant digits, half the size)
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import AttnvizError
from .files import check_writable, current_umask, link_target, temporary_name, write_error
from .result import AttentionResult

PRECISIONS = ("float32", "float16")
MAX_DIGITS = 8  # float32 carries about 7 significant digits; more rounding digits change nothing
CHUNK_BYTES = 1 << 20  # text gathered before each write


def json_pieces(result: AttentionResult, digits: int | None = None, extra: dict | None = None) -> Iterator[str]:
    """The JSON object of result.to_dict() (plus `extra` keys after the weights), in pieces of
    about CHUNK_BYTES; one [T] row of weights as Python floats exists at a time."""
    data = _head(result)
    if digits is not None:
        data["digits"] = digits
    opening = json.dumps(data, ensure_ascii=False)
    yield opening[:-1] + ', "weights": '  # the same key order as to_dict: weights come last
    weights = result.weights
    parts: list[str] = []
    size = 0
    parts.append("[")
    for li in range(weights.shape[0]):
        parts.append("[" if li == 0 else ", [")
        for hi in range(weights.shape[1]):
            parts.append("[" if hi == 0 else ", [")
            head = weights[li, hi]  # [T, T]
            for i in range(head.shape[0]):
                # float32 -> Python float is exact; its shortest repr reads back to the same float32.
                row = head[i].astype(np.float64)
                if digits is not None:
                    row = np.round(row, digits)
                text = json.dumps(row.tolist())
                parts.append(text if i == 0 else ", " + text)
                size += len(text) + 2
                if size >= CHUNK_BYTES:
                    yield "".join(parts)
                    parts, size = [], 0
            parts.append("]")
        parts.append("]")
    parts.append("]")
    for key, value in (extra or {}).items():
        parts.append(f", {json.dumps(key, ensure_ascii=False)}: {json.dumps(value, ensure_ascii=False)}")
    parts.append("}\n")
    yield "".join(parts)


def _head(result: AttentionResult) -> dict:
    """to_dict() without its weights (built from a result without maps: no copy of them)."""
    from dataclasses import replace

    T, Tk = len(result.tokens), result.weights.shape[-1]  # Tk: the keys (the source's, for cross-attention)
    empty = replace(result, weights=np.zeros((0, 0, T, Tk), np.float32), layers=[], heads=[], focus_rows=None)
    data = empty.to_dict()
    data["layers"], data["heads"] = list(result.layers), list(result.heads)
    del data["weights"]
    return data


def write_json(
    result: AttentionResult,
    path: Path | None,
    overwrite: bool = False,
    digits: int | None = None,
    extra: dict | None = None,
    echo: Callable[[str], None] | None = None,
) -> None:
    """The result's JSON into `path` (atomically), or piece by piece to `echo` (standard output)."""
    pieces = json_pieces(result, digits, extra)
    if path is None:
        for piece in pieces:
            echo(piece)
        return
    with streamed_file(path, overwrite) as write:
        for piece in pieces:
            write(piece.encode("utf-8"))


def npz_arrays(result: AttentionResult) -> dict[str, np.ndarray]:
    """result.npz_arrays() without copying the weights (the same bytes are written)."""
    from dataclasses import replace

    T, Tk = len(result.tokens), result.weights.shape[-1]  # Tk: the keys (the source's, for cross-attention)
    empty = replace(result, weights=np.zeros((0, 0, T, Tk), np.float32), layers=[], heads=[], focus_rows=None)
    arrays = empty.npz_arrays()
    arrays["weights"] = result.weights
    arrays["layers"] = np.array(result.layers, dtype=np.int64)
    arrays["heads"] = np.array(result.heads, dtype=np.int64)
    return arrays


def write_npz(result: AttentionResult, path: Path, overwrite: bool = False, precision: str = "float32") -> None:
    """The arrays of result.npz_arrays() as np.savez writes them (an uncompressed zip of .npy
    members, zip64), the weights streamed layer by layer (in float16 if `precision` says so)."""
    from numpy.lib import format as npy

    arrays = npz_arrays(result)
    with streamed_file(path, overwrite) as write:
        # np.savez's own settings; a seekable file, as np.savez has, so the zip's bytes are its bytes.
        with zipfile.ZipFile(write.file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for key, value in arrays.items():
                with archive.open(key + ".npy", "w", force_zip64=True) as member:
                    if key != "weights":
                        npy.write_array(member, np.asanyarray(value), allow_pickle=True)
                        continue
                    dtype = np.dtype(np.float16 if precision == "float16" else np.float32)
                    header = {"descr": npy.dtype_to_descr(dtype), "fortran_order": False, "shape": value.shape}
                    npy.write_array_header_1_0(member, header)  # as np.save: format 1.0 (a short header)
                    for layer in value:  # [H', T, T] at a time
                        member.write(np.ascontiguousarray(layer, dtype=dtype).tobytes())


class streamed_file:
    """`with streamed_file(path, overwrite) as write: write(b"...")`: bytes into a temporary file
    beside `path` (created 0600, O_EXCL), fsynced and renamed into place when the block ends
    without error; on any error (or Ctrl-C) the temporary file is removed and `path` untouched."""

    def __init__(self, path: Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.tmp: Path | None = None
        self.file = None

    def __enter__(self):
        check_writable(self.path, self.overwrite)
        # A symbolic link (allowed with --overwrite) is written through, as files.atomic_write
        # does: the temporary file sits beside what it points to, which is replaced; the link stays.
        if self.path.is_symlink():
            self.path = link_target(self.path)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        self.tmp = temporary_name(folder, self.path.name)
        try:
            fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            self.tmp = None  # someone else's file
            raise write_error(self.path, FileExistsError(17, "temporary name in use")) from None
        except OSError as exc:
            self.tmp = None
            raise write_error(self.path, exc) from None
        self.file = os.fdopen(fd, "w+b", buffering=CHUNK_BYTES)

        def write(data: bytes) -> None:
            try:
                self.file.write(data)
            except OSError as exc:
                raise write_error(self.path, exc) from None

        write.file = self.file
        return write

    def __exit__(self, kind, exc, tb) -> bool:
        try:
            if kind is None:
                try:
                    self.file.flush()
                    os.fchmod(self.file.fileno(), 0o666 & ~current_umask())
                    os.fsync(self.file.fileno())
                    self.file.close()
                    os.replace(self.tmp, self.path)
                    self.tmp = None
                except OSError as error:
                    raise write_error(self.path, error) from None
            elif issubclass(kind, OSError) and not isinstance(exc, AttnvizError):
                raise write_error(self.path, exc) from None  # a write inside the block (zipfile's)
        finally:
            if self.file is not None and not self.file.closed:
                try:
                    self.file.close()
                except OSError:
                    pass
            if self.tmp is not None:
                try:
                    self.tmp.unlink(missing_ok=True)
                except OSError:
                    pass
        return False
