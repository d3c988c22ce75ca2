"""`-o -` is standard output for text and JSON; a binary format, an image, a page or an export folder
given `-` is refused in one error line before anything is written."""

from __future__ import annotations

import json
import pytest
from cli_runs import TINY, assert_one_error_line, invoke, run_attnviz


@pytest.mark.slow
@pytest.mark.parametrize(
    "args, starts",
    [
        (["show", "hi it", "--format", "json"], '{"text": "hi it"'),
        (["show", "hi it"], "attnviz · random"),
        (["inspect", "-t", "hi it", "--format", "json"], "{"),
        (["inspect", "-t", "hi it"], "attnviz inspect · random"),
        (["compare", "hi it", "hi them", "--format", "json"], '{"kind": "sentences"'),
        (["compare", "hi it", "hi them"], ""),
        (["probe", "coref", "agreement", "--format", "json"], '{"source": "agreement"'),
    ],
)
def test_dash_output_is_standard_output(tmp_path, monkeypatch, args, starts):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    to_dash = invoke(*args, "-o", "-")
    plain = invoke(*args)
    assert to_dash.exit_code == 0, to_dash.output
    assert to_dash.stdout == plain.stdout and to_dash.stdout.startswith(starts) and to_dash.stdout.strip()
    assert not (tmp_path / "-").exists()
    if "json" in args:
        json.loads(to_dash.stdout)


@pytest.mark.slow
@pytest.mark.subprocess
def test_dash_output_is_refused_for_npz(tmp_path):
    line = assert_one_error_line(run_attnviz("show", "hi it", "--format", "npz", "-o", "-", cwd=tmp_path))
    assert line == "attnviz: error: --format npz is binary: give a file with --output FILE.npz, not -"
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize(
    "command, shown",
    [
        (["show", "hi it", *TINY, "--png", "-"], "--png writes a file: give it a name"),
        (["show", "hi it", *TINY, "--html", "-"], "--html writes a file: give it a name"),
        (["compare", "A cat.", "A dog.", *TINY, "--png", "-"], "--png writes a file: give it a name"),
        (["export", "hi it", *TINY, "-o", "-"], "--output writes a folder: give it a name"),
    ],
)
def test_a_dash_for_an_image_a_page_or_a_folder_is_refused(tmp_path, monkeypatch, command, shown):
    """`-o -` is standard output (text); an image, a page or an export folder called `-` was a file
    or folder of that name in the current folder."""
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(invoke(*command), shown)
    assert list(tmp_path.iterdir()) == []
