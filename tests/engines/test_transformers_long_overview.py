"""A text too long for tables through the transformers engine: the overview is pooled from the maps
transformers returns (the native engine pools while its blocks stream), every head drawn."""

from __future__ import annotations

import re

import pytest

import tiny_hf
from cli_runs import invoke

TEXT = " ".join(["the cat sat on the mat because it was tired ."] * 4)  # 44 words: past 30 at 60 columns


@pytest.fixture(scope="module")
def mistral(tmp_path_factory):
    return tiny_hf.make("mistral", tmp_path_factory.mktemp("long-overview") / "mistral")


@pytest.mark.slow
def test_overview_through_transformers_draws_every_head_like_the_native_engine(mistral):
    drawn = {}
    for engine in ("native", "transformers"):
        done = invoke("show", TEXT, "-m", mistral, "--engine", engine, "--focus", "it", env={"COLUMNS": "60"})
        assert done.exit_code == 0, done.output
        assert "too many for tables" in done.stdout
        drawn[engine] = re.findall(r"layer 0 · head (\d+) · (\d+) x (\d+) blocks", done.stdout)
    assert [head for head, _, _ in drawn["transformers"]] == ["0", "1", "2", "3"]
    assert drawn["transformers"] == drawn["native"]
