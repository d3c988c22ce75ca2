"""What finding and marking pronoun heads costs, against baselines measured in the same run.

    python bench/bench_pronoun.py [--repeats 5] [--before REF]

Whole processes, interleaved, medians:
- `attnviz probe coref agreement -m minilm` (256 items, batched) against `attnviz show S -m minilm`
  (target: at most 1.5x; the probe costs about as much as loading the model);
- `attnviz show S -m minilm` with the model's pronoun heads cached, against the same command of
  attnviz at REF (default: the commit before pronoun heads existed), whose files are extracted with
  `git archive` into a temporary folder (target: at most 1.05x).
The cache lives in a temporary ATTNVIZ_CACHE_DIR, filled once before timing.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SENTENCE = "The bird ignored the boys because it was tired."
BEFORE = "e89c607"  # attnviz before pronoun heads (the result module rename)


def run(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--before", default=BEFORE, help="git ref of the attnviz to compare show with")
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "before"
        old.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "attnviz"], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(old, filter="data")
        now_env = {**os.environ, "PYTHONPATH": str(ROOT), "ATTNVIZ_CACHE_DIR": str(Path(tmp) / "cache")}
        old_env = {**now_env, "PYTHONPATH": str(old)}
        show = [py, "-m", "attnviz", "show", SENTENCE, "-m", "minilm"]
        probe = [py, "-m", "attnviz", "probe", "coref", "agreement", "-m", "minilm"]
        run(probe, now_env)  # fills the cache (and warms the file cache)
        rows = {
            "show (cached pronoun heads)": (show, now_env),
            f"show at {args.before}": (show, old_env),
            "probe coref agreement": (probe, now_env),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.repeats):  # interleaved: machine noise hits every row alike
            for name, (cmd, env) in rows.items():
                times[name].append(run(cmd, env))
    med = {name: statistics.median(t) for name, t in times.items()}
    load = os.getloadavg()[0]
    print(f"{'command (MiniLM)':<34} {'median s':>9} {'ratio':>8}   ({args.repeats} runs each, load {load:.1f})")
    print(f"{'show at ' + args.before:<34} {med[f'show at {args.before}']:>9.2f} {'base':>8}")
    print(
        f"{'show (cached pronoun heads)':<34} {med['show (cached pronoun heads)']:>9.2f} "
        f"{med['show (cached pronoun heads)'] / med[f'show at {args.before}']:>7.2f}x   target <= 1.05x"
    )
    print(
        f"{'probe coref agreement':<34} {med['probe coref agreement']:>9.2f} "
        f"{med['probe coref agreement'] / med['show (cached pronoun heads)']:>7.2f}x   "
        "vs show; target <= 1.5x"
    )


if __name__ == "__main__":
    main()
