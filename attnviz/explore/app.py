"""The explorer App: the screen, its keys, and the workers that load the model, run sentences
and save files off the event loop (so typing never waits for torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from rich.text import Text
from textual import work
from textual.worker import get_current_worker
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static

from ..analysis.views import mixed_name
from ..errors import AttnvizError
from . import cells, long_view
from .history import History
from .session import Options, Session, compute
from .summary import focus_summary, head_name
from .widgets import Drawn, HeadStrip, HeatmapView, HeatScroll, HistoryInput, TokenBar

HELP = """\
attnviz explore: type a sentence and press Enter; then walk the heads.

  ← → or h l      previous / next head (past the last head: the next layer)
  ↑ ↓ or k j      previous / next layer
  tab, shift+tab  next / previous focus token (or click a token, or a heatmap row)
  click a head    open that head of the strip
  w               word level on/off (subword pieces merged, Clark et al. 2019)
  v               view: attention → rollout → norm → value zeroing
  s               leave special / sink tokens out of the colour scale and rankings
  e               save this head as PNG and the sentence as interactive HTML
  z               long texts (drawn pooled): zoom into a window at full resolution, or back
  shift+arrows    move the zoomed window by half its size
  /  or  i        back to the sentence line (↑ ↓ there: history)
  @WORD           typed on the sentence line: focus that word (or @INDEX)
  ?               this help        q  quit

Heatmap: rows are queries, columns keys; colour viridis as in `attnviz show`, * marks each
row's maximum. The strip shows, per head of the layer, where the focus token goes.

Press escape, ? or q to close this help."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Static { width: auto; max-width: 96; height: auto; max-height: 100%;
                          border: round $accent; padding: 0 1; background: $panel; }
    """

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help-text")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class ExploreApp(App[int]):
    """`loader()` returns a LoadedModel (called once, in a worker thread); `spec` is what the user
    gave as --model, for messages; `save_dir` receives the files of `e`."""

    TITLE = "attnviz explore"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (60, "-narrow"), (110, "-wide")]
    CSS = """
    Screen { layout: vertical; }
    #sentence { height: 1; border: none; padding: 0 1; background: $boost; }
    #sentence:focus { background: $primary 20%; }
    #tokens { width: 100%; height: auto; max-height: 3; padding: 0 1; }
    #body { height: 1fr; }
    #heat-scroll { width: 1fr; height: 1fr; scrollbar-size: 1 1; }
    #heat-scroll:focus { background-tint: $primary 5%; }
    #heatmap { width: auto; height: auto; }
    #side { height: 1fr; padding: 0 0 0 1; scrollbar-size: 1 1; }
    .-tiny #side { display: none; }  /* below 60 columns the heatmap takes the whole width */
    .-narrow #side { width: 36; }
    .-wide #side { width: 52; }
    #strip { width: auto; height: auto; }
    #summary { height: auto; margin-top: 1; }
    #message { display: none; height: auto; max-height: 2; padding: 0 1; color: $warning; }
    #message.info { color: $success; }
    #status { height: 1; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """
    BINDINGS = [
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
        Binding("left,h", "head(-1)", "head", key_display="←→"),
        Binding("right,l", "head(1)", "head", show=False),
        Binding("up,k", "layer(-1)", "layer", key_display="↑↓"),
        Binding("down,j", "layer(1)", "layer", show=False),
        Binding("tab", "tab(1)", "focus", priority=True),
        Binding("shift+tab", "tab(-1)", "focus", show=False, priority=True),
        Binding("w", "words", "words"),
        Binding("v", "view", "view"),
        Binding("s", "sinks", "sinks"),
        Binding("e", "save", "save"),
        Binding("z", "zoom", "zoom", show=False),
        Binding("shift+left", "pan(0,-1)", show=False),
        Binding("shift+right", "pan(0,1)", show=False),
        Binding("shift+up", "pan(-1,0)", show=False),
        Binding("shift+down", "pan(1,0)", show=False),
        Binding("slash,i", "edit", "type", show=False),
        Binding("escape", "leave_input", show=False),
    ]

    def __init__(
        self,
        loader: Callable,
        spec: str,
        text: str | None = None,
        options: Options | None = None,
        history: History | None = None,
        save_dir: Path | None = None,
        resolve: bool = False,
    ) -> None:
        super().__init__()
        self.loader = loader
        self.spec = spec
        self.initial_text = text
        self.session = Session(options or Options())
        self.history = history if history is not None else History()
        self.save_dir = save_dir or Path(".")
        self.resolve = resolve
        self.loaded = None
        self.pending: str | None = None  # typed while the model loads
        self.load_error: str | None = None  # AttnvizError text when loading failed (exit 2)
        self.internal_error: BaseException | None = None
        self.saved: list[Path] = []
        # A long text (long_view.py): the zoomed window (None: the pooled overview), and the
        # token of each heatmap line below its header (None: a line per token, as for a sentence).
        self.zoom: long_view.Zoom | None = None
        self.zoom_asked = False
        self.row_tokens: list[int] | None = None

    # -- the screen ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield HistoryInput(self.history, id="sentence", placeholder="type a sentence, Enter; @word sets the focus")
        yield TokenBar(id="tokens")
        with Horizontal(id="body"):
            with HeatScroll(id="heat-scroll"):
                yield HeatmapView(id="heatmap")
            with VerticalScroll(id="side"):
                yield HeadStrip(id="strip")
                yield Drawn(id="summary")
        yield Static(id="message")
        yield Drawn(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#heatmap", HeatmapView).show(
            [cells.Line(f"loading model {self.spec}… (type a sentence meanwhile)", "dim")], 0
        )
        self._status()
        if self.history.note:
            self.say(self.history.note)
        if self.initial_text:
            self.query_one("#sentence", Input).value = self.initial_text
            self.pending = self.initial_text
        self.query_one("#sentence", Input).focus()
        # Loading starts once the first screen is drawn: importing torch in the worker holds
        # the GIL for long stretches, and the sentence line should be up first.
        self.call_after_refresh(self._load)

    def say(self, message: str, info: bool = False) -> None:
        widget = self.query_one("#message", Static)
        widget.set_class(info, "info")
        line = " ".join(message.split())
        widget.display = bool(line)  # no empty row when there is nothing to say
        widget.update(Text(line))

    def _status(self) -> None:
        status = self.query_one("#status", Static)
        if self.loaded is None:
            status.draw(Text(f"{self.spec} · loading…", style="dim"))
            return
        info = self.loaded.info
        # One line, cut with an ellipsis rather than wrapped: where you are first (indices as on the
        # rest of the screen, with the counts), then what you toggled, then the model.
        bits = []
        if self.session.ready:
            result = self.session.result()
            bits += [
                f"layer {self.session.layer} (of {len(result.layers)}) · "
                + (
                    f"head {self.session.head} (of {len(result.heads)})"
                    if self.session.head >= 0
                    else mixed_name(result.view)
                ),
                result.view,
                "word level" if result.units == "words" else "token level",
                "sinks out of scale" if result.excluded else "sinks in scale",
                "causal" if result.causal else "bidirectional",
            ]
        else:
            bits += [self.session.options.view, "causal" if info.config.causal else "bidirectional"]
        line = Text(" · ".join(bits + [info.name, info.config.describe()]))
        if not info.learned:
            line.append(" · random weights: patterns not learned", "yellow")
        status.draw(line)

    def show_result(self) -> None:
        """Redraw everything from the session (after any change)."""
        self._status()
        if not self.session.ready:
            return
        session = self.session
        result = session.result()
        width = self.query_one("#heat-scroll").size.width or 60
        bar_width = max(self.query_one("#tokens").size.width, 20)
        text, spans = cells.token_bar(result, session.focus, bar_width)
        self.query_one("#tokens", TokenBar).show(text, spans)
        long = long_view.is_long(len(result.tokens), width)
        if long:
            height = self.query_one("#heat-scroll").size.height or 24
            if self.zoom_asked and self.zoom is None:
                rows, cols = long_view.window_size(width, height, len(result.tokens))
                self.zoom = long_view.around(session.focus, rows, cols, len(result.tokens))
            heat, self.row_tokens, self.zoom = long_view.heatmap(
                result,
                session.layer,
                session.head,
                session.focus,
                width,
                height,
                self.zoom if self.zoom_asked else None,
            )
        else:
            heat, self.row_tokens = cells.heatmap(result, session.layer, session.head, session.focus, width), None
        self.query_one("#heatmap", HeatmapView).show(heat.lines, heat.header_rows)
        if not long:
            self._keep_visible(heat.header_rows + session.focus)
        marks = session.pronoun_marks()
        rows = session.layer_targets()
        title = cells.Line(f"layer {session.layer}: where {result.labels[session.focus]!r} goes", "bold")
        strip_cols = max(10, self.query_one("#side").size.width - 22)
        lines = [
            (
                long_view.strip_line(
                    result,
                    session.layer,
                    row.head,
                    session.focus,
                    row.head == session.head,
                    row.targets[0] if row.targets else None,
                    marks.get((session.layer, row.head), ""),
                    strip_cols,
                )
                if long
                else cells.strip_line(
                    result,
                    session.layer,
                    row.head,
                    session.focus,
                    row.head == session.head,
                    row.targets[0] if row.targets else None,
                    marks.get((session.layer, row.head), ""),
                )
            )
            for row in rows
        ]
        self.query_one("#strip", HeadStrip).show(title, lines)
        self.query_one("#summary", Drawn).draw(focus_summary(session, self.spec))

    def _keep_visible(self, row: int) -> None:
        """Scroll the heatmap so that line `row` (the focus row) shows; when it fits on the first
        screen, back to the top, where the key labels are."""
        frame = self.query_one("#heat-scroll")
        height = frame.scrollable_content_region.height
        if height < 1:
            return
        if row < frame.scroll_y:
            frame.scroll_to(y=0 if row < height else row, animate=False, immediate=True)
        elif row >= frame.scroll_y + height:
            frame.scroll_to(y=row - height + 1, animate=False, immediate=True)

    def on_resize(self) -> None:
        self.call_after_refresh(self.show_result)

    # -- workers -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="load")
    def _load(self) -> None:
        try:
            loaded = self.loader()
        except AttnvizError as exc:
            self.call_from_thread(self._load_failed, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - reported by the CLI as an internal error (exit 1)
            self.internal_error = exc
            self.call_from_thread(self.exit, None, 1)
            return
        self.call_from_thread(self._loaded, loaded)
        # The pronoun heads come after: the model is usable meanwhile (--resolve runs a probe set).
        try:
            pronouns = _pronoun_heads(loaded, self.resolve)
        except Exception as exc:  # noqa: BLE001 - the explorer works without them
            self.call_from_thread(self.say, f"pronoun heads not found: {exc}")
            return
        if pronouns is not None:
            self.call_from_thread(self._pronouns_known, pronouns)

    def _pronouns_known(self, pronouns) -> None:
        self.session.pronoun_heads = pronouns
        self.show_result()

    def _load_failed(self, message: str) -> None:
        self.load_error = message
        self.exit(return_code=2)

    def _loaded(self, loaded) -> None:
        self.loaded = loaded
        options = self.session.options
        config = loaded.config
        for name, value, count in (
            ("layer", options.layer, config.num_layers),
            ("head", options.head, config.num_heads),
        ):
            if not 0 <= value < count:
                self.say(f"--{name} {value} is out of range: the model has {count} {name}s (0-{count - 1})")
        self.session.layer_pos = min(max(options.layer, 0), config.num_layers - 1)
        self.session.head_pos = min(max(options.head, 0), config.num_heads - 1)
        self._status()
        self.query_one("#heatmap", HeatmapView).show([cells.Line("type a sentence and press Enter", "dim")], 0)
        if self.pending is not None:
            text, self.pending = self.pending, None
            self._run(text, self.session.options.view)

    @work(thread=True, exclusive=True, group="compute")
    def _run(self, text: str, view: str) -> None:
        try:
            result = compute(self.loaded, text, view, self.session.options.truncate)
        except AttnvizError as exc:
            self.call_from_thread(self.say, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a message, never the end of the explorer
            self.call_from_thread(self.say, f"internal error: {type(exc).__name__}: {exc}")
            return
        if get_current_worker().is_cancelled:  # a newer sentence or view was asked for meanwhile
            return
        self.call_from_thread(self._computed, text, result)

    def _computed(self, text: str, result) -> None:
        session = self.session
        if text == session.text:  # another view of the sentence on screen
            session.add_view(result)
            session.set_view(result.view)
            self.say(result.notes[-1] if result.notes else f"{result.view} view", info=True)
        else:
            if result.view != session.options.view:
                session.options.view = result.view
            notes = session.set_sentence(text, result)
            self.zoom, self.zoom_asked = None, False  # a new text opens on its overview
            self.say(
                "; ".join(notes + ([session.focus_note] if session.focus_note else []))
                or ("the text was truncated to the model's maximum" if result.truncated else "")
            )
            if self.focused is self.query_one("#sentence"):
                self.query_one("#heat-scroll").focus()
        self.show_result()

    @work(thread=True, exclusive=True, group="save")
    def _save(self, result, token_results, layer, head, token_focus) -> None:
        from .saving import save_view

        try:
            paths = save_view(
                self.save_dir, result, token_results, layer, head, token_focus, self.session.pronoun_heads
            )
        except (AttnvizError, OSError) as exc:
            self.call_from_thread(self.say, f"not saved: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a message, never the end of the explorer
            self.call_from_thread(self.say, f"not saved: internal error: {type(exc).__name__}: {exc}")
            return
        self.saved.extend(paths)
        self.call_from_thread(self.say, "saved " + " and ".join(str(p) for p in paths), True)

    # -- input ---------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value
        if text.startswith("@"):
            self._focus_typed(text[1:])
            return
        if not text.strip():
            self.say("the sentence is empty; type one and press Enter")
            return
        note = self.history.add(text)
        if note:
            self.say(note)
        if self.loaded is None:
            self.pending = text
            self.say(f"model {self.spec} still loading: the sentence runs when it is ready", info=True)
            return
        self.say(f"running {self.spec}…", info=True)
        self._run(text, self.session.options.view)

    def _focus_typed(self, query: str) -> None:
        if not self.session.ready:
            self.say("type a sentence first; @WORD then sets the focus")
            return
        try:
            self.session.focus_on(query)
        except AttnvizError as exc:
            self.say(str(exc))
            return
        self.query_one("#sentence", Input).value = self.session.text
        self.say(self.session.focus_note or "", info=True)
        self.show_result()

    def on_token_bar_clicked(self, message: TokenBar.Clicked) -> None:
        self._set_focus(message.index)

    def on_heatmap_view_row_clicked(self, message: HeatmapView.RowClicked) -> None:
        if self.row_tokens is None:
            self._set_focus(message.index)
        elif message.index < len(self.row_tokens):  # a long text: the line's (first) token
            self._set_focus(self.row_tokens[message.index])

    def on_head_strip_head_clicked(self, message: HeadStrip.HeadClicked) -> None:
        if self.session.ready:
            self.session.set_head(message.position)
            self.show_result()

    def _set_focus(self, index: int) -> None:
        if not self.session.ready:
            return
        try:
            self.session.set_focus(index)
        except AttnvizError as exc:
            self.say(str(exc))
            return
        self.show_result()

    # -- keys ----------------------------------------------------------------------------------

    def _needs_result(self) -> bool:
        if self.session.ready:
            return True
        self.say("no sentence yet: type one and press Enter" if self.loaded else f"model {self.spec} still loading")
        return False

    def action_head(self, step: int) -> None:
        if self._needs_result():
            self.session.move_head(step)
            self.show_result()

    def action_layer(self, step: int) -> None:
        if self._needs_result():
            self.session.move_layer(step)
            self.show_result()

    def action_tab(self, step: int) -> None:
        if self.focused is self.query_one("#sentence") or not self.session.ready:
            self.query_one("#heat-scroll").focus()
            return
        self.session.next_focus(step)
        self.show_result()

    def action_words(self) -> None:
        if self._needs_result():
            self.session.toggle_words()
            self.show_result()

    def action_sinks(self) -> None:
        if self._needs_result():
            self.session.toggle_sinks()
            self.show_result()

    def action_view(self) -> None:
        if not self._needs_result():
            return
        view = self.session.next_view()
        if self.session.has_view(view):
            self.session.set_view(view)
            self.show_result()
        else:
            self.say(f"computing the {view} view…", info=True)
            self._run(self.session.text, view)

    def action_save(self) -> None:
        if not self._needs_result():
            return
        session = self.session
        token_focus = session.focus
        if session.options.words:
            from ..analysis.words import word_groups

            token_focus = word_groups(session.token_result())[session.focus][0]
        self.say(f"saving {head_name(session.layer, session.head)}…", info=True)
        self._save(session.result(), session.token_results(), session.layer, session.head, token_focus)

    def action_zoom(self) -> None:
        """A long text: from the overview into a window around the focus, or back."""
        if not self._needs_result():
            return
        if not long_view.is_long(len(self.session.result().tokens), self.query_one("#heat-scroll").size.width or 60):
            self.say("the whole head fits: zoom is for long texts, drawn pooled", info=True)
            return
        self.zoom_asked = not self.zoom_asked
        self.zoom = None
        self.show_result()

    def action_pan(self, rows: int, cols: int) -> None:
        """Move the zoomed window by half its size."""
        if not self._needs_result() or self.zoom is None or not self.zoom_asked:
            return
        T = len(self.session.result().tokens)
        frame = self.query_one("#heat-scroll").size
        shown_rows, shown_cols = long_view.window_size(frame.width or 60, frame.height or 24, T)
        self.zoom = long_view.Zoom(
            self.zoom.r0 + rows * max(1, shown_rows // 2), self.zoom.c0 + cols * max(1, shown_cols // 2)
        )
        self.show_result()

    def action_edit(self) -> None:
        self.query_one("#sentence", Input).focus()

    def action_leave_input(self) -> None:
        if self.focused is self.query_one("#sentence"):
            self.query_one("#heat-scroll").focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())


def _pronoun_heads(loaded, resolve: bool):
    """The model's pronoun heads (agreement set) from the cache, or found now with --resolve;
    None when unknown. A learned model only: a random one has none worth looking up."""
    from ..pronoun_heads import DEFAULT_SET, cached, find

    if not loaded.info.learned and not resolve:
        return None
    heads = find(loaded, DEFAULT_SET)[0] if resolve else cached(loaded, DEFAULT_SET)
    return heads if heads is not None and heads.heads else None
