"""Long texts on SmolLM2: attnviz against a transformers script, ratios measured in one run.

    python bench/bench_long.py --model smollm2 [--rows show,npz,long,json,forward] [--lengths 512,2000,8192]

Every figure is a fresh child process (wall time; peak memory from wait4's ru_maxrss, that
child alone), run one at a time. Texts are made here: random common words with "it" every 25
words, cut to the token count asked (SmolLM2's tokenizer). Rows (issue 18's table):

show     2,000 tokens, `show --focus it`: wall time against the transformers script (load the same
         GGUF + one forward pass with output_attentions, eager), peak memory, bytes of terminal output.
npz      2,000 tokens, `show -l 29 --head 0 --format npz`: peak memory.
long     8,192 tokens, `show --focus it --exclude-sinks`: completes; peak memory and time.
json     2,000 tokens, every head to JSON: written within 2 GB, or refused in under 10 s.
inspect  2,000 tokens, `inspect smollm2 --text TEXT --no-pronouns --format json` under
         ATTNVIZ_MAX_MEMORY=2G: head roles from statistics summed while the maps stream past;
         wall time against the transformers script, peak memory (≤ 1.5 GB).
forward  the forward pass alone at each of --lengths: attnviz (every layer's maps kept, as
         transformers returns them; at 8,192 tokens, where 30 x 9 maps would take 72 GB, the focus
         rows only) against transformers eager with output_attentions (skipped where its maps
         would not fit in ~8 GB); the largest difference of layer 29's maps where both ran.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = (
    "the of and a to in is you that he was for on are with as his they be at one have this from "
    "or had by word but what some we can out other were all there when up use your how said an "
    "each she which do their time if will way about many then them write would like so these her "
    "long make thing see him two has look more day could go come did number sound no most people "
    "my over know water than call first who may down side been now find any new work part take "
    "get place made live where after back little only round man year came show every good me give "
    "our under name very through just form sentence great think say help low line differ turn "
    "cause much mean before move right boy old too same tell does set three want air well also"
).split()

TRANSFORMERS_SCRIPT = r"""
import sys, time, json
t0 = time.perf_counter()
import numpy as np, torch
from transformers import AutoModelForCausalLM
folder, name, ids_path, out = sys.argv[1:5]
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
model.set_attn_implementation("eager")
model.eval()
ids = torch.from_numpy(np.load(ids_path))[None]
t1 = time.perf_counter()
with torch.no_grad():
    att = model(input_ids=ids, output_attentions=True).attentions
t2 = time.perf_counter()
if out != "-":
    np.save(out, att[29][0].float().numpy())
print(json.dumps({"load": t1 - t0, "forward": t2 - t1}))
"""

ATTNVIZ_SCRIPT = r"""
import sys, time, json
t0 = time.perf_counter()
import numpy as np, torch
import attnviz
from attnviz.keep import KeepRequest
ids_path, out, mode = sys.argv[1:4]
model = attnviz.load_model("smollm2")
ids = torch.from_numpy(np.load(ids_path))[None]
T = ids.shape[1]
keep = KeepRequest.maps(range(30)) if mode == "maps" else KeepRequest(focus=T - 1, focus_layers=tuple(range(30)))
t1 = time.perf_counter()
with torch.inference_mode():
    result = model.encoder(ids, keep=keep)
t2 = time.perf_counter()
if out != "-":
    np.save(out, result.attentions[0, 29].numpy())
print(json.dumps({"load": t1 - t0, "forward": t2 - t1}))
"""


def make_text(tokenizer, tokens: int, seed: int = 0) -> str:
    """Random common words, "it" every 25 words, cut to about `tokens` tokens."""
    import random

    rng = random.Random(seed)
    words = []
    for i in range(tokens * 2):
        words.append("it" if i % 25 == 24 else rng.choice(WORDS))
    text = " ".join(words)
    enc = tokenizer.encode(text, max_len=10**9)
    end = enc.offsets[tokens - 1][1]
    return text[:end]


def run(
    cmd: list[str], stdout_path: str | None = None, env: dict | None = None, timeout: float | None = None
) -> tuple[float, float, int, str]:
    """(wall seconds, peak MB, exit status, stderr) of one child; status -9 when it was stopped
    after `timeout` seconds."""
    start = time.perf_counter()
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    err_path = tempfile.mktemp(prefix="bench_long.err.")
    try:
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, **(env or {})})
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if timeout is not None and time.perf_counter() - start > timeout:
                    proc.kill()
                    _, status, usage = os.wait4(proc.pid, 0)
                    break
                time.sleep(0.2)
    finally:
        if stdout_path:
            out.close()
    text = Path(err_path).read_text("utf-8", "replace")
    os.unlink(err_path)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), text


def row(name: str, value: str, target: str, met: bool | None) -> None:
    mark = "" if met is None else (" ✓" if met else " ✗")
    print(f"| {name} | {value} | {target}{mark} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", choices=["smollm2"])
    parser.add_argument("--rows", default="show,npz,long,json,inspect,forward")
    parser.add_argument("--lengths", default="512,2000,8192")
    parser.add_argument("--show-timeout", type=float, default=900, help="stop `show --focus it` after this long")
    parser.add_argument("--hf-limit-gb", type=float, default=8.0, help="skip transformers above this estimate")
    args = parser.parse_args()
    wanted = set(args.rows.split(","))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np

    from attnviz.checkpoints import peek_model
    from attnviz.checkpoints.named import SHORT_FILES, package_file

    path = package_file(*SHORT_FILES["smollm2"])
    config, tokenizer = peek_model("smollm2")
    exe, py = shutil.which("attnviz") or "attnviz", sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="bench_long."))
    texts = {n: make_text(tokenizer, n) for n in {2000, 8192, *map(int, args.lengths.split(","))}}
    print(f"SmolLM2 ({config.describe()}), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n")
    print("| run | measured | target |\n| --- | --- | --- |", flush=True)

    def ids_file(n: int) -> str:
        target = tmp / f"ids{n}.npy"
        np.save(target, np.array(tokenizer.encode(texts[n], max_len=10**9).ids, dtype=np.int64))
        return str(target)

    hf = None
    if wanted & {"show", "inspect"}:
        hf = run([py, "-c", TRANSFORMERS_SCRIPT, str(path.parent), path.name, ids_file(2000), "-"])
        row(
            "2,000 tokens: transformers script (load + eager forward with attentions)",
            f"{hf[0]:.0f} s, peak {hf[1]:.0f} MB",
            "baseline",
            None,
        )
    if "show" in wanted:
        shown = run(
            [exe, "show", texts[2000], "-m", "smollm2", "--focus", "it"],
            str(tmp / "show.txt"),
            timeout=args.show_timeout,
        )
        size = (tmp / "show.txt").stat().st_size
        ratio = shown[0] / hf[0]
        if shown[2] != 0:
            row(
                "2,000 tokens `show --focus it`",
                f"stopped after {shown[0]:.0f} s ({size / 2**20:.0f} MB of tables printed so far), peak {shown[1]:.0f} MB",
                "≤ 0.6x, ≤ 1.5 GB, ≤ 300 KB",
                False,
            )
        else:
            row(
                "2,000 tokens `show --focus it`: time vs transformers script",
                f"{shown[0]:.0f} s vs {hf[0]:.0f} s = {ratio:.2f}x",
                "≤ 0.6x",
                ratio <= 0.6,
            )
            row(
                "2,000 tokens `show --focus it`: peak memory",
                f"{shown[1]:.0f} MB (transformers {hf[1]:.0f} MB)",
                "≤ 1.5 GB",
                shown[1] <= 1536,
            )
            row(
                "2,000 tokens `show --focus it`: terminal output",
                f"{size / 1024:.0f} KB",
                "≤ 300 KB",
                size <= 300 * 1024,
            )
    if "npz" in wanted:
        done = run(
            [
                exe,
                "show",
                texts[2000],
                "-m",
                "smollm2",
                "-l",
                "29",
                "--head",
                "0",
                "--format",
                "npz",
                "-o",
                str(tmp / "o.npz"),
            ]
        )
        assert done[2] == 0, done[3]
        row(
            "2,000 tokens `show -l 29 --head 0 --format npz`: peak memory",
            f"{done[1]:.0f} MB ({done[0]:.0f} s)",
            "≤ 1.2 GB",
            done[1] <= 1229,
        )
    if "json" in wanted:
        out = run(
            [exe, "show", texts[2000], "-m", "smollm2", "--format", "json", "-o", str(tmp / "all.json")],
            env={"ATTNVIZ_MAX_MEMORY": "2G"},
        )
        if out[2] == 0:
            row(
                "2,000 tokens, every head to JSON",
                f"written, peak {out[1]:.0f} MB",
                "≤ 2 GB or refused < 10 s",
                out[1] <= 2048,
            )
        else:
            line = out[3].strip().splitlines()
            row(
                "2,000 tokens, every head to JSON",
                f"refused in {out[0]:.1f} s, exit {out[2]}, {len(line)} line: {line[-1][:160] if line else ''}",
                "≤ 2 GB or refused < 10 s",
                out[0] < 10 and out[2] == 2 and len(line) == 1,
            )
    if "inspect" in wanted:
        args_inspect = [exe, "inspect", "smollm2", "--text", texts[2000], "--no-pronouns", "--format", "json"]
        done = run([*args_inspect, "-o", str(tmp / "inspect.json")], env={"ATTNVIZ_MAX_MEMORY": "2G"})
        if done[2] != 0:
            row("2,000 tokens `inspect` (2 GB cap)", f"FAILED: {done[3].strip()[-200:]}", "runs, ≤ 1.5 GB", False)
        else:
            row(
                "2,000 tokens `inspect --no-pronouns` (2 GB cap): time vs transformers script",
                f"{done[0]:.0f} s vs {hf[0]:.0f} s = {done[0] / hf[0]:.2f}x",
                "reported",
                None,
            )
            row(
                "2,000 tokens `inspect --no-pronouns` (2 GB cap): peak memory",
                f"{done[1]:.0f} MB (transformers {hf[1]:.0f} MB)",
                "≤ 1.5 GB",
                done[1] <= 1536,
            )
    if "long" in wanted:
        done = run(
            [exe, "show", texts[8192], "-m", "smollm2", "--focus", "it", "--exclude-sinks"], str(tmp / "long.txt")
        )
        ok = done[2] == 0
        row(
            "8,192 tokens `show --focus it --exclude-sinks`",
            f"{'completes' if ok else 'FAILED: ' + done[3][-200:]} in {done[0]:.0f} s, peak {done[1]:.0f} MB",
            "completes, ≤ 3 GB",
            ok and done[1] <= 3072,
        )
    if "forward" in wanted:
        for n in map(int, args.lengths.split(",")):
            maps_gb = config.num_layers * config.num_heads * n * n * 4 / 2**30
            mode = "maps" if maps_gb < args.hf_limit_gb else "focus"
            ours = run(
                [py, "-c", ATTNVIZ_SCRIPT, ids_file(n), str(tmp / f"a{n}.npy") if mode == "maps" else "-", mode],
                str(tmp / f"a{n}.json"),
            )
            assert ours[2] == 0, ours[3]
            import json

            of = json.loads((tmp / f"a{n}.json").read_text())["forward"]
            if maps_gb * 1.2 > args.hf_limit_gb:
                row(
                    f"forward {n} tokens (attnviz, {mode})",
                    f"{of:.1f} s, peak {ours[1]:.0f} MB; transformers skipped (its maps: {maps_gb:.0f} GB)",
                    "≤ 1.0x transformers",
                    None,
                )
                continue
            theirs = run(
                [py, "-c", TRANSFORMERS_SCRIPT, str(path.parent), path.name, ids_file(n), str(tmp / f"t{n}.npy")],
                str(tmp / f"t{n}.json"),
            )
            assert theirs[2] == 0, theirs[3]
            tf = json.loads((tmp / f"t{n}.json").read_text())["forward"]
            diff = float(np.abs(np.load(tmp / f"a{n}.npy") - np.load(tmp / f"t{n}.npy")).max())
            row(
                f"forward {n} tokens, every map kept",
                f"{of:.1f} s vs {tf:.1f} s = {of / tf:.2f}x; peak {ours[1]:.0f} vs {theirs[1]:.0f} MB; max diff {diff:.1e}",
                "≤ 1.0x, equal",
                of / tf <= 1.0,
            )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
