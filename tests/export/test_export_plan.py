"""export.plan(): the CLI's one call before the model loads. It validates everything that does not
need the model and returns an ExportPlan that export.run() carries out; the layer and head
selection ("0,2", "all") is resolved against the model in run()."""

from __future__ import annotations

import json

import pytest

from attnviz import export
from attnviz.errors import AttnvizError


def test_plan_collects_sentences_and_parses_layouts(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("# a comment\nOne it.\n\nTwo it.\n", encoding="utf-8")
    planned = export.plan([str(notes), "Three it."], tmp_path / "out", layouts="model,focus", jobs=None)
    assert [s.text for s in planned.sentences] == ["One it.", "Two it.", "Three it."]
    assert [s.source for s in planned.sentences][0] == f"{notes}, sentence 1"
    assert planned.layouts == ("model", "focus") and planned.jobs >= 1
    assert not (tmp_path / "out").exists()  # planning writes nothing


@pytest.mark.parametrize(
    ("setup", "kwargs", "message"),
    [
        (lambda out: out.write_text("x"), {}, "is a file; give a folder"),
        (lambda out: None, {"layouts": "model,bogus"}, "unknown layout bogus"),
        (lambda out: (out.mkdir(), (out / "index.html").write_text("<html>mine</html>")), {}, "not written by attnviz"),
        (lambda out: None, {"inputs": ["missing/notes.txt"]}, "no such file or folder: missing/notes.txt"),
    ],
)
def test_plan_refuses_before_any_model_exists(tmp_path, setup, kwargs, message):
    out = tmp_path / "out"
    setup(out)
    inputs = kwargs.pop("inputs", ["One it."])
    with pytest.raises(AttnvizError, match=message):
        export.plan(inputs, out, **kwargs)


def test_run_resolves_the_selection_against_the_model(tmp_path, small_model):
    planned = export.plan(["One it."], tmp_path / "out", layouts="heads", layers="1", heads="0,2")
    report = export.run(small_model, planned)
    assert not report.failed and report.written == 2
    manifest = json.loads((tmp_path / "out" / "index.json").read_text(encoding="utf-8"))
    assert [f["path"] for f in manifest["sentences"][0]["files"]] == ["001-one-it/L1-H00.png", "001-one-it/L1-H02.png"]
    assert manifest["settings"]["layers"] == [1] and manifest["settings"]["heads"] == [0, 2]


def test_run_refuses_a_selection_the_model_does_not_have_and_writes_nothing(tmp_path, small_model):
    planned = export.plan(["One it."], tmp_path / "new" / "out", layers="7")
    with pytest.raises(AttnvizError, match="invalid layer 7: the model has 2 layers"):
        export.run(small_model, planned)
    assert not (tmp_path / "new").exists()


def test_a_rerun_planned_with_other_image_settings_is_refused_at_planning(tmp_path, small_model):
    out = tmp_path / "out"
    export.run(small_model, export.plan(["One it."], out, layouts="model"))
    with pytest.raises(AttnvizError, match="--cmap viridis, this one has --cmap magma"):
        from attnviz.render.image import ImageOptions

        export.plan(["One it."], out, layouts="model", options=ImageOptions(cmap="magma"))
