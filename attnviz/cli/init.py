"""`attnviz init DIR`: write a random model as an attnviz checkpoint folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import RandomShape, SeedOpt, TokenizerOpt, build_model, handles_errors, overwrite_option, with_shape_only

OverwriteOpt = overwrite_option(
    "Write into DIR even if it is not empty (its checkpoint files are replaced, others kept)."
)


@handles_errors
@with_shape_only
def init(
    folder: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="The checkpoint folder to create (config.json, model.safetensors, tokenizer.json).",
            show_default=False,
        ),
    ],
    overwrite: OverwriteOpt = False,
    tokenizer: TokenizerOpt = None,
    seed: SeedOpt = 0,
    shape: RandomShape = RandomShape(),
) -> None:
    """Create a checkpoint folder holding a seeded random model, to load later with --model DIR.

    Example: attnviz init my-model --num-layers 4 --num-heads 8 --d-model 128 --seed 7
    """
    from ..checkpoints import save_model
    from ..checkpoints.native import check_target
    from ..workers import exit_on_sigterm

    check_target(folder, overwrite)  # fail before building the model
    loaded = build_model("random", tokenizer, seed, shape)
    loaded.tokenizer.check_encodes()  # a tokenizer that fails on unknown words would break the checkpoint
    with exit_on_sigterm():  # a `kill` unwinds like Ctrl-C: the hidden .DIR.<hex>.part/ folder is removed
        save_model(loaded, folder, overwrite=overwrite)
    typer.echo(
        f"wrote {folder}: random model (seed {seed}), {loaded.config.describe()}, "
        f"vocabulary {loaded.config.vocab_size}; use it with --model {folder}"
    )
