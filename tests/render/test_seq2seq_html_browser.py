"""The encoder-decoder page in a real browser (headless Debian Chromium through Selenium, as
tests/browser.py starts it): the switch between encoder, decoder and cross-attention changes the
kind the page names, the matrix's row and column labels and its size, and the console stays clean."""

from __future__ import annotations


import numpy as np
import pytest

import browser

pytest.importorskip("transformers")

import tiny_hf

pytestmark = browser.NEEDED

SOURCE = "the cat sat on the mat because it was tired ."
TARGET = "le chat sur le tapis ."


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from attnviz.engines import transformers_engine
    from attnviz.render.html import render_seq2seq_html

    folder = tmp_path_factory.mktemp("seq2seq-page")
    model = transformers_engine.load(tiny_hf.make("t5", folder / "t5"), "t5")
    results = transformers_engine.run_seq2seq_kinds(model, SOURCE, TARGET)
    path = folder / "page.html"
    path.write_text(render_seq2seq_html(results, initial="cross", focus="chat"), encoding="utf-8")
    return path, results


def state(driver):
    return driver.execute_script(
        """const r = document.getElementById('attnviz'), m = document.getElementById('matrix');
        return {kind: r.dataset.kind, error: r.dataset.error || null, line: document.getElementById('kind').textContent,
                pressed: [...document.querySelectorAll('button[data-kind]')].filter(b => b.getAttribute('aria-pressed') === 'true').map(b => b.dataset.kind),
                caption: (document.getElementById('matrix-caption') || {}).textContent || null,
                width: m ? +m.style.width.replace('px', '') : null, height: m ? +m.style.height.replace('px', '') : null,
                cell: m ? +m.dataset.cell : null, margin: m ? +m.dataset.margin : null}"""
    )


def tooltip_at(driver, i, j):
    """The matrix's tooltip for cell (i, j), read from the keyboard (focus, then arrows)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("document.getElementById('matrix').focus()")
    keys = [Keys.ARROW_UP] * 20 + [Keys.ARROW_LEFT] * 20 + [Keys.ARROW_DOWN] * i + [Keys.ARROW_RIGHT] * j
    ActionChains(driver).send_keys(*keys).perform()
    return driver.execute_script(
        "const t = document.getElementById('tooltip'); return [t.dataset.q, t.dataset.k, t.dataset.w, t.textContent]"
    )


@pytest.mark.slow
@pytest.mark.browser
def test_switch_changes_the_kind_its_labels_and_the_console_stays_clean(driver, page):
    from selenium.webdriver.support.ui import WebDriverWait

    path, results = page
    driver.get("about:blank")
    browser.console(driver)
    browser.requests(driver)  # drain both logs: only this page's entries are read below
    driver.get(path.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.getElementById('attnviz').dataset.ready")
    )
    driver.find_element("id", "tab-matrix").click()
    shown = state(driver)
    assert shown["error"] is None and shown["kind"] == "cross" and shown["pressed"] == ["cross"]
    assert "cross-attention: target → source" in shown["line"]
    assert "rows: target tokens (queries) · columns: source tokens (keys)" in shown["caption"]
    cross = results["cross"]
    T, Tk = len(cross.tokens), len(cross.key_tokens)
    # The matrix is Tk cells wide and T tall.
    assert shown["width"] - shown["margin"] - 2 == Tk * shown["cell"]
    assert shown["height"] - shown["margin"] - 2 == T * shown["cell"]
    # The page opens on the head where the focus word sends the most weight to one source token.
    from attnviz.analysis.focus import resolve_focus
    from attnviz.analysis.opening_head import opening_head

    li, hi, _ = opening_head(cross, resolve_focus(cross, "chat").index)
    q, k, w, text = tooltip_at(driver, 3, 6)
    assert (q, k) == ("3", "6") and abs(float(w) - cross.weights[li, hi, 3, 6]) <= 1e-6
    assert text.startswith(f"target 3 {cross.labels[3]} → source 6 {cross.key_labels[6]}")

    # Buttons: the decoder's self-attention (target x target, causal).
    driver.find_element("css selector", 'button[data-kind="decoder"]').click()
    shown = state(driver)
    assert shown["kind"] == "decoder" and shown["pressed"] == ["decoder"]
    assert "decoder self-attention" in shown["line"] and "columns: target tokens" in shown["line"]
    assert shown["width"] == shown["height"] and shown["height"] - shown["margin"] - 2 == T * shown["cell"]
    q, k, w, text = tooltip_at(driver, 2, 4)
    assert w == "masked" and text.startswith(f"query 2 {cross.labels[2]} → key 4 {cross.labels[4]}")

    # Keys: e for the encoder's (source x source).
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("document.activeElement.blur()")
    ActionChains(driver).send_keys("e").perform()
    shown = state(driver)
    assert shown["kind"] == "encoder" and "encoder self-attention" in shown["line"]
    assert shown["height"] - shown["margin"] - 2 == Tk * shown["cell"]
    q, k, w, text = tooltip_at(driver, 1, 2)
    encoder = results["encoder"]
    assert abs(float(w) - encoder.weights[li, hi, 1, 2]) <= 1e-6  # the layer and head stay across kinds
    assert text.startswith(f"query 1 {encoder.labels[1]} → key 2 {encoder.labels[2]}")

    # The focus panel of cross-attention ranks source tokens for the target word.
    ActionChains(driver).send_keys("c").perform()
    driver.find_element("id", "tab-focus").click()
    first = driver.execute_script(
        "return [...document.querySelectorAll('#focus-table tbody tr')].map(tr => tr.cells[2].querySelector('bdi').textContent)"
    )
    index = cross.labels.index("chat")
    expected = [cross.key_labels[int(np.argmax(cross.weights[li, hi, index]))] for li in range(2) for hi in range(4)]
    assert first == expected
    severe = [e for e in browser.console(driver) if e["level"] == "SEVERE"]
    assert severe == []
    assert [u for u in browser.requests(driver) if not u.startswith("chrome://")] == [path.as_uri()]
