"""Decoder folders written by `transformers` (GPT-2, LLaMA with grouped-query attention, Qwen2 with
q/k/v biases, Mistral) load into attnviz with the same attention, for every layer and head.

Each test builds a tiny random model with transformers, sharpens its weights (transformers' std
0.02 init gives flat rows that any bug would match), saves it as users' folders look
(config.json + safetensors + tokenizer.json) and compares attnviz's probabilities with
transformers' eager attention to 1e-5, per sentence and for a right-padded batch. Also here:
loading only up to `last_layer` (the later tensors are never read), bfloat16/float16 runs, the
tokenizers decoders ship (byte-level BPE, a BOS added by the post-processor), and the one-line
errors for what attnviz does not read.
"""

from __future__ import annotations

import builders

import json

import numpy as np
import pytest
import torch

import attnviz
from builders import load_error
from attnviz.checkpoints.weights import WeightFile, layer_of
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention, run_attention_batch
from attnviz.tokenize import TextTokenizer
from test_parity_families import SENTENCES, TOL  # the same sentences and tolerance as the encoders
from cli_runs import assert_one_error_line, invoke

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")


def byte_level_tokenizer(bos: bool):
    return builders.byte_level_tokenizer(SENTENCES, bos, vocab_size=300)


GPT2_TOKENIZER = byte_level_tokenizer(bos=False)
LLAMA_TOKENIZER = byte_level_tokenizer(bos=True)
VOCAB = 320  # a little more than the tokenizers have: a checkpoint's table is often padded
LLAMA_SHAPE = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    max_position_embeddings=64,
)


def decoder_models():
    """id -> (config, model class, tokenizer) for every supported family and variants."""
    T = transformers
    gpt2 = dict(vocab_size=VOCAB, n_embd=32, n_layer=3, n_head=4, n_positions=64)
    return {
        "gpt2": (T.GPT2Config(**gpt2), T.GPT2LMHeadModel, GPT2_TOKENIZER),  # names under "transformer."
        "gpt2-bare-relu": (T.GPT2Config(**gpt2, activation_function="relu", n_inner=40), T.GPT2Model, GPT2_TOKENIZER),
        "llama-gqa": (T.LlamaConfig(**LLAMA_SHAPE, num_key_value_heads=2), T.LlamaForCausalLM, LLAMA_TOKENIZER),
        "llama-biases-head-dim": (
            T.LlamaConfig(
                **LLAMA_SHAPE,
                num_key_value_heads=1,
                head_dim=16,
                attention_bias=True,
                mlp_bias=True,
                rope_parameters={"rope_type": "default", "rope_theta": 500.0},
            ),
            T.LlamaModel,
            LLAMA_TOKENIZER,
        ),
        "qwen2-biases": (T.Qwen2Config(**LLAMA_SHAPE, num_key_value_heads=2), T.Qwen2ForCausalLM, LLAMA_TOKENIZER),
        "mistral": (
            T.MistralConfig(**LLAMA_SHAPE, num_key_value_heads=2, sliding_window=48),
            T.MistralForCausalLM,
            LLAMA_TOKENIZER,
        ),
    }


def sharpen(model: torch.nn.Module, seed: int) -> None:
    """Weights with std 0.3 (peaked attention rows), norm scales around 1, biases away from 0."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if ("norm" in name or ".ln_" in name) and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                param.copy_(0.2 * noise)
            else:
                param.copy_(0.3 * noise)


def write_folder(tmp_path, key: str, **save):
    config, cls, tokenizer = decoder_models()[key]
    torch.manual_seed(0)
    model = cls(config)
    sharpen(model, seed=len(key))
    folder = tmp_path / key
    model.save_pretrained(folder, **save)
    (folder / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
    reference = cls.from_pretrained(folder, attn_implementation="eager")
    reference.set_attn_implementation("eager")
    reference.eval()
    return folder, getattr(reference, reference.base_model_prefix, reference)


def hf_attention(model, ids, mask=None) -> np.ndarray:
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    return torch.stack(out.attentions, dim=1).float().numpy()  # [B, L, H, T, T]


def ours_attention(loaded, ids, mask=None) -> np.ndarray:
    with torch.inference_mode():
        out = loaded.encoder(ids, attention_mask=mask)
    return out.attentions.float().numpy()  # [B, L, H, T, T]


def padded(loaded, texts):
    encs = [loaded.tokenizer.encode(t) for t in texts]
    T = max(len(e) for e in encs)
    ids = torch.tensor([e.ids + [0] * (T - len(e)) for e in encs])
    mask = torch.tensor([[1] * len(e) + [0] * (T - len(e)) for e in encs])
    return encs, ids, mask


@pytest.mark.parametrize("key", list(decoder_models()))
def test_attention_matches_transformers(tmp_path, key):
    folder, ref = write_folder(tmp_path, key)
    loaded = attnviz.load_model(str(folder))
    family = json.loads((folder / "config.json").read_text())["model_type"]
    assert (loaded.info.kind, loaded.info.learned, loaded.config.causal) == (family, True, True)
    H = loaded.config.num_heads
    for text in SENTENCES:
        ids = torch.tensor([loaded.tokenizer.encode(text).ids])
        expected = hf_attention(ref, ids)
        assert expected.max() > 0.5 and expected.shape[1:3] == (3, H)  # peaked rows, all query heads
        got = ours_attention(loaded, ids)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
        assert (np.triu(got[0, :, :], k=1) == 0).all()  # nothing from the future, exactly

    # A right-padded batch: real query rows match over every key, padded keys get exactly 0.
    encs, ids, mask = padded(loaded, SENTENCES)
    expected, got = hf_attention(ref, ids, mask), ours_attention(loaded, ids, mask)
    for b, e in enumerate(encs):
        n = len(e)
        np.testing.assert_allclose(got[b, :, :, :n], expected[b, :, :, :n], rtol=0, atol=TOL)
        assert (got[b, :, :, :n, n:] == 0.0).all()
    # ...and through the pipeline's batches, as `export` and `probe` run them.
    for text, result in zip(SENTENCES, run_attention_batch(loaded, SENTENCES)):
        ids = torch.tensor([loaded.tokenizer.encode(text).ids])
        np.testing.assert_allclose(result.weights, hf_attention(ref, ids)[0], rtol=0, atol=TOL)


@pytest.mark.parametrize("key", ["llama-gqa", "mistral", "gpt2"])
def test_layers_not_kept_run_the_fused_kernel_to_the_same_result(tmp_path, key):
    """Layers whose maps nobody asked for run through scaled_dot_product_attention (grouped
    keys and values shared, not copied); the layer after them must not notice."""
    folder, ref = write_folder(tmp_path, key)
    loaded = attnviz.load_model(str(folder))
    for text in SENTENCES[:2]:
        ids = torch.tensor([loaded.tokenizer.encode(text).ids])
        expected = hf_attention(ref, ids)[0]
        np.testing.assert_allclose(run_attention(loaded, text, layers=[2]).weights, expected[2:], rtol=0, atol=TOL)
        np.testing.assert_allclose(
            run_attention(loaded, text, layers=[0, 2]).weights, expected[[0, 2]], rtol=0, atol=TOL
        )


def test_sharded_llama_matches(tmp_path):
    folder, ref = write_folder(tmp_path, "llama-gqa", max_shard_size="20KB")
    assert (folder / "model.safetensors.index.json").is_file() and len(list(folder.glob("*.safetensors"))) > 1
    loaded = attnviz.load_model(str(folder))
    ids = torch.tensor([loaded.tokenizer.encode(SENTENCES[0]).ids])
    np.testing.assert_allclose(ours_attention(loaded, ids), hf_attention(ref, ids), rtol=0, atol=TOL)


def test_bfloat16_checkpoint_loads_as_float32(tmp_path):
    """Checkpoints stored in bfloat16 (most LLaMA-family releases) are read as float32 by default,
    matching transformers' float32 load of the same file."""
    config, cls, _ = decoder_models()["llama-gqa"]
    torch.manual_seed(0)
    model = cls(config)
    sharpen(model, 5)
    model.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    (tmp_path / "bf16" / "tokenizer.json").write_text(LLAMA_TOKENIZER.to_str(), encoding="utf-8")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "bf16" / "model.safetensors"), "pt") as handle:
        assert handle.get_tensor("model.embed_tokens.weight").dtype == torch.bfloat16
    ref = cls.from_pretrained(tmp_path / "bf16", attn_implementation="eager", dtype=torch.float32).model.eval()
    loaded = attnviz.load_model(str(tmp_path / "bf16"))
    assert next(loaded.encoder.parameters()).dtype == torch.float32
    ids = torch.tensor([LLAMA_TOKENIZER.encode(SENTENCES[3]).ids])
    np.testing.assert_allclose(ours_attention(loaded, ids), hf_attention(ref, ids), rtol=0, atol=TOL)


def test_cli_json_matches_transformers(tmp_path):
    folder, ref = write_folder(tmp_path, "qwen2-biases")
    result = invoke("show", SENTENCES[0], "-m", str(folder), "--format", "json", "-l", "all")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    ids = torch.tensor([LLAMA_TOKENIZER.encode(SENTENCES[0]).ids])
    np.testing.assert_allclose(np.asarray(payload["weights"]), hf_attention(ref, ids)[0], rtol=0, atol=TOL)
    assert payload["causal"] is True and payload["model"]["kind"] == "qwen2"


# Tokenizers of decoders -------------------------------------------------------------------------


def test_byte_level_labels_show_the_text_as_written(tmp_path):
    folder, _ = write_folder(tmp_path, "gpt2")
    loaded = attnviz.load_model(str(folder))
    text = "The animal didn't cross the street because it was tired — café, 한국어!"
    result = run_attention(loaded, text, layers=[0])
    assert " it" in [loaded.tokenizer._tok.decode([i]) for i in loaded.tokenizer.encode(text).ids]
    assert "Ġit" in result.tokens  # the tokenizer's own strings...
    assert not any("Ġ" in label for label in result.labels)  # ...never shown
    assert not any(result.special)  # GPT-2 adds no BOS
    # Each label is the text at its offsets, without the space a byte-level piece carries; a
    # character split into several byte pieces shows in each of them.
    for label, (start, end) in zip(result.labels, result.offsets):
        piece = text[start:end]
        assert label == ("␣" * len(piece) if piece.isspace() else piece) and label.strip() == label
    pieces = [text[a:b] for a, b in dict.fromkeys(result.offsets)]
    assert "".join(p for p in pieces if not p.isspace()) == text.replace(" ", "")
    assert result.labels[result.tokens.index("Ġit")] == "it"
    # Words are the pre-tokenizer's: "--focus it" finds the token, and --words merges pieces.
    from attnviz.analysis.focus import resolve_focus

    assert resolve_focus(result, "it").index == result.tokens.index("Ġit")


def test_bos_from_the_tokenizer_json(tmp_path):
    folder, ref = write_folder(tmp_path, "llama-gqa")
    loaded = attnviz.load_model(str(folder))
    result = run_attention(loaded, SENTENCES[1])
    assert result.tokens[0] == "<s>" and result.special[0] and result.word_ids[0] is None
    assert result.special.count(True) == 1
    assert "".join(result.labels[1:]).replace("␣", "") == SENTENCES[1].replace(" ", "")
    ids = torch.tensor([LLAMA_TOKENIZER.encode(SENTENCES[1]).ids])
    assert ids[0, 0].item() == LLAMA_TOKENIZER._tok.token_to_id("<s>")
    np.testing.assert_allclose(result.weights, hf_attention(ref, ids)[0], rtol=0, atol=TOL)


# Loading only the layers a command needs ---------------------------------------------------------


@pytest.fixture
def reads(monkeypatch):
    """Every key WeightFile.get reads (the only way tensor data leaves the file)."""
    keys: list[str] = []
    original = WeightFile.get

    def counting(self, key, dtype=None):
        keys.append(key)
        return original(self, key, dtype)

    monkeypatch.setattr(WeightFile, "get", counting)
    return keys


@pytest.mark.parametrize("key, layers", [("llama-gqa", "model.layers"), ("gpt2", "transformer.h")])
def test_last_layer_builds_and_reads_only_the_first_layers(tmp_path, reads, key, layers):
    folder, ref = write_folder(tmp_path, key)
    full = attnviz.load_model(str(folder))
    all_reads = list(reads)
    reads.clear()
    first = attnviz.load_model(str(folder), last_layer=1)
    assert reads and len(reads) < len(all_reads)
    assert {layer_of(k, layers) for k in reads} - {None} == {0, 1}  # layer 2 never read
    assert len(first.encoder.layers) == 2 and first.built_layers == 2
    # The description is still the whole model's.
    assert first.config.num_layers == 3 and first.config.describe().startswith("3 layers")
    ids = torch.tensor([first.tokenizer.encode(SENTENCES[0]).ids])
    expected = hf_attention(ref, ids)
    np.testing.assert_allclose(ours_attention(first, ids), expected[:, :2], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours_attention(full, ids), expected, rtol=0, atol=TOL)
    # Past the end means all layers; a negative index is refused.
    assert attnviz.load_model(str(folder), last_layer=7).built_layers == 3
    with pytest.raises(AttnvizError, match="last_layer"):
        attnviz.load_model(str(folder), last_layer=-1)
    # Asking a truncated model for a layer it does not have is one clear error, not garbage.
    with pytest.raises(AttnvizError, match="layer 2 was not loaded"):
        run_attention(first, SENTENCES[0], layers=[2])
    result = run_attention(first, SENTENCES[0])
    assert result.layers == [0, 1] and result.model.config.num_layers == 3


def test_show_layer_0_reads_layer_0_only(tmp_path, reads):
    folder, ref = write_folder(tmp_path, "mistral")
    result = invoke("show", SENTENCES[2], "-m", str(folder), "-l", "0", "--format", "json")
    assert result.exit_code == 0, result.output
    assert {layer_of(k, "model.layers") for k in reads} == {None, 0}
    payload = json.loads(result.stdout)
    assert payload["layers"] == [0] and payload["model"]["config"]["num_layers"] == 3
    ids = torch.tensor([LLAMA_TOKENIZER.encode(SENTENCES[2]).ids])
    np.testing.assert_allclose(np.asarray(payload["weights"]), hf_attention(ref, ids)[0, :1], rtol=0, atol=TOL)
    # A layer beyond the model is still the usual one-line error with the real count.
    assert_one_error_line(invoke("show", SENTENCES[2], "-m", str(folder), "-l", "5"), "the model has 3 layers")


@pytest.mark.slow
def test_last_layer_on_encoder_families_and_native(tmp_path, reads):
    """BERT-family and attnviz's own checkpoints skip the later layers too."""
    config = transformers.BertConfig(
        vocab_size=TextTokenizer.default().vocab_size,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    bert = transformers.BertModel(config)
    sharpen(bert, 3)
    bert.save_pretrained(tmp_path / "bert")
    (tmp_path / "bert" / "tokenizer.json").write_text(TextTokenizer.default().to_str(), encoding="utf-8")
    native = tmp_path / "native"
    attnviz.save_model(attnviz.load_model("random", config=attnviz.EncoderConfig(num_layers=3)), native)
    for folder, layers in ((tmp_path / "bert", "encoder.layer"), (native, "layers")):
        full = attnviz.load_model(str(folder))
        reads.clear()
        first = attnviz.load_model(str(folder), last_layer=0)
        assert {layer_of(k, layers) for k in reads} == {None, 0}
        a, b = run_attention(full, SENTENCES[0]), run_attention(first, SENTENCES[0])
        assert b.layers == [0] and b.model.config.num_layers == 3
        np.testing.assert_array_equal(a.weights[:1], b.weights)


@pytest.mark.slow
def test_random_model_last_layer_has_the_same_first_layers():
    full = attnviz.load_model("random", config=attnviz.EncoderConfig(num_layers=4, causal=True))
    first = attnviz.load_model("random", config=attnviz.EncoderConfig(num_layers=4, causal=True), last_layer=1)
    assert first.built_layers == 2 and first.config.num_layers == 4
    np.testing.assert_array_equal(
        run_attention(full, SENTENCES[1]).weights[:2], run_attention(first, SENTENCES[1]).weights
    )


# Precision and device ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("dtype, tol", [("bfloat16", 0.3), ("float16", 0.05)])
def test_half_precision_gives_float32_attention_close_to_float32(tmp_path, dtype, tol):
    """In half precision the weights are rounded, so attention moves; it must move no more than
    transformers' own attention does in the same dtype (on these sharp weights bfloat16 moves a
    few cells by up to ~0.1 in both), and come back as float32 rows that sum to one."""
    folder, ref = write_folder(tmp_path, "llama-gqa")
    exact = attnviz.load_model(str(folder))
    half = attnviz.load_model(str(folder), dtype=dtype)
    assert next(half.encoder.parameters()).dtype == getattr(torch, dtype)
    ref_half = transformers.LlamaModel.from_pretrained(
        folder, attn_implementation="eager", dtype=getattr(torch, dtype)
    ).eval()
    ours_err, hf_err = [], []
    for text in SENTENCES:
        a, b = run_attention(exact, text), run_attention(half, text)
        assert b.weights.dtype == np.float32
        np.testing.assert_allclose(b.weights.sum(-1), 1.0, atol=1e-5)  # rows still sum to one
        assert (np.triu(b.weights, k=1) == 0).all()  # and the mask is exact
        ours_err.append(np.abs(a.weights - b.weights).ravel())
        ids = torch.tensor([exact.tokenizer.encode(text).ids])
        hf_err.append(np.abs(hf_attention(ref_half, ids)[0] - a.weights).ravel())
    ours_err, hf_err = np.concatenate(ours_err), np.concatenate(hf_err)
    assert 0 < ours_err.max() < tol  # it really ran in half precision
    assert ours_err.mean() <= 1.5 * hf_err.mean()
    assert np.quantile(ours_err, 0.999) <= 1.5 * np.quantile(hf_err, 0.999)
    # The CLI flag, and the batched pipeline.
    out = invoke("show", SENTENCES[0], "-m", str(folder), "--dtype", dtype, "--format", "json", "-l", "all")
    assert out.exit_code == 0, out.output
    np.testing.assert_allclose(
        np.asarray(json.loads(out.stdout)["weights"]), run_attention(half, SENTENCES[0]).weights, rtol=0, atol=1e-6
    )
    batch = run_attention_batch(half, SENTENCES)
    assert all(r.weights.dtype == np.float32 for r in batch)
    for text, result in zip(SENTENCES, batch):
        assert np.abs(result.weights - run_attention(exact, text).weights).max() < tol


def test_random_model_in_bfloat16():
    config = attnviz.EncoderConfig(causal=True, positional="rope", norm="rms", ffn="gated", num_kv_heads=2)
    a = run_attention(attnviz.load_model("random", config=config), SENTENCES[0])
    b = run_attention(attnviz.load_model("random", config=config, dtype="bfloat16"), SENTENCES[0])
    assert b.weights.dtype == np.float32 and 0 < np.abs(a.weights - b.weights).max() < 0.3
    assert np.abs(a.weights - b.weights).mean() < 0.01


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line_exit_2():
    assert_one_error_line(invoke("show", "All is well.", "--device", "cuda"), "no CUDA GPU")
    with pytest.raises(AttnvizError, match="no CUDA GPU"):
        attnviz.load_model("random", device="cuda")


@pytest.mark.parametrize(
    "args, words",
    [
        (["--device", "tpu"], ["unknown device", "cpu"]),
        (["--device", "cpu:1"], ["unknown device"]),
    ],
)
def test_bad_device_is_one_line_exit_2(args, words):
    assert_one_error_line(invoke("show", "All is well.", *args), *words)


def test_bad_dtype_is_refused():
    result = invoke("show", "All is well.", "--dtype", "int8")
    assert result.exit_code == 2 and "int8" in result.output
    with pytest.raises(AttnvizError, match="unknown dtype 'float64'"):
        attnviz.load_model("random", dtype="float64")


def test_cpu_device_and_float32_are_the_default(tmp_path):
    folder, _ = write_folder(tmp_path, "gpt2")
    a = attnviz.load_model(str(folder))
    b = attnviz.load_model(str(folder), dtype="float32", device="cpu")
    assert next(a.encoder.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(run_attention(a, SENTENCES[0]).weights, run_attention(b, SENTENCES[0]).weights)


# What attnviz does not read: one line, naming it -------------------------------------------------


def write_config(tmp_path, key: str, change: dict, drop: tuple = ()):
    folder, _ = write_folder(tmp_path, key)
    config = json.loads((folder / "config.json").read_text())
    config.update(change)
    for k in drop:
        config.pop(k, None)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "key, change, words",
    [
        (
            "llama-gqa",
            {"model_type": "mixtral"},
            ["mixtral", "mixture of experts", "supported:", "gpt2", "llama", "mistral", "qwen2", "bert"],
        ),
        ("llama-gqa", {"model_type": "bloom"}, ["bloom", "ALiBi"]),
        ("llama-gqa", {"model_type": "t5"}, ["'t5' is not supported", "supported:"]),
        (
            "llama-gqa",
            {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1e4}},
            ["RoPE type 'linear'", "supported: default"],
        ),
        (
            "llama-gqa",
            {"rope_parameters": None, "rope_scaling": {"type": "dynamic", "factor": 2.0}},
            ["RoPE type 'dynamic'"],
        ),
        ("llama-gqa", {"hidden_act": "quick_gelu"}, ["hidden_act", "quick_gelu"]),
        ("llama-gqa", {"num_key_value_heads": 3}, ["num_attention_heads", "num_key_value_heads"]),
        ("llama-gqa", {"attention_bias": "yes"}, ["attention_bias"]),
        ("gpt2", {"scale_attn_by_inverse_layer_idx": True}, ["scale_attn_by_inverse_layer_idx"]),
        ("gpt2", {"scale_attn_weights": False}, ["scale_attn_weights"]),
        ("gpt2", {"n_head": 5}, ["n_embd", "n_head"]),
        ("mistral", {"sliding_window": 0}, ["sliding_window"]),
        ("llama-gqa", {"rope_parameters": "fast"}, ["rope_parameters"]),
        ("llama-gqa", {"rope_parameters": {"rope_type": "default", "rope_theta": -1}}, ["rope_theta"]),
        ("llama-gqa", {"num_hidden_layers": 1.5}, ["num_hidden_layers"]),
        ("qwen2-biases", {"hidden_size": None}, ["hidden_size"]),
    ],
)
def test_unsupported_is_one_line_exit_2(tmp_path, key, change, words):
    folder = write_config(tmp_path, key, change)
    message = load_error(folder)
    for word in words:
        assert word in message
    assert_one_error_line(invoke("show", "All is well.", "-m", str(folder)))


def test_weights_that_disagree_with_config_name_file_and_key(tmp_path):
    folder = write_config(tmp_path, "qwen2-biases", {"num_key_value_heads": 4})
    with pytest.raises(AttnvizError) as err:
        attnviz.load_model(str(folder))
    assert "model.safetensors" in str(err.value) and "model.layers.0.self_attn.k_proj" in str(err.value)
    folder = write_config(tmp_path / "b", "gpt2", {"n_layer": 2})  # the file holds a third layer
    with pytest.raises(AttnvizError, match=r"config\.json: n_layer is 2 but .*model\.safetensors holds 3 layers"):
        attnviz.load_model(str(folder))
    folder = write_config(tmp_path / "c", "gpt2", {"n_head": 2, "n_inner": 40})
    with pytest.raises(
        AttnvizError,
        match=r"transformer\.h\.0\.mlp\.c_fc\.weight has shape \[32, 128\] but .* "
        r"implies \[32, 40\]",
    ):  # the stored [in, out] shape
        attnviz.load_model(str(folder))


@pytest.mark.slow
def test_sliding_window_is_the_longest_text(tmp_path):
    """Texts longer than Mistral's window are read with the window now (not refused): attention
    equals transformers' beyond it (more in tests/long/test_sliding_window.py)."""
    folder = write_config(tmp_path, "mistral", {"sliding_window": 12})
    loaded = attnviz.load_model(str(folder))
    assert loaded.config.max_len == 64 and loaded.config.sliding_window == 12
    ref = transformers.MistralForCausalLM.from_pretrained(folder, attn_implementation="eager").model.eval()
    long = torch.tensor([LLAMA_TOKENIZER.encode(SENTENCES[0]).ids])
    assert long.shape[1] > 12
    np.testing.assert_allclose(ours_attention(loaded, long), hf_attention(ref, long), rtol=0, atol=TOL)
    result = invoke("show", SENTENCES[0], "-m", str(folder))
    assert result.exit_code == 0


def test_random_shape_flags_are_refused_for_a_checkpoint(tmp_path):
    folder, _ = write_folder(tmp_path, "gpt2")
    result = invoke("show", "All is well.", "-m", str(folder), "--causal", "--kv-heads", "2")
    assert_one_error_line(result, "--causal", "--kv-heads")
