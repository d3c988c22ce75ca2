"""A run whose kept maps and outputs cannot fit is refused before the model loads (the loader is
never called), in one line that says what would fit; one that fits keeps only what it shows."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

import attnviz.checkpoints
from attnviz.cli import app
from attnviz.config import EncoderConfig
from attnviz.sizes import Outputs, check_plan, output_bytes
from attnviz.errors import AttnvizError

WORDS = " ".join(["the animal crossed a street because it was tired"] * 556)  # 5,004 words


@pytest.fixture
def loads(monkeypatch):
    calls = []
    real = attnviz.checkpoints.load_model

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(attnviz.checkpoints, "load_model", counting)
    return calls


def run(args, limit):
    return CliRunner().invoke(app, args, env={"ATTNVIZ_MAX_MEMORY": limit})


def test_five_thousand_words_to_json_are_refused_before_loading(loads):
    result = run(["show", WORDS, "--max-len", "6000", "--format", "json"], "1G")
    assert result.exit_code == 2 and loads == []
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith("attnviz: error:")
    assert "5006 tokens in 2 layers x 4 heads to JSON" in line and "would fit" in line


@pytest.mark.slow
def test_one_head_to_npz_fits_where_every_head_does_not(loads, tmp_path):
    refused = run(["show", WORDS, "--max-len", "6000", "--format", "npz", "-o", str(tmp_path / "a.npz")], "400M")
    assert refused.exit_code == 2 and loads == [] and "layer" in refused.stderr
    done = run(
        [
            "show",
            WORDS[:3000],
            "--max-len",
            "6000",
            "-l",
            "1",
            "--head",
            "2",
            "--format",
            "npz",
            "-o",
            str(tmp_path / "a.npz"),
        ],
        "400M",
    )
    assert done.exit_code == 0, done.stderr
    import numpy as np

    with np.load(tmp_path / "a.npz") as data:
        assert data["weights"].shape[:2] == (1, 1) and list(data["layers"]) == [1] and list(data["heads"]) == [2]


def test_a_file_larger_than_the_free_disk_is_refused_before_loading(loads, tmp_path, monkeypatch):
    free = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: free._replace(free=1000))
    result = run(["show", "All is well.", "--format", "json", "-o", str(tmp_path / "a.json")], "4G")
    assert result.exit_code == 2 and loads == [] and "free" in result.stderr and "--digits" in result.stderr
    assert not (tmp_path / "a.json").exists()


def test_the_estimate_counts_outputs(monkeypatch):
    monkeypatch.setenv("ATTNVIZ_MAX_MEMORY", "2G")
    maps, T = 10, 1000
    json_memory, json_disk = output_bytes(maps, T, False, Outputs(json=True))
    _, rounded = output_bytes(maps, T, False, Outputs(json=True, digits=3))
    _, npz = output_bytes(maps, T, False, Outputs(npz=True))
    _, half = output_bytes(maps, T, False, Outputs(npz=True, precision="float16"))
    assert json_disk > 2.5 * npz and rounded < 0.6 * json_disk and half * 2 == npz
    assert json_memory < maps * T * T  # streamed: one map's worth at most
    config = EncoderConfig(num_layers=30, num_heads=9, d_model=576, d_ff=1536, max_len=8192, vocab_size=49152)
    with pytest.raises(AttnvizError, match="would fit") as refused:  # SmolLM2's shape, every head of 2,000 tokens
        check_plan(config, 2000, 30, 9, Outputs(json=True), None)
    assert "--format npz --precision float16 would fit" not in str(refused.value)  # 2.1 GB of maps: no
    check_plan(config, 2000, 1, 1, Outputs(npz=True), None)  # `-l 29 --head 0 --format npz`
