"""Issue 16 kind 7: unbounded or blocking reads. What is not a regular file (a FIFO, /dev/zero, a
folder) is refused before a byte is read, with a line that says what it is; what is read is capped
(generously for real files) with a clear line. A FIFO must not hang: each case runs with a timeout."""

from __future__ import annotations

import os

import pytest

from attnviz.checkpoints import random_model, save_model
from attnviz.cli import main
from attnviz.config import EncoderConfig
from attnviz.reading import MB, read_bytes, read_text
from attnviz.errors import AttnvizError
from cli_process import attnviz_cmd, one_error_line, one_line_in_process


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["show", "a dog", "--tokenizer", "{p}"],
        ["probe", "coref", "{p}"],
        ["inspect", "--file", "{p}"],
        ["inspect", "--pronoun-set", "{p}"],
    ],
    ids=["tokenizer", "probe", "inspect-file", "pronoun-set"],
)
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
def test_not_a_regular_file_is_refused(args, kind, fifo, tmp_path, capsys):
    path = {"fifo": fifo, "dev-zero": "/dev/zero", "folder": tmp_path}[kind]
    if kind == "folder" and args[0] == "show":
        pytest.skip("a folder for --tokenizer means the tokenizer.json inside it")
    code = main([a.format(p=path) for a in args])
    line = one_line_in_process(capsys, code)
    assert {"fifo": "named pipe (FIFO)", "dev-zero": "a device", "folder": "is a folder"}[kind] in line, line
    assert "no such file" not in line


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_config_json_that_is_not_a_file_is_refused(kind, fifo, tmp_path, capsys):
    folder = tmp_path / "m"
    save_model(random_model(EncoderConfig(), seed=0), folder)
    (folder / "config.json").unlink()
    (folder / "config.json").symlink_to(fifo if kind == "fifo" else "/dev/zero")
    code = main(["show", "a dog", "-m", str(folder)])
    assert "not a regular file" in one_line_in_process(capsys, code)


def test_reads_are_capped(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as handle:
        handle.truncate(3 * MB)  # sparse: costs no disk
    with pytest.raises(AttnvizError, match="larger than 2 MB"):
        read_bytes(big, "a smaller file", 2 * MB)
    assert len(read_bytes(big, "a file", 3 * MB)) == 3 * MB
    with pytest.raises(AttnvizError, match="big.txt is larger than 1 MB, more than attnviz reads; give a text file"):
        read_text(big, "a text file", 1 * MB)


def test_a_file_growing_past_the_cap_is_refused_while_read(monkeypatch, tmp_path):
    # st_size can lie (/proc files say 0); the loop stops at the cap whatever the size said.
    path = tmp_path / "small"
    path.write_bytes(b"x" * 100)
    real_fstat = os.fstat

    class Small:
        def __init__(self, info):
            self.st_mode, self.st_size = info.st_mode, 0

    monkeypatch.setattr("attnviz.reading.os.fstat", lambda fd: Small(real_fstat(fd)))
    with pytest.raises(AttnvizError, match="larger than"):
        read_bytes(path, "a file", 50)


def test_probe_file_over_the_cap_is_one_line(tmp_path, capsys):
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as handle:
        handle.truncate(101 * MB)
    code = main(["probe", "coref", str(big)])
    assert "larger than 100 MB" in one_line_in_process(capsys, code)


@pytest.mark.subprocess
def test_standard_input_is_capped():
    # `show - < /dev/zero`: was memory growing until the machine killed something.
    with open("/dev/zero", "rb") as zero:
        proc = attnviz_cmd("show", "-", stdin=zero, timeout=120)
    assert "standard input is larger than 100 MB" in one_error_line(proc)
