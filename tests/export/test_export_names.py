"""Export folder names: bounded in bytes whatever the script, deterministic, different for sentences
that start alike; sentences end at newlines only; the manifest and the contact sheet keep every
full text."""

from __future__ import annotations

import pytest

import html
import json
import re
from hypothesis import given, settings
from hypothesis import strategies as st
from attnviz import export as ex
from cli_runs import TINY, invoke


def run_export(*args, jobs="1"):
    return invoke("export", *args, *TINY, "--jobs", jobs)


def run_tiny(*args, input=None):
    return invoke("export", *args, *TINY, "--jobs", "1", "-q", input=input)


LONG_ENGLISH = " ".join(f"word{i}" for i in range(60)) + "."


LONG_KOREAN = "가나다라마바사아자차" * 11  # 110 characters, 330 bytes, no space


LONG_KOREAN_SPACED = " ".join(["고양이가 매트 위에 앉았는데 그것이 너무 피곤했기 때문이다"] * 4)


@pytest.mark.slow
def test_long_sentences_export_with_short_names_and_the_full_text_in_the_manifest(tmp_path):
    out = tmp_path / "out"
    sentences = [LONG_ENGLISH, LONG_KOREAN, LONG_KOREAN_SPACED, LONG_KOREAN + "끝"]
    done = run_export(*sentences, "-o", str(out), "--layout", "model", "--truncate")
    assert done.exit_code == 0, done.output
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(folders) == 4 and all(len(name.encode("utf-8")) <= 100 for name in folders), folders
    assert folders[0] == "001-word0-word1-word2-word3"
    # the two Korean sentences without spaces start alike: their cut names differ by the hash
    assert folders[1][4:] != folders[3][4:] and folders[1][4:21] == folders[3][4:21]
    manifest = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert [s["text"] for s in manifest["sentences"]] == sentences
    assert [s["id"] for s in manifest["sentences"]] == folders
    sheet = (out / "index.html").read_text(encoding="utf-8")
    assert all(html.escape(s) in sheet for s in sentences)
    again = run_export(*sentences, "-o", str(out), "--layout", "model", "--truncate")  # deterministic names
    assert again.exit_code == 0 and "0 images written, 4 already there" in again.stdout


def test_a_sentence_too_long_to_be_a_file_name_is_a_sentence():
    assert [s.text for s in ex.collect_sentences([LONG_ENGLISH, LONG_KOREAN, "nul\0byte"])] == [
        LONG_ENGLISH,
        LONG_KOREAN,
        "nul\0byte",
    ]


def test_cut_names_are_deterministic_and_tell_apart_sentences_that_start_alike():
    a, b = ex.slugify(LONG_KOREAN), ex.slugify(LONG_KOREAN + "끝")
    assert a == ex.slugify(LONG_KOREAN) and a != b
    assert re.fullmatch(r"[가-힣]+-[0-9a-f]{6}", a) and len(a) <= ex.SLUG_CHARS
    assert ex.slugify("𠀀" * 30) != ex.slugify("𠀀" * 31)
    assert len(ex.slugify("𠀀" * 30).encode("utf-8")) <= ex.SLUG_BYTES


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300), st.integers(1, 999_999)
)
def test_folder_names_fit_in_100_bytes_whatever_the_script(text, index):
    name = ex.sentence_folder(ex.Sentence(index, text, "test"), 999_999)
    assert len(name.encode("utf-8")) <= 100
    assert not set(name) & set('/\\:*?"<>|\0 .')
    assert name == ex.sentence_folder(ex.Sentence(index, text, "test"), 999_999)


ODD_BREAKS = "one\u2028two\u2029three\x0bfour\x0cfive\x1csix\x1dseven\x1eeight\x85nine"


@pytest.mark.slow
def test_sentences_end_at_newlines_only(tmp_path, monkeypatch):
    """Line and paragraph separators, form feeds and the like stay inside a sentence, as `wc -l`
    counts lines: `printf 'one\\u2028two\\x0cthree' | attnviz export -` is one sentence."""
    notes = tmp_path / "notes.txt"
    notes.write_bytes(f"{ODD_BREAKS}\nsecond\r\nthird\rfourth\n".encode("utf-8"))
    assert [s.text for s in ex.collect_sentences([str(notes)])] == [ODD_BREAKS, "second", "third", "fourth"]
    out = tmp_path / "o"
    done = run_tiny("-", "-o", str(out), input="one\u2028two\x0cthree".encode("utf-8"))
    assert done.exit_code == 0, done.output
    manifest = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert [s["text"] for s in manifest["sentences"]] == ["one\u2028two\x0cthree"]
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["001-one-two-three"]
