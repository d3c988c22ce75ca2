"""What a newcomer sees first: show's answer before its tables, no hint to look for pronoun heads
in a random model, singular counts, the HTML page opening on one head, colour-bar captions that
fit, and emoji drawn as one fallback glyph in images."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest
from typer.testing import CliRunner

from attnviz.analysis.focus import top_targets
from attnviz.analysis.opening_head import opening_head
from attnviz.cli import app
from attnviz.pipeline import run_attention
from attnviz.render.html import render_html

SENTENCE = "The animal didn't cross the street because it was too tired."


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    """No pronoun heads remembered from other runs."""
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))


def show(*args) -> str:
    result = CliRunner().invoke(app, ["show", *args], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def page_data(page: str) -> dict:
    found = re.findall(r'<script type="application/json" id="attnviz-data">(.*?)</script>', page, re.S)
    assert len(found) == 1
    return json.loads(found[0])


# -- show -----------------------------------------------------------------------------------------


def test_the_focus_answer_comes_before_the_first_table_and_agrees_with_the_summary(small_model):
    out = show(SENTENCE)
    lines = out.splitlines()
    answer = next(i for i, line in enumerate(lines) if line.startswith("'it' (token 9) attends most to"))
    first_table = next(i for i, line in enumerate(lines) if line.startswith("layer 0 · head 0"))
    assert answer < first_table < 20
    # The answer counts the same first targets as the per-head summary at the end, over all 8 heads.
    result = run_attention(small_model, SENTENCE)
    firsts = Counter(row.targets[0][0] for row in top_targets(result, 9, 3))
    (top, n), *_ = firsts.most_common(1)
    paragraph = " ".join(lines[answer : answer + 2])
    assert f"attends most to {result.labels[top]!r} (token {top}) in {n} of 8 heads" in paragraph
    assert "top target over 8 heads: " in out


def test_a_random_model_never_sends_the_reader_to_look_for_its_pronoun_heads():
    out = show(SENTENCE)
    assert "Random weights" in out
    assert "attnviz inspect" not in out and "pronoun heads" not in out.lower()


def test_one_head_is_counted_as_one_head():
    out = show(SENTENCE, "-l", "1", "--head", "2", "--candidates", "animal,street")
    assert "in 1 of 1 head;" in " ".join(out.split())
    assert "top target over 1 head: " in out
    assert re.search(r"^over 1 head: ", out, re.M)
    assert "1 heads" not in out


# -- the HTML page opens on one head --------------------------------------------------------------


def test_show_html_opens_on_the_head_where_the_focus_is_most_decided(small_model, tmp_path):
    page = tmp_path / "it.html"
    CliRunner().invoke(app, ["show", SENTENCE, "--html", str(page)], catch_exceptions=False)
    data = page_data(page.read_text(encoding="utf-8"))
    # Independently: the largest weight from "it" (token 9) to a key other than itself and the sinks.
    result = run_attention(small_model, SENTENCE)
    keys = [j for j in range(len(result.tokens)) if j != 9 and not result.special[j]]
    top = result.weights[:, :, 9, keys].max(axis=-1)
    want = np.unravel_index(np.argmax(top), top.shape)
    assert (data["initial"]["layer"], data["initial"]["head"]) == tuple(int(x) for x in want)
    assert any(
        note.startswith(f"Opened on layer {want[0]} head {want[1]}: the head where 'it'") for note in data["notes"]
    )


def test_a_known_pronoun_head_is_opened_first_and_the_library_default_is_unchanged(small_model):
    result = run_attention(small_model, SENTENCE)
    known = [{"layer": 0, "head": 3, "accuracy": 0.71}, {"layer": 1, "head": 1, "accuracy": 0.93}]
    assert opening_head(result, 9, known)[:2] == (1, 1)
    page = render_html(result, pronoun_heads={"probe_set": "agreement", "heads": known}, open_on_focus=True)
    initial = page_data(page)["initial"]
    assert (initial["layer"], initial["head"]) == (1, 1)
    # A page built without open_on_focus (notebooks, export) keeps every head of layer 0.
    assert "head" not in page_data(render_html(result))["initial"]
    # No focus, nothing to rank: no opening head.
    assert opening_head(result, None) is None


# -- images -----------------------------------------------------------------------------------------


def test_the_auto_scale_caption_of_a_grid_is_shortened_not_cut(small_model):
    from attnviz.render.image import ImageOptions, engine, render_image

    result = run_attention(small_model, "All is well.")
    render_image(result, "model", ImageOptions(scale="auto"))
    texts = [t.get_text() for t in engine.last_scene().texts if t.get_visible() and t.get_text()]
    captions = [t for t in texts if "auto" in t]
    assert captions and all("…" not in t for t in captions), captions


def test_emoji_become_one_fallback_glyph_and_controls_stay_escapes():
    from attnviz.render.fonts import FALLBACK, coverage, drawable

    assert 0x1F468 not in coverage()
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # man ZWJ woman ZWJ girl: one emoji
    assert drawable(f"The family {family} smiled") == f"The family {FALLBACK} smiled"
    assert drawable("\U0001f44d\U0001f3fd ok") == f"{FALLBACK} ok"  # a skin tone belongs to its emoji
    assert drawable("\U0001f1f0\U0001f1f7\U0001f1ef\U0001f1f5") == FALLBACK * 2  # two flags
    assert drawable("\U0001f9e0\U0001f9e0") == FALLBACK * 2  # two emoji stay two
    assert drawable("a\U000e0001b") == "a<U+E0001>b"  # a format character without a glyph: an escape
    assert "<U+" not in drawable(f"smiled {family}")


@pytest.mark.slow
def test_an_image_of_emoji_draws_without_missing_glyphs(small_model):
    import warnings

    from attnviz.render.image import ImageOptions, engine, render_image

    result = run_attention(small_model, "The family \U0001f468\u200d\U0001f469\u200d\U0001f467 smiled.")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing" for a box
        render_image(result, "head", ImageOptions(), layer=0, head=0)
    texts = [t.get_text() for t in engine.last_scene().texts if t.get_visible()]
    assert not any("<U+" in t for t in texts)


def test_a_trained_checkpoint_still_says_how_to_find_its_pronoun_heads(small_model, tmp_path):
    import attnviz

    folder = attnviz.save_model(small_model, tmp_path / "trained", learned=True)
    out = " ".join(show(SENTENCE, "-m", str(folder)).split())
    assert f"Pronoun heads of this model are not known yet: `attnviz inspect {folder}`" in out
    out = " ".join(show(SENTENCE, "-m", str(folder), "-l", "0").split())
    assert "Pronoun heads are not marked: --layer loaded layer 0 only" in out
