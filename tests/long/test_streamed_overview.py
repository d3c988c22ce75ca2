"""The terminal overview pooled while the maps stream (analysis/streamed_pooling.py): the grids equal
pooling the full maps (pooling.pool_map, as render/overview.py does), and `show` draws the same
bytes from them while keeping no full map."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import attnviz
import cli_runs
from attnviz import blockwise, pipeline
from attnviz.analysis.pooling import pool_map, skipped_cells
from attnviz.analysis.streamed_pooling import PoolPlan
from attnviz.config import EncoderConfig
from attnviz.pipeline import run_attention

CAUSAL = EncoderConfig(num_layers=2, num_heads=3, d_model=24, d_ff=48, causal=True, positional="rope", max_len=512)
# Sliding window in layer 1 only (Gemma 3 / Qwen2 layer types), shorter than the texts.
WINDOW = EncoderConfig(
    num_layers=2,
    num_heads=3,
    d_model=24,
    d_ff=48,
    causal=True,
    positional="rope",
    max_len=512,
    sliding_window=13,
    layer_types=("full_attention", "sliding_attention"),
)
ENCODER = EncoderConfig(num_layers=2, num_heads=3, d_model=24, d_ff=48, max_len=512)


def words(n: int) -> str:
    return " ".join(f"w{i % 37} it" if i % 5 == 4 else f"w{i % 37}" for i in range(n))


def text_of(model, tokens: int) -> str:
    """A text of exactly `tokens` tokens for `model`'s tokenizer."""
    text = words(tokens)
    enc = model.tokenizer.encode(text, max_len=10**9, truncate=False)
    assert len(enc.ids) >= tokens
    return text[: enc.offsets[tokens - 1][1]]


def test_streamed_grids_equal_pooling_the_full_maps_fast(monkeypatch):
    test_streamed_grids_equal_pooling_the_full_maps(WINDOW, "mean", 65, 16, True, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("config", [CAUSAL, WINDOW, ENCODER], ids=["causal", "window", "encoder"])
@pytest.mark.parametrize("how", ["max", "mean"])
@pytest.mark.parametrize("tokens,block", [(60, 7), (64, 16), (65, 16), (71, 71), (50, 1000)])
@pytest.mark.parametrize("sinks", [False, True])
def test_streamed_grids_equal_pooling_the_full_maps(config, how, tokens, block, sinks, monkeypatch):
    """Block rows that do and do not divide T, or the pooled blocks; the whole-matrix path (block
    of 1,000 rows); sinks left out or not; heads a subset in another order."""
    model = attnviz.load_model("random", config=config)
    text = text_of(model, tokens)
    T = len(pipeline.encode(model, text).ids)  # the tokens and the special ones around them
    monkeypatch.setattr(blockwise, "BLOCK_BYTES", 4 * 3 * block * T)
    full = run_attention(model, text)  # every map kept
    excluded = tuple(full.sink_indices()) if sinks else ()
    heads = (2, 0)
    plan = PoolPlan((0, 1), heads, 9, 11, how, excluded)
    streamed = run_attention(model, text, layers=[0, 1], heads=list(heads), pool=plan)
    assert streamed.weights.shape == (0, 2, T, T) and streamed.layers == []  # no map kept
    grids = streamed.pooled
    assert grids.layers == [0, 1] and grids.heads == [2, 0] and grids.how == how and grids.excluded == excluded
    reference = full.without_sinks() if sinks else full
    for li, layer in enumerate((0, 1)):
        skip = skipped_cells(reference.masked(layer), reference.excluded)
        for hi, head in enumerate(heads):
            expected = pool_map(full.head(layer, head), skip, 9, 11, how)
            np.testing.assert_array_equal(grids.empty[li], expected.empty)
            np.testing.assert_array_equal(grids.row_edges, expected.row_edges)
            np.testing.assert_array_equal(grids.col_edges, expected.col_edges)
            np.testing.assert_allclose(grids.values[li, hi], expected.values, rtol=1e-6, atol=1e-7)
            if how == "max":  # the max of the same cells: exact
                np.testing.assert_array_equal(grids.values[li, hi], expected.values)
    if config is WINDOW:  # layer 1's window masks whole blocks far below the diagonal, layer 0's does not
        assert grids.empty[1].sum() > grids.empty[0].sum()


def test_masked_rows_equal_rows_of_the_mask():
    model = attnviz.load_model("random", config=WINDOW)
    result = run_attention(model, text_of(model, 40), layers=[0])
    for layer in (None, 0, 1):
        whole = result.masked(layer)
        assert whole.shape == (len(result.tokens),) * 2
        np.testing.assert_array_equal(result.masked_rows(layer, 11, 29), whole[11:29])
    window = result.masked(1)
    assert window[30, 17] and not window[30, 18] and window[30, 31]  # 30 - 13 < j <= 30


LONG_CONFIG = [
    "--num-layers",
    "2",
    "--num-heads",
    "3",
    "--d-model",
    "24",
    "--d-ff",
    "48",
    "--causal",
    "--positional",
    "rope",
]


def show(tmp_path, name, *extra, text=None):
    out = tmp_path / name
    text = text if text is not None else words(140)
    result = cli_runs.invoke("show", text, *LONG_CONFIG, "--max-len", "512", "-o", str(out), *extra)
    assert result.exit_code == 0, result.output
    return out.read_text("utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("--pool", "mean", "--exclude-sinks"), ("-l", "all", "--focus", "it")])
def test_show_draws_the_same_overview_from_streamed_grids(tmp_path, monkeypatch, extra):
    """The overview text, byte for byte, with the grids pooled while streaming and (the old way)
    pooled from full maps kept for it; the streamed run keeps no map."""
    seen = []
    original = pipeline.run_attention

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        seen.append(result)
        return result

    monkeypatch.setattr(pipeline, "run_attention", spy)
    monkeypatch.setattr(blockwise, "BLOCK_BYTES", 4 * 3 * 17 * 150)  # blocks of rows, as a long text's
    streamed = show(tmp_path, "streamed.txt", *extra)
    (result,) = seen
    assert result.pooled is not None and result.weights.shape[0] == 0
    assert "too many for tables" in streamed and "layer 0 · head 2" in streamed

    def no_pooling(self, *args):
        return None

    show_module = importlib.import_module("attnviz.cli.show")  # the module (attnviz.cli.show is the command)
    monkeypatch.setattr(show_module._Plan, "pool_plan", no_pooling)
    kept = show(tmp_path, "kept.txt", *extra)
    assert seen[1].pooled is None and seen[1].weights.shape[0] >= 1
    assert streamed == kept


@pytest.mark.slow
def test_short_texts_keep_their_tables(tmp_path):
    """A sentence fits the tables: nothing is pooled and the tables are drawn as before."""
    out = show(tmp_path, "short.txt", text="The animal didn't cross the street because it was tired.")
    assert "too many for tables" not in out and "layer 0 · head 0" in out


@pytest.mark.slow
@pytest.mark.real_model
def test_smollm2_overview_streamed_equals_kept(smollm2, tmp_path):
    """SmolLM2, 1,400 tokens (past its whole-matrix length: blocks of rows), sinks left out, mean
    pooling: layer 0's streamed grids equal pooling its kept maps."""
    text = text_of(smollm2, 1400)
    full = run_attention(smollm2, text, layers=[0])
    plan = PoolPlan((0,), tuple(range(9)), 22, 44, "mean", tuple(full.sink_indices()))
    streamed = run_attention(smollm2, text, layers=[0], pool=plan)
    skip = skipped_cells(full.masked(0), plan.excluded)
    for head in range(9):
        expected = pool_map(full.head(0, head), skip, 22, 44, "mean")
        np.testing.assert_allclose(streamed.pooled.values[0, head], expected.values, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(streamed.pooled.empty[0], expected.empty)


@pytest.mark.parametrize("how", ["max", "mean"])
def test_colour_overview_from_streamed_grids_equals_the_one_from_maps(how):
    """In colour (two row blocks per line, the grid of overview_grid(..., colour=True)), with the
    focus strip drawn from the streamed focus rows: the same escape codes and characters."""
    from attnviz.analysis.focus import Focus
    from attnviz.render.overview import overview_grid

    model = attnviz.load_model("random", config=WINDOW)
    text = text_of(model, 150)
    full = run_attention(model, text, layers=[1], focus=60)
    T = len(full.tokens)
    rows, cols = overview_grid(T, 100, 3, True)
    plan = PoolPlan((1,), (0, 1, 2), rows, cols, how, ())
    streamed = run_attention(model, text, layers=[1], focus=60, pool=plan)
    assert streamed.weights.shape[0] == 0 and streamed.focus_rows is not None
    focus = Focus(60, full.labels[60])
    drawn = [draw_colour(result, focus, how) for result in (full, streamed)]
    assert "\x1b[38;2;" in drawn[0] and "▀" in drawn[0] and "row 60" in drawn[0]
    assert drawn[0] == drawn[1]


def draw_colour(result, focus, how):
    import io

    from rich.console import Console

    from attnviz.render.overview import render_overview

    sink = io.StringIO()
    console = Console(file=sink, width=100, force_terminal=True, color_system="truecolor", highlight=False)
    render_overview(console, result, focus, how)
    return sink.getvalue()
