"""`attnviz ablate TEXT -c RIGHT,WRONG`: which heads does the model need to pick the right referent?"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..text import json_text
from ..errors import AttnvizError
from .common import (
    ModelFlags,
    OutputFlags,
    candidates_option,
    check_not_dash,
    focus_option,
    handles_errors,
    model_flags,
    output_flags,
)


class Format(str, enum.Enum):
    table = "table"
    json = "json"


class Mode(str, enum.Enum):
    zero = "zero"
    mean = "mean"


CandidatesOpt = candidates_option(
    "RIGHT,WRONG: the word the focus word refers to, then the other candidate (both words of the text).", required=True
)
FocusOpt = focus_option("The word the readout asks about [default: the first pronoun].")
ReadoutOpt = Annotated[
    Optional[str],
    typer.Option(
        "--readout",
        help='The prompt whose continuation is read, with {text} and {focus} [default: {text} In that sentence, "{focus}" refers to the].',
        show_default=False,
    ),
]
PngOpt = Annotated[
    Optional[Path],
    typer.Option("--png", help="Also draw the layers x heads map into this PNG file.", show_default=False),
]
FormatOpt = Annotated[
    Format, typer.Option("--format", help="table: the map in the terminal; json: one object on stdout or --output.")
]


def parse_candidates(value: str) -> tuple[str, str]:
    parts = [p.strip() for p in value.split(",")]
    if len(parts) != 2 or not all(parts):
        raise AttnvizError(f"--candidates takes two words RIGHT,WRONG, got {value!r}")
    return parts[0], parts[1]


def load_with_head(models: ModelFlags):
    """The model (every layer) and its language-model head, or one line saying which models have one."""
    from ..checkpoints.lm_head import load_lm_head
    from ..engines import require_native

    loaded = models.build()
    require_native(loaded, "reading the model's answer with heads ablated or patched")
    return loaded, load_lm_head(loaded)


def write_png(png: Path | None, data: bytes, overwrite: bool) -> None:
    if png is not None:
        from ..files import atomic_write

        atomic_write(png, data, overwrite)
        print(f"wrote {png}", file=sys.stderr)


def check_png(png: Path | None, overwrite: bool) -> None:
    check_not_dash("--png", png)
    if png is not None:
        from ..files import check_writable

        if png.suffix.lower() != ".png":
            raise AttnvizError(f"--png writes a PNG file: give a name ending in .png, got {png.name!r}")
        check_writable(png, overwrite)


@handles_errors
@model_flags()
@output_flags("--output / --png")
def ablate(
    text: Annotated[
        str, typer.Argument(help="The sentence, with a pronoun and its two candidates.", show_default=False)
    ],
    candidates: CandidatesOpt,
    focus: FocusOpt = None,
    mode: Annotated[
        Mode, typer.Option("--mode", help="zero: the head's output set to 0; mean: to its mean over the prompt.")
    ] = Mode.zero,
    layer_level: Annotated[
        bool, typer.Option("--layer-level", help="Also ablate each layer's whole attention block.")
    ] = False,
    readout: ReadoutOpt = None,
    png: PngOpt = None,
    fmt: FormatOpt = Format.table,
    out: OutputFlags = OutputFlags(),
    models: ModelFlags = ModelFlags(),
) -> None:
    """Remove each head in turn and see how the model's answer moves: the effect (clean - ablated) of
    every head on log P(right) - log P(wrong).

    Example: attnviz ablate "The queen thanked the king because she had won." -m smollm2 -c queen,king
    """
    from ..interventions.ablation import ablate as run_ablation
    from ..interventions.readout import build_readout

    pair = parse_candidates(candidates)
    out.check()
    check_png(png, out.overwrite)
    loaded, head = load_with_head(models)
    prepared = build_readout(loaded, head, text, pair, focus, readout)
    result = run_ablation(loaded, head, prepared, mode=mode.value, layer_level=layer_level)
    data = ablation_json(result, loaded)
    if png is not None:
        from ..render.effect_view import effect_png

        title = (
            f"{loaded.info.source}: effect of {mode.value}-ablating each head on log P({pair[0]}) - log P({pair[1]})"
        )
        write_png(
            png, effect_png(result.effect, title, "clean - ablated", extra_column=result.layer_effect), out.overwrite
        )
    if fmt is Format.json:
        out.emit(json_text(data))
        return
    from ..render.effect_view import render_effect_grid, top_cells
    from rich.text import Text

    with out.console() as console:
        console.print(
            Text.assemble(
                ("attnviz ablate", "bold"), " · ", (loaded.info.source, "bold cyan"), f" · {mode.value} ablation"
            )
        )
        console.print(f"prompt: {prepared.prompt} …")
        console.print(
            f"clean readout log P({prepared.right}) - log P({prepared.wrong}) = {result.clean:+.3f}"
            f" ({'right' if result.clean > 0 else 'wrong'} answer preferred)"
        )
        render_effect_grid(
            console,
            "effect = clean - ablated (positive: the head helps the right answer)",
            result.effect,
            extra_column=result.layer_effect,
        )
        tops = ", ".join(f"L{l}.h{h} {v:+.3f}" for l, h, v in top_cells(result.effect, 5))
        console.print(f"heads that matter most: {tops}")


def ablation_json(result, loaded) -> dict:
    r = result.readout
    data = {
        "model": loaded.info.source,
        "text": r.text,
        "focus": r.focus,
        "candidates": [r.right, r.wrong],
        "template": r.template,
        "prompt": r.prompt,
        "mode": result.mode,
        "clean": result.clean,
        "layers": list(range(result.ablated.shape[0])),
        "heads": list(range(result.ablated.shape[1])),
        "ablated": result.ablated.tolist(),
        "effect": result.effect.tolist(),
    }
    if result.layer_ablated is not None:
        data["layer_ablated"] = result.layer_ablated.tolist()
        data["layer_effect"] = result.layer_effect.tolist()
    return data
