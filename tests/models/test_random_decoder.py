"""The causal random model for teaching (--causal, --positional rope, --norm rms, --kv-heads,
--ffn gated): flags reach the config, the look-ahead mask is exact, output is deterministic, and
every command that runs a model takes the flags (and --dtype/--device)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import attnviz
from cli_runs import assert_one_error_line, invoke

TEXT = "The animal didn't cross the street because it was too tired."
DECODER = [
    "--causal",
    "--positional",
    "rope",
    "--norm",
    "rms",
    "--kv-heads",
    "2",
    "--ffn",
    "gated",
    "--norm-placement",
    "pre",
]


def show_json(*args):
    result = invoke("show", TEXT, "--format", "json", "-l", "all", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.slow
def test_causal_random_model_flags_reach_the_config_and_mask():
    out = show_json(*DECODER)
    payload = json.loads(out)
    config = payload["model"]["config"]
    assert payload["causal"] is True and payload["model"]["learned"] is False
    assert (
        config["causal"],
        config["positional"],
        config["norm"],
        config["num_kv_heads"],
        config["ffn"],
        config["norm_placement"],
    ) == (True, "rope", "rms", 2, "gated", "pre")
    weights = np.asarray(payload["weights"])  # [L, H, T, T]
    assert weights.shape[:2] == (2, 4)  # all query heads, not the 2 KV heads
    assert (np.triu(weights, k=1) == 0).all()  # no token sees the future
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert weights[..., 1:, 0].max() < 1.0 and weights.max() > 0.5  # peaked but not degenerate
    assert show_json(*DECODER) == out  # deterministic, same bytes
    assert show_json(*DECODER, "--seed", "1") != out


@pytest.mark.slow
@pytest.mark.parametrize(
    "flag", [["--causal"], ["--positional", "rope"], ["--norm", "rms"], ["--kv-heads", "2"], ["--ffn", "gated"]]
)
def test_each_flag_changes_the_model(flag):
    base = np.asarray(json.loads(show_json())["weights"])
    changed = np.asarray(json.loads(show_json(*flag))["weights"])
    assert np.abs(base - changed).max() > 1e-3


def test_grouped_query_heads_share_keys():
    config = attnviz.EncoderConfig(causal=True, num_heads=4, num_kv_heads=2, positional="rope")
    model = attnviz.load_model("random", config=config)
    attention = model.encoder.layers[0].attention
    assert tuple(attention.key.weight.shape) == (2 * 16, 64) and tuple(attention.query.weight.shape) == (64, 64)
    assert "(2 KV heads)" in model.config.describe() and "causal" in model.config.describe()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--kv-heads", "3"], ["num_heads (4)", "num_kv_heads (3)"]),
        (["--kv-heads", "0"], ["num_kv_heads"]),
        (["--positional", "rope", "--num-heads", "8", "--d-model", "24"], ["24 / 8 = 3", "even"]),
    ],
)
def test_bad_decoder_shape_is_one_line_exit_2(args, words):
    line = assert_one_error_line(invoke("show", TEXT, *args), *words)
    assert line.startswith("attnviz: error: invalid config")


@pytest.mark.slow
def test_init_saves_the_causal_model_and_it_loads_the_same(tmp_path):
    folder = tmp_path / "decoder"
    result = invoke("init", str(folder), *DECODER, "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "causal" in result.stdout and "2 KV heads" in result.stdout
    assert (
        json.loads(show_json("-m", str(folder)))["weights"] == json.loads(show_json(*DECODER, "--seed", "3"))["weights"]
    )
    # init writes a model without running it: no --dtype there.
    assert invoke("init", str(tmp_path / "x"), "--dtype", "bfloat16").exit_code == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["compare", TEXT, "The animal didn't cross the street because it was too wide.", "--format", "json"],
        ["inspect", "random", "--format", "json"],
        ["probe", "coref", "ITEMS", "--format", "json"],
    ],
)
def test_other_commands_take_the_decoder_and_run_flags(command, tmp_path):
    items = tmp_path / "items.jsonl"
    lines = (Path(attnviz.__file__).parent / "data" / "probes" / "agreement.jsonl").read_text().splitlines()
    items.write_text("\n".join(lines[:4]) + "\n", encoding="utf-8")
    command = [str(items) if arg == "ITEMS" else arg for arg in command]
    result = invoke(*command, *DECODER, "--dtype", "bfloat16", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert '"causal": true' in result.stdout


@pytest.mark.slow
def test_export_takes_the_decoder_flags(tmp_path):
    result = invoke("export", TEXT, "-o", str(tmp_path / "out"), *DECODER, "--dtype", "float16")
    assert result.exit_code == 0, result.output
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert "causal" in json.dumps(index)


@pytest.mark.slow
def test_show_layer_selection_loads_only_those_layers_and_says_why_no_pronoun_marks(monkeypatch):
    import attnviz.checkpoints as checkpoints

    built = []
    original = checkpoints.random_model

    def spy(*args, **kwargs):
        model = original(*args, **kwargs)
        built.append((model.built_layers, model.config.num_layers))
        return model

    monkeypatch.setattr(checkpoints, "random_model", spy)
    result = invoke("show", TEXT, "--num-layers", "4", "-l", "1", *DECODER)
    assert result.exit_code == 0, result.output
    assert built == [(2, 4)]  # layers 0-1 built, the model has 4
    assert "4 layers" in result.stdout and "layer 1" in result.stdout
    assert "Pronoun heads" not in result.stdout  # random weights have none to mark
    built.clear()
    assert invoke("show", TEXT, "--num-layers", "4", *DECODER).exit_code == 0
    assert built == [(4, 4)]  # no --layer: the focus summary needs all
