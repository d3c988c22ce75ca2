"""Ablating every head of a real model on one item: attnviz's batched interventions against a plain
transformers loop with a hook per head, ratios measured in one run.

    python bench/bench_causal.py [--model smollm2|gemma3|PATH] [--threads 1] [--repeats 1]

attnviz: `interventions.ablation.ablate` (the clean run once, the residual stream at each layer's
input kept, all heads of a layer zeroed in one batched pass over the layers above).
transformers: the same GGUF (or folder) loaded with `from_pretrained(..., gguf_file=...)`, eager
attention; for every head a forward pre-hook on the layer's o_proj zeroes the head's slice, and the
prompt + candidate is run once per candidate (two forwards per head), plus the clean forwards.
Both run under torch.inference_mode() with the same thread count (default 1: on a shared machine
more threads than free cores only adds spinning). Target: attnviz <= 0.25x the transformers wall
time. The largest difference between the two sets of ablated readouts is printed as a check.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

TEXT = "The queen thanked the king because she had won."


def reference_model(loaded):
    import transformers

    source = Path(loaded.sources[0])
    if ".gguf.part" in source.name:  # a GGUF split over packages (gemma3): transformers needs one file
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="bench_causal."))
        source = folder / source.name.split(".part")[0]
        with open(source, "wb") as out:
            for part in loaded.sources:
                out.write(Path(part).read_bytes())
    if source.suffix == ".gguf":
        model = transformers.AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(source.parent))
    model.set_attn_implementation("eager")
    return model.eval()


def out_projections(model):
    base = getattr(model, model.base_model_prefix, model)
    if hasattr(base, "h"):
        return [block.attn.c_proj for block in base.h]
    if hasattr(base, "language_model"):  # multimodal wrappers (Gemma 3 4B+)
        base = base.language_model
    return [layer.self_attn.o_proj for layer in base.layers]


def transformers_loop(model, readout, H: int, Dh: int) -> tuple[float, np.ndarray]:
    """Clean readout and [L, H] ablated readouts, one forward per candidate per head."""
    prompt = readout.sequences[0][: readout.mean_lengths[0]]
    runs = [
        (prompt + readout.candidate_ids[name], len(prompt), readout.candidate_ids[name], sign)
        for name, sign in (("right", 1.0), ("wrong", -1.0))
    ]

    def value() -> float:
        total = 0.0
        for ids, n, cand, sign in runs:
            logp = model(input_ids=torch.tensor([ids])).logits[0].float().log_softmax(-1)
            total += sign * sum(float(logp[n - 1 + i, t]) for i, t in enumerate(cand))
        return total

    projections = out_projections(model)
    with torch.inference_mode():
        clean = value()
        ablated = np.zeros((len(projections), H))
        for layer, proj in enumerate(projections):
            for h in range(H):

                def zero(module, args, h=h):
                    x = args[0].clone()
                    x[..., h * Dh : (h + 1) * Dh] = 0.0
                    return (x,)

                handle = proj.register_forward_pre_hook(zero)
                try:
                    ablated[layer, h] = value()
                finally:
                    handle.remove()
    return clean, ablated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--text", default=TEXT)
    parser.add_argument("--candidates", default="queen,king")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import attnviz
    from attnviz.checkpoints.lm_head import load_lm_head
    from attnviz.interventions.ablation import ablate
    from attnviz.interventions.readout import build_readout

    loaded = attnviz.load_model(args.model)
    head = load_lm_head(loaded)
    readout = build_readout(loaded, head, args.text, tuple(args.candidates.split(",")))
    reference = reference_model(loaded)
    config = loaded.config
    ours_t, theirs_t = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = ablate(loaded, head, readout)
        ours_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        clean, theirs = transformers_loop(reference, readout, config.num_heads, config.d_head)
        theirs_t.append(time.perf_counter() - start)
    a, b = float(np.median(ours_t)), float(np.median(theirs_t))
    print(
        f"model {args.model}: {config.num_layers} layers x {config.num_heads} heads, "
        f"{len(readout.sequences[0])} tokens, {args.threads} thread(s)"
    )
    print(f"clean readout: attnviz {ours.clean:+.5f}, transformers {clean:+.5f}")
    print(f"max |ablated difference| {np.abs(ours.ablated - theirs).max():.2e}")
    print(f"{'':14}{'wall s':>9}")
    print(f"{'attnviz':14}{a:9.2f}")
    print(f"{'transformers':14}{b:9.2f}")
    print(f"ratio attnviz / transformers: {a / b:.3f}x (target <= 0.25x)")


if __name__ == "__main__":
    main()
