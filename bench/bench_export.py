"""Images per second of `attnviz export` against a naive matplotlib baseline, in one run.

    python bench/bench_export.py                 # 50 sentences, 6 x 12 random model, --preset slide, --jobs 2
    python bench/bench_export.py --quick         # 10 sentences: a smoke run

Rows, each for the same sentences and the same figure size and fonts:
  (a) one-layer grids: the 12 heads of layer 0, one image per sentence
  (b) single-head heatmaps: heads 0-7 of layer 0, 8 images per sentence
  (c) whole-model grids: 6 layers x 12 heads, one image per sentence

attnviz: the export library as the CLI runs it (attention included, worker processes started
inside the timing, every file written atomically). Naive: what one writes first, per image a new
`plt.subplots`, `imshow`, tick labels on every axis, a colour bar, `savefig`, in this process.
The naive whole-model row draws ~4,000 tick labels per image, so it is timed on the first
--naive-model sentences only (images/s does not depend on how many). Also printed: the time of
one 6 x 12 whole-model grid, warm (figure reused) and cold (a fresh process, imports included).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from attnviz import export as ex  # noqa: E402
from attnviz.checkpoints import random_model  # noqa: E402
from attnviz.config import EncoderConfig  # noqa: E402
from attnviz.pipeline import run_attention  # noqa: E402
from attnviz.render.image import ImageOptions, render_image  # noqa: E402
from attnviz.samples import sample_sentences  # noqa: E402

LAYERS, HEADS = 6, 12


def naive_image(path: Path, result, panels, rows: int, cols: int, size, dpi: float) -> None:
    import matplotlib.pyplot as plt

    labels = result.labels
    fig, axes = plt.subplots(rows, cols, figsize=size, dpi=dpi, squeeze=False)
    for ax, (title, weights) in zip(axes.flat, panels):
        image = ax.imshow(weights, cmap="viridis")
        ax.set_xticks(range(len(labels)), labels, rotation=90)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_title(title)
    fig.colorbar(image, ax=axes)
    fig.suptitle(f"{result.model.name}: {result.text}")
    fig.savefig(path)
    plt.close(fig)


def naive_row(row: str, results, outdir: Path, size, dpi: float) -> int:
    count = 0
    for n, result in enumerate(results):
        if row == "a":
            panels = [(f"head {h}", result.head(0, h)) for h in range(HEADS)]
            naive_image(outdir / f"{n}.png", result, panels, 3, 4, size, dpi)
            count += 1
        elif row == "b":
            for h in range(8):
                naive_image(
                    outdir / f"{n}-{h}.png", result, [(f"layer 0 head {h}", result.head(0, h))], 1, 1, size, dpi
                )
                count += 1
        else:
            panels = [(f"L{l} H{h}", result.head(l, h)) for l in range(LAYERS) for h in range(HEADS)]
            naive_image(outdir / f"{n}.png", result, panels, LAYERS, HEADS, size, dpi)
            count += 1
    return count


def ours_row(row: str, model, sentences, outdir: Path, options: ImageOptions, jobs: int) -> int:
    layouts, layers, heads = {
        "a": (["layers"], [0], None),
        "b": (["heads"], [0], list(range(8))),
        "c": (["model"], None, None),
    }[row]
    report = ex.export(
        model, sentences, outdir, layouts=layouts, options=options, layers=layers, heads=heads, jobs=jobs
    )
    assert not report.failed, [r.error for r in report.failed]
    return report.written


def cold_model_grid(preset: str | None) -> tuple[float, float]:
    """Seconds for one 6 x 12 grid in a new process: everything (imports of torch and matplotlib,
    model, attention, figure, PNG), and the drawing alone (matplotlib's import included)."""
    code = (
        "import time; t = time.perf_counter()\n"
        "from attnviz.checkpoints import random_model\n"
        "from attnviz.config import EncoderConfig\n"
        "from attnviz.pipeline import run_attention\n"
        "from attnviz.render.image import render_image, ImageOptions\n"
        f"m = random_model(EncoderConfig(num_layers={LAYERS}, num_heads={HEADS}, d_model={HEADS * 16}, d_ff=384), 0)\n"
        'r = run_attention(m, "The animal didn\'t cross the street because it was too tired.")\n'
        "t1 = time.perf_counter()\n"
        f"render_image(r, 'model', ImageOptions(preset={preset!r}))\n"
        "print(time.perf_counter() - t, time.perf_counter() - t1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    total, drawing = map(float, done.stdout.split())
    return total, drawing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--preset", default="slide", choices=["slide", "paper", "none"])
    parser.add_argument("--naive-model", type=int, default=5, help="sentences for the naive whole-model row")
    parser.add_argument("--quick", action="store_true", help="10 sentences, 2 for the naive whole-model row")
    parser.add_argument("--rows", default="abc", help="which rows to run, e.g. b")
    args = parser.parse_args()
    if args.quick:
        args.sentences, args.naive_model = 10, 2
    preset = None if args.preset == "none" else args.preset

    import matplotlib

    matplotlib.use("Agg")
    from attnviz.render.fonts import register_fonts

    matplotlib.rcParams["font.family"] = list(register_fonts())  # the naive baseline gets Hangul too

    texts = (sample_sentences() * 4)[: args.sentences]
    model = random_model(EncoderConfig(num_layers=LAYERS, num_heads=HEADS, d_model=HEADS * 16, d_ff=384), 0)
    sentences = [ex.Sentence(i + 1, text, "bench") for i, text in enumerate(texts)]
    results = [run_attention(model, text) for text in texts]
    options = ImageOptions(preset=preset)
    style = options.style()
    size = (style.width or 10.0, style.height or 6.0)
    mean_tokens = sum(len(r.tokens) for r in results) / len(results)

    print(
        f"attnviz export benchmark: {len(texts)} sentences (mean {mean_tokens:.1f} tokens, English and Korean), "
        f"random {LAYERS} x {HEADS} model, preset {args.preset} ({size[0] * style.dpi:.0f}x{size[1] * style.dpi:.0f} px), "
        f"attnviz --jobs {args.jobs}, naive in 1 process, {os.cpu_count()} cores"
    )
    print(f"{'row':34} {'naive img/s':>12} {'attnviz img/s':>14} {'speed-up':>9}")
    names = {
        "a": "(a) one-layer grids (12 heads)",
        "b": "(b) 8 single-head heatmaps",
        "c": f"(c) whole-model grids {LAYERS}x{HEADS}",
    }
    for row in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            naive_dir, ours_dir = Path(tmp, "naive"), Path(tmp, "ours")
            naive_dir.mkdir()
            subset = results if row != "c" else results[: args.naive_model]
            t = time.perf_counter()
            n_naive = naive_row(row, subset, naive_dir, size, style.dpi)
            naive_rate = n_naive / (time.perf_counter() - t)
            t = time.perf_counter()
            n_ours = ours_row(row, model, sentences, ours_dir, options, args.jobs)
            ours_rate = n_ours / (time.perf_counter() - t)
        note = f"  (naive on {len(subset)} sentences)" if len(subset) != len(results) else ""
        print(f"{names[row]:34} {naive_rate:12.2f} {ours_rate:14.2f} {ours_rate / naive_rate:8.1f}x{note}", flush=True)

    render_image(results[0], "model", options)
    t = time.perf_counter()
    for result in results[:10]:
        render_image(result, "model", options)
    warm = (time.perf_counter() - t) / min(10, len(results))
    cold, cold_drawing = cold_model_grid(preset)
    print(
        f"one {LAYERS}x{HEADS} whole-model grid: {warm:.2f} s warm (figure reused); in a new process "
        f"{cold_drawing:.2f} s to draw (matplotlib import and figure creation included), "
        f"{cold:.2f} s in all (with torch's import, the model and its forward pass)"
    )


if __name__ == "__main__":
    main()
