"""Text that is not UTF-8, on standard input or in an argument, is one error line naming the line or
the byte; UTF-8 with a byte-order mark, and Korean, read as they are."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from cli_runs import ROOT, assert_one_error_line, run_attnviz


@pytest.mark.slow
@pytest.mark.subprocess
def test_export_from_stdin_with_bad_utf8_names_the_line(tmp_path):
    out = tmp_path / "o"
    line = assert_one_error_line(run_attnviz("export", "-", "-o", str(out), stdin=b"The cat sat.\nThe caf\xe9 it.\n"))
    assert line == "attnviz: error: standard input is not UTF-8 text (bad byte at line 2); convert it to UTF-8"
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
@pytest.mark.subprocess
def test_inspect_file_stdin_with_bad_utf8_names_the_line():
    line = assert_one_error_line(run_attnviz("inspect", "--file", "-", stdin=b"The caf\xe9 it.\n"))
    assert line == "attnviz: error: standard input is not UTF-8 text (bad byte at line 1); convert it to UTF-8"


@pytest.mark.slow
@pytest.mark.subprocess
def test_good_utf8_on_stdin_still_works():
    proc = run_attnviz(
        "inspect",
        "--file",
        "-",
        "--no-pronouns",
        "--format",
        "json",
        stdin="\ufeffThe café it.\n그것이 피곤했다.\n".encode("utf-8"),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["probe"]["texts"] == ["The café it.", "그것이 피곤했다."]


@pytest.mark.slow
@pytest.mark.subprocess
def test_argument_with_bad_utf8_is_one_line():
    # What a shell passes for $'caf\xe9 it': Python decodes it with surrogateescape.
    proc = subprocess.run(
        [sys.executable, "-m", "attnviz", "show", b"caf\xe9 it"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    line = assert_one_error_line(proc)
    assert line == "attnviz: error: the text is not valid UTF-8 (bad byte 0xe9); convert it to UTF-8"
