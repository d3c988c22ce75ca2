"""An export never writes through a symbolic link out of its folder (issue 16, kind 4): a link
where a sentence folder goes is refused in one line and nothing is written; a link where an image,
a page or index.json goes is an existing file, kept, and with --overwrite the link itself is
replaced, never the file it points to."""

from __future__ import annotations

import json
import os

from typer.testing import CliRunner

from attnviz.cli import app

TINY = ["--num-layers", "2", "--num-heads", "2", "--d-model", "16", "--d-ff", "32", "--jobs", "1"]
SENTENCE = "A dog ate food because it was hungry."
FOLDER = "001-a-dog-ate-food-because"


def export(*args):
    return CliRunner().invoke(app, ["export", *args, *TINY])


def one_error_line(done, *fragments):
    assert done.exit_code == 2, (done.exit_code, done.output)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("attnviz: error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_a_symlinked_sentence_folder_is_refused_and_nothing_lands_outside(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "model.png").write_bytes(b"the user's own file")
    (out / FOLDER).symlink_to(elsewhere, target_is_directory=True)
    for extra in ([], ["--overwrite"], ["--html"]):
        one_error_line(export(SENTENCE, "-o", str(out), *extra), f"{out / FOLDER} is a symbolic link")
        assert listing(elsewhere) == ["model.png"]
        assert (elsewhere / "model.png").read_bytes() == b"the user's own file"
        assert listing(out) == [FOLDER]  # no index, no lock file left


def test_a_dangling_sentence_folder_link_is_refused_too(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / FOLDER).symlink_to(tmp_path / "not-yet")
    one_error_line(export(SENTENCE, "-o", str(out)), "is a symbolic link")
    assert not (tmp_path / "not-yet").exists()


def test_a_symlinked_image_is_kept_without_overwrite_and_replaced_itself_with_it(tmp_path):
    out = tmp_path / "out"
    assert export(SENTENCE, "-o", str(out), "--layout", "model").exit_code == 0
    image = out / FOLDER / "model.png"
    target = tmp_path / "precious.png"
    target.write_bytes(b"precious")
    image.unlink()
    image.symlink_to(target)

    done = export(SENTENCE, "-o", str(out), "--layout", "model")
    assert done.exit_code == 0, done.output
    assert "1 already there" in done.stdout  # an existing file: kept, not followed
    assert image.is_symlink() and target.read_bytes() == b"precious"

    done = export(SENTENCE, "-o", str(out), "--layout", "model", "--overwrite")
    assert done.exit_code == 0, done.output
    assert not image.is_symlink() and image.read_bytes().startswith(b"\x89PNG")
    assert target.read_bytes() == b"precious"  # the link was replaced, not what it points to


def test_a_dangling_image_link_is_an_existing_file(tmp_path):
    out = tmp_path / "out"
    (out / FOLDER).mkdir(parents=True)
    (out / FOLDER / "model.png").symlink_to(tmp_path / "nowhere.png")
    done = export(SENTENCE, "-o", str(out), "--layout", "model")
    assert done.exit_code == 0, done.output
    assert not (tmp_path / "nowhere.png").exists()


def test_a_symlinked_index_is_not_ours_and_overwrite_replaces_the_link_only(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mine = tmp_path / "mine.json"
    mine.write_text('{"format": "attnviz-export/1", "sentences": []}', encoding="utf-8")
    (out / "index.json").symlink_to(mine)
    one_error_line(export(SENTENCE, "-o", str(out)), "was not written by attnviz export")
    assert export(SENTENCE, "-o", str(out), "--overwrite").exit_code == 0
    assert not (out / "index.json").is_symlink()
    assert json.loads((out / "index.json").read_text(encoding="utf-8"))["counts"]["sentences"] == 1
    assert mine.read_text(encoding="utf-8") == '{"format": "attnviz-export/1", "sentences": []}'


def test_stale_temporaries_are_not_swept_through_a_link(tmp_path):
    """The sweep of `.NAME.part` files left by a killed export stays inside the folder."""
    from attnviz.export.folder import remove_stale_parts

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / ".keep.abc.part").write_text("user data")
    (out / "001-x").symlink_to(elsewhere, target_is_directory=True)
    remove_stale_parts(out, "001-x")
    assert (elsewhere / ".keep.abc.part").exists()
    assert os.path.islink(out / "001-x")
