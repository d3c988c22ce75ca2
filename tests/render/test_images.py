"""Heatmap images: sizes, layouts, the pixels themselves, labels, Korean glyphs, determinism."""

from __future__ import annotations

import base64
import io
import itertools
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attnviz.result import AttentionResult
from attnviz.checkpoints import random_model
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention
from attnviz.render import image as img
from attnviz.render.image import engine
from attnviz.render.fonts import HANGUL_FONT, coverage, drawable, font_files
from cli_runs import assert_one_error_line, invoke

SENTENCE = "The animal didn't cross the street because it was too tired."
KOREAN = "그 동물은 너무 피곤해서 길을 건너지 않았다. 그것은 지쳤다."


@pytest.fixture(scope="module")
def result(small_model):
    return run_attention(small_model, SENTENCE)


@pytest.fixture(scope="module")
def korean(small_model):
    return run_attention(small_model, KOREAN)


def synthetic(T: int, layers: int = 2, heads: int = 3, word: str = "tok") -> AttentionResult:
    """A result with T tokens and known weights (rows are softmaxes of fixed logits)."""
    rng = np.random.default_rng(T)
    logits = rng.normal(size=(layers, heads, T, T)) * 2
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    words = [f"{word}{i}" for i in range(T)]
    text = " ".join(words)
    offsets, pos = [], 0
    for w in words:
        offsets.append((pos, pos + len(w)))
        pos += len(w) + 1
    model = random_model(EncoderConfig(num_layers=layers, num_heads=heads, d_model=heads * 4, d_ff=8), 0).info
    return AttentionResult(
        text=text,
        tokens=words,
        offsets=offsets,
        word_ids=list(range(T)),
        special=[False] * T,
        weights=weights.astype(np.float32),
        layers=list(range(layers)),
        heads=list(range(heads)),
        model=model,
    )


def draw(*args, **kw) -> bytes:
    """The bytes of one image (render_image's notes dropped: tests of notes call it directly)."""
    return img.render_image(*args, **kw).data


def png_size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


# --- sizes and layouts ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layout", img.LAYOUTS)
def test_slide_preset_is_2000_by_1125_pixels(result, layout):
    data = draw(result, layout, img.ImageOptions(preset="slide"), focus=9)
    assert png_size(data) == (2000, 1125)


def test_size_and_dpi_set_the_pixel_size(result):
    options = img.ImageOptions(size=(4.0, 3.0), dpi=100)
    assert png_size(draw(result.select([0], [1]), "head", options)) == (400, 300)
    options = img.ImageOptions(size=img.parse_size("1600x900px", dpi=200), dpi=200)
    assert png_size(draw(result, "model", options)) == (1600, 900)


@pytest.mark.slow
def test_paper_preset_is_a_column_wide_at_300_dpi(result):
    width, height = png_size(draw(result.select([0], [0]), "head", img.ImageOptions(preset="paper")))
    assert width == 1050 and 0 < height <= 9 * 300
    width, _ = png_size(draw(result, "model", img.ImageOptions(preset="paper")))
    assert width == 2100  # grids take the text width, 7 in


def test_parse_size_units():
    assert img.parse_size("8x4.5") == (8.0, 4.5)
    assert img.parse_size("254x127mm") == pytest.approx((10.0, 5.0))
    assert img.parse_size("20x10cm") == pytest.approx((20 / 2.54, 10 / 2.54))
    assert img.parse_size("1200x600px", dpi=300) == (4.0, 2.0)
    for bad in ("8", "8x", "x4", "8by4", "-1x2", "8x4furlongs", "٣x٤", "８x４"):  # other scripts' digits too
        with pytest.raises(AttnvizError):
            img.parse_size(bad)


def svg_images(svg: bytes) -> list[np.ndarray]:
    """The raster images embedded in an SVG, decoded: one per drawn AxesImage."""
    found = re.findall(rb'xlink:href="data:image/png;base64,([^"]+)"', svg)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGBA")) for b in found]


@pytest.mark.parametrize("layout, panels", [("head", 1), ("layer", 4), ("model", 8), ("focus", 1)])
def test_each_layout_draws_its_panels_and_one_colour_bar(result, layout, panels):
    svg = draw(result, layout, img.ImageOptions(), fmt="svg", focus=9, layer=1, head=2)
    assert len(svg_images(svg)) == panels + 1


def viridis_of(values: np.ndarray, vmax: float) -> np.ndarray:
    import matplotlib

    return (matplotlib.colormaps["viridis"](np.clip(values / vmax, 0, 1)) * 255).round().astype(int)


def test_head_pixels_are_the_weights_in_viridis_on_the_fixed_0_to_1_scale(result):
    weights = result.head(1, 2)  # [T, T]
    svg = draw(result, "head", img.ImageOptions(), fmt="svg", layer=1, head=2)
    panel = svg_images(svg)[0]
    assert panel.shape[:2] == weights.shape  # interpolation "none": one pixel per cell
    assert weights.max() < 0.99  # so a scale to the maximum would differ
    assert np.abs(panel.astype(int) - viridis_of(weights, 1.0)).max() <= 1


def test_auto_scale_tops_out_at_the_image_maximum(result):
    weights = result.head(1, 2)
    svg = draw(result, "head", img.ImageOptions(scale="auto"), fmt="svg", layer=1, head=2)
    assert np.abs(svg_images(svg)[0].astype(int) - viridis_of(weights, weights.max())).max() <= 1
    svg = draw(result, "head", img.ImageOptions(scale=0.5), fmt="svg", layer=1, head=2)
    assert np.abs(svg_images(svg)[0].astype(int) - viridis_of(weights, 0.5)).max() <= 1


def test_two_images_of_one_scale_give_one_weight_one_colour(result):
    """The point of the fixed scale: the same weight has the same colour on every slide."""
    a, b = result.head(0, 0), result.head(1, 3)
    pa = svg_images(draw(result, "head", img.ImageOptions(), fmt="svg", layer=0, head=0))[0].astype(int)
    pb = svg_images(draw(result, "head", img.ImageOptions(), fmt="svg", layer=1, head=3))[0].astype(int)
    assert a.max() != b.max()
    i, j = np.unravel_index(np.argmax(a), a.shape)
    k, m = np.unravel_index(np.argmin(np.abs(b - a[i, j])), b.shape)
    if abs(b[k, m] - a[i, j]) < 0.002:
        assert np.abs(pa[i, j] - pb[k, m]).max() <= 2
    assert np.array_equal(pa[a < 0.0005][:1], pb[b < 0.0005][:1])  # near-zero cells: the same dark colour


def test_auto_scale_leaves_out_the_excluded_sinks(result):
    sinkless = result.without_sinks()
    assert sinkless.excluded  # [CLS] and [SEP]
    keep = [j for j in range(len(result.tokens)) if j not in sinkless.excluded]
    # A head whose largest weight goes to a sink.
    layer, head = next(
        (la, h)
        for la in result.layers
        for h in result.heads
        if result.head(la, h)[:, keep].max() < result.head(la, h).max()
    )
    weights = result.head(layer, head)
    top = weights[:, keep].max()
    svg = draw(sinkless, "head", img.ImageOptions(scale="auto"), fmt="svg", layer=layer, head=head)
    assert np.abs(svg_images(svg)[0].astype(int) - viridis_of(weights, top)).max() <= 1
    texts = [t for t, _, _ in drawn_texts("head", sinkless, img.ImageOptions(scale="auto"), layer=layer, head=head)]
    assert any(t.startswith("attention weight · auto, without [CLS] [SEP]") for t in texts)
    assert f"≥{img_fmt_tick(top)}" in texts  # the top tick says the sinks' cells are clipped


def img_fmt_tick(value: float) -> str:
    from attnviz.render.image.engine import fmt_tick

    return fmt_tick(value)


def test_layer_grid_shares_one_colour_scale(result):
    weights = result.weights[result.layers.index(1)]  # [H, T, T]
    svg = draw(result, "layer", img.ImageOptions(scale="auto"), fmt="svg", layer=1)
    panels = svg_images(svg)[:-1]
    vmax = weights.max()  # the largest weight of the whole layer
    for h, panel in enumerate(panels):
        assert np.abs(panel.astype(int) - viridis_of(weights[h], vmax)).max() <= 1


def test_focus_map_rows_are_where_the_focus_token_attends(result):
    rows = result.weights[:, :, 9, :].reshape(-1, len(result.tokens))  # [L*H, T]
    svg = draw(result, "focus", img.ImageOptions(), fmt="svg", focus=9)
    panel = svg_images(svg)[0]
    assert panel.shape[:2] == rows.shape
    assert np.abs(panel.astype(int) - viridis_of(rows, 1.0)).max() <= 1


def test_cmap_option_changes_the_colours(result):
    weights = result.head(0, 0)
    svg = draw(result, "head", img.ImageOptions(cmap="magma"), fmt="svg", layer=0, head=0)
    import matplotlib

    expected = (matplotlib.colormaps["magma"](weights) * 255).round().astype(int)
    assert np.abs(svg_images(svg)[0].astype(int) - expected).max() <= 1
    with pytest.raises(AttnvizError, match="colormap"):
        img.validate_options(img.ImageOptions(cmap="no-such-map"))


def colour_bar_ticks(layout, res, options, **kw) -> list[str]:
    return [t for t, _, _ in drawn_texts(layout, res, options, **kw) if re.fullmatch(r"≥?\d(\.\d+)?", t)]


@pytest.mark.parametrize("layout", img.LAYOUTS)
def test_the_colour_bar_is_labelled_and_runs_0_to_1_by_default(result, layout):
    texts = [t for t, _, _ in drawn_texts(layout, result, img.ImageOptions(), focus=9, layer=1)]
    assert "attention weight" in texts
    ticks = colour_bar_ticks(layout, result, img.ImageOptions(), focus=9, layer=1)
    assert ticks[0] == "0" and ticks[-1] == "1"


@pytest.mark.slow
def test_rollout_and_norm_views_state_their_own_scale(small_model):
    rollout = run_attention(small_model, SENTENCE, view="rollout")
    texts = [t for t, _, _ in drawn_texts("model", rollout, img.ImageOptions())]
    assert "rollout: attention flow" in texts and colour_bar_ticks("model", rollout, img.ImageOptions())[-1] == "1"
    norm = run_attention(small_model, SENTENCE, view="norm")
    assert norm.weights.max() > 1  # not a probability: no 0-1 scale
    texts = [t for t, _, _ in drawn_texts("model", norm, img.ImageOptions())]
    assert "norm: weight × ‖value‖ · auto scale" in texts
    assert float(colour_bar_ticks("model", norm, img.ImageOptions())[-1]) == pytest.approx(norm.weights.max(), abs=1e-3)
    with pytest.raises(AttnvizError, match="norm view"):
        img.render_image(norm, "model", img.ImageOptions(scale="fixed"))


@pytest.mark.parametrize("spec, expected", [("fixed", "fixed"), ("AUTO", "auto"), ("0.5", 0.5), (" 2 ", 2.0)])
def test_parse_scale(spec, expected):
    assert img.validate_options(img.ImageOptions(scale=spec)).scale == expected
    assert img.ImageOptions(scale=spec).scale_for("attention") == expected  # unvalidated, from Python


def test_a_scale_given_as_text_from_python_draws_like_the_number(result):
    assert draw(result, "head", img.ImageOptions(scale="0.5"), layer=0, head=1) == draw(
        result, "head", img.ImageOptions(scale=0.5), layer=0, head=1
    )


@pytest.mark.parametrize("spec", ["shared", "0", "-1", "nan", "inf", "", "1e9"])
def test_bad_scales_are_one_line_errors(spec, tmp_path):
    with pytest.raises(AttnvizError, match="--scale"):
        img.validate_options(img.ImageOptions(scale=spec))
    assert_one_error_line(invoke("show", SENTENCE, "--png", str(tmp_path / "x.png"), "--scale", spec), "--scale")
    assert not (tmp_path / "x.png").exists()


# --- labels ----------------------------------------------------------------------------------------


def drawn_texts(layout, result, options, notes=None, **kw):
    """Render, then return the visible texts of the scene with their pixel boxes (and the image's
    notes into the list `notes`)."""
    drawn = img.render_image(result, layout, options, **kw)
    if notes is not None:
        notes.extend(drawn.notes)
    scene = engine.last_scene()
    renderer = scene.fig.canvas.get_renderer()
    return [
        (t.get_text(), t.get_fontsize(), t.get_window_extent(renderer))
        for t in scene.texts
        if t.get_visible() and t.get_text()
    ]


@pytest.mark.slow
@pytest.mark.parametrize("preset", [None, "slide", "paper"])
@pytest.mark.parametrize("layout", ["head", "focus"])
def test_all_40_token_labels_are_drawn_readable_and_never_overlap(preset, layout):
    res = synthetic(40, layers=2, heads=4)
    texts = drawn_texts(layout, res, img.ImageOptions(preset=preset), layer=1, head=3, focus=7)
    style = img.STYLES[preset]
    token_texts = [(t, size, box) for t, size, box in texts if re.fullmatch(r"tok\d+", t)]
    # Every token labelled (twice on a head map: keys and queries), none below the readable size.
    assert {t for t, _, _ in token_texts} == {f"tok{i}" for i in range(40)}
    assert all(size >= style.min_font for _, size, _ in token_texts)
    for (a, _, box_a), (b, _, box_b) in itertools.combinations(texts, 2):
        assert (
            not box_a.overlaps(box_b)
            or box_a.intersection(box_a, box_b).width * box_a.intersection(box_a, box_b).height < 1.0
        ), (a, b)


@pytest.mark.slow
@pytest.mark.parametrize("preset", [None, "slide", "paper"])
def test_grids_draw_only_labels_that_fit_and_they_never_overlap(preset):
    res = synthetic(40, layers=3, heads=6)
    style = img.STYLES[preset]
    for layout in ("layer", "model"):
        texts = drawn_texts(layout, res, img.ImageOptions(preset=preset), layer=0)
        assert all(size >= style.min_font * 0.8 for _, size, _ in texts)
        for (a, _, box_a), (b, _, box_b) in itertools.combinations(texts, 2):
            inter = box_a.intersection(box_a, box_b)
            assert inter is None or inter.width * inter.height < 1.0, (layout, a, b)


@pytest.mark.slow
def test_model_grid_leaves_out_unreadable_token_labels_and_says_so():
    res = synthetic(30, layers=6, heads=12)
    notes = []
    texts = drawn_texts("model", res, img.ImageOptions(preset="slide"), notes)
    assert not [t for t, _, _ in texts if re.fullmatch(r"tok\d+", t)]
    assert {f"L{i}" for i in range(6)} | {f"H{j}" for j in range(12)} <= {t for t, _, _ in texts}
    assert any("too small" in note for note in notes)


def test_annotate_writes_each_weight_in_its_cell():
    res = synthetic(6, layers=1, heads=1)
    weights = res.head(0, 0)
    texts = drawn_texts("head", res, img.ImageOptions(annotate=True, preset="slide"))
    small = img.STYLES["slide"].small  # colour-bar ticks ("1" too) have this size
    values = [t for t, size, _ in texts if re.fullmatch(r"1|\.\d\d", t) and size != small]
    expected = ["1" if w >= 0.995 else f"{w:.2f}".lstrip("0") for w in weights.ravel()]
    assert values == expected


def test_annotate_is_left_out_with_a_note_when_cells_are_tiny():
    res = synthetic(40, layers=1, heads=1)
    notes = []
    texts = drawn_texts("head", res, img.ImageOptions(annotate=True, preset="paper"), notes)
    assert not [t for t, _, _ in texts if re.fullmatch(r"\.\d\d", t)]
    assert any("--annotate" in note for note in notes)


@pytest.mark.slow
def test_cached_glyphs_draw_exactly_the_pixels_matplotlib_draws(korean, monkeypatch):
    options = img.ImageOptions(preset="slide")
    fast = [draw(korean, layout, options, focus=16) for layout in ("head", "focus")]
    fast_again = [draw(korean, layout, options, focus=16) for layout in ("head", "focus")]
    monkeypatch.setattr(engine, "FAST_TEXT", False)
    slow = [draw(korean, layout, options, focus=16) for layout in ("head", "focus")]
    assert fast == fast_again == slow


# --- Korean and other scripts ------------------------------------------------------------------------


def glyph_warnings(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if "missing" in str(w.message).lower() or "glyph" in str(w.message).lower()]


def test_the_check_would_catch_boxes_for_hangul():
    """Control: matplotlib's own default font has no Hangul and warns; our check sees that."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def draw():
        with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
            fig = Figure()
            FigureCanvasAgg(fig)
            fig.text(0.1, 0.5, "그것은")
            fig.canvas.draw()

    assert glyph_warnings(draw)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", img.FORMATS)
def test_korean_renders_without_missing_glyph_warnings(korean, fmt):
    options = img.ImageOptions(preset="slide")
    for layout in img.LAYOUTS:
        assert glyph_warnings(lambda layout=layout: draw(korean, layout, options, fmt=fmt, focus=16)) == []


def test_hangul_comes_from_the_shipped_font_registered_by_path():
    files = [os.fspath(f) for f in font_files()]
    assert Path(files[1]).resolve() == HANGUL_FONT.resolve()
    assert all(ord(ch) in coverage() for ch in KOREAN.replace(" ", ""))


def test_characters_no_font_has_become_visible_escapes(small_model):
    assert 0x1F9E0 not in coverage() and 0x6F22 not in coverage()
    assert drawable("it 그것 漢🧠") == "it 그것 \ufffd\ufffd"  # a fallback glyph; escapes are for controls
    # Decomposed Hangul (NFD, as macOS file names have it) is composed, not escaped.
    assert drawable("\u1100\u1161") == "가"
    res = run_attention(small_model, "漢字 and 🧠 then 그것")
    assert glyph_warnings(lambda: draw(res, "head", img.ImageOptions(), layer=0, head=0)) == []


@pytest.mark.slow
@pytest.mark.subprocess
def test_fresh_font_cache_still_finds_the_hangul_font(tmp_path):
    """A matplotlib font cache built without our font (a new MPLCONFIGDIR) cannot hide it."""
    code = (
        "import warnings, sys\n"
        "warnings.simplefilter('error')\n"
        "from attnviz.checkpoints import random_model\n"
        "from attnviz.pipeline import run_attention\n"
        "from attnviz.render.image import render_image, ImageOptions\n"
        f"r = run_attention(random_model(), {KOREAN!r})\n"
        "sys.stdout.buffer.write(render_image(r, 'focus', ImageOptions(), focus=16).data[:8])\n"
    )
    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mplconfig")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"\x89PNG\r\n\x1a\n"
    assert b"missing" not in done.stderr


# --- determinism ------------------------------------------------------------------------------------


def png_chunks(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


def test_png_carries_no_metadata_but_its_resolution(result):
    data = draw(result, "model", img.ImageOptions())
    assert set(png_chunks(data)) == {b"IHDR", b"pHYs", b"IDAT", b"IEND"}


@pytest.mark.parametrize("fmt", ["svg", "pdf"])
def test_vector_files_carry_no_date_or_software(result, fmt):
    import matplotlib

    data = draw(result, "layer", img.ImageOptions(), fmt=fmt, layer=0)
    for marker in (
        b"matplotlib",
        b"Matplotlib",
        matplotlib.__version__.encode(),
        b"CreationDate",
        b"Producer",
        b"<dc:date>",
    ):
        assert marker not in data


def test_user_rc_settings_do_not_change_the_bytes(result):
    import matplotlib

    before = draw(result, "focus", img.ImageOptions(), focus=9)
    with matplotlib.rc_context(
        {"figure.facecolor": "red", "font.size": 30, "image.cmap": "magma", "svg.hashsalt": None, "lines.linewidth": 5}
    ):
        during = draw(result, "focus", img.ImageOptions(), focus=9)
    assert before == during


@pytest.mark.slow
@pytest.mark.subprocess
def test_same_command_writes_identical_files_in_separate_processes(tmp_path):
    """Two fresh processes (fresh caches, random SVG ids otherwise), byte-identical PNG, SVG and PDF."""
    code = (
        "import sys\n"
        "from attnviz.cli import main\n"
        "folder, text = sys.argv[1:]\n"
        "for name, extra in (('m.png', []), ('f.svg', ['--focus', '그것은']), ('l.pdf', ['--layer', '1'])):\n"
        "    assert main(['show', text, '--png', f'{folder}/{name}', *extra]) == 0\n"
    )
    outputs = []
    for run in ("a", "b"):
        folder = tmp_path / run
        folder.mkdir()
        done = subprocess.run([sys.executable, "-c", code, str(folder), KOREAN], capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append({p.name: p.read_bytes() for p in folder.iterdir()})
    assert sorted(outputs[0]) == ["f.svg", "l.pdf", "m.png"]
    assert outputs[0] == outputs[1]
    assert outputs[0]["f.svg"].startswith(b"<?xml")
    assert outputs[0]["l.pdf"].startswith(b"%PDF")


# --- the command line --------------------------------------------------------------------------------


@pytest.mark.slow
def test_show_png_writes_the_image_instead_of_tables(tmp_path):
    target = tmp_path / "it.png"
    done = invoke("show", SENTENCE, "--png", str(target), "--preset", "slide", "--focus", "it")
    assert done.exit_code == 0, done.output
    assert done.stdout == ""
    assert f"wrote {target} (focus layout)" in done.stderr
    assert png_size(target.read_bytes()) == (2000, 1125)


@pytest.mark.slow
def test_show_png_picks_the_layout_from_the_selection(tmp_path):
    cases = {("--layer", "1", "--head", "2"): "head", ("--layer", "1"): "layer", (): "model"}
    for args, layout in cases.items():
        target = tmp_path / f"{layout}.svg"
        done = invoke("show", SENTENCE, "--png", str(target), *args)
        assert done.exit_code == 0, done.output
        assert f"({layout} layout)" in done.stderr
        panels = {"head": 1, "layer": 4, "model": 8}[layout]
        assert len(svg_images(target.read_bytes())) == panels + 1


def test_show_png_with_json_still_prints_json(tmp_path):
    done = invoke("show", SENTENCE, "--png", str(tmp_path / "x.png"), "--format", "json")
    assert done.exit_code == 0
    assert done.stdout.startswith("{") and (tmp_path / "x.png").is_file()


@pytest.mark.slow
def test_transparent_background(tmp_path):
    for flag, mode in (([], "RGB"), (["--transparent"], "RGBA")):
        target = tmp_path / f"t{len(flag)}.png"
        assert invoke("show", SENTENCE, "--png", str(target), *flag).exit_code == 0
        picture = Image.open(target)
        assert picture.mode == mode
        if mode == "RGBA":
            assert picture.getpixel((0, 0))[3] == 0


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--png", "x.jpg"], "end the name with .png, .svg or .pdf"),
        (["--png", "x.png", "--cmap", "rainbowz"], "unknown colormap"),
        (["--png", "x.png", "--size", "big"], "invalid --size"),
        (["--png", "x.png", "--dpi", "5"], "--dpi 5 is out of range"),
        (["--png", "x.png", "--preset", "poster"], "poster"),
    ],
)
def test_bad_image_options_are_one_line_errors(tmp_path, args, fragment, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = invoke("show", SENTENCE, *args)
    if done.stderr.startswith("Usage:"):  # click's own checks (--preset's choices): usage + message
        assert done.exit_code == 2 and fragment in done.stderr and "Traceback" not in done.output
    else:
        assert_one_error_line(done, fragment)
    assert not list(tmp_path.iterdir())


def test_show_png_refuses_to_overwrite_without_the_flag(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"keep")
    assert_one_error_line(invoke("show", SENTENCE, "--png", str(target)), "--overwrite")
    assert target.read_bytes() == b"keep"
    assert invoke("show", SENTENCE, "--png", str(target), "--overwrite").exit_code == 0
    assert target.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("channels", [3, 4])
def test_png_writer_round_trips_every_pixel(channels):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, 256, size=(37, 53, channels), dtype=np.uint8)
    pixels[10:20] = pixels[10]  # repeated rows, as heatmap cells have
    data = img.png_bytes(pixels, dpi=300)
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == ("RGBA" if channels == 4 else "RGB")
    assert np.array_equal(np.asarray(decoded), pixels)
    strided = np.concatenate([pixels, pixels[..., :1]], axis=-1)[..., :channels]  # as RGB cut from RGBA
    assert not strided.flags.c_contiguous and img.png_bytes(strided, dpi=300) == data
    assert decoded.info["dpi"] == pytest.approx((300, 300), abs=0.01)


def test_png_is_exactly_what_agg_drew(result):
    data = draw(result, "layer", img.ImageOptions(), layer=0)
    scene = engine.last_scene()
    drawn = np.asarray(scene.fig.canvas.buffer_rgba())[..., :3]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), drawn)


# --- the package: notes as return values, no state leaking between images ---------------------------


@pytest.mark.subprocess
def test_importing_the_image_package_loads_no_matplotlib():
    code = (
        "import sys, attnviz.render.image as m\n"
        "assert m.ImageOptions and m.render_image and m.choose_layout and m.png_bytes\n"
        "print('matplotlib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_a_render_returns_its_notes_and_a_clean_image_has_none():
    tiny = synthetic(40, layers=1, heads=1)
    drawn = img.render_image(tiny, "head", img.ImageOptions(annotate=True, preset="paper"))
    assert drawn.data.startswith(b"\x89PNG") and any("--annotate" in n for n in drawn.notes)
    # The next image's notes are its own: nothing carried over from the one before.
    assert img.render_image(synthetic(5, 1, 1), "head", img.ImageOptions(annotate=True)).notes == ()
    # The same note from every panel of a grid is said once.
    grid = img.render_image(synthetic(40, 2, 3), "layer", img.ImageOptions(annotate=True, preset="paper"), layer=0)
    assert len(grid.notes) == len(set(grid.notes)) == 1


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["svg", "pdf", "png"])
def test_a_transparent_image_does_not_leave_the_next_one_on_the_same_figure_transparent(result, fmt):
    """Regression: the reused figure kept the transparent PNG's background, so an SVG of the same
    layout drawn next (Python API) came out transparent too."""
    engine._SCENES.clear()
    fresh = draw(result, "layer", img.ImageOptions(), fmt=fmt, layer=0)
    clear = draw(result, "layer", img.ImageOptions(transparent=True), layer=0)
    assert Image.open(io.BytesIO(clear)).getpixel((0, 0))[3] == 0
    after = draw(result, "layer", img.ImageOptions(), fmt=fmt, layer=0)
    assert after == fresh
    if fmt == "svg":
        patch = re.search(rb'<g id="patch_1">.*?</g>', after, re.S).group()
        assert b"fill: #ffffff" in patch and b"opacity: 0" not in patch


@pytest.mark.slow
def test_rerendering_after_other_layouts_gives_the_same_bytes(result, korean):
    first = [draw(result, layout, img.ImageOptions(), focus=9, layer=1) for layout in img.LAYOUTS]
    for layout in img.LAYOUTS:  # other sentences, presets and options on the same figures
        draw(korean, layout, img.ImageOptions(preset="slide", annotate=True, transparent=True), focus=3, layer=0)
    assert [draw(result, layout, img.ImageOptions(), focus=9, layer=1) for layout in img.LAYOUTS] == first


@pytest.mark.slow
def test_export_prints_the_notes_of_its_images(tmp_path):
    """--annotate on cells too small for values: export says so (on stderr), as show does."""
    long = " ".join(f"w{i}" for i in range(40))
    done = invoke(
        "export",
        long,
        "-o",
        str(tmp_path / "out"),
        "--layout",
        "layers,model",
        "--annotate",
        "--preset",
        "paper",
        "--jobs",
        "1",
        "--num-layers",
        "2",
        "--num-heads",
        "2",
    )
    assert done.exit_code == 0, done.output
    assert re.search(r"attnviz: note: cells are too small for --annotate values.* \(2 images\)", done.stderr)
    assert "attnviz: note: the model grid has no --annotate values" in done.stderr
    show = invoke(
        "show",
        long,
        "--png",
        str(tmp_path / "s.png"),
        "--annotate",
        "--preset",
        "paper",
        "--num-layers",
        "1",
        "--num-heads",
        "1",
    )
    assert show.exit_code == 0 and "note: cells are too small for --annotate" in show.stderr


# --- causal models: future cells are masked, never a dark 0 --------------------------------------------


@pytest.fixture(scope="module")
def causal():
    model = random_model(EncoderConfig(num_layers=2, num_heads=3, d_model=24, d_ff=48, causal=True), 0)
    return run_attention(model, SENTENCE)


def masked_rgba() -> np.ndarray:
    import matplotlib.colors

    return (np.array(matplotlib.colors.to_rgba(engine.MASKED_COLOR)) * 255).round().astype(int)


@pytest.mark.parametrize("layout", img.LAYOUTS)
def test_causal_future_cells_are_drawn_in_the_neutral_colour(causal, layout):
    assert causal.causal
    T = len(causal.tokens)
    svg = draw(causal, layout, img.ImageOptions(), fmt="svg", focus=9, layer=1)
    panels = svg_images(svg)[:-1]
    if layout == "focus":
        weights = [causal.weights[:, :, 9, :].reshape(-1, T)]
        future = np.broadcast_to(np.arange(T) > 9, weights[0].shape)
    else:
        weights = {
            "head": [causal.head(1, 0)],
            "layer": list(causal.weights[1]),
            "model": list(causal.weights.reshape(-1, T, T)),
        }[layout]
        future = np.triu(np.ones((T, T), bool), 1)
    assert len(panels) == len(weights)
    for panel, w in zip(panels, weights):
        panel = panel.astype(int)
        assert np.all(panel[future] == masked_rgba())  # every future cell grey
        seen = ~future
        assert np.abs(panel[seen] - viridis_of(w, 1.0)[seen]).max() <= 1  # the rest: the weights
        assert not np.any(np.all(panel[seen] == masked_rgba(), axis=-1))  # grey means masked only


@pytest.mark.parametrize("layout", img.LAYOUTS)
def test_causal_images_explain_the_grey_under_the_colour_bar(causal, result, layout):
    texts = [t for t, _, _ in drawn_texts(layout, causal, img.ImageOptions(), focus=9, layer=1)]
    assert "masked" in texts and any("causal" in t for t in texts)
    scene = engine.last_scene()
    assert scene.swatch.get_visible()
    assert tuple(scene.swatch.get_facecolor()) == pytest.approx(masked_rgba() / 255)
    drawn_texts(layout, result, img.ImageOptions(), focus=9, layer=1)  # an encoder: no key, no grey
    assert not engine.last_scene().swatch.get_visible()


def test_causal_annotations_leave_masked_cells_empty():
    res = synthetic(5, layers=1, heads=1)
    tri = np.tril(res.weights[0, 0])
    tri /= tri.sum(-1, keepdims=True)
    from dataclasses import replace

    causal_model = replace(res.model, config=replace(res.model.config, causal=True))
    res = replace(res, weights=tri[None, None].astype(np.float32), model=causal_model)
    small = img.STYLES["slide"].small
    texts = drawn_texts("head", res, img.ImageOptions(annotate=True, preset="slide"))
    values = [t for t, size, _ in texts if re.fullmatch(r"1|\.\d\d", t) and size != small]
    assert len(values) == 5 * 6 // 2  # the lower triangle only


def test_auto_scale_ignores_masked_cells_and_the_first_token_sink(causal):
    sinkless = causal.without_sinks()
    assert 0 in sinkless.excluded
    weights = causal.head(0, 1)
    keep = np.ones(weights.shape, bool)
    keep[:, list(sinkless.excluded)] = False
    keep &= ~np.triu(np.ones(weights.shape, bool), 1)
    svg = draw(sinkless, "head", img.ImageOptions(scale="auto"), fmt="svg", layer=0, head=1)
    panel = svg_images(svg)[0].astype(int)
    assert np.abs(panel[keep] - viridis_of(weights, weights[keep].max())[keep]).max() <= 1


# --- the focus map names its heads -------------------------------------------------------------------


@pytest.mark.slow
def test_a_72_row_focus_map_names_heads_as_well_as_layers():
    res = synthetic(16, layers=6, heads=12)  # MiniLM's shape
    for preset, every in ((None, 1), ("slide", 2)):
        notes = []
        texts = {t for t, _, _ in drawn_texts("focus", res, img.ImageOptions(preset=preset), notes, focus=3)}
        if every == 1:
            assert {f"L{i} H{j}" for i in range(6) for j in range(12)} <= texts
        else:
            assert {f"L{i}" for i in range(6)} <= texts
            assert {f"H{j}" for j in range(0, 12, every)} <= texts
            assert any("names every 2nd head" in note for note in notes)
        # Labels never overlap (checked like the token labels above).
    texts = drawn_texts("focus", res, img.ImageOptions(preset="slide"), focus=3)
    for (a, _, box_a), (b, _, box_b) in itertools.combinations(texts, 2):
        inter = box_a.intersection(box_a, box_b)
        assert inter is None or inter.width * inter.height < 1.0, (a, b)


def test_the_notebook_api_draws_through_the_package(result):
    import attnviz

    data = attnviz.render_image(result, focus=9, fmt="png")
    assert data == draw(result, "focus", img.ImageOptions(), focus=9)  # the focus layout, chosen
    assert attnviz.ImageOptions is img.ImageOptions
    for name in ("options", "layouts", "engine", "writer"):  # the package, by job
        assert __import__(f"attnviz.render.image.{name}", fromlist=["x"])


@pytest.mark.slow
def test_export_draws_every_image_on_the_scale_it_is_given(tmp_path):
    import json

    out = tmp_path / "out"
    done = invoke(
        "export",
        SENTENCE,
        "-o",
        str(out),
        "--layout",
        "heads",
        "--scale",
        "0.5",
        "--format",
        "svg",
        "--jobs",
        "1",
        "--num-layers",
        "1",
        "--num-heads",
        "2",
    )
    assert done.exit_code == 0, done.output
    manifest = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert manifest["image_options"]["scale"] == 0.5
    res = run_attention(random_model(EncoderConfig(num_layers=1, num_heads=2), 0), SENTENCE)
    for head in (0, 1):
        svg = next(out.rglob(f"L0-H{head:02d}.svg")).read_bytes()
        assert np.abs(svg_images(svg)[0].astype(int) - viridis_of(res.head(0, head), 0.5)).max() <= 1
