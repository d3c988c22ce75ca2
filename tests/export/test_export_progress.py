"""The export's progress total is known from the first call and never grows; the bar on a terminal
shows that total and a time remaining."""

from __future__ import annotations

import pytest

import re
from attnviz import export as ex
from cli_runs import TINY, invoke


@pytest.mark.slow
def test_progress_total_is_final_from_the_first_call(tmp_path, small_model):
    sentences = ex.collect_sentences(
        [
            "The animal didn't cross the street because it was too tired.",  # a pronoun: a focus map
            "Cats sleep all day.",  # none: no focus map
            "word " * 400,  # too long: fails
            "A dog ate food because it was hungry.",
        ]
    )
    calls = []
    report = ex.export(
        small_model,
        sentences,
        tmp_path / "out",
        layouts=("model", "layers", "focus"),
        on_progress=lambda done, total: calls.append((done, total)),
    )
    written = [p for p in (tmp_path / "out").rglob("*.png")]
    assert len(report.failed) == 1 and report.written == len(written) == 4 + 3 + 4
    assert calls[0] == (0, len(written))  # before any drawing
    assert {total for _, total in calls} == {len(written)}  # never grows
    assert [done for done, _ in calls] == sorted(done for done, _ in calls) and calls[-1][0] == len(written)

    calls.clear()  # a rerun: kept images count too
    again = ex.export(small_model, sentences, tmp_path / "out", on_progress=lambda d, t: calls.append((d, t)))
    assert again.written == 0 and again.kept == len(written)
    assert calls[0] == (0, len(written)) and calls[-1] == (len(written), len(written))


@pytest.mark.slow
def test_the_progress_bar_shows_the_final_total_and_a_time_remaining(tmp_path):
    """rich draws the bar under FORCE_COLOR; every frame's N/M has the final M."""
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(f"Sentence {i} says it was late." for i in range(6)) + "\nNo pronoun here.\n")
    done = invoke(
        "export",
        str(inputs),
        "-o",
        str(tmp_path / "out"),
        *TINY,
        "--jobs",
        "1",
        "--layout",
        "heads,focus",
        env={"FORCE_COLOR": "1", "TERM": "xterm", "COLUMNS": "120"},
    )
    assert done.exit_code == 0, done.output
    images = len(list((tmp_path / "out").rglob("*.png")))
    assert images == 7 * 4 + 6
    frames = re.findall(r"(\d+)/(\d+) images", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", done.stderr))
    assert frames and {int(total) for _, total in frames} == {images}, frames
    assert re.search(r"\d+:\d\d:\d\d", done.stderr), "no time-remaining column"
