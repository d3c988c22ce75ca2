"""Progress of long loops (probe coref, inspect over many sentences): a rich progress bar on a
terminal; otherwise (piped, logged, in a scheduler) one plain line on stderr every few seconds,
so a 10-minute run is never silent. Nothing at all for work that ends within the first interval."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

PLAIN_EVERY_SECONDS = 5.0


@contextlib.contextmanager
def progress(label: str, total: int, every: float | None = None) -> Iterator[Callable[[int], None]]:
    """Yields advance(n): call it as work completes. `every`: seconds between plain lines
    (default PLAIN_EVERY_SECONDS)."""
    if sys.stderr is not None and sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.advance(task, n)
        return
    yield _PlainProgress(label, total, PLAIN_EVERY_SECONDS if every is None else every).advance


class _PlainProgress:
    """`attnviz: LABEL: 640/100000 (0.6%), 10 s` on stderr, at most once every `every` seconds."""

    def __init__(self, label: str, total: int, every: float) -> None:
        self.label, self.total, self.every = label, total, every
        self.done = 0
        self.start = self.last = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < self.every or self.done >= self.total or sys.stderr is None:
            return
        self.last = now
        share = 100 * self.done / self.total if self.total else 100.0
        line = f"attnviz: {self.label}: {self.done}/{self.total} ({share:.1f}%), {now - self.start:.0f} s"
        try:
            print(line, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr gone: progress is a courtesy, never a failure
            pass
