"""The heatmap tables draw their rows as Text lines, not as Table cells (see render/terminal.py's
head_table): the characters and styles must be those a rich Table of every cell gives. The
reference below is the Table the module drew before, cell by cell."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

import attnviz
from attnviz.analysis.words import to_words
from attnviz.config import EncoderConfig
from attnviz.render import terminal as t


def reference_table(result, layer, head, width) -> Group:
    weights = result.head(layer, head)
    labels = result.labels
    T = len(labels)
    mode, per_block = t._layout(T, width)
    masked = result.masked()
    ranked = ~masked
    ranked[:, list(result.excluded)] = False
    row_max = np.where(ranked, weights, -np.inf).argmax(axis=1)
    row_max[~ranked.any(axis=1)] = -1
    top = t._colour_top(result, weights, ranked)
    blocks = []
    for start in range(0, T, per_block):
        keys = range(start, min(T, start + per_block))
        title = f"layer {layer} · " + (f"head {head}" if head >= 0 else "rollout")
        if per_block < T:
            title += f" · keys {keys.start}-{keys.stop - 1}"
        if top < 1.0:
            title += f" · colour 0-{top:.2f}"
        table = Table(
            title=title,
            title_justify="left",
            box=None,
            show_edge=False,
            padding=(0, 1 if mode == "normal" else 0),
            pad_edge=False,
            collapse_padding=True,
        )
        table.add_column("query", no_wrap=True, width=t.ROW_LABEL_WIDTH, overflow="ellipsis")
        for j in keys:
            header = f"{j}" if mode == "compact" else Text(f"{j}\n") + t.fit_label(labels[j], 5)
            table.add_column(header, justify="right", no_wrap=True, width=5 if mode == "normal" else 3)
        for i in range(T):
            cells = [t.fit_label(f"{i:>{len(str(T - 1))}} {labels[i]}", t.ROW_LABEL_WIDTH)]
            for j in keys:
                if masked[i, j]:
                    cells.append(Text(t.MASKED + (" " if mode == "normal" else ""), style="dim"))
                    continue
                v = float(weights[i, j])
                is_max = j == row_max[i]
                if mode == "normal":
                    body = f"{v:.2f}" + (t.MARK if is_max else " ")
                else:
                    body = (t.MARK if is_max else " ") + f"{min(round(v * 100), 99):02d}"
                style = t.cell_style(v / top, is_max) if ranked[i, j] else t.SINK_STYLE
                cells.append(Text(body, style=style))
            table.add_row(*cells)
        blocks.append(table)
    return Group(*blocks)


def styled_cells(renderable, width: int) -> list[list[tuple[str, str]]]:
    """Every character on screen with its style, line by line."""
    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system="truecolor")
    lines = console.render_lines(renderable, console.options, pad=False, new_lines=False)
    return [[(ch, str(seg.style or "")) for seg in line if not seg.control for ch in seg.text] for line in lines]


SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "그 동물은 길을 건너지 않았는데, 그것이 너무 피곤했기 때문이다.",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism, it said.",
    "Café naïve it.",
]


@pytest.fixture(scope="module")
def models():
    return {
        "encoder": attnviz.load_model("random"),
        "causal": attnviz.load_model("random", config=EncoderConfig(causal=True)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["encoder", "causal"])
@pytest.mark.parametrize("text", SENTENCES)
@pytest.mark.parametrize("width", [200, 100, 60, 30])
@pytest.mark.parametrize("variant", ["tokens", "sinks", "words"])
def test_rows_match_a_table_of_every_cell(models, kind, text, width, variant):
    result = attnviz.attention(models[kind], text)
    if variant == "sinks":
        result = result.without_sinks()
    elif variant == "words":
        result = to_words(result)
    for head in (0, 3):
        got = styled_cells(t.head_table(result, 1, head, width), width)
        assert got == styled_cells(reference_table(result, 1, head, width), width)
        assert any(style for line in got for _, style in line)  # coloured: the comparison sees styles


def test_rows_match_for_a_rollout_map(models):
    result = attnviz.attention(models["encoder"], SENTENCES[0], view="rollout")
    assert styled_cells(t.head_table(result, 1, -1, 120), 120) == styled_cells(reference_table(result, 1, -1, 120), 120)
