"""The HTML page of long texts (render/html_long.py, html_assets/long.js): stored maps decode to
the weights, the overview is the pooled map, the page stays offline and small, and in headless
Chromium it draws, its zoom moves on a key press, without console errors."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

import browser
import builders
from attnviz.analysis.pooling import pool_map
from attnviz.render.html import LONG_FROM, render_html
from attnviz.render.html_long import FLOOR, decode, long_page_data


def page_json(page: str) -> dict:
    """The page's data, with each full map's base64 put back from its own script element."""
    data = json.loads(re.search(r'<script type="application/json" id="attnviz-data">(.*?)</script>', page, re.S)[1])
    for entry in data.get("heads", []):
        found = re.search(f'<script type="application/octet-stream" id="{entry["full"]["id"]}">(.*?)</script>', page)
        entry["full"]["b64"] = found[1]
    return data


def realistic(T: int, H: int, seed: int = 0):
    """A causal result shaped like a decoder's: each row gives part of its weight to the first token
    (a sink), most to the few tokens before it, a little to a few random earlier ones, and a thin
    spread over the rest; head h looks h + 1 tokens back more than the others."""
    rng = np.random.default_rng(seed)
    idx = np.arange(T)
    weights = np.zeros((1, H, T, T), dtype=np.float32)
    tril = np.tril(np.ones((T, T), dtype=np.float32))
    for h in range(H):
        w = tril * np.float32(1e-5)
        w[:, 0] += 0.4
        for d in range(6):
            rows = idx[d:]
            w[rows, rows - d] += 0.3 * 0.6**d * (2.0 if d == h % 6 else 1.0)
        for _ in range(4):
            far = (rng.random(T) * (idx + 1)).astype(np.int64)
            w[idx, far] += 0.03
        weights[0, h] = w / w.sum(axis=1, keepdims=True)
    tokens = [f"w{i}" for i in range(T)]
    offsets, at = [], 0
    for t in tokens:
        offsets.append((at, at + len(t)))
        at += len(t) + 1
    return builders.hand_result(weights, tokens, offsets, list(range(T)), " ".join(tokens), causal=True)


def test_long_pages_store_what_they_show():
    result = realistic(LONG_FROM + 88, 2)  # 600 tokens: the long page
    page = render_html(result, focus="w450")
    data = page_json(page)
    assert data["format"] == "attnviz-long/1" and data["T"] == 600
    T = 600
    for k, entry in enumerate(data["heads"]):
        w = result.weights[0, k].astype(np.float64)
        got = decode(entry["full"], T * T).reshape(T, T)
        # Square-root levels: within half a level of sqrt(w / scale); below the floor, stored as 0.
        scale = entry["full"]["scale"]
        kept = w >= FLOOR * entry["top_no_sinks"]
        assert np.all(np.abs(np.sqrt(got[kept] / scale) - np.sqrt(w[kept] / scale)) <= 0.5 / 255 + 1e-9)
        assert np.all(got[~kept] == 0)
        pooled = pool_map(result.weights[0, k], result.masked(), 200, 200)
        over = decode(entry["overview"], 200 * 200).reshape(200, 200)
        s2 = entry["overview"]["scale"]
        assert np.all(np.abs(np.sqrt(over / s2) - np.sqrt(pooled.values / s2)) <= 0.5 / 255 + 1e-6)
        # The focus word's targets: the strongest keys of its row, strongest first.
        row = np.where(np.arange(T) > 450, -1, result.weights[0, k, 450])
        assert [j for j, _ in entry["targets"]] == list(np.argsort(-row, kind="stable")[:10])
    assert data["focus"] == {"index": 450, "label": "w450"}
    assert data["pool"]["edges"][-1] == T and data["sinks_out"]
    assert render_html(result, focus="w450") == page  # same bytes
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', page)[1]
    assert "default-src 'none'" in csp and "connect-src" not in csp
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    # Short texts keep the page of html.py.
    short = realistic(40, 1)
    assert page_json(render_html(short))["format"] == "attnviz-html/1"


def test_a_page_holds_layers_within_its_budget(monkeypatch):
    import attnviz.render.html_long as hl

    result = realistic(600, 2)
    two = builders.hand_result(
        np.concatenate([result.weights] * 3), result.tokens, result.offsets, result.word_ids, result.text, causal=True
    )
    monkeypatch.setattr(hl, "MAX_VALUES", 3 * 600 * 600)
    data = long_page_data(two)
    assert data["layers"] == [0, 1]
    assert [(h["layer"], h["head"]) for h in data["heads"]] == [(0, 0), (0, 1), (1, 0)]
    assert any(
        "holds 3 of the 6 maps" in note and "layer 1 head 1 and the ones after" in note for note in data["notes"]
    )


@pytest.fixture(scope="module")
def page2000(tmp_path_factory):
    result = realistic(2000, 9)  # SmolLM2's 9 heads, one layer
    page = render_html(result, focus="w1900")
    path = tmp_path_factory.mktemp("long") / "long.html"
    path.write_text(page, encoding="utf-8")
    return path, len(page.encode("utf-8"))


@pytest.mark.slow
def test_2000_tokens_one_layer_fits_20_mb(page2000):
    assert page2000[1] <= 20_000_000


@pytest.mark.slow
@pytest.mark.browser
@browser.NEEDED
def test_the_long_page_in_chromium(page2000, driver):
    driver.get(page2000[0].as_uri())
    ready = None
    for _ in range(300):
        ready = driver.execute_script(
            "const m = document.getElementById('attnviz'); return m.dataset.ready || m.dataset.error || null"
        )
        if ready:
            break
        time.sleep(0.05)
    assert ready == "1", ready
    for _ in range(300):  # the other heads' maps come after the first view
        if driver.execute_script("return document.getElementById('attnviz').dataset.loaded"):
            break
        time.sleep(0.05)
    first_view = int(driver.execute_script("return document.getElementById('attnviz').dataset.firstView"))
    print(f"first view: {first_view} ms")
    # Nine overviews, drawn: a masked (grey) corner top right, viridis below the diagonal.
    pixels = driver.execute_script(
        """return [...document.querySelectorAll('.ov-canvas')].map((c) => {
            const x = c.getContext('2d'); const n = c.width;
            return [Array.from(x.getImageData(n - 1, 0, 1, 1).data), Array.from(x.getImageData(0, n - 1, 1, 1).data)];
        });"""
    )
    assert len(pixels) == 9
    for corner, below in pixels:
        assert corner == [154, 154, 154, 255]  # masked
        assert below[3] == 255 and below[:3] != [154, 154, 154]
    before = driver.execute_script("return [attnvizLong.state.r0, attnvizLong.state.c0]")
    title = driver.find_element("id", "zoom-title").text
    ms = driver.execute_async_script(
        """const done = arguments[0]; const t0 = performance.now();
        document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}));
        requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));"""
    )
    print(f"zoom move: {ms:.1f} ms")
    after = driver.execute_script("return [attnvizLong.state.r0, attnvizLong.state.c0]")
    assert after == [before[0], before[1] + 8]
    assert driver.find_element("id", "zoom-title").text != title
    # Shift moves a whole window; ] selects the next head (its overview outlined).
    driver.execute_script("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowDown', shiftKey: true}))")
    assert driver.execute_script("return attnvizLong.state.r0") == min(before[0] + 64, 2000 - 64)
    driver.execute_script("document.dispatchEvent(new KeyboardEvent('keydown', {key: ']'}))")
    assert driver.execute_script("return document.querySelector('.ov.selected').dataset.k") == "1"
    # The focus row: a pixel per screen pixel (at most one per token), and its targets listed.
    width, shown = driver.execute_script(
        "const s = document.getElementById('strip'); return [s.width, document.getElementById('focus').clientWidth]"
    )
    assert width == min(2000, shown)
    assert len(driver.find_elements("css selector", ".targets li")) == 10
    errors = [e for e in browser.console(driver) if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    assert [u for u in browser.requests(driver) if u.startswith(("http:", "https:", "ws:", "wss:"))] == []
