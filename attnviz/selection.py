"""Layer, head and token indices as users write them: "0,2", "1-3", "all", ASCII digits only."""

from __future__ import annotations

import re

from .errors import AttnvizError


def parse_indices(spec: str | None, count: int, what: str) -> list[int]:
    """Parse "0,2", "1-3", "all" (or None) into sorted unique indices below `count`.

    `what` names the thing ("layer", "head") for the error message.
    """
    if spec is None or spec.strip().lower() == "all":
        return list(range(count))
    if not spec.strip():  # `-l ""` must not silently mean every layer
        raise AttnvizError(
            f"invalid {what} selection {spec!r}: an empty selection; give indices and "
            "ranges such as 0,2 or 1-3, or 'all'"
        )
    chosen: set[int] = set()
    for part in spec.split(","):
        # [0-9], not \d: re, str.isdigit and int() also take other scripts' digits ("٣" is 3)
        match = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", part)
        lo, hi = (None, None) if not match else (ascii_index(match[1]), ascii_index(match[2] or match[1]))
        if lo is None or hi is None or hi < lo:
            raise AttnvizError(f"invalid {what} selection {spec!r}: use indices and ranges such as 0,2 or 1-3")
        if hi >= count:
            given = match[1] if match[2] is None else f"range {match[1]}-{match[2]}"
            raise AttnvizError(f"invalid {what} {given[:40]}: the model has {count} {what}s (0-{count - 1})")
        chosen.update(range(lo, hi + 1))
    return sorted(chosen)


# More digits than any index can have; int() of thousands of digits raises its own ValueError.
_MAX_INDEX_DIGITS = 18


def ascii_index(text: str) -> int | None:
    """`text` (spaces around it allowed) as a non-negative index when it is ASCII digits only,
    else None: str.isdigit and int() also take other scripts' digits ("٣" would be token 3) and
    superscripts. More than 18 digits is an index past any end (10**18)."""
    text = text.strip()
    if not text or not (text.isascii() and text.isdigit()):
        return None
    return int(text) if len(text) <= _MAX_INDEX_DIGITS else 10**_MAX_INDEX_DIGITS


def last_index(spec: str | None) -> int | None:
    """The highest index in a selection ("0,2" -> 2, "1-3" -> 3); None for all. A malformed
    selection gives None here and its own error from parse_indices once the count is known."""
    if spec is None or not re.fullmatch(r"[0-9\s,-]+", spec):  # ASCII digits only, as parse_indices
        return None
    numbers = [ascii_index(n) for n in re.findall(r"[0-9]+", spec)]
    return max(numbers) if numbers else None
