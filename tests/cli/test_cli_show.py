"""`attnviz show` through typer's runner and as a real installed command."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from attnviz.pipeline import run_attention
from cli_runs import assert_one_error_line, invoke

SENTENCE = "The animal didn't cross the street because it was too tired."


@pytest.mark.slow
def test_show_prints_header_tables_and_pronoun_summary():
    result = invoke("show", SENTENCE)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "random (seed 0)" in out and "2 layers x 4 heads x d_model 64" in out
    assert "not learned" in out
    for layer in range(2):
        for head in range(4):
            assert f"layer {layer} · head {head}" in out
    # "it" is a pronoun: the signature summary follows without --focus.
    assert "where 'it' (token 9) attends" in out


@pytest.mark.slow
def test_focus_summary_ranks_the_real_top_targets(small_model):
    result = invoke("show", SENTENCE, "--focus", "it", "--layer", "1", "--head", "2", "--top", "2")
    assert result.exit_code == 0, result.output
    ref = run_attention(small_model, SENTENCE)
    row = ref.head(1, 2)[9]
    best, second = np.argsort(-row, kind="stable")[:2]
    line = [l for l in result.stdout.splitlines() if l.strip().startswith("1     2")][0]
    assert f"{ref.labels[best]} {row[best]:.2f}" in line
    assert f"{ref.labels[second]} {row[second]:.2f}" in line
    assert line.index(ref.labels[best]) < line.index(f"{row[second]:.2f}")


@pytest.mark.slow
def test_focus_by_index_and_repeated_word_note():
    by_index = invoke("show", SENTENCE, "--focus", "9", "-l", "0", "--head", "0")
    assert by_index.exit_code == 0 and "where 'it' (token 9)" in by_index.stdout
    twice = invoke("show", "the cat saw the dog", "--focus", "the", "-l", "0", "--head", "0")
    assert twice.exit_code == 0
    assert "occurs 2 times; using the first (token 1)" in twice.stdout


@pytest.mark.slow
def test_json_round_trips_weights_exactly(small_model, tmp_path):
    result = invoke("show", SENTENCE, "--format", "json", "--layer", "1", "--head", "0,2-3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    ref = run_attention(small_model, SENTENCE)
    for key in ("text", "tokens", "offsets", "word_ids", "model", "layers", "heads", "weights"):
        assert key in data
    assert data["text"] == SENTENCE and data["layers"] == [1] and data["heads"] == [0, 2, 3]
    assert data["tokens"] == ref.tokens
    assert [tuple(o) for o in data["offsets"]] == ref.offsets
    assert data["word_ids"] == ref.word_ids
    assert data["model"]["seed"] == 0 and data["model"]["learned"] is False
    weights = np.array(data["weights"], dtype=np.float32)
    assert np.array_equal(weights, ref.select([1], [0, 2, 3]).weights)

    out = tmp_path / "a.json"
    assert invoke("show", SENTENCE, "--format", "json", "-o", str(out)).exit_code == 0
    assert np.array_equal(np.array(json.loads(out.read_text())["weights"], dtype=np.float32), ref.weights)


@pytest.mark.slow
def test_npz_round_trips_weights_exactly(small_model, tmp_path):
    out = tmp_path / "a.npz"
    assert invoke("show", SENTENCE, "--format", "npz", "-o", str(out)).exit_code == 0
    ref = run_attention(small_model, SENTENCE)
    with np.load(out) as data:
        assert data["weights"].dtype == np.float32
        assert np.array_equal(data["weights"], ref.weights)
        assert list(data["tokens"]) == ref.tokens
        assert json.loads(str(data["model"]))["name"] == "random (seed 0)"


@pytest.mark.slow
def test_existing_output_is_not_overwritten_unless_asked(tmp_path):
    out = tmp_path / "keep.json"
    out.write_text("precious")
    assert_one_error_line(invoke("show", SENTENCE, "--format", "json", "-o", str(out)), "--overwrite")
    assert out.read_text() == "precious"
    assert invoke("show", SENTENCE, "--format", "json", "-o", str(out), "--overwrite").exit_code == 0
    assert json.loads(out.read_text())["text"] == SENTENCE
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]  # no temporary left behind


@pytest.mark.slow
def test_config_flags_change_the_model():
    result = invoke(
        "show",
        "a b c",
        "--format",
        "json",
        "--num-layers",
        "3",
        "--num-heads",
        "2",
        "--d-model",
        "32",
        "--d-ff",
        "64",
        "--seed",
        "5",
        "--positional",
        "learned",
        "--norm-placement",
        "pre",
        "--activation",
        "relu",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    cfg = data["model"]["config"]
    assert (cfg["num_layers"], cfg["num_heads"], cfg["d_model"], cfg["d_ff"]) == (3, 2, 32, 64)
    assert (cfg["positional"], cfg["norm_placement"], cfg["activation"]) == ("learned", "pre", "relu")
    assert np.array(data["weights"]).shape == (3, 2, 5, 5)


@pytest.mark.slow
def test_truncate_cuts_instead_of_refusing():
    long_text = " ".join(["word"] * 30)
    assert_one_error_line(invoke("show", long_text, "--max-len", "16"), "at most 16")
    result = invoke("show", long_text, "--max-len", "16", "--truncate", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert len(data["tokens"]) == 16 and data["truncated"] is True


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, fragment",
    [
        (["show", ""], "empty"),
        (["show", "   \n "], "empty"),
        (["show", SENTENCE, "--focus", "zebra"], "not in the sentence"),
        (["show", SENTENCE, "--focus", "99"], "out of range"),
        (["show", SENTENCE, "--layer", "5"], "invalid layer 5"),
        (["show", SENTENCE, "--head", "x"], "invalid head selection"),
        (["show", SENTENCE, "--head", "3-1"], "invalid head selection"),
        (["show", SENTENCE, "--d-model", "65"], "divisible"),
        (["show", SENTENCE, "--num-layers", "0"], "num_layers"),
        (["show", SENTENCE, "--format", "npz"], "--output"),
        (["show", SENTENCE, "--tokenizer", "/nonexistent/tokenizer.json"], "no such file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    assert_one_error_line(invoke(*args), fragment)


def test_usage_errors_exit_2():
    # In this process click prints its usage block; the real command's one line is checked below
    # (test_installed_command_runs_and_fails_cleanly).
    assert invoke("show", SENTENCE, "--no-such-option").exit_code == 2
    assert invoke("show", SENTENCE, "--positional", "rotary").exit_code == 2
    assert invoke("nonsense").exit_code == 2


@pytest.mark.slow
def test_compact_layout_fits_80_columns():
    long_text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen " * 2
    result = invoke("show", long_text, "-l", "0", "--head", "0")  # CliRunner is not a terminal: 80 columns
    assert result.exit_code == 0
    widths = [len(line) for line in result.stdout.splitlines()]
    assert max(widths) <= 80
    assert "keys 0-" in result.stdout  # 30 tokens do not fit: keys are split into blocks


def installed_attnviz():
    exe = shutil.which("attnviz") or str(__import__("pathlib").Path(sys.executable).with_name("attnviz"))
    return exe


@pytest.mark.slow
@pytest.mark.subprocess
def test_installed_command_runs_and_fails_cleanly():
    exe = installed_attnviz()
    ok = subprocess.run([exe, "show", SENTENCE, "--focus", "it"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "where 'it' (token 9) attends" in ok.stdout
    bad = subprocess.run([exe, "show", "  "], capture_output=True, text=True, timeout=120)
    assert_one_error_line(bad, "empty")
    usage = subprocess.run([exe, "show", SENTENCE, "--bogus"], capture_output=True, text=True, timeout=120)
    assert_one_error_line(usage, "--bogus")
    version = subprocess.run([sys.executable, "-m", "attnviz", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("attnviz ")


@pytest.mark.slow
@pytest.mark.subprocess
def test_help_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys; from attnviz.cli import main\n"
        "for argv in (['--help'], ['show', '--help']):\n"
        "    try: main(argv)\n"
        "    except SystemExit: pass\n"
        "bad = [m for m in ('torch', 'matplotlib', 'transformers') if m in sys.modules]\n"
        "print('HEAVY', bad)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
