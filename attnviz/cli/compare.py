"""`attnviz compare TEXT_A TEXT_B`: twin sentences through one model, or one sentence through two."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import AttnvizError
from .common import (
    HeadOpt,
    ImageFlags,
    LayerOpt,
    ModelOpt,
    RandomShape,
    SeedOpt,
    TokenizerOpt,
    View,
    build_model,
    emit,
    check_not_dash,
    handles_errors,
    report_console,
    stdout_or_file,
    with_image_flags,
    with_random_shape,
)


class Format(str, enum.Enum):
    table = "table"
    json = "json"


def _png_paths(png: Path, n: int) -> list[Path]:
    if n == 1:
        return [png]
    return [png.with_name(f"{png.stem}-{tag}{png.suffix}") for tag in ("A", "B")[:n]]


@handles_errors
@with_random_shape
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
    focus: Annotated[
        Optional[str],
        typer.Option(
            "--focus",
            "-f",
            help="The word to follow in both sentences (first occurrence; or a word index); default: the first pronoun.",
        ),
    ] = None,
    candidates: Annotated[
        Optional[str],
        typer.Option(
            "--candidates",
            "-c",
            help='Comma-separated words the focus may refer to, e.g. "animal,street": winners per head and the heads that flip.',
        ),
    ] = None,
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
    top: Annotated[int, typer.Option("--top", min=1, max=50, help="How many heads the divergence summary lists.")] = 5,
    fmt: Annotated[
        Format, typer.Option("--format", help="table: rich tables; json: an object on stdout or --output.")
    ] = Format.table,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write the table or JSON to this file (atomically); - is standard output."),
    ] = None,
    png: Annotated[
        Optional[Path],
        typer.Option(
            "--png",
            help="Also draw the two focus maps side by side and their difference into this file (.png, .svg or .pdf by extension; with --model-b and two texts: NAME-A.png and NAME-B.png). The image flags (--preset, --size, --dpi, --cmap, --scale, ...) apply.",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --output / --png if they exist.")] = False,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Cut text longer than the model's maximum instead of refusing it.")
    ] = False,
    image: ImageFlags = ImageFlags(),
    model: ModelOpt = "random",
    tokenizer: TokenizerOpt = None,
    seed: SeedOpt = 0,
    shape: RandomShape = RandomShape(),
) -> None:
    """Compare where a word attends in twin sentences, or in two models.

    Example: attnviz compare "The animal didn't cross the street because it was too tired." "The animal didn't cross the street because it was too wide." --focus it --candidates animal,street
    """
    from ..analysis.candidates import parse_candidates
    from ..analysis.compare import compare_models, compare_sentences
    from ..analysis.words import to_words
    from ..result import parse_indices
    from ..io import atomic_write, check_distinct, check_writable
    from ..pipeline import run_attention

    output = stdout_or_file(output)
    texts = [t for t in (text_a, text_b) if t is not None]
    if any(not t.strip() for t in texts):
        raise AttnvizError("a text is empty; give two sentences to compare")
    if model_b is None and text_b is None:
        raise AttnvizError("give two sentences to compare (TEXT_A TEXT_B), or one sentence and --model-b")
    phrases = parse_candidates(candidates) if candidates is not None else None
    check_not_dash("--png", png)
    image.require(png)
    pngs = _png_paths(png, len(texts) if model_b is not None else 1) if png is not None else []
    if png is not None:
        from ..render.image import format_for

        image_format = format_for(png)
        image_opts = image.options()
    check_distinct({"--output": output, **{f"--png ({path.name})": path for path in pngs}})
    for path in ([output] if output else []) + pngs:
        check_writable(path, overwrite)

    loaded = build_model(model, tokenizer, seed, shape)
    loaded_b = None
    if model_b is not None:
        loaded_b = build_model(
            model_b, tokenizer, seed + 1 if seed_b is None else seed_b, shape if model_b == "random" else RandomShape()
        )

    def run(which, text):
        config = which.config
        layers = parse_indices(layer, config.num_layers, "layer")
        heads = parse_indices(head, config.num_heads, "head")
        result = run_attention(which, text, layers=layers, heads=heads, truncate=truncate, view=view.value)
        return to_words(result)

    if loaded_b is None:
        comparisons = [compare_sentences(run(loaded, text_a), run(loaded, text_b), focus, phrases)]
    else:
        comparisons = [
            compare_models(run(loaded, t), run(loaded_b, t), focus, phrases, names=("A", "B")) for t in texts
        ]

    if fmt is Format.json:
        data = (
            comparisons[0].to_dict()
            if loaded_b is None
            else {"kind": "models", "comparisons": [c.to_dict() for c in comparisons]}
        )
        emit(json.dumps(data, ensure_ascii=False) + "\n", output, overwrite)
    else:
        from ..render.compare_view import render_comparison

        with report_console(output, overwrite, width=120) as console:
            for k, comp in enumerate(comparisons):
                if k:
                    console.print()
                render_comparison(console, comp, top)
    if pngs:
        from ..render.compare_image import render_compare_image

        for path, comp in zip(pngs, comparisons):
            drawn = render_compare_image(comp, image_opts, image_format)
            atomic_write(path, drawn.data, overwrite)
            notes = "".join(f"; note: {note}" for note in drawn.notes)
            if fmt is Format.table and output is None:
                typer.echo(f"wrote {path}{notes}")
            elif notes:
                typer.echo(f"wrote {path}{notes}", err=True)
