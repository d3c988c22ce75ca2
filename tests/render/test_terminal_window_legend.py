"""The terminal tables' legend names every kind of masked cell it draws: look-ahead in a causal
model, and keys outside a local layer's sliding window (naming the local layers)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.pipeline import run_attention
from attnviz.render.terminal import render_heads

TEXT = "a b c d e f g"


def legend(layer_types, layers=None, window=3, text=TEXT) -> str:
    config = EncoderConfig(
        positional="rope", causal=True, num_layers=2, num_heads=1, sliding_window=window, layer_types=layer_types
    )
    result = run_attention(random_model(config, seed=0), text, layers=layers)
    console = Console(file=io.StringIO(), width=400)
    render_heads(console, result)
    return console.file.getvalue().splitlines()[0]


@pytest.mark.parametrize(
    "layer_types, layers, says",
    [
        (("sliding_attention", "full_attention"), None, "outside the 3-token sliding window in local layer 0"),
        (("full_attention", "sliding_attention"), None, "outside the 3-token sliding window in local layer 1"),
        (("sliding_attention", "sliding_attention"), None, "outside the 3-token sliding window in every layer shown"),
        (("sliding_attention", "full_attention"), [0], "outside the 3-token sliding window in every layer shown"),
    ],
)
def test_local_layers_are_named_in_the_legend(layer_types, layers, says):
    line = legend(layer_types, layers)
    assert "cannot see later ones" in line and says in line


def test_a_global_layer_or_a_text_within_the_window_says_look_ahead_only():
    assert "sliding window" not in legend(("sliding_attention", "full_attention"), [1])
    assert "sliding window" not in legend(("sliding_attention", "full_attention"), window=64)
