"""Reading a GGUF file (llama.cpp's format): metadata, tensor directory, tensors dequantized to float32.

The file is memory-mapped; its header (metadata and the tensor directory) is parsed here with
`struct`, and tensor blocks are dequantized by the `gguf` package (`gguf.quants.dequantize`, the
reference the format's authors publish). Not `gguf.GGUFReader`: it builds a NumPy view for every
string of the vocabulary, 2.7 s for SmolLM2's 49152 tokens and 48900 merges, where this parser
takes a tenth of that; tests/models/test_gguf.py checks that both read the same fields and tensors.

Layout (little-endian): magic "GGUF", version (2 or 3), tensor count, metadata count, metadata
(key, type, value), tensor directory (name, dims innermost first, ggml type, offset), padding to
`general.alignment` (32 by default), then the tensor data.

A file split into consecutive parts (pip packages ship Gemma 3 270M as four ~64 MB parts) is read
as one: each part is memory-mapped and `JoinedMap` serves byte ranges across them, so no
concatenated copy is ever written; only a tensor that straddles two parts is copied, once, when
it is read (a row of the token table: just that row). Only the tensors asked for are read,
and the pages they occupied are handed back to the kernel afterwards, so reading a few layers of a
big file costs memory for those layers only. `read_rows` reads single rows of a 2-D tensor (the
token embedding, see lazy_rows.py).
"""

from __future__ import annotations

import math
import mmap
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AttnvizError
from ..text import shown

if TYPE_CHECKING:
    import numpy as np

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_NESTING = 16  # arrays of arrays: llama.cpp writes none; deeper than this is a corrupt file
# Metadata value types (gguf.GGUFValueType) with a fixed width: struct format.
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_NUMPY = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?", 10: "<u8", 11: "<i8", 12: "<f8"}
# ggml tensor types attnviz dequantizes (names as in gguf.GGMLQuantizationType). Plain floats are
# converted with NumPy; the block formats go through gguf.quants.
FLOAT_TYPES = ("F32", "F16", "BF16")
BLOCK_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
SUPPORTED_TYPES = FLOAT_TYPES + BLOCK_TYPES
# Dequantize this many output values at a time: the float32 result is written into its final
# array chunk by chunk, so gguf.quants' temporaries stay a few MB even for a 113 MB embedding.
_CHUNK_VALUES = 1 << 20


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # torch order (outermost first): GGUF's dims reversed
    type_name: str  # "F32", "Q4_1", ... (or "type 99" if unknown)
    type_id: int
    start: int  # absolute byte offset in the file
    nbytes: int


class GGUFFile:
    """An open GGUF file: `fields` (metadata), `tensors` (directory), `read(name)` (float32 array).

    `parts`: the files whose concatenation is the GGUF file, in order (`path` then only names it)."""

    def __init__(self, path: str | Path, parts: "list[Path] | None" = None):
        self.path = Path(path)
        self.label = str(path)
        maps = []
        try:
            for part in parts or [self.path]:
                # O_NONBLOCK: a FIFO must be refused, not waited on; only a regular file is mapped.
                with open(os.open(part, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as handle:
                    info = os.fstat(handle.fileno())
                    if stat.S_ISDIR(info.st_mode):
                        raise IsADirectoryError
                    if not stat.S_ISREG(info.st_mode):
                        raise AttnvizError(f"{part}: not a regular file (a device, FIFO or socket); give a .gguf file")
                    if info.st_size == 0:
                        raise AttnvizError(f"{part}: not a GGUF file (0 bytes, too short for a GGUF header)")
                    maps.append(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
        except FileNotFoundError as exc:
            raise AttnvizError(f"{exc.filename or self.label}: file not found") from None
        except IsADirectoryError:
            raise AttnvizError(f"{self.label}: is a folder, not a GGUF file") from None
        except OSError as exc:
            raise AttnvizError(f"{self.label}: cannot read ({exc.strerror or exc})") from None
        except AttnvizError:
            for m in maps:
                m.close()
            raise
        self._map = maps[0] if len(maps) == 1 else JoinedMap(maps)
        size = len(self._map)
        if size < 24:
            self._map.close()
            raise self.error(f"not a GGUF file ({size} bytes, too short for a GGUF header)")
        self.size = size
        self._pos = 0
        self.fields: dict[str, object] = {}
        self.tensors: dict[str, TensorInfo] = {}
        self._parse()
        self._release(0, self.data_start)  # the header's pages (the vocabulary) are parsed now

    def error(self, message: str) -> AttnvizError:
        return AttnvizError(f"{self.label}: {message}")

    # Header ------------------------------------------------------------------------------------

    def _take(self, n: int, what: str) -> bytes:
        end = self._pos + n
        if n < 0 or end > self.size:
            raise self.error(
                f"truncated or corrupt GGUF file (the {what} at byte {self._pos} runs past "
                f"the end of the file, {self.size} bytes)"
            )
        data = self._map[self._pos : end]
        self._pos = end
        return data

    def _scalar(self, fmt: str, what: str):
        return struct.unpack(fmt, self._take(struct.calcsize(fmt), what))[0]

    def _string(self, what: str) -> str:
        n = self._scalar("<Q", what)
        raw = self._take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.error(f"corrupt GGUF file (the {what} at byte {self._pos - n} is not UTF-8)") from None

    def _value(self, kind: int, key: str, depth: int = 0):
        if kind in _SCALARS:
            return self._scalar(_SCALARS[kind], f"value of {key}")
        if kind == _STRING:
            return self._string(f"value of {key}")
        if kind != _ARRAY:
            raise self.error(f"corrupt GGUF file (metadata {key!r} has unknown type {kind})")
        item = self._scalar("<I", f"array type of {key}")
        count = self._scalar("<Q", f"array length of {key}")
        if count > self.size:  # every element takes at least one byte
            raise self.error(f"truncated or corrupt GGUF file (metadata {key!r} claims {count} elements)")
        if item in _NUMPY:
            import numpy as np

            width = struct.calcsize(_SCALARS[item])
            return np.frombuffer(self._take(count * width, f"array {key}"), dtype=_NUMPY[item]).copy()
        if item == _STRING:
            return self._strings(count, key)
        if item == _ARRAY:  # nested arrays: no model key uses them; read them the slow way
            if depth >= MAX_NESTING:  # 5,000 deep would exhaust Python's recursion limit
                raise self.error(f"corrupt GGUF file (metadata {key!r} nests arrays more than {MAX_NESTING} deep)")
            return [self._value(_ARRAY, key, depth + 1) for _ in range(count)]
        raise self.error(f"corrupt GGUF file (metadata {key!r} holds elements of unknown type {item})")

    def _strings(self, count: int, key: str) -> list[str]:
        """A string array (the vocabulary, the merges) in one pass over the map, without _take's
        per-call overhead: 98k strings in ~60 ms."""
        out = []
        data, pos, size = self._map, self._pos, self.size
        if isinstance(data, JoinedMap):  # a split file: its first part holds the header in practice
            data, size = data.maps[0], len(data.maps[0])
            if _runs_past(data, pos, count, size):  # it does not: the slow way, string by string
                out = [self._string(f"element of {key}") for _ in range(count)]
                return out
        unpack = struct.Struct("<Q").unpack_from
        try:
            for _ in range(count):
                if pos + 8 > size:
                    raise IndexError
                (n,) = unpack(data, pos)
                pos += 8
                if n > size - pos:
                    raise IndexError
                out.append(data[pos : pos + n].decode("utf-8"))
                pos += n
        except IndexError:
            raise self.error(f"truncated or corrupt GGUF file (array {key!r} runs past the end of the file)") from None
        except UnicodeDecodeError:
            raise self.error(f"corrupt GGUF file (an element of {key!r} at byte {pos} is not UTF-8)") from None
        self._pos = pos
        return out

    def _parse(self) -> None:
        magic = self._take(4, "magic")
        if magic != MAGIC:
            raise self.error(f"not a GGUF file (it starts with {magic!r}, a GGUF file with b'GGUF')")
        version = self._scalar("<I", "version")
        if version not in VERSIONS:
            if version & 0xFFFF == 0:
                raise self.error("a big-endian GGUF file; attnviz reads little-endian GGUF files")
            raise self.error(f"GGUF version {version} is not supported (supported: {', '.join(map(str, VERSIONS))})")
        n_tensors = self._scalar("<Q", "tensor count")
        n_fields = self._scalar("<Q", "metadata count")
        if n_tensors > self.size // 24 or n_fields > self.size // 13:  # smallest entries possible
            raise self.error(
                f"truncated or corrupt GGUF file (it claims {n_tensors} tensors and "
                f"{n_fields} metadata entries in {self.size} bytes)"
            )
        for _ in range(n_fields):
            key = self._string("metadata key")
            kind = self._scalar("<I", f"type of {key}")
            self.fields[key] = self._value(kind, key)
        directory = []
        for _ in range(n_tensors):
            name = self._string("tensor name")
            n_dims = self._scalar("<I", f"dimension count of {name}")
            if not 1 <= n_dims <= 4:
                raise self.error(f"corrupt GGUF file (tensor {name!r} has {n_dims} dimensions)")
            dims = struct.unpack(f"<{n_dims}Q", self._take(8 * n_dims, f"dimensions of {name}"))
            type_id = self._scalar("<I", f"type of {name}")
            offset = self._scalar("<Q", f"offset of {name}")
            directory.append((name, dims, type_id, offset))
        alignment = self.fields.get("general.alignment", DEFAULT_ALIGNMENT)
        if (
            isinstance(alignment, bool)
            or not isinstance(alignment, int)
            or alignment <= 0
            or alignment & (alignment - 1)
        ):
            raise self.error(f"corrupt GGUF file (general.alignment {shown(alignment)} is not a power of two)")
        self.data_start = -(-self._pos // alignment) * alignment
        for name, dims, type_id, offset in directory:
            self.tensors[name] = self._tensor_info(name, dims, type_id, offset)

    def _tensor_info(self, name: str, dims: tuple[int, ...], type_id: int, offset: int) -> TensorInfo:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        try:
            qtype = GGMLQuantizationType(type_id)
            type_name = qtype.name
        except ValueError:
            qtype, type_name = None, f"type {type_id}"
        count = 1
        for d in dims:
            if d <= 0:
                raise self.error(f"corrupt GGUF file (tensor {name!r} has dimensions {list(dims)})")
            count *= d
        nbytes = 0
        if qtype is not None and qtype in GGML_QUANT_SIZES:
            block, width = GGML_QUANT_SIZES[qtype]
            if dims[0] % block:
                raise self.error(
                    f"corrupt GGUF file (tensor {name!r}: rows of {dims[0]} values are not "
                    f"whole {type_name} blocks of {block})"
                )
            nbytes = count // block * width
        start = self.data_start + offset
        if start + nbytes > self.size:
            raise self.error(
                f"truncated GGUF file (tensor {name!r} ends at byte {start + nbytes}, the file has {self.size} bytes)"
            )
        return TensorInfo(name, tuple(reversed(dims)), type_name, type_id, start, nbytes)

    # Tensors -----------------------------------------------------------------------------------

    def check_types(self, names=None) -> None:
        """Refuse, in one line, a tensor stored in a type attnviz cannot dequantize (all tensors,
        or `names`): before anything is built, so that is the error a user sees."""
        for name in self.tensors if names is None else names:
            info = self.tensors[name]
            if info.type_name not in SUPPORTED_TYPES:
                raise self.error(
                    f"tensor {name!r} is stored as {info.type_name}, which attnviz cannot "
                    f"dequantize (supported: {', '.join(SUPPORTED_TYPES)})"
                )

    def read(self, name: str) -> "np.ndarray":
        """Tensor `name` as a new float32 array in torch order; its pages are released afterwards."""

        info = self._info(name)
        raw = self._bytes(info.start, info.nbytes)
        try:
            out = self._dequantize(raw, info.type_name, info.shape)
        finally:
            del raw
            self.release_pages()
        return out

    def read_rows(self, name: str, rows: "np.ndarray") -> "np.ndarray":
        """Rows `rows` (int array [U], each in range) of 2-D tensor `name` as a new float32 array
        [U, cols], reading only their bytes: a row of a block-quantized tensor is a whole number of
        blocks (checked when the directory is parsed), so row r is bytes [r * w, (r + 1) * w)."""
        import numpy as np

        info = self._info(name)
        if len(info.shape) != 2:
            raise self.error(f"tensor {name!r} has shape {list(info.shape)}; rows are read from 2-D tensors only")
        n, cols = info.shape
        if not len(rows):
            return np.empty((0, cols), dtype=np.float32)
        rows = np.asarray(rows, dtype=np.int64)
        if isinstance(self._map, JoinedMap):  # row by row: the table may straddle parts
            width = info.nbytes // n
            picked = np.stack([self._bytes(info.start + int(r) * width, width) for r in rows])
            self.release_pages()
            return self._dequantize(picked.reshape(-1), info.type_name, (len(picked), cols))
        packed = np.frombuffer(self._map, dtype=np.uint8, count=info.nbytes, offset=info.start).reshape(n, -1)
        try:
            picked = packed[rows]  # [U, bytes per row], a copy
        finally:
            del packed
            self.release_pages()
        return self._dequantize(picked.reshape(-1), info.type_name, (len(picked), cols))

    def _bytes(self, start: int, nbytes: int) -> "np.ndarray":
        """Bytes [start, start + nbytes) of the file as a uint8 array (a view of the map, or, for
        a range straddling two parts of a split file, a copy)."""
        import numpy as np

        if isinstance(self._map, JoinedMap):
            return self._map.span(start, nbytes)
        return np.frombuffer(self._map, dtype=np.uint8, count=nbytes, offset=start)

    def _info(self, name: str) -> TensorInfo:
        info = self.tensors.get(name)
        if info is None:
            raise self.error(f"missing tensor {name!r}")
        self.check_types([name])
        return info

    def _dequantize(self, raw: "np.ndarray", type_name: str, shape: tuple[int, ...]) -> "np.ndarray":
        """raw: the packed bytes [n] of a tensor (or of whole rows of it) -> float32 `shape`."""
        import numpy as np
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        cols = shape[-1]
        rows = math.prod(shape[:-1])
        if type_name == "F32":
            return raw.view("<f4").reshape(shape).copy()
        if type_name == "F16":
            return raw.view("<f2").astype(np.float32).reshape(shape)
        if type_name == "BF16":  # the top half of a float32
            return (raw.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
        qtype = GGMLQuantizationType[type_name]
        packed = raw.reshape(rows, -1)  # [rows, bytes per row]
        out = np.empty((rows, cols), dtype=np.float32)
        step = max(1, _CHUNK_VALUES // cols)
        for a in range(0, rows, step):
            out[a : a + step] = dequantize(packed[a : a + step], qtype)
        return out.reshape(shape)

    def _release(self, start: int, nbytes: int) -> None:
        """Drop the mapped pages of [start, start + nbytes) from this process (the page cache keeps
        them), so the file does not count in the process's memory once its tensors are copied out."""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is None or nbytes <= 0:
            return
        page = mmap.PAGESIZE
        first = start // page * page
        try:
            self._map.madvise(advice, first, min(self.size, start + nbytes) - first)
        except (OSError, ValueError):
            pass  # only a memory optimisation

    def release_pages(self) -> None:
        """Drop every mapped page of the file from this process. `read` releases its tensor's
        range, but the kernel maps a few neighbouring pages around each fault (fault-around),
        which stay behind: ~9 MB over SmolLM2's 272 tensors. Every read ends with this call over the
        whole map (0.001 ms when little is mapped), so those pages never pile up."""
        self._release(0, self.size)

    def forget_metadata(self) -> None:
        """Drop `fields` once they are parsed into a config and a tokenizer: a file kept open to
        read rows from (lazy_rows.py) would otherwise keep SmolLM2's vocabulary and merges alive,
        ~9 MB of Python strings. The tensor directory and the map stay."""
        self.fields = {}

    def close(self) -> None:
        for m in self._map.maps if isinstance(self._map, JoinedMap) else [self._map]:
            try:
                m.close()
            except BufferError:  # an array still views the map; it closes when that array goes
                pass

    def __enter__(self) -> "GGUFFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _runs_past(data, pos: int, count: int, size: int) -> bool:
    """Whether `count` length-prefixed strings from `pos` run past `size` bytes of `data`."""
    unpack = struct.Struct("<Q").unpack_from
    for _ in range(count):
        if pos + 8 > size:
            return True
        pos += 8 + unpack(data, pos)[0]
        if pos > size:
            return True
    return False


class JoinedMap:
    """Memory maps of consecutive file parts, addressed as one file: slices give bytes, `span`
    a uint8 array (a view when the range lies in one part), `madvise` reaches every part."""

    def __init__(self, maps: list[mmap.mmap]):
        self.maps = maps
        self.starts = [0]
        for m in maps:
            self.starts.append(self.starts[-1] + len(m))

    def __len__(self) -> int:
        return self.starts[-1]

    def _pieces(self, start: int, stop: int):
        """(part, local start, local stop) for every part that [start, stop) touches."""
        for i, m in enumerate(self.maps):
            a, b = self.starts[i], self.starts[i + 1]
            if start < b and stop > a:
                yield m, max(start, a) - a, min(stop, b) - a

    def __getitem__(self, item: slice) -> bytes:
        start, stop, _ = item.indices(len(self))
        return b"".join(m[a:b] for m, a, b in self._pieces(start, stop))

    def span(self, start: int, nbytes: int) -> "np.ndarray":
        import numpy as np

        pieces = [
            np.frombuffer(m, dtype=np.uint8, count=b - a, offset=a) for m, a, b in self._pieces(start, start + nbytes)
        ]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def madvise(self, advice: int, start: int, length: int) -> None:
        page = mmap.PAGESIZE
        for m, a, b in self._pieces(start, start + length):
            first = a // page * page
            m.madvise(advice, first, b - first)

    def close(self) -> None:
        for m in self.maps:
            m.close()
