"""`attnviz probe coref FILE.jsonl`: score every head of a model on annotated pronouns."""

from __future__ import annotations

import enum
import sys
from typing import Annotated, Optional

import typer

from ..text import json_text
from ..errors import AttnvizError
from .common import top_option, ModelFlags, OutputFlags, View, handles_errors, model_flags, output_flags

probe_app = typer.Typer(
    help="Score every head of a model on an annotated task.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(str, enum.Enum):
    table = "table"
    json = "json"


@probe_app.command("coref", no_args_is_help=True)
@handles_errors
@model_flags()
@output_flags(truncate="Cut texts longer than the model's maximum instead of skipping them.")
def coref(
    file: Annotated[
        str,
        typer.Argument(
            metavar="SET_OR_FILE",
            help='A built-in set (agreement: pronouns decided by number or gender; winograd: WSC273) or a JSONL file, one object a line: {"text", "pronoun", "candidates", "answer"[, "group", "cue"]}; pronoun and candidates as strings or {"text", "start", "end"}.',
            show_default=False,
        ),
    ],
    view: Annotated[
        View, typer.Option("--view", help="attention (default), rollout or norm: which weights the heads pick with.")
    ] = View.attention,
    top: top_option("How many of the best heads to list.", 100) = 10,
    fmt: Annotated[
        Format, typer.Option("--format", help="table: grids and rankings; json: one object on stdout or --output.")
    ] = Format.table,
    ablation: Annotated[
        bool,
        typer.Option(
            "--ablation",
            help="Causal evidence (models with an LM head; --causal with a checkpoint means the same): ablate every head on every item, the heads whose ablation hurts the model's answer significantly, beside the attention-based pronoun heads.",
        ),
    ] = False,
    limit: Annotated[
        Optional[int],
        typer.Option(
            "--limit",
            min=1,
            help="With --ablation: N items spread evenly over the set (every k-th item).",
            show_default=False,
        ),
    ] = None,
    out: OutputFlags = OutputFlags(),
    models: ModelFlags = ModelFlags(),
) -> None:
    """Which heads send a pronoun to its antecedent? Accuracy of every head, best heads, baselines.

    Example: attnviz probe coref sample_texts/coref_twins.jsonl --model minilm
    """
    from ..analysis.probe import read_items, resolve_probe_file, run_probe
    from ..pipeline import run_attention_batch

    out.check()
    file, name = resolve_probe_file(file)
    items, skipped = read_items(file)
    if not items and not skipped:
        raise AttnvizError(f"{name} has no items; write one JSON object a line")
    if models.shape.causal and models.model != "random":
        # --causal shapes a random decoder; a checkpoint brings its own shape, so there it asks for
        # the causal (ablation) evidence instead.
        import dataclasses

        ablation = True
        models = dataclasses.replace(models, shape=dataclasses.replace(models.shape, causal=False))
    loaded = models.build()
    if ablation:
        from .probe_causal import run_causal

        return run_causal(items, skipped, name, file, loaded, fmt is Format.json, out, top, limit)

    def attention(texts):
        return run_attention_batch(loaded, texts, truncate=out.truncate, view=view.value)

    from .progress import progress

    with progress(f"scoring {len(items)} items", len(items)) as advance:
        result = run_probe(items, attention, skipped, progress=advance)
    result.source = name
    for s in result.skipped:
        print(f"attnviz: warning: {name} line {s.line} skipped: {' '.join(s.reason.split())}", file=sys.stderr)
    if not result.n_items:
        raise AttnvizError(f"no item of {name} could be scored ({len(result.skipped)} skipped; see the lines above)")

    if view.value == "attention":
        # Remember which heads resolve pronouns on this set, for `show`'s focus summary.
        from ..pronoun_heads import PronounHeads, store

        store(loaded, PronounHeads.from_probe(result, name), str(file))
    if fmt is Format.json:
        out.emit(json_text(result.to_dict(top)))
        return
    from ..render.probe_view import render_probe

    with out.console() as console:
        render_probe(console, result, top)
