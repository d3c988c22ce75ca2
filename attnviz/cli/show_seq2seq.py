"""`attnviz show SOURCE --target TEXT -m <encoder-decoder>`: encoder, decoder or cross-attention
of a model run through transformers (engines/transformers_engine.py), as terminal tables, JSON, an
image (--png) or the interactive page (--html, holding all three kinds with a switch).

The focus word (--focus) is looked up on the side whose tokens are the rows of the kind shown:
the source for encoder self-attention, the target for decoder self-attention and cross-attention
(where it then ranks the source's tokens). Without --attention (cross with --target), a word found
in the source only switches to encoder self-attention, and the output says so."""

from __future__ import annotations

import enum
from pathlib import Path

from ..errors import AttnvizError

ROW_SIDE = {"encoder": "source", "decoder": "target", "cross": "target"}


class Attention(str, enum.Enum):
    encoder = "encoder"
    decoder = "decoder"
    cross = "cross"


def check_seq2seq_flags(words: bool, candidates, view: str, resolve: bool) -> None:
    """Refuse, before the model loads, what --target cannot show: the analyses of one text's
    self-attention (word level, candidates, other views, pronoun heads)."""
    given = [
        flag
        for flag, on in (
            ("--words", words),
            ("--candidates", candidates is not None),
            (f"--view {view}", view != "attention"),
            ("--resolve", resolve),
        )
        if on
    ]
    if given:
        raise AttnvizError(
            f"{', '.join(given)} {'goes' if len(given) == 1 else 'go'} with one text's self-attention, not with --target or --attention decoder/cross"
        )


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
    focus: str | None = None,
    top: int = 3,
    chosen: bool = True,
    image_opts=None,
    exclude_sinks: bool = False,
    digits: int | None = None,
    precision: str = "float32",
) -> None:
    """Teacher-forced on `target` (None: the model's own greedy output, at most `max_new_tokens`);
    refused in one line for a model without a decoder.
    `chosen`: --attention was given (else a focus word found in the source only picks encoder)."""
    from ..engines import transformers_engine
    from ..selection import parse_indices

    if not getattr(loaded, "encoder_decoder", False):
        raise AttnvizError("--target and --attention decoder/cross go with encoder-decoder models (T5, BART...)")
    results = transformers_engine.run_seq2seq_kinds(
        loaded, source, target, truncate=out.truncate, max_new_tokens=max_new_tokens
    )
    if exclude_sinks:  # special tokens out of rankings and colour scales (cross: the source's)
        results = {kind: r.without_sinks() for kind, r in results.items()}
    focus_at, attention = _focus(results, focus, attention, chosen)
    result = results[attention]
    layers = parse_indices(layer, len(result.layers), "layer") if layer is not None else None
    heads = parse_indices(head, len(result.heads), "head") if head is not None else None
    if html is not None:
        _write_html(html, results, attention, focus, layers, heads, out)
    if png is not None:
        _write_image(png, result.select(layers, heads), focus_at, image_opts, out.overwrite)
    if (png is not None or html is not None) and fmt == "table" and out.output is None:
        return  # the picture or the page replaces the tables
    summary = result.select(layers, heads)
    if layers is None and heads is None and len(result.layers) * len(result.heads) > 8:
        layers = [0]
        result.notes.append(
            f"Tables show layer 0 of {len(result.layers)}; choose others with --layer/--head (e.g. --layer all)."
        )
    result = result.select(layers, heads)
    if fmt != "table":  # every layer and head chosen (all by default), as show's JSON and NPZ
        _write_data(summary, fmt, out, digits, precision)
        return
    from rich.text import Text

    from ..analysis.focus import top_targets
    from ..render.terminal import render_focus, render_focus_answer, render_header, render_heads
    from ..result import KIND_NAMES

    per_head = top_targets(summary, focus_at.index, top) if focus_at is not None else []
    with out.console() as console:
        render_header(console, result)
        console.print(Text(f"showing {KIND_NAMES[attention]}", style="bold"))
        if result.key_tokens is not None:
            sources = "  ".join(f"{j} {label}" for j, label in enumerate(result.key_labels))
            console.print(Text(f"source: {sources}", style="dim"))
        if focus_at is not None:
            render_focus_answer(console, summary, focus_at, per_head)
        render_heads(console, result)
        if focus_at is not None:
            render_focus(console, summary, focus_at, per_head)


def _focus(results: dict, focus: str | None, attention: str, chosen: bool):
    """(the focus on the rows of the kind shown, or None; the kind shown). The word is looked up
    on the rows' side of `attention`; without --attention (`chosen` False) a word in the source
    only moves the view to encoder self-attention (noted on the result). One line when the word
    is on neither side, or on the other side only of a chosen kind."""
    from ..analysis.focus import resolve_focus

    if focus is None:
        return None, attention
    side = ROW_SIDE[attention]
    try:
        return resolve_focus(results[attention], focus), attention
    except AttnvizError:
        pass
    other = "encoder" if side == "target" else "cross"
    try:
        found = resolve_focus(results[other], focus)
    except AttnvizError:
        raise AttnvizError(
            f"focus word {focus!r} is in neither the source nor the target; give one of their words "
            f"or a token index of the {side}"
        ) from None
    if not chosen:
        results[other].notes.append(
            f"--focus {focus!r} is in the source, not the target: showing encoder self-attention "
            "(the source's rows); pass --attention to choose"
        )
        return found, other
    from ..result import KIND_NAMES

    hint = "--attention encoder" if other == "encoder" else "--attention cross or decoder"
    short = KIND_NAMES[attention].split(" (")[0].split(":")[0]  # "cross-attention", "encoder self-attention"
    raise AttnvizError(
        f"focus word {focus!r} is in the {ROW_SIDE[other]}, not the {side} (the rows of {short}): use {hint}"
    )


def _write_image(path: Path, result, focus_at, options, overwrite: bool) -> None:
    import typer

    from ..files import atomic_write
    from ..render.image import choose_layout, format_for, render_image

    focus = focus_at.index if focus_at is not None else None
    layout = choose_layout(result, focus)
    drawn = render_image(result, layout, options, fmt=format_for(path), focus=focus)
    atomic_write(path, drawn.data, overwrite)
    notes = "".join(f"; note: {note}" for note in drawn.notes)
    typer.echo(f"wrote {path} ({result.attention} attention, {layout} layout){notes}", err=True)


def _write_html(path: Path, results: dict, attention: str, focus: str | None, layers, heads, out) -> None:
    import typer

    from ..files import atomic_write
    from ..render.html import render_seq2seq_html

    # The kinds may differ in depth (T5's num_decoder_layers): each keeps the chosen layers it has.
    chosen = {
        kind: r.select(
            None if layers is None else [i for i in layers if i in r.layers] or None,
            None if heads is None else [h for h in heads if h in r.heads] or None,
        )
        for kind, r in results.items()
    }
    page = render_seq2seq_html(chosen, initial=attention, focus=focus)
    atomic_write(path, page, out.overwrite)
    size = len(page.encode("utf-8")) // 1024
    typer.echo(
        f"wrote {path} (interactive HTML, {size} KB: encoder, decoder and cross-attention, opens on {attention})",
        err=True,
    )


def _write_data(result, fmt: str, out, digits: int | None, precision: str) -> None:
    """--format json (standard output or --output) or npz (--output), with the source's key_*
    fields for cross-attention (stream_out.py, as show writes them)."""
    from ..files import write_stdout_bytes
    from ..stream_out import write_json, write_npz

    if fmt == "json":
        write_json(
            result,
            out.output,
            out.overwrite,
            digits,
            echo=lambda piece: write_stdout_bytes(piece.encode("utf-8", "surrogateescape")),
        )
        return
    write_npz(result, out.output, out.overwrite, precision)
