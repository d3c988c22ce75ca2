"""`attnviz patch CLEAN CORRUPT -c RIGHT,WRONG`: which heads carry the cue from one twin to the other?"""

from __future__ import annotations

from typing import Annotated

import typer

from ..text import json_text
from .ablate import CandidatesOpt, FocusOpt, Format, FormatOpt, PngOpt, ReadoutOpt, check_png, load_with_head
from .ablate import parse_candidates, write_png
from .common import ModelFlags, OutputFlags, handles_errors, model_flags, output_flags


@handles_errors
@model_flags()
@output_flags("--output / --png")
def patch(
    clean: Annotated[str, typer.Argument(help="The twin whose answer is RIGHT.", show_default=False)],
    corrupt: Annotated[
        str, typer.Argument(help="The twin that differs in the cue (its answer is WRONG).", show_default=False)
    ],
    candidates: CandidatesOpt,
    position: Annotated[
        str,
        typer.Option(
            "--position",
            help="Where to patch: all (every position), focus (the focus word's tokens), last (the prompt's last token) or a token index N.",
        ),
    ] = "all",
    focus: FocusOpt = None,
    readout: ReadoutOpt = None,
    png: PngOpt = None,
    fmt: FormatOpt = Format.table,
    out: OutputFlags = OutputFlags(),
    models: ModelFlags = ModelFlags(),
) -> None:
    """Copy each head's output from the CLEAN run into the CORRUPT one: the fraction of the readout gap
    log P(right) - log P(wrong) between the twins that the head alone restores.

    Example: attnviz patch "The queen thanked the king because she had won." "The queen thanked the king because he had won." -m smollm2 -c queen,king
    """
    from ..interventions.patching import patch as run_patch
    from ..interventions.readout import build_readout

    pair = parse_candidates(candidates)
    out.check()
    check_png(png, out.overwrite)
    loaded, head = load_with_head(models)
    clean_r = build_readout(loaded, head, clean, pair, focus, readout)
    corrupt_r = build_readout(loaded, head, corrupt, pair, focus, readout)
    result = run_patch(loaded, head, clean_r, corrupt_r, position)
    fraction = result.fraction
    data = {
        "model": loaded.info.source,
        "clean_text": clean_r.text,
        "corrupt_text": corrupt_r.text,
        "candidates": list(pair),
        "template": clean_r.template,
        "position": position,
        "positions": result.positions,
        "clean": result.clean,
        "corrupt": result.corrupt,
        "layers": list(range(fraction.shape[0])),
        "heads": list(range(fraction.shape[1])),
        "patched": result.patched.tolist(),
        "fraction": [[None if v != v else float(v) for v in row] for row in fraction],
    }
    if png is not None:
        from ..render.effect_view import effect_png

        title = f"{loaded.info.source}: fraction of the clean - corrupt gap restored by patching each head"
        write_png(png, effect_png(fraction, title, "fraction restored"), out.overwrite)
    if fmt is Format.json:
        out.emit(json_text(data))
        return
    from rich.text import Text

    from ..render.effect_view import render_effect_grid, top_cells

    with out.console() as console:
        console.print(Text.assemble(("attnviz patch", "bold"), " · ", (loaded.info.source, "bold cyan")))
        where = "every position" if result.positions is None else "positions " + ",".join(map(str, result.positions))
        console.print(
            f"readout log P({pair[0]}) - log P({pair[1]}): clean {result.clean:+.3f}, corrupt {result.corrupt:+.3f}; "
            f"patched at {where}"
        )
        if abs(result.gap) < 1e-9:
            console.print("the twins read the same: there is no gap to restore")
            return
        render_effect_grid(console, "fraction of the gap restored (1: the head alone restores it)", fraction)
        tops = ", ".join(f"L{l}.h{h} {v:+.2f}" for l, h, v in top_cells(fraction, 5))
        console.print(f"heads that restore most: {tops}")
