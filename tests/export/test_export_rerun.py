"""What the output folder already holds: a user's own index.html or index.json is refused before the
model loads and kept byte for byte; an export made with other settings, another model shape or
another sentence behind a folder name is refused (--overwrite redraws); older manifests and sheets
still resume."""

from __future__ import annotations

import json
import pytest
from attnviz import export as ex
from cli_runs import TINY, assert_one_error_line, invoke
from disk import listed_files, tree

OWN_SHEET = b"<h1>my homepage</h1>\n"


OWN_JSON = b'{"mine": 1}\n'


REDO = "use another folder, or --overwrite to redraw everything"


def run_tiny(*args, input=None):
    return invoke("export", *args, *TINY, "--jobs", "1", "-q", input=input)


@pytest.mark.slow
@pytest.mark.parametrize(
    "files, named",
    [
        ({"index.html": OWN_SHEET}, "index.html"),
        ({"index.json": OWN_JSON}, "index.json"),
        ({"index.html": OWN_SHEET, "index.json": OWN_JSON}, "index.json"),
        # JSON that says another format, and a page without attnviz's marker: not attnviz's either
        ({"index.json": b'{"format": "attnviz-export/2", "sentences": []}\n'}, "index.json"),
        ({"index.html": b"<!doctype html><title>attnviz</title>\n"}, "index.html"),
    ],
)
def test_a_users_own_index_file_is_refused_before_the_model_loads_and_kept(tmp_path, files, named):
    """A folder holding the user's own index.html or index.json: refused in one line before the
    model loads, byte for byte untouched; --overwrite replaces them, and after that reruns resume."""
    site = tmp_path / "site"
    site.mkdir()
    for name, data in files.items():
        (site / name).write_bytes(data)
    before = tree(site)
    # A model that does not exist: the refusal comes first, so it comes before the model loads.
    done = invoke("export", "The cat sat.", "-o", str(site), "-q", "--model", str(tmp_path / "no-model"))
    line = assert_one_error_line(done)
    assert line == (
        f"attnviz: error: {site / named} is there and was not written by attnviz export; "
        "use another folder, or --overwrite to replace it"
    )
    assert tree(site) == before  # byte-identical, nothing created
    forced = run_tiny("The cat sat.", "-o", str(site), "--overwrite")
    assert forced.exit_code == 0, forced.output
    assert json.loads((site / "index.json").read_text(encoding="utf-8"))["format"] == "attnviz-export/1"
    assert run_tiny("The cat sat.", "-o", str(site)).exit_code == 0  # now its own: a rerun resumes


def test_the_library_refuses_a_users_index_file_too(tmp_path, small_model):
    (tmp_path / "index.html").write_bytes(OWN_SHEET)
    with pytest.raises(ex.AttnvizError, match="was not written by attnviz export"):
        ex.export(small_model, ex.collect_sentences(["The cat sat."]), tmp_path)
    assert tree(tmp_path) == {"index.html": OWN_SHEET}


@pytest.mark.slow
def test_a_sheet_and_manifest_written_before_the_markers_still_resume(tmp_path):
    """Pages from before the generator meta tag are recognised by their title; an index.json from
    before `settings` is compared on what it records (README: export)."""
    out = tmp_path / "old"
    assert run_tiny("The cat sat.", "-o", str(out)).exit_code == 0
    sheet = (out / "index.html").read_text(encoding="utf-8")
    assert ex.GENERATOR in sheet
    (out / "index.html").write_text(sheet.replace(ex.GENERATOR + "\n", ""), encoding="utf-8")
    manifest = json.loads((out / "index.json").read_text(encoding="utf-8"))
    del manifest["settings"]
    (out / "index.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    # What the old index.json records is still compared; what it lacks (--layer) is taken as unchanged.
    assert_one_error_line(run_tiny("The cat sat.", "-o", str(out), "--cmap", "magma"), "--cmap viridis", "--cmap magma")
    again = invoke("export", "The cat sat.", "-o", str(out), *TINY, "--jobs", "1", "--layer", "1")
    assert again.exit_code == 0, again.output
    assert "(0 images written, 2 already there)" in again.stdout  # model.png and L1.png
    assert json.loads((out / "index.json").read_text(encoding="utf-8"))["settings"]["layers"] == [1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "changed, was, now",
    [
        (["--seed", "5"], "--seed 0", "--seed 5"),
        (["--cmap", "magma"], "--cmap viridis", "--cmap magma"),
        (["--preset", "slide"], "--preset none", "--preset slide"),
        (["--annotate"], "--annotate off", "--annotate on"),
        (["--scale", "0.5"], "--scale view default", "--scale 0.5"),
        (["--layer", "1"], "--layer 0,1", "--layer 1"),
        (["--exclude-sinks"], "--exclude-sinks off", "--exclude-sinks on"),
        (["--focus", "cat"], "--focus none", "--focus cat"),
    ],
)
def test_a_rerun_with_other_settings_is_refused_and_overwrite_redraws(tmp_path, changed, was, now):
    """An export into a folder made with other settings (seed, colormap, preset, ...) is refused in
    one line naming both settings, nothing changed; --overwrite redraws to the bytes of a fresh
    export with the new settings; the same settings again resume."""
    out = tmp_path / "rs"
    assert run_tiny("The cat sat.", "-o", str(out)).exit_code == 0
    before = tree(out)
    line = assert_one_error_line(run_tiny("The cat sat.", "-o", str(out), *changed))
    assert line == f"attnviz: error: {out} holds an export made with {was}, this one has {now}: {REDO}"
    assert tree(out) == before
    # --overwrite redraws every image: the same bytes as a fresh export with the new settings.
    assert run_tiny("The cat sat.", "-o", str(out), *changed, "--overwrite").exit_code == 0
    assert run_tiny("The cat sat.", "-o", str(tmp_path / "fresh"), *changed).exit_code == 0
    listed = listed_files(out)
    assert listed == listed_files(tmp_path / "fresh")
    images = {p: (out / p).read_bytes() for p in listed}
    assert images == {p: (tmp_path / "fresh" / p).read_bytes() for p in listed}
    assert any(before.get(p) != data for p, data in images.items())
    # Same settings again: resumes, nothing redrawn.
    again = invoke("export", "The cat sat.", "-o", str(out), *changed, *TINY, "--jobs", "1")
    assert again.exit_code == 0 and "(0 images written, " in again.stdout, again.output


@pytest.mark.slow
def test_a_rerun_with_another_model_shape_is_refused(tmp_path):
    out = tmp_path / "rs"
    assert run_tiny("The cat sat.", "-o", str(out)).exit_code == 0
    before = tree(out)
    bigger = invoke(
        "export",
        "The cat sat.",
        "-o",
        str(out),
        "-q",
        "--jobs",
        "1",
        "--num-layers",
        "3",
        "--num-heads",
        "2",
        "--d-model",
        "16",
        "--d-ff",
        "32",
    )
    line = assert_one_error_line(bigger)
    assert line == (
        f"attnviz: error: {out} holds an export made with model config num_layers 2, "
        f"this one has model config num_layers 3: {REDO}"
    )
    assert tree(out) == before


@pytest.mark.slow
def test_another_sentence_behind_an_existing_folder_name_is_refused(tmp_path):
    """Two sentences that start alike get one folder name: the old one's images must not be kept
    as the new one's."""
    out = tmp_path / "rs"
    assert run_tiny("The animal didn't cross the street.", "-o", str(out)).exit_code == 0
    before = tree(out)
    line = assert_one_error_line(run_tiny("The animal didn't cross the road.", "-o", str(out)))
    assert line == (
        f"attnviz: error: {out / '001-the-animal-didnt-cross'} holds the images of "
        '"The animal didn\'t cross the street.", this export puts "The animal didn\'t cross the road." '
        f"there: {REDO}"
    )
    assert tree(out) == before
