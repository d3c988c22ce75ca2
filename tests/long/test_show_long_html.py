"""`show --html` of a long text: the long page, layer 0 unless --layer, and it says so; --png of a
long text says its cells are pooled."""

import json
import re

import pytest
from typer.testing import CliRunner

from attnviz.cli import app

LONG = " ".join(f"word{i % 41} and it" for i in range(200))  # ~600 tokens


def data_of(path):
    page = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'<script type="application/json" id="attnviz-data">(.*?)</script>', page, re.S)[1])


@pytest.mark.slow
def test_show_html_of_a_long_text(tmp_path):
    runner = CliRunner()
    base = ["show", LONG, "--max-len", "1024", "--causal", "--focus", "it"]
    done = runner.invoke(app, [*base, "--html", str(tmp_path / "a.html")])
    assert done.exit_code == 0, done.output
    assert "interactive HTML of a long text" in done.stderr
    data = data_of(tmp_path / "a.html")
    assert data["format"] == "attnviz-long/1" and data["T"] > 512
    assert data["layers"] == [0] and len(data["heads"]) == 4
    assert any("This page holds layer 0 of 2" in note for note in data["notes"])
    done = runner.invoke(app, [*base, "-l", "1", "--head", "2,3", "--html", str(tmp_path / "b.html")])
    assert done.exit_code == 0, done.output
    data = data_of(tmp_path / "b.html")
    assert [(h["layer"], h["head"]) for h in data["heads"]] == [(1, 2), (1, 3)]
    assert not any("This page holds" in note for note in data["notes"])
    done = runner.invoke(app, [*base, "-l", "0", "--head", "0", "--png", str(tmp_path / "c.png")])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # With --focus the image is the focus layout: past 200 tokens its columns are pooled, and it says so.
    assert re.search(r"cells are pooled: \d+ tokens in 200 blocks of up to \d+ tokens", done.stderr)
    assert "the focus token's block row is token" in done.stderr
