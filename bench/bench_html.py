"""Size and speed of the interactive HTML page (`attnviz show --html`).

    python bench/bench_html.py [--model minilm] [--repeats 3]

For a short sentence (15 tokens in MiniLM), a 128-token text (and a 500-token one on a random model that allows it):
the page's size, the time Python takes to build it, and in headless Chromium (Selenium, system chromedriver) the
time from navigation to the first painted view and from each step (tab, head, word level) to its
painted frame and to the next frame (when the page answers again), by the page's own clock; then whole `show --html` processes against
`show --format json`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

WORDS = (
    "The animal didn't cross the street because it was too tired, and the children who watched it "
    "from the crowded bus laughed."
).split()


def text_of(model, tokens: int) -> str:
    """The first words of a long text, as many as give `tokens` tokens (or the nearest above)."""
    for n in range(1, 2000):
        text = " ".join((WORDS * 100)[:n])
        if len(model.tokenizer.encode(text, max_len=10_000, truncate=True).ids) >= tokens:
            return text
    raise ValueError(tokens)


SETTLE = 0.3  # seconds between steps, so one step's raster is not charged to the next

# Runs inside the page: do one step, then report the milliseconds until the frame after it has
# been painted (requestAnimationFrame, then a task), so WebDriver's own round trip is not counted;
# and until one more frame could start. The second figure is the honest one: Chromium rasters
# the painted frame after that (thousands of SVG lines in the head view take 0.1 s at 128
# tokens), and the next frame, the one the user's next key press would get, waits for it. Timed
# to the first frame only, that tail was charged to whatever step came next; steps are now also
# SETTLE apart, and the worst case (a key at once after the head view opens) is timed on its own.
STEP = """
const [code, done] = arguments;
const t0 = performance.now();
new Function(code)();
const frame = (then) => requestAnimationFrame(() => setTimeout(then, 0));
frame(() => { const painted = performance.now() - t0; frame(() => done([painted, performance.now() - t0])); });
"""
STEPS = {
    "matrix tab": "document.getElementById('tab-matrix').click()",
    "next head (matrix)": "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}))",
    "model tab": "document.getElementById('tab-model').click()",
    "focus tab": "document.getElementById('tab-focus').click()",
    "word level (focus tab)": "document.getElementById('words').click()",
    "head tab": "document.getElementById('tab-head').click()",
    "next head (head view)": "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}))",
    "current head only (head view)": "document.querySelector('[data-key=one-head]').click()",
    "next head (head view, one head)": "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}))",
}


def browser_times(path: Path, repeats: int) -> dict[str, tuple[float, float]]:
    """Medians in ms by the page's own clock (performance.now(), 0 at navigation), per step: until
    its frame is painted, and until the next frame could start (the page responsive again)."""
    import browser
    from selenium.webdriver.support.ui import WebDriverWait

    if not browser.available():
        return {}
    driver = browser.start()
    painted = "return document.getElementById('attnviz').dataset.painted || null"
    out: dict[str, list[tuple[float, float]]] = {}
    try:
        for _ in range(repeats):
            driver.get("about:blank")
            driver.get(path.as_uri())
            first = float(WebDriverWait(driver, 120).until(lambda d: d.execute_script(painted)))
            # wait for the frame after the first view too, so its raster tail is not the next step's
            settled = driver.execute_async_script(STEP, "")[1]
            out.setdefault("navigation to first view painted", []).append((first, first + settled))
            for name, code in STEPS.items():
                time.sleep(SETTLE)
                out.setdefault(name, []).append(tuple(driver.execute_async_script(STEP, code)))
            # The worst a user meets: a key pressed at once after opening the head view, waiting
            # for that view's raster (which the two frames of STEP do not always include).
            time.sleep(SETTLE)
            driver.execute_async_script(STEP, "document.querySelector('[data-key=all-heads]').click()")
            driver.execute_async_script(STEP, "document.getElementById('tab-matrix').click()")
            time.sleep(SETTLE)
            tab = driver.execute_async_script(STEP, STEPS["head tab"])
            key = driver.execute_async_script(STEP, STEPS["next head (head view)"])
            out.setdefault("head tab, then at once next head", []).append((tab[0] + key[0], tab[1] + key[1]))
    finally:
        browser.stop(driver)
    return {k: (statistics.median(p for p, _ in v), statistics.median(n for _, n in v)) for k, v in out.items()}


def process_times(model: str, text: str, repeats: int) -> dict[str, float]:
    """Whole `attnviz show` processes, interleaved so machine noise hits both alike: --html FILE
    against --format json (target: at most 1.1x)."""
    folder = Path(tempfile.mkdtemp(prefix="attnviz-bench-html-cli-"))
    commands = {
        "--format json": ["--format", "json", "-o", str(folder / "r.json"), "--overwrite"],
        "--html": ["--html", str(folder / "r.html"), "--overwrite"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, extra in commands.items():
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "attnviz", "show", text, "-m", model, *extra],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


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
        print(
            f"{name}: T={len(result.tokens)}, {result.weights.shape[0]}x{result.weights.shape[1]} heads, "
            f"{len(page.encode()) / 1024:.0f} KB at {data['bits']} bits, built in {build * 1000:.0f} ms"
        )
        for step, (painted, ready) in browser_times(path, args.repeats).items():
            print(f"    chromium {step}: painted {painted:.0f} ms, next frame free at {ready:.0f} ms")
    short = cases[0][2]
    times = process_times(args.model, short, max(args.repeats, 5))
    print(
        f"attnviz show S -m {args.model} (whole process, medians, load {os.getloadavg()[0]:.1f}): "
        f"--format json {times['--format json']:.2f} s, --html {times['--html']:.2f} s, "
        f"ratio {times['--html'] / times['--format json']:.2f}x (target <= 1.1x)"
    )


if __name__ == "__main__":
    main()
