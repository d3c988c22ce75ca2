"""Issue 16 kind 3: read-only and full disks, and standard output that cannot be written. Every
write is complete or reported as one line with exit 2; the clean-up of a temporary file never hides
the real error; a closed pipe stays a quiet exit. The file systems are small tmpfs mounts, which
need root (skipped otherwise)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

import attnviz.files as files
from attnviz.cli import main
from attnviz.errors import AttnvizError
from cli_process import ROOT, attnviz_cmd, one_error_line, one_line_in_process

SENTENCE = "The animal didn't cross the street because it was too tired."

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


def _mount(folder, size="64k"):
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def readonly(tmp_path):
    folder = tmp_path / "ro"
    _mount(folder)
    (folder / "keep.txt").write_text("the user's file\n")
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def full(tmp_path):
    """A 64 KB tmpfs with 60,000 bytes taken: room for a few small files, not for a JSON result."""
    folder = tmp_path / "full"
    _mount(folder)
    (folder / "filler").write_bytes(b"\0" * 60_000)
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@root_only
@pytest.mark.parametrize(
    "args",
    [
        ["show", "a dog", "--png", "{d}/o.png"],
        ["show", "a dog", "-o", "{d}/o.txt"],
        ["show", "a dog", "--html", "{d}/o.html"],
        ["show", "a dog", "--format", "npz", "-o", "{d}/o.npz"],
        ["show", "a dog", "--format", "json", "-o", "{d}/o.json"],
        ["inspect", "-o", "{d}/i.txt"],
        ["compare", "A dog ate because it was hungry.", "A cat ate because it was hungry.", "--png", "{d}/c.png"],
        ["init", "{d}/model"],
    ],
    ids=["png", "table", "html", "npz", "json", "inspect", "compare", "init"],
)
def test_read_only_file_system_is_one_line_naming_the_real_error(readonly, args, capsys):
    code = main([a.format(d=readonly) for a in args])
    line = one_line_in_process(capsys, code)
    assert "read-only file system" in line, line
    assert sorted(p.name for p in readonly.iterdir()) == ["keep.txt"]


@root_only
def test_full_disk_file_output_is_refused_before_the_run_and_leaves_nothing(full, capsys):
    code = main(["show", SENTENCE, "--format", "json", "-o", str(full / "o.json")])
    line = one_line_in_process(capsys, code)
    assert "to JSON would take about" in line and "free" in line, line
    assert sorted(p.name for p in full.iterdir()) == ["filler"]


@root_only
def test_full_disk_met_while_writing_is_reported_and_leaves_nothing(full, capsys, monkeypatch):
    """The free space checked before the run can be taken by another program meanwhile: the
    write itself then fails, and that is one line naming the real error, with nothing left."""
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=1 << 40))
    code = main(["show", SENTENCE, "--format", "json", "-o", str(full / "o.json")])
    assert "no space left on device" in one_line_in_process(capsys, code)
    assert sorted(p.name for p in full.iterdir()) == ["filler"]


@root_only
@pytest.mark.slow
@pytest.mark.subprocess
def test_full_disk_standard_output_is_not_a_silent_success(full):
    # `show --format json > file` on a nearly full disk: was exit 0 with a cut, invalid JSON file.
    with open(full / "out.json", "wb") as sink:
        proc = attnviz_cmd("show", SENTENCE, "--format", "json", stdout=sink)
    assert "cannot write standard output: no space left on device" in one_error_line(proc)


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("args", [["show", "a dog"], ["show", "a dog", "--format", "json"], ["inspect"]])
def test_dev_full_is_one_line_exit_2(args):
    with open("/dev/full", "wb") as sink:
        proc = attnviz_cmd(*args, stdout=sink)
    assert "cannot write standard output" in one_error_line(proc)


@pytest.mark.slow
@pytest.mark.subprocess
def test_closed_pipe_stays_quiet():
    # JSON of 12 layers (~90 KB) is more than a pipe holds: the writer meets the closed pipe.
    proc = subprocess.Popen(
        [sys.executable, "-m", "attnviz", "show", SENTENCE, "--num-layers", "12", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.read(10) == b'{"text": "'
    proc.stdout.close()
    assert proc.wait(timeout=180) == 0
    assert proc.stderr.read() == b""


def test_atomic_write_cleanup_failure_does_not_hide_the_error(tmp_path, monkeypatch):
    """The write fails (EROFS-like: the file system refuses), and so does the clean-up's unlink:
    the error reported is the write's, as a WriteError, not the unlink's OSError."""
    real_open = os.open

    def refused_open(path, flags, *args):
        if str(path).endswith(".part"):
            raise OSError(30, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    def refused_unlink(path, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(files.os, "open", refused_open)
    monkeypatch.setattr(files.os, "unlink", refused_unlink)
    with pytest.raises(files.WriteError, match="read-only file system; give a path on a writable file system"):
        files.atomic_write(tmp_path / "x.json", "{}\n")


def test_short_writes_are_completed(tmp_path, monkeypatch):
    """os.write may take fewer bytes than asked (a signal, a pipe, a nearly full disk): both the
    atomic file writer and the checked standard output keep writing until every byte is out."""
    real_write = os.write
    monkeypatch.setattr(files.os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    payload = json.dumps({"w": list(range(5000))})
    files.atomic_write(tmp_path / "x.json", payload)
    assert (tmp_path / "x.json").read_text() == payload

    read, write = os.pipe()
    stream = io.TextIOWrapper(io.BufferedWriter(files._CheckedStdout(write)), encoding="utf-8")
    text = "x" * 3000 + "\n"  # fits in the pipe's buffer
    stream.write(text)
    stream.flush()
    os.close(write)
    with os.fdopen(read, "rb") as got:
        assert got.read().decode() == text


def test_checked_stdout_turns_refused_writes_into_one_error():
    with open("/dev/full", "wb") as sink:
        stream = io.TextIOWrapper(io.BufferedWriter(files._CheckedStdout(sink.fileno())), encoding="utf-8")
        stream.write("data\n")
        with pytest.raises(AttnvizError, match="cannot write standard output: no space left on device"):
            stream.flush()
        stream.write("more\n")
        stream.flush()  # after a failure the rest is dropped: exit must not fail a second time
