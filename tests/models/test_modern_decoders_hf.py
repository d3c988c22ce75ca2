"""Qwen3, Phi-3 and Gemma 3 folders written by `transformers` load into attnviz with the same
attention as transformers' eager implementation, for every layer and head, to 1e-5.

Each model is tiny and random, with its weights sharpened (std 0.3, so rows are peaked and a
mis-mapped weight shows) and the features that distinguish the family switched on: QK-norm and
grouped heads (Qwen3, with sliding-window layers), fused qkv/gate_up projections, partial rotary
dims and a window shorter than the text (Phi-3), and for Gemma 3 (1 + w) norms, four norms per
block, scaled embeddings, query_pre_attn_scalar, local layers with a window shorter than the
text and their own rotary base.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention

transformers = pytest.importorskip("transformers")

TOL = 1e-5
SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "A dog ate food because it was hungry.",
    "The trophy doesn't fit into the brown suitcase because it is too large.",
]
VOCAB = 320
SHAPE = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=4, max_position_embeddings=64)


def tokenizer():
    """A byte-level BPE tokenizer with a BOS added, trained on the sentences (as decoders ship one)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(SENTENCES * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return tok


def models():
    T = transformers
    local, full = "sliding_attention", "full_attention"
    return {
        "qwen3": (
            T.Qwen3Config(
                **SHAPE,
                num_attention_heads=4,
                num_key_value_heads=2,
                head_dim=12,
                use_sliding_window=True,
                sliding_window=5,
                layer_types=[full, local, full, local],
            ),
            T.Qwen3ForCausalLM,
        ),
        "qwen3-plain": (T.Qwen3Config(**SHAPE, num_attention_heads=4, num_key_value_heads=4), T.Qwen3Model),
        "phi3": (
            T.Phi3Config(
                **SHAPE,
                num_attention_heads=4,
                num_key_value_heads=2,
                sliding_window=6,
                pad_token_id=0,
                rope_parameters={"rope_type": "default", "rope_theta": 1000.0, "partial_rotary_factor": 0.5},
            ),
            T.Phi3ForCausalLM,
        ),
        "gemma3_text": (
            T.Gemma3TextConfig(
                **SHAPE,
                num_attention_heads=4,
                num_key_value_heads=1,
                head_dim=16,
                query_pre_attn_scalar=24,
                sliding_window=4,
                layer_types=[local, local, full, local],
                rope_parameters={
                    "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
                    "sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
                },
            ),
            T.Gemma3ForCausalLM,
        ),
    }


def sharpen(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if "norm" in name and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                param.copy_(0.2 * noise)
            else:
                param.copy_(0.3 * noise)


def write_folder(tmp_path, key: str):
    config, cls = models()[key]
    torch.manual_seed(0)
    model = cls(config)
    sharpen(model, seed=len(key))
    folder = tmp_path / key
    model.save_pretrained(folder)
    (folder / "tokenizer.json").write_text(tokenizer().to_str(), encoding="utf-8")
    reference = cls.from_pretrained(folder)
    reference.set_attn_implementation("eager")
    reference.eval()
    return folder, getattr(reference, reference.base_model_prefix, reference)


def hf_attention(model, ids) -> np.ndarray:
    with torch.inference_mode():
        out = model(input_ids=ids, output_attentions=True)
    return torch.stack(out.attentions, dim=1).float().numpy()  # [B, L, H, T, T]


@pytest.mark.parametrize("key", list(models()))
def test_attention_matches_transformers(tmp_path, key):
    folder, ref = write_folder(tmp_path, key)
    loaded = attnviz.load_model(str(folder))
    config = loaded.config
    for text in SENTENCES:
        ids = torch.tensor([loaded.tokenizer.encode(text).ids])
        expected = hf_attention(ref, ids)
        assert expected.max() > 0.5 and expected.shape[1:3] == (4, config.num_heads)
        with torch.inference_mode():
            got = loaded.encoder(ids).attentions.float().numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
        if config.sliding_window is not None:  # the window is shorter than the text: cells really masked
            T = ids.shape[1]
            assert T > config.sliding_window + 2
            for layer in range(config.num_layers):
                far = np.tril(np.ones((T, T), dtype=bool), -config.sliding_window)
                assert (got[0, layer][:, far] == 0).all() == config.is_local(layer)


def test_gemma3_config_mapping(tmp_path):
    folder, _ = write_folder(tmp_path, "gemma3_text")
    config = attnviz.load_model(str(folder)).config
    assert (config.qk_norm, config.sandwich_norm, config.norm_offset) == (True, True, 1.0)
    assert config.attention_scale == pytest.approx(24**-0.5) and config.embedding_scale == pytest.approx(32**0.5)
    assert (config.rope_base, config.rope_local_base, config.sliding_window) == (1e6, 100.0, 4)
    assert [config.is_local(i) for i in range(4)] == [True, True, False, True]


@pytest.mark.parametrize("key", ["gemma3_text", "phi3", "qwen3"])
def test_partial_loading_and_bfloat16(tmp_path, key):
    """-l N builds and reads layers 0..N only and gives the same maps; bfloat16 weights stay close."""
    folder, ref = write_folder(tmp_path, key)
    text = SENTENCES[0]
    full = run_attention(attnviz.load_model(str(folder)), text)
    part = attnviz.load_model(str(folder), last_layer=1)
    assert part.built_layers == 2 and part.config.num_layers == 4
    np.testing.assert_allclose(run_attention(part, text, layers=[0, 1]).weights, full.weights[:2], rtol=0, atol=TOL)
    half = run_attention(attnviz.load_model(str(folder), dtype="bfloat16"), text)
    diff = np.abs(half.weights - full.weights)  # bfloat16 keeps 3 digits; sharpened random weights amplify
    assert diff.mean() < 0.01 and diff.max() < 0.3


def test_unsupported_features_are_one_line(tmp_path):
    import json

    folder, _ = write_folder(tmp_path, "gemma3_text")
    data = json.loads((folder / "config.json").read_text())
    cases = [
        ({"attn_logit_softcapping": 50.0}, "attn_logit_softcapping 50.0 is not supported"),
        ({"use_bidirectional_attention": True}, "use_bidirectional_attention is not supported"),
        (
            {"rope_parameters": {**data["rope_parameters"], "full_attention": {"rope_type": "yarn", "factor": 8.0}}},
            "RoPE type 'yarn' (full_attention layers) is not supported; supported: default",
        ),
    ]
    for change, message in cases:
        (folder / "config.json").write_text(json.dumps({**data, **change}))
        with pytest.raises(AttnvizError, match=message.replace("(", r"\(").replace(")", r"\)")):
            attnviz.load_model(str(folder))


def test_gemma3_multimodal_folder_reads_its_text_model(tmp_path):
    """A `gemma3` folder (Gemma3ForConditionalGeneration: a vision tower beside the language model,
    weights under language_model.model.): attnviz reads the text model and ignores the rest."""
    T = transformers
    text = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
    )
    vision = dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    torch.manual_seed(0)
    model = T.Gemma3ForConditionalGeneration(
        T.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4)
    )
    sharpen(model, seed=3)
    model.save_pretrained(tmp_path / "g3")
    (tmp_path / "g3" / "tokenizer.json").write_text(tokenizer().to_str(), encoding="utf-8")
    reference = T.Gemma3ForConditionalGeneration.from_pretrained(tmp_path / "g3")
    reference.set_attn_implementation("eager")
    reference.eval()
    loaded = attnviz.load_model(str(tmp_path / "g3"))
    assert loaded.info.kind == "gemma3" and loaded.config.norm_offset == 1.0
    for text_ in SENTENCES:
        ids = torch.tensor([loaded.tokenizer.encode(text_).ids])
        expected = hf_attention(reference.model.language_model, ids)
        with torch.inference_mode():
            got = loaded.encoder(ids).attentions.float().numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


def test_gemma3_saved_as_an_attnviz_checkpoint_round_trips(tmp_path):
    """The new config fields (layer_types a list in JSON) survive save_model and load_model."""
    folder, _ = write_folder(tmp_path, "gemma3_text")
    loaded = attnviz.load_model(str(folder))
    saved = attnviz.checkpoints.save_model(loaded, tmp_path / "native")
    again = attnviz.load_model(str(saved))
    assert again.config == loaded.config and again.config.layer_types == loaded.config.layer_types
    for text in SENTENCES:
        np.testing.assert_array_equal(run_attention(again, text).weights, run_attention(loaded, text).weights)
