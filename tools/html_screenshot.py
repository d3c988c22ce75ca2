"""Make the README's screenshot of the interactive HTML view with the tests' own browser
(tests/browser.py: Debian's headless Chromium through its chromedriver).

    python tools/html_screenshot.py [--model minilm] [--out docs/html-view.png]

The page is the one `attnviz show TEXT -m minilm --html it.html` writes for the README's sentence,
opened from disk with the network off, on its focus panel.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SENTENCE = "The animal didn't cross the street because it was too tired."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--tab", default="head", choices=("head", "matrix", "model", "focus"))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "html-view.png")
    args = parser.parse_args()

    import browser
    from selenium.webdriver.support.ui import WebDriverWait

    import attnviz
    from attnviz.render.html import render_html

    if not browser.available():
        raise SystemExit("needs Debian's chromium and chromium-driver, and selenium (see .ci/run)")
    model = attnviz.load_model(args.model)
    page = Path(tempfile.mkdtemp(prefix="attnviz-shot-")) / "it.html"
    result = attnviz.attention(model, SENTENCE)
    page.write_text(render_html(result, candidates=["animal", "street"]), encoding="utf-8")
    it = result.labels.index("it")
    driver = browser.start(width=1200, height=900)
    try:
        driver.get(page.as_uri())
        WebDriverWait(driver, 60).until(
            lambda d: d.execute_script("return document.getElementById('attnviz').dataset.painted")
        )
        if args.tab != "head":
            driver.find_element("id", "tab-" + args.tab).click()
        else:  # layer 1, head 3 alone (MiniLM's best pronoun head), hovering the query 'it'
            driver.execute_script(
                """
                const sel = (id, v) => { const s = document.getElementById(id); s.value = v; s.dispatchEvent(new Event('change')); };
                sel('layer', 1); sel('head', 3);
                document.querySelector('[data-key="one-head"]').click();
                document.querySelector('.col.q .tok[data-i="' + arguments[0] + '"]').dispatchEvent(new Event('mouseenter'));""",
                it,
            )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
    finally:
        browser.stop(driver)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
