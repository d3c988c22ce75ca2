"""Atomic file writes: a temporary name in the same folder, fsync, then rename into place.

An interrupted write leaves either the old file or the whole new one, never half of it. A write
the operating system refuses (read-only place, no permission, disk full, name too long) becomes a
`WriteError`: an AttnvizError (exit 2, one line) that names the path and the reason.
"""

from __future__ import annotations

import contextlib
import errno as errnos
import io
import os
import secrets
import stat
import sys
from pathlib import Path

from .errors import AttnvizError

# Longest part of a file name kept in a temporary name: `.{name}.{16 hex}.part` must itself fit in
# the 255 bytes most file systems allow for one name.
_TMP_NAME_BYTES = 200


class WriteError(AttnvizError):
    """The operating system refused a write: `path` could not be written, `errno` says why."""

    def __init__(self, message: str, path: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno

    def __reduce__(self):  # workers raise it; the main process must get the same fields back
        return (type(self), (str(self), self.path, self.errno))

    @property
    def disk_full(self) -> bool:
        return self.errno in (errnos.ENOSPC, errnos.EDQUOT)


_HINTS = {
    errnos.ENOSPC: "free some space",
    errnos.EDQUOT: "free some space",
    errnos.EROFS: "give a path on a writable file system",
    errnos.EACCES: "give a path you may write to",
    errnos.EPERM: "give a path you may write to",
    errnos.ENAMETOOLONG: "give a shorter name",
}


def write_error(path: str | Path, exc: OSError, action: str = "write") -> WriteError:
    """`cannot write PATH: reason; what to do` for an OSError met while writing PATH."""
    reason = (exc.strerror or str(exc)).lower()
    hint = _HINTS.get(exc.errno)
    return WriteError(f"cannot {action} {path}: {reason}" + (f"; {hint}" if hint else ""), str(path), exc.errno)


def check_writable(path: Path, overwrite: bool, links: str = "follow") -> None:
    """Refuse early what atomic_write would refuse: an existing file (unless `overwrite`), a folder,
    a device or pipe, a parent that is missing or is a file. Permissions are left to the write itself
    (root ignores them, and a read-only file system only says so when written).

    A symbolic link is an existing file even when it points nowhere (a dangling link): without
    `overwrite` it is refused; with it, what it points to is checked (atomic_write writes there),
    unless links="replace" (the link itself is what gets replaced)."""
    path = Path(path)
    try:
        info = path.lstat()
    except FileNotFoundError:
        info = None
    except NotADirectoryError:
        raise AttnvizError(f"cannot write {path}: {_file_in_the_way(path)} is a file, not a folder") from None
    except OSError as exc:
        raise write_error(path, exc) from None
    if info is not None and stat.S_ISLNK(info.st_mode):
        if not overwrite and links == "replace":
            raise AttnvizError(f"{path} already exists (a symbolic link); pass --overwrite to replace it")
        if not overwrite:
            raise AttnvizError(
                f"{path} already exists (a symbolic link); pass --overwrite to replace what it points to"
            )
        if links == "replace":
            return _check_folder(path)
        target = link_target(path)
        if target == path:  # a loop of links: nothing to write through to
            raise AttnvizError(f"cannot write {path}: a loop of symbolic links; remove the link or give another name")
        try:
            mode = target.stat().st_mode
        except OSError:  # dangling: the target will be created, in a folder that must exist
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise AttnvizError(f"{path} is a folder (a link to {target}); give a file name")
        if mode is not None and not stat.S_ISREG(mode):
            raise AttnvizError(f"{path} is not a regular file (a link to a device, pipe or socket); give a file name")
        _check_folder(target)
        return
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise AttnvizError(f"{path} is a folder; give a file name")
        if not overwrite:
            raise AttnvizError(f"{path} already exists; pass --overwrite to replace it")
        if not stat.S_ISREG(info.st_mode):
            raise AttnvizError(f"{path} is not a regular file (a device, pipe or socket); give a file name")
    _check_folder(path)


def _check_folder(path: Path) -> None:
    folder = _folder_of(path)
    if not folder.is_dir():
        if folder.exists():
            raise AttnvizError(f"cannot write {path}: {folder} is a file, not a folder")
        raise AttnvizError(f"cannot write {path}: folder {folder} does not exist")


def link_target(path: Path) -> Path:
    """Where the symbolic link `path` finally points (it need not exist: a dangling link); `path`
    itself for a loop of links."""
    try:
        return Path(os.path.realpath(path, strict=False))
    except OSError:  # ELOOP (realpath raises it only in strict mode on some Pythons)
        return path


def check_distinct(outputs: dict[str, Path | None]) -> None:
    """Refuse two options that name one file (`--png a.png --html a.png`, or through a symbolic
    link): the second write would silently replace the first, or, without --overwrite, fail after
    the first was written. `outputs` maps each option's name to its path (None: not given)."""
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        where = os.path.realpath(path)
        if where in seen:
            raise AttnvizError(f"{seen[where]} and {option} both name {path}: give each output its own file")
        seen[where] = option


def atomic_write(path: str | Path, data: bytes | str, overwrite: bool = False, links: str = "follow") -> Path:
    """Write `data` to `path` through a temporary file in the same folder, renamed into place.

    The file gets the mode the umask gives a new file (0644 under umask 022), as `open()` would;
    the temporary file (created 0600 so no one reads half of it) is set to that mode before the
    rename. On any failure the temporary file is removed and nothing else changes.

    `path` a symbolic link (allowed only with `overwrite`): with links="follow" the file it points to
    is replaced, atomically (the temporary file sits in the target's folder), and the link stays, as
    `> link` in a shell writes through it; links="replace" replaces the link itself by the file.
    Returns `path`.
    """
    path = Path(path)
    check_writable(path, overwrite, links)
    if isinstance(data, str):
        data = data.encode("utf-8")
    target = link_target(path) if links == "follow" and path.is_symlink() else path
    tmp = temporary_name(_folder_of(target), target.name)
    try:
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            tmp = None  # a name clash: that file is someone else's
            raise
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            discard(tmp)
        if isinstance(exc, OSError):
            raise write_error(path, exc) from None
        raise
    return path


def discard(path: Path) -> None:
    """Remove a temporary file of ours if it is there. Its own failure is never reported: on a
    read-only file system unlink says EROFS even for a file that was never created, and that must
    not hide the error that made us clean up (the caller re-raises that one)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def temporary_name(folder: Path, name: str) -> Path:
    """`folder/.NAME.XXXXXXXXXXXXXXXX.part`: a fresh temporary name beside the file or folder `name`.

    Not tempfile.mkstemp/mkdtemp: a signal handler that raises (Ctrl-C; SIGTERM during export,
    see workers.py) can run after they created the file but before they returned its name, and
    the caller could then never remove it. Choosing the name first, then creating it with O_EXCL
    inside the caller's try, leaves no such moment. 64 random bits make a clash (FileExistsError:
    the caller must then leave that file alone) practically impossible; it is reported, not retried.
    """
    return folder / f".{cut_to_bytes(name)}.{secrets.token_hex(8)}.part"


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out (a write may take fewer than asked); ENOSPC raises here."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def make_folders(folder: str | Path, created: list[Path] | None = None) -> list[Path]:
    """mkdir -p `folder`; returns the folders it created, outermost first (so a caller that fails
    later can take them away again with `remove_empty`). Refusals become WriteError.

    Given `created` (a caller's list), each folder is put in it *before* its mkdir: a signal that
    interrupts this call (a worker stopped mid-task) still leaves every folder it made listed, and
    removing a listed folder that was never made is harmless."""
    folder = Path(folder)
    missing = []
    probe = folder
    while not probe.is_dir():
        if probe.exists() or probe.is_symlink():
            raise AttnvizError(f"cannot create folder {folder}: {probe} is a file, not a folder")
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    created = [] if created is None else created
    start = len(created)
    for path in reversed(missing):
        created.append(path)
        try:
            path.mkdir()
        except FileExistsError:
            created.remove(path)  # someone else made it: not ours to take away
            if not path.is_dir():
                raise AttnvizError(f"cannot create folder {folder}: {path} is a file, not a folder") from None
            continue
        except OSError as exc:
            created.remove(path)
            remove_empty(created[start:])
            raise write_error(path, exc, "create folder") from None
    return created[start:]


def remove_empty(folders: list[Path]) -> None:
    """Remove those of `folders` (outermost first, as make_folders returns them) that are empty."""
    for path in reversed(folders):
        try:
            path.rmdir()
        except OSError:  # not empty (someone wrote into it) or already gone: leave it
            pass


def current_umask() -> int:
    """The process's umask, read without changing it where Linux allows (os.umask can only set it,
    and setting it twice races with threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def _file_in_the_way(path: Path) -> Path:
    """The first ancestor of `path` that exists but is not a folder (why stat said ENOTDIR)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path.parent


def cut_to_bytes(name: str, limit: int = _TMP_NAME_BYTES) -> str:
    """`name` cut to at most `limit` bytes of UTF-8, at a character boundary."""
    try:
        return name.encode("utf-8")[:limit].decode("utf-8", "ignore")
    except UnicodeEncodeError:  # a name that is not UTF-8 (-o $'\xff.json', bytes kept as surrogates)
        return os.fsdecode(os.fsencode(name)[:limit])


# Standard output ----------------------------------------------------------------------------------


class _CheckedStdout(io.RawIOBase):
    """File descriptor 1 for Python's buffered writer: a refused write (`> /dev/full`, a full disk,
    EIO) becomes a WriteError naming standard output instead of an OSError no one expects; a
    closed pipe stays a BrokenPipeError (a reader that left is not an error). After either, further
    writes are dropped, so the final flush at exit cannot fail a second time. BufferedWriter calls
    write() again for what a short write left, so every byte is out or reported."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self.failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data) -> int:
        if self.failed:
            return len(data)
        try:
            return os.write(self._fd, data)
        except BrokenPipeError:
            self.failed = True
            raise
        except OSError as exc:
            self.failed = True
            raise write_error("standard output", exc) from None


@contextlib.contextmanager
def checked_stdout():
    """Within the block, sys.stdout writes to file descriptor 1 through _CheckedStdout, in the same
    encoding, with unencodable characters replaced (PYTHONIOENCODING=ascii: `?` for `·`, not a
    crash). Left alone when sys.stdout is not the process's own (a test harness capturing it).
    The caller flushes (finish_stdout) before the block ends, to report what the flush meets."""
    original = sys.stdout
    try:
        fd = original.fileno() if original is not None and original is sys.__stdout__ else None
    except (OSError, ValueError, AttributeError):
        fd = None
    if fd is None:
        yield
        return
    original.flush()
    stream = io.TextIOWrapper(
        io.BufferedWriter(_CheckedStdout(fd)),
        encoding=original.encoding,
        errors="replace",
        line_buffering=original.line_buffering,
    )
    sys.stdout = stream
    try:
        yield
    finally:
        sys.stdout = original
        try:
            stream.flush()
        except Exception:  # finish_stdout reported it already; the raw layer now drops bytes
            pass
        with contextlib.suppress(Exception):
            stream.detach()  # fd 1 stays open: it was never ours to close


def write_stdout_bytes(data: bytes) -> None:
    """`data` (UTF-8 machine-readable output, whatever the terminal's encoding) to standard output,
    after anything already written as text."""
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a text-only stream (a test harness): its text is already decoded
        stream.write(data.decode("utf-8"))
        return
    stream.flush()
    buffer.write(data)
    buffer.flush()
