"""Issue 16 kind 4 (outside export): an output path that is a symbolic link is an existing file,
even when the link points nowhere. Without --overwrite it is refused; with it, the file the link
points to is replaced atomically (a temporary file in the target's folder, renamed onto the
target) and the link stays, as `> link` in a shell writes through it. See docs/files.md."""

from __future__ import annotations

import json
import os

import pytest

from attnviz.cli import main
from attnviz.files import atomic_write, check_writable
from attnviz.errors import AttnvizError
from cli_process import one_line_in_process


def test_a_link_to_a_file_is_an_existing_file(tmp_path, capsys):
    target = tmp_path / "mine.json"
    target.write_text("precious\n")
    (tmp_path / "link.json").symlink_to(target)
    code = main(["show", "a dog", "--format", "json", "-o", str(tmp_path / "link.json")])
    assert "already exists" in one_line_in_process(capsys, code)
    assert target.read_text() == "precious\n" and (tmp_path / "link.json").is_symlink()


def test_a_dangling_link_is_an_existing_file(tmp_path, capsys):
    (tmp_path / "link.json").symlink_to(tmp_path / "nowhere.json")
    code = main(["show", "a dog", "--format", "json", "-o", str(tmp_path / "link.json")])
    assert "already exists (a symbolic link)" in one_line_in_process(capsys, code)
    assert (tmp_path / "link.json").is_symlink() and not (tmp_path / "nowhere.json").exists()


def test_overwrite_replaces_what_the_link_points_to(tmp_path, capsys):
    other = tmp_path / "elsewhere"
    other.mkdir()
    target = other / "mine.json"
    target.write_text("old\n")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert main(["show", "a dog", "--format", "json", "-o", str(link), "--overwrite"]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)  # the link itself untouched
    assert json.loads(target.read_text())["text"] == "a dog"
    assert sorted(p.name for p in other.iterdir()) == ["mine.json"]  # no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "link.json"]


def test_overwrite_through_a_dangling_link_creates_its_target(tmp_path):
    link = tmp_path / "link.png"
    link.symlink_to("made.png")  # relative, dangling
    atomic_write(link, b"png bytes", overwrite=True)
    assert link.is_symlink() and (tmp_path / "made.png").read_bytes() == b"png bytes"


def test_links_replace_mode_replaces_the_link(tmp_path):
    target = tmp_path / "target"
    target.write_text("kept\n")
    link = tmp_path / "cache.json"
    link.symlink_to(target)
    atomic_write(link, "new\n", overwrite=True, links="replace")
    assert not link.is_symlink() and link.read_text() == "new\n" and target.read_text() == "kept\n"


def test_a_link_to_a_device_or_a_folder_is_refused(tmp_path):
    (tmp_path / "z").symlink_to("/dev/zero")
    (tmp_path / "d").symlink_to(tmp_path)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(AttnvizError, match="not a regular file"):
        check_writable(tmp_path / "z", overwrite=True)
    with pytest.raises(AttnvizError, match="is a folder"):
        check_writable(tmp_path / "d", overwrite=True)
    with pytest.raises(AttnvizError, match="loop of symbolic links"):
        check_writable(tmp_path / "loop", overwrite=True)
