"""Figure flags (--preset, --cmap, --dpi, ...) without --png are refused in one line, exit 2,
before the model loads, instead of being silently ignored."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from attnviz.cli import app

SENTENCE = "The animal didn't cross the street because it was too tired."


@pytest.mark.parametrize(
    "args, named",
    [
        (["--preset", "slide"], "--preset shapes an image"),
        (["--cmap", "magma", "--dpi", "200"], "--cmap, --dpi shape an image"),
        (["--scale", "auto", "--format", "json"], "--scale shapes an image"),
        (["--transparent", "--html", "page.html"], "--transparent shapes an image"),
    ],
)
def test_show_refuses_figure_flags_without_png(args, named, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(app, ["show", SENTENCE, *args])
    assert done.exit_code == 2
    assert done.stderr == f"attnviz: error: {named}: add --png FILE (the terminal tables and --html do not use it)\n"
    assert done.stdout == "" and list(tmp_path.iterdir()) == []  # nothing written, no page


def test_compare_refuses_a_preset_without_png():
    done = CliRunner().invoke(app, ["compare", "It sat.", "It ran.", "--preset", "paper"])
    assert done.exit_code == 2 and done.stderr.startswith("attnviz: error: --preset shapes an image: add --png")
    assert done.stderr.count("\n") == 1


def test_figure_flags_with_png_still_draw(tmp_path):
    done = CliRunner().invoke(app, ["show", "All is well.", "--png", str(tmp_path / "a.png"), "--preset", "slide"])
    assert done.exit_code == 0 and (tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
