"""Two exports into one folder at once (issue 16, kind 5): the second is refused in one line with
exit 2 while the first holds the folder's lock; the lock goes with the process however it ends."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from attnviz.cli import app
from attnviz.export import LOCK_FILE
from attnviz.export.folder import FolderLock

TINY = ["--num-layers", "2", "--num-heads", "2", "--d-model", "16", "--d-ff", "32", "--jobs", "1"]


def export(*args):
    return CliRunner().invoke(app, ["export", *args, *TINY])


def test_a_second_export_into_a_locked_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / LOCK_FILE, "w") as held:  # another export at work
        fcntl.flock(held, fcntl.LOCK_EX)
        done = export("One it.", "-o", str(out))
    assert done.exit_code == 2, done.output
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnviz: error: another attnviz export is writing into")
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written


def test_a_finished_export_leaves_no_lock_and_a_stale_lock_file_locks_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_FILE).write_text("")  # left by an export that was killed (SIGKILL runs no cleanup)
    done = export("One it.", "-o", str(out))
    assert done.exit_code == 0, done.output
    assert not (out / LOCK_FILE).exists()
    assert export("One it.", "-o", str(out)).exit_code == 0  # and again: resumes, nothing locked


def test_a_refused_export_does_not_leave_a_folder_it_made(tmp_path):
    out = tmp_path / "new" / "out"
    done = export("One it.", "-o", str(out), "--layer", "7")  # refused once the model is known
    assert done.exit_code == 2
    assert not (tmp_path / "new").exists()


def test_the_lock_is_taken_again_after_its_file_was_removed_by_the_last_holder(tmp_path):
    first = FolderLock(tmp_path).acquire()
    with pytest.raises(Exception, match="another attnviz export"):
        FolderLock(tmp_path).acquire()
    first.release()
    second = FolderLock(tmp_path).acquire()
    assert (tmp_path / LOCK_FILE).exists()
    second.release()
    assert not (tmp_path / LOCK_FILE).exists()


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_real_exports_at_once_one_runs_the_other_is_refused(tmp_path):
    out = tmp_path / "out"
    sentences = tmp_path / "many.txt"
    sentences.write_text("\n".join(f"Sentence {i} said it was fine." for i in range(40)), encoding="utf-8")
    cmd = [sys.executable, "-m", "attnviz", "export", str(sentences), "-o", str(out), *TINY, "--layout", "heads"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_FILE).exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        other = subprocess.run(cmd[:-2] + ["--layout", "model", "--cmap", "magma"], capture_output=True, text=True)
        if first.poll() is not None:
            pytest.skip("the first export finished before the second started")
        assert other.returncode == 2, other.stderr
        assert other.stderr.startswith("attnviz: error: another attnviz export is writing into")
        assert first.wait(300) == 0
        manifest = (out / "index.json").read_text(encoding="utf-8")
        assert '"layouts": [\n  "heads"\n ]' in manifest and not list(out.rglob("model.png"))
    finally:
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
