"""`attnviz show TEXT`: attention of one sentence as terminal tables, JSON or NPZ."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import AttnvizError
from ..sizes import Outputs
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
# Texts up to this many bytes (at most about as many tokens) skip the size check before loading:
# reading a checkpoint's tokenizer twice costs more than a sentence's maps (SmolLM2's: 1-3 s).
SHORT_TEXT_BYTES = 1024


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    npz = "npz"


class Precision(str, enum.Enum):
    float32 = "float32"
    float16 = "float16"


@handles_errors
@model_flags()
@output_flags("--output / --png / --html", truncate="Cut text longer than the model's maximum instead of refusing it.")
@with_image_flags
def show(
    text: Annotated[str, typer.Argument(help="The sentence to visualise.", show_default=False)],
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
    digits: Annotated[
        Optional[int],
        typer.Option(
            "--digits",
            min=0,
            max=8,
            help='Round JSON weights to this many decimals (the JSON says "digits"): a smaller file for long texts.',
        ),
    ] = None,
    precision: Annotated[
        Precision,
        typer.Option(
            "--precision", help="NPZ weights as float32 (exact) or float16 (3 significant digits, half the size)."
        ),
    ] = Precision.float32,
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
    from ..analysis.focus import find_pronoun, resolve_focus, top_targets
    from ..result import parse_indices
    from ..io import check_distinct, check_writable
    from ..pipeline import run_attention

    output, overwrite, truncate = out.output, out.overwrite, out.truncate
    if fmt is Format.npz and out.to_stdout:
        raise AttnvizError("--format npz is binary: give a file with --output FILE.npz, not -")
    if fmt is Format.npz and output is None:
        raise AttnvizError("--format npz writes a file: give it with --output FILE.npz")
    # Bad arguments fail here, before the model loads (torch's import alone takes ~2 s).
    check_not_dash("--png", png)
    check_not_dash("--html", html)
    check_distinct({"--output": output, "--png": png, "--html": html})
    out.check()
    if png is not None:
        from ..render.image import format_for

        format_for(png)
        check_writable(png, overwrite)
        image_opts = image.options()
    if html is not None:
        check_writable(html, overwrite)
    if not text.strip():
        raise AttnvizError("the text is empty; give a sentence to visualise")
    if digits is not None and fmt is not Format.json:
        raise AttnvizError("--digits rounds JSON weights: use it with --format json")
    if precision is Precision.float16 and fmt is not Format.npz:
        raise AttnvizError("--precision sets the NPZ weights' type: use it with --format npz")
    # Long texts: only the maps shown are kept (the focus summary reads one row per head), so
    # what is kept is known before the model loads, and a run that cannot fit is refused now.
    streamed = view is View.attention and not words and candidates is None and html is None
    tables_only = fmt is Format.table and png is None
    outputs = Outputs(
        json=fmt is Format.json,
        digits=digits,
        npz=fmt is Format.npz,
        precision=precision.value,
        html=html is not None,
        image=png is not None,
    )
    _check_plan(models, text, layer, head, truncate, streamed, tables_only, outputs, output)

    # Only the layers up to the last one asked for are loaded (-l 0 reads layer 0's weights only);
    # the focus summary (no --layer) and --resolve look at every layer.
    loaded = models.build(last_layer=None if resolve else _last_layer(layer))
    config = loaded.config
    layers = parse_indices(layer, config.num_layers, "layer")
    heads = parse_indices(head, config.num_heads, "head")
    if streamed:
        # The maps drawn or written, and (for the summary under the tables) the focus token's row
        # of every head of the layers it covers.
        maps = _table_layers(layer, head, layers, heads, config) if tables_only else layers

        def focus_of(skeleton) -> int | None:
            found = resolve_focus(skeleton, focus) if focus is not None else find_pronoun(skeleton)
            return None if found is None else found.index

        result = run_attention(
            loaded,
            text,
            layers=maps,
            heads=heads,
            truncate=truncate,
            focus=focus_of if tables_only else None,
            focus_layers=layers if layer is not None else None,
        )
    else:
        # Rollout mixes the chosen heads of every layer into one map per layer (head index -1).
        result = run_attention(
            loaded, text, truncate=truncate, view=view.value, heads=heads if view is View.rollout else None
        )
    if view is View.rollout:
        heads = list(result.heads)
    if exclude_sinks:
        result = result.without_sinks()
    token_result = result
    if words:
        from ..analysis.words import to_words

        result = to_words(result)
    focus_at = resolve_focus(result, focus) if focus is not None else None
    scores = None
    if candidates is not None:
        from ..analysis.candidates import focus_span, parse_candidates, resolve_candidates, score_candidates

        phrases = parse_candidates(candidates)
        if focus_at is None:
            focus_at = find_pronoun(result)
            if focus_at is None:
                raise AttnvizError("--candidates needs a focus word: give it with --focus (e.g. --focus it)")
        span = focus_span(result, focus_at.index)
        scores = score_candidates(
            result.select(layers if layer is not None else None, heads if head is not None else None),
            span,
            resolve_candidates(result, phrases, span),
        )

    if html is not None:
        # Like --png, the page replaces the terminal tables.
        typer.echo(
            _write_html(
                html,
                loaded,
                token_result,
                layers if layer is not None else None,
                heads if head is not None else None,
                truncate,
                focus,
                candidates,
                words,
                overwrite,
                _known_pronoun_heads(loaded, resolve),
            ),
            err=True,
        )
        if png is None and fmt is Format.table and output is None:
            return

    if png is not None:
        # The image replaces the terminal tables; --format json/npz and --output still work alongside.
        message = _write_image(
            png, result.select(layers, heads), focus_at.index if focus_at is not None else None, image_opts, overwrite
        )
        typer.echo(message, err=True)
        if fmt is Format.table and output is None:
            return

    if fmt is not Format.table:
        from ..stream_out import write_json, write_npz

        # Written as produced (stream_out.py): no whole-output string in memory.
        selected = result.select(layers, heads)
        if fmt is Format.json:
            extra = {"candidates": scores.to_dict()} if scores is not None else None
            write_json(selected, output, overwrite, digits, extra, echo=lambda piece: typer.echo(piece, nl=False))
        else:
            write_npz(selected, output, overwrite, precision.value)
        return

    if _table_layers(layer, head, layers, heads, config) != layers:
        layers = [0]
        result.notes.append(
            f"Tables show layer 0 of {config.num_layers}; choose others with --layer/--head (e.g. --layer all)."
        )
    if focus_at is None:
        focus_at = find_pronoun(result)
    marks = _pronoun_marks(loaded, result, focus_at, resolve, models.model) if focus_at is not None else {}
    # The focus summary is one line per head: it covers the whole model unless a selection was given.
    summary = result.select(layers if layer is not None else None, heads if head is not None else None)

    from ..render.terminal import render_candidates, render_focus, render_header, render_heads

    with out.console() as console:
        render_header(console, result)
        render_heads(console, result.select(layers, heads))
        if focus_at is not None:
            render_focus(console, result, focus_at, top_targets(summary, focus_at.index, top), marks)
        if scores is not None:
            render_candidates(console, result, scores)


def _table_layers(layer: str | None, head: str | None, layers: list[int], heads: list[int], config) -> list[int]:
    """The layers the terminal tables show: layer 0 alone for a big model when nothing was chosen."""
    if layer is None and head is None and config.num_layers * len(heads) > MAX_DEFAULT_TABLES:
        return [0]
    return layers


def _check_plan(models, text, layer, head, truncate, streamed, tables_only, outputs, output) -> None:
    """Refuse, before the model loads, a run whose kept maps and outputs would not fit in memory
    (or on the output's disk): the config and tokenizer are read without the weights."""
    from ..checkpoints import peek_model
    from ..result import parse_indices
    from ..sizes import check_plan

    if models.model != "random" and len(text.encode("utf-8", "replace")) <= SHORT_TEXT_BYTES:
        return  # a sentence: not worth reading a tokenizer twice (the pipeline checks before the pass)
    config = models.shape.config() if models.model == "random" else None
    peeked = peek_model(models.model, config=config, tokenizer=str(models.tokenizer) if models.tokenizer else None)
    if peeked is None:
        return  # the load says what is wrong; the pipeline checks the maps again before the pass
    config, tokenizer = peeked
    from ..sizes import memory_limit, model_bytes

    if model_bytes(config) > memory_limit()[0]:
        return  # the model alone does not fit: the loader refuses it, naming the flag or key
    from ..io import check_text

    tokens = len(tokenizer.encode(check_text(text, "the text"), max_len=config.max_len, truncate=truncate).ids)
    layers = parse_indices(layer, config.num_layers, "layer")
    heads = parse_indices(head, config.num_heads, "head")
    if streamed:
        kept = _table_layers(layer, head, layers, heads, config) if tables_only else layers
        count, per = len(kept), len(heads)
    else:
        count, per = config.num_layers, config.num_heads  # every map, for the views that need them
    written = outputs
    if tables_only:
        written = Outputs(image=outputs.image)
    folder = None if output is None else (output.parent if str(output.parent) else Path("."))
    check_plan(config, tokens, count, per, written, folder)


def _last_layer(spec: str | None) -> int | None:
    """The highest layer index in a --layer selection ("0,2" -> 2, "1-3" -> 3); None for all.
    A malformed selection gives None here and its own error once the model's layers are known."""
    import re

    from ..result import ascii_index

    if spec is None or not re.fullmatch(r"[0-9\s,-]+", spec):  # ASCII digits only, as parse_indices
        return None
    numbers = [ascii_index(n) for n in re.findall(r"[0-9]+", spec)]
    return max(numbers) if numbers else None


def _write_image(path: Path, result, focus: int | None, options, overwrite: bool) -> str:
    """Draw `result` (already narrowed to the chosen layers and heads) into `path`; the format
    comes from the extension. Returns a one-line description for the terminal."""
    from ..io import atomic_write
    from ..render.image import choose_layout, format_for, render_image

    fmt = format_for(path)
    layout = choose_layout(result, focus)
    drawn = render_image(result, layout, options, fmt=fmt, focus=focus)
    atomic_write(path, drawn.data, overwrite)
    notes = "".join(f"; note: {note}" for note in drawn.notes)
    return f"wrote {path} ({layout} layout){notes}"


def _write_html(
    path: Path,
    loaded,
    result,
    layers: list[int] | None,
    heads: list[int] | None,
    truncate: bool,
    focus: str | None,
    candidates: str | None,
    words: bool,
    overwrite: bool,
    pronouns=None,
) -> str:
    """The interactive page of `result` (token level) into `path`; another --view comes with the
    attention it derives from, so the page can switch between them. Returns a line for the terminal."""
    from ..analysis.candidates import parse_candidates
    from ..io import atomic_write
    from ..pipeline import run_attention
    from ..render.html import render_html

    results = {}
    if result.view != "attention":
        results["attention"] = run_attention(loaded, result.text, layers=layers, heads=heads, truncate=truncate)
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
    atomic_write(path, page, overwrite)
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
