"""Reading what the user gives: text files, standard input and JSON, with plain one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import AttnvizError
from .text import check_text, decode_utf8


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
