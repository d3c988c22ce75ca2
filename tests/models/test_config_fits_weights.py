"""A checkpoint's config.json must describe its weights: values of the wrong type, sizes no tensor
has, more layers than the file holds. Each is one line naming the file and the key, found from the
tensor shapes without reading tensor data."""

from __future__ import annotations

import time
import pytest
from attnviz.checkpoints import load_model
from attnviz.checkpoints.weights import WeightFile, check_config_fits
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from builders import edited_copy
from cli_runs import assert_one_error_line, run_attnviz


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize(
    "key, value",
    [("dropout", "x"), ("dropout", True), ("layer_norm_eps", None), ("layer_norm_eps", "1e-5"), ("rope_base", "big")],
)
def test_a_config_value_of_the_wrong_type_is_named_without_python_s_words(small_checkpoint, tmp_path, key, value):
    """A config value of the wrong type names the key, what it must be and what it got, never
    Python's words ("'<=' not supported between instances of ...")."""
    folder = edited_copy(small_checkpoint, tmp_path / "m", **{key: value})
    line = assert_one_error_line(run_attnviz("show", "hi it", "-m", str(folder)))
    assert f"invalid config: {key} must be" in line and f"got {value!r}" in line
    assert "not supported between" not in line


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.subprocess
@pytest.mark.parametrize(
    "key, value, expect",
    [
        ("num_hidden_layers", 1_000_000_000, "holds 6 layers (indices 0-5)"),
        ("intermediate_size", 1_000_000_000, "no tensor of"),
        ("hidden_size", 1_200_000_000, "no tensor of"),
        ("max_position_embeddings", 1_000_000_000, "no tensor of"),
    ],
)
def test_minilm_copy_with_absurd_size_fails_fast(minilm_folder, tmp_path, key, value, expect):
    bad = edited_copy(minilm_folder, tmp_path / "minilm", **{key: value})
    start = time.monotonic()
    line = assert_one_error_line(run_attnviz("show", "hi it", "-m", str(bad), timeout=60))
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


def test_checkpoint_with_more_layers_than_weights(small_checkpoint, tmp_path):
    bad = edited_copy(small_checkpoint, tmp_path / "deep", num_layers=1_000_000_000)
    with pytest.raises(AttnvizError, match=r"num_layers is 1000000000 .* holds 2 layers"):
        load_model(str(bad))
