"""Reading what the user gives: text files, standard input and JSON, with plain one-line errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .errors import AttnvizError
from .text import check_text, decode_utf8


# Caps on what attnviz reads into memory, generous for real files (the largest tokenizer.json we
# know, Gemma's, is ~33 MB; the largest config.json a few KB) yet far below what a user's machine
# holds: /dev/zero or a huge file given by mistake is one clear line, not memory growing until the
# system kills something.
MB = 1024 * 1024
TEXT_LIMIT = 100 * MB  # sentences, probe items (.jsonl), inspect --file, standard input
JSON_LIMIT = 10 * MB  # config.json, tokenizer_config.json, safetensors indexes, cache entries
TOKENIZER_LIMIT = 200 * MB  # tokenizer.json

_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFSOCK: "a socket",
}


def read_bytes(path: str | Path, wanted: str, limit: int = TEXT_LIMIT) -> bytes:
    """The bytes of the regular file `path`, at most `limit` of them; anything else is an
    AttnvizError that names the file and ends with "give `wanted`".

    Opened with O_NONBLOCK, so a FIFO is refused instead of waiting forever for a writer; a
    device (/dev/zero), socket or folder is refused before a byte is read; a file growing past
    `limit` while read is refused when it gets there (st_size can lie: /proc, a file still written)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise AttnvizError(f"no such file: {path}; give {wanted}") from None
    except OSError as exc:
        raise AttnvizError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}; give {wanted}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise AttnvizError(f"{path} is a folder; give {wanted}")
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise AttnvizError(f"{path} is {kind}, not a regular file; give {wanted}")
        if info.st_size > limit:
            raise _too_big(path, limit, wanted)
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(8 * MB, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _too_big(path, limit, wanted)
    except OSError as exc:
        raise AttnvizError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}; give {wanted}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def check_regular_file(path: str | Path, wanted: str) -> None:
    """Refuse, without opening it, an existing `path` that is not a regular file (a folder, FIFO,
    device or socket), naming it; a missing path is left to the caller."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISDIR(mode):
        raise AttnvizError(f"{path} is a folder; give {wanted}")
    if not stat.S_ISREG(mode):
        raise AttnvizError(
            f"{path} is {_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, not a regular file; give {wanted}"
        )


def _too_big(path: Path, limit: int, wanted: str) -> AttnvizError:
    return AttnvizError(f"{path} is larger than {limit // MB} MB, more than attnviz reads; give {wanted}")


def read_text(path: str | Path, wanted: str, limit: int = TEXT_LIMIT) -> str:
    """A UTF-8 text file's contents (a byte-order mark dropped), or an AttnvizError that names the
    file; `wanted` says what the user should give instead, e.g. "a .jsonl file". Bounded and
    refusing what is not a regular file, as read_bytes."""
    return decode_utf8(read_bytes(path, wanted, limit), str(path), "save it as UTF-8")


def read_stdin(wanted: str) -> str:
    """Standard input as UTF-8 text, read as bytes: Python's own decoding would either fail with a
    traceback or, in UTF-8 mode, smuggle bad bytes through as lone surrogates."""
    import sys

    if sys.stdin is None:  # file descriptor 0 closed (`<&-`): Python sets sys.stdin to None
        raise AttnvizError(f"standard input is closed; give {wanted} on it")
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text-only stream (some test harnesses): its text is already decoded
        return check_text(sys.stdin.read(TEXT_LIMIT), "standard input")
    try:
        raw = stream.read(TEXT_LIMIT + 1)  # bounded: `< /dev/zero` must not fill the memory
    except OSError as exc:
        raise AttnvizError(f"cannot read standard input: {(exc.strerror or str(exc)).lower()}; give {wanted}") from None
    except ValueError:  # a closed stream
        raise AttnvizError(f"standard input is closed; give {wanted} on it") from None
    if len(raw) > TEXT_LIMIT:
        raise AttnvizError(
            f"standard input is larger than {TEXT_LIMIT // MB} MB, more than attnviz reads; give {wanted}"
        )
    return decode_utf8(raw, "standard input", "convert it to UTF-8")


def sentence_from_stdin() -> str:
    """`show -`: the sentence on standard input, the line break that ends it (echo's) dropped."""
    text = read_stdin("the sentence")
    return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith(("\n", "\r")) else text


class JSONLimitError(ValueError):
    """Well-formed JSON beyond what Python's parser takes: nested too deeply, or a number too long."""


def parse_json(text: str | bytes):
    """json.loads(text); JSON that is well formed but beyond Python's limits raises JSONLimitError
    (a ValueError, as a JSONDecodeError is) with a plain reason. Nesting by the thousand
    (`[[[[...`) makes json.loads raise RecursionError, which is no ValueError, so callers that
    treat a decode error as bad input would let it through as an internal error; an integer of
    thousands of digits raises a ValueError whose text tells the user to call
    sys.set_int_max_str_digits()."""
    import sys

    try:
        return json.loads(text)
    except RecursionError:
        raise JSONLimitError("arrays or objects nested too deeply") from None
    except json.JSONDecodeError:
        raise
    except ValueError:  # int() refusing the digits of a huge number
        raise JSONLimitError(f"a number longer than {sys.get_int_max_str_digits()} digits") from None
