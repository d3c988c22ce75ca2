"""Rich terminal views of an AttentionResult: header, per-head heatmap tables, focus summary.

Layout adapts to the console width: a normal layout with two-decimal cells, a compact one with
weights as percentages when that does not fit, and, for sentences too long even for that, the
key columns split into blocks, so a table never wraps into noise.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..analysis.focus import Focus, HeadTargets
from ..analysis.views import mixed_name
from ..result import AttentionResult

# matplotlib's viridis (perceptually uniform) sampled at 17 points, so the terminal view needs no
# matplotlib import; values in between are interpolated linearly.
VIRIDIS = [
    (68, 1, 84),
    (72, 24, 106),
    (71, 45, 123),
    (66, 64, 134),
    (59, 82, 139),
    (51, 99, 141),
    (44, 114, 142),
    (38, 130, 142),
    (33, 145, 140),
    (31, 160, 136),
    (40, 174, 128),
    (63, 188, 115),
    (94, 201, 98),
    (132, 212, 75),
    (173, 220, 48),
    (216, 226, 25),
    (253, 231, 37),
]

ROW_LABEL_WIDTH = 12
MARK = "*"
MASKED = "·"  # a causal model's future cell: not a weight of 0, no weight at all
SINK_STYLE = "dim"  # an excluded (sink) cell: its real weight, off the colour scale


def viridis(value: float) -> tuple[int, int, int]:
    x = min(max(value, 0.0), 1.0) * (len(VIRIDIS) - 1)
    i = min(int(x), len(VIRIDIS) - 2)
    t = x - i
    return tuple(round(a + (b - a) * t) for a, b in zip(VIRIDIS[i], VIRIDIS[i + 1]))


def cell_style(value: float, is_max: bool) -> str:
    r, g, b = viridis(value)
    ink = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 128 else "white"
    return f"{'bold ' if is_max else ''}{ink} on rgb({r},{g},{b})"


def fit_label(label: str, width: int) -> Text:
    text = Text(label, no_wrap=True, overflow="ellipsis")
    text.truncate(width, overflow="ellipsis")
    return text


def short_path(text: str, width: int) -> str:
    """A path shortened to about `width` characters for a header: the home folder as ~, then the
    middle folders elided as …, always keeping the file name (and as many folders before it as fit).
    Text that is no path ("random", "attnviz") is returned as it is."""
    if "/" not in text:
        return text
    home = str(Path.home())
    if home != "/" and (text == home or text.startswith(home + "/")):
        text = "~" + text[len(home) :]
    if len(text) <= width:
        return text
    first, *middle, last = text.split("/")
    head = first + "/"  # "~/", or a relative path's top folder
    if first == "" and middle:  # absolute: keep the top folder, "/work/…/model/tokenizer.json"
        head = "/" + middle.pop(0) + "/"
    tail = last
    for part in reversed(middle):
        if len(head) + len("…/") + len(part) + 1 + len(tail) > width:
            break
        tail = part + "/" + tail
    return f"{head}…/{tail}"


def model_header(title: str, info, width: int) -> list[Text]:
    """The header line(s) of a model's report: title · name · shape · tokenizer. A long path
    (model folder, tokenizer file) is shortened by `short_path`; the parts go on as many lines as
    they need, broken between parts (so "causal" is never cut off), and a tokenizer that does not
    fit on the line gets a line of its own, its note in parentheses (GGUF metadata...) on the next
    when the two do not fit together, so a path never wraps."""
    name = short_path(info.name, max(24, width // 2))
    parts = [Text(title, style="bold"), Text(name, style="bold cyan")]
    parts += [Text(part) for part in info.config.describe().split(" · ")]
    lines = [parts[0]]
    for part in parts[1:]:
        if lines[-1].cell_len + 3 + part.cell_len > width:
            lines.append(part)
        else:
            lines[-1] = lines[-1] + Text(" · ") + part
    line = lines[-1]
    room = width - line.cell_len - len(" · tokenizer: ")
    shortened = short_path(info.tokenizer, room)
    if len(shortened) <= room and (shortened == info.tokenizer or room >= 24):
        return lines[:-1] + [line + Text(" · tokenizer: " + shortened)]
    path, note = info.tokenizer, ""
    if " (" in path and "/" in path.split(" (", 1)[0]:  # "/x/model.gguf (GGUF metadata, ...)"
        path, note = path.split(" (", 1)
        note = " (" + note
    room = width - len("tokenizer: ")
    together = short_path(path, room - len(note))
    if len(together) + len(note) <= room:
        return lines + [Text("tokenizer: " + together + note)]
    tail = [Text(" " * len("tokenizer:") + note)] if note else []
    return lines + [Text("tokenizer: " + short_path(path, room))] + tail


def render_header(console: Console, result: AttentionResult, max_token_lines: int | None = None) -> None:
    """The model, notes and the numbered tokens; `max_token_lines` caps the token list (a long
    text's overview), the rest said in one line."""
    info = result.model
    for line in model_header("attnviz", info, console.width):
        console.print(line, overflow="ellipsis", no_wrap=True)
    if not info.learned:
        console.print(
            Text(
                "Random weights: these patterns are not learned. They show how attention "
                "works, not what a trained model knows.",
                style="yellow",
            )
        )
    if result.causal:
        console.print(
            Text(
                f"Causal model: each {result.unit_name} attends only to itself and the ones before it "
                f"(look-ahead mask); later cells are masked ({MASKED}).",
                style="cyan",
            )
        )
    if result.excluded:
        unit = "source token" if result.key_tokens is not None else result.unit_name  # excluded: key indices
        sinks = ", ".join(f"{result.key_labels[i]} ({unit} {i})" for i in result.excluded)
        console.print(
            Text(
                f"Sinks left out of rankings and colour scales: {sinks}; cells still show their real weights.",
                style="cyan",
            )
        )
    # Wrapped by hand so that an index never ends a line without its token.
    line, printed = Text("tokens:"), 0
    for i, label in enumerate(result.labels):
        item = Text.assemble("  ", (str(i), "dim"), " ", label)
        if line.cell_len + item.cell_len > console.width and line.plain.strip():
            console.print(line, overflow="ellipsis", no_wrap=True)
            line, printed = Text("       "), printed + 1
            if max_token_lines is not None and printed >= max_token_lines:
                line = Text(
                    f"       … and {len(result.labels) - i:,} more, up to {result.unit_name} {len(result.labels) - 1:,}"
                )
                break
        line.append_text(item)
    console.print(line, overflow="ellipsis", no_wrap=True)
    if result.truncated:
        console.print(Text(f"The text was truncated to {len(result.tokens)} tokens (--truncate).", style="yellow"))
    for note in result.notes:
        console.print(Text(note, style="yellow"))


def _layout(n_tokens: int, width: int) -> tuple[str, int]:
    """Choose "normal" or "compact" cells and how many key columns fit per block."""
    normal = ROW_LABEL_WIDTH + 1 + n_tokens * 6
    if normal <= width:
        return "normal", n_tokens
    per_block = max(1, (width - ROW_LABEL_WIDTH - 1) // 3)
    return "compact", min(n_tokens, per_block)


def _colour_top(result: AttentionResult, weights: np.ndarray, ranked: np.ndarray) -> float:
    """The weight drawn brightest: 1 (rows sum to one), or with sinks excluded the largest weight
    left, so what the sinks hid shows up."""
    if not result.excluded or not ranked.any():
        return 1.0
    return max(float(weights[ranked].max()), 1e-6)


def _mixed_heads(view: str) -> str:
    """The title of a map that mixes every head (views.ROLLOUT_HEAD)."""
    return mixed_name(view)


def head_table(result: AttentionResult, layer: int, head: int, width: int) -> Group:
    """One head's heatmap as a Group of blocks (several when keys are split into blocks).

    Masked cells (a causal model's later keys) show as MASKED; excluded keys (sinks) show their
    weight uncoloured and never take the row's maximum mark.

    Each block is a rich Table for the title and column headers, then one Text per query row:
    the same characters and styles a Table of T x T cells gives (tests compare them), at a
    fraction of the cost (rich renders every cell of a Table on its own: 0.15 s for the eight
    tables of a 15-token `show`)."""
    weights = result.head(layer, head)  # [T, Tk]: Tk = T but for cross-attention (source keys)
    labels = result.labels
    key_labels = result.key_labels
    T, Tk = len(labels), len(key_labels)
    mode, per_block = _layout(Tk, width)
    masked = result.masked(layer)  # [T, Tk]: look-ahead and, in a local layer, the sliding window
    ranked = ~masked
    ranked[:, list(result.excluded)] = False
    row_max = np.where(ranked, weights, -np.inf).argmax(axis=1)  # [T]
    row_max[~ranked.any(axis=1)] = -1
    top = _colour_top(result, weights, ranked)
    cell_width = 5 if mode == "normal" else 3
    blocks = []
    for start in range(0, Tk, per_block):
        keys = range(start, min(Tk, start + per_block))
        title = f"layer {layer} · " + (f"head {head}" if head >= 0 else _mixed_heads(result.view))
        if result.attention != "self":
            title += f" · {result.attention} attention"
        if per_block < Tk:
            title += f" · keys {keys.start}-{keys.stop - 1}"
        if top < 1.0:
            title += f" · colour 0-{top:.2f}"
        blocks.append(_header(title, mode, [key_labels[j] for j in keys], keys))
        for i in range(T):
            cells = []
            for j in keys:
                if masked[i, j]:
                    cells.append((MASKED, "dim"))
                    continue
                v = float(weights[i, j])
                is_max = j == row_max[i]
                if mode == "normal":
                    body = f"{v:.2f}" + (MARK if is_max else "")
                else:
                    body = (MARK if is_max else " ") + f"{min(round(v * 100), 99):02d}"
                cells.append((body, cell_style(v / top, is_max) if ranked[i, j] else SINK_STYLE))
            blocks.append(
                _row(f"{i:>{len(str(T - 1))}} {labels[i]}", cells, cell_width, " " if mode == "normal" else "")
            )
    return Group(*blocks)


def _header(title: str, mode: str, labels: list[str], keys: range) -> Table:
    """The title and the column headers of a block: a Table without rows."""
    table = Table(
        title=title,
        title_justify="left",
        box=None,
        show_edge=False,
        padding=(0, 1 if mode == "normal" else 0),
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("query", no_wrap=True, width=ROW_LABEL_WIDTH, overflow="ellipsis")
    for j, label in zip(keys, labels):
        header = f"{j}" if mode == "compact" else Text(f"{j}\n") + fit_label(label, 5)
        table.add_column(header, justify="right", no_wrap=True, width=5 if mode == "normal" else 3)
    return table


def _row(label: str, cells: list[tuple[str, str]], width: int, gap: str) -> Text:
    """One query row as a Table would draw it: the label cut to ROW_LABEL_WIDTH cells and padded,
    then per key `gap` (the collapsed column padding, unstyled) and the cell's text right-justified
    in `width` and styled, padding included."""
    row = fit_label(label, ROW_LABEL_WIDTH)
    row.no_wrap, row.overflow = True, "crop"
    row.pad_right(ROW_LABEL_WIDTH - row.cell_len)
    for body, style in cells:
        row.append(gap)
        row.append(" " * (width - len(body)) + body, style)
    return row


def masked_reason(result: AttentionResult, layers: list[int] | None = None) -> str:
    """Why the legend's masked cells are masked in `layers` (default: the result's; AttentionResult.masked):
    "a token cannot see later ones", and keys outside a local layer's sliding
    window, naming the local layers; "" when nothing is masked."""
    reasons = [f"a {result.unit_name} cannot see later ones"] if result.causal else []
    layers = result.layers if layers is None else layers
    local = [layer for layer in layers if result.window(layer) is not None]
    if local:  # a sliding window shorter than the text
        where = ("local layers " if len(local) > 1 else "local layer ") + ", ".join(map(str, local))
        where = "every layer shown" if len(local) == len(layers) else where
        reasons.append(f"keys outside the {result.window(local[0])}-token sliding window in {where}")
    return " and ".join(reasons)


def render_heads(console: Console, result: AttentionResult) -> None:
    mode, _ = _layout(len(result.key_labels), console.width)
    scale = "weights x100, " if mode == "compact" else ""
    units = f"{result.unit_name}s"
    top = "the head's largest weight outside the sinks (bright; in its title)" if result.excluded else "1 (bright)"
    legend = (
        f"rows: query {units} · columns: key {units} · {scale}{MARK} marks each row's maximum · "
        f"colour: viridis from 0 (dark) to {top}"
    )
    if result.key_tokens is not None:
        legend = legend.replace(
            f"rows: query {units} · columns: key {units}", "rows: target tokens · columns: source tokens"
        )
    if result.excluded:
        legend += " · sinks: real weights, uncoloured, never marked"
    reason = masked_reason(result)
    if reason:
        legend += f" · {MASKED}: masked, {reason}"
    console.print(Text(legend, style="dim"))
    for layer in result.layers:
        for head in result.heads:
            console.print()
            console.print(head_table(result, layer, head, console.width))


def render_focus(
    console: Console,
    result: AttentionResult,
    focus: Focus,
    per_head: list[HeadTargets],
    marks: dict[tuple[int, int], str] | None = None,
) -> None:
    """One row per layer/head: the tokens the focus token attends to most, strongest first.

    `marks` ({(layer, head): "★ 94%"}) flags the heads known to resolve pronouns, in a last column.
    For cross-attention the focus is a target token and its targets are the source's tokens."""
    labels = result.key_labels
    key_unit = "source token" if result.key_tokens is not None else result.unit_name
    console.print()
    if focus.note:
        console.print(Text(focus.note, style="yellow"))
    # Rows can be shorter than --top: a causal model's early token sees few keys, sinks are left out.
    k = max((len(row.targets) for row in per_head), default=0)
    left_out = ", sinks left out" if result.excluded else ""
    # The title is a line of its own: as a table title it would wrap to the (narrow) table width.
    console.print(
        Text(
            f"where {focus.label!r} ({'target token' if result.key_tokens is not None else result.unit_name} "
            f"{focus.index}) attends{' in the source' if result.key_tokens is not None else ''}, per head{left_out}",
            style="bold",
        )
    )
    if k == 0:
        console.print(
            Text(f"nothing to rank: {result.unit_name} {focus.index} sees no key outside the sinks", style="yellow")
        )
        return
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column("layer", justify="right")
    table.add_column("head", justify="right")
    for rank in range(k):
        table.add_column(("1st", "2nd", "3rd")[rank] if rank < 3 else f"{rank + 1}th", no_wrap=True)
    if marks:
        table.add_column("pronoun", no_wrap=True)
    for row in per_head:
        cells = [str(row.layer), str(row.head) if row.head >= 0 else _mixed_heads(result.view)]
        for rank, (j, w) in enumerate(row.targets):
            cell = Text.assemble(fit_label(labels[j], 12), f" {w:.2f}")
            if rank == 0:
                cell.stylize(cell_style(w, True))
            cells.append(cell)
        cells += [""] * (k - len(row.targets))
        if marks:
            cells.append(Text(marks.get((row.layer, row.head), ""), style="bold magenta"))
        table.add_row(*cells)
    console.print(table)
    if marks:
        console.print(
            Text(
                f"★ pronoun head: resolves pronouns on the agreement probe set (accuracy shown; "
                f"{len(marks)} heads, from `attnviz inspect`)",
                style="dim",
            )
        )
    winners = Counter(row.targets[0][0] for row in per_head if row.targets)
    if winners:
        summary = ", ".join(f"{labels[j]!r} ({key_unit} {j}) in {n}" for j, n in winners.most_common(3))
        console.print(Text(f"top target over {_heads(len(per_head))}: {summary}", style="dim"))


def render_focus_answer(console: Console, result: AttentionResult, focus: Focus, per_head: list[HeadTargets]) -> None:
    """The focus summary's answer in one line, printed before the tables so that it is not
    scrolled away by them: the keys that most heads rank first."""
    winners = Counter(row.targets[0][0] for row in per_head if row.targets)
    if not winners:
        return
    unit, labels = result.unit_name, result.key_labels
    key_unit = "source token" if result.key_tokens is not None else unit
    (first, n), *rest = winners.most_common(3)
    others = "".join(f", {labels[j]!r} ({key_unit} {j}) in {m}" for j, m in rest)
    if result.key_tokens is not None:
        unit = "target token"
    console.print(
        Text(
            f"{focus.label!r} ({unit} {focus.index}) attends most to {labels[first]!r} ({key_unit} {first}) "
            f"in {n} of {_heads(len(per_head))}{others}; per head after the tables",
            style="bold",
        )
    )


def _heads(n: int) -> str:
    return f"{n} head" if n == 1 else f"{n} heads"


def render_candidates(console: Console, result: AttentionResult, scores) -> None:
    """Per head, the weight from the focus word to each candidate (winner marked), then a count.

    `scores` is an analysis.candidates.CandidateScores.
    """
    from ..analysis.candidates import NO_WINNER, candidate_label

    console.print()
    for note in scores.notes:
        console.print(Text(note, style="yellow"))
    names = [candidate_label(c) for c in scores.candidates]
    console.print(
        Text(
            "word level: the weight to a candidate sums its pieces, the focus's pieces are "
            f"averaged; {MARK} marks the winner",
            style="dim",
        )
    )
    console.print(Text(f"weight from {candidate_label(scores.focus)!r} to each candidate, per head", style="italic"))
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column("layer", justify="right")
    table.add_column("head", justify="right")
    for name in names:
        table.add_column(fit_label(name, 14), justify="right", no_wrap=True)
    table.add_column("winner", no_wrap=True)
    won = scores.winners
    for li, layer in enumerate(scores.layers):
        for hi, head in enumerate(scores.heads):
            cells = [str(layer), str(head) if head >= 0 else _mixed_heads(result.view)]
            for c in range(len(names)):
                w = float(scores.weights[li, hi, c])
                is_win = won[li, hi] == c
                cells.append(Text(f"{w:.3f}" + (MARK if is_win else " "), style=cell_style(w, is_win)))
            cells.append(Text("tie", style="dim") if won[li, hi] == NO_WINNER else fit_label(names[won[li, hi]], 14))
            table.add_row(*cells)
    console.print(table)
    counts = scores.counts()
    total = won.size
    parts = [f"{name!r} wins {n} head{'s' if n != 1 else ''}" for name, n in zip(names, counts)]
    if scores.ties():
        parts.append(f"{scores.ties()} tied")
    console.print(Text(f"over {_heads(total)}: " + ", ".join(parts), style="bold"))
