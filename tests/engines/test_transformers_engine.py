"""The transformers engine (attnviz/engines/transformers_engine.py) on tiny random models made here
by transformers, for architectures the native engine does not read: the maps equal transformers'
own output_attentions bit for bit, labels match the text, masks are right, and the CLI runs them
(`show`, JSON, PNG) or refuses in one line what needs the native engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")


import tiny_hf
from cli_runs import assert_one_error_line, invoke

TEXT = "the cat sat on the mat ."
WORDS = TEXT.split()
# Eight architectures the native engine does not read.
FOREIGN = ["deberta-v2", "modernbert", "albert", "gpt_neox", "falcon", "olmo2", "t5", "bart"]
DECODERS = {"gpt_neox", "falcon", "olmo2", "mistral"}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {kind: tiny_hf.make(kind, root / kind) for kind in tiny_hf.ARCHS}


def _load(folder):
    from attnviz.engines import transformers_engine

    return transformers_engine.load(folder, str(folder))


@pytest.mark.slow
@pytest.mark.parametrize("kind", FOREIGN)
def test_maps_equal_transformers_output_attentions(models, kind):
    from attnviz.pipeline import run_attention

    model = _load(models[kind])
    assert model.engine == "transformers" and model.info.kind == f"transformers:{kind.replace('-', '-')}"
    result = run_attention(model, TEXT)
    expected, ids = tiny_hf.reference(models[kind], TEXT)
    assert result.weights.dtype == np.float32
    assert result.weights.shape == expected.shape == (2, 4, len(ids), len(ids))
    assert np.array_equal(result.weights, expected)  # exactly, not approximately
    assert result.layers == [0, 1] and result.heads == [0, 1, 2, 3]
    # Labels are the words of the text; encoders' [CLS]/[SEP] are special and keep their strings.
    decoder = kind in DECODERS
    assert result.labels == (WORDS if decoder else ["[CLS]", *WORDS, "[SEP]"])
    assert result.special == ([False] * 7 if decoder else [True] + [False] * 7 + [True])
    assert [result.text[a:b] for (a, b), s in zip(result.offsets, result.special) if not s] == WORDS
    assert result.model.learned and result.model.config.num_layers == 2 and result.model.config.num_heads == 4
    # Causal models are marked, and their masked cells (j > i) drawn as masked, holding 0.
    assert result.causal is decoder
    hidden = result.masked(0)
    if decoder:
        T = len(ids)
        assert np.array_equal(hidden, np.triu(np.ones((T, T), bool), k=1))
        assert not result.weights[..., hidden].any()
    else:
        assert not hidden.any()
    np.testing.assert_allclose(result.weights.sum(-1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_selection_and_focus_rows(models):
    from attnviz.pipeline import run_attention

    model = _load(models["bart"])
    full = run_attention(model, TEXT)
    part = run_attention(model, TEXT, layers=[1], heads=[3, 0], focus=2)
    assert np.array_equal(part.weights, full.weights[[1]][:, [3, 0]])
    assert part.focus_index == 2 and np.array_equal(part.focus_rows, full.weights[:, :, 2, :])


@pytest.mark.slow
def test_sliding_window_masks_are_detected(models):
    """Mistral-like: every layer attends within `sliding_window` (3): keys j <= i - 3 are masked."""
    from attnviz.pipeline import run_attention

    model = _load(models["mistral"])
    result = run_attention(model, TEXT)
    assert np.array_equal(result.weights, tiny_hf.reference(models["mistral"], TEXT)[0])
    assert result.causal and result.model.config.sliding_window == 3
    T = len(result.tokens)
    for layer in (0, 1):
        hidden = result.masked(layer)
        expected = np.triu(np.ones((T, T), bool), k=1) | np.tril(np.ones((T, T), bool), k=-3)
        assert np.array_equal(hidden, expected)
        assert not result.head(layer, 0)[hidden].any()
        assert result.head(layer, 0)[~hidden].all()  # every visible cell has weight


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["albert", "gpt_neox"])
def test_padded_batches_equal_single_runs(models, kind):
    """run_attention_batch pads after the real tokens; the attention mask keeps padding out."""
    from attnviz.pipeline import run_attention, run_attention_batch

    model = _load(models[kind])
    texts = ["the cat", TEXT, "a dog ran in the park because it was tired ."]
    batch = run_attention_batch(model, texts)
    for text, got in zip(texts, batch):
        one = run_attention(model, text)
        assert got.tokens == one.tokens and got.weights.shape == one.weights.shape
        np.testing.assert_allclose(got.weights, one.weights, atol=1e-6)
        np.testing.assert_allclose(got.weights.sum(-1), 1.0, atol=1e-5)  # no weight left on padding


@pytest.mark.slow
def test_cli_show_json_png_through_transformers(models, tmp_path):
    folder = models["deberta-v2"]
    shown = invoke("show", TEXT, "-m", folder, "-l", "0", "--head", "1")
    assert shown.exit_code == 0, shown.output
    assert "cat" in shown.stdout and "[CLS]" in shown.stdout
    done = invoke("show", TEXT, "-m", folder, "--format", "json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    expected, _ = tiny_hf.reference(folder, TEXT)
    assert data["model"]["kind"] == "transformers:deberta-v2" and data["labels"][1:-1] == WORDS
    assert np.array_equal(np.array(data["weights"], dtype=np.float32), expected)
    png = tmp_path / "a.png"
    done = invoke("show", TEXT, "-m", folder, "--engine", "transformers", "--png", png, "-l", "0", "--head", "0")
    assert done.exit_code == 0, done.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_cli_decoder_json_is_causal(models):
    done = invoke("show", TEXT, "-m", models["olmo2"], "--format", "json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["causal"] is True and data["labels"] == WORDS


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["albert", "t5", "gpt_neox"])
def test_native_engine_refuses_them_in_one_line(models, kind):
    assert_one_error_line(invoke("show", TEXT, "-m", models[kind], "--engine", "native"), "not supported")


@pytest.mark.slow
def test_native_only_features_are_one_line(models):
    folder = models["albert"]
    assert_one_error_line(invoke("show", TEXT, "-m", folder, "--view", "norm"), "needs the native engine")
    assert_one_error_line(invoke("show", TEXT, "-m", folder, "--view", "value-zeroing"), "needs the native engine")
    assert_one_error_line(
        invoke("ablate", "the dog ran because it was tired .", "-c", "dog,park", "-m", models["gpt_neox"]),
        "needs the native engine",
    )


@pytest.mark.slow
def test_rollout_view_through_transformers(models):
    from attnviz.analysis.views import rollout
    from attnviz.pipeline import run_attention

    model = _load(models["albert"])
    full = run_attention(model, TEXT)
    rolled = run_attention(model, TEXT, view="rollout")
    np.testing.assert_allclose(rolled.weights[:, 0], rollout(full.weights).astype(np.float32), rtol=1e-6)


def test_without_the_extra_an_unsupported_model_names_the_install(models, monkeypatch):
    import attnviz.engines

    monkeypatch.setattr(attnviz.engines, "transformers_available", lambda: False)
    assert_one_error_line(invoke("show", TEXT, "-m", models["albert"]), "pip install 'attnviz[transformers]'")


def test_random_model_with_transformers_engine_is_one_line():
    assert_one_error_line(invoke("show", TEXT, "--engine", "transformers"), "native engine only")


def test_model_without_attention_output_is_one_line(models, monkeypatch):
    """A model whose forward returns no attention maps (no eager implementation: simulated by a
    forward that drops them, as sdpa/flash kernels do)."""
    import transformers

    original = transformers.AlbertModel.forward

    def no_attentions(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        out.attentions = None
        return out

    monkeypatch.setattr(transformers.AlbertModel, "forward", no_attentions)
    assert_one_error_line(invoke("show", TEXT, "-m", models["albert"]), "no eager attention implementation")


def test_model_refusing_eager_attention_is_one_line(models, monkeypatch):
    """transformers raises ValueError for an attn_implementation a model does not support."""
    import transformers

    def refuse(*args, **kwargs):
        raise ValueError("AlbertModel does not support an attention implementation through eager yet.")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", refuse)
    assert_one_error_line(invoke("show", TEXT, "-m", models["albert"]), "no eager attention implementation")


@pytest.mark.slow
def test_probe_and_export_run_through_transformers(models, tmp_path):
    done = invoke("probe", "coref", "agreement", "-m", models["albert"], "--format", "json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)
    done = invoke("export", "the cat sat", "a dog ran", "-m", models["bart"], "-o", tmp_path / "out")
    assert done.exit_code == 0, done.output
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index


def test_inspect_is_one_line(models):
    assert_one_error_line(invoke("inspect", models["gpt_neox"]), "needs the native engine")


@pytest.mark.slow
def test_modernbert_local_layers_are_drawn_masked(models):
    """ModernBERT (local_attention 4): its local layer sees keys |i - j| <= 2, both sides; its
    global layer sees everything. The masked cells are exactly the ones transformers gives 0."""
    from attnviz.pipeline import run_attention

    model = _load(models["modernbert"])
    result = run_attention(model, "the cat sat on the mat because it was tired .")
    assert np.array_equal(result.weights, tiny_hf.reference(models["modernbert"], result.text)[0])
    assert not result.causal
    T = len(result.tokens)
    far = np.abs(np.subtract.outer(np.arange(T), np.arange(T))) > 2
    types = result.model.config.layer_types
    assert sorted(types) == ["full_attention", "sliding_attention"]
    for layer, kind in enumerate(types):
        hidden = result.masked(layer)
        assert np.array_equal(hidden, far if kind == "sliding_attention" else np.zeros((T, T), bool))
        zeros = (result.weights[result.layers.index(layer)] == 0).all(axis=0)  # [T, T] zero in every head
        assert np.array_equal(zeros, hidden)


@pytest.mark.slow
def test_html_page_through_transformers(models, tmp_path):
    page = tmp_path / "p.html"
    done = invoke("show", TEXT, "-m", models["deberta-v2"], "--html", page)
    assert done.exit_code == 0, done.output
    assert page.read_text().lstrip().lower().startswith("<!doctype html")


@pytest.mark.slow
def test_auto_engine_finds_a_cached_model_id(models, tmp_path, monkeypatch):
    """A model id in the local Hugging Face cache (no download) runs through transformers by default."""
    import shutil

    cache = tmp_path / "hub"
    repo = cache / "models--tiny--albert"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(models["albert"], snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = invoke("show", TEXT, "-m", "tiny/albert", "--format", "json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["model"]["kind"] == "transformers:albert" and data["model"]["source"] == "tiny/albert"
    assert np.array_equal(np.array(data["weights"], dtype=np.float32), tiny_hf.reference(models["albert"], TEXT)[0])
    assert_one_error_line(invoke("show", TEXT, "-m", "tiny/absent", "--engine", "transformers"), "never downloads")
