"""The shipped sample texts: content, the sentence reader, and that a real install carries them."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from attnviz import samples
from attnviz.errors import AttnvizError

REPO = Path(__file__).resolve().parents[2]
TOP_LEVEL = REPO / "sample_texts"


def _content_lines(path: Path) -> list[str]:
    """Independent reference reader: non-blank lines that are not comments."""
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").split("\n")
        if line.strip() and not line.strip().startswith("#")
    ]


def _one_word_twins(lines: list[str]) -> list[tuple[str, str]]:
    """Adjacent lines with the same number of words that differ in exactly one word."""
    pairs = []
    for a, b in zip(lines, lines[1:]):
        wa, wb = a.split(), b.split()
        if len(wa) == len(wb) and sum(x != y for x, y in zip(wa, wb)) == 1:
            pairs.append((a, b))
    return pairs


def test_sample_files_are_themed_and_open_with_a_comment():
    files = samples.sample_files()
    assert [p.name for p in files] == sorted(p.name for p in files)
    assert {"classic", "winograd", "ambiguous_words", "korean"} <= set(samples.sample_names())
    for path in files:
        first = path.read_text(encoding="utf-8").split("\n")[0]
        assert first.startswith("# ") and len(first) > 10, path
        sentences = samples.read_sentences(path)
        assert sentences == _content_lines(path)
        assert all(not s.startswith("#") and s == s.strip() for s in sentences)


def test_sample_set_is_modest_and_holds_the_classics():
    every = samples.sample_sentences()
    assert 40 <= len(every) <= 70
    classic = samples.sample_sentences("classic")
    for sentence in [
        "The cat sat on the mat.",
        "All is well.",
        "A dog ate food because it was hungry.",
        "The animal didn't cross the street because it was too tired.",
    ]:
        assert sentence in classic
    assert "개가 배고파서 음식을 먹었다." in samples.sample_sentences("korean.txt")
    ambiguous = " ".join(samples.sample_sentences("ambiguous_words")).lower().split()
    assert ambiguous.count("bank") >= 2 and ambiguous.count("bat") >= 2


def test_winograd_file_is_made_of_adjacent_one_word_twins():
    lines = samples.sample_sentences("winograd")
    assert len(lines) % 2 == 0 and len(lines) >= 8
    pronouns = {"it", "they", "he", "she"}
    for a, b in zip(lines[::2], lines[1::2]):
        assert _one_word_twins([a, b]) == [(a, b)], (a, b)
        assert pronouns & set(a.lower().split()), a
    assert (
        "The animal didn't cross the street because it was too tired.",
        "The animal didn't cross the street because it was too wide.",
    ) in _one_word_twins(lines)


def test_korean_file_has_twins_with_a_pronoun():
    lines = samples.sample_sentences("korean")
    twins = _one_word_twins(lines)
    assert len(twins) >= 4
    for a, _ in twins:
        assert any(word.startswith(("그것", "그가", "그는")) for word in a.split()), a
    hangul = [s for s in lines if any("\uac00" <= ch <= "\ud7a3" for ch in s)]
    assert hangul == lines


def test_default_probe_sentences_are_every_sample_once_in_file_order():
    expected = []
    for path in sorted(TOP_LEVEL.glob("*.txt")) if TOP_LEVEL.is_dir() else samples.sample_files():
        for line in _content_lines(path):
            if line not in expected:
                expected.append(line)
    assert samples.default_probe_sentences() == expected
    # The signature sentence is in two files but probed once.
    assert samples.default_probe_sentences().count("The animal didn't cross the street because it was too tired.") == 1


def test_every_sample_tokenizes_without_unknown_tokens():
    from attnviz.tokenize import TextTokenizer

    tok = TextTokenizer.default()
    for sentence in samples.default_probe_sentences():
        enc = tok.encode(sentence, max_len=256, truncate=False)
        assert "[UNK]" not in enc.tokens, sentence
        assert sum(not s for s in enc.special) >= 3


def test_read_sentences_skips_comments_blanks_and_bom(tmp_path):
    path = tmp_path / "s.txt"
    path.write_bytes(
        "\ufeff# a comment\n\n  First one.  \r\n   # indented comment\nSecond #2 keeps its hash.\n\n".encode("utf-8")
    )
    assert samples.read_sentences(path) == ["First one.", "Second #2 keeps its hash."]
    assert samples.read_sentences(str(path)) == ["First one.", "Second #2 keeps its hash."]


def test_read_sentences_errors_name_the_file(tmp_path):
    with pytest.raises(AttnvizError, match="no such file: .*nope.txt"):
        samples.read_sentences(tmp_path / "nope.txt")
    with pytest.raises(AttnvizError, match="is a folder"):
        samples.read_sentences(tmp_path)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok line\nsecond\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(AttnvizError, match=r"latin1.txt is not UTF-8 text \(bad byte at line 3\)"):
        samples.read_sentences(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n", encoding="utf-8")
    with pytest.raises(AttnvizError, match="empty.txt holds no sentences"):
        samples.read_sentences(empty)
    assert samples.read_sentences(empty, allow_empty=True) == []


def test_read_sentences_from_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("# c\nOne.\n\nTwo.\n"))
    assert samples.read_sentences("-") == ["One.", "Two."]


def test_resolve_text_file_prefers_paths_then_sample_names(tmp_path, monkeypatch):
    assert samples.resolve_text_file("korean") == samples.sample_dir() / "korean.txt"
    assert samples.resolve_text_file("winograd.txt") == samples.sample_dir() / "winograd.txt"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "korean").write_text("Mine.\n", encoding="utf-8")
    assert samples.resolve_text_file("korean") == Path("korean")
    with pytest.raises(AttnvizError, match="sample name .*classic"):
        samples.resolve_text_file("no_such_sample")
    with pytest.raises(AttnvizError, match="no sample named 'nope'; choose one of: .*winograd"):
        samples.sample_sentences("nope")


@pytest.mark.skipif(not TOP_LEVEL.is_dir(), reason="needs the source checkout")
def test_package_folder_is_the_top_level_folder():
    # One copy of the texts: the package's folder is a link to the top-level one.
    assert samples.sample_dir().resolve() == TOP_LEVEL.resolve()


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(not TOP_LEVEL.is_dir(), reason="needs the source checkout")
def test_a_built_wheel_carries_the_sample_texts(tmp_path):
    """A normal (non-editable) install gets real files, byte for byte, not a dangling link."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copytree(REPO / "attnviz", src / "attnviz", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(TOP_LEVEL, src / "sample_texts")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("attnviz-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        for path in sorted(TOP_LEVEL.glob("*.txt")):
            assert archive.read(f"attnviz/sample_texts/{path.name}") == path.read_bytes()
