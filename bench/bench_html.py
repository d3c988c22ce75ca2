"""Size and speed of the interactive HTML page (`attnviz show --html`).

    python bench/bench_html.py [--model minilm] [--repeats 3]

For a short sentence (15 tokens in MiniLM), a 128-token text (and a 500-token one on a random model that allows it):
the page's size, the time Python takes to build it, and in headless Chromium (Selenium, system
chromedriver) the time from navigation to the first drawn view and to switch to each other view.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

WORDS = ("The animal didn't cross the street because it was too tired, and the children who watched it "
         "from the crowded bus laughed.").split()


def text_of(model, tokens: int) -> str:
    """The first words of a long text, as many as give `tokens` tokens (or the nearest above)."""
    for n in range(1, 2000):
        text = " ".join((WORDS * 100)[:n])
        if len(model.tokenizer.encode(text, max_len=10_000, truncate=True).ids) >= tokens:
            return text
    raise ValueError(tokens)


def browser_times(path: Path, repeats: int) -> dict[str, float]:
    import browser
    from selenium.webdriver.support.ui import WebDriverWait

    if not browser.available():
        return {}
    driver = browser.start()
    ready = "const r = document.getElementById('attnviz'); return r && r.dataset.ready"
    out: dict[str, list[float]] = {}
    try:
        for _ in range(repeats):
            driver.get("about:blank")
            start = time.perf_counter()
            driver.get(path.as_uri())
            WebDriverWait(driver, 120).until(lambda d: d.execute_script(ready))
            out.setdefault("open + head view", []).append(time.perf_counter() - start)
            for tab in ("matrix", "model", "focus"):
                start = time.perf_counter()
                driver.find_element("id", "tab-" + tab).click()
                driver.execute_script("return 1")
                out.setdefault(tab, []).append(time.perf_counter() - start)
            start = time.perf_counter()
            driver.find_element("id", "words").click()
            driver.execute_script("return 1")
            out.setdefault("word level (focus tab)", []).append(time.perf_counter() - start)
    finally:
        browser.stop(driver)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import attnviz
    from attnviz.config import EncoderConfig
    from attnviz.render.html import page_data, render_html

    cases = []
    model = attnviz.load_model(args.model)
    cases.append((f"{args.model}, short sentence", model, "The animal didn't cross the street because it was tired."))
    cases.append((f"{args.model}, 128 tokens", model, text_of(model, 128)))
    big = attnviz.load_model("random", config=EncoderConfig(max_len=512))
    cases.append(("random 2x4, 500 tokens", big, text_of(big, 500)))

    folder = Path(tempfile.mkdtemp(prefix="attnviz-bench-html-"))
    for name, m, text in cases:
        result = attnviz.attention(m, text)
        start = time.perf_counter()
        page = render_html(result)
        build = time.perf_counter() - start
        path = folder / "page.html"
        path.write_text(page, encoding="utf-8")
        data = page_data({"attention": result})
        print(f"{name}: T={len(result.tokens)}, {result.weights.shape[0]}x{result.weights.shape[1]} heads, "
              f"{len(page.encode()) / 1024:.0f} KB at {data['bits']} bits, built in {build * 1000:.0f} ms")
        for step, seconds in browser_times(path, args.repeats).items():
            print(f"    chromium {step}: {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
