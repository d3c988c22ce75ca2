"""GGUF files (llama.cpp's format): tensors, tokenizers and whole models, against references.

Files are written here with the `gguf` package's own writer (GGUFWriter, gguf.quants.quantize).
Models: tiny LLaMA (grouped-query attention) and GPT-2 checkpoints made by transformers, converted
to GGUF the way llama.cpp's convert_hf_to_gguf.py does (LLaMA's Q/K rows permuted per head,
GPT-2's Conv1D weights transposed), must load in attnviz with transformers' eager attentions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import attnviz
from attnviz.checkpoints.gguf_file import GGUFFile
from attnviz.checkpoints.lazy_rows import LazyEmbedding
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention, run_attention_batch
from attnviz.samples import sample_sentences
from cli_runs import assert_one_error_line, invoke

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")
Q = gguf.GGMLQuantizationType
TOL = 1e-5
SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "A dog ate food because it was hungry.",
    "개가 배고파서 음식을 먹었다.",
    "It costs 1234 dollars, ok?",
]


# Writing GGUF files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bpe():
    """A small byte-level BPE (vocabulary, merges) trained on the sample texts."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<|im_start|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sample_sentences() + SENTENCES, trainer)
    data = json.loads(tok.to_str())["model"]
    vocab = [t for t, _ in sorted(data["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["merges"]]
    return vocab, merges


def add_tokenizer(w, bpe, pre="gpt2", add_bos=False):
    vocab, merges = bpe
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", pre)
    w.add_token_list(vocab)
    w.add_token_merges(merges)
    w.add_token_types([3 if t.startswith("<|") else 1 for t in vocab])
    w.add_uint32("tokenizer.ggml.bos_token_id", 0)
    w.add_uint32("tokenizer.ggml.eos_token_id", 0)
    w.add_bool("tokenizer.ggml.add_bos_token", add_bos)


def write(path: Path, arch: str, tensors: dict, meta=None, bpe=None, pre="gpt2", add_bos=False) -> Path:
    """A GGUF file: tensors {name: (float32 array, ggml type)}, metadata {key: value}."""
    w = gguf.GGUFWriter(str(path), arch)
    for key, value in (meta or {}).items():
        if isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        else:
            w.add_string(key, value)
    if bpe is not None:
        add_tokenizer(w, bpe, pre, add_bos)
    for name, (array, qtype) in tensors.items():
        array = np.ascontiguousarray(array, dtype=np.float32)
        if qtype == Q.F32:
            w.add_tensor(name, array)
        else:
            w.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def llama_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py LlamaModel.permute: half-split rows to llama.cpp's interleaved pairs."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_to_gguf(model, path: Path, bpe, qtype=Q.F32, pre="gpt2") -> Path:
    c = model.config
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    meta = {
        "llama.block_count": c.num_hidden_layers,
        "llama.context_length": c.max_position_embeddings,
        "llama.embedding_length": c.hidden_size,
        "llama.feed_forward_length": c.intermediate_size,
        "llama.attention.head_count": c.num_attention_heads,
        "llama.attention.head_count_kv": c.num_key_value_heads,
        "llama.rope.freq_base": float(c.rope_parameters["rope_theta"]),
        "llama.attention.layer_norm_rms_epsilon": float(c.rms_norm_eps),
        "llama.rope.dimension_count": c.hidden_size // c.num_attention_heads,
        "llama.vocab_size": c.vocab_size,
    }
    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    tensors = {
        "token_embd.weight": (sd["model.embed_tokens.weight"], qtype),
        "output_norm.weight": (sd["model.norm.weight"], Q.F32),
    }
    for i in range(c.num_hidden_layers):
        for theirs, ours in names.items():
            w = sd[f"model.layers.{i}.{theirs}.weight"]
            if ours == "attn_q":
                w = llama_permute(w, c.num_attention_heads)
            elif ours == "attn_k":
                w = llama_permute(w, c.num_key_value_heads)
            tensors[f"blk.{i}.{ours}.weight"] = (w, Q.F32 if w.ndim == 1 else qtype)
    return write(path, "llama", tensors, meta, bpe, pre)


def gpt2_to_gguf(model, path: Path, bpe) -> Path:
    c = model.config
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    meta = {
        "gpt2.block_count": c.n_layer,
        "gpt2.context_length": c.n_positions,
        "gpt2.embedding_length": c.n_embd,
        "gpt2.feed_forward_length": 4 * c.n_embd,
        "gpt2.attention.head_count": c.n_head,
        "gpt2.attention.layer_norm_epsilon": float(c.layer_norm_epsilon),
    }
    names = {
        "ln_1": "attn_norm",
        "attn.c_attn": "attn_qkv",
        "attn.c_proj": "attn_output",
        "ln_2": "ffn_norm",
        "mlp.c_fc": "ffn_up",
        "mlp.c_proj": "ffn_down",
    }
    tensors = {
        "token_embd.weight": (sd["transformer.wte.weight"], Q.F32),
        "position_embd.weight": (sd["transformer.wpe.weight"], Q.F32),
        "output_norm.weight": (sd["transformer.ln_f.weight"], Q.F32),
        "output_norm.bias": (sd["transformer.ln_f.bias"], Q.F32),
    }
    for i in range(c.n_layer):
        for theirs, ours in names.items():
            for leaf in ("weight", "bias"):
                w = sd[f"transformer.h.{i}.{theirs}.{leaf}"]
                if leaf == "weight" and w.ndim == 2:
                    w = w.T  # Conv1D stores [in, out]; the converter transposes it
                tensors[f"blk.{i}.{ours}.{leaf}"] = (w, Q.F32)
    return write(path, "gpt2", tensors, meta, bpe)


def tiny_llama(vocab_size: int, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        rope_theta=5000.0,
        rms_norm_eps=1e-6,
        attn_implementation="eager",
        tie_word_embeddings=True,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # transformers' init is small; larger weights give peaked, distinct heads
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0, 0.3)
    return model


def reference_attentions(model, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        out = model(torch.tensor([ids]), output_attentions=True)
    return torch.stack(out.attentions, 1)[0]  # [L, H, T, T]


def show_error(path, *extra) -> str:
    return assert_one_error_line(invoke("show", "The cat sat.", "--model", str(path), *extra))


# Tensors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("qtype", [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1])
def test_written_tensors_round_trip(tmp_path, qtype):
    rng = np.random.default_rng(int(qtype))
    arrays = {
        "a.weight": rng.standard_normal((48, 64)).astype(np.float32),
        "b.weight": rng.standard_normal((3, 5, 128)).astype(np.float32) * 10,
    }
    if qtype in (Q.F32, Q.F16, Q.BF16):
        arrays["c.bias"] = rng.standard_normal(7).astype(np.float32)
    path = write(tmp_path / "t.gguf", "llama", {n: (a, qtype) for n, a in arrays.items()})
    with GGUFFile(path) as f:
        for name, a in arrays.items():
            got = f.read(name)
            assert got.dtype == np.float32 and got.shape == a.shape and f.tensors[name].type_name == qtype.name
            if qtype == Q.F32:
                assert np.array_equal(got, a)
            elif qtype == Q.F16:
                assert np.array_equal(got, a.astype(np.float16).astype(np.float32))
            else:  # the writer's quantization, dequantized: exact against the package's own reference
                expected = gguf.quants.dequantize(gguf.quants.quantize(a, qtype), qtype).reshape(a.shape)
                assert np.array_equal(got, expected)
                assert not np.array_equal(got, a)
                if qtype == Q.BF16:  # 8 significant bits, rounded
                    assert (np.abs(got - a) <= np.abs(a) * 2.0**-8).all()
                    continue
                # ...and close to the original: each block's step is its max |value| / 2^(bits-1)
                bits = {Q.Q8_0: 8, Q.Q4_0: 4, Q.Q4_1: 4, Q.Q5_0: 5, Q.Q5_1: 5}[qtype]
                blocks = np.abs(a).reshape(-1, 32).max(axis=1, keepdims=True)
                err = np.abs(got - a).reshape(-1, 32)
                assert (err <= blocks * 2.0 ** (1 - bits) + 1e-6).all()


def random_blocks(qtype, rows: int, cols: int, seed: int) -> np.ndarray:
    """Random bytes shaped as `rows` rows of `qtype` blocks, with finite fp16 scales."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (rows, cols // block, size), dtype=np.uint8)
    # Where each block keeps its fp16 scales (ggml-common.h): d and dmin, or d alone.
    scales = {Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q2_K: (size - 4, size - 2), Q.Q3_K: (size - 2,), Q.Q6_K: (size - 2,)}
    for at in scales[qtype]:
        raw[:, :, at : at + 2] = (
            rng.uniform(-0.05, 0.05, (rows, cols // block)).astype(np.float16).view(np.uint8).reshape(rows, -1, 2)
        )
    return raw.reshape(rows, -1)


@pytest.mark.parametrize("qtype", [Q.Q4_K, Q.Q6_K, Q.Q5_K, Q.Q3_K, Q.Q2_K])
def test_k_quants_match_transformers_own_dequantizer(tmp_path, qtype):
    """gguf cannot quantize K-quants; random blocks written raw must read as transformers' own
    (independent, torch) dequantizer reads them."""
    from transformers.integrations.gguf.dequant import dequantize as reference

    rows, cols = 6, 512
    raw = random_blocks(qtype, rows, cols, int(qtype))
    w = gguf.GGUFWriter(str(tmp_path / "k.gguf"), "llama")
    w.add_tensor("k.weight", raw, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with GGUFFile(tmp_path / "k.gguf") as f:
        got = f.read("k.weight")
    expected = reference(torch.from_numpy(raw.reshape(-1).copy()), int(qtype)).reshape(rows, cols).numpy()
    assert got.shape == (rows, cols) and np.isfinite(got).all() and np.abs(got).max() > 0
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_reader_agrees_with_gguf_reader(tmp_path, bpe):
    """attnviz's header parser (fast) and gguf.GGUFReader read the same metadata and tensors."""
    model = tiny_llama(len(bpe[0]))
    path = llama_to_gguf(model, tmp_path / "m.gguf", bpe, qtype=Q.Q8_0)
    assert_same_as_gguf_reader(path)


def assert_same_as_gguf_reader(path):
    reader = gguf.GGUFReader(str(path))
    with GGUFFile(path) as f:
        fields = {k: v for k, v in reader.fields.items() if not k.startswith("GGUF.")}
        assert set(fields) == set(f.fields)
        for key, field in fields.items():
            theirs, ours = field.contents(), f.fields[key]
            if isinstance(ours, np.ndarray):
                assert np.array_equal(ours, np.asarray(theirs)), key
            else:
                assert ours == theirs, key
        assert [t.name for t in reader.tensors] == list(f.tensors)
        for t in reader.tensors:
            info = f.tensors[t.name]
            assert info.shape == tuple(int(d) for d in reversed(t.shape)) and info.type_id == int(t.tensor_type)
            assert np.array_equal(f.read(t.name), gguf.quants.dequantize(t.data, t.tensor_type).reshape(info.shape))


# Models -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_pair(tmp_path_factory, bpe):
    model = tiny_llama(len(bpe[0]))
    path = llama_to_gguf(model, tmp_path_factory.mktemp("llama") / "tiny-llama.gguf", bpe)
    return model, attnviz.load_model(str(path)), path


def test_tiny_llama_gguf_matches_transformers_eager(llama_pair):
    ref, ours, _ = llama_pair
    c = ours.config
    assert (c.num_layers, c.num_heads, c.kv_heads, c.d_model, c.rope_base) == (3, 4, 2, 64, 5000.0)
    assert c.causal and c.positional == "rope" and c.norm == "rms" and c.ffn == "gated"
    assert ours.info.kind == "llama" and ours.info.learned
    worst = 0.0
    for text in SENTENCES + sample_sentences()[:6]:
        result = run_attention(ours, text)
        expected = reference_attentions(ref, ours.tokenizer.encode(text).ids).numpy()
        assert result.weights.shape == expected.shape
        worst = max(worst, float(np.abs(result.weights - expected).max()))
    assert worst < TOL, worst
    # Rows that are not one-hot (the comparison means something); row 0 of a decoder always is.
    assert (expected[:, :, 1:].max(axis=-1) < 0.99).mean() > 0.5


def test_tiny_llama_padded_batch_matches(llama_pair):
    ref, ours, _ = llama_pair
    results = run_attention_batch(ours, SENTENCES)
    for text, result in zip(SENTENCES, results):
        expected = reference_attentions(ref, ours.tokenizer.encode(text).ids).numpy()
        assert np.abs(result.weights - expected).max() < TOL


def test_llama_without_unpermuting_would_differ(llama_pair, tmp_path, bpe):
    """The Q/K permutation matters: a file written without it gives other attention."""
    ref, ours, _ = llama_pair
    import attnviz.checkpoints.gguf as loader

    original = loader._unpermute
    try:
        loader._unpermute = lambda rows, heads: rows
        wrong = attnviz.load_model(str(llama_pair[2]))
    finally:
        loader._unpermute = original
    ids = ours.tokenizer.encode(SENTENCES[0]).ids
    expected = reference_attentions(ref, ids).numpy()
    assert np.abs(run_attention(wrong, SENTENCES[0]).weights - expected).max() > 1e-2


@pytest.mark.slow
def test_quantized_llama_matches_transformers_from_the_same_gguf(tmp_path, bpe):
    """Q8_0 weights: attnviz and transformers (from_pretrained(folder, gguf_file=...)) dequantize
    the same file to the same model."""
    pytest.importorskip("accelerate")
    model = tiny_llama(len(bpe[0]), seed=1)
    path = llama_to_gguf(model, tmp_path / "q8.gguf", bpe, qtype=Q.Q8_0)
    ours = attnviz.load_model(str(path))
    ref = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=path.name)
    ref.set_attn_implementation("eager")
    ref.eval()
    theirs = dict(ref.named_parameters())
    assert torch.equal(ours.encoder.layers[1].attention.query.weight, theirs["model.layers.1.self_attn.q_proj.weight"])
    assert torch.equal(ours.encoder.layers[1].attention.key.weight, theirs["model.layers.1.self_attn.k_proj.weight"])
    assert not torch.equal(
        theirs["model.layers.1.self_attn.q_proj.weight"], model.model.layers[1].self_attn.q_proj.weight
    )
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    for text in SENTENCES:
        enc = ours.tokenizer.encode(text)
        assert enc.ids == tok(text)["input_ids"]
        expected = reference_attentions(ref, enc.ids).numpy()
        assert np.abs(run_attention(ours, text).weights - expected).max() < TOL


def test_tiny_gpt2_gguf_matches_transformers_eager(tmp_path, bpe):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(bpe[0]), n_positions=96, n_embd=48, n_layer=2, n_head=3, attn_implementation="eager"
    )
    ref = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in ref.named_parameters():
            p.normal_(0.5 if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") else 0, 0.3)
    ours = attnviz.load_model(str(gpt2_to_gguf(ref, tmp_path / "gpt2.gguf", bpe)))
    c = ours.config
    assert (c.num_layers, c.num_heads, c.max_len, c.positional, c.norm, c.activation) == (
        2,
        3,
        96,
        "learned",
        "layer",
        "gelu_tanh",
    )
    worst = 0.0
    for text in SENTENCES:
        ids = ours.tokenizer.encode(text).ids
        worst = max(
            worst, float(np.abs(run_attention(ours, text).weights - reference_attentions(ref, ids).numpy()).max())
        )
    assert worst < TOL, worst


def test_last_layer_reads_only_the_layers_it_needs(llama_pair, monkeypatch):
    _, full, path = llama_pair
    read = []
    original = GGUFFile.read
    monkeypatch.setattr(GGUFFile, "read", lambda self, name: read.append(name) or original(self, name))
    first = attnviz.checkpoints.load_model(str(path), last_layer=0)
    # The description stays the whole file's (3 layers); the encoder has the one it needs.
    assert first.config.num_layers == 3 and first.built_layers == 1
    assert all(not n.startswith(("blk.1.", "blk.2.")) for n in read) and "blk.0.attn_q.weight" in read
    text = SENTENCES[0]
    assert np.array_equal(run_attention(first, text).weights[0], run_attention(full, text, layers=[0]).weights[0])
    with pytest.raises(AttnvizError, match="last_layer must be a non-negative"):
        attnviz.checkpoints.load_model(str(path), last_layer=-1)


def test_half_precision_loads_and_returns_float32(llama_pair):
    _, full, path = llama_pair
    half = attnviz.checkpoints.load_model(str(path), dtype="bfloat16")
    assert half.encoder.layers[0].attention.query.weight.dtype == torch.bfloat16
    got, expected = run_attention(half, SENTENCES[0]).weights, run_attention(full, SENTENCES[0]).weights
    # bfloat16 keeps 8 significant bits: close to float32 on average, not to 1e-5
    assert got.dtype == np.float32 and 0 < np.abs(got - expected).mean() < 0.01
    with pytest.raises(AttnvizError, match="unknown dtype 'int8'"):
        attnviz.checkpoints.load_model(str(path), dtype="int8")


# Tokenizers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pre", ["gpt2", "llama-bpe", "qwen2"])
def test_tokens_equal_transformers_gguf_tokenizer(tmp_path, bpe, pre):
    path = write(tmp_path / "tok.gguf", "llama", {}, bpe=bpe, pre=pre)
    from attnviz.checkpoints.gguf_tokenizer import gguf_tokenizer

    with GGUFFile(path) as f:
        ours = gguf_tokenizer(f.fields, str(path))
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    for text in sample_sentences() + SENTENCES + ["  two  spaces\nand a newline", "<|im_start|>hi"]:
        enc = ours.encode(text)
        assert enc.ids == theirs(text)["input_ids"], text
        assert enc.tokens == theirs.convert_ids_to_tokens(enc.ids)
    assert ours.encode("<|im_start|>hi").tokens[0] == "<|im_start|>"  # a control token stays whole


def test_offsets_show_the_text_as_written(llama_pair):
    _, ours, _ = llama_pair
    text = "The animal didn't cross 개가 배고파서."
    result = run_attention(ours, text)
    assert not any("Ġ" in label for label in result.labels)
    covered = set()
    for (start, end), label in zip(result.offsets, result.labels):
        # Byte-level pieces of one Hangul syllable each point at the whole syllable.
        assert text[start:end] == label and not label.startswith(" ")
        covered |= set(range(start, end))
    assert covered == {i for i, ch in enumerate(text) if ch != " "}


def test_smollm_pre_tokenizer_splits_digits_and_bos_is_added_when_asked(tmp_path, bpe):
    from attnviz.checkpoints.gguf_tokenizer import gguf_tokenizer

    path = write(tmp_path / "s.gguf", "llama", {}, bpe=bpe, pre="smollm", add_bos=True)
    with GGUFFile(path) as f:
        tok = gguf_tokenizer(f.fields, str(path))
    enc = tok.encode("It costs 1234 dollars")
    assert enc.tokens[0] == "<|endoftext|>" and enc.special[0] and enc.offsets[0] == (0, 0)
    digit_tokens = [t for t in enc.tokens if any(ch.isdigit() for ch in t)]
    assert digit_tokens == ["1", "2", "3", "4"]  # SmolLM splits numbers into single digits


# Errors: one line, exit 2 ------------------------------------------------------------------------


@pytest.mark.slow
def test_truncated_and_corrupt_files_are_one_line(llama_pair, tmp_path):
    data = llama_pair[2].read_bytes()
    for cut, what in (
        (len(data) - 100, "truncated GGUF file"),
        (4000, "truncated or corrupt"),
        (20, "too short"),
        (0, "too short"),
    ):
        bad = tmp_path / f"cut{cut}.gguf"
        bad.write_bytes(data[:cut])
        assert what in show_error(bad)
    (tmp_path / "noise.gguf").write_bytes(bytes(range(256)) * 8)
    assert "not a GGUF file" in show_error(tmp_path / "noise.gguf")
    # Absurd counts and lengths in an otherwise valid header.
    huge = bytearray(data)
    huge[8:16] = (2**62).to_bytes(8, "little")  # tensor count
    (tmp_path / "huge.gguf").write_bytes(huge)
    assert "claims" in show_error(tmp_path / "huge.gguf")
    long_key = bytearray(data)
    long_key[24:32] = (2**40).to_bytes(8, "little")  # length of the first key
    (tmp_path / "key.gguf").write_bytes(long_key)
    assert "runs past the end" in show_error(tmp_path / "key.gguf")
    version = bytearray(data)
    version[4:8] = (7).to_bytes(4, "little")
    (tmp_path / "v.gguf").write_bytes(version)
    assert "GGUF version 7 is not supported" in show_error(tmp_path / "v.gguf")
    assert "no such file" in show_error(tmp_path / "missing.gguf")


def test_unsupported_architecture_type_and_tokenizer(tmp_path, bpe):
    e = np.ones((len(bpe[0]), 32), np.float32)
    path = write(tmp_path / "bert.gguf", "bert", {"token_embd.weight": (e, Q.F32)}, bpe=bpe)
    line = show_error(path)
    assert "architecture 'bert' is not supported" in line and "gpt2, llama" in line
    # An IQ2_XXS tensor: a real ggml type attnviz does not dequantize.
    meta = {
        "llama.block_count": 1,
        "llama.context_length": 64,
        "llama.embedding_length": 256,
        "llama.feed_forward_length": 256,
        "llama.attention.head_count": 2,
    }
    w = gguf.GGUFWriter(str(tmp_path / "iq.gguf"), "llama")
    for k, v in meta.items():
        w.add_uint32(k, v)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", 1e-5)
    add_tokenizer(w, bpe)
    w.add_tensor("token_embd.weight", np.zeros((len(bpe[0]), 66), np.uint8), raw_dtype=Q.IQ2_XXS)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    line = show_error(tmp_path / "iq.gguf")
    assert "stored as IQ2_XXS" in line and "Q4_K" in line and "Q6_K" in line
    unknown_pre = write(tmp_path / "pre.gguf", "llama", {}, bpe=bpe, pre="made-up")
    from attnviz.checkpoints.gguf_tokenizer import gguf_tokenizer

    with GGUFFile(unknown_pre) as f, pytest.raises(AttnvizError, match="tokenizer.ggml.pre 'made-up'"):
        gguf_tokenizer(f.fields, "x")


def test_wrong_shapes_missing_tensors_and_nan_are_one_line(llama_pair, tmp_path, bpe):
    ref = llama_pair[0]
    path = llama_to_gguf(ref, tmp_path / "ok.gguf", bpe)
    with GGUFFile(path) as f:
        tensors = {n: (f.read(n), Q.F32) for n in f.tensors}
        meta = {k: v for k, v in f.fields.items() if k.startswith("llama.")}
    meta = {k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in meta.items()}
    cases = {
        "shape": (
            {**tensors, "blk.1.attn_k.weight": (np.ones((64, 64), np.float32), Q.F32)},
            "blk.1.attn_k.weight has shape [64, 64]",
        ),
        "missing": (
            {k: v for k, v in tensors.items() if k != "blk.2.ffn_up.weight"},
            "missing key 'blk.2.ffn_up.weight'",
        ),
        "nan": ({**tensors, "blk.0.attn_norm.weight": (np.full(64, np.nan, np.float32), Q.F32)}, "NaN or infinite"),
    }
    for name, (t, message) in cases.items():
        assert message in show_error(write(tmp_path / f"{name}.gguf", "llama", t, meta, bpe)), name
    # A block count below the file's layers was read as a shorter model (smollm2 with 29: 29 layers).
    fewer = {**meta, "llama.block_count": meta["llama.block_count"] - 1}
    line = show_error(write(tmp_path / "fewer.gguf", "llama", tensors, fewer, bpe))
    assert f"num_layers is {fewer['llama.block_count']} but" in line and "holds 3 layers (indices 0-2)" in line
    no_heads = {k: v for k, v in meta.items() if k != "llama.attention.head_count"}
    assert "missing metadata key 'llama.attention.head_count'" in show_error(
        write(tmp_path / "meta.gguf", "llama", tensors, no_heads, bpe)
    )


def test_show_on_a_gguf_file_runs_end_to_end(llama_pair):
    result = invoke("show", SENTENCES[0], "--model", str(llama_pair[2]), "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"]["kind"] == "llama" and data["causal"] is True
    assert "Ġ" not in "".join(data["labels"]) and data["labels"][:2] == ["The", "animal"]
    expected = reference_attentions(llama_pair[0], llama_pair[1].tokenizer.encode(SENTENCES[0]).ids).numpy()
    assert np.abs(np.array(data["weights"], dtype=np.float32) - expected).max() < 1e-4


def test_show_layer_option_reads_only_up_to_that_layer(llama_pair, monkeypatch):
    read = []
    original = GGUFFile.read
    monkeypatch.setattr(GGUFFile, "read", lambda self, name: read.append(name) or original(self, name))
    result = invoke("show", SENTENCES[1], "--model", str(llama_pair[2]), "-l", "1", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["layers"] == [1]
    assert "blk.1.attn_q.weight" in read and not any(n.startswith("blk.2.") for n in read)
    line = show_error(llama_pair[2], "-l", "0-99999999999")
    assert "invalid layer range 0-99999999999" in line and "3 layers (0-2)" in line


# The token embedding, read row by row (checkpoints/lazy_rows.py) -----------------------------------

WRITER_TYPES = [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1]


def with_eager_table(loaded, path, dtype=torch.float32):
    """`loaded` with its token embedding replaced by the whole table dequantized into an
    nn.Embedding: what the loader did before the table became lazy."""
    with GGUFFile(path) as f:
        table = torch.from_numpy(f.read("token_embd.weight")).to(dtype)
    loaded.encoder.embeddings.word = torch.nn.Embedding.from_pretrained(table)
    return loaded


def full_tables(module, vocab: int) -> list[str]:
    """Names of the parameters and buffers holding at least `vocab` rows' worth of values."""
    width = module.config.d_model
    return [n for n, t in [*module.named_parameters(), *module.named_buffers()] if t.numel() >= vocab * width]


@pytest.mark.parametrize("qtype", WRITER_TYPES)
def test_lazy_token_rows_give_the_eager_attention_for_every_written_type(tmp_path, bpe, qtype, monkeypatch):
    path = llama_to_gguf(tiny_llama(len(bpe[0]), seed=2), tmp_path / "m.gguf", bpe, qtype=qtype)
    read = []
    original = GGUFFile.read
    monkeypatch.setattr(GGUFFile, "read", lambda self, name: read.append(name) or original(self, name))
    lazy = attnviz.load_model(str(path))
    word = lazy.encoder.embeddings.word
    assert isinstance(word, LazyEmbedding) and "token_embd.weight" not in read
    assert full_tables(lazy.encoder, len(bpe[0])) == []
    monkeypatch.undo()
    eager = with_eager_table(attnviz.load_model(str(path)), path)
    for text in SENTENCES:
        before = word.rows_fetched
        got = run_attention(lazy, text).weights
        assert np.array_equal(got, run_attention(eager, text).weights), text
        assert word.rows_fetched - before == len(set(lazy.tokenizer.encode(text).ids))  # a dozen, not 600
    # Padded batches: the pad id is one more row; every map equals the eager model's.
    for got, expected in zip(run_attention_batch(lazy, SENTENCES), run_attention_batch(eager, SENTENCES)):
        assert got.tokens == expected.tokens and np.array_equal(got.weights, expected.weights)
    assert word.rows_fetched < len(bpe[0])


@pytest.mark.parametrize(
    "qtype", [Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]
)
def test_read_rows_equals_the_rows_of_the_whole_tensor(tmp_path, qtype):
    rows, cols = 9, 512
    if qtype in WRITER_TYPES:
        array = np.random.default_rng(int(qtype)).standard_normal((rows, cols)).astype(np.float32)
        path = write(tmp_path / "r.gguf", "llama", {"t.weight": (array, qtype)})
    else:  # K-quants: random blocks written raw (gguf cannot quantize them)
        w = gguf.GGUFWriter(str(tmp_path / "r.gguf"), "llama")
        w.add_tensor("t.weight", random_blocks(qtype, rows, cols, int(qtype)), raw_dtype=qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        path = tmp_path / "r.gguf"
    with GGUFFile(path) as f:
        whole = f.read("t.weight")
        for ids in ([0], [8], [2, 5, 6], [7, 0, 7, 3], list(range(rows))):
            got = f.read_rows("t.weight", np.array(ids))
            assert got.dtype == np.float32 and np.array_equal(got, whole[ids]), ids
        assert f.read_rows("t.weight", np.array([], dtype=np.int64)).shape == (0, cols)


def test_the_whole_table_is_built_only_when_the_state_dict_is_asked(llama_pair, tmp_path, bpe):
    """state_dict (save_model, the pronoun-heads fingerprint) sees the whole table, bit for bit
    the eager one; a file whose table differs in one row gives another fingerprint."""
    from attnviz.pronoun_heads import fingerprint

    ref, _, path = llama_pair
    lazy, eager = attnviz.load_model(str(path)), with_eager_table(attnviz.load_model(str(path)), path)
    state = lazy.encoder.state_dict()
    assert state.keys() == eager.encoder.state_dict().keys()
    assert torch.equal(state["embeddings.word.weight"], eager.encoder.embeddings.word.weight)
    assert torch.equal(state["embeddings.word.weight"], ref.model.embed_tokens.weight)
    assert fingerprint(lazy) == fingerprint(eager)
    changed = tiny_llama(len(bpe[0]))
    with torch.no_grad():
        changed.model.embed_tokens.weight[17, 3] += 1.0
    other = attnviz.load_model(str(llama_to_gguf(changed, tmp_path / "changed.gguf", bpe)))
    assert fingerprint(other) != fingerprint(lazy)


def test_a_saved_gguf_model_loads_as_an_identical_checkpoint(llama_pair, tmp_path):
    _, lazy, path = llama_pair
    attnviz.save_model(lazy, tmp_path / "saved")
    again = attnviz.load_model(str(tmp_path / "saved"))
    assert isinstance(again.encoder.embeddings.word, torch.nn.Embedding)
    with GGUFFile(path) as f:
        assert np.array_equal(again.encoder.embeddings.word.weight.detach().numpy(), f.read("token_embd.weight"))
    for text in SENTENCES:
        assert np.array_equal(run_attention(again, text).weights, run_attention(lazy, text).weights)


def test_inspect_counts_the_lazy_table(llama_pair, monkeypatch):
    import importlib

    from attnviz.sizes import parameter_count

    _, lazy, path = llama_pair
    # The repeated-words probe of decoders needs 20 one-token words; this 600-token BPE has too few.
    monkeypatch.setattr(importlib.import_module("attnviz.cli.inspect"), "sequence_probe", lambda loaded: None)
    result = invoke("inspect", str(path), "-t", SENTENCES[0], "--format", "json")
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)["parameters"]
    V, D = lazy.config.vocab_size, lazy.config.d_model
    assert params["embeddings"]["word"] == V * D
    assert params["total"] == parameter_count(lazy.config) == sum(p.numel() for p in llama_pair[0].model.parameters())


def test_half_precision_lazy_rows_equal_the_eager_half_table(llama_pair):
    _, _, path = llama_pair
    lazy = attnviz.checkpoints.load_model(str(path), dtype="bfloat16")
    eager = with_eager_table(attnviz.checkpoints.load_model(str(path), dtype="bfloat16"), path, torch.bfloat16)
    assert lazy.encoder.embeddings.word.anchor.dtype == torch.bfloat16
    for text in SENTENCES[:2]:
        assert np.array_equal(run_attention(lazy, text).weights, run_attention(eager, text).weights)


def test_bad_token_rows_and_ids_are_refused(llama_pair, tmp_path, bpe):
    ref, lazy, _ = llama_pair
    ids = lazy.tokenizer.encode("The cat sat.").ids
    other = set(lazy.tokenizer.encode(SENTENCES[1]).ids)
    row = next(i for i in ids if i not in other)
    broken = tiny_llama(len(bpe[0]))
    with torch.no_grad():
        broken.model.embed_tokens.weight[row] = float("nan")
    path = llama_to_gguf(broken, tmp_path / "nan-row.gguf", bpe)
    # The row is read only when a text uses it: other texts run, this one is one line, exit 2.
    assert run_attention(attnviz.load_model(str(path)), SENTENCES[1]).weights.shape[0] == 3
    assert f"token_embd.weight contains NaN or infinite values (row {row})" in show_error(path)
    word = lazy.encoder.embeddings.word
    with pytest.raises(IndexError, match="out of range"):
        word(torch.tensor([[0, lazy.config.vocab_size]]))
    with pytest.raises(IndexError, match="out of range"):
        word(torch.tensor([[-1, 2]]))
    assert word(torch.zeros(1, 0, dtype=torch.long)).shape == (1, 0, lazy.config.d_model)
