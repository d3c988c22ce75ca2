"""`inspect` counts only what it keeps: a long probe text is measured while its maps stream past,
so the estimate holds no layers x heads x T x T maps for it; a run that still cannot fit is refused
before the model loads, in one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import attnviz.checkpoints
from attnviz.cli import app
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.sizes import check_inspect_plan, human_bytes, inspect_bytes, model_bytes, run_bytes, streams_head_stats

SMOLLM2 = EncoderConfig(
    vocab_size=49152,
    num_layers=30,
    num_heads=9,
    num_kv_heads=3,
    d_model=576,
    d_ff=1536,
    max_len=8192,
    causal=True,
    positional="rope",
    norm="rms",
    ffn="gated",
    norm_placement="pre",
    attention_bias=False,
    ffn_bias=False,
    output_bias=False,
)
WORDS = " ".join(["the animal crossed a street because it was tired ."] * 150)  # ~1,500 tokens


def test_a_long_smollm2_text_is_counted_without_its_maps():
    every_map = run_bytes(SMOLLM2, 2000) + model_bytes(SMOLLM2)  # what inspect used to keep
    assert every_map > 4 * 1024**3
    assert streams_head_stats(SMOLLM2, 2000) and not streams_head_stats(SMOLLM2, 40)
    need = inspect_bytes(SMOLLM2, [2000, 30, 25])
    assert need < 1.5 * 1024**3, human_bytes(need)
    assert inspect_bytes(SMOLLM2, [2000], models=2) - need == model_bytes(SMOLLM2)  # --baseline's model


def test_short_texts_are_counted_with_their_maps_in_batches():
    config = EncoderConfig(num_layers=2, num_heads=4)
    assert inspect_bytes(config, [20] * 100) == run_bytes(config, 20, 32) + model_bytes(config)


def test_the_plan_refuses_in_one_line(monkeypatch):
    monkeypatch.setenv("ATTNVIZ_MAX_MEMORY", "700M")
    with pytest.raises(AttnvizError) as err:
        check_inspect_plan(SMOLLM2, [2000, 12], models=2)
    message = str(err.value)
    assert "inspecting 2 probe texts (the longest 2000 tokens)" in message and "--baseline" in message
    monkeypatch.setenv("ATTNVIZ_MAX_MEMORY", "1500M")
    check_inspect_plan(SMOLLM2, [2000, 12])


@pytest.fixture
def loads(monkeypatch):
    calls = []
    real = attnviz.checkpoints.load_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(attnviz.checkpoints, "load_model", counting)
    return calls


SHAPE = ["--num-layers", "6", "--num-heads", "8", "--max-len", "2000"]


def inspect(limit: str):
    args = ["inspect", "--text", WORDS, *SHAPE, "--no-pronouns", "--format", "json"]
    return CliRunner().invoke(app, args, env={"ATTNVIZ_MAX_MEMORY": limit})


def test_a_long_probe_text_that_cannot_fit_is_refused_before_loading(loads):
    result = inspect("150M")
    assert result.exit_code == 2 and loads == []
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("attnviz: error: inspecting 1 probe text")


@pytest.mark.slow
def test_a_long_probe_text_runs_where_its_maps_would_not_fit(loads):
    import json

    config = EncoderConfig(num_layers=6, num_heads=8, max_len=2000)
    maps = run_bytes(config, 1500) + model_bytes(config)  # every map kept, as inspect used to
    assert maps > 450 * 1024**2 > inspect_bytes(config, [1500])
    result = inspect("450M")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["heads"]
    assert len(loads) == 1 and report["sentences"] == 1 and report["queries"] > 1400
    assert len(report["profiles"]) == 48 and all(p["role"] for p in report["profiles"])
