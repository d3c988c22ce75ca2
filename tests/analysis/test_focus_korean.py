"""Korean automatic focus: the pronoun 그것/그녀/그가..., never the determiner 그 ("그 동물은": "that animal")."""

import json
import re

import pytest

from attnviz.analysis.focus import find_pronoun, is_korean_pronoun
from attnviz.pipeline import run_attention
from attnviz.samples import sample_sentences
from cli_runs import invoke

TINY = ["--num-layers", "1", "--num-heads", "2", "--d-model", "16", "--d-ff", "32"]


def determiner_samples() -> list[str]:
    """The shipped sentences with a bare 그 ("that") right before a noun."""
    return [s for s in sample_sentences() if "그" in s.split()]


def test_the_three_shipped_sentences_with_the_determiner_are_found():
    found = determiner_samples()
    assert len(found) == 3
    numbered = {n for n, s in enumerate(sample_sentences(), start=1) if s in found}
    assert numbered == {31, 34, 35}


@pytest.mark.parametrize(
    "word",
    [
        "그것",
        "그것이",
        "그것은",
        "그것을",
        "그녀",
        "그녀가",
        "그들을",
        "그들은",
        "이것",
        "이것은",
        "저것이",
        "그분께서",
        "그가",
        "그는",
        "그를",
        "그의",
        "그에게",
        "그것들은",
        "그녀들이",
        "그게",
        "그건",
        "이걸",
    ],
)
def test_pronouns_with_and_without_particles(word):
    assert is_korean_pronoun(word)


@pytest.mark.parametrize(
    "word", ["그", "이", "저", "그만", "그래서", "그런데", "그리고", "이가", "저는", "동물은", "그림", "그것이다만", ""]
)
def test_determiners_and_other_words_are_not_pronouns(word):
    assert not is_korean_pronoun(word)


@pytest.mark.parametrize("text", determiner_samples())
def test_focus_function_skips_the_determiner(small_model, text):
    result = run_attention(small_model, text)
    found = find_pronoun(result)
    if "그것" in text:
        assert found is not None
        start, _ = result.offsets[found.index]
        # The focus is the first token of the word 그것이, which follows the determiner.
        assert text[start:].startswith("그것이") and start == text.index("그것이")
        assert found.label == result.text[slice(*result.offsets[found.index])]
    else:
        assert found is None  # "그 동물은 너무 피곤해서 ..." has no pronoun at all


@pytest.mark.parametrize("text", determiner_samples())
def test_show_prints_the_pronoun_not_the_determiner(text):
    done = invoke("show", text, *TINY)
    assert done.exit_code == 0, done.output
    summary = re.findall(r"where '([^']*)' \(token (\d+)\) attends", done.stdout)
    if "그것" in text:
        assert summary and summary[0][0].startswith("그것"), done.stdout
    else:
        assert summary == [], done.stdout


def test_show_word_level_focus_is_the_whole_pronoun_word():
    text = determiner_samples()[1]
    done = invoke("show", text, "--words", *TINY)
    assert done.exit_code == 0, done.output
    assert "where '그것이' (word " in done.stdout


def test_korean_he_and_the_determiner_in_one_sentence(small_model):
    result = run_attention(small_model, "그 남자는 그 여자를 만났는데, 그가 먼저 인사했다.")
    found = find_pronoun(result)
    assert found is not None and result.offsets[found.index][0] == result.text.index("그가")


@pytest.mark.slow
def test_export_focus_maps_and_compare_follow_the_pronoun(tmp_path):
    no_pronoun, tired, wide = determiner_samples()
    out = tmp_path / "figures"
    done = invoke("export", no_pronoun, tired, "-o", str(out), "--jobs", "1", *TINY)
    assert done.exit_code == 0, done.output
    first, second = json.loads((out / "index.json").read_text(encoding="utf-8"))["sentences"]
    assert not [f for f in first["files"] if f["layout"] == "focus"]  # no pronoun, no focus map
    assert [f["layout"] for f in second["files"]].count("focus") == 1
    assert second["focus"]["label"] == "그것"  # the first piece of 그것이, not the determiner 그
    compared = invoke("compare", tired, wide, "--format", "json", *TINY[:6])
    assert compared.exit_code == 0, compared.output
    sides = json.loads(compared.stdout)["sides"]
    for side, text in (("A", tired), ("B", wide)):
        assert sides[side]["focus"] == {
            "text": "그것이",
            "start": text.index("그것이"),
            "end": text.index("그것이") + 3,
        }
