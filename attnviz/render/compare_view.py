"""Rich terminal view of a comparison: twin sentences (flips) or twin models (divergence)."""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..analysis.candidates import NO_WINNER
from ..analysis.compare import Comparison
from ..analysis.views import head_name
from .terminal import MARK, cell_style, fit_label

FLIP = "⇄"
GAP = 2  # between table columns: padding (0, 1) on both sides


def _num(w: float) -> str:
    """Weights in 3-4 characters: .02, .87, 1.00 (norm-view weights can exceed one: 12.4)."""
    text = f"{w:.2f}"
    return text[1:] if text.startswith("0.") else (text if w < 10 else f"{w:.1f}")


def _winner(side, li: int, hi: int, width: int) -> Text:
    won = int(side.scores.winners[li, hi])
    if won == NO_WINNER:
        return Text("tie", style="dim")
    return fit_label(side.scores.candidates[won].label, width)


def label_width(console_width: int, comp: Comparison, with_cands: bool) -> int:
    """How many cells a word may take in the top and winner columns: every word whole when the
    table then fits the console, else the most that fits (at least 3, `wo…`). Numbers (weights,
    JSD) are never cut: words give way first."""
    a, b = comp.a, comp.b
    pairs = [(li, hi) for li in range(len(comp.layers)) for hi in range(len(comp.heads))]
    tops = [[cell_len(side.result.labels[side.top(li, hi)[0]]) for li, hi in pairs] for side in (a, b)]
    winners = []
    if with_cands:
        for li, hi in pairs:
            wa, wb = (int(side.scores.winners[li, hi]) for side in (a, b))
            winners.append(
                [cell_len(side.scores.candidates[w].label) if w != NO_WINNER else 3 for side, w in ((a, wa), (b, wb))]
            )
    head = max(5, *(len(head_name(layer, hd)) for layer in comp.layers for hd in comp.heads))
    cands = (
        sum(
            max(5 * len(side.scores.candidates), len(f"{side.name} cands")) + GAP  # min_width below
            for side in (a, b)
        )
        if with_cands
        else 0
    )
    winner_head = len(f"winner {a.name}→{b.name}")

    def width(n: int) -> int:
        total = head + GAP + 5 + cands  # head, JSD (0.123), cands
        total += sum(max(max(min(t, n) for t in col) + 5, 5) + GAP for col in tops)  # "word 1.00"
        if winners:  # "word→word ⇄"
            total += max(winner_head, *(min(x, n) + min(y, n) + 3 for x, y in winners)) + GAP
        return total

    n = max([t for col in tops for t in col] + [x for w in winners for x in w] + [3])
    while n > 3 and width(n) > console_width:
        n -= 1
    return n


def render_comparison(console: Console, comp: Comparison, top_n: int = 5) -> None:
    a, b = comp.a, comp.b
    info = a.result.model
    if comp.kind == "sentences":
        console.print(
            Text.assemble(
                ("attnviz compare", "bold"),
                " · ",
                (info.name, "bold cyan"),
                " · ",
                info.config.describe(),
                " · view: ",
                a.result.view_label,
            )
        )
        if not info.learned:
            console.print(Text("Random weights: these patterns are not learned.", style="yellow"))
        for side in (a, b):
            console.print(
                Text.assemble((f"{side.name}: ", "bold"), side.result.text, (f"   focus {side.focus.label!r}", "dim"))
            )
    else:
        console.print(
            Text.assemble(("attnviz compare", "bold"), " · two models on one sentence · view: ", a.result.view_label)
        )
        for side in (a, b):
            m = side.result.model
            console.print(
                Text.assemble(
                    (f"{side.name}: ", "bold"),
                    (m.name, "bold cyan"),
                    " · ",
                    m.config.describe(),
                    "" if m.learned else " (random weights)",
                )
            )
        console.print(Text.assemble(("text: ", "bold"), a.result.text))
    for side in (a, b):
        if side.scores is not None:
            for note in side.scores.notes:
                console.print(Text(f"{side.name}: {note}", style="yellow"))

    with_cands = a.scores is not None and b.scores is not None
    what = "focus row" if a.focus.units else "whole maps"
    words = label_width(console.width, comp, with_cands)
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    table.add_column("head", no_wrap=True, min_width=5)
    table.add_column(f"{a.name} top", no_wrap=True)
    table.add_column(f"{b.name} top", no_wrap=True)
    if with_cands:
        for side in (a, b):
            table.add_column(f"{side.name} cands", no_wrap=True, min_width=5 * len(side.scores.candidates))
        table.add_column(f"winner {a.name}→{b.name}", no_wrap=True)
    table.add_column("JSD", justify="right", no_wrap=True, min_width=5)
    flips = comp.flips
    for li, layer in enumerate(comp.layers):
        for hi, head in enumerate(comp.heads):
            cells = [head_name(layer, head)]
            for side in (a, b):
                j, w = side.top(li, hi)
                cells.append(Text.assemble(fit_label(side.result.labels[j], words), f" {_num(w)}"))
            if with_cands:
                for side in (a, b):
                    won = int(side.scores.winners[li, hi])
                    cell = Text()
                    for c in range(len(side.scores.candidates)):
                        w = float(side.scores.weights[li, hi, c])
                        if c:
                            cell.append(" ")
                        cell.append(_num(w) + (MARK if won == c else " "), style=cell_style(w, won == c))
                    cells.append(cell)
                wa, wb = _winner(a, li, hi, words), _winner(b, li, hi, words)
                if flips[li, hi]:
                    cells.append(Text.assemble(wa, "→", wb, f" {FLIP}", style="bold magenta"))
                else:
                    cells.append(wa if wa.plain == wb.plain else Text.assemble(wa, "→", wb))
            cells.append(f"{comp.jsd[li, hi]:.3f}")
            table.add_row(*cells)
    console.print()
    console.print(
        Text(
            "per head: where the focus goes in each" + (", winning candidate and flips" if with_cands else ""),
            style="italic",
        )
    )
    console.print(table)
    if with_cands:
        names = " / ".join(repr(c.label) for c in a.scores.candidates)
        console.print(
            Text(
                f"cands: weight from the focus to {names} (word level), {MARK} the winner; "
                f"{FLIP} a head whose winner differs between {a.name} and {b.name}",
                style="dim",
            )
        )
    console.print(
        Text(
            f"JSD: Jensen-Shannon divergence (bits, 0 same to 1 disjoint) between {a.name} and "
            f"{b.name} of the {what}" + (", on words aligned across the twins" if comp.kind == "sentences" else ""),
            style="dim",
        )
    )
    console.print()
    render_summary(console, comp, top_n)


def render_summary(console: Console, comp: Comparison, top_n: int = 5) -> None:
    a, b = comp.a, comp.b
    total = len(comp.layers) * len(comp.heads)
    if a.scores is not None and b.scores is not None:
        for side in (a, b):
            counts = side.scores.counts()
            parts = [f"{c.label!r} {n}" for c, n in zip(side.scores.candidates, counts)]
            if side.scores.ties():
                parts.append(f"tied {side.scores.ties()}")
            console.print(Text(f"{side.name}: heads won per candidate: " + ", ".join(parts)))
        flips = comp.flips
        names = [
            head_name(layer, head)
            for li, layer in enumerate(comp.layers)
            for hi, head in enumerate(comp.heads)
            if flips[li, hi]
        ]
        if names:
            shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
            between = "twins" if comp.kind == "sentences" else "two models"
            console.print(
                Text(
                    f"{len(names)} of {total} heads flip their winning candidate between the "
                    f"{between} ({FLIP}): {shown}",
                    style="bold",
                )
            )
        elif comp.blind_to_the_difference:
            console.print(
                Text(
                    f"No head flips: all {total} heads keep the same winning candidate (or tie) in "
                    "both sentences, as they must here (below).",
                    style="bold",
                )
            )
        elif comp.kind == "sentences":
            console.print(
                Text(
                    f"No head flips: all {total} heads keep the same winning candidate (or tie) in "
                    "both sentences, so none of them follows the change in meaning.",
                    style="bold",
                )
            )
        else:
            console.print(
                Text(f"No head flips: all {total} heads pick the same candidate (or tie) in both models.", style="bold")
            )
    if comp.blind_to_the_difference:
        console.print(
            Text(
                f"The twins are the same up to the focus {a.focus.label!r}, and a causal model's "
                "focus sees only itself and what comes before it: its attention is the same in both, "
                "whatever follows. Put the words that differ before the pronoun to compare.",
                style="yellow",
            )
        )
    order = sorted(
        ((float(comp.jsd[li, hi]), -li, -hi) for li in range(len(comp.layers)) for hi in range(len(comp.heads))),
        reverse=True,
    )[:top_n]
    parts = [f"{head_name(comp.layers[-li], comp.heads[-hi])} {d:.3f}" for d, li, hi in order]
    console.print(
        Text(
            f"largest divergence: {', '.join(parts)} · mean over {total} heads {float(comp.jsd.mean()):.3f}",
            style="dim" if comp.kind == "sentences" else "bold",
        )
    )
