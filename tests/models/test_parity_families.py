"""BERT-family folders written by `transformers` load into attnviz with the same attention.

Each test builds a small random model with the transformers library, saves it the way users'
folders look (config.json + model.safetensors or pytorch_model.bin + tokenizer.json), loads it
with attnviz and compares the attention probabilities with transformers' eager attention
(`output_attentions=True`) to 1e-5, per sentence and for a right-padded batch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import attnviz
from builders import load_error
from attnviz.errors import AttnvizError
from attnviz.tokenize import TextTokenizer
from cli_runs import assert_one_error_line, invoke

transformers = pytest.importorskip("transformers")

TOL = 1e-5
SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "A dog ate food because it was hungry.",
    "All is well.",
    "The trophy doesn't fit into the brown suitcase because it is too large.",
]
TOKENIZER = TextTokenizer.default()
VOCAB = TOKENIZER.vocab_size
SHAPE = dict(vocab_size=VOCAB, max_position_embeddings=64)
BERT_SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, **SHAPE)


def family_models():
    """(id, config class, model class) for every supported family, plus variants."""
    T = transformers
    return {
        "bert": (T.BertConfig(**BERT_SHAPE), T.BertModel),
        "bert-gelu_new": (T.BertConfig(**BERT_SHAPE, hidden_act="gelu_new", layer_norm_eps=1e-5), T.BertModel),
        "bert-masked-lm": (T.BertConfig(**BERT_SHAPE), T.BertForMaskedLM),  # weights under "bert."
        "roberta": (
            T.RobertaConfig(**{**BERT_SHAPE, "max_position_embeddings": 66}, layer_norm_eps=1e-5, type_vocab_size=1),
            T.RobertaModel,
        ),
        "xlm-roberta": (
            T.XLMRobertaConfig(**{**BERT_SHAPE, "max_position_embeddings": 66}, type_vocab_size=1),
            T.XLMRobertaModel,
        ),
        "electra": (T.ElectraConfig(**BERT_SHAPE, embedding_size=16), T.ElectraModel),
        "electra-discriminator": (T.ElectraConfig(**BERT_SHAPE, embedding_size=16), T.ElectraForPreTraining),
        "electra-same-width": (T.ElectraConfig(**BERT_SHAPE, embedding_size=32), T.ElectraModel),
        "distilbert": (T.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=48, **SHAPE), T.DistilBertModel),
        "distilbert-relu": (
            T.DistilBertConfig(dim=32, n_layers=3, n_heads=2, hidden_dim=40, activation="relu", **SHAPE),
            T.DistilBertForMaskedLM,
        ),
    }


def sharpen(model: torch.nn.Module, seed: int) -> None:
    """Replace transformers' tiny init (std 0.02, flat 1/T attention that any bug would match).

    Weights get std 0.3, so attention logits have a std of a few units and rows are peaked;
    LayerNorm scales and all biases move away from 1 and 0, so a mis-mapped LayerNorm or bias
    changes the result.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if "LayerNorm" in name or "layer_norm" in name:
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * noise)
            elif name.endswith("bias"):
                param.copy_(0.2 * noise)
            else:
                param.copy_(0.3 * noise)


def write_folder(tmp_path, key: str, bin_weights: bool = False):
    config, cls = family_models()[key]
    torch.manual_seed(0)
    model = cls(config)
    sharpen(model, seed=len(key))
    model.eval()
    folder = tmp_path / key
    model.save_pretrained(folder, safe_serialization=not bin_weights)
    if bin_weights:
        # save_pretrained writes safetensors only in recent versions: write the .bin the old way.
        for stale in folder.glob("*.safetensors"):
            stale.unlink()
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    (folder / "tokenizer.json").write_text(TOKENIZER.to_str(), encoding="utf-8")
    return folder, reference_model(folder, cls)


def reference_model(folder, cls):
    """The model as transformers itself loads it back, with eager attention (the reference)."""
    model = cls.from_pretrained(folder, attn_implementation="eager")
    model.eval()
    base = getattr(model, model.base_model_prefix, model)
    return base


def hf_attention(model, ids, mask=None, type_ids=None) -> np.ndarray:
    kwargs = {"input_ids": ids, "attention_mask": mask, "output_attentions": True}
    if type_ids is not None:
        kwargs["token_type_ids"] = type_ids
    with torch.inference_mode():
        out = model(**kwargs)
    return torch.stack(out.attentions, dim=1).numpy()  # [B, L, H, T, T]


def ours_attention(loaded, ids, mask=None, type_ids=None) -> np.ndarray:
    with torch.inference_mode():
        out = loaded.encoder(ids, attention_mask=mask, token_type_ids=type_ids)
    return out.attentions.numpy()  # [B, L, H, T, T]


def assert_meaningful(attn: np.ndarray) -> None:
    """The comparison must not be between two flat maps: some heads really prefer tokens."""
    assert attn.max() > 0.5, "reference attention is nearly uniform; the test would prove little"


@pytest.mark.slow
@pytest.mark.parametrize("key", list(family_models()))
def test_attention_matches_transformers(tmp_path, key):
    folder, ref = write_folder(tmp_path, key)
    loaded = attnviz.load_model(str(folder))
    family = json.loads((folder / "config.json").read_text())["model_type"]
    assert (loaded.info.kind, loaded.info.learned, loaded.info.source) == (family, True, str(folder))
    uses_types = loaded.config.type_vocab_size > 0

    for text in SENTENCES:
        enc = loaded.tokenizer.encode(text)
        assert 1 not in enc.ids  # id 1 is RoBERTa's padding: a real token with it would shift positions
        ids = torch.tensor([enc.ids])
        types = torch.tensor([enc.type_ids]) if uses_types else None
        expected = hf_attention(ref, ids, type_ids=types)
        assert_meaningful(expected)
        got = ours_attention(loaded, ids, type_ids=types)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)

    # A right-padded batch: attnviz is given the attention mask directly.
    encs = [loaded.tokenizer.encode(t) for t in SENTENCES]
    T = max(len(e) for e in encs)
    pad = loaded.config.pad_token_id
    ids = torch.tensor([e.ids + [pad] * (T - len(e)) for e in encs])
    mask = torch.tensor([[1] * len(e) + [0] * (T - len(e)) for e in encs])
    types = torch.zeros_like(ids) if uses_types else None
    expected = hf_attention(ref, ids, mask, types)
    got = ours_attention(loaded, ids, mask, types)
    for b, e in enumerate(encs):
        n = len(e)
        # Real query rows must match over every key (padded keys get 0 in both). Padded query
        # rows are not compared: RoBERTa gives padding its own position, attnviz does not.
        np.testing.assert_allclose(got[b, :, :, :n], expected[b, :, :, :n], rtol=0, atol=TOL)
        assert (got[b, :, :, :n, n:] == 0.0).all()


def test_bert_token_types_and_bin_weights(tmp_path):
    """pytorch_model.bin loads through the safe loader; second-segment token types map too."""
    folder, ref = write_folder(tmp_path, "bert", bin_weights=True)
    assert not list(folder.glob("*.safetensors"))
    loaded = attnviz.load_model(str(folder))
    enc = loaded.tokenizer.encode(SENTENCES[1])
    ids = torch.tensor([enc.ids])
    types = torch.tensor([[0] * 5 + [1] * (len(enc) - 5)])
    expected = hf_attention(ref, ids, type_ids=types)
    np.testing.assert_allclose(ours_attention(loaded, ids, type_ids=types), expected, rtol=0, atol=TOL)
    # ...and the segment embeddings do matter, so the check above is not vacuous.
    assert np.abs(hf_attention(ref, ids, type_ids=torch.zeros_like(ids)) - expected).max() > 1e-3


def test_cli_json_matches_transformers(tmp_path):
    folder, ref = write_folder(tmp_path, "roberta")
    result = invoke("show", SENTENCES[0], "--model", str(folder), "--format", "json", "--layer", "all")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    enc = TOKENIZER.encode(SENTENCES[0])
    expected = hf_attention(ref, torch.tensor([enc.ids]), type_ids=torch.zeros(1, len(enc), dtype=torch.long))[0]
    weights = np.asarray(payload["weights"], dtype=np.float64)
    assert weights.shape == expected.shape
    np.testing.assert_allclose(weights, expected, rtol=0, atol=TOL)
    assert payload["model"]["kind"] == "roberta" and payload["model"]["learned"] is True


def write_config(tmp_path, config: dict):
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "tokenizer.json").write_text(TOKENIZER.to_str(), encoding="utf-8")
    return folder


def test_unsupported_model_type_lists_supported(tmp_path):
    folder = write_config(tmp_path, {"model_type": "t5", "num_layers": 2})
    with pytest.raises(AttnvizError) as err:
        attnviz.load_model(str(folder))
    message = str(err.value)
    assert "'t5'" in message and "config.json" in message
    for family in ("bert", "distilbert", "electra", "roberta", "xlm-roberta", "gpt2", "llama", "mistral", "qwen2"):
        assert family in message


@pytest.mark.parametrize(
    "change, words",
    [
        ({"position_embedding_type": "relative_key"}, ["position_embedding_type", "relative_key"]),
        ({"is_decoder": True}, ["is_decoder"]),
        ({"hidden_act": "quick_gelu"}, ["hidden_act", "quick_gelu", "gelu_new"]),
        ({"num_attention_heads": 5}, ["hidden_size", "num_attention_heads"]),
        ({"hidden_size": "32"}, ["hidden_size"]),
        ({"hidden_size": None}, ["hidden_size"]),
    ],
)
def test_bad_family_config_is_one_clear_error(tmp_path, change, words):
    config = transformers.BertConfig(**BERT_SHAPE).to_dict()
    config.update(change)
    if change.get("hidden_size", 0) is None:
        del config["hidden_size"]
    folder = write_config(tmp_path, config)
    message = load_error(folder)
    for word in words:
        assert word in message


def test_config_that_disagrees_with_weights_names_file_and_key(tmp_path):
    folder, _ = write_folder(tmp_path, "bert")
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 64
    (folder / "config.json").write_text(json.dumps(config))
    line = assert_one_error_line(invoke("show", "All is well.", "--model", str(folder)), "model.safetensors")
    assert "encoder.layer.0.intermediate.dense.weight" in line and "[48, 32]" in line and "[64, 32]" in line

    config["intermediate_size"] = 48
    config["num_hidden_layers"] = 1  # the file holds a second layer that config.json does not know
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        AttnvizError, match=r"config\.json: num_hidden_layers is 1 but .*model\.safetensors holds 2 layers"
    ):
        attnviz.load_model(str(folder))


def test_vocab_txt_fallback_tokenizer(tmp_path):
    """Older BERT folders have vocab.txt and no tokenizer.json: a WordPiece tokenizer is built."""
    folder, _ = write_folder(tmp_path, "bert")
    vocab = json.loads(TOKENIZER.to_str())["model"]["vocab"]
    (folder / "tokenizer.json").unlink()
    (folder / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n", encoding="utf-8")
    loaded = attnviz.load_model(str(folder))
    enc = loaded.tokenizer.encode(SENTENCES[1])
    assert enc.tokens == TOKENIZER.encode(SENTENCES[1]).tokens
    assert enc.ids == TOKENIZER.encode(SENTENCES[1]).ids


def test_sharded_safetensors(tmp_path):
    """A model saved in several shards (model.safetensors.index.json) loads; a lost shard is named."""
    config, cls = family_models()["bert"]
    torch.manual_seed(0)
    model = cls(config)
    sharpen(model, seed=1)
    folder = tmp_path / "sharded"
    model.save_pretrained(folder, max_shard_size="400KB")
    (folder / "tokenizer.json").write_text(TOKENIZER.to_str(), encoding="utf-8")
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and (folder / "model.safetensors.index.json").is_file()
    ref = reference_model(folder, cls)
    loaded = attnviz.load_model(str(folder))
    enc = loaded.tokenizer.encode(SENTENCES[0])
    ids, types = torch.tensor([enc.ids]), torch.tensor([enc.type_ids])
    np.testing.assert_allclose(
        ours_attention(loaded, ids, type_ids=types), hf_attention(ref, ids, type_ids=types), rtol=0, atol=TOL
    )
    shards[-1].unlink()
    with pytest.raises(AttnvizError, match=shards[-1].name):
        attnviz.load_model(str(folder))
