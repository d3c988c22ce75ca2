"""Rich terminal view of a coreference probe: accuracy grid, twins grid, best heads, baselines, verdict."""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..analysis.probe import ProbeResult
from .terminal import cell_style


def _grid(
    console: Console, title: str, values: np.ndarray, result: ProbeResult, threshold: float, low: float, high: float
) -> None:
    """layers x heads, percentages; colour from `low` (dark) to `high` (bright); cells above
    `threshold` bold with a mark."""
    wide = console.width >= 7 + len(result.heads) * 6
    console.print(Text(title, style="italic"))
    table = Table(box=None, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("layer", justify="right", no_wrap=True)
    for head in result.heads:
        table.add_column(f"h{head}" if head >= 0 else "mean", justify="right", no_wrap=True, min_width=5 if wide else 3)
    for li, layer in enumerate(result.layers):
        cells = [str(layer)]
        for hi in range(len(result.heads)):
            v = float(values[li, hi])
            above = v > threshold
            body = f"{100 * v:.1f}" if wide else f"{round(100 * v):2d}"
            shade = (v - low) / (high - low) if high > low else 0.5
            cells.append(Text(body + ("+" if above else " "), style=cell_style(shade, above)))
        table.add_row(*cells)
    console.print(table)


def render_probe(console: Console, result: ProbeResult, top: int = 10) -> None:
    model = result.model
    console.print(
        Text.assemble(
            ("attnviz probe coref", "bold"),
            " · ",
            (model.get("name", "?"), "bold cyan"),
            " · view: ",
            result.view,
            " · ",
            result.source,
        )
    )
    if not model.get("learned", True):
        console.print(Text("Random weights: these heads cannot know anything; expect chance.", style="yellow"))
    skipped = result.skipped
    line = f"{result.n_items} items scored, {len(skipped)} skipped"
    if skipped:
        lines = ", ".join(str(s.line) for s in skipped[:15]) + (" ..." if len(skipped) > 15 else "")
        line += f" (lines {lines}; reasons on stderr)"
    console.print(line)
    if not result.n_items:
        return
    data = result.to_dict(top)
    base = data["baselines"]
    better = max(base["nearest"], base["farthest"])
    acc = result.accuracy()
    console.print()
    console.print(
        Text(
            "A head picks the candidate that gets more word-level attention from the pronoun "
            "(sum over the candidate's pieces, mean over the pronoun's). '+' marks heads above the "
            f"better baseline ({100 * better:.1f}%).",
            style="dim",
        )
    )
    _grid(console, "accuracy (%) per layer and head", acc, result, better, 0.25, 0.75)
    both = result.both_right()
    if both is not None:
        bb = data["baselines_both_right"]
        console.print()
        console.print(
            Text(
                f"{data['n_groups']} twin groups: a head gets a group when it gets every twin right; "
                f"chance {100 * bb['chance']:.1f}%, always-nearest {100 * bb['nearest']:.1f}%, "
                f"always-farthest {100 * bb['farthest']:.1f}%"
                + (
                    f" ({data['n_incomplete_groups']} group(s) lost a twin to skipping)"
                    if data["n_incomplete_groups"]
                    else ""
                ),
                style="dim",
            )
        )
        _grid(console, "both twins right (%) per layer and head", both, result, bb["chance"], 0.0, 0.5)
    console.print()
    table = Table(title=f"best heads of {acc.size}", title_justify="left", box=None, padding=(0, 1), pad_edge=False)
    # Short headers: with a column per cue the table must still fit 80 columns.
    for name in ("#", "layer", "head", "acc", "correct"):
        table.add_column(name, justify="right", no_wrap=True)
    cues = data.get("cues", {})
    for cue in cues:
        table.add_column(cue, justify="right", no_wrap=True)
    if both is not None:
        table.add_column("twins", justify="right", no_wrap=True)
    table.add_column("+/-", justify="right", no_wrap=True)
    table.add_column("p corr.", justify="right", no_wrap=True)
    for rank, entry in enumerate(data["best"], start=1):
        vs = entry["vs_baseline"]
        cells = [
            str(rank),
            str(entry["layer"]),
            str(entry["head"]) if entry["head"] >= 0 else "mean",
            f"{100 * entry['accuracy']:.1f}%",
            f"{entry['correct']}/{result.n_items}",
        ]
        cells += [f"{100 * entry['by_cue'][cue]:.1f}%" for cue in cues]
        if both is not None:
            cells.append(f"{100 * entry['both_right']:.1f}%")
        cells += [f"{vs['wins']}/{vs['losses']}", f"{vs['p_corrected']:.2g}"]
        table.add_row(*cells)
    console.print(table)
    console.print(
        Text(
            f"baselines: always the nearest candidate {100 * base['nearest']:.1f}%, always the farthest "
            f"{100 * base['farthest']:.1f}%, chance {100 * base['chance']:.1f}% · "
            + ("acc per cue; twins: groups with every twin right; " if cues else "")
            + "+/-: items the head gets and the better baseline misses / the reverse; "
            "p corr.: exact one-sided McNemar, times the number of heads (Bonferroni)",
            style="dim",
        )
    )
    for cue, summary in cues.items():
        console.print(
            Text(
                f"cue {cue}: {summary['n_items']} items; always the nearest "
                f"{100 * summary['baselines']['nearest']:.1f}%, always the farthest "
                f"{100 * summary['baselines']['farthest']:.1f}%",
                style="dim",
            )
        )
    verdict = data["verdict"]
    console.print(Text(verdict["text"], style="bold green" if verdict["beats_baselines"] else "bold"))
