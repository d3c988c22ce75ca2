"""Atomic writes (attnviz.files): a full disk keeps the old file, a signal between making the temporary
file and renaming it leaves nothing behind, a clashing temporary name is refused, long names keep a
temporary name that fits; every file and folder written gets the mode the umask gives."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
import pytest
import attnviz.files as aio
from cli_runs import TINY, invoke
from disk import FullDisk, parts, tree

SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "A dog ate food because it was hungry.",
    "고양이가 매트 위에 앉았다.",
    "She said it would rain.",
]


def run_export(*args, jobs="1"):
    return invoke("export", *args, *TINY, "--jobs", jobs)


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_no_part(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    target.write_text("old\n")
    monkeypatch.setattr(aio, "_write_all", FullDisk(room=0))
    with pytest.raises(aio.WriteError) as caught:
        aio.atomic_write(target, "new contents\n" * 100, overwrite=True)
    assert caught.value.errno == errno.ENOSPC and caught.value.disk_full
    assert str(caught.value) == f"cannot write {target}: no space left on device; free some space"
    assert tree(tmp_path) == {"x.json": b"old\n"}


def _interrupted_right_after(real):
    """`real` (os.open or os.mkdir) that does its work, then raises KeyboardInterrupt as a signal
    handler would at the next bytecode, right after the temporary file or folder exists."""

    def call(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    return call


def test_a_signal_right_after_the_temporary_file_is_made_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    target.write_text("old\n")
    monkeypatch.setattr(aio.os, "open", _interrupted_right_after(os.open))
    with pytest.raises(KeyboardInterrupt):
        aio.atomic_write(target, "new\n", overwrite=True)
    monkeypatch.undo()
    assert tree(tmp_path) == {"x.json": b"old\n"}


def test_a_signal_right_after_the_temporary_folder_is_made_leaves_nothing(tmp_path, monkeypatch):
    from attnviz.checkpoints import native

    monkeypatch.setattr(native.os, "mkdir", _interrupted_right_after(os.mkdir))
    with pytest.raises(KeyboardInterrupt):
        native.write_folder(tmp_path / "m", {"config.json": b"{}"})
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_clashing_temporary_name_is_refused_and_left_alone(tmp_path, monkeypatch):
    """The temporary name is drawn before the file is made; if someone else's file has it (64
    random bits: practically never), the write is one line and that file stays."""
    monkeypatch.setattr(aio.secrets, "token_hex", lambda n: "0" * (2 * n))
    theirs = aio.temporary_name(tmp_path, "x.json")
    theirs.write_text("someone else's\n")
    with pytest.raises(aio.WriteError, match=f"cannot write {tmp_path / 'x.json'}: "):
        aio.atomic_write(tmp_path / "x.json", "new\n")
    assert tree(tmp_path) == {theirs.name: b"someone else's\n"}


def test_temporary_names_of_long_file_names_still_fit(tmp_path):
    """A final name of 250 bytes is legal; its `.NAME.XXXX.part` temporary must be too."""
    target = tmp_path / ("가" * 80 + ".json")  # 245 bytes
    aio.atomic_write(target, "{}\n")
    assert target.read_text() == "{}\n" and parts(tmp_path) == []


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.mark.slow
def test_every_written_file_gets_the_mode_of_the_umask(tmp_path, umask):
    file_mode, folder_mode = 0o666 & ~umask, 0o777 & ~umask
    assert aio.current_umask() == umask
    assert invoke("show", "hi it", "--format", "json", "-o", str(tmp_path / "a.json")).exit_code == 0
    assert invoke("show", "hi it", "-o", str(tmp_path / "a.txt")).exit_code == 0
    assert invoke("show", "hi it", "--png", str(tmp_path / "a.png")).exit_code == 0
    assert invoke("show", "hi it", "--html", str(tmp_path / "a.html")).exit_code == 0
    assert run_export(SENTENCES[0], "-o", str(tmp_path / "out"), "--html").exit_code == 0
    assert invoke("init", str(tmp_path / "model"), *TINY).exit_code == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    folders = [p for p in tmp_path.rglob("*") if p.is_dir()]
    names = {p.name for p in files}
    assert {
        "a.json",
        "a.txt",
        "a.png",
        "a.html",
        "index.json",
        "index.html",
        "view.html",
        "model.png",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    } <= names
    assert {p.relative_to(tmp_path).as_posix(): oct(mode(p)) for p in files if mode(p) != file_mode} == {}
    assert {p.relative_to(tmp_path).as_posix(): oct(mode(p)) for p in folders if mode(p) != folder_mode} == {}


@pytest.mark.slow
def test_init_overwrite_keeps_the_umask_mode(tmp_path, umask):
    folder = tmp_path / "model"
    assert invoke("init", str(folder), *TINY).exit_code == 0
    assert invoke("init", str(folder), *TINY, "--seed", "3", "--overwrite").exit_code == 0
    assert {p.name: oct(mode(p)) for p in folder.iterdir()} == {
        name: oct(0o666 & ~umask) for name in ("config.json", "model.safetensors", "tokenizer.json")
    }
