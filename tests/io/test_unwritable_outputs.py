"""Outputs that cannot be written: read-only places, a file where a folder should be, pipes and
devices, two outputs that name one file, names too long for the file system. Each is one error line
that names the path and the reason, and nothing is created or replaced.

Tests may run as root, which ignores permission bits: read-only places are /sys and /proc (the
kernel refuses), a regular file used as a parent, and a folder made immutable with `chattr +i`
(skipped where that does not work)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import tempfile
import pytest
from cli_runs import TINY, assert_one_error_line, invoke
from disk import parts, tree

SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "A dog ate food because it was hungry.",
    "고양이가 매트 위에 앉았다.",
    "She said it would rain.",
]


def run_export(*args, jobs="1"):
    return invoke("export", *args, *TINY, "--jobs", jobs)


def _sys_is_read_only() -> bool:
    try:
        fd, name = tempfile.mkstemp(dir="/sys")
    except OSError:
        return True
    os.close(fd)
    os.unlink(name)
    return False


needs_read_only_sys = pytest.mark.skipif(
    not os.path.isdir("/sys") or not _sys_is_read_only(), reason="/sys is missing or writable here"
)


needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc")


@pytest.mark.slow
@needs_read_only_sys
@pytest.mark.parametrize(
    "args, path",
    [
        (["show", "hi it", "--png", "/sys/x.png"], "/sys/x.png"),
        (["show", "hi it", "--format", "json", "-o", "/sys/x.json"], "/sys/x.json"),
        (["show", "hi it", "-o", "/sys/x.txt"], "/sys/x.txt"),
    ],
)
def test_show_into_sys_is_one_line_that_names_the_path_and_reason(args, path):
    line = assert_one_error_line(invoke(*args), f"cannot write {path}:")
    assert re.search(r"permission denied|read-only|not permitted", line)
    assert not os.path.exists(path)


@needs_proc
def test_export_into_proc_is_one_line_and_creates_nothing(tmp_path):
    assert_one_error_line(
        run_export(*SENTENCES[:1], "-o", "/proc/x"), "cannot create folder /proc/x:", "no such file or directory"
    )
    assert not os.path.exists("/proc/x")


@needs_proc
def test_init_into_proc_is_one_line():
    assert_one_error_line(invoke("init", "/proc/m", *TINY), "cannot write /proc/m:")
    assert not os.path.exists("/proc/m")


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["export", "hi it", "-o", "{f}/sub", *TINY, "--jobs", "1"],
        ["export", "hi it", "-o", "{f}/sub/deeper", *TINY, "--jobs", "1"],
        ["init", "{f}/m", *TINY],
        ["show", "hi it", "--png", "{f}/x.png"],
        ["show", "hi it", "--format", "json", "-o", "{f}/x.json"],
    ],
)
def test_a_regular_file_as_parent_folder_is_one_line(tmp_path, command):
    blocker = tmp_path / "file.txt"
    blocker.write_text("keep me\n")
    args = [part.format(f=blocker) for part in command]
    assert_one_error_line(invoke(*args), str(blocker), f"{blocker} is a file, not a folder")
    assert tree(tmp_path) == {"file.txt": b"keep me\n"}


@pytest.mark.parametrize("through_link", [False, True])
def test_a_pipe_or_device_is_never_replaced_even_with_overwrite(tmp_path, through_link):
    """A rename over a device (as root, `-o /dev/full --overwrite` turned /dev/full into a plain
    file) or a pipe replaces it with a regular file: refused. Tested on a FIFO of our own, never on
    a real device, so a regression cannot damage the machine."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    target = fifo
    if through_link:
        target = tmp_path / "link.json"
        target.symlink_to(fifo)
    assert_one_error_line(
        invoke("show", "hi it", "--format", "json", "-o", str(target), "--overwrite"), f"{target} is not a regular file"
    )
    assert stat.S_ISFIFO(os.stat(target).st_mode) and parts(tmp_path) == []


@pytest.mark.parametrize(
    "options, shown",
    [
        (["--html", "{d}/a.png", "--png", "{d}/a.png", "--overwrite"], "--png and --html both name {d}/a.png"),
        (["--format", "json", "-o", "{d}/a.html", "--html", "{d}/a.html"], "--output and --html both name {d}/a.html"),
        (["--png", "{d}/a.png", "--html", "{d}/link.png"], "--png and --html both name {d}/link.png"),
        (
            ["--format", "json", "-o", "{d}/sub/../a.png", "--png", "{d}/a.png"],
            "--output and --png both name {d}/a.png",
        ),
    ],
)
def test_two_outputs_into_one_file_are_refused_before_anything_is_written(tmp_path, options, shown):
    """Two outputs that name one file (directly, through `..` or a symbolic link) are refused in one
    line before either is written, with or without --overwrite."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")
    before = tree(tmp_path)
    args = [a.format(d=tmp_path) for a in options]
    assert_one_error_line(
        invoke("show", "hi it", *TINY, *args), shown.format(d=tmp_path), "give each output its own file"
    )
    assert tree(tmp_path) == before


def test_compare_refuses_its_table_and_image_in_one_file(tmp_path):
    target = str(tmp_path / "c.png")
    assert_one_error_line(
        invoke(
            "compare",
            "The cat sat because it was tired.",
            "The cats sat because they were tired.",
            "--focus",
            "it",
            *TINY,
            "-o",
            target,
            "--png",
            target,
        ),
        "both name",
        target,
    )
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def read_only_folder(tmp_path):
    """An empty folder nobody may write into, root included (chattr +i), or a skip."""
    folder = tmp_path / "ro"
    folder.mkdir()
    try:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        made = False
    if made:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            made = False
    if not made:
        subprocess.run(["chattr", "-i", str(folder)], capture_output=True, timeout=30)
        pytest.skip("chattr +i does not make a folder read-only here")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], capture_output=True, timeout=30)


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "command, shown",
    [
        (["show", "hi it", "--png", "{ro}/x.png"], "cannot write {ro}/x.png:"),
        (["show", "hi it", "--format", "json", "-o", "{ro}/x.json"], "cannot write {ro}/x.json:"),
        (["init", "{ro}/m", *TINY], "cannot write {ro}/m:"),
        (["export", "hi it", "-o", "{ro}/e", *TINY, "--jobs", "1"], "cannot create folder {ro}/e:"),
        (["export", "hi it", "-o", "{ro}", *TINY, "--jobs", "1"], "cannot create folder {ro}/001-hi-it:"),
    ],
)
def test_a_read_only_folder_is_one_line_and_stays_empty(read_only_folder, command, shown):
    ro = str(read_only_folder)
    line = assert_one_error_line(invoke(*[part.format(ro=ro) for part in command]), shown.format(ro=ro))
    assert "operation not permitted" in line or "permission denied" in line
    assert list(read_only_folder.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["export", "hi it", "-o", "{long}", *TINY, "--jobs", "1"],
        ["show", "hi it", "--format", "json", "-o", "{long}.json"],
        ["init", "{long}", *TINY],
    ],
)
def test_an_output_name_too_long_for_the_system_is_one_line(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    long = "x" * 300  # over the 255 bytes of one name
    assert_one_error_line(invoke(*[part.format(long=long) for part in command]), long, "file name too long")
    assert list(tmp_path.iterdir()) == []
