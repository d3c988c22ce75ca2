"""Encoder-decoder attention in images, the HTML page and the focus summary, against transformers'
own numbers (tiny random T5, BART and Marian models made here, eager attention): a cross-attention
image has target rows and source columns, the page's data equals cross_attentions to 1e-6, and the
focus ranking is transformers' row sorted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")


import tiny_hf
from cli_runs import assert_one_error_line, invoke

SOURCE = "the cat sat on the mat because it was tired ."
TARGET = "le chat sur le tapis ."  # fewer tokens than the source: maps are not square


def make_marian(folder: Path) -> Path:
    """A tiny random Marian (sinusoidal positions, decoder start = pad) with tiny_hf's tokenizer."""
    import torch
    import transformers

    tok = tiny_hf.tokenizer(False)
    config = transformers.MarianConfig(
        vocab_size=len(tok),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=3,
        bos_token_id=2,
        decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    transformers.MarianMTModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq2seq-views")
    made = {kind: tiny_hf.make(kind, root / kind) for kind in ("t5", "bart")}
    made["marian"] = make_marian(root / "marian")
    return made


def reference(folder, source=SOURCE, target=TARGET):
    """transformers' own attentions, teacher-forced (decoder input = start token + target ids),
    eager attention: {"encoder", "decoder", "cross": float32 [L, H, Tq, Tk]} and the labels."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True)
    model.set_attn_implementation("eager")
    model.eval()
    src = tok(source, return_tensors="pt")
    tgt = tok(target)["input_ids"]
    dec = torch.tensor([[model.config.decoder_start_token_id] + tgt])
    with torch.no_grad():
        out = model(
            input_ids=src["input_ids"],
            attention_mask=src["attention_mask"],
            decoder_input_ids=dec,
            output_attentions=True,
        )
    stack = lambda maps: torch.stack(maps, dim=1)[0].float().numpy()  # noqa: E731
    return {
        "encoder": stack(out.encoder_attentions),
        "decoder": stack(out.decoder_attentions),
        "cross": stack(out.cross_attentions),
        "rows": tok.convert_ids_to_tokens(dec[0].tolist()),
        "columns": tok.convert_ids_to_tokens(src["input_ids"][0].tolist()),
    }


def page_json(page: str) -> dict:
    found = re.findall(r'<script type="application/json" id="attnviz-data">(.*?)</script>', page, re.S)
    assert len(found) == 1
    return json.loads(found[0])


def page_weights(kind_data: dict, bits: int) -> np.ndarray:
    from attnviz.render.html import dequantise

    view = kind_data["views"]["attention"]
    level = kind_data["levels"]["tokens"]
    T, Tk = len(level["labels"]), len(level.get("key_labels", level["labels"]))
    shape = (len(view["layers"]), len(view["heads"]), T, Tk)
    block = view["data"]["tokens"]
    return dequantise(block["scale"], block["b64"], bits, int(np.prod(shape))).reshape(shape)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t5", "bart", "marian"])
def test_cross_attention_image_has_target_rows_and_source_columns(models, kind, tmp_path):
    from attnviz.render.image import engine

    ref = reference(models[kind])
    Tq, Tk = ref["cross"].shape[2:]
    assert Tq != Tk  # the test means something only when the map is not square
    png = tmp_path / "cross.png"
    done = invoke("show", SOURCE, "--target", TARGET, "-m", models[kind], "-l", "1", "--head", "2", "--png", png)
    assert done.exit_code == 0, done.output
    assert "cross attention, head layout" in done.stderr
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[1] > pixels.shape[0]  # wider than tall: more columns than rows
    scene = engine.last_scene()
    drawn = np.asarray(scene.images[0].get_array())
    assert drawn.shape == (Tq, Tk)
    assert np.abs(drawn - ref["cross"][1, 2]).max() <= 1e-6
    # The panel: square cells, Tk wide and Tq tall.
    box = scene.axes[0].get_position()
    w, h = scene.fig.get_size_inches()
    assert box.width * w / (box.height * h) == pytest.approx(Tk / Tq, rel=1e-6)
    texts = [t.get_text() for t in scene.texts if t.get_visible()]
    assert any("cross-attention: target → source" in t for t in texts)
    assert "target token (query)" in texts and "source token (key)" in texts
    assert {"tapis", "chat"} <= set(texts) and {"because", "tired", "mat"} <= set(texts)


@pytest.mark.slow
def test_decoder_image_is_causal_masked_and_named(models, tmp_path):
    from attnviz.render.image import engine

    ref = reference(models["bart"])
    png = tmp_path / "decoder.png"
    done = invoke(
        "show", SOURCE, "--target", TARGET, "-m", models["bart"], "--attention", "decoder", "-l", "0", "--png", png
    )
    assert done.exit_code == 0, done.output
    scene = engine.last_scene()
    T = ref["decoder"].shape[2]
    for h, image in enumerate(scene.images[:4]):
        drawn = image.get_array()
        assert drawn.shape == (T, T)
        assert np.array_equal(np.ma.getmaskarray(drawn), np.triu(np.ones((T, T), bool), k=1))
        assert np.abs(drawn.filled(0) - ref["decoder"][0, h]).max() <= 1e-6
    texts = [t.get_text() for t in scene.texts if t.get_visible()]
    assert any("decoder self-attention (causal)" in t for t in texts) and "masked" in texts


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t5", "marian"])
def test_html_page_holds_the_three_kinds_equal_to_transformers(models, kind, tmp_path):
    page_file = tmp_path / "page.html"
    done = invoke("show", SOURCE, "--target", TARGET, "-m", models[kind], "--html", page_file)
    assert done.exit_code == 0, done.output
    page = page_file.read_text(encoding="utf-8")
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page
    data = page_json(page)
    ref = reference(models[kind])
    assert data["kind"] == "cross" and set(data["kinds"]) == {"encoder", "decoder", "cross"}
    assert data["bits"] == 32 and data["source"] == SOURCE and data["target"] == TARGET
    for name in ("encoder", "decoder", "cross"):
        got = page_weights(data["kinds"][name], data["bits"])
        assert got.shape == ref[name].shape
        assert np.abs(got - ref[name]).max() <= 1e-6, name
    cross = data["kinds"]["cross"]["levels"]["tokens"]
    assert cross["tokens"] == ref["rows"] and cross["key_labels"][1:-1] == SOURCE.split()
    assert cross["labels"][2:-1] == TARGET.split()
    assert "cross-attention" in data["kinds"]["cross"]["name"]
    assert data["kinds"]["decoder"]["causal"] is True and data["kinds"]["cross"]["causal"] is False
    assert data["kinds"]["encoder"]["levels"]["tokens"]["labels"][1:-1] == SOURCE.split()
    # The page's script and its CSP digest go together (html_page.page_script).
    from attnviz.render.html_page import page_script

    assert f"'sha256-{page_script('view.js')[1]}'" in page


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_focus_in_the_target_ranks_source_tokens_as_transformers_row_sorted(models, kind):
    from attnviz.analysis.focus import top_targets
    from attnviz.cli.show_seq2seq import _focus
    from attnviz.engines import transformers_engine

    ref = reference(models[kind])
    model = transformers_engine.load(models[kind], kind)
    results = transformers_engine.run_seq2seq_kinds(model, SOURCE, TARGET)
    focus, shown = _focus(results, "tapis", "cross", chosen=True)
    index = ref["rows"].index("tapis")
    assert shown == "cross" and focus.index == index
    L, H, _, Tk = ref["cross"].shape
    for row in top_targets(results["cross"], focus.index, k=Tk):
        expected = np.argsort(-ref["cross"][row.layer, row.head, index], kind="stable")
        assert [j for j, _ in row.targets] == expected.tolist()
        assert np.allclose([w for _, w in row.targets], ref["cross"][row.layer, row.head, index][expected], atol=1e-6)
    # The terminal says it, naming the source token transformers' row puts first.
    done = invoke("show", SOURCE, "--target", TARGET, "-m", models[kind], "-l", "1", "--head", "0", "--focus", "tapis")
    assert done.exit_code == 0, done.output
    best = int(np.argmax(ref["cross"][1, 0, index]))
    label = ref["columns"][best]
    assert f"'tapis' (target token {index}) attends most to {label!r} (source token {best})" in done.stdout
    assert "where 'tapis' (target token" in done.stdout and "attends in the source" in done.stdout


@pytest.mark.slow
def test_focus_side_rules_and_one_line_errors(models):
    folder = models["t5"]
    # In the source only, with --attention cross: one line saying where it is and what to use.
    done = invoke("show", SOURCE, "--target", TARGET, "-m", folder, "--attention", "cross", "--focus", "cat")
    assert_one_error_line(done, "--attention encoder")
    # In the target only, with --attention encoder: one line too.
    done = invoke("show", SOURCE, "--target", TARGET, "-m", folder, "--attention", "encoder", "--focus", "tapis")
    assert_one_error_line(done, "--attention cross or decoder")
    # In neither.
    assert_one_error_line(invoke("show", SOURCE, "--target", TARGET, "-m", folder, "--focus", "zebra"), "neither")
    # Without --attention, a source word moves the view to the encoder, and says so.
    done = invoke("show", SOURCE, "--target", TARGET, "-m", folder, "-l", "0", "--head", "0", "--focus", "cat")
    assert done.exit_code == 0, done.output
    assert "showing encoder self-attention" in done.stdout and "'cat' (token 2) attends most" in done.stdout
    assert "is in the source, not the target" in done.stdout
    # In both (".") the rows of the kind shown win: the target's for cross-attention.
    done = invoke("show", SOURCE, "--target", TARGET, "-m", folder, "-l", "0", "--head", "0", "--focus", ".")
    assert done.exit_code == 0, done.output
    assert "showing cross-attention" in done.stdout and "'.' (target token 7) attends most" in done.stdout
    # The decoder's self-attention: the target word attends to target tokens (causal).
    done = invoke("show", SOURCE, "--target", TARGET, "-m", folder, "--attention", "decoder", "--focus", "chat")
    assert done.exit_code == 0, done.output
    assert "'chat' (token 3) attends most" in done.stdout


def test_what_target_cannot_show_is_refused_before_the_model_loads():
    """One line, before anything loads (the random model is no encoder-decoder: it never gets that far)."""
    for flags, said in (
        (["--words"], "--words goes with one text's self-attention"),
        (["--candidates", "cat,mat"], "--candidates"),
        (["--view", "rollout"], "--view rollout"),
        (["--words", "--resolve"], "--words, --resolve go with"),
    ):
        assert_one_error_line(invoke("show", SOURCE, "--target", TARGET, *flags), said)


@pytest.mark.slow
def test_exclude_sinks_leaves_the_sources_special_tokens_out_of_the_cross_ranking(models):
    ref = reference(models["t5"])
    index = ref["rows"].index("chat")
    done = invoke(
        "show", SOURCE, "--target", TARGET, "-m", models["t5"], "-l", "0", "--head", "1", "--focus", "chat",
        "--exclude-sinks",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    row = ref["cross"][0, 1, index].copy()
    specials = [j for j, t in enumerate(ref["columns"]) if t in ("[CLS]", "[SEP]")]
    row[specials] = -1
    best = int(np.argmax(row))
    assert f"attends most to {ref['columns'][best]!r} (source token {best})" in done.stdout
    assert "Sinks left out of rankings and colour scales: [CLS] (source token 0)" in " ".join(done.stdout.split())


@pytest.mark.slow
def test_npz_and_json_of_cross_attention_carry_the_source(models, tmp_path):
    ref = reference(models["bart"])
    npz = tmp_path / "cross.npz"
    done = invoke("show", SOURCE, "--target", TARGET, "-m", models["bart"], "--format", "npz", "-o", npz)
    assert done.exit_code == 0, done.output
    with np.load(npz) as arrays:
        assert str(arrays["attention"]) == "cross" and str(arrays["key_text"]) == SOURCE
        assert arrays["key_tokens"].tolist() == ref["columns"] and arrays["tokens"].tolist() == ref["rows"]
        assert arrays["key_offsets"].shape == (len(ref["columns"]), 2)
        assert np.abs(arrays["weights"] - ref["cross"]).max() <= 1e-6
    done = invoke("show", SOURCE, "--target", TARGET, "-m", models["bart"], "--format", "json", "--digits", "3")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["digits"] == 3 and data["key_tokens"] == ref["columns"]
    assert np.abs(np.array(data["weights"]) - ref["cross"]).max() <= 5e-4


@pytest.mark.slow
def test_each_kind_of_the_page_opens_on_the_head_that_answers_the_focus(models, tmp_path):
    """As `show --html` does: the head where the focus token sends the most weight to one key,
    sinks aside; for cross-attention a source token (transformers' rows, the source's specials
    left out)."""
    page_file = tmp_path / "page.html"
    done = invoke("show", SOURCE, "--target", TARGET, "-m", models["t5"], "--focus", "tapis", "--html", page_file)
    assert done.exit_code == 0, done.output
    data = page_json(page_file.read_text(encoding="utf-8"))
    ref = reference(models["t5"])
    index = ref["rows"].index("tapis")
    keys = [j for j, token in enumerate(ref["columns"]) if token not in ("[CLS]", "[SEP]")]
    top = ref["cross"][:, :, index, keys].max(axis=-1)  # [L, H]
    layer, head = np.unravel_index(int(np.argmax(top)), top.shape)
    opened = data["kinds"]["cross"]["initial"]
    assert (opened["layer"], opened["head"]) == (layer, head)
    assert any(note.startswith(f"Opened on layer {layer} head {head}:") for note in data["kinds"]["cross"]["notes"])
    assert "one source token" in " ".join(data["kinds"]["cross"]["notes"])
    assert "layer" not in data["kinds"]["encoder"]["initial"]  # "tapis" is not in the source: no focus there
