"""`attnviz export INPUTS... -o OUTDIR`: heatmaps of many sentences, a manifest and a contact sheet.

Also home of the image options that `attnviz show --png` shares (--cmap, --annotate, --dpi,
--size, --preset, --transparent) and of the helper that writes show's image.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    HeadOpt,
    ImageFlags,
    LayerOpt,
    ModelOpt,
    RandomShape,
    SeedOpt,
    TokenizerOpt,
    build_model,
    check_not_dash,
    handles_errors,
    with_image_flags,
    with_random_shape,
)


class ImageFormat(str, enum.Enum):
    png = "png"
    svg = "svg"
    pdf = "pdf"


@handles_errors
@with_random_shape
@with_image_flags
def export(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Sentences, text files (one sentence a line; blank lines and # comments skipped), folders of .txt files, or - for standard input.",
            show_default=False,
        ),
    ],
    outdir: Annotated[
        Path, typer.Option("--output", "-o", help="The folder to write into (created if missing).", show_default=False)
    ],
    layout: Annotated[
        Optional[str],
        typer.Option(
            "--layout",
            help="Comma list of what to draw per sentence: model (layers x heads grid, model.png), layers (one grid per layer, L0.png), heads (one per head, L0-H03.png), focus (where the focus word attends, focus.png), or all [default: model,layers,focus].",
            show_default=False,
        ),
    ] = None,
    image_format: Annotated[ImageFormat, typer.Option("--format", help="Image file format.")] = ImageFormat.png,
    layer: LayerOpt = None,
    head: HeadOpt = None,
    focus: Annotated[
        Optional[str],
        typer.Option(
            "--focus",
            "-f",
            help="The word (or token index) of the focus map; a sentence without it fails. Default: each sentence's first pronoun, and no focus map when it has none.",
        ),
    ] = None,
    html: Annotated[
        bool,
        typer.Option(
            "--html",
            help="Also write an interactive page per sentence (NNN-slug/view.html), linked from index.html and listed in index.json.",
        ),
    ] = False,
    image: ImageFlags = ImageFlags(),
    jobs: Annotated[
        Optional[int],
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            max=64,
            help="Worker processes that draw in parallel [default: the number of CPU cores].",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Redraw images that already exist (by default a rerun with the same settings skips them and so resumes an interrupted export; other settings are refused), and replace an index.json/index.html attnviz did not write.",
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bar and no closing line (failures are still reported on stderr)."
        ),
    ] = False,
    truncate: Annotated[
        bool, typer.Option("--truncate", help="Cut sentences longer than the model's maximum instead of failing them.")
    ] = False,
    exclude_sinks: Annotated[
        bool,
        typer.Option(
            "--exclude-sinks",
            help="Leave the sink tokens (special tokens; in a causal model also the first token) out of the focus rankings and of auto colour scales (--scale auto); the weights drawn stay whole.",
        ),
    ] = False,
    model: ModelOpt = "random",
    tokenizer: TokenizerOpt = None,
    seed: SeedOpt = 0,
    shape: RandomShape = RandomShape(),
) -> None:
    """Export heatmaps of many sentences into a folder, with index.json and an index.html contact sheet.

    Example: attnviz export sample_texts "The cat sat on the mat." -o figures --preset slide

    Exit status: 0 when every sentence was exported, 1 when some failed (each is reported on
    stderr and skipped), 2 for bad usage.
    """
    from .. import export as ex
    from ..result import parse_indices

    options = image.options()
    layouts = ex.parse_layouts(layout)
    check_not_dash("--output", outdir, "a folder", "- stands for standard input, and only as the text")
    ex.check_outdir(outdir)  # a file in the way fails now, not after the model has loaded
    # So do a user's own index.html and a rerun with other image options (the model's part and
    # --layer/--head are compared by ex.export, once they are known).
    previous = ex.read_previous(outdir, overwrite)
    ex.check_settings(
        outdir,
        previous,
        ex.export_settings(
            fmt=image_format.value, options=options, focus=focus, truncate=truncate, exclude_sinks=exclude_sinks
        ),
    )
    sentences = ex.collect_sentences(inputs)
    loaded = build_model(model, tokenizer, seed, shape)
    layers = parse_indices(layer, loaded.config.num_layers, "layer")
    heads = parse_indices(head, loaded.config.num_heads, "head")
    workers = jobs if jobs is not None else ex.default_jobs()

    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    show_progress = not quiet and console.is_terminal

    def on_failure(record) -> None:
        print(
            f"attnviz: sentence {record.sentence.index} ({record.sentence.source}) skipped: {record.error}",
            file=sys.stderr,
        )

    run = dict(
        layouts=layouts,
        fmt=image_format.value,
        options=options,
        layers=layers,
        heads=heads,
        focus=focus,
        truncate=truncate,
        overwrite=overwrite,
        jobs=workers,
        html=html,
        exclude_sinks=exclude_sinks,
    )
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("images"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("export", total=None)
            report = ex.export(
                loaded,
                sentences,
                outdir,
                **run,
                on_failure=on_failure,
                on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    else:
        report = ex.export(loaded, sentences, outdir, **run, on_failure=on_failure)
    if not quiet:
        print(report.summary())
    for note, count in report.notes().items():  # what the images left out is never silent
        print(f"attnviz: note: {note} ({count} image{'s' if count != 1 else ''})", file=sys.stderr)
    if report.failed:
        raise typer.Exit(1)
