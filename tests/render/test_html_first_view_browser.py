"""The HTML page as a newcomer first sees it, in headless Chromium: `show --html` opens on one
head (not every head of layer 0 overlaid), the keys help is a line of its own (not a one-item
list), and candidate weights that round alike get enough digits to tell the winner."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import browser
from builders import hand_result
from attnviz.pipeline import run_attention
from attnviz.render.html import render_html

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    browser.NEEDED,
]

SENTENCE = "The animal didn't cross the street because it was too tired."


def open_page(driver, path):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "const r = document.getElementById('attnviz'); return r && (r.dataset.ready || r.dataset.error)"
        )
    )
    assert driver.execute_script("return document.getElementById('attnviz').dataset.error || null") is None


def page_data(page: str) -> dict:
    return json.loads(re.findall(r'<script type="application/json" id="attnviz-data">(.*?)</script>', page, re.S)[0])


def test_the_page_opens_on_one_head_with_only_its_lines(driver, small_model, tmp_path):
    page = render_html(run_attention(small_model, SENTENCE), open_on_focus=True)
    start = page_data(page)["initial"]
    path = tmp_path / "it.html"
    path.write_text(page, encoding="utf-8")
    open_page(driver, path)
    root = driver.execute_script("return Object.assign({}, document.getElementById('attnviz').dataset)")
    assert (int(root["layer"]), int(root["head"])) == (start["layer"], start["head"])
    drawn = driver.execute_script("return [...document.querySelectorAll('svg.lines line')].map(l => +l.dataset.h)")
    assert drawn and set(drawn) == {start["head"]}
    # The keys help is a paragraph; the notes list holds the notes only.
    items = driver.execute_script(
        "return [...document.querySelectorAll('#attnviz .notes li')].map(li => li.textContent)"
    )
    assert items and not any(item.startswith("Keys:") for item in items)
    assert driver.execute_script("return document.querySelector('#attnviz p.keys').textContent").startswith("Keys:")


def test_a_page_without_notes_has_no_list_and_still_its_keys_line(driver, small_model, tmp_path):
    path = tmp_path / "plain.html"
    path.write_text(render_html(run_attention(small_model, "All is well.")), encoding="utf-8")
    open_page(driver, path)
    assert driver.execute_script("return document.querySelectorAll('#attnviz ul.notes').length") == 0
    assert driver.execute_script("return document.querySelectorAll('#attnviz p.keys').length") == 1


def test_candidate_weights_that_round_alike_show_the_digits_that_tell_them_apart(driver, tmp_path):
    # "it" (token 3) gives cat and dog 3e-5 and 1e-5 in head 0 (alike at 4 decimals), and
    # 3.1e-6 and 3.4e-6 in head 1 (alike even at the 6 decimals the page stores).
    T = 5
    w = np.full((1, 2, T, T), 1.0 / T)
    w[0, 0, 3] = [0.99996, 0.00003, 0.00001, 0.0, 0.0]
    w[0, 1, 3] = [0.9999935, 0.0000031, 0.0000034, 0.0, 0.0]
    result = hand_result(
        w,
        ["[CLS]", "cat", "dog", "it", "[SEP]"],
        [(0, 0), (0, 3), (4, 7), (8, 10), (0, 0)],
        [None, 0, 1, 2, None],
        "cat dog it",
    )
    path = tmp_path / "ties.html"
    path.write_text(render_html(result, focus="it", candidates=["cat", "dog"]), encoding="utf-8")
    open_page(driver, path)
    driver.find_element("id", "tab-focus").click()
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#focus-table tbody tr')].map(tr => [...tr.querySelectorAll('td.num')].slice(1).map(td => td.textContent))"
    )
    assert rows[0][:2] == ["0.00003 ★", "0.00001"]
    assert rows[1][:2] == ["0.000003", "0.000003 ★ (by < 0.000001)"]
