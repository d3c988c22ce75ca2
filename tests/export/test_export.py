"""`attnviz export`: inputs, names, files, manifest, reruns, failures, parallel jobs, interruption."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from attnviz import export as ex
from attnviz.errors import AttnvizError
from attnviz.tokenize import TextTokenizer
from cli_runs import assert_one_error_line, invoke

TINY = ["--num-layers", "2", "--num-heads", "2", "--d-model", "16", "--d-ff", "32"]
SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "고양이가 매트 위에 앉았다.",
    "A dog ate food because it was hungry.",
]


def run_export(*args, input=None):
    return invoke("export", *args, *TINY, "--jobs", "1", input=input)


def files_on_disk(outdir: Path) -> set[str]:
    return {
        p.relative_to(outdir).as_posix()
        for p in outdir.rglob("*")
        if p.is_file() and p.name not in ("index.json", "index.html")
    }


def manifest_files(outdir: Path) -> set[str]:
    manifest = json.loads((outdir / "index.json").read_text(encoding="utf-8"))
    return {f["path"] for s in manifest["sentences"] for f in s["files"]}


# --- names ---------------------------------------------------------------------------------------


def test_slug_examples():
    assert ex.slugify("The animal didn't cross the street because it was too tired.") == "the-animal-didnt-cross"
    assert ex.slugify("그 동물은 너무 피곤해서 길을 건너지 않았다.") == "그-동물은-너무-피곤해서-길을-건너지-않았다"
    assert ex.slugify("Ｆｕｌｌｗｉｄｔｈ Straße!") == "fullwidth-strasse"
    assert ex.slugify("?!... ---") == "text"
    assert ex.slugify('a/b\\c:d*e?f"g<h>i|j') == "a-b-c-d-e-f-g-h-i-j"
    # A word longer than the limit is cut and tagged with a hash of the whole text (see test_hardening_export).
    assert ex.slugify("x" * 40) == "x" * 17 + "-" + hashlib.sha1(b"x" * 40).hexdigest()[:6]


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_slug_is_always_a_safe_short_file_name(text):
    slug = ex.slugify(text)
    assert slug == "text" or re.fullmatch(r"[^\W_]+(-[^\W_]+)*", slug)
    assert 0 < len(slug) <= 24 and len(slug.encode("utf-8")) < 200
    assert not set(slug) & set('/\\:*?"<>|\0 .')
    assert unicodedata.normalize("NFC", slug) == slug
    assert slug == ex.slugify(text)  # predictable


def test_plan_names_pad_layers_to_the_model_and_heads_to_two_digits():
    jobs = ex.plan_images("003-x", ["model", "layers", "heads", "focus"], [2], [5, 11], 12, 12, "png", focus=4)
    assert [j.path for j in jobs] == [
        "003-x/model.png",
        "003-x/L02.png",
        "003-x/L02-H05.png",
        "003-x/L02-H11.png",
        "003-x/focus.png",
    ]
    small = ex.plan_images("003-x", ["heads"], [1], [0], 2, 4, "svg", focus=None)
    assert [j.path for j in small] == ["003-x/L1-H00.svg"]
    assert ex.plan_images("003-x", ["focus"], [0], [0], 2, 4, "png", focus=None) == []


def test_parse_layouts():
    assert ex.parse_layouts(None) == ("model", "layers", "focus")
    assert ex.parse_layouts("head, model,heads") == ("heads", "model")
    assert ex.parse_layouts("all") == ex.LAYOUTS
    assert ex.parse_layouts("all,heads") == ex.parse_layouts("heads, all") == ex.LAYOUTS  # was "unknown layout all"
    with pytest.raises(AttnvizError, match="unknown layout"):
        ex.parse_layouts("model,pie")


# --- inputs --------------------------------------------------------------------------------------


def test_inputs_sentences_files_folders_and_stdin(tmp_path, monkeypatch):
    notes = tmp_path / "notes.txt"
    notes.write_text("# a comment\n\nFirst line.\n  # indented comment\nSecond line.  \n", encoding="utf-8")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "b.txt").write_text("From b.\n", encoding="utf-8")
    (folder / "a.txt").write_text("From a.\n", encoding="utf-8")
    (folder / "skip.md").write_text("Not a sentence file.\n", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO("From stdin.\n\n# no\n"))
    got = ex.collect_sentences(["A sentence.", str(notes), str(folder), "-"])
    assert [s.text for s in got] == ["A sentence.", "First line.", "Second line.", "From a.", "From b.", "From stdin."]
    assert [s.index for s in got] == [1, 2, 3, 4, 5, 6]
    assert got[2].source == f"{notes}, sentence 2"


def test_a_missing_file_is_an_error_not_a_sentence(tmp_path):
    for spec in ("missing.txt", "some/folder", str(tmp_path / "nope")):
        with pytest.raises(AttnvizError, match="no such file"):
            ex.collect_sentences([spec])
    with pytest.raises(AttnvizError, match="no sentences"):
        empty = tmp_path / "empty.txt"
        empty.write_text("# only a comment\n", encoding="utf-8")
        ex.collect_sentences([str(empty)])


# --- the command -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_export_writes_named_images_manifest_and_sheet(tmp_path):
    out = tmp_path / "figures"
    done = run_export(*SENTENCES, "-o", str(out), "--layout", "model,layers,heads,focus")
    assert done.exit_code == 0, done.output
    assert "exported 3 of 3 sentences" in done.stdout and "0 failed" in done.stdout
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["001-the-animal-didnt-cross", "002-고양이가-매트-위에-앉았다", "003-a-dog-ate-food-because"]
    first = out / folders[0]
    assert sorted(p.name for p in first.iterdir()) == sorted(
        ["model.png", "L0.png", "L1.png", "L0-H00.png", "L0-H01.png", "L1-H00.png", "L1-H01.png", "focus.png"]
    )
    # The Korean sentence has no pronoun: no focus map for it, and the manifest says so.
    assert not (out / folders[1] / "focus.png").exists()
    assert files_on_disk(out) == manifest_files(out)
    for path in files_on_disk(out):
        with Image.open(out / path) as picture:
            picture.verify()
    manifest = json.loads((out / "index.json").read_text(encoding="utf-8"))
    tokenizer = TextTokenizer.default()
    for entry, text in zip(manifest["sentences"], SENTENCES):
        assert entry["text"] == text and entry["status"] == "ok"
        assert entry["tokens"] == tokenizer.encode(text).tokens
        assert entry["model"] == "random (seed 0)"
        for file in entry["files"]:
            with Image.open(out / file["path"]) as picture:
                assert picture.size == (file["width"], file["height"])
    assert manifest["sentences"][0]["focus"] == {"index": 9, "label": "it"}
    assert manifest["model"]["config"]["num_heads"] == 2
    assert (out / "index.html").is_file()


@pytest.mark.slow
def test_rerun_skips_existing_files_and_overwrite_redraws_them(tmp_path):
    out = tmp_path / "f"
    assert run_export(SENTENCES[0], "-o", str(out)).exit_code == 0
    stamps = {p: (out / p).stat().st_mtime_ns for p in files_on_disk(out)}
    contents = {p: (out / p).read_bytes() for p in stamps}
    (out / "001-the-animal-didnt-cross" / "L1.png").unlink()
    again = run_export(SENTENCES[0], "-o", str(out))
    assert again.exit_code == 0
    assert "(1 image written, 3 already there)" in again.stdout
    assert all((out / p).stat().st_mtime_ns == t for p, t in stamps.items() if not p.endswith("L1.png"))
    assert (out / "001-the-animal-didnt-cross" / "L1.png").read_bytes() == contents["001-the-animal-didnt-cross/L1.png"]
    forced = run_export(SENTENCES[0], "-o", str(out), "--overwrite")
    assert "(4 images written)" in forced.stdout
    assert {p: (out / p).read_bytes() for p in stamps} == contents  # deterministic redraw


@pytest.mark.slow
def test_bad_sentences_are_reported_skipped_and_counted(tmp_path):
    out = tmp_path / "f"
    long = " ".join(["word"] * 40)
    done = run_export(SENTENCES[0], long, SENTENCES[2], "-o", str(out), "--max-len", "24")
    assert done.exit_code == 1
    assert "exported 2 of 3 sentences" in done.stdout and "1 failed" in done.stdout
    lines = [l for l in done.stderr.splitlines() if "skipped" in l]
    assert len(lines) == 1 and "sentence 2 (argument 2)" in lines[0] and "24" in lines[0]
    assert not (out / "002-word-word-word-word-word").exists()
    manifest = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert [s["status"] for s in manifest["sentences"]] == ["ok", "failed", "ok"]
    assert manifest["counts"] == {"sentences": 3, "failed": 1, "images": 8}
    assert files_on_disk(out) == manifest_files(out)


def test_an_explicit_focus_word_missing_from_a_sentence_fails_that_sentence(tmp_path):
    done = run_export(
        SENTENCES[0],
        SENTENCES[2],
        "Nothing to see here.",
        "-o",
        str(tmp_path / "f"),
        "--focus",
        "it",
        "--layout",
        "focus",
    )
    assert done.exit_code == 1
    assert "exported 2 of 3" in done.stdout
    assert "focus word 'it' is not in the sentence" in done.stderr


def test_stdin_input(tmp_path):
    done = run_export("-", "-o", str(tmp_path / "f"), "--layout", "model", input="One.\n# skip\nTwo.\n")
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in (tmp_path / "f").iterdir() if p.is_dir()) == ["001-one", "002-two"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["nope.txt", "-o", "x"], "no such file"),
        (["A sentence.", "-o", "x", "--layout", "pie"], "unknown layout"),
        (["A sentence.", "-o", "x", "--layer", "7"], "invalid layer 7"),
        (["A sentence.", "-o", "x", "--cmap", "nope"], "unknown colormap"),
    ],
)
def test_bad_usage_exits_2_with_one_line(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    assert_one_error_line(run_export(*args), fragment)
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_missing_output_option_is_usage_error():
    assert invoke("export", "A sentence.").exit_code == 2


@pytest.mark.slow
def test_piped_output_has_no_progress_bar_and_quiet_has_no_closing_line(tmp_path):
    done = run_export(SENTENCES[0], "-o", str(tmp_path / "a"))
    assert done.stderr == "" and done.stdout.count("\n") == 1
    quiet = run_export(SENTENCES[0], "-o", str(tmp_path / "b"), "--quiet")
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""


@pytest.mark.slow
def test_progress_bar_on_a_terminal(tmp_path):
    """rich treats the output as a terminal under FORCE_COLOR (what a tty gives); the bar draws."""
    done = invoke(
        "export",
        SENTENCES[0],
        "-o",
        str(tmp_path / "a"),
        *TINY,
        "--jobs",
        "1",
        env={"FORCE_COLOR": "1", "TERM": "xterm"},
    )
    assert done.exit_code == 0, done.output
    assert "exporting" in done.stderr and "images" in done.stderr


@pytest.mark.slow
def test_parallel_jobs_write_the_same_bytes_as_one_process(tmp_path):
    args = [*SENTENCES, "-o"]
    one = invoke("export", *args, str(tmp_path / "one"), *TINY, "--jobs", "1", "--layout", "all")
    two = invoke("export", *args, str(tmp_path / "two"), *TINY, "--jobs", "2", "--layout", "all")
    assert one.exit_code == two.exit_code == 0, two.output
    files = files_on_disk(tmp_path / "one")
    assert files == files_on_disk(tmp_path / "two") and len(files) == 3 * 7 + 2
    for path in files:
        assert (tmp_path / "one" / path).read_bytes() == (tmp_path / "two" / path).read_bytes(), path
    assert (tmp_path / "one" / "index.json").read_bytes() == (tmp_path / "two" / "index.json").read_bytes()


@pytest.mark.slow
@pytest.mark.subprocess
def test_an_export_killed_part_way_resumes_and_completes_with_whole_files(tmp_path):
    inputs = tmp_path / "many.txt"
    inputs.write_text("\n".join(f"Sentence number {i} says it was late." for i in range(16)) + "\n", encoding="utf-8")
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
        "1",
        "--layout",
        "heads,model",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and len(list(out.rglob("*.png"))) < 3:
            time.sleep(0.05)
        assert process.poll() is None, "the export finished before it could be interrupted"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    written = list(out.rglob("*.png"))
    assert 3 <= len(written) < 16 * 5
    for path in written:  # whatever carries a final name is a whole image
        with Image.open(path) as picture:
            picture.load()
    assert not (out / "index.json").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "already there" in resumed.stdout and "0 failed" in resumed.stdout
    assert not [p for p in out.rglob("*") if p.name.endswith(".part")]
    assert files_on_disk(out) == manifest_files(out)
    assert len(manifest_files(out)) == 16 * 5


@pytest.mark.slow
@pytest.mark.subprocess
def test_export_help_imports_neither_torch_nor_matplotlib():
    code = (
        "import sys\n"
        "from attnviz.cli import main\n"
        "try:\n    main(['export', '--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('torch', 'matplotlib', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for option in ("--layout", "--jobs", "--overwrite", "--quiet", "--preset", "--format"):
        assert option in done.stdout


@pytest.mark.slow
def test_exclude_sinks_leaves_the_sinks_out_of_the_results_and_the_auto_scale(tmp_path):
    """[CLS] and [SEP] soak up attention: with --exclude-sinks the auto colour scale of the focus
    map tops out at the largest weight elsewhere, so the image differs; the results say so."""
    import attnviz

    text = "The cat sat on the mat because it was tired."
    outputs = {}
    for name, extra in (("plain", []), ("sinks", ["--exclude-sinks"])):
        result = invoke(
            "export", text, "-o", str(tmp_path / name), "--layout", "focus", "--scale", "auto", "-j", "1", "-q", *extra
        )
        assert result.exit_code == 0, result.output
        (png,) = (tmp_path / name).glob("*/focus.png")
        Image.open(png).verify()
        outputs[name] = png.read_bytes()
    assert outputs["plain"] != outputs["sinks"]
    report = ex.export(
        attnviz.load_model("random"),
        ex.collect_sentences([text]),
        tmp_path / "lib",
        layouts=("focus",),
        exclude_sinks=True,
    )
    (record,) = report.records
    result = record.result
    assert result.excluded == tuple(result.sink_indices()) == (0, len(result.tokens) - 1)
