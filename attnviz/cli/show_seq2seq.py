"""`attnviz show SOURCE --target TEXT -m <encoder-decoder>`: encoder, decoder or cross-attention
of a model run through transformers (engines/transformers_engine.py), as terminal tables or JSON."""

from __future__ import annotations

import enum
import json
from pathlib import Path

from ..errors import AttnvizError


class Attention(str, enum.Enum):
    encoder = "encoder"
    decoder = "decoder"
    cross = "cross"


def show_seq2seq(
    loaded,
    source: str,
    target: str | None,
    attention: str,
    layer: str | None,
    head: str | None,
    fmt: str,
    out,
    png: Path | None,
    html: Path | None,
    max_new_tokens: int = 20,
) -> None:
    """Teacher-forced on `target` (None: the model's own greedy output, at most `max_new_tokens`);
    refused in one line for a model without a decoder, or with an output that draws square maps only (--png, --html, --format npz)."""
    from ..engines import transformers_engine
    from ..selection import parse_indices

    if not getattr(loaded, "encoder_decoder", False):
        raise AttnvizError("--target and --attention decoder/cross go with encoder-decoder models (T5, BART...)")
    if png is not None or html is not None or fmt == "npz":
        raise AttnvizError(
            "--target shows terminal tables or --format json; --png, --html and npz draw self-attention of one text"
        )
    result = transformers_engine.run_seq2seq(
        loaded, source, target, attention, truncate=out.truncate, max_new_tokens=max_new_tokens
    )
    layers = parse_indices(layer, len(result.layers), "layer") if layer is not None else None
    heads = parse_indices(head, len(result.heads), "head") if head is not None else None
    if layers is None and heads is None and len(result.layers) * len(result.heads) > 8:
        layers = [0]
        result.notes.append(
            f"Tables show layer 0 of {len(result.layers)}; choose others with --layer/--head (e.g. --layer all)."
        )
    result = result.select(layers, heads)
    if fmt == "json":
        out.emit(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
        return
    from rich.text import Text

    from ..render.terminal import render_header, render_heads

    with out.console() as console:
        render_header(console, result)
        if result.key_tokens is not None:
            sources = "  ".join(f"{j} {label}" for j, label in enumerate(result.key_labels))
            console.print(Text(f"source: {sources}", style="dim"))
        render_heads(console, result)
