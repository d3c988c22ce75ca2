"""Model sizes are checked before anything is built: absurd shapes of a random model or a checkpoint,
the memory limit (ATTNVIZ_MAX_MEMORY, or half the RAM), a --max-len that leaves no room beside the
special tokens, attention maps of a long text. Each refusal is one error line, made from arithmetic
before any allocation."""

from __future__ import annotations

import json
import os
import time
import pytest
from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.encoder import Encoder
from attnviz.errors import AttnvizError
from attnviz.sizes import LIMIT_VARIABLE, MAX_LAYERS, check_model_size, memory_limit, parameter_count, parse_bytes
from builders import edited_copy
from cli_runs import assert_one_error_line, run_attnviz


@pytest.mark.slow
@pytest.mark.subprocess
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
    line = assert_one_error_line(run_attnviz("show", "hi it", flag, value, *extra))
    assert f"{flag} {value} makes a model of " in line
    assert "more than attnviz may use here" in line and "RAM" in line
    assert time.monotonic() - start < 30  # refused from arithmetic, not after an allocation attempt


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_huge_max_len_costs_nothing_with_sinusoidal_positions(tmp_path):
    """The sinusoid rows are made for the text's positions only: `init --max-len 100000000` and a
    show of the saved model succeed (a whole max_len table with its float64 temporaries would be
    57 GB at d_model 16)."""
    done = run_attnviz(
        "init", "m", *"--num-layers 1 --num-heads 1 --d-model 16 --d-ff 32 --max-len 100000000".split(), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    shown = run_attnviz("show", "hi it", "-m", "m", "--format", "json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["model"]["config"]["max_len"] == 100_000_000


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_memory_estimate_counts_the_copy_made_while_filling_the_largest_tensor(tmp_path):
    """A learned position table of 20M x 16 floats is 1.2 GiB, and drawing its random values takes
    as much again: under a 2 GiB limit it is refused, not built until the kernel kills it."""
    shape = "--num-layers 1 --num-heads 1 --d-model 16 --d-ff 32 --positional learned --max-len 20000000"
    done = run_attnviz("init", "m", *shape.split(), cwd=tmp_path, env={"ATTNVIZ_MAX_MEMORY": "2G"})
    line = assert_one_error_line(done)
    assert "--max-len 20000000 makes a model of 2.4 GB" in line, line
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("max_len, shown", [("1", "at most 1 token: no room"), ("2", "at most 2 tokens: no room")])
@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_a_max_len_with_no_room_beside_the_special_tokens_is_one_line(max_len, shown, positional):
    """A --max-len that leaves no room for a word beside [CLS] and [SEP] (which come on top of the
    cut text) is one line saying so, for learned and sinusoidal positions alike."""
    line = assert_one_error_line(
        run_attnviz("show", "the cat sat", "--max-len", max_len, "--truncate", "--positional", positional)
    )
    assert shown in line and "2 special tokens" in line


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_smallest_max_len_that_holds_a_word_truncates_to_it():
    done = run_attnviz(
        "show", "the cat sat", "--max-len", "3", "--truncate", "--positional", "learned", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tokens"] == ["[CLS]", "the", "[SEP]"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_absurd_layer_count_is_refused_by_the_layer_cap(tmp_path):
    line = assert_one_error_line(run_attnviz("init", "never-written", "--num-layers", "1000000000", cwd=tmp_path))
    assert f"--num-layers 1000000000 is more layers than attnviz builds (at most {MAX_LAYERS};" in line
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.subprocess
def test_checkpoint_with_absurd_d_model_names_file_and_key(small_checkpoint, tmp_path):
    bad = edited_copy(small_checkpoint, tmp_path / "big", d_model=1_000_000_000)
    line = assert_one_error_line(run_attnviz("show", "hi it", "-m", str(bad)))
    assert f"{bad / 'config.json'}: d_model is 1000000000" in line
    assert "model.safetensors" in line and "the largest is" in line


@pytest.mark.slow
@pytest.mark.subprocess
def test_memory_limit_refuses_a_valid_checkpoint(small_checkpoint):
    need = 4 * parameter_count(json.loads((small_checkpoint / "config.json").read_text()))
    line = assert_one_error_line(
        run_attnviz("show", "hi it", "-m", str(small_checkpoint), env={LIMIT_VARIABLE: str(need // 2)})
    )
    assert f"{small_checkpoint / 'config.json'}: " in line and "makes a model of" in line
    assert f"{LIMIT_VARIABLE}={need // 2}" in line


@pytest.mark.slow
@pytest.mark.subprocess
def test_attention_maps_of_a_long_text_are_refused_before_the_forward_pass():
    text = " ".join(["word"] * 2000)
    line = assert_one_error_line(
        run_attnviz("show", text, "--max-len", "4096", "--num-heads", "16", env={LIMIT_VARIABLE: "100M"})
    )
    # The terminal overview of layer 0 is pooled while the maps stream: no map is kept, the pass is too big.
    assert "the forward pass over 2002 tokens would need" in line and line.endswith("; shorten the text")
    line = assert_one_error_line(
        run_attnviz("show", text, "--max-len", "4096", "--num-heads", "16", "--full", env={LIMIT_VARIABLE: "100M"})
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
