"""The sentences typed into the explorer, kept across runs.

One JSON string per line (a sentence may hold any character) in `$ATTNVIZ_STATE_DIR`, else
`$XDG_STATE_HOME/attnviz`, else `~/.local/state/attnviz`, file `explore-history.jsonl`; written
atomically (attnviz.files), the newest last, at most MAX_ENTRIES. A file that cannot be read or
written never stops the explorer: it starts with an empty history and says why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import AttnvizError
from ..files import atomic_write
from ..reading import parse_json

MAX_ENTRIES = 200
FILE_NAME = "explore-history.jsonl"


def state_dir() -> Path:
    if os.environ.get("ATTNVIZ_STATE_DIR"):
        return Path(os.environ["ATTNVIZ_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "attnviz"


class History:
    """Entries oldest first, and a cursor for up/down (len(entries): the line being typed)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else state_dir() / FILE_NAME
        self.entries: list[str] = []
        self.note: str | None = None
        self.cursor = 0
        self._draft = ""
        self._load()

    def _load(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.note = f"history not read ({type(exc).__name__}): starting empty"
            return
        for line in lines:
            try:
                entry = parse_json(line)
            except ValueError:
                continue  # a damaged line costs that line, not the history
            if isinstance(entry, str) and entry.strip():
                self.entries.append(entry)
        self.entries = self.entries[-MAX_ENTRIES:]
        self.cursor = len(self.entries)

    def add(self, sentence: str) -> str | None:
        """Remember `sentence` (moved to the end if known) and save; returns a note if saving failed."""
        self.cursor = len(self.entries)
        if not sentence.strip():
            return None
        if sentence in self.entries:
            self.entries.remove(sentence)
        self.entries.append(sentence)
        self.entries = self.entries[-MAX_ENTRIES:]
        self.cursor = len(self.entries)
        self._draft = ""
        text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.entries)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, text, overwrite=True)
        except (OSError, AttnvizError) as exc:
            return f"history not saved: {exc}"
        return None

    def older(self, current: str) -> str:
        """Up: the previous sentence (the line being typed is kept for the way back)."""
        if self.cursor == len(self.entries):
            self._draft = current
        self.cursor = max(0, self.cursor - 1)
        return self.entries[self.cursor] if self.entries else current

    def newer(self) -> str:
        """Down: the next sentence, and past the newest the line that was being typed."""
        self.cursor = min(len(self.entries), self.cursor + 1)
        return self.entries[self.cursor] if self.cursor < len(self.entries) else self._draft
