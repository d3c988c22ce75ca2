"""An export on a full disk (ENOSPC injected half-way through a file, in the main process and in the
spawned workers): one error line, whole images only, no empty folder, and a later run resumes to
the same bytes as an uninterrupted one."""

from __future__ import annotations

import pytest

import os
import subprocess
import sys
from PIL import Image
import attnviz.files as aio
from cli_runs import TINY, assert_one_error_line, invoke
from disk import FullDisk, empty_folders, parts, tree

SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "A dog ate food because it was hungry.",
    "고양이가 매트 위에 앉았다.",
    "She said it would rain.",
]


def run_export(*args, jobs="1"):
    return invoke("export", *args, *TINY, "--jobs", jobs)


@pytest.mark.slow
def test_export_stops_at_the_first_enospc_and_a_later_run_resumes(tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = [*SENTENCES, "-o", str(out), "--layout", "model,layers"]  # 4 sentences x 3 images
    full = FullDisk(room=4)
    monkeypatch.setattr(aio, "_write_all", full)
    done = run_export(*args)
    line = assert_one_error_line(done, "no space left on device", f"cannot write {out}/002-", "resumes")
    assert "skipped" not in done.output and full.refused == 1  # stopped at the first refusal
    assert parts(out) == [] and empty_folders(out) == []
    images = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert len(images) == 4 and not (out / "index.json").exists(), (images, line)
    for path in images:
        with Image.open(out / path) as picture:
            picture.load()  # whole images only

    monkeypatch.undo()  # space freed: resume
    resumed = run_export(*args)
    assert resumed.exit_code == 0, resumed.output
    assert "8 images written, 4 already there" in resumed.stdout
    fresh = tmp_path / "fresh"
    assert run_export(*SENTENCES, "-o", str(fresh), "--layout", "model,layers").exit_code == 0
    assert tree(out) == tree(fresh)  # same bytes as an uninterrupted run


def test_a_full_disk_at_the_first_write_leaves_no_folder_at_all(tmp_path, monkeypatch):
    out = tmp_path / "new" / "out"
    monkeypatch.setattr(aio, "_write_all", FullDisk(room=0))
    assert_one_error_line(run_export(*SENTENCES[:2], "-o", str(out), "--html"), "no space left on device")
    assert list(tmp_path.iterdir()) == []  # new/ and new/out/ taken away again


def test_a_full_disk_while_writing_the_manifest_keeps_the_images(tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(aio, "_write_all", FullDisk(room=2))  # two images, then the manifest fails
    assert_one_error_line(
        run_export(SENTENCES[0], "-o", str(out), "--layout", "model,focus"),
        f"cannot write {out}/index.json: no space left on device",
    )
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["focus.png", "model.png"]
    assert parts(out) == []


SITECUSTOMIZE = """
import errno, os
import attnviz.files as aio

def _full_after(fd, data, _room=[int(os.environ["FULL_AFTER"])], _out=os.environ["FULL_OUT"]):
    # shared across processes: the disk is "full" once FULL_AFTER images exist
    if sum(1 for _ in __import__("pathlib").Path(_out).rglob("*.png")) < _room[0]:
        os.write(fd, data)
        return
    os.write(fd, data[: len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

aio._write_all = _full_after
"""


@pytest.mark.slow
@pytest.mark.subprocess
def test_parallel_export_stops_at_enospc_in_a_worker(tmp_path):
    """The fault injected in every process (a sitecustomize on PYTHONPATH runs in spawned workers
    too): the worker's WriteError stops the pool, one line, no partial file, no empty folder."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    out = tmp_path / "out"
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(f"Sentence {i} says it was late." for i in range(12)) + "\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        "FULL_AFTER": "5",
        "FULL_OUT": str(out),
    }
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
        "2",
        "--layout",
        "model,layers",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 2, done.stderr
    lines = [l for l in done.stderr.splitlines() if "resource_tracker" not in l and "warnings.warn" not in l]
    assert len(lines) == 1 and "no space left on device" in lines[0], done.stderr
    assert parts(out) == [] and empty_folders(out) == []
    written = list(out.rglob("*.png"))
    assert 5 <= len(written) < 36
    for path in written:
        with Image.open(path) as picture:
            picture.load()
    env["FULL_AFTER"] = "1000"
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{36 - len(written)} images written, {len(written)} already there" in resumed.stdout
