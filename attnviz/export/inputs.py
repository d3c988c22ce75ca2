"""The sentences of an export: arguments, text files, folders of `.txt` files and standard input.

What is read is bounded (MAX_INPUT_BYTES per file or standard input, so `export - < /dev/zero`
stops with one line instead of growing without limit) and only regular files are read: a FIFO
would block, a device would never end.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

from ..errors import AttnvizError
from ..text import check_text, decode_utf8

MAX_INPUT_BYTES = 64 * 1024 * 1024  # 64 MB of text: about a million sentences, far beyond an export
WANTED = "give text files, folders of .txt files, '-' for standard input, or sentences"


@dataclass(frozen=True)
class Sentence:
    index: int  # 1-based position among all inputs: the number in its folder name
    text: str
    source: str  # where it came from, for messages: "notes.txt, line 3", "argument 2", "stdin, line 1"


def collect_sentences(inputs: Iterable[str]) -> list[Sentence]:
    """Expand INPUTS: "-" reads standard input, a file gives its lines, a folder its `*.txt` files
    (sorted by name, not recursive), anything else is a sentence itself.

    An input that looks like a path (ends in .txt, or contains a path separator and no spaces) but
    does not exist is an error rather than a sentence: it is almost certainly a typo.
    """
    found: list[tuple[str, str]] = []
    stdin_used = False
    for position, spec in enumerate(inputs, start=1):
        kind = path_kind(spec) if spec.strip() else None
        if spec == "-":
            if stdin_used:
                raise AttnvizError("'-' (standard input) is given twice; give it once")
            stdin_used = True
            found += _numbered(read_lines("-"), "stdin")
        elif kind == "folder":
            found += _folder_sentences(Path(spec))
        elif kind == "file":
            found += _numbered(read_lines(spec), spec)
        elif kind == "other":
            raise AttnvizError(f"{spec} is not a regular file (a pipe, a device or a socket); {WANTED}")
        elif _looks_like_path(spec):
            raise AttnvizError(f"no such file or folder: {spec}; {WANTED}")
        else:
            found.append((spec, f"argument {position}"))
    if not found:
        raise AttnvizError("no sentences to export: the inputs hold only blank lines and # comments")
    return [Sentence(i, text, source) for i, (text, source) in enumerate(found, start=1)]


def _numbered(texts: list[str], source: str | Path) -> list[tuple[str, str]]:
    return [(text, f"{source}, sentence {k}") for k, text in enumerate(texts, start=1)]


def _folder_sentences(folder: Path) -> list[tuple[str, str]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".txt" and path_kind(p) == "file")
    if not files:
        raise AttnvizError(f"folder {folder} holds no .txt files; give text files with one sentence a line")
    return [pair for file in files for pair in _numbered(read_lines(file), file)]


def path_kind(spec: str | Path) -> str | None:
    """ "folder", "file", "other" (a FIFO, a device, a socket) or None (nothing there): a long
    sentence is too long to be a file name (the system says ENAMETOOLONG), one with a NUL byte
    cannot be one; both are sentences, not errors."""
    try:
        mode = os.stat(spec).st_mode
    except (OSError, ValueError):
        return None
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"


def _looks_like_path(spec: str) -> bool:
    s = spec.strip()
    return bool(s) and (s.lower().endswith(".txt") or (("/" in s or os.sep in s) and " " not in s))


def read_lines(path: str | Path) -> list[str]:
    """Sentences of a file (or "-" for standard input): one a line, blank lines and # comments skipped."""
    from ..samples import parse_sentences

    if str(path) == "-":
        return parse_sentences(_read_stdin())
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced since it was looked at
                raise AttnvizError(f"{path} is not a regular file; {WANTED}")
            raw = read_bounded(handle, str(path))
    except FileNotFoundError:
        raise AttnvizError(f"no such file: {path}; {WANTED}") from None
    except OSError as exc:
        raise AttnvizError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_sentences(decode_utf8(raw, str(path), "save it as UTF-8"))


def _read_stdin() -> str:
    """Standard input's text; one line when it is closed (`export - <&-`: sys.stdin is None)."""
    stream = getattr(sys.stdin, "buffer", None) if sys.stdin is not None else None
    if sys.stdin is None or getattr(sys.stdin, "closed", False):
        raise AttnvizError("standard input is closed; give the sentences as arguments or in a file")
    if stream is None:  # a text-only stream (a test harness): its text is already decoded
        text = sys.stdin.read(MAX_INPUT_BYTES + 1)
        if len(text) > MAX_INPUT_BYTES:
            raise _too_big("standard input", MAX_INPUT_BYTES)
        return check_text(text, "standard input")
    try:
        raw = read_bounded(stream, "standard input")
    except AttnvizError:
        raise
    except (OSError, ValueError) as exc:  # EBADF, or a stream closed under us
        raise AttnvizError(f"cannot read standard input: {getattr(exc, 'strerror', None) or exc}") from None
    return decode_utf8(raw, "standard input", "convert it to UTF-8")


def read_bounded(stream: BinaryIO, name: str, limit: int | None = None) -> bytes:
    """At most `limit` (default MAX_INPUT_BYTES) bytes of `stream`; AttnvizError when there is more."""
    limit = MAX_INPUT_BYTES if limit is None else limit
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise _too_big(name, limit)
    return raw


def _too_big(name: str, limit: int) -> AttnvizError:
    return AttnvizError(f"{name} holds more than {limit // (1024 * 1024)} MB of text; split it into smaller files")
