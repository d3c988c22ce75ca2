"""The explorer's widgets. Each draws Text from `cells`/`summary` and turns clicks into messages;
none of them holds state beyond what it last drew."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input, Static

from .cells import Line
from .history import History


class Drawn(Static):
    """A Static redrawn often: a new layout only when the text's size changes."""

    _shape: tuple[int, int] | None = None

    def draw(self, text: Text) -> None:
        lines = text.plain.split("\n")
        shape = (len(lines), max(cell_len(line) for line in lines))
        self.update(text, layout=shape != self._shape)
        self._shape = shape


class LinesView(Widget):
    """cells.Line rows drawn through Textual's line API: each becomes a Strip of rich Segments
    once, and only the visible ones are drawn. A head change redraws some 300 coloured cells;
    going through Static's Content conversion cost most of a head change's time."""

    DEFAULT_CSS = "LinesView { width: auto; height: auto; }"

    lines: list[Line] = []
    _strips: list[Strip] = []
    _width = 0

    def draw_lines(self, lines: list[Line]) -> None:
        base = self.rich_style  # the widget's own colours under cells without a background
        strips = [Strip(line.segments()).apply_style(base) for line in lines]
        width = max((strip.cell_length for strip in strips), default=0)
        resized = (width, len(strips)) != (self._width, len(self._strips))
        self.lines, self._strips, self._width = lines, strips, width
        self.refresh(layout=resized)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._strips)

    def render_line(self, y: int) -> Strip:
        if 0 <= y < len(self._strips):
            return self._strips[y].extend_cell_length(self.size.width, self.rich_style).crop(0, self.size.width)
        return Strip.blank(self.size.width, self.rich_style)


class HistoryInput(Input):
    """The sentence line; up/down walk the history (kept across runs)."""

    BINDINGS = [
        Binding("up", "older", "older sentence", show=False),
        Binding("down", "newer", "newer sentence", show=False),
    ]

    def __init__(self, history: History, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history = history

    def action_older(self) -> None:
        self.value = self.history.older(self.value)
        self.cursor_position = len(self.value)

    def action_newer(self) -> None:
        self.value = self.history.newer()
        self.cursor_position = len(self.value)


class HeatScroll(ScrollableContainer, inherit_bindings=False):
    """The scrolling frame of the heatmap: focusable, but its arrow keys belong to the app (layers
    and heads); the mouse wheel and page keys still scroll."""

    BINDINGS = [
        Binding("pageup", "page_up", show=False),
        Binding("pagedown", "page_down", show=False),
        Binding("home", "scroll_home", show=False),
        Binding("end", "scroll_end", show=False),
    ]


class TokenBar(LinesView):
    """The sentence's units; clicking one makes it the focus."""

    class Clicked(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    spans: list[tuple[int, int, int, int]] = []

    def show(self, lines: list[Line], spans: list[tuple[int, int, int, int]]) -> None:
        self.spans = spans
        self.draw_lines(lines)

    def offset_of(self, index: int) -> tuple[int, int]:
        """Where unit `index` is drawn (column, row of the widget, padding included), for a click."""
        row, start, _, _ = next(s for s in self.spans if s[3] == index)
        gutter = self.styles.gutter
        return start + gutter.left, row + gutter.top

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        for row, start, end, index in self.spans:
            if row == offset.y and start <= offset.x < end:
                self.post_message(self.Clicked(index))
                return


class HeatmapView(LinesView):
    """One head's heatmap; clicking a row makes its query the focus."""

    class RowClicked(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    header_rows = 0

    def show(self, lines: list[Line], header_rows: int) -> None:
        self.header_rows = header_rows
        self.draw_lines(lines)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        row = offset.y - self.header_rows
        if 0 <= row < len(self.lines) - self.header_rows:
            self.post_message(self.RowClicked(row))


class HeadStrip(LinesView):
    """Every head of the current layer, where the focus goes; clicking a head opens it."""

    class HeadClicked(Message):
        def __init__(self, position: int) -> None:
            super().__init__()
            self.position = position

    TITLE_ROWS = 1
    heads: list[Line] = []

    def show(self, title: Line, lines: list[Line]) -> None:
        self.heads = lines
        self.draw_lines([title, *lines])

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        position = offset.y - self.TITLE_ROWS
        if 0 <= position < len(self.heads):
            self.post_message(self.HeadClicked(position))
