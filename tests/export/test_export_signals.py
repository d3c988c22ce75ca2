"""An export that is killed, interrupted (Ctrl-C) or terminated: its workers and resource tracker die
with it, the exit is one line (130 or 143), only whole images stay, and a rerun resumes. Also a
SIGTERM that a C extension turns into another exception, or that library code swallows.

The exports run as real processes in their own process group; /proc tells their descendants."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
import pytest
from cli_runs import TINY
from disk import empty_folders, parts


def _children() -> dict[int, list[int]]:
    """ppid -> pids, from /proc/*/stat (no psutil)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            kids.setdefault(int(fields[1]), []).append(int(entry))
    return kids


def _descendants(pid: int) -> list[int]:
    kids, found, todo = _children(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its parent's wait is missing


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _start_export(tmp_path: Path, sentences: int, jobs: str) -> tuple[subprocess.Popen, Path, list[str]]:
    """A real `export --layout heads` of `sentences` lines in its own process group: (process, its
    output folder, the command, to run it again)."""
    inputs = tmp_path / "many.txt"
    inputs.write_text("\n".join(f"Sentence number {i} says it was late." for i in range(sentences)) + "\n")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "attnviz",
        "export",
        str(inputs),
        "-o",
        str(out),
        *TINY,
        "--jobs",
        jobs,
        "--layout",
        "heads",
    ]
    with _sigint_as_a_terminal_gives_it():
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    return process, out, command


@contextlib.contextmanager
def _sigint_as_a_terminal_gives_it():
    """While a child starts, this process handles SIGINT the Python way, so the child starts with
    SIGINT at its default and Python in it raises KeyboardInterrupt, as after Ctrl-C on a terminal.

    An ignored signal stays ignored across exec, and a shell starts background jobs (`pytest &`,
    nohup) with SIGINT ignored; a Python started so installs no KeyboardInterrupt handler, and the
    Ctrl-C test's SIGINT did nothing. A caught signal is reset to its default by exec, so handling it
    here for the moment of the fork makes the child's start the same however pytest was started.
    Tests run in the main thread, the only one that may set a handler."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _still_alive(family: list[int], seconds: float) -> list[str]:
    """The command lines of `family` still running after waiting up to `seconds` for them to end."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in family):
        time.sleep(0.1)
    return [_cmdline(p) for p in family if _alive(p)]


def _kill_all(process: subprocess.Popen, family: list[int]) -> None:
    """A test's cleanup, whatever it asserted: nothing it started may outlive it."""
    if process.poll() is None:
        process.kill()
        process.wait()
    for pid in family:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    process.stderr.close()


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_export_workers_and_resource_tracker_die_with_their_parent(tmp_path, sig):
    parent, out, _ = _start_export(tmp_path, 80, "2")
    family: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and parent.poll() is None:
            family = _descendants(parent.pid)
            workers = [p for p in family if "spawn_main" in _cmdline(p)]
            if len(workers) == 2 and list(out.rglob("*.png")):  # both drawing
                break
            time.sleep(0.1)
        assert parent.poll() is None, "the export ended before it could be killed"
        assert len([p for p in family if "spawn_main" in _cmdline(p)]) == 2, family
        assert any("resource_tracker" in _cmdline(p) for p in family), [_cmdline(p) for p in family]
        parent.send_signal(sig)
        status = parent.wait(timeout=30)
        assert _still_alive(family, 5) == []
        if sig == signal.SIGTERM:
            assert status == 128 + signal.SIGTERM, parent.stderr.read()
        # the workers unwound their task: whole images only, no temporary file, no empty folder
        assert parts(out) == [] and empty_folders(out) == []
    finally:
        _kill_all(parent, family)


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_of_an_export_is_one_line_and_leaves_whole_images_only(tmp_path, jobs):
    """Ctrl-C signals the whole process group, the main process and its workers alike: exit 130,
    the one line "interrupted" (no worker's "Exception ignored" traceback), whole images only."""
    parent, out, _ = _start_export(tmp_path, 40, jobs)
    family: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and parent.poll() is None and len(list(out.rglob("*.png"))) < 3:
            family = _descendants(parent.pid) or family
            time.sleep(0.02)
        assert parent.poll() is None, "the export ended before it could be interrupted"
        os.killpg(parent.pid, signal.SIGINT)
        assert parent.wait(timeout=30) == 130
        assert _still_alive(family, 10) == []
        assert parent.stderr.read().decode() == "attnviz: error: interrupted\n"
        assert parts(out) == [] and empty_folders(out) == [] and list(out.rglob("*.png"))
    finally:
        _kill_all(parent, family)


@pytest.mark.slow
@pytest.mark.subprocess
def test_sigterm_during_a_one_process_export_unwinds_and_resumes(tmp_path):
    process, out, command = _start_export(tmp_path, 30, "1")
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None and len(list(out.rglob("*.png"))) < 3:
            time.sleep(0.02)
        assert process.poll() is None, "the export ended before it could be stopped"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        _kill_all(process, [])
    assert parts(out) == [] and empty_folders(out) == []
    written = len(list(out.rglob("*.png")))
    assert 3 <= written < 120
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{120 - written} images written, {written} already there" in resumed.stdout


_RENAMED_SIGTERM = """
import os, signal, sys, time
def renamed(*args, **kwargs):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)          # the handler runs here
    except BaseException:      # SystemExit in the main process
        raise TypeError("affine_transform(): incompatible function arguments") from None
    raise AssertionError("no SIGTERM")
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_sigterm_renamed_by_a_c_extension_still_stops_a_one_process_export(tmp_path):
    out = tmp_path / "out"
    script = (
        _RENAMED_SIGTERM
        + f"""
import attnviz.export, attnviz.cli
attnviz.export.drawing.render_task = renamed
sys.argv = ["attnviz", "export", "One it.\\nTwo it.\\nThree it.", "-o", {str(out)!r}, *{TINY!r}, "--jobs", "1"]
attnviz.cli.app()
"""
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert "internal error" not in done.stderr and "skipped" not in done.stdout + done.stderr
    assert parts(out) == [] and empty_folders(out) == [] and not list(out.rglob("*.png"))


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_sigterm_swallowed_by_library_code_still_stops_the_export_after_that_image(tmp_path):
    """A library that catches the SIGTERM's exception and takes another path: the export still ends
    with 143 after the image being drawn, whole, and leaves no temporary file or empty folder."""
    out = tmp_path / "out"
    script = f"""
import os, signal, time
import attnviz.cli, attnviz.render.image as image
real = image.render_image
def swallowing(*args, **kwargs):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except BaseException:
        pass                   # the library's fallback path
    return real(*args, **kwargs)
image.render_image = swallowing
import sys
sys.argv = ["attnviz", "export", "One it.\\nTwo it.", "-o", {str(out)!r}, *{TINY!r}, "--jobs", "1"]
attnviz.cli.app()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 128 + signal.SIGTERM, done.stderr
    assert len(list(out.rglob("*.png"))) == 1 and parts(out) == [] and empty_folders(out) == []


@pytest.mark.subprocess
def test_a_worker_signalled_in_a_task_ends_the_step_then_exits_quietly():
    """A SIGTERM during a task is only noted by the worker's handler (an exception raised there
    could land in a weakref callback, which Python prints as "Exception ignored" and goes on): the
    step finishes, then the worker exits 143 quietly, nothing on stderr."""
    script = """
import os, signal, sys, time
from attnviz import workers
signal.signal(signal.SIGTERM, workers._on_sigterm)
def task():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.3)
    print("step finished", flush=True)
    return 1
workers._run_task(task)
print("the worker went on", flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 128 + signal.SIGTERM and done.stdout == "step finished\n", done
    assert done.stderr == ""
