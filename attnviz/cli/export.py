"""`attnviz export INPUTS... -o OUTDIR`: heatmaps of many sentences, a manifest and a contact sheet.

parse (one planning call, before the model loads) -> run (export.run) -> report (progress, summary).
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    focus_option,
    HeadOpt,
    ImageFlags,
    LayerOpt,
    ModelFlags,
    OutputFlags,
    check_not_dash,
    handles_errors,
    model_flags,
    output_flags,
    with_image_flags,
)


class ImageFormat(str, enum.Enum):
    png = "png"
    svg = "svg"
    pdf = "pdf"


@handles_errors
@model_flags()
@output_flags(
    truncate="Cut sentences longer than the model's maximum instead of failing them.",
    output_help="The folder to write into (created if missing).",
    overwrite_help="Redraw images that already exist (by default a rerun with the same settings skips them and so resumes an interrupted export; other settings are refused), and replace an index.json/index.html attnviz did not write.",
    required=True,
)
@with_image_flags
def export(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Sentences, text files (one sentence a line; blank lines and # comments skipped), folders of .txt files, or - for standard input.",
            show_default=False,
        ),
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
    focus: focus_option(
        "The word (or token index) of the focus map; a sentence without it fails. Default: each sentence's first pronoun, and no focus map when it has none."
    ) = None,
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
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress bar and no closing line (failures are still reported on stderr)."
        ),
    ] = False,
    exclude_sinks: Annotated[
        bool,
        typer.Option(
            "--exclude-sinks",
            help="Leave the sink tokens (special tokens; in a causal model also the first token) out of the focus rankings and of auto colour scales (--scale auto); the weights drawn stay whole.",
        ),
    ] = False,
    out: OutputFlags = OutputFlags(),
    models: ModelFlags = ModelFlags(),
) -> None:
    """Export heatmaps of many sentences into a folder, with index.json and an index.html contact sheet.

    Example: attnviz export sample_texts "The cat sat on the mat." -o figures --preset slide

    Exit status: 0 when every sentence was exported, 1 when some failed (each is reported on
    stderr and skipped), 2 for bad usage.
    """
    from .. import export as ex

    if out.to_stdout:
        check_not_dash("--output", Path("-"), "a folder", "- stands for standard input, and only as the text")
    planned = ex.plan(
        inputs,
        out.output,
        layouts=layout,
        fmt=image_format.value,
        options=image.options(),
        layers=layer,
        heads=head,
        focus=focus,
        truncate=out.truncate,
        overwrite=out.overwrite,
        jobs=jobs,
        html=html,
        exclude_sinks=exclude_sinks,
    )
    loaded = models.build()
    report = _run(ex, loaded, planned, quiet)
    if not quiet:
        print(report.summary())
    for note, count in report.notes().items():  # what the images left out is never silent
        print(f"attnviz: note: {note} ({count} image{'s' if count != 1 else ''})", file=sys.stderr)
    if report.failed:
        raise typer.Exit(1)


def _run(ex, loaded, planned, quiet: bool):
    """export.run, with a progress bar on a terminal; failures reported on stderr as they come."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    if quiet or not console.is_terminal:
        return ex.run(loaded, planned, on_failure=_report_failure)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("export", total=None)
        return ex.run(
            loaded,
            planned,
            on_failure=_report_failure,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )


def _report_failure(record) -> None:
    print(
        f"attnviz: sentence {record.sentence.index} ({record.sentence.source}) skipped: {record.error}",
        file=sys.stderr,
    )
