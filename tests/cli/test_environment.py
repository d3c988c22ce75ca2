"""Issue 16 kind 8: the environment. An ASCII-only output encoding degrades the output instead of
crashing; an unknown MPLBACKEND does not concern attnviz's own drawing; a memory limit of 5,000
digits or of non-ASCII digits is one line; a deleted working folder is one line (not oneMKL's own
fatal message); a file name that is not UTF-8 is written as given; a closed standard input is one
line. Also `show -`: the sentence comes from standard input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from attnviz.sizes import parse_bytes
from cli_process import ROOT, attnviz_cmd, one_error_line

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]


def test_ascii_output_encoding_degrades():
    proc = attnviz_cmd("show", "a dog", env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b""
    proc.stdout.decode("ascii")  # every byte ASCII: '·' became '?'
    assert b"layer 0 ? head 0" in proc.stdout


def test_json_stays_utf8_whatever_the_output_encoding():
    proc = attnviz_cmd("show", "개가 먹었다", "--format", "json", env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.decode("utf-8"))["text"] == "개가 먹었다"


def test_unknown_matplotlib_backend_is_ignored(tmp_path):
    proc = attnviz_cmd("show", "a dog", "--png", str(tmp_path / "o.png"), env={"MPLBACKEND": "nonexistent"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("limit", ["9" * 5000, "٣G", "３G", "1" + "0" * 25])
def test_memory_limit_that_is_no_size_is_one_line(limit):
    proc = attnviz_cmd("show", "a dog", env={"ATTNVIZ_MAX_MEMORY": limit})
    line = one_error_line(proc)
    assert "ATTNVIZ_MAX_MEMORY=" in line and "is not a size" in line and len(line) < 200


def test_parse_bytes_takes_ascii_digits_only():
    assert parse_bytes("2G") == 2 * 1024**3
    assert parse_bytes("1.5M") == int(1.5 * 1024**2)
    assert parse_bytes("٣G") is None and parse_bytes("9" * 5000) is None


def test_deleted_working_folder_is_one_line(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    script = f"cd {gone} && rmdir {gone} && exec {sys.executable} -m attnviz show 'a dog'"
    proc = subprocess.run(
        ["sh", "-c", script], capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120
    )
    assert "current folder no longer exists" in one_error_line(proc)


def test_output_name_that_is_not_utf8(tmp_path):
    name = os.fsdecode(b"\xff.json")
    proc = attnviz_cmd("show", "a dog", "--format", "json", "-o", name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / name).read_text())["text"] == "a dog"
    assert os.listdir(tmp_path) == [name]


def test_closed_standard_input_is_one_line():
    proc = subprocess.run(
        ["sh", "-c", f"exec {sys.executable} -m attnviz show - <&-"],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert "standard input is closed" in one_error_line(proc)


def test_show_dash_reads_the_sentence_from_standard_input():
    proc = attnviz_cmd("show", "-", "--format", "json", stdin="A dog ate.\n".encode())
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["text"] == "A dog ate." and "-" not in data["tokens"]
