"""`attnviz explore [TEXT]`: the interactive terminal explorer (Textual).

Textual is imported inside the command only, so `attnviz --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import AttnvizError
from .common import (
    candidates_option,
    focus_option,
    top_option,
    words_option,
    ModelFlags,
    View,
    handles_errors,
    model_flags,
    truncate_option,
)

TruncateOpt = truncate_option("Cut text longer than the model's maximum instead of refusing it.")


@handles_errors
@model_flags()
def explore(
    text: Annotated[
        Optional[str], typer.Argument(help="A first sentence (more can be typed in the explorer).", show_default=False)
    ] = None,
    layer: Annotated[int, typer.Option("--layer", "-l", min=0, help="Layer to open first.")] = 0,
    head: Annotated[int, typer.Option("--head", min=0, help="Head to open first.")] = 0,
    focus: focus_option("A word of the sentence (or a token index) to follow; default: the first pronoun.") = None,
    top: top_option("How many targets the focus summary lists for the current head.", 10) = 3,
    words: words_option("Start at word level (subword pieces merged, Clark et al. 2019); `w` toggles it.") = False,
    view: Annotated[
        View,
        typer.Option("--view", help="The view to start with (as in `show`); `v` cycles them."),
    ] = View.attention,
    sinks: Annotated[
        bool,
        typer.Option(
            "--without-sinks",
            help="Start with special/sink tokens left out of the colour scale and rankings; `s` toggles it.",
        ),
    ] = False,
    candidates: candidates_option(
        'Comma-separated words the focus word may refer to, e.g. "animal,street": the weight to each in the current head, and wins over all heads.'
    ) = None,
    truncate: TruncateOpt = False,
    resolve: Annotated[
        bool,
        typer.Option(
            "--resolve",
            help="Find the model's pronoun heads when it loads (the agreement probe set; cached per model) and mark them.",
        ),
    ] = False,
    save_dir: Annotated[
        Path, typer.Option("--save-dir", help="Folder for the PNG and HTML files that `e` saves (never overwritten).")
    ] = Path("."),
    models: ModelFlags = ModelFlags(),
) -> None:
    """Explore a model interactively: type sentences, walk layers and heads with the arrow keys.

    The model loads once; press ? inside for the keys. Example: attnviz explore -m minilm
    """
    if not sys.stdout.isatty():
        raise AttnvizError(
            "explore is interactive and standard output is not a terminal; "
            "use `attnviz show TEXT` (or --format json) for output to a pipe or a file"
        )
    if not save_dir.is_dir():
        raise AttnvizError(f"--save-dir {save_dir} is not a folder")
    from ..analysis.candidates import parse_candidates
    from ..explore.app import ExploreApp
    from ..explore.session import Options

    options = Options(
        view=view.value,
        words=words,
        sinks=sinks,
        focus=focus,
        top=top,
        truncate=truncate,
        candidates=parse_candidates(candidates) if candidates else None,
        layer=layer,
        head=head,
    )
    app = ExploreApp(models.build, models.model, text, options, save_dir=save_dir, resolve=resolve)
    app.run()
    if app.load_error is not None:
        raise AttnvizError(app.load_error)
    if app.internal_error is not None:
        raise app.internal_error
