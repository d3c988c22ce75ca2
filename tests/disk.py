"""What a folder holds, for tests of writing: whole trees with their bytes, temporary `.part`
files left behind, folders left empty."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry under `folder`: files with their bytes, folders as None."""
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))
    }


def empty_folders(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_dir() and not any(p.iterdir())]


def parts(folder: Path) -> list[Path]:
    """Temporary files (`.NAME.XXXX.part`) of writes that did not finish."""
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def listed_files(outdir: Path) -> set[str]:
    """The image paths an export's index.json lists."""
    manifest = json.loads((outdir / "index.json").read_text(encoding="utf-8"))
    return {f["path"] for s in manifest["sentences"] for f in s["files"]}


class FullDisk:
    """Stands in for attnviz.files._write_all: the first `room` files are written whole; the next gets
    half its bytes on disk, then ENOSPC, as a file system that runs out of blocks mid-file does."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.refused = 0

    def __call__(self, fd: int, data: bytes) -> None:
        if self.room > 0:
            self.room -= 1
            os.write(fd, data)
            return
        os.write(fd, data[: len(data) // 2])
        self.refused += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
