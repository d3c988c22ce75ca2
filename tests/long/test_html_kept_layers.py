"""`show --html` of a long text keeps the maps of the page's layers only (layer 0 unless --layer),
the size check before loading counts only those, and the page is the one made from every map."""

from __future__ import annotations

import dataclasses
import importlib

import pytest

import cli_runs
from attnviz import pipeline, sizes

LONG = " ".join(f"word{i % 41} and it" for i in range(200))  # ~600 tokens: past html.LONG_FROM (512)
MODEL = ["--max-len", "1024", "--causal", "--num-layers", "3", "--num-heads", "2", "--d-model", "16", "--d-ff", "32"]
show_module = importlib.import_module("attnviz.cli.show")  # the module (attnviz.cli.show is the command)


def run(tmp_path, monkeypatch, name, *extra):
    """Run show; returns (the page's bytes, the layers of each result computed, the check's maps)."""
    results, checked = [], []
    original_run, original_check = pipeline.run_attention, sizes.check_plan

    def spy_run(*args, **kwargs):
        result = original_run(*args, **kwargs)
        results.append(result.layers)
        return result

    def spy_check(config, tokens, layers, heads, outputs, folder=None, **more):
        checked.append((tokens, layers, heads, outputs.html))
        return original_check(config, tokens, layers, heads, outputs, folder, **more)

    monkeypatch.setattr(pipeline, "run_attention", spy_run)
    monkeypatch.setattr(sizes, "check_plan", spy_check)
    page = tmp_path / f"{name}.html"
    done = cli_runs.invoke("show", LONG, *MODEL, "--focus", "it", "--html", str(page), *extra)
    assert done.exit_code == 0, done.output
    monkeypatch.undo()
    return page.read_bytes(), results, checked


def every_map_plan(monkeypatch):
    """The plan before pages kept their layers only: --html computed and kept every map."""
    original = show_module._Plan.of

    def of(*args, **kwargs):
        plan = original(*args, **kwargs)
        return dataclasses.replace(plan, streamed=False) if plan.html else plan

    monkeypatch.setattr(show_module._Plan, "of", staticmethod(of))


@pytest.mark.slow
@pytest.mark.parametrize("extra,page_layers", [((), [0]), (("-l", "1", "--head", "1"), [1])])
def test_long_html_keeps_the_page_layers_only(tmp_path, monkeypatch, extra, page_layers):
    page, results, checked = run(tmp_path, monkeypatch, "streamed", *extra)
    assert results == [page_layers]  # one pass, the page's maps only
    ((tokens, count, per, html),) = checked
    assert tokens > 512 and count == len(page_layers) and html
    assert per == (1 if "--head" in extra else 2)
    every_map_plan(monkeypatch)
    before, results, checked = run(tmp_path, monkeypatch, "every", *extra)
    # The old plan: every map of the layers loaded (up to the last chosen), every map counted.
    assert results == [list(range(page_layers[-1] + 1 if extra else 3))] and checked[0][1] == 3
    assert page == before
    assert b"attnviz-long/1" in page


@pytest.mark.slow
def test_long_html_with_a_file_keeps_what_the_file_writes(tmp_path, monkeypatch):
    """--format npz alongside: the file holds every chosen layer, so those maps are kept too."""
    out = tmp_path / "all.npz"
    page, results, checked = run(tmp_path, monkeypatch, "npz", "--format", "npz", "-o", str(out))
    assert results == [[0, 1, 2]] and checked[0][1] == 3
    import numpy as np

    assert np.load(out)["weights"].shape[:2] == (3, 2)


def test_page_layers_rule():
    assert show_module._page_layers([0, 1, 2], False, 600) == ([0], True)
    assert show_module._page_layers([0, 1, 2], False, 512) == ([0, 1, 2], False)
    assert show_module._page_layers([1, 2], True, 600) == ([1, 2], False)
    assert show_module._page_layers([0], False, 600) == ([0], False)
