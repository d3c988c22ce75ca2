"""`attnviz probe coref SET --causal`: every head ablated on every item, the heads whose ablation hurts
significantly, beside the attention-based pronoun heads."""

from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import AttnvizError
from ..text import json_text


def _span_text(value) -> str:
    return value["text"] if isinstance(value, dict) else str(value)


def run_causal(items, skipped, name: str, file, loaded, fmt_json: bool, out, top: int, limit: int | None) -> None:
    """Ablate every head on each item (zero ablation), test, compare with the attention heads, print."""
    from ..analysis.causal_probe import CausalProbe, overlap, top_overlap
    from ..checkpoints.lm_head import load_lm_head
    from ..interventions.ablation import ablate
    from ..interventions.readout import build_readout
    from ..pronoun_heads import find, store

    head = load_lm_head(loaded)
    usable = [it for it in items if len(it.candidates) == 2 and it.answer in (0, 1)]
    skips = [(s.line, s.reason) for s in skipped]
    skips += [(it.line, "the causal readout needs exactly two candidates") for it in items if it not in usable]
    if limit is not None and limit < len(usable):
        # Spread over the set (every k-th item), so a sample covers every cue of a set sorted by cue.
        picks = sorted({round(i * (len(usable) - 1) / max(limit - 1, 1)) for i in range(limit)})
        usable = [usable[i] for i in picks]
    effects, clean, ids = [], [], []
    from rich.console import Console

    err = Console(stderr=True)
    started = time.perf_counter()

    def one(item) -> None:
        right = _span_text(item.candidates[item.answer])
        wrong = _span_text(item.candidates[1 - item.answer])
        try:
            prepared = build_readout(loaded, head, item.text, (right, wrong), _span_text(item.pronoun))
        except AttnvizError as exc:
            skips.append((item.line, str(exc)))
            return
        result = ablate(loaded, head, prepared)
        effects.append(result.effect)
        clean.append(result.clean)
        ids.append(item.id or str(item.line))

    if err.is_terminal:
        from rich.progress import Progress

        with Progress(*Progress.get_default_columns(), console=err, transient=True) as bar:
            task = bar.add_task(f"ablating every head on {len(usable)} items", total=len(usable))
            for item in usable:
                one(item)
                bar.advance(task)
    else:
        for k, item in enumerate(usable):
            one(item)
            if k == 0 or (k + 1) % 5 == 0:
                spent = time.perf_counter() - started
                left = spent / (k + 1) * (len(usable) - k - 1)
                print(
                    f"attnviz: ablated {k + 1} of {len(usable)} items, about {left / 60:.1f} min left",
                    file=sys.stderr,
                )
    for line, reason in skips:
        print(f"attnviz: warning: {name} line {line} skipped: {' '.join(reason.split())}", file=sys.stderr)
    if not effects:
        raise AttnvizError(f"no item of {name} could be read out ({len(skips)} skipped; see the lines above)")
    probe = CausalProbe(np.stack(effects), np.array(clean), ids, "zero", skips)
    pronoun, _ = find(loaded, str(file))
    import dataclasses

    store(loaded, dataclasses.replace(pronoun, causal=probe.summary()), str(file))
    attention_heads = [(h["layer"], h["head"]) for h in pronoun.resolving()]
    causal_heads = probe.confirmed()
    shared = overlap(attention_heads, causal_heads)
    L, H = probe.mean_effect().shape
    accuracy = np.zeros((L, H))
    for h in pronoun.heads:
        accuracy[h["layer"], h["head"]] = h["accuracy"]
    k = min(top, L * H)
    shared["top_k"] = k
    shared["top_k_shared"] = top_overlap(accuracy, probe.mean_effect(), k)
    data = {
        "source": name,
        "model": loaded.info.source,
        "n_items": probe.n_items,
        "readout_accuracy": probe.accuracy(),
        "mode": probe.mode,
        "mean_effect": probe.mean_effect().tolist(),
        "p": probe.p_values().tolist(),
        "causal_heads": [list(c) for c in causal_heads],
        "attention_heads": [list(a) for a in attention_heads],
        "overlap": shared,
    }
    if fmt_json:
        out.emit(json_text(data))
        return
    from rich.text import Text

    from ..render.effect_view import render_effect_grid

    mean = probe.mean_effect()
    with out.console() as console:
        console.print(
            Text.assemble(
                ("attnviz probe coref --causal", "bold"), " · ", (loaded.info.source, "bold cyan"), " · ", name
            )
        )
        console.print(
            f"{probe.n_items} items read out, {len(skips)} skipped; the model prefers the right referent on "
            f"{100 * probe.accuracy():.1f}% of them (readout > 0)"
        )
        render_effect_grid(console, "mean effect of zero-ablating each head (clean - ablated, over items)", mean)
        console.print(
            Text(
                "causal heads: ablation lowers the readout on significantly more items than it raises it "
                "(exact sign test, Bonferroni over the heads, p < 0.05)",
                style="dim",
            )
        )

        def names(cells):
            return ", ".join(f"L{l}.h{h}" for l, h in cells) or "none"

        console.print(f"causal heads ({len(causal_heads)}): {names(causal_heads)}")
        console.print(f"attention-based pronoun heads ({len(attention_heads)}): {names(attention_heads)}")
        console.print(
            f"in both: {names(tuple(x) for x in shared['both'])}"
            + (f" (Jaccard {shared['jaccard']:.2f})" if shared["jaccard"] is not None else "")
        )
        console.print(
            f"of the {k} heads with the best attention accuracy, {shared['top_k_shared']} are among the "
            f"{k} with the largest mean ablation effect"
        )
