"""The terminal overview of long texts (render/overview.py, analysis/pooling.py): pooled values
against a direct computation, a bounded output at 5,000 tokens, masked blocks drawn as masked, the
focus row's targets, and `show` choosing the overview (or the tables with --full)."""

import io
import re

import numpy as np
import pytest
from rich.console import Console

import builders
from attnviz.analysis.focus import Focus
from attnviz.analysis.pooling import block_edges, nice_ticks, pool_map, pool_row, rank_row
from attnviz.render.overview import MASKED_CHAR, SHADES, needs_overview, render_overview
from attnviz.render.terminal import render_header


def direct_pool(weights, skip, row_edges, col_edges, how):
    """Block by block, with Python loops: the reference."""
    R, C = len(row_edges) - 1, len(col_edges) - 1
    values, empty = np.zeros((R, C)), np.zeros((R, C), dtype=bool)
    for r in range(R):
        for c in range(C):
            block = weights[row_edges[r] : row_edges[r + 1], col_edges[c] : col_edges[c + 1]]
            kept = ~skip[row_edges[r] : row_edges[r + 1], col_edges[c] : col_edges[c + 1]]
            if not kept.any():
                empty[r, c] = True
            else:
                values[r, c] = block[kept].max() if how == "max" else block[kept].mean()
    return values, empty


@pytest.mark.parametrize("how", ["max", "mean"])
@pytest.mark.parametrize("shape", [(37, 5, 7), (10, 10, 10), (64, 3, 64), (5, 9, 9)])
def test_pooling_equals_a_direct_computation(how, shape):
    T, rows, cols = shape
    rng = np.random.default_rng(T + rows)
    weights = rng.random((T, T)).astype(np.float32)
    skip = np.triu(np.ones((T, T), dtype=bool), k=1)
    skip[:, 0] = True  # a sink left out
    pooled = pool_map(weights, skip, rows, cols, how)
    assert pooled.values.shape == (min(rows, T), min(cols, T))
    values, empty = direct_pool(weights, skip, pooled.row_edges, pooled.col_edges, how)
    np.testing.assert_array_equal(pooled.empty, empty)
    np.testing.assert_allclose(pooled.values, values, rtol=1e-6, atol=1e-7)
    # Block sizes differ by at most one token and cover every token once.
    for edges, n in ((pooled.row_edges, T), (pooled.col_edges, T)):
        assert edges[0] == 0 and edges[-1] == n and np.ptp(np.diff(edges)) <= 1


def test_row_pooling_ranking_and_ticks():
    row = np.array([0.1, 0.0, 0.5, 0.2, 0.2, 0.0], dtype=np.float32)
    skip = np.array([False, False, False, False, False, True])
    pooled = pool_row(row, skip, 3, "mean")
    np.testing.assert_allclose(pooled.values[0], [0.05, 0.35, 0.2])
    assert rank_row(row, skip, 3) == [(2, 0.5), (3, pytest.approx(0.2)), (4, pytest.approx(0.2))]
    assert rank_row(row, np.ones(6, dtype=bool), 3) == []
    assert list(block_edges(5, 10)) == [0, 1, 2, 3, 4, 5]
    ticks = nice_ticks(5000, 87, 6)
    assert ticks[0] == 0 and ticks[1] in (500, 1000) and all(b - a == ticks[1] for a, b in zip(ticks, ticks[1:]))


def long_result(T=5000, antecedent=123, focus=4000):
    """A causal result of T tokens, one layer, two heads. Head 0: each token splits its attention
    between the first token (a sink) and itself, except the focus token, which sends most of it to
    a distant antecedent. Head 1: uniform over what each token can see."""
    weights = np.zeros((1, 2, T, T), dtype=np.float32)
    idx = np.arange(T)
    weights[0, 0, idx, 0] += 0.5
    weights[0, 0, idx, idx] += 0.5
    weights[0, 0, focus] = 0
    weights[0, 0, focus, [0, antecedent, focus]] = [0.2, 0.6, 0.2]
    weights[0, 1] = np.tril(np.ones((T, T), dtype=np.float32)) / (idx[:, None] + 1)
    tokens = [f"w{i}" for i in range(T)]
    text = " ".join(tokens)
    offsets, at = [], 0
    for t in tokens:
        offsets.append((at, at + len(t)))
        at += len(t) + 1
    return builders.hand_result(weights, tokens, offsets, list(range(T)), text, causal=True)


def draw(result, focus=None, width=100, colour=False, how="max"):
    sink = io.StringIO()
    console = Console(
        file=sink,
        width=width,
        force_terminal=colour,
        color_system="truecolor" if colour else None,
        no_color=not colour,
        highlight=False,
    )
    render_header(console, result, 4)
    render_overview(console, result, focus, how)
    return sink.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("colour", [False, True])
def test_overview_of_5000_tokens_is_bounded(colour):
    result = long_result()
    focus = Focus(4000, "w4000")
    out = draw(result, focus, colour=colour)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    lines = plain.splitlines()
    assert len(lines) < 300
    assert max(len(line) for line in lines) <= 100
    assert len(out.encode()) < 150_000
    assert "5,000 tokens are too many for tables" in plain
    assert "max over blocks of up to" in plain
    assert "… and" in plain  # the token list of the header is cut short
    # The focus row: the distant antecedent first, with its position and distance.
    assert "1. 'w123' token 123 (0.60, 3,877 back)" in plain
    if not colour:
        maps = [i for i, line in enumerate(lines) if line.startswith("layer 0 · head")]
        assert len(maps) == 2
        # Head 1's map (uniform, causal): past the diagonal every block is masked; below it shaded.
        rows = int(re.search(r"· (\d+) x \d+ blocks", lines[maps[1]])[1])  # one line per row block
        body = [line[13:] for line in lines[maps[1] + 2 : maps[1] + 2 + rows]]
        assert all(set(cells) <= set(SHADES + MASKED_CHAR) for cells in body)
        assert len(body) > 10
        firsts = []
        for cells in body:
            firsts.append(cells.index(MASKED_CHAR) if MASKED_CHAR in cells else len(cells))
            assert set(cells[firsts[-1] :]) <= {MASKED_CHAR} and MASKED_CHAR not in cells[: firsts[-1]]
        assert firsts == sorted(firsts) and firsts[0] < 5 and firsts[-1] >= len(body[-1]) - 1
        assert body[0][0] == SHADES[-1]  # the first token attends to itself only: the map's top
        # The strip under the map marks the focus (▲) and its first target (1) at their columns.
        marks = next(line for line in lines if "▲" in line)
        assert marks.index("1") < marks.index("▲")
    else:
        assert "\x1b[38;2;" in out and "▀" in out


def test_mean_pooling_is_named_and_plain_width_holds():
    result = long_result(T=600, antecedent=10, focus=500)
    plain = draw(result, Focus(500, "w500"), width=80, how="mean")
    assert "mean over blocks of up to" in plain and "--pool max" in plain
    assert max(len(line) for line in plain.splitlines()) <= 80


def test_when_the_overview_replaces_the_tables():
    assert not needs_overview(30, 80)  # two blocks of keys: the tables still
    assert not needs_overview(58, 100)
    assert needs_overview(59, 100)
    assert needs_overview(5000, 300)


LONG = " ".join(f"word{i % 50} and it" for i in range(60))


@pytest.mark.slow
def test_show_uses_the_overview_and_full_asks_for_tables():
    from typer.testing import CliRunner

    from attnviz.cli import app

    runner = CliRunner()
    over = runner.invoke(app, ["show", LONG, "-l", "0", "--head", "0", "--focus", "it"])
    assert over.exit_code == 0, over.output
    assert "too many for tables" in over.stdout and "--full for the tables" in over.stdout
    assert "attends to: 1." in over.stdout
    assert "keys 0-" not in over.stdout
    assert len(over.stdout.splitlines()) < 120
    full = runner.invoke(app, ["show", LONG, "-l", "0", "--head", "0", "--full"])
    assert full.exit_code == 0 and "keys 0-" in full.stdout and "too many for tables" not in full.stdout
    mean = runner.invoke(app, ["show", LONG, "-l", "0", "--head", "0", "--pool", "mean"])
    assert mean.exit_code == 0 and "mean over blocks" in mean.stdout
    bad = runner.invoke(app, ["show", LONG, "--pool", "median"])
    assert bad.exit_code == 2
