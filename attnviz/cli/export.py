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

from ..errors import AttnvizError
from .common import (ModelOpt, RandomShape, SeedOpt, TokenizerOpt, build_model, handles_errors,
                     with_random_shape)


class Preset(str, enum.Enum):
    slide = "slide"
    paper = "paper"


class ImageFormat(str, enum.Enum):
    png = "png"
    svg = "svg"
    pdf = "pdf"


# Image options, shared with `attnviz show --png`.
CmapOpt = Annotated[str, typer.Option("--cmap", help="Colormap: any matplotlib name; viridis (perceptually uniform, colour-blind safe) by default.")]
AnnotateOpt = Annotated[bool, typer.Option("--annotate", help="Write each cell's weight in it (when the cells are big enough to read it).")]
DpiOpt = Annotated[Optional[float], typer.Option("--dpi", help="Pixels per inch of PNG output [default: 120; slide 150; paper 300].", show_default=False)]
SizeOpt = Annotated[Optional[str], typer.Option("--size", help="Figure size WIDTHxHEIGHT in inches (8x4.5), or with a unit: 20x12cm, 160x90mm, 1600x900px [default: fitted to the sentence].", show_default=False)]
PresetOpt = Annotated[Optional[Preset], typer.Option("--preset", help="slide: 16:9, 2000x1125 px, large type; paper: 3.5 in column (7 in for grids), small type, 300 dpi, best saved as .pdf or .svg.", show_default=False)]
TransparentOpt = Annotated[bool, typer.Option("--transparent", help="Transparent background instead of white.")]


def image_options(cmap: str, annotate: bool, dpi: float | None, size: str | None, preset: Preset | None,
                  transparent: bool):
    """Validated ImageOptions from the command-line flags (AttnvizError on a bad value)."""
    from ..render.image import ImageOptions, parse_size, validate_options

    preset_name = preset.value if preset is not None else None
    inches = parse_size(size, dpi, preset_name) if size is not None else None
    return validate_options(ImageOptions(cmap=cmap, annotate=annotate, dpi=dpi, size=inches,
                                         preset=preset_name, transparent=transparent))


def write_show_image(path: Path, result, focus: int | None, options, overwrite: bool) -> str:
    """Draw `result` (already narrowed to the chosen layers and heads) into `path`; the format
    comes from the extension. Returns a one-line description for the terminal."""
    from ..io import atomic_write
    from ..render.image import choose_layout, format_for, last_notes, render_image

    fmt = format_for(path)
    layout = choose_layout(result, focus)
    data = render_image(result, layout, options, fmt=fmt, focus=focus)
    atomic_write(path, data, overwrite)
    notes = "".join(f"; note: {note}" for note in last_notes())
    return f"wrote {path} ({layout} layout){notes}"


@handles_errors
@with_random_shape
def export(
    inputs: Annotated[list[str], typer.Argument(help="Sentences, text files (one sentence a line; blank lines and # comments skipped), folders of .txt files, or - for standard input.", show_default=False)],
    outdir: Annotated[Path, typer.Option("--output", "-o", help="The folder to write into (created if missing).", show_default=False)],
    layout: Annotated[Optional[str], typer.Option("--layout", help="Comma list of what to draw per sentence: model (layers x heads grid, model.png), layers (one grid per layer, L0.png), heads (one per head, L0-H03.png), focus (where the focus word attends, focus.png), or all [default: model,layers,focus].", show_default=False)] = None,
    image_format: Annotated[ImageFormat, typer.Option("--format", help="Image file format.")] = ImageFormat.png,
    layer: Annotated[Optional[str], typer.Option("--layer", "-l", help="Layers to draw: indices and ranges such as 0,2 or 1-3, or 'all'.")] = None,
    head: Annotated[Optional[str], typer.Option("--head", help="Heads to draw, like --layer.")] = None,
    focus: Annotated[Optional[str], typer.Option("--focus", "-f", help="The word (or token index) of the focus map; a sentence without it fails. Default: each sentence's first pronoun, and no focus map when it has none.")] = None,
    cmap: CmapOpt = "viridis",
    annotate: AnnotateOpt = False,
    dpi: DpiOpt = None,
    size: SizeOpt = None,
    preset: PresetOpt = None,
    transparent: TransparentOpt = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", min=1, max=64, help="Worker processes that draw in parallel [default: the number of CPU cores].", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redraw images that already exist (by default a rerun skips them and so resumes an interrupted export).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar and no closing line (failures are still reported on stderr).")] = False,
    truncate: Annotated[bool, typer.Option("--truncate", help="Cut sentences longer than the model's maximum instead of failing them.")] = False,
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
    from ..attention import parse_indices

    options = image_options(cmap, annotate, dpi, size, preset, transparent)
    layouts = ex.parse_layouts(layout)
    if outdir.exists() and not outdir.is_dir():
        raise AttnvizError(f"{outdir} is a file; give a folder for --output")
    sentences = ex.collect_sentences(inputs)
    loaded = build_model(model, tokenizer, seed, shape)
    layers = parse_indices(layer, loaded.config.num_layers, "layer")
    heads = parse_indices(head, loaded.config.num_heads, "head")
    workers = jobs if jobs is not None else ex.default_jobs()

    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    show_progress = not quiet and console.is_terminal

    def on_failure(record) -> None:
        print(f"attnviz: sentence {record.sentence.index} ({record.sentence.source}) skipped: {record.error}",
              file=sys.stderr)

    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
                      TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task("export", total=None)
            report = ex.export(loaded, sentences, outdir, layouts=layouts, fmt=image_format.value,
                               options=options, layers=layers, heads=heads, focus=focus, truncate=truncate,
                               overwrite=overwrite, jobs=workers, on_failure=on_failure,
                               on_progress=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        report = ex.export(loaded, sentences, outdir, layouts=layouts, fmt=image_format.value, options=options,
                           layers=layers, heads=heads, focus=focus, truncate=truncate, overwrite=overwrite,
                           jobs=workers, on_failure=on_failure)
    if not quiet:
        print(report.summary())
    if report.failed:
        raise typer.Exit(1)
