"""The process's surroundings checked once, before any command runs: what would otherwise fail deep
inside a library with its own message (or none) becomes one attnviz error line up front."""

from __future__ import annotations

import os
from collections.abc import Callable


def check_environment(fail: Callable[[str, int], int]) -> int | None:
    """None when the command may run; else the exit status after `fail` printed the one line.

    - A deleted working folder: relative paths cannot resolve (os.getcwd raises), and oneMKL, which
      torch loads, prints its own fatal line and exits. Refused before anything starts.
    - MPLBACKEND: attnviz draws with matplotlib's Agg canvas directly and never uses pyplot, so the
      user's backend choice does not concern it; an unknown name would still make `import
      matplotlib` fail. Our process (and its export workers) use Agg.
    """
    try:
        os.getcwd()
    except FileNotFoundError:
        return fail("the current folder no longer exists (it was deleted); cd to a folder that exists", 2)
    except OSError as exc:
        return fail(f"cannot tell the current folder: {(exc.strerror or str(exc)).lower()}; cd to another folder", 2)
    os.environ["MPLBACKEND"] = "agg"
    return None
