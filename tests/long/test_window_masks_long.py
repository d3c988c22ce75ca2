"""Sliding windows on texts longer than the window, in every picture of them: `show --png` of a
tiny Mistral (transformers' own model, window 4) greys exactly the cells transformers gives no
weight, pooled images grey the blocks wholly outside a local layer's window, and both HTML pages
hold each layer's rule (and, in Chromium, draw those cells grey)."""

from __future__ import annotations

import io
import json
import re
import time

import numpy as np
import pytest
from PIL import Image

import browser
from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.masks import MaskRule
from attnviz.pipeline import run_attention
from attnviz.render import image as img
from attnviz.render.html import page_data, render_html
from attnviz.render.html_long import long_page_data, render_long_html
from attnviz.render.image import engine, pooled
from cli_runs import invoke

WINDOW = 8
LOCAL_GLOBAL = ("sliding_attention", "full_attention")


def masked_rgb() -> np.ndarray:
    import matplotlib.colors

    return (np.array(matplotlib.colors.to_rgb(engine.MASKED_COLOR)) * 255).round().astype(int)


def png_grey(data: bytes, panel: int, rows: int, cols: int) -> np.ndarray:
    """[rows, cols] bool: whether the centre of each cell of panel `panel` (of the last drawn
    image) has the masked colour in the PNG `data`."""
    picture = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    height, width = picture.shape[:2]
    box = engine.last_scene().axes[panel].get_position()  # figure fractions, y up
    xs = ((box.x0 + (np.arange(cols) + 0.5) / cols * box.width) * width).astype(int)
    ys = ((1 - (box.y1 - (np.arange(rows) + 0.5) / rows * box.height)) * height).astype(int)
    return np.all(picture[ys][:, xs] == masked_rgb(), axis=-1)


@pytest.fixture(scope="module")
def long_windowed():
    """A Gemma-3-shaped random decoder (layer 0 local with a window of 8, layer 1 global) on 90 tokens."""
    config = EncoderConfig(
        num_layers=2,
        num_heads=2,
        d_model=32,
        d_ff=64,
        max_len=1024,
        causal=True,
        norm="rms",
        norm_placement="pre",
        positional="rope",
        sliding_window=WINDOW,
        layer_types=LOCAL_GLOBAL,
    )
    text = " ".join(["the cat sat on the mat and then it slept"] * 9)
    result = run_attention(random_model(config, 0), text)
    assert len(result.tokens) > 80
    return result


def test_pooled_images_grey_the_blocks_wholly_outside_the_window(long_windowed, monkeypatch):
    result = long_windowed
    T = len(result.tokens)
    monkeypatch.setitem(pooled.LAYOUT_CELLS, "head", 30)  # force pooling: 30 blocks of about 3 tokens
    drawn = img.render_image(result, "head", layer=0, head=0)
    assert drawn.notes[0].startswith(f"cells are pooled: {T} tokens in 30 blocks")
    assert any(f"outside the sliding window of {WINDOW} tokens" in note for note in drawn.notes)
    grey = png_grey(drawn.data, 0, 30, 30)
    small, _, _ = pooled.pool_for_image(result, None, 30)
    edges = small.blocks.edges
    # Grey exactly where every cell of the block is masked: the pooling's own empty blocks.
    from attnviz.analysis.pooling import pool_map

    empty = pool_map(result.head(0, 0), result.masked(0), 30, 30).empty
    np.testing.assert_array_equal(grey, empty)
    np.testing.assert_array_equal(grey, small.masked(0))
    # Far below the diagonal (keys more than a window before every query of the block): grey.
    r, c = 29, 0
    assert edges[c + 1] - 1 <= edges[r] - WINDOW and grey[r, c]
    below = [(r, c) for r in range(30) for c in range(r) if edges[c + 1] - 1 <= edges[r] - WINDOW]
    assert len(below) > 300 and all(grey[r, c] for r, c in below)
    assert not grey[np.arange(30), np.arange(30)].any()  # the diagonal: each query sees itself
    # The global layer: only the look-ahead blocks are grey.
    drawn = img.render_image(result, "head", layer=1, head=0)
    np.testing.assert_array_equal(png_grey(drawn.data, 0, 30, 30), np.triu(np.ones((30, 30), bool), 1))
    assert not any("window" in note for note in drawn.notes)


def test_a_pooled_focus_image_greys_what_the_focus_token_cannot_see(long_windowed, monkeypatch):
    result = long_windowed
    monkeypatch.setitem(pooled.LAYOUT_CELLS, "focus", 30)
    focus = 70
    drawn = img.render_image(result, "focus", focus=focus)
    small, block, _ = pooled.pool_for_image(result, focus, 30, name_every=pooled.FOCUS_LABELS)
    grey = png_grey(drawn.data, 0, 4, 30)  # rows: L0 H0, L0 H1, L1 H0, L1 H1
    edges = np.array(small.blocks.edges)
    seen = (edges[1:] - 1 >= focus - WINDOW + 1) & (edges[:-1] <= focus)  # blocks holding keys 63..70
    np.testing.assert_array_equal(grey[0], ~seen)
    np.testing.assert_array_equal(grey[2], edges[:-1] > focus)


def test_both_html_pages_hold_each_layers_rule(long_windowed):
    data = page_data({"attention": long_windowed})
    masks = data["views"]["attention"]["masks"]
    assert masks["tokens"] == [{"causal": True, "window": WINDOW}, {"causal": True, "window": None}]
    assert masks["words"] == [{"causal": True, "window": None}] * 2  # a window cuts words: look-ahead only
    long_data = long_page_data(long_windowed)
    assert long_data["masks"] == {"0": MaskRule(True, WINDOW).to_json(), "1": MaskRule(True).to_json()}
    page = render_long_html(long_windowed)
    assert "const MASKS" in page and "MASKS.block(DATA.masks" in page


@pytest.mark.slow
def test_show_png_of_a_tiny_mistral_greys_what_transformers_does_not_see(tmp_path):
    """transformers' MistralForCausalLM, window 4, a text of 12 tokens: its eager attention is 0
    exactly on the cells the PNG draws grey (look-ahead and 4 or more tokens back), and only there."""
    transformers = pytest.importorskip("transformers")
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers

    config = transformers.MistralConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        sliding_window=4,
    )
    torch.manual_seed(0)
    model = transformers.MistralForCausalLM(config)
    folder = tmp_path / "mistral"
    model.save_pretrained(folder)
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(63)} | {"[UNK]": 63}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    (folder / "tokenizer.json").write_text(tok.to_str(), encoding="utf-8")
    text = " ".join(f"w{i}" for i in range(12))
    png = tmp_path / "head.png"
    shown = invoke("show", text, "-m", folder, "-l", "0", "--head", "1", "--png", png)
    assert shown.exit_code == 0, shown.output
    assert "outside the sliding window of 4 tokens" in shown.stderr
    grey = png_grey(png.read_bytes(), 0, 12, 12)
    ref = transformers.MistralForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.inference_mode():
        theirs = ref(input_ids=torch.arange(12)[None], output_attentions=True).attentions[0][0, 1].numpy()
    np.testing.assert_array_equal(grey, theirs == 0)
    i, j = np.arange(12)[:, None], np.arange(12)[None, :]
    np.testing.assert_array_equal(grey, (j > i) | (j <= i - 4))


# --- in Chromium -------------------------------------------------------------------------------


def wait_ready(driver) -> None:
    for _ in range(300):
        ready = driver.execute_script(
            "const m = document.getElementById('attnviz'); return m.dataset.ready || m.dataset.error || null"
        )
        if ready:
            assert ready == "1", ready
            return
        time.sleep(0.05)
    raise AssertionError("the page did not draw")


@pytest.mark.slow
@pytest.mark.browser
@browser.NEEDED
def test_the_pages_draw_out_of_window_cells_grey_in_chromium(long_windowed, tmp_path, driver):
    result = long_windowed
    T = len(result.tokens)
    short_page, long_page = tmp_path / "short.html", tmp_path / "long.html"
    short_page.write_text(render_html(result), encoding="utf-8")
    long_page.write_text(render_long_html(result), encoding="utf-8")
    edges = long_page_data(result)["pool"]["edges"]

    # The long page: each overview block wholly outside the window is grey, in layer 0 only.
    driver.get(long_page.as_uri())
    wait_ready(driver)
    pixels = driver.execute_script(
        """return [...document.querySelectorAll('.ov-canvas')].map((c) => {
            const x = c.getContext('2d'), n = c.width, d = x.getImageData(0, 0, n, n).data, out = [];
            for (let r = 0; r < n; r++) { const row = []; for (let k = 0; k < n; k++) row.push(d[4 * (r * n + k)] === 154 && d[4 * (r * n + k) + 1] === 154); out.push(row); }
            return out;
        });"""
    )
    assert len(pixels) == 4  # layers 0 and 1, two heads each
    rule0, rule1 = MaskRule(True, WINDOW), MaskRule(True)
    np.testing.assert_array_equal(np.array(pixels[0]), rule0.blocks(edges, edges))
    np.testing.assert_array_equal(np.array(pixels[2]), rule1.blocks(edges, edges))
    assert f"outside the {WINDOW}-token window in local layer 0)" in driver.find_element("id", "attnviz").text
    # The short page's matrix: out-of-window cells are masked (tooltip) and grey-hatched.
    driver.get(short_page.as_uri())
    wait_ready(driver)
    driver.find_element("id", "tab-matrix").click()
    tip = """const c = document.getElementById('matrix'), m = +c.dataset.margin, s = +c.dataset.cell, r = c.getBoundingClientRect();
        c.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + m + (arguments[1] + 0.5) * s, clientY: r.top + m + (arguments[0] + 0.5) * s}));
        const t = document.getElementById('tooltip'); return [t.dataset.w, t.textContent];"""
    w, text = driver.execute_script(tip, T - 1, 0)
    assert w == "masked" and f"outside the {WINDOW}-token window" in text
    w, _ = driver.execute_script(tip, T - 1, T - WINDOW)
    assert w != "masked"
    pixel = """const c = document.getElementById('matrix'), m = +c.dataset.margin, s = +c.dataset.cell, q = window.devicePixelRatio || 1;
        return [...c.getContext('2d').getImageData((m + (arguments[1] + 0.5) * s) * q, (m + (arguments[0] + 0.5) * s) * q, 1, 1).data].slice(0, 3)"""
    out, after = driver.execute_script(pixel, T - 1, 0), driver.execute_script(pixel, 0, T - 1)
    assert out[0] == out[1] == out[2] and after[0] == after[1] == after[2]  # both grey (hatched)
    seen = driver.execute_script(pixel, T - 1, T - 2)
    assert len(set(seen)) > 1  # a viridis colour
    legend = driver.find_element("css selector", ".legend").text
    assert f"outside the {WINDOW}-token sliding window of this layer" in legend
    # Layer 1 (global): the same cell is a weight.
    driver.execute_script(
        "const s = document.getElementById('layer'); s.value = '1'; s.dispatchEvent(new Event('change'))"
    )
    w, _ = driver.execute_script(tip, T - 1, 0)
    assert w != "masked"
    assert "window" not in driver.find_element("css selector", ".legend").text
    logs = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert logs == []


def test_page_json_round_trip(long_windowed):
    """The short page's embedded data is the page_data above (the script reads this JSON)."""
    page = render_html(long_windowed)
    data = json.loads(re.search(r'<script type="application/json" id="attnviz-data">(.*?)</script>', page, re.S)[1])
    assert data["views"]["attention"]["masks"]["tokens"][0] == {"causal": True, "window": WINDOW}
