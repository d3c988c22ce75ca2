"""`attnviz compare`: flips between twin sentences, JSD between models, the figure."""

import io
import json

import numpy as np
import pytest

from attnviz.analysis.candidates import NO_WINNER
from attnviz.analysis.compare import align_units, compare_models, compare_sentences, jensen_shannon
from attnviz.analysis.words import to_words
from attnviz.checkpoints import random_model, save_model
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention

from builders import hand_set_model
from cli_runs import assert_one_error_line, invoke

A = "The cat saw the dog and it ran."
B = "The dog saw the cat and it ran."


def test_jensen_shannon_against_hand_values():
    assert jensen_shannon([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    assert jensen_shannon([0.3, 0.7], [0.3, 0.7]) == pytest.approx(0.0, abs=1e-12)
    # M = [0.75, 0.25]; KL(p||M) = 0.5 log2(0.5/0.75) + 0.5 log2(0.5/0.25); KL(q||M) = log2(1/0.75).
    kl_p = 0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(2.0)
    kl_q = np.log2(1 / 0.75)
    assert jensen_shannon([0.5, 0.5], [1.0, 0.0]) == pytest.approx(0.5 * kl_p + 0.5 * kl_q)
    # Unnormalised rows (norm view) are normalised first.
    assert jensen_shannon([2.0, 2.0], [4.0, 0.0]) == pytest.approx(0.5 * kl_p + 0.5 * kl_q)


def test_hand_set_model_has_the_attention_we_built():
    model = hand_set_model()
    words = to_words(run_attention(model, A))
    it = words.labels.index("it")
    assert words.weights[0, 0, it, words.labels.index("cat")] > 0.999
    assert words.weights[0, 1, it, 2] > 0.999 and words.labels[2] == "cat"


def test_flip_detection_on_hand_set_model():
    model = hand_set_model()
    comp = compare_sentences(to_words(run_attention(model, A)), to_words(run_attention(model, B)), "it", ["cat", "dog"])
    # Head 0 follows the word "cat" in both; head 1 follows position 2: cat in A, dog in B.
    assert comp.a.scores.winners.tolist() == [[0, 0]]
    assert comp.b.scores.winners.tolist() == [[0, 1]]
    assert comp.flips.tolist() == [[False, True]]
    assert [comp.a.result.labels[comp.a.top(0, h)[0]] for h in range(2)] == ["cat", "cat"]
    assert [comp.b.result.labels[comp.b.top(0, h)[0]] for h in range(2)] == ["cat", "dog"]
    data = comp.to_dict()
    assert data["n_flips"] == 1 and [h["flip"] for h in data["heads"]] == [False, True]


@pytest.mark.slow
def test_compare_cli_end_to_end_on_hand_set_model(tmp_path):
    folder = save_model(hand_set_model(), tmp_path / "hand")
    out = invoke(
        "compare", A, B, "--model", str(folder), "--focus", "it", "--candidates", "cat,dog", "--format", "json"
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["n_flips"] == 1
    assert [(h["head"], h["flip"], h["A"]["winner"], h["B"]["winner"]) for h in data["heads"]] == [
        (0, False, 0, 0),
        (1, True, 0, 1),
    ]
    table = invoke("compare", A, B, "--model", str(folder), "--focus", "it", "--candidates", "cat,dog")
    assert table.exit_code == 0, table.output
    assert "1 of 2 heads flip their winning candidate between the twins" in table.stdout
    assert "L0 H1" in table.stdout and "cat→dog" in table.stdout


def test_no_flip_is_said_plainly(tmp_path):
    folder = save_model(hand_set_model(), tmp_path / "hand")
    out = invoke("compare", A, B, "--model", str(folder), "--head", "0", "--focus", "it", "--candidates", "cat,dog")
    assert out.exit_code == 0, out.output
    assert "No head flips" in out.stdout


def test_align_units_pairs_replaced_words(small_model):
    a = to_words(run_attention(small_model, "The animal was too tired."))
    b = to_words(run_attention(small_model, "The animal was much too wide."))
    cols = align_units(a, b)
    pairs = [(None if c.a is None else a.labels[c.a], None if c.b is None else b.labels[c.b]) for c in cols]
    assert ("animal", "animal") in pairs and ("tired", "wide") in pairs
    assert ("[SEP]", "[SEP]") in pairs and (None, "much") in pairs
    assert [c.a for c in cols if c.a is not None] == list(range(len(a.labels)))
    assert [c.b for c in cols if c.b is not None] == list(range(len(b.labels)))


@pytest.mark.slow
def test_sentence_jsd_matches_direct_computation(small_model):
    ta = "The animal didn't cross the street because it was too tired."
    tb = "The animal didn't cross the street because it was too wide."
    wa, wb = to_words(run_attention(small_model, ta)), to_words(run_attention(small_model, tb))
    comp = compare_sentences(wa, wb, "it", ["animal", "street"])
    ia, ib = wa.labels.index("it"), wb.labels.index("it")
    # Same number of words, differing in "tired"/"wide" only: columns line up position by position.
    assert len(wa.labels) == len(wb.labels)
    for li in range(2):
        for hi in range(4):
            p, q = wa.weights[li, hi, ia].astype(float), wb.weights[li, hi, ib].astype(float)
            m = (p + q) / 2
            direct = 0.5 * sum(x * np.log2(x / y) for x, y in zip(p, m) if x > 0) + 0.5 * sum(
                x * np.log2(x / y) for x, y in zip(q, m) if x > 0
            )
            assert comp.jsd[li, hi] == pytest.approx(direct, abs=1e-6)
    flips_direct = [
        [
            (wa.weights[l, h, ia, wa.labels.index("animal")] > wa.weights[l, h, ia, wa.labels.index("street")])
            != (wb.weights[l, h, ib, wb.labels.index("animal")] > wb.weights[l, h, ib, wb.labels.index("street")])
            for h in range(4)
        ]
        for l in range(2)
    ]
    assert comp.flips.tolist() == flips_direct


@pytest.mark.slow
def test_compare_models_jsd(small_model):
    text = "The animal didn't cross the street because it was too tired."
    other = random_model(EncoderConfig(), seed=7)
    a, b = to_words(run_attention(small_model, text)), to_words(run_attention(other, text))
    same = compare_models(a, a, "it")
    np.testing.assert_allclose(same.jsd, 0.0, atol=1e-12)
    comp = compare_models(a, b, "it", ["animal", "street"])
    it = a.labels.index("it")
    np.testing.assert_allclose(comp.jsd, jensen_shannon(a.weights[:, :, it], b.weights[:, :, it]), atol=1e-12)
    whole = compare_models(a, b, None)
    np.testing.assert_allclose(whole.jsd, jensen_shannon(a.weights, b.weights).mean(-1), atol=1e-12)
    bigger = to_words(run_attention(random_model(EncoderConfig(num_layers=3)), text))
    with pytest.raises(AttnvizError, match="different shapes"):
        compare_models(a, bigger, "it")


@pytest.mark.slow
def test_compare_models_cli_json_and_errors():
    text = "The animal didn't cross the street because it was too tired."
    out = invoke("compare", text, "--model-b", "random", "--seed-b", "0", "--focus", "it", "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["kind"] == "models" and len(data["comparisons"]) == 1
    assert all(h["jsd"] == pytest.approx(0.0, abs=1e-9) for h in data["comparisons"][0]["heads"])
    diff = invoke("compare", text, "--model-b", "random", "--focus", "it")
    assert diff.exit_code == 0 and "random (seed 1)" in diff.stdout and "largest divergence" in diff.stdout
    assert_one_error_line(invoke("compare", text, "--focus", "it"), "give two sentences")
    assert_one_error_line(invoke("compare", A, B, "--candidates", "cat,zebra"), "'zebra' is not a word")
    no_focus = invoke("compare", A, "The dog saw the cat and he sat.", "--focus", "it")
    assert_one_error_line(no_focus, "sentence B: focus word 'it' is not a word")


@pytest.mark.slow
def test_compare_png_is_deterministic_and_metadata_free(tmp_path):
    from PIL import Image

    args = [
        "compare",
        "The animal didn't cross the street because it was too tired.",
        "동물은 너무 피곤해서 길을 건너지 않았다. 그것은 지쳤다.",
        "--focus",
        "0",
        "--format",
        "json",
    ]
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    r1 = invoke(*args + ["--png", str(first)])
    r2 = invoke(*args + ["--png", str(second)])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output
    assert first.read_bytes() == second.read_bytes()
    image = Image.open(io.BytesIO(first.read_bytes()))
    assert image.format == "PNG" and image.width > image.height > 100
    assert "Software" not in image.info and not any("date" in k.lower() for k in image.info)
    assert_one_error_line(invoke(*args + ["--png", str(first)]), "exists")
    wrong = invoke(*args + ["--png", str(tmp_path / "x.jpg")])
    assert_one_error_line(wrong, "end the name with .png, .svg or .pdf")
    assert not (tmp_path / "x.jpg").exists()


def test_tie_is_not_a_flip():
    import numpy as np
    from attnviz.analysis.candidates import winners

    w = np.array([[[0.2, 0.2], [0.3, 0.1]]])
    assert winners(w).tolist() == [[NO_WINNER, 0]]


# --- the table at terminal widths ------------------------------------------------------------------


def comparison_table(comp, width: int) -> list[str]:
    from rich.console import Console

    from attnviz.render.compare_view import render_comparison

    buffer = io.StringIO()
    render_comparison(Console(file=buffer, width=width, no_color=True, highlight=False), comp)
    return buffer.getvalue().splitlines()


def head_rows(lines: list[str]) -> list[str]:
    import re

    return [line for line in lines if re.match(r"L\d+ H\d+ ", line)]


@pytest.fixture(scope="module")
def minilm_twins(minilm):
    from attnviz.analysis.candidates import parse_candidates

    model = minilm
    a = to_words(run_attention(model, "The animal didn't cross the street because it was too tired."))
    b = to_words(run_attention(model, "The animal didn't cross the street because it was too wide."))
    return compare_sentences(a, b, "it", parse_candidates("animal,street"))


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.parametrize("width", [80, 100, 200])
def test_jsd_is_never_cut_whatever_the_width(minilm_twins, width):
    from rich.cells import cell_len

    lines = comparison_table(minilm_twins, width)
    rows = head_rows(lines)
    assert len(rows) == 72
    jsd = [f"{v:.3f}" for v in minilm_twins.jsd.reshape(-1)]
    assert [row.split()[-1] for row in rows] == jsd  # whole, in every row ("0.…" before)
    assert all(cell_len(line) <= width for line in lines)
    header = next(line for line in lines if line.startswith("head "))
    assert header.split()[-1] == "JSD"


@pytest.mark.slow
def test_words_are_whole_when_there_is_room_and_give_way_first_when_not(small_model):
    from attnviz.analysis.candidates import parse_candidates

    a = to_words(
        run_attention(small_model, "The councilmen refused the demonstrators a permit because they feared violence.")
    )
    b = to_words(
        run_attention(small_model, "The councilmen refused the demonstrators a permit because they advocated violence.")
    )
    comp = compare_sentences(a, b, "they", parse_candidates("councilmen,demonstrators"))
    wide = "\n".join(head_rows(comparison_table(comp, 200)))
    assert "…" not in wide  # 200 columns: every word whole
    won = {c.label for side in (comp.a, comp.b) for c in side.scores.candidates}
    assert won & set(wide.split())
    narrow = head_rows(comparison_table(comp, 70))
    assert all(len(row) <= 70 for row in narrow) and "…" in "".join(narrow)
    assert [row.split()[-1] for row in narrow] == [f"{v:.3f}" for v in comp.jsd.reshape(-1)]


# --- the figure: image flags, readable labels, masked cells ---------------------------------------

TWINS = [
    "The animal didn't cross the street because it was too tired.",
    "The animal didn't cross the street because it was too wide.",
]


def svg_panels(svg: bytes, shape=None) -> list[np.ndarray]:
    """The heatmaps embedded in an SVG, one pixel per cell (only those of `shape` [rows, cols] when given)."""
    import base64
    import re

    from PIL import Image

    found = re.findall(rb'xlink:href="data:image/png;base64,([^"]+)"', svg)
    images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGBA")).astype(int) for b in found]
    return [x for x in images if shape is None or x.shape[:2] == tuple(shape)]


@pytest.mark.slow
def test_compare_takes_the_image_flags_and_svg_pdf(tmp_path):
    from PIL import Image

    base = ["compare", *TWINS, "--focus", "it", "--candidates", "animal,street"]
    slide = invoke(*base + ["--png", str(tmp_path / "s.png"), "--preset", "slide"])
    assert slide.exit_code == 0, slide.output
    assert Image.open(tmp_path / "s.png").size == (2000, 1125)
    sized = invoke(
        *base + ["--png", str(tmp_path / "z.png"), "--size", "8x5", "--dpi", "100", "--transparent", "--cmap", "magma"]
    )
    assert sized.exit_code == 0, sized.output
    picture = Image.open(tmp_path / "z.png")
    assert picture.size == (800, 500) and picture.mode == "RGBA" and picture.getpixel((0, 0))[3] == 0
    for ext, magic in (("svg", b"<?xml"), ("pdf", b"%PDF")):
        done = invoke(*base + ["--png", str(tmp_path / f"f.{ext}")])
        assert done.exit_code == 0, done.output
        data = (tmp_path / f"f.{ext}").read_bytes()
        import matplotlib

        assert data.startswith(magic)
        for marker in (b"CreationDate", b"Producer", b"<dc:date>", b"<dc:creator>", matplotlib.__version__.encode()):
            assert marker not in data, marker
    for args, fragment in (
        (["--preset", "poster"], "poster"),
        (["--size", "huge"], "invalid --size"),
        (["--scale", "loud"], "invalid --scale"),
        (["--dpi", "5"], "--dpi 5"),
    ):
        bad = invoke(*base + ["--png", str(tmp_path / "b.png"), *args])
        assert bad.exit_code == 2 and fragment in bad.output, args  # click's usage errors: usage + message
    assert not (tmp_path / "b.png").exists()


@pytest.mark.slow
@pytest.mark.real_model
def test_a_72_head_comparison_names_every_head_in_a_readable_size(minilm_twins):
    """It was 2222x1792 px with 6 pt row labels; now rows take the label font (at least the
    preset's minimum), and when a slide is too short for 72 names it names every Nth and says so."""
    from PIL import Image

    from attnviz.render.compare_image import render_compare_image
    from attnviz.render.image import ImageOptions

    drawn = render_compare_image(minilm_twins)
    width, height = Image.open(io.BytesIO(drawn.data)).size
    assert height <= 14 * 120 and width < 2000
    assert drawn.notes == ()  # every row named, at 6 pt or more, no label overlapping
    slide = render_compare_image(minilm_twins, ImageOptions(preset="slide"))
    assert Image.open(io.BytesIO(slide.data)).size == (2000, 1125)
    assert any("names every 3rd head" in note for note in slide.notes)


@pytest.mark.slow
def test_compare_maps_use_the_fixed_scale_and_auto_on_request(small_model):
    import matplotlib

    from attnviz.analysis.candidates import parse_candidates

    a, b = (to_words(run_attention(small_model, t)) for t in TWINS)
    twins = compare_sentences(a, b, "it", parse_candidates("animal,street"))

    from attnviz.render.compare_image import render_compare_image
    from attnviz.render.image import ImageOptions

    def colours(values, vmax):
        return (matplotlib.colormaps["viridis"](np.clip(values / vmax, 0, 1)) * 255).round().astype(int)

    ma, mb = twins.maps()  # [72, C]
    fixed = svg_panels(render_compare_image(twins, ImageOptions(), "svg").data, ma.shape)
    assert np.abs(fixed[0] - colours(ma, 1.0)).max() <= 1 and np.abs(fixed[1] - colours(mb, 1.0)).max() <= 1
    top = max(ma.max(), mb.max())
    assert top < 0.99
    auto = svg_panels(render_compare_image(twins, ImageOptions(scale="auto"), "svg").data, ma.shape)
    assert np.abs(auto[0] - colours(ma, top)).max() <= 1  # A and B share one auto scale
    assert np.abs(auto[1] - colours(mb, top)).max() <= 1


@pytest.fixture(scope="module")
def causal_twins():
    from attnviz.analysis.candidates import parse_candidates

    model = random_model(EncoderConfig(num_layers=2, num_heads=2, d_model=16, d_ff=32, causal=True), 0)
    a, b = (to_words(run_attention(model, t)) for t in TWINS)
    return compare_sentences(a, b, "it", parse_candidates("animal,street"))


@pytest.mark.slow
def test_causal_comparison_draws_the_words_after_the_focus_as_masked(causal_twins):
    import matplotlib.colors

    from attnviz.render.compare_image import render_compare_image
    from attnviz.render.image import ImageOptions
    from attnviz.render.image.engine import MASKED_COLOR

    grey = (np.array(matplotlib.colors.to_rgba(MASKED_COLOR)) * 255).round().astype(int)
    shape = (4, len(causal_twins.columns))  # one pixel per cell
    panels = svg_panels(render_compare_image(causal_twins, ImageOptions(), "svg").data, shape)
    assert len(panels) == 3  # A, B, B - A
    focus = max(causal_twins.a.focus.units)
    future = np.array([col.a is not None and col.a > focus for col in causal_twins.columns])
    assert future.any() and not future.all()
    for panel in panels:
        assert np.all(panel[:, future] == grey)
        assert not np.any(np.all(panel[:, ~future] == grey, axis=-1))


@pytest.mark.slow
def test_compare_figure_sizes_that_cannot_work_are_one_line_errors(tmp_path):
    base = ["compare", *TWINS, "--focus", "it", "--num-layers", "6", "--num-heads", "12", "--d-model", "96"]
    for args, fragment in (
        (["--size", "0.6x0.6"], "too small"),
        (["--size", "100x100", "--dpi", "1200"], "200 megapixels"),
    ):
        assert_one_error_line(invoke(*base + ["--png", str(tmp_path / "x.png"), *args]), fragment)
        assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_compare_figure_draws_odd_unicode_as_visible_text(small_model, tmp_path):
    import warnings

    from attnviz.render.compare_image import render_compare_image

    a, b = (
        to_words(run_attention(small_model, t)) for t in ("漢字 🧠 said it was tired.", "漢字 🧠 said it was wide.")
    )
    comp = compare_sentences(a, b, "it", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would warn: boxes instead of text
        assert render_compare_image(comp).data.startswith(b"\x89PNG")


@pytest.mark.slow
def test_compare_prints_the_notes_of_its_figure(tmp_path):
    base = ["compare", *TWINS, "--focus", "it", "--num-layers", "6", "--num-heads", "12", "--d-model", "96"]
    done = invoke(*base + ["--png", str(tmp_path / "s.png"), "--preset", "slide"])
    assert done.exit_code == 0, done.output
    assert f"wrote {tmp_path / 's.png'}; note: the comparison names every 3rd head" in done.stderr
    as_json = invoke(*base + ["--png", str(tmp_path / "j.png"), "--preset", "slide", "--format", "json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["kind"] == "sentences"
    assert "note: the comparison names every 3rd head" in as_json.stderr  # stdout stays JSON
