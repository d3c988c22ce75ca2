"""Start-up cost of the CLI, against baselines measured in the same run.

    python bench/bench_startup.py [--repeats 7]

Prints the median wall time of each command and its ratio to its baseline:
`attnviz --help` and `attnviz show --help` against `python -c pass` (neither may import torch or
matplotlib), and `attnviz show` on a 15-token sentence against `python -c "import torch"`.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

SENTENCE = "The animal didn't cross the street because it was too tired."


def median_seconds(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    repeats = parser.parse_args().repeats
    exe = shutil.which("attnviz") or "attnviz"
    py = sys.executable
    rows = [
        ("python -c pass", [py, "-c", "pass"], None),
        ("attnviz --help", [exe, "--help"], "python -c pass"),
        ("attnviz show --help", [exe, "show", "--help"], "python -c pass"),
        ('python -c "import torch"', [py, "-c", "import torch"], None),
        ("attnviz show (15 tokens)", [exe, "show", SENTENCE], 'python -c "import torch"'),
        ("attnviz show --format json", [exe, "show", SENTENCE, "--format", "json"], 'python -c "import torch"'),
    ]
    # Warm the file cache so the first row is not penalised.
    median_seconds([exe, "show", SENTENCE], 1)
    results: dict[str, float] = {}
    print(f"{'command':<30} {'median s':>9} {'vs baseline':>12}   (median of {repeats} runs)")
    for name, cmd, baseline in rows:
        results[name] = median_seconds(cmd, repeats)
        ratio = f"{results[name] / results[baseline]:.2f}x" if baseline else "baseline"
        extra = f" (+{results[name] - results[baseline]:.2f} s)" if baseline else ""
        print(f"{name:<30} {results[name]:>9.3f} {ratio:>12}{extra}")


if __name__ == "__main__":
    main()
