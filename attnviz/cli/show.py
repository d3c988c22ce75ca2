"""`attnviz show TEXT`: attention of one sentence as terminal tables, JSON or NPZ."""

from __future__ import annotations

import enum
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..text import json_text
from ..errors import AttnvizError
from .common import (
    HeadOpt,
    ImageFlags,
    check_not_dash,
    LayerOpt,
    ModelFlags,
    OutputFlags,
    View,
    handles_errors,
    model_flags,
    output_flags,
    with_image_flags,
)

# Above this many heads in total, the tables show one layer unless --layer/--head say otherwise
# (the focus summary, one line per head, still covers the whole model).
MAX_DEFAULT_TABLES = 8


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    npz = "npz"


@handles_errors
@model_flags()
@output_flags("--output / --png / --html", truncate="Cut text longer than the model's maximum instead of refusing it.")
@with_image_flags
def show(
    text: Annotated[
        str, typer.Argument(help="The sentence to visualise; - reads it from standard input.", show_default=False)
    ],
    layer: LayerOpt = None,
    head: HeadOpt = None,
    focus: Annotated[
        Optional[str],
        typer.Option(
            "--focus", "-f", help="A word of the sentence (or a token index): list where it attends in every head."
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, max=10, help="How many targets the focus summary lists per head.")
    ] = 3,
    words: Annotated[
        bool,
        typer.Option(
            "--words",
            help="Merge subword pieces into words: attention to a word is the sum over its pieces, from a word the mean (Clark et al. 2019).",
        ),
    ] = False,
    view: Annotated[
        View,
        typer.Option(
            "--view",
            help="attention: the weights; rollout: attention flow through the layers below (Abnar & Zuidema 2020), one map per layer; norm: weights times the norm of the value they carry (Kobayashi et al. 2020).",
        ),
    ] = View.attention,
    candidates: Annotated[
        Optional[str],
        typer.Option(
            "--candidates",
            "-c",
            help='Comma-separated words the focus word may refer to, e.g. "animal,street": per head, the weight from the focus to each and the winner.',
        ),
    ] = None,
    exclude_sinks: Annotated[
        bool,
        typer.Option(
            "--exclude-sinks",
            help="Leave the attention sinks out of the focus summary's ranking, --candidates and colour scales: special tokens ([CLS], [SEP]) and, in a causal model, the first token. Cells still show the real weights; the header says it.",
        ),
    ] = False,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", help="table: rich tables; json: an object on stdout or --output; npz: arrays in --output."
        ),
    ] = Format.table,
    resolve: Annotated[
        bool,
        typer.Option(
            "--resolve",
            help="Find the model's pronoun heads now (the agreement probe set; cached per model) and mark them in the focus summary.",
        ),
    ] = False,
    png: Annotated[
        Optional[Path],
        typer.Option(
            "--png",
            help="Draw a heatmap into this file instead of the terminal tables (.png, .svg or .pdf by extension): one head, one layer's heads, the whole model, or with --focus where the focus word attends in every head.",
        ),
    ] = None,
    html: Annotated[
        Optional[Path],
        typer.Option(
            "--html",
            help="Write an interactive page into this file instead of the terminal tables: head, matrix and model views, the focus word, word level and sinks toggles; one offline file for browsers and notebooks.",
        ),
    ] = None,
    image: ImageFlags = ImageFlags(),
    out: OutputFlags = OutputFlags(),
    models: ModelFlags = ModelFlags(),
) -> None:
    """Show how every token attends to every other token, per head.

    Example: attnviz show "The animal didn't cross the street because it was too tired." --focus it
    """
    from ..analysis.focus import resolve_focus
    from ..selection import last_index

    if text == "-":  # standard input, as for export's `-` (a hyphen alone is no sentence to show)
        from ..reading import sentence_from_stdin

        text = sentence_from_stdin()
    _check_outputs(fmt, out, png, html)  # bad arguments fail before the model loads (torch alone takes ~2 s)
    image_opts = image.options() if png is not None else None
    if not text.strip():
        raise AttnvizError("the text is empty; give a sentence to visualise")

    # Only the layers up to the last one asked for are loaded (-l 0 reads layer 0's weights only);
    # the focus summary (no --layer) and --resolve look at every layer.
    loaded = models.build(last_layer=None if resolve else last_index(layer))
    shown = _attention(loaded, text, layer, head, view, words, exclude_sinks, out.truncate)
    if focus is not None:
        shown.focus_at = resolve_focus(shown.result, focus)
    if candidates is not None:
        _score_candidates(shown, candidates)

    # --html and --png replace the terminal tables; --format json/npz and --output still work alongside.
    if html is not None:
        pronouns = _known_pronoun_heads(loaded, resolve)
        typer.echo(_write_html(html, shown, out, focus, candidates, words, pronouns), err=True)
    if png is not None:
        focus_index = shown.focus_at.index if shown.focus_at is not None else None
        typer.echo(_write_image(png, shown.selected(), focus_index, image_opts, out.overwrite), err=True)
    if fmt is not Format.table:
        _write_data(shown, fmt, out)
    elif out.output is not None or (html is None and png is None):
        _render_tables(shown, out, top, resolve, models.model)


@dataclass
class _Shown:
    """What show computed: the result (word level with --words), the layers and heads asked for."""

    loaded: object
    result: object  # AttentionResult, at word level with --words
    token_result: object  # the same at token level (the HTML page switches levels itself)
    layers: list[int]
    heads: list[int]
    layer_given: bool
    head_given: bool
    focus_at: object = None  # analysis.focus.Focus
    scores: object = None  # analysis.candidates scores with --candidates

    def selected(self):
        """The layers and heads asked for (all when not given)."""
        return self.result.select(self.layers, self.heads)

    def summarised(self):
        """What the focus summary and candidates cover: the whole model unless a selection was given."""
        return self.result.select(self.layers if self.layer_given else None, self.heads if self.head_given else None)


def _check_outputs(fmt: Format, out: OutputFlags, png: Path | None, html: Path | None) -> None:
    from ..files import check_distinct, check_writable

    if fmt is Format.npz and out.to_stdout:
        raise AttnvizError("--format npz is binary: give a file with --output FILE.npz, not -")
    if fmt is Format.npz and out.output is None:
        raise AttnvizError("--format npz writes a file: give it with --output FILE.npz")
    check_not_dash("--png", png)
    check_not_dash("--html", html)
    check_distinct({"--output": out.output, "--png": png, "--html": html})
    out.check()
    if png is not None:
        from ..render.image import format_for

        format_for(png)
        check_writable(png, out.overwrite)
    if html is not None:
        check_writable(html, out.overwrite)


def _attention(loaded, text: str, layer, head, view: View, words: bool, exclude_sinks: bool, truncate: bool) -> _Shown:
    from ..pipeline import run_attention
    from ..selection import parse_indices

    config = loaded.config
    layers = parse_indices(layer, config.num_layers, "layer")
    heads = parse_indices(head, config.num_heads, "head")
    # Rollout mixes the chosen heads of every layer into one map per layer (views.ROLLOUT_HEAD).
    rollout = view is View.rollout
    result = run_attention(loaded, text, truncate=truncate, view=view.value, heads=heads if rollout else None)
    if rollout:
        heads = list(result.heads)
    if exclude_sinks:
        result = result.without_sinks()
    token_result = result
    if words:
        from ..analysis.words import to_words

        result = to_words(result)
    return _Shown(loaded, result, token_result, layers, heads, layer is not None, head is not None)


def _score_candidates(shown: _Shown, candidates: str) -> None:
    """--candidates: the weight from the focus word (default: the first pronoun) to each candidate."""
    from ..analysis.candidates import focus_span, parse_candidates, resolve_candidates, score_candidates
    from ..analysis.focus import find_pronoun

    phrases = parse_candidates(candidates)
    if shown.focus_at is None:
        shown.focus_at = find_pronoun(shown.result)
        if shown.focus_at is None:
            raise AttnvizError("--candidates needs a focus word: give it with --focus (e.g. --focus it)")
    span = focus_span(shown.result, shown.focus_at.index)
    shown.scores = score_candidates(shown.summarised(), span, resolve_candidates(shown.result, phrases, span))


def _write_data(shown: _Shown, fmt: Format, out: OutputFlags) -> None:
    """--format json (standard output or --output) or npz (--output)."""
    selected = shown.selected()
    if fmt is Format.json:
        data = selected.to_dict()
        if shown.scores is not None:
            data["candidates"] = shown.scores.to_dict()
        out.emit(json_text(data))
        return
    import numpy as np

    from ..files import atomic_write

    buffer = io.BytesIO()
    np.savez(buffer, **selected.npz_arrays())
    atomic_write(out.output, buffer.getvalue(), out.overwrite)


def _render_tables(shown: _Shown, out: OutputFlags, top: int, resolve: bool, spec: str) -> None:
    """The terminal tables: header, heads, the focus summary, the candidates."""
    from ..analysis.focus import find_pronoun, top_targets
    from ..render.terminal import render_candidates, render_focus, render_header, render_heads

    result, config = shown.result, shown.loaded.config
    layers = shown.layers
    if not shown.layer_given and not shown.head_given and config.num_layers * len(shown.heads) > MAX_DEFAULT_TABLES:
        layers = [0]
        result.notes.append(
            f"Tables show layer 0 of {config.num_layers}; choose others with --layer/--head (e.g. --layer all)."
        )
    focus_at = shown.focus_at if shown.focus_at is not None else find_pronoun(result)
    marks = _pronoun_marks(shown.loaded, result, focus_at, resolve, spec) if focus_at is not None else {}
    with out.console() as console:
        render_header(console, result)
        render_heads(console, result.select(layers, shown.heads))
        if focus_at is not None:
            render_focus(console, result, focus_at, top_targets(shown.summarised(), focus_at.index, top), marks)
        if shown.scores is not None:
            render_candidates(console, result, shown.scores)


def _write_image(path: Path, result, focus: int | None, options, overwrite: bool) -> str:
    """Draw `result` (already narrowed to the chosen layers and heads) into `path`; the format
    comes from the extension. Returns a one-line description for the terminal."""
    from ..files import atomic_write
    from ..render.image import choose_layout, format_for, render_image

    fmt = format_for(path)
    layout = choose_layout(result, focus)
    drawn = render_image(result, layout, options, fmt=fmt, focus=focus)
    atomic_write(path, drawn.data, overwrite)
    notes = "".join(f"; note: {note}" for note in drawn.notes)
    return f"wrote {path} ({layout} layout){notes}"


def _write_html(
    path: Path,
    shown: _Shown,
    out: OutputFlags,
    focus: str | None,
    candidates: str | None,
    words: bool,
    pronouns=None,
) -> str:
    """The interactive page of `result` (token level) into `path`; another --view comes with the
    attention it derives from, so the page can switch between them. Returns a line for the terminal."""
    from ..analysis.candidates import parse_candidates
    from ..files import atomic_write
    from ..pipeline import run_attention
    from ..render.html import render_html

    result = shown.token_result
    layers = shown.layers if shown.layer_given else None
    heads = shown.heads if shown.head_given else None
    results = {}
    if result.view != "attention":
        results["attention"] = run_attention(
            shown.loaded, result.text, layers=layers, heads=heads, truncate=out.truncate
        )
    # Rollout already mixed the chosen heads into one map per layer (head -1).
    results[result.view] = result.select(layers, None if result.view == "rollout" else heads)
    known = (
        None
        if pronouns is None
        else {
            "probe_set": pronouns.probe_set,
            "heads": [
                {"layer": h["layer"], "head": h["head"], "accuracy": h["accuracy"]} for h in pronouns.resolving()
            ],
        }
    )
    page = render_html(
        results,
        focus=focus,
        candidates=parse_candidates(candidates) if candidates else None,
        level="words" if words else None,
        pronoun_heads=known,
    )
    atomic_write(path, page, out.overwrite)
    bits = 16 if '"bits":16' in page else 8
    return f"wrote {path} (interactive HTML, {len(page.encode('utf-8')) // 1024} KB, weights at {bits} bits)"


def _pronoun_marks(loaded, result, focus_at, resolve: bool, spec: str) -> dict:
    """{(layer, head): "★ 94%"} for the heads known to resolve pronouns when the focus is an English pronoun
    (from the cache that `inspect`/`probe coref` fill, or computed now with --resolve). When they
    are not known, the result gets a note saying how to find them."""
    from ..analysis.focus import ENGLISH_PRONOUNS

    if focus_at.label.casefold() not in ENGLISH_PRONOUNS:  # the probe set is English
        return {}
    heads = _known_pronoun_heads(loaded, resolve, result.notes)
    if heads is None and loaded.built_layers < loaded.config.num_layers:
        # Matched through the files' remembered digest only (pronoun_heads.fingerprint), which a
        # whole load of the same files writes.
        loaded_layers = f"layers 0-{loaded.built_layers - 1}" if loaded.built_layers > 1 else "layer 0"
        result.notes.append(
            f"Pronoun heads are not marked: --layer loaded {loaded_layers} only and this "
            f"model's are not known yet (`attnviz inspect {spec}` finds them once)."
        )
        return {}
    if heads is None:
        result.notes.append(
            f"Pronoun heads of this model are not known yet: `attnviz inspect {spec}` (or "
            "`show --resolve`) finds them once and remembers them."
        )
        return {}
    found = heads.resolving()
    if not found:
        result.notes.append(f"No head of this model resolves pronouns on the {heads.probe_set} probe set.")
    return {(h["layer"], h["head"]): f"★ {100 * h['accuracy']:.0f}%" for h in found}


def _known_pronoun_heads(loaded, resolve: bool, notes: list[str] | None = None):
    """The model's pronoun heads on the agreement set: cached, or found now with --resolve; None
    when unknown (a corrupt cache entry adds its note to `notes`)."""
    from ..pronoun_heads import DEFAULT_SET, cached, find

    heads = find(loaded, DEFAULT_SET)[0] if resolve else cached(loaded, DEFAULT_SET)
    if heads is not None and notes is not None:
        notes.extend(heads.notes)
    return heads if heads is not None and heads.heads else None
