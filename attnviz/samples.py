"""The curated sample sentences that ship with attnviz, and a reader for sentence files.

The texts live in the repository's top-level `sample_texts/` folder; `attnviz/sample_texts` is a
symlink to it, declared as package data, so a normal (non-editable) `pip install` copies the real
files into the installed package and `sample_files()` finds them either way.

Sentence files are plain UTF-8 text, one sentence per line. Blank lines and lines whose first
non-blank character is `#` are skipped, so a file can open with a comment that says what it holds.
"""

from __future__ import annotations

from pathlib import Path

from .errors import AttnvizError
from .reading import read_stdin, read_text
from .text import LINE_BREAK

SAMPLE_DIR = Path(__file__).resolve().parent / "sample_texts"
COMMENT = "#"


def sample_dir() -> Path:
    """The folder holding the shipped sample texts (an error if the installation lacks it)."""
    if not SAMPLE_DIR.is_dir():
        raise AttnvizError(f"the sample texts are missing from this installation ({SAMPLE_DIR}); reinstall attnviz")
    return SAMPLE_DIR


def sample_files() -> list[Path]:
    """The shipped sample files (`*.txt`), sorted by name so every run sees the same order."""
    return sorted(sample_dir().glob("*.txt"))


def sample_names() -> list[str]:
    """Short names of the sample files: "classic", "korean", ..."""
    return [path.stem for path in sample_files()]


def resolve_text_file(spec: str | Path) -> Path:
    """A path to a sentence file, or the name of a shipped sample ("winograd", "korean.txt").

    An existing path wins over a sample of the same name.
    """
    path = Path(spec)
    if path.exists():
        return path
    name = path.name[:-4] if path.name.endswith(".txt") else path.name
    if path.parent == Path(".") and name in sample_names():
        return sample_dir() / f"{name}.txt"
    raise AttnvizError(
        f"no such file: {spec}; give a text file with one sentence per line or a "
        f"sample name ({', '.join(sample_names())})"
    )


def parse_sentences(text: str) -> list[str]:
    """Sentences of a file's content: one per line, without blank lines and `#` comments.

    Surrounding whitespace is stripped; a byte-order mark at the start is ignored.
    """
    text = text.removeprefix("\ufeff")
    sentences = []
    for line in LINE_BREAK.split(text):
        line = line.strip()
        if line and not line.startswith(COMMENT):
            sentences.append(line)
    return sentences


def read_sentences(path: str | Path, *, allow_empty: bool = False) -> list[str]:
    """The sentences of a UTF-8 text file ("-" reads standard input), in file order.

    Raises AttnvizError, naming the file, when it is missing, a folder, unreadable, not UTF-8 (with
    the line of the first bad byte), or (unless `allow_empty`) holds no sentence at all.
    """
    if str(path) == "-":
        text = read_stdin("text with one sentence per line")
        name = "standard input"
    else:
        name = str(path)
        text = read_text(path, "a text file with one sentence per line")
    sentences = parse_sentences(text)
    if not sentences and not allow_empty:
        raise AttnvizError(f"{name} holds no sentences (only blank lines and # comments); write one sentence per line")
    return sentences


def sample_sentences(name: str | None = None) -> list[str]:
    """The sentences of one shipped sample file by name ("korean"), or of all of them in order."""
    if name is None:
        return [s for path in sample_files() for s in read_sentences(path)]
    stem = name.removesuffix(".txt")
    if stem not in sample_names():
        raise AttnvizError(f"no sample named {name!r}; choose one of: {', '.join(sample_names())}")
    return read_sentences(sample_dir() / f"{stem}.txt")


def default_probe_sentences() -> list[str]:
    """Every shipped sample sentence once (first occurrence kept), for statistics over many texts."""
    return list(dict.fromkeys(sample_sentences()))
