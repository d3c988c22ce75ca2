"""JSON beyond Python's parser (arrays nested by the hundred thousand, numbers of thousands of digits)
in every file attnviz reads: probe sets, config.json, safetensors indexes, tokenizer configs, the
pronoun-head cache and the explorer's history. Each costs its line or is one error line, never a
traceback."""

from __future__ import annotations

import json
import sys
import pytest
from attnviz.errors import AttnvizError
from builders import edited_copy
from cli_runs import assert_one_error_line, run_attnviz

SENTENCE = "The animal didn't cross the street because it was too tired."


DEEP = "[" * 100_000


GOOD_ITEM = {"text": "The cat saw the dog and it ran.", "pronoun": "it", "candidates": ["cat", "dog"], "answer": 0}


def test_parse_json_turns_parser_limits_into_a_value_error():
    from attnviz.reading import JSONLimitError, parse_json

    with pytest.raises(JSONLimitError, match="nested too deeply"):
        parse_json(DEEP)
    with pytest.raises(JSONLimitError, match=f"longer than {sys.get_int_max_str_digits()} digits"):
        parse_json("9" * 5000)
    with pytest.raises(json.JSONDecodeError):
        parse_json("{not json")
    assert parse_json('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}


@pytest.mark.slow
@pytest.mark.subprocess
def test_probe_line_beyond_the_parser_is_skipped_with_a_plain_warning(tmp_path):
    items = tmp_path / "items.jsonl"
    huge = json.dumps({**GOOD_ITEM, "answer": 0}).replace('"answer": 0', '"answer": ' + "9" * 5000)
    long = json.dumps({**GOOD_ITEM, "answer": int("9" * 4000)})
    items.write_text("\n".join([json.dumps(GOOD_ITEM), DEEP, huge, long]) + "\n", encoding="utf-8")
    proc = run_attnviz("probe", "coref", str(items), "--format", "json")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert json.loads(proc.stdout)["n_items"] == 1
    lines = err.splitlines()
    assert lines[:3] == [
        f"attnviz: warning: {items} line 2 skipped: cannot be read (arrays or objects nested too deeply)",
        f"attnviz: warning: {items} line 3 skipped: cannot be read (a number longer than "
        f"{sys.get_int_max_str_digits()} digits)",
        f"attnviz: warning: {items} line 4 skipped: 'answer' must be the index of a candidate (0-1), "
        f"got 9999999999999999999999999999999999999... (4000 characters)",
    ]
    assert "set_int_max_str_digits" not in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.subprocess
def test_deep_probe_file_alone_is_one_error_line(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text(DEEP + "\n", encoding="utf-8")
    assert "no item of the probe set" in assert_one_error_line(run_attnviz("inspect", "--pronoun-set", str(deep)))
    err = run_attnviz("probe", "coref", str(deep)).stderr.decode()
    assert err.splitlines() == [
        f"attnviz: warning: {deep} line 1 skipped: cannot be read (arrays or objects nested too deeply)",
        f"attnviz: error: no item of {deep} could be scored (1 skipped; see the lines above)",
    ]


@pytest.mark.slow
@pytest.mark.subprocess
def test_deep_config_json_is_one_line_naming_the_file(small_checkpoint, tmp_path):
    folder = edited_copy(small_checkpoint, tmp_path / "deep")
    (folder / "config.json").write_text(DEEP, encoding="utf-8")
    line = assert_one_error_line(run_attnviz("show", "hi", "-m", str(folder)))
    assert line == f"attnviz: error: {folder / 'config.json'}: not valid JSON (arrays or objects nested too deeply)"


def test_deep_safetensors_index_and_tokenizer_config_are_handled(small_checkpoint, tmp_path):
    from attnviz.checkpoints import folder_tokenizer
    from attnviz.checkpoints.weights import _open_sharded

    index = tmp_path / "model.safetensors.index.json"
    index.write_text(DEEP, encoding="utf-8")
    with pytest.raises(AttnvizError, match="not a valid safetensors index .*nested too deeply"):
        _open_sharded(index)
    # tokenizer_config.json only says whether to lower-case: a broken one means BERT's default.
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n", encoding="utf-8")
    (bert / "tokenizer_config.json").write_text(DEEP, encoding="utf-8")
    assert folder_tokenizer(bert).encode("HELLO").ids[1:-1] == [5]


@pytest.mark.slow
@pytest.mark.subprocess
def test_deep_pronoun_cache_is_ignored_with_a_note(tmp_path):
    cache = tmp_path / "cache"
    env = {"ATTNVIZ_CACHE_DIR": str(cache)}
    assert run_attnviz("show", SENTENCE, "--resolve", env=env).returncode == 0
    entries = list((cache / "pronoun-heads").glob("*.json"))
    assert len(entries) == 1
    entries[0].write_text(DEEP, encoding="utf-8")
    proc = run_attnviz("show", SENTENCE, env=env)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    out = " ".join(proc.stdout.decode().split())
    assert "ignored a corrupt pronoun-heads cache file" in out and "(arrays or objects nested too deeply)" in out


@pytest.mark.slow
def test_deep_history_line_costs_that_line(tmp_path):
    from attnviz.explore.history import History

    path = tmp_path / "history.jsonl"
    path.write_text(f'"kept"\n{DEEP}\n"also kept"\n', encoding="utf-8")
    assert History(path).entries == ["kept", "also kept"]
