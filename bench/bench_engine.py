"""A command through the transformers engine against a plain transformers script doing the same
load and forward, ratios measured in one run.

    python bench/bench_engine.py [--model PATH] [--repeats 5] [--threads 1]

Without --model a random DeBERTa-v2 (6 layers, 12 heads, d 384, a 30-word WordLevel tokenizer)
is made in a temporary folder by transformers. Each side runs as a fresh process (Python start,
imports, load, tokenize, forward with output_attentions, eager attention):

  attnviz:  attnviz show TEXT -m MODEL --engine transformers --format json -o FILE
  plain:    python -c "AutoTokenizer/AutoModel.from_pretrained(..., attn_implementation='eager');
            model(**tok(TEXT), output_attentions=True)"

Median wall times of --repeats alternating runs; target: attnviz <= 1.1x plain. The in-process
figures (load + one forward, after imports) are printed too.
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

TEXT = "the cat sat on the mat because it was tired , and a dog ran in the park ."
ROOT = Path(__file__).resolve().parent.parent

PLAIN = """
import sys, torch, transformers
torch.set_num_threads(int(sys.argv[2]))
folder = sys.argv[1]
tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
model = transformers.AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
enc = tok(sys.argv[3], return_tensors="pt")
with torch.inference_mode():
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)
maps = torch.stack(out.attentions, dim=1)[0].float().numpy()
"""


def make_model(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "engines"))
    import tiny_hf
    import torch
    import transformers

    tok = tiny_hf.tokenizer(decoder=False)
    config = transformers.DebertaV2Config(
        vocab_size=len(tok),
        hidden_size=384,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=1536,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=256,
        pos_att_type=["p2c", "c2p"],
        pad_token_id=0,
    )
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def timed(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:4]} failed: {done.stderr[-500:]}")
    return elapsed


def in_process(folder: Path, threads: int) -> tuple[float, float]:
    import torch
    import transformers

    from attnviz.engines import transformers_engine
    from attnviz.pipeline import run_attention

    torch.set_num_threads(threads)
    start = time.perf_counter()
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    enc = tok(TEXT, return_tensors="pt")
    with torch.inference_mode():
        out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)
    torch.stack(out.attentions, dim=1)[0].float().numpy()
    plain = time.perf_counter() - start
    start = time.perf_counter()
    run_attention(transformers_engine.load(folder, str(folder)), TEXT)
    ours = time.perf_counter() - start
    return ours, plain


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or make_model(Path(tmp) / "deberta")
        out = Path(tmp) / "out.json"
        ours_cmd = [sys.executable, "-m", "attnviz", "show", TEXT, "-m", str(folder), "--engine", "transformers"]
        ours_cmd += ["--format", "json", "-o", str(out), "--overwrite"]
        plain_cmd = [sys.executable, "-c", PLAIN, str(folder), str(args.threads), TEXT]
        timed(ours_cmd, env), timed(plain_cmd, env)  # warm the file cache
        ours, plain = [], []
        for _ in range(args.repeats):
            ours.append(timed(ours_cmd, env))
            plain.append(timed(plain_cmd, env))
        a, b = statistics.median(ours), statistics.median(plain)
        print(f"model: {folder}")
        print(f"process  attnviz show --engine transformers: {a:.2f} s · plain transformers script: {b:.2f} s")
        print(f"ratio: {a / b:.2f}x (target <= 1.1x)")
        pairs = [in_process(folder, args.threads) for _ in range(args.repeats)]
        a2, b2 = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
        print(f"in-process load + forward: attnviz {a2:.3f} s · plain {b2:.3f} s · ratio {a2 / b2:.2f}x")


if __name__ == "__main__":
    main()
