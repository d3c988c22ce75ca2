"""`attnviz show TEXT`: attention of one sentence as terminal tables, JSON or NPZ."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import AttnvizError
from ..sizes import Outputs
from .common import (
    candidates_option,
    focus_option,
    top_option,
    words_option,
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
from .show_seq2seq import Attention, check_seq2seq_flags, show_seq2seq

# Above this many heads in total, the tables show one layer unless --layer/--head say otherwise
# (the focus summary, one line per head, still covers the whole model).
MAX_DEFAULT_TABLES = 8
# Texts up to this many bytes (at most about as many tokens) skip the size check before loading:
# reading a checkpoint's tokenizer twice costs more than a sentence's maps (SmolLM2's: 1-3 s).
SHORT_TEXT_BYTES = 1024


class Pooling(str, enum.Enum):
    max = "max"
    mean = "mean"


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
    text: Annotated[
        str, typer.Argument(help="The sentence to visualise; - reads it from standard input.", show_default=False)
    ],
    layer: LayerOpt = None,
    head: HeadOpt = None,
    focus: focus_option(
        "A word of the sentence (or a token index): list where it attends in every head. With --target: a word of the rows' text (the target for cross and decoder attention, the source for encoder)."
    ) = None,
    top: top_option("How many targets the focus summary lists per head.", 10) = 3,
    words: words_option(
        "Merge subword pieces into words: attention to a word is the sum over its pieces, from a word the mean (Clark et al. 2019)."
    ) = False,
    view: Annotated[
        View,
        typer.Option(
            "--view",
            help="attention: the weights; rollout: attention flow through the layers below (Abnar & Zuidema 2020), one map per layer; norm: weights times the norm of the value they carry (Kobayashi et al. 2020).",
        ),
    ] = View.attention,
    per_head: Annotated[
        bool,
        typer.Option(
            "--per-head",
            help="With --view value-zeroing: zero a token's value in one head at a time (a map per head) instead of in all heads.",
        ),
    ] = False,
    candidates: candidates_option(
        'Comma-separated words the focus word may refer to, e.g. "animal,street": per head, the weight from the focus to each and the winner.'
    ) = None,
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
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Print every head's full table even when the text is too long for the terminal (by default a long text gets a pooled overview).",
        ),
    ] = False,
    pool: Annotated[
        Pooling,
        typer.Option(
            "--pool", help="How the overview of a long text pools each block of cells: its max or mean weight."
        ),
    ] = Pooling.max,
    target: Annotated[
        Optional[str],
        typer.Option(
            "--target",
            help="Encoder-decoder models (T5, BART; through transformers): the decoder's text, teacher-forced; TEXT is the source. --html holds encoder, decoder and cross-attention with a switch.",
        ),
    ] = None,
    attention: Annotated[
        Optional[Attention],
        typer.Option(
            "--attention",
            help="Encoder-decoder models: encoder self-attention, decoder self-attention (causal) or cross-attention (rows: target tokens, columns: source tokens) [default: cross with --target, else encoder].",
            show_default=False,
        ),
    ] = None,
    max_new_tokens: Annotated[
        int,
        typer.Option(
            "--max-new-tokens", min=1, help="Encoder-decoder models without --target: the longest greedy output."
        ),
    ] = 20,
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
    _check_outputs(fmt, out, png, html, digits, precision)  # before the model loads (torch alone takes ~2 s)
    image.require(png)
    if per_head and view.value != "value-zeroing":
        raise AttnvizError("--per-head goes with --view value-zeroing")
    image_opts = image.options() if png is not None else None
    seq2seq = target is not None or (attention is not None and attention is not Attention.encoder)
    if seq2seq:  # cli/show_seq2seq.py: what the decoder's attention cannot show, refused before the load
        check_seq2seq_flags(words, candidates, view.value, resolve)
    if not text.strip():
        raise AttnvizError("the text is empty; give a sentence to visualise")
    # Long texts: what is kept is known before the model loads; a run that cannot fit is refused now.
    plan = _Plan.of(view, words, candidates, fmt, digits, precision, png, html, out, full, pool.value, exclude_sinks)
    _check_plan(models, text, layer, head, out, plan)

    # Only the layers up to the last one asked for are loaded (-l 0 reads layer 0's weights only);
    # the focus summary (no --layer) and --resolve look at every layer.
    loaded = models.build(last_layer=None if resolve else last_index(layer))
    kind = attention.value if attention is not None else ("cross" if target is not None else "encoder")
    if seq2seq:  # cli/show_seq2seq.py: the decoder's attention
        return show_seq2seq(
            loaded,
            text,
            target,
            kind,
            layer,
            head,
            fmt.value,
            out,
            png,
            html,
            max_new_tokens,
            focus=focus,
            top=top,
            chosen=attention is not None,
            image_opts=image_opts,
            exclude_sinks=exclude_sinks,
            digits=digits,
            precision=precision.value,
        )
    shown = _attention(loaded, text, layer, head, view, words, exclude_sinks, out.truncate, plan, focus, per_head)
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
        _write_data(shown, fmt, out, digits, precision)
    elif out.output is not None or (html is None and png is None):
        _render_tables(shown, out, top, resolve, models.model, full, pool.value)


@dataclass
class _Plan:
    """What show will keep and write, known before the model loads."""

    streamed: bool  # the attention view alone: keep only the maps shown and the focus rows
    tables_only: bool  # terminal tables, no --png or --format json/npz
    outputs: Outputs
    tables: bool = False  # the terminal tables (or overview) are printed
    html: bool = False  # --html: the page holds the chosen layers (layer 0 of a long text by default)
    data: bool = False  # --format json/npz or --png: every chosen layer's maps
    # (width, colour, --pool, --exclude-sinks) when a long text's overview is pooled while streaming
    overview: tuple | None = None

    @classmethod
    def of(
        cls,
        view,
        words: bool,
        candidates,
        fmt,
        digits,
        precision,
        png,
        html,
        out=None,
        full=True,
        how="max",
        sinks=False,
    ) -> "_Plan":
        """Only the maps shown are kept (the focus summary reads one row per head) unless a view,
        the word level or --candidates needs every map."""
        streamed = view is View.attention and not words and candidates is None
        tables_only = fmt is Format.table and png is None
        overview = None
        if streamed and tables_only and html is None and not full and out is not None:
            # The overview of a long text is drawn from grids pooled while the maps stream: none kept.
            from ..render.overview import colourful

            console = out.probe_console()
            overview = (console.width, colourful(console), how, sinks)
        return cls(
            streamed=streamed,
            tables_only=tables_only,
            outputs=Outputs(
                json=fmt is Format.json,
                digits=digits,
                npz=fmt is Format.npz,
                precision=precision.value,
                html=html is not None,
                image=png is not None,
            ),
            tables=fmt is Format.table and (out is None or out.output is not None or (html is None and png is None)),
            html=html is not None,
            data=fmt is not Format.table or png is not None,
            overview=overview,
        )

    def pools(self, tokens: int, native: bool = True) -> bool:
        """Whether the overview of a text of `tokens` tokens is pooled while streaming (no maps kept):
        the native engine's blocks only (transformers returns whole maps, pooled after)."""
        from ..render.overview import needs_overview

        return native and self.overview is not None and needs_overview(tokens, self.overview[0])

    def kept_layers(
        self, layers: list[int], heads: list[int], layer_given: bool, chosen: bool, tokens: int, config, native=True
    ):
        """The layers whose full maps a streamed run keeps: those the tables draw, the HTML page
        holds and the files or image write; none when the overview is pooled while streaming."""
        if self.pools(tokens, native):
            return []
        kept: set[int] = set()
        if self.tables:
            kept |= set(_table_layers(chosen, layers, heads, config))
        if self.html:
            kept |= set(_page_layers(layers, layer_given, tokens)[0])
        if self.data or not (self.tables or self.html):
            kept |= set(layers)
        return sorted(kept)

    def pool_plan(self, layers: list[int], heads: list[int], chosen: bool, config, native: bool = True):
        """A function of the tokenized text giving the streamed_pooling.PoolPlan of the overview
        (None: the text fits tables, or the overview is not pooled while streaming)."""
        if self.overview is None or not native:
            return None
        from ..analysis.streamed_pooling import PoolPlan
        from ..render.overview import overview_grid

        width, colour, how, sinks = self.overview
        shown = _table_layers(chosen, layers, heads, config)

        def plan(skeleton):
            T = len(skeleton.tokens)
            if not self.pools(T):
                return None
            rows, cols = overview_grid(T, width, len(shown) * len(heads), colour)
            excluded = tuple(skeleton.sink_indices()) if sinks else ()
            return PoolPlan(tuple(shown), tuple(heads), rows, cols, how, excluded)

        return plan


def _page_layers(layers: list[int], layer_given: bool, tokens: int) -> tuple[list[int], bool]:
    """The layers the HTML page holds, and whether they were cut to the first: a long text's page
    holds layer 0 unless --layer says otherwise (its maps are megabytes per layer)."""
    from ..render.html import LONG_FROM

    if not layer_given and tokens > LONG_FROM and len(layers) > 1:
        return [layers[0]], True
    return list(layers), False


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


def _check_outputs(fmt: Format, out: OutputFlags, png: Path | None, html: Path | None, digits, precision) -> None:
    from ..files import check_distinct, check_writable

    if digits is not None and fmt is not Format.json:
        raise AttnvizError("--digits rounds JSON weights: use it with --format json")
    if precision is Precision.float16 and fmt is not Format.npz:
        raise AttnvizError("--precision sets the NPZ weights' type: use it with --format npz")

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


def _attention(
    loaded,
    text: str,
    layer,
    head,
    view: View,
    words: bool,
    exclude_sinks: bool,
    truncate: bool,
    plan: _Plan,
    focus,
    per_head: bool = False,
) -> _Shown:
    from ..analysis.focus import find_pronoun, resolve_focus
    from ..analysis.views import ROLLOUT_HEAD, VALUE_ZEROING_HEADS
    from ..engines import engine_of
    from ..pipeline import run_attention, token_count
    from ..selection import parse_indices

    config = loaded.config
    layers = parse_indices(layer, config.num_layers, "layer")
    heads = parse_indices(head, config.num_heads, "head")
    rollout = view is View.rollout
    if plan.streamed:
        # The maps drawn or written, and (for the summary under the tables) the focus token's row
        # of every head of the layers it covers. A long text's overview is pooled while the maps
        # stream (plan.pool_plan): its maps are not kept. The HTML page's layers depend on the
        # text's length, counted first.
        chosen = layer is not None or head is not None
        native = engine_of(loaded) == "native"
        tokens = token_count(loaded, text, truncate) if plan.html else 0
        maps = plan.kept_layers(layers, heads, layer is not None, chosen, tokens, config, native)

        def focus_of(skeleton) -> int | None:
            found = resolve_focus(skeleton, focus) if focus is not None else find_pronoun(skeleton)
            return None if found is None else found.index

        result = run_attention(
            loaded,
            text,
            layers=maps,
            heads=heads,
            truncate=truncate,
            focus=focus_of if plan.tables and (plan.tables_only or plan.html) else None,
            focus_layers=layers if layer is not None else None,
            pool=plan.pool_plan(layers, heads, chosen, config, native),
        )
    else:
        # Rollout mixes the chosen heads of every layer into one map per layer (views.ROLLOUT_HEAD).
        # --view value-zeroing --per-head: one value-zeroing map per head.
        view_name = VALUE_ZEROING_HEADS if per_head else view.value
        result = run_attention(loaded, text, truncate=truncate, view=view_name, heads=heads if rollout else None)
    if rollout or result.heads == [ROLLOUT_HEAD]:
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


def _write_data(shown: _Shown, fmt: Format, out: OutputFlags, digits: int | None, precision: Precision) -> None:
    """--format json (standard output or --output) or npz (--output), written as produced
    (stream_out.py): no whole-output string in memory."""
    from ..files import write_stdout_bytes
    from ..stream_out import write_json, write_npz

    selected = shown.selected()
    if fmt is Format.json:
        extra = {"candidates": shown.scores.to_dict()} if shown.scores is not None else None
        write_json(
            selected,
            out.output,
            out.overwrite,
            digits,
            extra,
            echo=lambda piece: write_stdout_bytes(piece.encode("utf-8", "surrogateescape")),
        )
        return
    write_npz(selected, out.output, out.overwrite, precision.value)


def _render_tables(
    shown: _Shown, out: OutputFlags, top: int, resolve: bool, spec: str, full: bool = False, pool: str = "max"
) -> None:
    """The terminal tables (or, for a long text, the pooled overview): header, heads, the focus
    summary, the candidates."""
    from ..analysis.focus import find_pronoun, top_targets
    from ..render.terminal import render_candidates, render_focus, render_focus_answer, render_header, render_heads

    result, config = shown.result, shown.loaded.config
    layers = shown.layers
    if _table_layers(shown.layer_given or shown.head_given, layers, shown.heads, config) != layers:
        layers = [0]
        result.notes.append(
            f"Tables show layer 0 of {config.num_layers}; choose others with --layer/--head (e.g. --layer all)."
        )
    focus_at = shown.focus_at if shown.focus_at is not None else find_pronoun(result)
    marks = _pronoun_marks(shown.loaded, result, focus_at, resolve, spec) if focus_at is not None else {}
    per_head = top_targets(shown.summarised(), focus_at.index, top) if focus_at is not None else []
    with out.console() as console:
        # A text too long for tables gets the pooled overview (render/overview.py) unless --full.
        from ..render.overview import HEADER_TOKEN_LINES, needs_overview, render_overview

        # result.pooled: the overview's grids, pooled while the maps streamed (no maps kept).
        pooled = result.pooled is not None
        overview = pooled or (not full and needs_overview(len(result.tokens), console.width))
        render_header(console, result, HEADER_TOKEN_LINES if overview else None)
        if focus_at is not None:
            render_focus_answer(console, result, focus_at, per_head)
        if overview:
            render_overview(console, result if pooled else result.select(layers, shown.heads), focus_at, pool)
        else:
            render_heads(console, result.select(layers, shown.heads))
        if focus_at is not None:
            render_focus(console, result, focus_at, per_head, marks)
        if shown.scores is not None:
            render_candidates(console, result, shown.scores)


def _table_layers(chosen: bool, layers: list[int], heads: list[int], config) -> list[int]:
    """The layers the terminal tables show: layer 0 alone for a big model when no --layer or
    --head was `chosen`."""
    if not chosen and config.num_layers * len(heads) > MAX_DEFAULT_TABLES:
        return [0]
    return layers


def _check_plan(models: ModelFlags, text: str, layer, head, out: OutputFlags, plan: _Plan) -> None:
    """Refuse, before the model loads, a run whose kept maps and outputs would not fit in memory
    (or on the output's disk): the config and tokenizer are read without the weights."""
    from ..checkpoints import peek_model
    from ..selection import parse_indices
    from ..sizes import check_plan

    if models.model != "random" and len(text.encode("utf-8", "replace")) <= SHORT_TEXT_BYTES:
        return  # a sentence: not worth reading a tokenizer twice (the pipeline checks before the pass)
    config = models.shape.config() if models.model == "random" else None
    peeked = peek_model(models.model, config=config, tokenizer=str(models.tokenizer) if models.tokenizer else None)
    if peeked is None:
        return  # the load says what is wrong; the pipeline checks the maps again before the pass
    config, tokenizer = peeked
    from ..engines.placement import AUTO
    from ..sizes import memory_limit, model_bytes, placed_weights

    placed = models.shape.device == AUTO
    weights = None
    if placed:
        # accelerate keeps in RAM what --max-memory allows and offloads the rest: a model bigger
        # than the RAM is what --device auto is for, so only that share of it counts here.
        weights = placed_weights(config, (models.shape.budget() or {}).get("cpu"))
    elif model_bytes(config) > memory_limit()[0]:
        return  # the model alone does not fit: the loader refuses it, naming the flag or key
    from ..text import check_text

    tokens = len(tokenizer.encode(check_text(text, "the text"), max_len=config.max_len, truncate=out.truncate).ids)
    layers = parse_indices(layer, config.num_layers, "layer")
    heads = parse_indices(head, config.num_heads, "head")
    if plan.streamed:
        chosen = layer is not None or head is not None
        # --device auto and --engine transformers run the transformers engine (no pooling while streaming)
        native = not (placed or getattr(models.engine, "value", models.engine) == "transformers")
        kept = plan.kept_layers(layers, heads, layer is not None, chosen, tokens, config, native)
        count, per = len(kept), len(heads)
    else:
        count, per = config.num_layers, config.num_heads  # every map, for the views that need them
    written = plan.outputs
    output = out.output
    folder = None if output is None else (output.parent if str(output.parent) else Path("."))
    # The transformers engine's output_attentions holds every layer's maps whatever is shown.
    every_map = placed or getattr(models.engine, "value", models.engine) == "transformers"
    check_plan(config, tokens, count, per, written, folder, weights_in_ram=weights, every_map=every_map)


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
    # A long text's page holds the chosen layers only: layer 0 unless --layer says otherwise (its
    # maps are megabytes per layer); a streamed run kept no others (_Plan.kept_layers).
    page, cut = _page_layers(shown.layers, shown.layer_given, len(result.tokens))
    if cut:
        layers = page
        result.notes.append(
            f"This page holds layer {layers[0]} of {shown.loaded.config.num_layers}: the maps of a long text "
            "are large; choose layers with --layer (e.g. --layer 3,15)."
        )
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
        open_on_focus=True,
    )
    atomic_write(path, page, out.overwrite)
    size = len(page.encode("utf-8")) // 1024
    if '"format":"attnviz-long/1"' in page:
        return f"wrote {path} (interactive HTML of a long text, {size} KB: pooled overviews and a zoom)"
    bits = 16 if '"bits":16' in page else 8
    return f"wrote {path} (interactive HTML, {size} KB, weights at {bits} bits)"


def _pronoun_marks(loaded, result, focus_at, resolve: bool, spec: str) -> dict:
    """{(layer, head): "★ 94%"} for the heads known to resolve pronouns when the focus is an English pronoun
    (from the cache that `inspect`/`probe coref` fill, or computed now with --resolve). When they
    are not known, the result gets a note saying how to find them."""
    from ..analysis.focus import ENGLISH_PRONOUNS

    if focus_at.label.casefold() not in ENGLISH_PRONOUNS:  # the probe set is English
        return {}
    heads = _known_pronoun_heads(loaded, resolve, result.notes)
    if not loaded.info.learned and not resolve:
        return {}  # random weights have no pronoun heads: no hint to go looking for them
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
