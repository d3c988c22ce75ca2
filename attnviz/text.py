"""Text checks shared by every reader: where lines break, and text that must be valid UTF-8."""

from __future__ import annotations

import re

from .errors import AttnvizError

# A line ends at \n, \r\n or \r only, as `wc -l` and editors count them: str.splitlines would
# also split at U+2028, U+2029, U+0085, \x0b, \x0c and \x1c-\x1e, which can sit inside a sentence
# (or inside a JSON string of a .jsonl line).
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def decode_utf8(raw: bytes, name: str, fix: str) -> str:
    """`raw` as UTF-8 text (a byte-order mark dropped), or an AttnvizError naming `name` and the
    line of the first bad byte, then `fix` (what to do about it)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise AttnvizError(f"{name} is not UTF-8 text (bad byte at line {line}); {fix}") from None


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


def json_text(data, indent: int | None = None) -> str:
    """`data` as JSON text (non-ASCII kept) ending in a line break. NaN and infinity are refused
    (allow_nan=False): Python would write them as NaN/Infinity literals, which are not JSON and
    which other tools reject. The forward pass refuses non-finite numbers already (numerics.py);
    this is the writer's own guard, one clear line instead of an invalid file."""
    import json

    try:
        return json.dumps(data, ensure_ascii=False, indent=indent, allow_nan=False) + "\n"
    except ValueError:
        raise AttnvizError(
            "the output holds NaN or infinity, which JSON cannot carry; the model's numbers are not finite"
        ) from None


def shown(value, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters, for error lines: a config value can be a list of a
    million numbers or nested thousands deep (repr would then raise RecursionError)."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"a {type(value).__name__} nested too deeply"
    return text if len(text) <= limit else text[: limit - 3] + "..."
