"""Sliding windows in pictures: the one mask rule (attnviz/masks.py) against a direct reading of
HF's semantics, its pooled blocks against pool_map, and images (PNG pixels read back) that draw a
local layer's out-of-window cells in the masked colour while a global layer of the same model
colours them, with a legend and a note that say so."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from attnviz.analysis.focus import ranked_keys, top_targets
from attnviz.analysis.pooling import block_edges, pool_map
from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.masks import BlockAxes, MaskRule
from attnviz.pipeline import run_attention
from attnviz.render import image as img
from attnviz.render.image import engine

WINDOW = 4
TEXT = "one two three four five six seven eight nine ten eleven twelve"  # 14 tokens with [CLS] and [SEP]
GEMMA_TYPES = ("sliding_attention", "full_attention")  # layer 0 local, layer 1 global (Gemma 3 has 5:1)


def direct_mask(rule: MaskRule, T: int, S: int) -> np.ndarray:
    """HF's semantics cell by cell: causal i - w < j <= i; bidirectional |i - j| < w."""
    out = np.zeros((T, S), dtype=bool)
    for i in range(T):
        for j in range(S):
            seen = True
            if rule.causal and j > i:
                seen = False
            if rule.window is not None and (i - j >= rule.window or (not rule.causal and j - i >= rule.window)):
                seen = False
            out[i, j] = not seen
    return out


RULES = [MaskRule(), MaskRule(causal=True), MaskRule(causal=True, window=4), MaskRule(window=3), MaskRule(True, 1)]


@pytest.mark.parametrize("rule", RULES)
def test_cells_follow_hf_semantics(rule):
    for T, S in ((1, 1), (9, 9), (13, 13), (6, 11)):
        np.testing.assert_array_equal(rule.cells(T, S), direct_mask(rule, T, S))


@settings(max_examples=60, deadline=None)
@given(
    T=st.integers(1, 60),
    rows=st.integers(1, 20),
    cols=st.integers(1, 20),
    causal=st.booleans(),
    window=st.one_of(st.none(), st.integers(1, 70)),
)
def test_a_block_is_masked_exactly_when_every_cell_is(T, rows, cols, causal, window):
    rule = MaskRule(causal, window)
    cells = rule.cells(T)
    pooled = pool_map(np.ones((T, T), np.float32), cells, rows, cols)
    np.testing.assert_array_equal(rule.blocks(pooled.row_edges, pooled.col_edges), pooled.empty)


def test_block_axes_mask_the_focus_row_as_the_focus_token_sees():
    rule = MaskRule(causal=True, window=3)
    edges = tuple(int(e) for e in block_edges(20, 5))  # blocks of 4 tokens
    axes = BlockAxes(edges, focus=(9, 2))  # token 9 sits in block 2 (tokens 8-11)
    masked = axes.masked(rule)
    cells = rule.cells(20)
    # Other rows: the blocks with no visible cell; the focus row: token 9's keys 7..9 only.
    assert masked[0].tolist() == [False, True, True, True, True]
    assert masked[4].tolist() == [True, True, True, False, False]
    assert masked[2].tolist() == [bool(cells[9, 4 * c : 4 * c + 4].all()) for c in range(5)]
    assert masked[2].tolist() == [True, False, False, True, True]


@pytest.mark.subprocess
def test_masks_js_applies_the_same_rule(tmp_path):
    """The pages' masks.js (run with node) masks the same cells and blocks as masks.py."""
    node = subprocess.run(["which", "node"], capture_output=True, text=True).stdout.strip()
    if not node:
        pytest.skip("node is not installed")
    js = Path(__file__).resolve().parents[2] / "attnviz" / "render" / "html_assets" / "masks.js"
    edges = block_edges(23, 6).tolist()
    script = js.read_text() + (
        "\nconst out = [];\n"
        f"for (const rule of {json.dumps([r.to_json() for r in RULES])}) {{\n"
        "  const cells = [], blocks = [];\n"
        "  for (let i = 0; i < 23; i++) { const row = []; for (let j = 0; j < 23; j++) row.push(MASKS.cell(rule, i, j)); cells.push(row); }\n"
        f"  const E = {json.dumps(edges)};\n"
        "  for (let r = 0; r < E.length - 1; r++) { const row = [];\n"
        "    for (let c = 0; c < E.length - 1; c++) row.push(MASKS.block(rule, E[r], E[r + 1], E[c], E[c + 1])); blocks.push(row); }\n"
        "  out.push({cells, blocks});\n"
        "}\n"
        "console.log(JSON.stringify(out));\n"
    )
    path = tmp_path / "check.js"
    path.write_text(script)
    got = json.loads(subprocess.run([node, str(path)], capture_output=True, text=True, check=True).stdout)
    for rule, answer in zip(RULES, got):
        np.testing.assert_array_equal(np.array(answer["cells"]), rule.cells(23))
        np.testing.assert_array_equal(np.array(answer["blocks"]), rule.blocks(edges, edges))


# --- a Gemma-3-shaped random model: layer 0 local (window 4), layer 1 global -----------------------


@pytest.fixture(scope="module")
def windowed():
    config = EncoderConfig(
        num_layers=2,
        num_heads=2,
        d_model=32,
        d_ff=64,
        causal=True,
        norm="rms",
        norm_placement="pre",
        positional="rope",
        sliding_window=WINDOW,
        layer_types=GEMMA_TYPES,
    )
    return run_attention(random_model(config, 0), TEXT)


def outside_window(T: int) -> np.ndarray:
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    return j <= i - WINDOW


def masked_rgb() -> np.ndarray:
    import matplotlib.colors

    return (np.array(matplotlib.colors.to_rgb(engine.MASKED_COLOR)) * 255).round().astype(int)


def png_cells(data: bytes, panel: int, rows: int, cols: int) -> np.ndarray:
    """[rows, cols, 3] the RGB at the centre of each cell of panel `panel` of the last drawn PNG."""
    picture = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    height, width = picture.shape[:2]
    box = engine.last_scene().axes[panel].get_position()  # figure fractions, y up
    xs = ((box.x0 + (np.arange(cols) + 0.5) / cols * box.width) * width).astype(int)
    ys = ((1 - (box.y1 - (np.arange(rows) + 0.5) / rows * box.height)) * height).astype(int)
    return picture[ys][:, xs]


def test_the_result_masks_the_local_layer_only(windowed):
    T = len(windowed.tokens)
    assert T == 14 > WINDOW
    assert windowed.window(0) == WINDOW and windowed.window(1) is None
    out = outside_window(T)
    assert windowed.masked(0)[out].all() and not windowed.masked(1)[out].any()
    assert (windowed.weights[0][:, out] == 0).all()  # the model computed with the window
    assert (windowed.weights[1][:, out] > 0).all()  # the global layer sees every earlier token


def test_a_local_head_png_draws_out_of_window_cells_masked(windowed):
    T = len(windowed.tokens)
    drawn = img.render_image(windowed, "head", layer=0, head=0)
    cells = png_cells(drawn.data, 0, T, T)
    grey = np.all(cells == masked_rgb(), axis=-1)  # [T, T]
    np.testing.assert_array_equal(grey, windowed.masked(0))  # look-ahead and out of window, nothing else
    assert grey[outside_window(T)].all() and grey[13, 9] and not grey[13, 10]
    texts = [t.get_text() for t in engine.last_scene().texts if t.get_visible()]
    assert "masked: look-ahead," in texts and f"outside the {WINDOW}-token window" in texts
    assert any(f"outside the sliding window of {WINDOW} tokens" in note for note in drawn.notes)


def test_a_global_head_png_colours_the_same_cells(windowed):
    T = len(windowed.tokens)
    drawn = img.render_image(windowed, "head", layer=1, head=0)
    grey = np.all(png_cells(drawn.data, 0, T, T) == masked_rgb(), axis=-1)
    np.testing.assert_array_equal(grey, np.triu(np.ones((T, T), bool), 1))  # look-ahead only
    texts = [t.get_text() for t in engine.last_scene().texts if t.get_visible()]
    assert "masked" in texts and not any("window" in t for t in texts)
    assert not any("window" in note for note in drawn.notes)


def test_model_and_focus_pngs_mask_each_layer_by_its_own_rule(windowed):
    T = len(windowed.tokens)
    drawn = img.render_image(windowed, "model")
    for panel, layer in enumerate([0, 0, 1, 1]):  # layers x heads, row by row
        grey = np.all(png_cells(drawn.data, panel, T, T) == masked_rgb(), axis=-1)
        np.testing.assert_array_equal(grey, windowed.masked(layer))
    assert any("local layer 0 (the other layers see every earlier token)" in note for note in drawn.notes)
    focus = 12
    drawn = img.render_image(windowed, "focus", focus=focus)
    grey = np.all(png_cells(drawn.data, 0, 4, T) == masked_rgb(), axis=-1)  # rows: L0 H0, L0 H1, L1 H0, L1 H1
    for row, layer in enumerate([0, 0, 1, 1]):
        np.testing.assert_array_equal(grey[row], windowed.masked(layer)[focus])
    assert grey[0, :9].all() and not grey[2, :9].any()


def test_focus_rankings_never_name_an_out_of_window_key(windowed):
    focus = 13
    keys = ranked_keys(windowed, focus, 0)
    assert np.flatnonzero(keys).tolist() == [10, 11, 12, 13]
    assert ranked_keys(windowed, focus, 1).all()  # the global layer: every earlier key
    for row in top_targets(windowed, focus, k=6):
        if row.layer == 0:
            assert len(row.targets) == 4 and all(j >= 10 for j, _ in row.targets)
        else:
            assert len(row.targets) == 6


def test_rollout_keeps_the_look_ahead_mask_only(windowed):
    from dataclasses import replace

    rollout = replace(windowed, view="rollout")
    assert rollout.window(0) is None
    np.testing.assert_array_equal(rollout.masked(0), np.triu(np.ones((14, 14), bool), 1))
