"""Rich terminal view of `attnviz inspect`: config, parameter counts, a layers x heads grid of
roles and a detailed per-head table (or, with a baseline, differences from a random model)."""

from __future__ import annotations

import math

from rich.columns import Columns
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..analysis.heads import BROAD_ENTROPY, ROLE_ABBREVIATIONS, ROLE_EXCESS, STATS, HeadProfile, HeadReport
from ..analysis.params import ParameterCounts, human
from ..result import ModelInfo
from .terminal import model_header

ROLE_STYLES = {
    "previous token": "bold cyan",
    "next token": "bold blue",
    "self": "bold magenta",
    "special-token sink": "bold yellow",
    "first-token sink": "yellow",
    "punctuation": "bold green",
    "local": "cyan",
    "broad": "dim",
    "focused": "bold red",
    "mixed": "",
}
# Short column headers of the detailed table.
HEADERS = {
    "entropy": "ent",
    "confidence": "conf",
    "distance": "dist",
    "self": "self",
    "prev": "prev",
    "next": "next",
    "special": "spec",
    "first": "first",
    "punct": "punct",
    "local": "local",
}


def render_model(console: Console, info: ModelInfo, params: ParameterCounts) -> None:
    """The header, the config and the parameter counts."""
    for line in model_header("attnviz inspect", info, console.width):
        console.print(line, overflow="ellipsis", no_wrap=True)
    if not info.learned:
        console.print(
            Text(
                "Random weights: these patterns are not learned; the roles below come from "
                "the architecture and the seed alone.",
                style="yellow",
            )
        )
    console.print()
    config = {k: v for k, v in info.config.to_dict().items() if k != "extra"}
    items = [
        (k, f"{v:.7g}" if isinstance(v, float) else str(v)) for k, v in config.items()
    ]  # eps 1e-05, not 9.99...e-06
    grid = _config_grid(items, console.width)
    console.print(grid)
    console.print()
    console.print(parameter_table(params))


def _config_grid(items: list[tuple[str, str]], width: int) -> Table:
    """The config as name/value pairs in as many column pairs (3, 2 or 1) as fit in `width`
    uncut: a decoder's config has more and longer entries than an encoder's."""
    for pairs in (3, 2, 1):
        rows = math.ceil(len(items) / pairs)
        columns = [items[c * rows : (c + 1) * rows] for c in range(pairs)]
        needed = sum(max(len(k) for k, _ in col) + max(len(v) for _, v in col) for col in columns if col)
        if needed + 2 * pairs - 1 <= width:
            break
    grid = Table(title="config", title_justify="left", box=None, padding=(0, 1), pad_edge=False, show_header=False)
    for _ in range(pairs):
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(no_wrap=True)
    for r in range(rows):
        cells = []
        for col in columns:
            cells += list(col[r]) if r < len(col) else ["", ""]
        grid.add_row(*cells)
    return grid


def _count(n: int) -> str:
    return f"{n:,}" + (f" ({human(n)})" if n >= 1000 else "")


def parameter_table(params: ParameterCounts) -> Table:
    table = Table(title="parameters", title_justify="left", box=None, padding=(0, 1), pad_edge=False)
    table.add_column("part", no_wrap=True)
    table.add_column("each layer", justify="right", no_wrap=True)
    table.add_column("total", justify="right", no_wrap=True)
    names = {
        "word": "word embeddings",
        "position": "position embeddings",
        "token_type": "token-type embeddings",
        "norm": "embedding LayerNorm",
        "project": "embedding projection",
    }
    for part, n in params.embeddings.items():
        table.add_row(names.get(part, f"embeddings.{part}"), "", _count(n))
    table.add_row(Text("embeddings", style="bold"), "", Text(_count(params.embeddings_total), style="bold"))
    L = len(params.layers)
    labels = {
        "attention": "attention (Q, K, V, out)",
        "feed_forward": "feed-forward",
        "norms": "LayerNorms",
        "other": "other",
    }
    for part, label in labels.items():
        per_layer = {layer[part] for layer in params.layers}
        if part == "other" and per_layer <= {0}:
            continue
        each = _count(per_layer.pop()) if len(per_layer) == 1 else "varies"
        table.add_row(label, each, _count(params.part_total(part)))
    totals = {params.layer_total(i) for i in range(L)}
    table.add_row(
        Text(f"{L} layer{'s' if L != 1 else ''}", style="bold"),
        _count(totals.pop()) if len(totals) == 1 else "varies",
        Text(_count(sum(params.layer_total(i) for i in range(L))), style="bold"),
    )
    if params.final_norm:
        table.add_row("final LayerNorm", "", _count(params.final_norm))
    if params.other:
        table.add_row("other", "", _count(params.other))
    table.add_row(Text("total", style="bold"), "", Text(_count(params.total), style="bold"))
    return table


def role_grid(report: HeadReport, title: str) -> Table:
    """Layers as rows, heads as columns, each cell the head's role in short."""
    table = Table(title=title, title_justify="left", box=None, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("layer", justify="right", style="dim")
    for head in report.heads:
        table.add_column(str(head), justify="center", no_wrap=True)
    for layer, roles in zip(report.layers, report.grid()):
        table.add_row(str(layer), *(Text(ROLE_ABBREVIATIONS[r], style=ROLE_STYLES[r]) for r in roles))
    return table


def _number(value: float, column: str, signed: bool = False) -> Text:
    if math.isnan(value):
        return Text("-", style="dim")
    digits = 1 if column == "distance" else 2
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    style = ""
    if signed and round(value, digits) != 0:
        style = "green" if value > 0 else "red"
    return Text(text, style=style)


def detail_table(
    profiles: list[HeadProfile],
    report: HeadReport,
    sort: str,
    baseline: HeadReport | None = None,
    delta: dict[tuple[int, int], dict[str, float]] | None = None,
) -> Table:
    """One row per head in the given order; with a baseline, each statistic minus the baseline's.

    Sized to fit 80 columns: short headers and, with a baseline, short role names.
    """
    title = f"per head (L layer, H head), sorted by {sort}"
    if baseline is not None:
        title += "; statistics as model minus random baseline"
    table = Table(title=title, title_justify="left", box=None, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("L", justify="right", no_wrap=True)
    table.add_column("H", justify="right", no_wrap=True)
    table.add_column("role", no_wrap=True)
    if baseline is not None:
        table.add_column("random", no_wrap=True)
    for column in STATS:
        table.add_column(HEADERS[column], justify="right", no_wrap=True)
    for p in profiles:
        if baseline is None:
            cells = [str(p.layer), str(p.head), Text(p.role, style=ROLE_STYLES[p.role])]
            cells += [_number(p.stats[c], c) for c in STATS]
        else:
            b = baseline.profile(p.layer, p.head)
            cells = [
                str(p.layer),
                str(p.head),
                Text(ROLE_ABBREVIATIONS[p.role], style=ROLE_STYLES[p.role]),
                Text(ROLE_ABBREVIATIONS[b.role], style=ROLE_STYLES[b.role]),
            ]
            cells += [_number(delta[(p.layer, p.head)][c], c, signed=True) for c in STATS]
        table.add_row(*cells)
    if baseline is None:
        table.add_row(
            "",
            "",
            Text("uniform attention", style="dim italic"),
            *(Text(_number(report.uniform[c], c).plain, style="dim italic") for c in STATS),
        )
    return table


def render_heads(
    console: Console,
    report: HeadReport,
    profiles: list[HeadProfile],
    sort: str,
    probe: str,
    baseline: HeadReport | None = None,
    delta: dict[tuple[int, int], dict[str, float]] | None = None,
) -> None:
    console.print()
    n = report.sentences
    console.print(
        Text(
            f"head statistics over {probe}: {n} sentence{'s' if n != 1 else ''}, {report.queries} "
            "query tokens per head (special tokens are keys, not queries)",
            style="dim",
        )
    )
    console.print()
    grids = [role_grid(report, "roles")]
    if baseline is not None:
        grids.append(role_grid(baseline, "random baseline"))
    console.print(Columns(grids, padding=(0, 4)) if len(grids) > 1 else grids[0])
    present = {p.role for r in ([report] if baseline is None else [report, baseline]) for p in r.profiles}
    legend = Text("")
    for role, short in ROLE_ABBREVIATIONS.items():
        if role in present and short != role:
            legend.append(short, style=ROLE_STYLES[role] or "bold")
            legend.append(f" = {role}  ", style="dim")
    if legend.plain:
        console.print(legend)
    counts = ", ".join(f"{role} {n}" for role, n in report.role_counts().items())
    console.print(Text(f"{len(report.profiles)} heads: {counts}"))
    if baseline is not None:
        counts = ", ".join(f"{role} {n}" for role, n in baseline.role_counts().items())
        console.print(Text(f"random baseline: {counts}", style="dim"))
    console.print(
        Text(
            f"A role needs its target's share at least {ROLE_EXCESS:g} of the way from uniform "
            f"attention (1/T per token) to all the weight; broad: normalised entropy >= "
            f"{BROAD_ENTROPY:g}. See 'attnviz inspect --help'.",
            style="dim",
        )
    )
    console.print()
    console.print(detail_table(profiles, report, sort, baseline, delta))


def render_pronoun_heads(console: Console, heads, n_heads: int) -> None:
    """The heads that resolve pronouns on a probe set (a pronoun_heads.PronounHeads), with accuracy per cue."""
    console.print()
    for note in heads.notes:
        console.print(Text(note, style="yellow"))
    base = heads.baselines
    console.print(
        Text(
            f"pronoun heads · probe set {heads.probe_set} ({heads.n_items} items): a head resolves "
            f"pronouns when it beats always-nearest ({100 * base.get('nearest', 0):.1f}%) and "
            f"always-farthest ({100 * base.get('farthest', 0):.1f}%), each by an exact McNemar test "
            f"corrected for {n_heads} heads (Bonferroni, p < 0.05)",
            style="bold",
        )
    )
    found = heads.resolving()
    if not found:
        best = max(heads.heads, key=lambda h: h["accuracy"], default=None)
        tail = (
            f"; the best, layer {best['layer']} head {best['head']}, gets {100 * best['accuracy']:.1f}%" if best else ""
        )
        console.print(Text(f"no head resolves pronouns{tail}", style="yellow"))
        return
    cues = sorted(found[0]["by_cue"])
    confirmed = heads.causally_confirmed()  # empty until `probe coref --causal` ran
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    for name in ("layer", "head", "acc", *cues, "p nearest", "p farthest", *(["causal"] if heads.causal else [])):
        table.add_column(name, justify="right", no_wrap=True)
    for h in found:
        table.add_row(
            str(h["layer"]),
            str(h["head"]),
            f"{100 * h['accuracy']:.1f}%",
            *(f"{100 * h['by_cue'][c]:.1f}%" for c in cues),
            f"{h['p_nearest']:.2g}",
            f"{h['p_farthest']:.2g}",
            *(["✓" if (h["layer"], h["head"]) in confirmed else "·"] if heads.causal else []),
        )
    console.print(table)
    console.print(Text(f"{len(found)} of {n_heads} heads resolve pronouns", style="dim"))
    if heads.causal:
        both = sum((h["layer"], h["head"]) in confirmed for h in found)
        console.print(
            Text(
                f"causal: {len(confirmed)} heads confirmed by ablation on {heads.causal['n_items']} items "
                f"(✓: its ablation hurts the readout, sign test, Bonferroni); {both} of the {len(found)} above",
                style="dim",
            )
        )


def render_sequence_roles(console: Console, scores, baseline=None) -> None:
    """Heads on repeated random tokens (an analysis.sequence_roles.SequenceScores): the heads that
    pass a role with their three scores, uniform attention's, and the random baseline's best."""
    from ..analysis.sequence_roles import SCORES, SEQUENCE_EXCESS

    console.print()
    console.print(
        Text(
            f"heads on repeated random tokens ({scores.sequences} sequences, each repeated once; "
            f"{scores.queries} second-copy queries): induction = weight on the token after the "
            "earlier occurrence, duplicate = on the earlier occurrence, prev = on the previous token",
            style="bold",
        )
    )
    roles = scores.roles()
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    for name in ("layer", "head", *SCORES, "role"):
        table.add_column(name, justify="left" if name == "role" else "right", no_wrap=True)
    for (layer, head), names in sorted(
        roles.items(),
        key=lambda kv: (
            -max(scores.excess[s][scores.layers.index(kv[0][0]), scores.heads.index(kv[0][1])] for s in SCORES)
        ),
    ):
        li, hi = scores.layers.index(layer), scores.heads.index(head)
        table.add_row(str(layer), str(head), *(f"{scores.scores[s][li, hi]:.2f}" for s in SCORES), ", ".join(names))
    table.add_row("", "uniform", *(f"{scores.uniform[s]:.2f}" for s in SCORES), "")
    if baseline is not None:
        table.add_row(
            "",
            "random best",
            *(f"{baseline.scores[s].max():.2f}" for s in SCORES),
            f"{len(baseline.roles())} heads pass",
        )
    console.print(table)
    counts = {s: len(scores.heads_with(s)) for s in SCORES}
    console.print(
        Text(
            f"a head passes when its excess over uniform is at least {SEQUENCE_EXCESS}: "
            f"{counts['induction']} induction, {counts['duplicate']} duplicate-token, "
            f"{counts['prev']} previous-token heads of {scores.scores['prev'].size}",
            style="dim",
        )
    )
