"""What export reads is bounded and must be a regular file (issue 16, kinds 7 and 8): standard
input or a file of endless bytes stops at MAX_INPUT_BYTES with one line; a FIFO or a device named
as an input is refused without being opened; a closed standard input is one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from attnviz.errors import AttnvizError
from attnviz.export import inputs

TINY = ["--num-layers", "2", "--num-heads", "2", "--d-model", "16", "--d-ff", "32", "--jobs", "1"]


def run(*args, **kwargs):
    cmd = [sys.executable, "-m", "attnviz", "export", *args, *TINY]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


def one_error_line(done, fragment):
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnviz: error: "), done.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.subprocess
def test_endless_standard_input_stops_with_one_line(tmp_path):
    with open("/dev/zero", "rb") as zero:
        done = run("-", "-o", str(tmp_path / "out"), stdin=zero)
    one_error_line(done, "error: standard input holds more than 64 MB of text")
    assert not (tmp_path / "out").exists()


@pytest.mark.subprocess
def test_a_closed_standard_input_is_one_line(tmp_path):
    out = tmp_path / "out"
    cmd = " ".join([sys.executable, "-m", "attnviz", "export", "-", "-o", str(out), *TINY]) + " <&-"
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    one_error_line(done, "standard input is closed")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_not_a_sentence_file(device):
    with pytest.raises(AttnvizError, match=f"{device} is not a regular file"):
        inputs.collect_sentences([device])


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    with pytest.raises(AttnvizError, match="is not a regular file"):
        inputs.collect_sentences([str(fifo)])


def test_a_fifo_in_a_folder_of_texts_is_skipped(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "real.txt").write_text("One it.\n", encoding="utf-8")
    assert [s.text for s in inputs.collect_sentences([str(tmp_path)])] == ["One it."]


def test_a_file_over_the_cap_is_refused_with_its_name(tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 1024 * 1024)
    big = tmp_path / "big.txt"
    big.write_bytes(b"It was fine.\n" * 100_000)  # 1.3 MB
    with pytest.raises(AttnvizError, match=f"{big} holds more than 1 MB of text"):
        inputs.collect_sentences([str(big)])
