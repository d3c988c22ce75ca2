"""`--device auto`: accelerate places a transformers model across the GPUs, the CPU and disk.

Accelerate's big-model inference (`from_pretrained(device_map="auto")`) fills each GPU up to its
budget, then the CPU, and leaves the rest on disk: those weights stay in the checkpoint (or in an
offload folder) and are read into memory layer by layer as the forward pass reaches them. This
module holds the parts that need no torch: `--max-memory` parsed strictly, the offload folder
attnviz creates and always removes, and the placement said in one line for headers and JSON.

Torch-free at module level (the CLI checks `--max-memory` before torch loads).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import weakref
from pathlib import Path

from ..errors import AttnvizError

AUTO = "auto"
MAX_MEMORY_FORM = "give DEVICE=SIZE pairs separated by commas, e.g. cpu=2GiB or 0=20GiB,cpu=30GiB"
# Binary units (GiB) and decimal ones (GB), as accelerate reads them; bare digits are bytes; a
# bare K, M, G, T is binary, as in ATTNVIZ_MAX_MEMORY (sizes.parse_bytes).
UNITS = {
    "": 1,
    "B": 1,
    "K": 2**10,
    "M": 2**20,
    "G": 2**30,
    "T": 2**40,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
_SIZE = re.compile(r"([0-9]{1,15}(?:\.[0-9]{1,9})?)([A-Za-z]{0,3})")
_GPU = re.compile(r"(?:cuda:)?([0-9]{1,3})")


def parse_max_memory(text: str) -> dict[str | int, int]:
    """`--max-memory` as accelerate's max_memory: {"cpu": bytes, "mps": bytes, GPU index: bytes}.
    "cpu=2GiB", "0=20GiB,cpu=30GiB", "cuda:1=8GB"; anything else (an unknown device, a size
    without digits, a key given twice, zero) is one line saying the form."""
    given = " ".join(str(text).split())
    shown = given if len(given) <= 60 else given[:60] + "..."
    if not given:
        raise AttnvizError(f"--max-memory is empty; {MAX_MEMORY_FORM}")
    budget: dict[str | int, int] = {}
    for part in given.split(","):
        key, equals, size = (s.strip() for s in part.partition("="))
        if not equals or not key or not size:
            raise AttnvizError(f"--max-memory {shown!r}: {part.strip()!r} is not DEVICE=SIZE; {MAX_MEMORY_FORM}")
        gpu = _GPU.fullmatch(key)
        if gpu:
            device: str | int = int(gpu[1])
        elif key.lower() in ("cpu", "mps"):
            device = key.lower()
        else:
            raise AttnvizError(
                f"--max-memory {shown!r}: unknown device {key!r}; name cpu, mps or a GPU index (0, 1... or cuda:0)"
            )
        match = _SIZE.fullmatch(size.replace(" ", ""))
        unit = match[2].upper() if match else None
        if unit not in UNITS:
            raise AttnvizError(
                f"--max-memory {shown!r}: {size!r} is not a size; give bytes or a number with a unit "
                "(GiB, MiB, GB, MB...), e.g. cpu=2GiB"
            )
        value = int(float(match[1]) * UNITS[unit])
        if value <= 0:
            raise AttnvizError(f"--max-memory {shown!r}: {key}={size} leaves no memory; give a positive size")
        if device in budget:
            raise AttnvizError(f"--max-memory {shown!r}: {key} is given twice")
        budget[device] = value
    return budget


def device_name(device) -> str:
    """A device_map value as people read it: a GPU index is "cuda:N"; "cpu", "disk", "mps" as is."""
    return f"cuda:{device}" if isinstance(device, int) else str(device)


def placement_summary(device_map: dict | None) -> str:
    """Where accelerate put each part of the model, in one line: "cpu: embed_tokens, layers.0-1;
    disk: layers.2-3, norm". Consecutive numbered modules are one range; devices in map order."""
    if not device_map:
        return "nothing placed"
    groups: dict[str, list[str]] = {}
    for module, device in device_map.items():
        groups.setdefault(device_name(device), []).append(module or "the whole model")
    return "; ".join(f"{device}: {', '.join(_ranges(names))}" for device, names in groups.items())


def _ranges(names: list[str]) -> list[str]:
    """["layers.0", "layers.1", "layers.2", "norm"] -> ["layers.0-2", "norm"]."""
    out: list[str] = []
    run: tuple[str, int, int] | None = None  # (prefix, first, last)
    for name in names:
        prefix, dot, index = name.rpartition(".")
        if dot and index.isascii() and index.isdigit():
            n = int(index)
            if run is not None and run[0] == prefix and n == run[2] + 1:
                run = (prefix, run[1], n)
                continue
            if run is not None:
                out.append(_range(run))
            run = (prefix, n, n)
            continue
        if run is not None:
            out.append(_range(run))
            run = None
        out.append(name)
    if run is not None:
        out.append(_range(run))
    return out


def _range(run: tuple[str, int, int]) -> str:
    prefix, first, last = run
    return f"{prefix}.{first}" if first == last else f"{prefix}.{first}-{last}"


def offloaded(device_map: dict | None) -> bool:
    """Whether some of the model was left on disk (read layer by layer as the pass reaches it)."""
    return bool(device_map) and "disk" in {device_name(d) for d in device_map.values()}


class OffloadFolder:
    """The folder accelerate may write offloaded weights to: a new, empty `attnviz-offload-*`
    folder made inside `parent` (the system's temporary folder by default, or `--offload-dir`), so
    that removing it can never remove a file the user had. Removed by `close()` (the CLI calls it
    when the command ends, also on Ctrl-C, SIGTERM and errors) or, as a last resort, when the
    object is collected or Python exits."""

    def __init__(self, parent: Path | None = None) -> None:
        where = "the temporary folder" if parent is None else f"--offload-dir {parent}"
        if parent is not None:
            parent = Path(parent).expanduser()
            if not parent.is_dir():
                what = "does not exist" if not parent.exists() else "is not a folder"
                raise AttnvizError(f"--offload-dir {parent} {what}; give a folder attnviz may write to")
        try:
            self.path = Path(tempfile.mkdtemp(prefix="attnviz-offload-", dir=parent))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise AttnvizError(
                f"cannot make an offload folder in {where} ({reason}); give --offload-dir a writable folder"
            ) from None
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), ignore_errors=True)

    def close(self) -> None:
        """Remove the folder and whatever was offloaded into it (idempotent)."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive
