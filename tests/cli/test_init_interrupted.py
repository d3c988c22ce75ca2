"""Issue 16 kind 6: `init` interrupted. SIGTERM removes the hidden `.DIR.<hex>.part/` folder as
Ctrl-C does (exit 143); the folder a SIGKILLed init leaves is swept by the next init, while the
temporary folder of an init that still runs (it holds a lock on it) is left alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnviz.checkpoints.native import _hold, sweep_stale_folders, write_folder
from attnviz.files import temporary_name
from cli_process import ROOT

# Big enough that writing its ~120 MB takes a moment, so a signal lands mid-write.
BIG = ["--d-model", "512", "--num-layers", "4", "--d-ff", "2048", "--num-heads", "8"]


def _start_init(folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "attnviz", "init", str(folder), *BIG],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "ATTNVIZ_MAX_MEMORY": "3G"},
    )


def _parts(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(".model.") and p.name.endswith(".part")]


def _wait_for_part(proc: subprocess.Popen, parent: Path) -> None:
    deadline = time.monotonic() + 120
    while not _parts(parent):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"init ended ({proc.returncode}) before its temporary folder was seen")
        time.sleep(0.005)


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_write_leaves_nothing(tmp_path, how):
    proc = _start_init(tmp_path / "model")
    _wait_for_part(proc, tmp_path)
    proc.send_signal(how)
    code = proc.wait(timeout=120)
    assert code in (128 + signal.SIGTERM, 130), proc.stderr.read()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_next_init_sweeps_what_a_sigkill_left(tmp_path):
    proc = _start_init(tmp_path / "model")
    _wait_for_part(proc, tmp_path)
    proc.kill()
    proc.wait(timeout=60)
    stale = _parts(tmp_path)
    assert len(stale) == 1 and stale[0].is_dir()
    os.utime(stale[0], (time.time() - 60, time.time() - 60))
    done = subprocess.run(
        [sys.executable, "-m", "attnviz", "init", str(tmp_path / "model")],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_live_writers_folder_is_not_swept(tmp_path):
    live = temporary_name(tmp_path, "model")
    live.mkdir()
    lock = _hold(live)
    dead = temporary_name(tmp_path, "model")
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"half")
    other = temporary_name(tmp_path, "other")  # another name's: not this write's business
    other.mkdir()
    old = time.time() - 60
    for path in (live, dead, other):
        os.utime(path, (old, old))
    try:
        assert sweep_stale_folders(tmp_path, "model") == [dead]
        assert live.is_dir() and other.is_dir() and not dead.exists()
        write_folder(tmp_path / "model", {"config.json": b"{}"})
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model", live.name, other.name])
    finally:
        os.close(lock)
    assert sweep_stale_folders(tmp_path, "model") == [live]  # its writer gone, the lock is free
