"""The interactive HTML page in a real browser: Selenium driving Debian's headless Chromium through
the system chromedriver (tests/browser.py). One browser for the whole module."""

from __future__ import annotations

import functools
import http.server
import threading

import numpy as np
import pytest

import browser
from builders import hand_result
import attnviz
from attnviz.analysis.words import to_words
from attnviz.pipeline import run_attention
from attnviz.render.html import render_html
from test_html import page_json, weights_of

pytestmark = browser.NEEDED

SENTENCE = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="module")
def pages(tmp_path_factory, small_model):
    folder = tmp_path_factory.mktemp("html")
    result = run_attention(small_model, SENTENCE)
    written = {}

    def write(name, page):
        (folder / name).write_text(page, encoding="utf-8")
        written[name] = folder / name
        return folder / name

    write("main.html", render_html(result, candidates=["animal", "street"]))
    write(
        "views.html",
        render_html(
            {
                "attention": result,
                "norm": run_attention(small_model, SENTENCE, view="norm"),
                "rollout": run_attention(small_model, SENTENCE, view="rollout"),
            }
        ),
    )
    write("long.html", render_html(run_attention(small_model, " ".join(["word", "play"] * 24))))
    # A decoder's attention, built by hand: row i spreads evenly over keys 0..i.
    T = 5
    causal = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]
    weights = np.broadcast_to(causal, (2, 2, T, T)).copy()
    tokens = ["The", "cat", "sat", "on", "mats"]
    decoder = hand_result(
        weights, tokens, [(0, 3), (4, 7), (8, 11), (12, 14), (15, 19)], [0, 1, 2, 3, 4], "The cat sat on mats"
    )
    decoder = _causal(decoder)
    write("causal.html", render_html(decoder))
    text = "개가 שלום مرحبا ok"
    scripts = hand_result(
        np.full((1, 1, 4, 4), 0.25),
        ["개가", "שלום", "مرحبا", "ok"],
        [(0, 2), (3, 7), (8, 13), (14, 16)],
        [0, 1, 2, 3],
        text,
    )
    write("scripts.html", render_html(scripts))
    parent = (
        "<!doctype html><html><head><meta charset='utf-8'><title>notebook</title></head><body>"
        + attnviz.notebook_html(result)
        + attnviz.notebook_html(to_words(result))
        + "</body></html>"
    )
    write("notebook.html", parent)
    return folder, result, decoder, scripts


@pytest.fixture(autouse=True)
def screenshot(request, tmp_path):
    """After each test, what the browser showed, kept in the test's temporary folder for debugging."""
    yield
    d = request.node.funcargs.get("driver")
    if d is not None:
        d.save_screenshot(str(tmp_path / f"{request.node.name}.png"))


def _causal(result):
    from dataclasses import replace

    info = replace(result.model, config=replace(result.model.config, causal=True))
    return replace(result, model=info)


def open_page(driver, path_or_url):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    browser.console(driver)
    browser.requests(driver)
    driver.get(path_or_url if isinstance(path_or_url, str) else path_or_url.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "const r = document.getElementById('attnviz'); return r && (r.dataset.ready || r.dataset.error)"
        )
    )
    assert driver.execute_script("return document.getElementById('attnviz').dataset.error || null") is None


def js(driver, code, *args):
    return driver.execute_script(code, *args)


# Chromium's own note when one file: URL touches another (each file: URL is an origin of its own):
# "Unsafe attempt to load URL file:///…/a.html from frame with URL file:///…/b.html. 'file:' URLs are
# treated as unique security origins." It comes from the browser's navigation between the pages of
# this module, at a moment that depends on the machine's load, never from a page's script: a page
# asks for nothing but its own file (test_opens_from_disk_offline_without_errors checks the requests).
FILE_ORIGIN_NOTE = "Unsafe attempt to load URL file:"


def severe(driver):
    """Console errors: uncaught exceptions, refused resources, CSP violations; Chromium's note about
    file: origins (FILE_ORIGIN_NOTE) is left out, whenever it arrives."""
    return [e for e in browser.console(driver) if e["level"] == "SEVERE" and FILE_ORIGIN_NOTE not in e["message"]]


def lines(driver):
    return js(
        driver,
        "return [...document.querySelectorAll('svg.lines line')].map(l => [+l.dataset.h, +l.dataset.q, +l.dataset.k])",
    )


def expected_lines(data, level, layer, heads, *, sinks=False, query=None, key=None):
    """The head view's rule, in Python: per head, every unmasked non-sink key of strength
    weight / colour-scale top >= min_line (only the top_k strongest per query on long pages)."""
    w = weights_of(data, "attention", level)
    T = w.shape[-1]
    hv = data["head_view"]
    sink = set(data["levels"][level]["sinks"]) if sinks else set()
    out = []
    for h in heads:
        cells = [(i, j) for i in range(T) for j in range(T) if not (data["causal"] and j > i) and j not in sink]
        top = 1.0 if not sink else max(w[layer, h, i, j] for i, j in cells)
        for i in range(T):
            keys = [(j, w[layer, h, i, j]) for j in range(T) if (i, j) in set(cells)]
            if hv["top_k"]:
                keys = sorted(keys, key=lambda kv: (-kv[1], kv[0]))[: hv["top_k"]]
            out += [[h, i, j] for j, v in keys if min(1.0, v / top) >= hv["min_line"]]
    return [x for x in out if (query is None or x[1] == query) and (key is None or x[2] == key)]


@pytest.mark.slow
@pytest.mark.browser
def test_opens_from_disk_offline_without_errors(driver, pages):
    folder = pages[0]
    open_page(driver, folder / "main.html")
    assert severe(driver) == []
    assert browser.requests(driver) == [(folder / "main.html").as_uri()]
    assert "weights stored at 16 bits" in driver.find_element("css selector", "#attnviz .meta").text
    # The CSP is live: even a data: fetch, which needs no network, is refused.
    outcome = driver.execute_async_script(
        "const done = arguments[0]; fetch('data:text/plain,x').then(() => done('fetched'), () => done('blocked'))"
    )
    assert outcome == "blocked"
    assert any("Content Security Policy" in e["message"] for e in browser.console(driver))


@pytest.mark.slow
@pytest.mark.browser
def test_opens_from_a_web_server(driver, pages):
    folder = pages[0]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/main.html"
        open_page(driver, url)
        assert [e for e in severe(driver) if "favicon" not in e["message"]] == []
        assert [u for u in browser.requests(driver) if not u.endswith("/favicon.ico")] == [url]
        assert len(lines(driver)) > 0
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.browser
def test_head_view_draws_the_expected_lines_and_filters_on_hover_and_focus(driver, pages):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    folder = pages[0]
    data = page_json((folder / "main.html").read_text(encoding="utf-8"))
    open_page(driver, folder / "main.html")
    assert sorted(lines(driver)) == sorted(expected_lines(data, "tokens", 0, range(4)))
    Select(driver.find_element("id", "layer")).select_by_value("1")
    Select(driver.find_element("id", "head")).select_by_value("2")
    driver.find_element("css selector", '[data-key="one-head"]').click()
    want = expected_lines(data, "tokens", 1, [2])
    assert sorted(lines(driver)) == sorted(want) and 0 < len(want) < 15 * 15
    # Hover the query "it" (token 9): only its lines stay.
    it = driver.find_element("css selector", '.col.q .tok[data-i="9"]')
    ActionChains(driver).move_to_element(it).perform()
    assert sorted(lines(driver)) == sorted(expected_lines(data, "tokens", 1, [2], query=9))
    ActionChains(driver).move_to_element(driver.find_element("css selector", "h1")).perform()
    assert len(lines(driver)) == len(want)
    # Keyboard focus on the key "animal" (token 2): only the lines into it.
    js(driver, "document.querySelector('.col.k .tok[data-i=\"2\"]').focus()")
    assert sorted(lines(driver)) == sorted(expected_lines(data, "tokens", 1, [2], key=2))
    assert js(driver, "return document.activeElement.dataset.key") == "tok-k2"
    js(driver, "document.activeElement.blur()")
    # Leaving the sinks out drops every line into [CLS] and [SEP].
    driver.find_element("id", "sinks").click()
    assert sorted(lines(driver)) == sorted(expected_lines(data, "tokens", 1, [2], sinks=True))
    assert not [x for x in lines(driver) if x[2] in (0, 14)]
    assert severe(driver) == []


@pytest.mark.slow
@pytest.mark.browser
def test_long_pages_draw_only_the_top_lines(driver, pages):
    folder = pages[0]
    data = page_json((folder / "long.html").read_text(encoding="utf-8"))
    open_page(driver, folder / "long.html")
    got = lines(driver)
    assert sorted(got) == sorted(expected_lines(data, "tokens", 0, range(4)))
    assert len(got) <= 4 * 50 * 5
    assert "5 strongest lines" in driver.find_element("id", "panel-head").text


def hover_cell(driver, i, j):
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = driver.find_element("id", "matrix")
    margin, cell = (
        float(js(driver, f"return document.getElementById('matrix').dataset.{k}")) for k in ("margin", "cell")
    )
    w, h = canvas.size["width"], canvas.size["height"]
    x = margin + (j + 0.5) * cell - w / 2
    y = margin + (i + 0.5) * cell - h / 2
    ActionChains(driver).move_to_element_with_offset(canvas, int(round(x)), int(round(y))).perform()
    return js(
        driver,
        "const t = document.getElementById('tooltip'); return [t.hidden, t.dataset.q, t.dataset.k, t.dataset.w, t.textContent]",
    )


@pytest.mark.slow
@pytest.mark.browser
def test_matrix_tooltip_gives_query_key_and_weight(driver, pages):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    folder, result = pages[0], pages[1]
    open_page(driver, folder / "main.html")
    driver.find_element("id", "tab-matrix").click()
    Select(driver.find_element("id", "layer")).select_by_value("1")
    Select(driver.find_element("id", "head")).select_by_value("3")
    for i, j in ((9, 2), (9, 7), (0, 14), (3, 4)):
        hidden, q, k, w, text = hover_cell(driver, i, j)
        assert not hidden and (int(q), int(k)) == (i, j)
        assert abs(float(w) - result.weights[1, 3, i, j]) <= 1 / 65535
        assert f"query {i} {result.labels[i]} → key {j} {result.labels[j]}: {float(w):.4f}" == text
    # Colours: the images' scale, viridis from 0 to 1, looked up in matplotlib's table.
    import matplotlib

    pixel = """const c = document.getElementById('matrix'), m = +c.dataset.margin, s = +c.dataset.cell, r = window.devicePixelRatio || 1;
      return [...c.getContext('2d').getImageData((m + (arguments[1] + 0.5) * s) * r, (m + (arguments[0] + 0.5) * s) * r, 1, 1).data].slice(0, 3)"""
    viridis = matplotlib.colormaps["viridis"]
    for i, j in ((9, 2), (0, 0), (5, 11)):
        w = float(hover_cell(driver, i, j)[3])
        want = np.round(np.asarray(viridis(min(255, int(w * 255.999))))[:3] * 255)
        assert js(driver, pixel, i, j) == [int(v) for v in want]
    # From the keyboard: focus the matrix, arrows move the cell (not the head).
    js(driver, "document.getElementById('matrix').focus()")
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_RIGHT).perform()
    tip = js(driver, "const t = document.getElementById('tooltip'); return [t.hidden, t.dataset.q, t.dataset.k]")
    assert tip == [False, "2", "1"]
    assert js(
        driver,
        "return [document.getElementById('attnviz').dataset.layer, document.getElementById('attnviz').dataset.head]",
    ) == ["1", "3"]
    assert severe(driver) == []


@pytest.mark.slow
@pytest.mark.browser
def test_model_view_thumbnail_opens_that_head(driver, pages):
    folder = pages[0]
    open_page(driver, folder / "main.html")
    driver.find_element("id", "tab-model").click()
    thumbs = driver.find_elements("css selector", ".thumb")
    assert len(thumbs) == 2 * 4
    driver.find_element("css selector", '.thumb[data-layer="1"][data-head="2"]').click()
    state = js(driver, "const d = document.getElementById('attnviz').dataset; return [d.tab, d.layer, d.head]")
    assert state == ["matrix", "1", "2"]
    assert "layer 1 · head 2" in driver.find_element("id", "status").text
    assert driver.find_element("id", "panel-matrix").is_displayed()
    # The same from the keyboard: a thumbnail is a button, Enter opens it.
    from selenium.webdriver.common.keys import Keys

    driver.find_element("id", "tab-model").click()
    driver.find_element("css selector", '.thumb[data-layer="0"][data-head="3"]').send_keys(Keys.ENTER)
    state = js(driver, "const d = document.getElementById('attnviz').dataset; return [d.tab, d.layer, d.head]")
    assert state == ["matrix", "0", "3"]


@pytest.mark.slow
@pytest.mark.browser
def test_arrow_keys_change_layer_and_head(driver, pages):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    folder = pages[0]
    open_page(driver, folder / "main.html")
    state = "const d = document.getElementById('attnviz').dataset; return [d.layer, d.head]"
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT).perform()
    assert js(driver, state) == ["0", "2"]
    ActionChains(driver).send_keys(Keys.ARROW_DOWN).perform()
    assert js(driver, state) == ["1", "2"]
    ActionChains(driver).send_keys(Keys.ARROW_UP, Keys.ARROW_UP, Keys.ARROW_LEFT).perform()  # clamped at 0
    assert js(driver, state) == ["0", "1"]
    # Everything is a button or a select: reachable with Tab, named for screen readers.
    unnamed = js(
        driver,
        "return [...document.querySelectorAll('button, select')].filter(b => !(b.getAttribute('aria-label') || b.textContent.trim())).length",
    )
    assert unnamed == 0


@pytest.mark.slow
@pytest.mark.browser
def test_word_level_toggle_changes_the_units(driver, pages):
    folder, result = pages[0], pages[1]
    open_page(driver, folder / "main.html")
    count = "return document.querySelectorAll('.col.q .tok').length"
    assert js(driver, count) == len(result.tokens) == 15
    driver.find_element("id", "words").click()
    assert js(driver, count) == len(to_words(result).tokens) == 14
    assert "14 words" in driver.find_element("id", "status").text
    assert "didn't" in js(driver, "return [...document.querySelectorAll('.col.q .tok')].map(t => t.textContent)")
    driver.find_element("id", "tab-focus").click()
    assert "heads won: \u2068animal\u2069" in driver.find_element("id", "wins").text  # isolated: RTL-safe
    assert len(driver.find_elements("css selector", "#focus-table tbody tr")) == 8
    driver.find_element("id", "words").click()
    assert js(driver, "return document.getElementById('attnviz').dataset.level") == "tokens"
    # Sinks out: the rankings skip [CLS] and [SEP].
    ranked = "return [...document.querySelectorAll('#focus-table bdi')].map(b => b.textContent)"
    assert "[SEP]" in js(driver, ranked) or "[CLS]" in js(driver, ranked)
    driver.find_element("id", "sinks").click()
    assert not {"[CLS]", "[SEP]"} & set(js(driver, ranked))


@pytest.mark.slow
@pytest.mark.browser
def test_causal_result_shows_masked_cells_as_masked(driver, pages):
    folder, decoder = pages[0], pages[2]
    assert decoder.causal
    open_page(driver, folder / "causal.html")
    assert "decoder (causal" in driver.find_element("css selector", "#attnviz .meta").text
    assert all(k <= q for _, q, k in lines(driver))
    assert len(lines(driver)) == 2 * 15  # every visible cell: 1 + 2 + ... + 5 per head
    driver.find_element("id", "tab-matrix").click()
    hidden, q, k, w, text = hover_cell(driver, 1, 3)
    assert (q, k, w) == ("1", "3", "masked") and "masked" in text
    hidden, q, k, w, text = hover_cell(driver, 3, 1)
    assert abs(float(w) - decoder.weights[0, 0, 3, 1]) <= 1 / 65535 and decoder.weights[0, 0, 3, 1] == 0.25
    # Pixels: a masked cell is grey (hatched), a visible one a viridis colour.
    pixel = """const c = document.getElementById('matrix'), m = +c.dataset.margin, s = +c.dataset.cell, r = window.devicePixelRatio || 1;
      return [...c.getContext('2d').getImageData((m + (arguments[1] + 0.5) * s) * r, (m + (arguments[0] + 0.5) * s) * r, 1, 1).data]"""
    masked = js(driver, pixel, 0, 4)
    assert masked[0] == masked[1] == masked[2]
    visible = js(driver, pixel, 4, 0)
    assert len({visible[0], visible[1], visible[2]}) > 1
    assert "masked: a key after its query" in driver.find_element("css selector", ".legend").text
    assert severe(driver) == []


@pytest.mark.slow
@pytest.mark.browser
def test_notebook_iframes_work_side_by_side(driver, pages):
    folder = pages[0]
    driver.get("about:blank")
    browser.console(driver)
    driver.get((folder / "notebook.html").as_uri())
    frames = driver.find_elements("css selector", "iframe")
    assert len(frames) == 2
    from selenium.webdriver.support.ui import WebDriverWait

    counts = []
    for frame in frames:
        driver.switch_to.frame(frame)
        WebDriverWait(driver, 30).until(
            lambda d: d.execute_script("const r = document.getElementById('attnviz'); return r && r.dataset.ready")
        )
        counts.append(js(driver, "return document.querySelectorAll('.col.q .tok').length"))
        assert len(lines(driver)) > 0
        driver.switch_to.default_content()
    assert counts == [15, 14]  # the second view is the word-level result
    assert severe(driver) == []


@pytest.mark.slow
@pytest.mark.browser
def test_korean_hebrew_and_arabic_render(driver, pages):
    folder, scripts = pages[0], pages[3]
    open_page(driver, folder / "scripts.html")
    got = js(
        driver,
        """return [...document.querySelectorAll('.col.q .tok')].map(t =>
        [t.textContent, t.getAttribute('dir'), t.matches(':dir(rtl)'), t.getBoundingClientRect().width])""",
    )
    assert [g[0] for g in got] == scripts.labels == ["개가", "שלום", "مرحبا", "ok"]
    assert all(g[1] == "auto" and g[3] > 5 for g in got)
    assert [g[2] for g in got] == [False, True, True, False]
    assert driver.find_element("css selector", "h1").text == scripts.text
    # Hangul is drawn with the glyphs the page embeds, whatever fonts the machine has (this one
    # has none for Korean: without them the browser drew empty boxes).
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(lambda d: js(d, "return document.getElementById('attnviz').dataset.fonts"))
    assert js(driver, "return document.getElementById('attnviz').dataset.fonts") == "ready"
    driver.execute_cdp_cmd("DOM.enable", {})
    driver.execute_cdp_cmd("CSS.enable", {})
    root = driver.execute_cdp_cmd("DOM.getDocument", {})["root"]["nodeId"]
    node = driver.execute_cdp_cmd("DOM.querySelector", {"nodeId": root, "selector": '.col.q .tok[data-i="0"]'})[
        "nodeId"
    ]
    used = driver.execute_cdp_cmd("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    assert [(f["familyName"], f["isCustomFont"], f["glyphCount"]) for f in used] == [("Attnviz Hangul", True, 2)]
    # In the focus ranking an Arabic label stays left of its weight, in a left-to-right table.
    from selenium.webdriver.support.ui import Select

    driver.find_element("id", "tab-focus").click()
    Select(driver.find_element("id", "focus")).select_by_value("3")
    cells = js(
        driver,
        """return [...document.querySelectorAll('#focus-table tbody td:nth-child(n+3)')].map(td =>
        [...td.children].map(e => [e.textContent.trim(), e.getBoundingClientRect().left]))""",
    )
    assert cells and all(label[1] < weight[1] for label, weight in cells)
    assert "مرحبا" in [label[0] for label, _ in cells]
    assert severe(driver) == []


@pytest.mark.slow
@pytest.mark.browser
def test_view_buttons_switch_between_the_embedded_views(driver, pages):
    from selenium.webdriver.support.ui import Select

    folder = pages[0]
    data = page_json((folder / "views.html").read_text(encoding="utf-8"))
    open_page(driver, folder / "views.html")
    Select(driver.find_element("id", "layer")).select_by_value("1")
    driver.find_element("css selector", '[data-view="rollout"]').click()
    assert "layer 1 · all heads (mixed)" in driver.find_element("id", "status").text
    assert len(driver.find_elements("css selector", ".headchips [data-head]")) == 1
    driver.find_element("css selector", '[data-view="norm"]').click()
    driver.find_element("id", "tab-matrix").click()
    # Norm weights do not sum to one: the colour scale tops at the head's largest weight.
    top = float(js(driver, "return document.getElementById('matrix').dataset.vmax"))
    assert abs(top - weights_of(data, "norm", "tokens")[1, 0].max()) < 1e-12
    assert js(driver, "return document.getElementById('attnviz').dataset.view") == "norm"
    assert severe(driver) == []


@pytest.mark.slow
@pytest.mark.browser
def test_focus_panel_marks_known_pronoun_heads(driver, pages, tmp_path):
    folder, result = pages[0], pages[1]
    known = {"probe_set": "agreement", "heads": [{"layer": 1, "head": 2, "accuracy": 0.941}]}
    path = tmp_path / "pronoun.html"
    path.write_text(render_html(result, pronoun_heads=known), encoding="utf-8")
    assert page_json(path.read_text(encoding="utf-8"))["pronoun_heads"] == known
    open_page(driver, path)
    driver.find_element("id", "tab-focus").click()
    marks = js(
        driver,
        "return [...document.querySelectorAll('#focus-table tbody tr')].map("
        "r => [r.cells[0].textContent, r.cells[1].textContent, r.querySelector('td.pronoun').textContent])",
    )
    assert [m for m in marks if m[2]] == [["1", "2", "★ 94%"]]
    assert len(marks) == 2 * 4
    assert "agreement probe set" in driver.find_element("id", "pronoun-note").text
    # Without known heads there is no such column.
    open_page(driver, folder / "main.html")
    driver.find_element("id", "tab-focus").click()
    assert driver.find_elements("css selector", "#focus-table td.pronoun") == []
    assert severe(driver) == []
