"""Speed of `attnviz explore` on MiniLM, driven by Textual's pilot, against baselines measured in
the same run.

    python bench/bench_explore.py [--repeats 15]

Prints medians and their targets (issue 12):
  new 15-token sentence to a complete screen   <= 150 ms   (baseline: run_attention alone)
  moving to another head                       <= 30 ms    (baseline: the pilot's round trip of a key the app ignores)
  toggling word level                          <= 50 ms    (baseline: analysis.words.to_words alone)
  startup to an interactive input line, model still loading   <= 0.6 s   (baseline: python -c pass)
The startup row runs the real command in a pseudo-terminal and stops the clock when the sentence
line is drawn; it also checks that the model was still loading at that moment.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SENTENCES = [  # 15 tokens each with MiniLM's tokenizer, [CLS] and [SEP] included (checked below)
    "The animal did not cross the street because it was too tired.",
    "The trophy would not fit in the suitcase because it was big.",
    "The council refused the marchers a permit because they feared riots.",
    "The man could not lift his son because he was too weak.",
]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


async def interactions(model, repeats: int) -> dict[str, list[float]]:
    """Pilot-driven: type (set) a sentence and press Enter, press right, press w. The clock stops
    when the screen showing the new state has been drawn: show_result, then the first refresh
    after it (Textual's call_after_refresh), so the pilot's own waiting is not counted."""
    from attnviz.explore.app import ExploreApp
    from attnviz.explore.session import Options
    from attnviz.pipeline import run_attention

    times: dict[str, list[float]] = {"sentence": [], "head": [], "words": [], "idle": [], "forward": []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_STATE_HOME"] = tmp
        app = ExploreApp(lambda: model, "minilm", None, Options(), save_dir=None)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.loaded is None:
                await pilot.pause(0.05)
            line = app.query_one("#sentence")
            painted: list[float] = []
            show_result = app.show_result

            def show_and_stamp():
                show_result()
                app.call_after_refresh(lambda: painted.append(time.perf_counter()))

            app.show_result = show_and_stamp

            async def timed(*keys: str) -> float:
                painted.clear()
                start = time.perf_counter()
                await pilot.press(*keys)
                while not painted:
                    await asyncio.sleep(0.0005)
                return painted[0] - start

            for r in range(repeats):
                text = SENTENCES[r % len(SENTENCES)] + " " * (r // len(SENTENCES))
                start = time.perf_counter()  # the baseline, interleaved: same machine state
                run_attention(model, text)
                times["forward"].append(time.perf_counter() - start)
                line.focus()
                line.value = text
                times["sentence"].append(await timed("enter"))
                assert app.session.text == text
                for _ in range(3):
                    times["head"].append(await timed("right"))
                for _ in range(3):
                    start = time.perf_counter()
                    await pilot.press("x")  # a key the app ignores: the pilot's round trip
                    times["idle"].append(time.perf_counter() - start)
                for _ in range(2):
                    app.session._words.clear()  # every toggle merges the pieces anew
                    times["words"].append(await timed("w"))
    return times


def baselines(model, repeats: int) -> dict[str, list[float]]:
    from attnviz.analysis.words import to_words
    from attnviz.pipeline import run_attention

    out: dict[str, list[float]] = {"words": []}
    for r in range(repeats):
        result = run_attention(model, SENTENCES[r % len(SENTENCES)])
        start = time.perf_counter()
        to_words(result)
        out["words"].append(time.perf_counter() - start)
    return out


def startup_once(cmd: list[str]) -> tuple[float, bool]:
    """Seconds from launch until the sentence line is drawn, and whether the model was still loading."""
    main, child = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "XDG_STATE_HOME": tempfile.mkdtemp()}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=child, stdout=child, stderr=child, env=env)
    os.close(child)
    seen = b""
    elapsed, loading = float("nan"), False
    try:
        while time.perf_counter() - start < 30:
            ready, _, _ = select.select([main], [], [], 0.5)
            if not ready:
                continue
            try:
                seen += os.read(main, 65536)
            except OSError:
                break
            if b"a sentence, Enter" in seen:
                elapsed = time.perf_counter() - start
                loading = b"loading" in seen
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.close(main)
    return elapsed, loading


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    repeats = parser.parse_args().repeats

    from attnviz.checkpoints import load_model

    model = load_model("minilm")
    tokens = {len(model.tokenizer.encode(s, max_len=512).ids) for s in SENTENCES}
    assert tokens == {15}, f"bench sentences must be 15 tokens, got {tokens}"
    base = baselines(model, repeats)
    got = asyncio.run(interactions(model, repeats))
    base["sentence"] = got["forward"]
    base["head"] = got["idle"]

    exe = shutil.which("attnviz")
    cmd = [exe] if exe else [sys.executable, "-m", "attnviz"]
    starts, plain = [], []
    for _ in range(max(5, repeats // 3)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        plain.append(time.perf_counter() - t0)
        starts.append(startup_once(cmd + ["explore", "-m", "minilm"]))
    still_loading = all(loading for _, loading in starts)

    print(f"attnviz explore -m minilm, medians (load {os.getloadavg()[0]:.1f}, {repeats} sentences)")
    print(f"{'':<44} {'median':>11} {'target':>8} {'baseline':>11} {'ratio':>7}")
    rows = [
        ("new 15-token sentence, complete screen", "sentence", 0.150, "run_attention"),
        ("another head (right arrow)", "head", 0.030, "pilot round trip of an ignored key"),
        ("word level toggle (w)", "words", 0.050, "to_words"),
    ]
    for name, key, target, what in rows:
        m, b = statistics.median(got[key]), statistics.median(base[key])
        print(f"{name:<44} {ms(m)} {target * 1000:>5.0f} ms {ms(b)} {m / b:>6.1f}x  ({what})")
    s, p = statistics.median(t for t, _ in starts), statistics.median(plain)
    print(
        f"{'startup to the input line (model loading)':<44} {s:>9.3f} s {0.6:>6.1f} s {p:>9.3f} s {s / p:>6.1f}x"
        f"  (python -c pass; model still loading: {still_loading})"
    )


if __name__ == "__main__":
    main()
