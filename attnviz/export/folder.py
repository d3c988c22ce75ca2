"""The export folder itself: whether it can be one, who writes into it, and how nothing written
there leaves it.

- Symbolic links are never followed out of the folder: a link where a sentence folder goes fails
  that sentence (its target may be anywhere, the user's own files included); a link where an
  image, a page or index.json goes counts as an existing file, and with `--overwrite` the link
  itself is replaced by the new file, never what it points to.
- One export at a time: an export holds an advisory lock (flock) on OUTDIR/.attnviz-export.lock
  while it writes; a second export into the same folder is refused. The kernel drops the lock
  when the process ends however it ends, so a file left behind by a killed export locks nothing;
  a finished export removes it.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path

from ..errors import AttnvizError
from ..files import write_error

LOCK_FILE = ".attnviz-export.lock"
_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)  # no lock file: no other file either
_UNLOCKABLE = (errno.ENOLCK, errno.EOPNOTSUPP)  # a file system without locks: go on unlocked
_PART = re.compile(r"^\..+\.part$")  # atomic_write's temporary files, `.NAME.<hex>.part`


def check_outdir(outdir: str | Path) -> None:
    """Refuse an output folder that cannot be one (a file, or a file among its parents, or a name
    the system rejects), before any slow work. Whether it may be written is known only on writing."""
    outdir = Path(outdir)
    probe = outdir
    while True:
        try:
            mode = os.stat(probe).st_mode
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                return
            probe = probe.parent
            continue
        except OSError as exc:
            raise write_error(outdir, exc, "create folder") from None
        if stat.S_ISDIR(mode):
            return
        if probe == outdir:
            raise AttnvizError(f"{outdir} is a file; give a folder for the export")
        raise AttnvizError(f"cannot create folder {outdir}: {probe} is a file, not a folder")


def check_inside(outdir: Path, folder: Path) -> None:
    """Refuse a symbolic link at `folder` or between it and OUTDIR: what is written there would
    land outside the export folder."""
    while folder != outdir and outdir in folder.parents:
        if folder.is_symlink():
            raise AttnvizError(
                f"{folder} is a symbolic link; export never writes through one (it may point outside "
                f"{outdir}): remove it, or use another folder"
            )
        folder = folder.parent


def write_inside(target: Path, data: bytes | str) -> None:
    """atomic_write into `target`, replacing a symbolic link there rather than what it points to."""
    from ..files import atomic_write

    if target.is_symlink():
        target.unlink()
    atomic_write(target, data, overwrite=True)


def remove_stale_parts(outdir: Path, folder: str) -> None:
    """Temporary files left by an export that was killed mid-write (atomic_write's `.NAME.*.part`);
    never in a folder reached through a symbolic link."""
    path = outdir / folder
    if path.is_dir() and not path.is_symlink():
        for entry in path.iterdir():
            if _PART.match(entry.name) and entry.is_file() and not entry.is_symlink():
                entry.unlink(missing_ok=True)


class FolderLock:
    """The advisory lock of one export folder, held from `acquire()` to `release()`."""

    def __init__(self, outdir: Path) -> None:
        self.path = Path(outdir) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> "FolderLock":
        """Take the lock, or AttnvizError when another export holds it."""
        import fcntl

        while self.fd is None:
            fd = self._open()
            if fd is None:
                return self
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise AttnvizError(
                    f"another attnviz export is writing into {self.path.parent} (it holds {self.path}); "
                    "wait for it to finish, or export into another folder"
                ) from None
            except OSError as exc:
                os.close(fd)
                if exc.errno in _UNLOCKABLE:
                    return self
                raise write_error(self.path, exc, "lock") from None
            # The lock is on the file we opened; a finishing export may have removed that file
            # from the folder meanwhile (release), so it must still be the one named LOCK_FILE.
            if _same_file(fd, self.path):
                self.fd = fd
            else:
                os.close(fd)
        return self

    def _open(self) -> int | None:
        """The lock file, opened; None when the folder cannot be written at all (then the export
        fails on its first write, with the message that names the file)."""
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise AttnvizError(
                    f"{self.path} is a symbolic link; export never writes through one: remove it"
                ) from None
            if exc.errno in _UNWRITABLE:
                return None
            raise write_error(self.path, exc, "lock") from None

    def release(self) -> None:
        """Remove the lock file (while still holding it, so no one locks a file about to vanish)
        and drop the lock."""
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:  # a read-only folder by now: the stale file locks nothing
            pass
        os.close(self.fd)
        self.fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
