"""`attnviz compare TEXT_A TEXT_B`: twin sentences through one model, or one sentence through two."""

from __future__ import annotations

import dataclasses
import enum
import functools
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..text import json_text
from ..errors import AttnvizError
from .common import (
    candidates_option,
    focus_option,
    top_option,
    HeadOpt,
    ImageFlags,
    LayerOpt,
    ModelFlags,
    OutputFlags,
    RandomShape,
    View,
    check_not_dash,
    handles_errors,
    model_flags,
    output_flags,
    with_image_flags,
)


class Format(str, enum.Enum):
    table = "table"
    json = "json"


def _png_paths(png: Path, n: int) -> list[Path]:
    if n == 1:
        return [png]
    return [png.with_name(f"{png.stem}-{tag}{png.suffix}") for tag in ("A", "B")[:n]]


@handles_errors
@model_flags()
@output_flags("--output / --png", truncate="Cut text longer than the model's maximum instead of refusing it.")
@with_image_flags
def compare(
    text_a: Annotated[str, typer.Argument(help="The first sentence.", show_default=False)],
    text_b: Annotated[
        Optional[str],
        typer.Argument(
            help="Its twin (e.g. one word changed so the pronoun's referent flips). Optional with --model-b.",
            show_default=False,
        ),
    ] = None,
    focus: focus_option(
        "The word to follow in both sentences (first occurrence; or a word index); default: the first pronoun."
    ) = None,
    candidates: candidates_option(
        'Comma-separated words the focus may refer to, e.g. "animal,street": winners per head and the heads that flip.'
    ) = None,
    model_b: Annotated[
        Optional[str],
        typer.Option(
            "--model-b",
            help="Compare this model with --model on the same sentence(s) instead: per-head Jensen-Shannon divergence.",
        ),
    ] = None,
    seed_b: Annotated[
        Optional[int], typer.Option("--seed-b", help="Seed of --model-b when it is 'random' [default: --seed + 1].")
    ] = None,
    layer: LayerOpt = None,
    head: HeadOpt = None,
    view: Annotated[
        View, typer.Option("--view", help="attention (default), rollout or norm; see 'attnviz show --help'.")
    ] = View.attention,
    top: top_option("How many heads the divergence summary lists.", 50) = 5,
    fmt: Annotated[
        Format, typer.Option("--format", help="table: rich tables; json: an object on stdout or --output.")
    ] = Format.table,
    png: Annotated[
        Optional[Path],
        typer.Option(
            "--png",
            help="Also draw the two focus maps side by side and their difference into this file (.png, .svg or .pdf by extension; with --model-b and two texts: NAME-A.png and NAME-B.png). The image flags (--preset, --size, --dpi, --cmap, --scale, ...) apply.",
        ),
    ] = None,
    image: ImageFlags = ImageFlags(),
    out: OutputFlags = OutputFlags(),
    models: ModelFlags = ModelFlags(),
) -> None:
    """Compare where a word attends in twin sentences, or in two models.

    Example: attnviz compare "The animal didn't cross the street because it was too tired." "The animal didn't cross the street because it was too wide." --focus it --candidates animal,street
    """
    from ..analysis.candidates import parse_candidates
    from ..analysis.compare import compare_models, compare_sentences

    texts = [t for t in (text_a, text_b) if t is not None]
    if any(not t.strip() for t in texts):
        raise AttnvizError("a text is empty; give two sentences to compare")
    if model_b is None and text_b is None:
        raise AttnvizError("give two sentences to compare (TEXT_A TEXT_B), or one sentence and --model-b")
    phrases = parse_candidates(candidates) if candidates is not None else None
    image.require(png)
    pngs = _check_outputs(out, png, len(texts) if model_b is not None else 1)
    image_opts = image.options() if pngs else None

    loaded = models.build()
    loaded_b = None if model_b is None else _model_b(models, model_b, seed_b).build()
    run = functools.partial(_attention, layer=layer, head=head, truncate=out.truncate, view=view.value)
    if model_b is None:
        comparisons = [compare_sentences(run(loaded, text_a), run(loaded, text_b), focus, phrases)]
    else:
        comparisons = [
            compare_models(run(loaded, t), run(loaded_b, t), focus, phrases, names=("A", "B")) for t in texts
        ]

    _report(comparisons, out, fmt, top, models_compared=model_b is not None)
    for path, comp in zip(pngs, comparisons):
        _write_image(path, comp, image_opts, out.overwrite)


def _check_outputs(out: OutputFlags, png: Path | None, images: int) -> list[Path]:
    """The image files `--png` names (NAME-A.png, NAME-B.png for two), refused now when they
    cannot be written, before the model loads."""
    from ..files import check_distinct, check_writable

    check_not_dash("--png", png)
    pngs = _png_paths(png, images) if png is not None else []
    if png is not None:
        from ..render.image import format_for

        format_for(png)
    check_distinct({"--output": out.output, **{f"--png ({path.name})": path for path in pngs}})
    out.check()
    for path in pngs:
        check_writable(path, out.overwrite)
    return pngs


def _model_b(models: ModelFlags, model_b: str, seed_b: int | None) -> ModelFlags:
    """--model-b's flags: --seed-b (default --seed + 1); the random-model shape only when it is random."""
    return dataclasses.replace(
        models,
        model=model_b,
        seed=models.seed + 1 if seed_b is None else seed_b,
        shape=models.shape if model_b == "random" else RandomShape(),
    )


def _attention(loaded, text: str, *, layer: str | None, head: str | None, truncate: bool, view: str):
    """The chosen layers and heads of `text`, at word level (comparisons are made word by word)."""
    from ..analysis.words import to_words
    from ..pipeline import run_attention
    from ..selection import parse_indices

    config = loaded.config
    layers = parse_indices(layer, config.num_layers, "layer")
    heads = parse_indices(head, config.num_heads, "head")
    return to_words(run_attention(loaded, text, layers=layers, heads=heads, truncate=truncate, view=view))


def _report(comparisons: list, out: OutputFlags, fmt: Format, top: int, models_compared: bool) -> None:
    """The comparison as JSON or tables, on standard output or into --output."""
    if fmt is Format.json:
        data = (
            {"kind": "models", "comparisons": [c.to_dict() for c in comparisons]}
            if models_compared
            else comparisons[0].to_dict()
        )
        out.emit(json_text(data))
        return
    from ..render.compare_view import render_comparison

    with out.console(width=120) as console:
        for k, comp in enumerate(comparisons):
            if k:
                console.print()
            render_comparison(console, comp, top)


def _write_image(path: Path, comparison, options, overwrite: bool) -> None:
    """The focus maps side by side and their difference; "wrote PATH" on stderr, as `show` says it."""
    from ..files import atomic_write
    from ..render.compare_image import render_compare_image
    from ..render.image import format_for

    drawn = render_compare_image(comparison, options, format_for(path))
    atomic_write(path, drawn.data, overwrite)
    notes = "".join(f"; note: {note}" for note in drawn.notes)
    typer.echo(f"wrote {path}{notes}", err=True)
