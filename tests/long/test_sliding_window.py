"""Sliding-window attention (Mistral in every layer; Qwen2 with use_sliding_window in the layers
layer_types marks) on texts longer than the window: attnviz's eager attention equals transformers'
to 1e-5, masked cells are exactly 0 and drawn as masked, and long texts are no longer refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import attnviz
from attnviz import blockwise
from attnviz.cli import app
from attnviz.pipeline import run_attention

transformers = pytest.importorskip("transformers")

VOCAB, WINDOW = 320, 7
SHAPE = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
)


def tokenizer_json() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"w{i}": i for i in range(300)}
    vocab["[UNK]"] = 300
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tok.to_str()


def make(tmp_path, key):
    T = transformers
    if key == "mistral":
        config, cls = T.MistralConfig(**SHAPE, sliding_window=WINDOW), T.MistralForCausalLM
    else:
        config = T.Qwen2Config(**SHAPE, use_sliding_window=True, sliding_window=WINDOW, max_window_layers=1)
        cls = T.Qwen2ForCausalLM
    torch.manual_seed(0)
    model = cls(config)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            param.copy_(1.0 + 0.2 * noise if "norm" in name else 0.3 * noise)
    folder = tmp_path / key
    model.save_pretrained(folder)
    (folder / "tokenizer.json").write_text(tokenizer_json(), encoding="utf-8")
    ref = cls.from_pretrained(folder, attn_implementation="eager").model.eval()
    return folder, ref


TEXT = " ".join(f"w{(7 * i) % 300}" for i in range(40))  # 40 tokens, the window is 7


@pytest.mark.parametrize("key", ["mistral", "qwen2"])
@pytest.mark.parametrize("block_bytes", [None, 4 * 4 * 5 * 40])
def test_attention_beyond_the_window_equals_transformers(tmp_path, key, block_bytes, monkeypatch):
    folder, ref = make(tmp_path, key)
    if block_bytes:
        monkeypatch.setattr(blockwise, "BLOCK_BYTES", block_bytes)  # blocks of 5 query rows
    loaded = attnviz.load_model(str(folder))
    config = loaded.config
    assert config.sliding_window == WINDOW and config.max_len == 128
    expected_local = [True, True, True] if key == "mistral" else [False, True, True]
    assert [config.is_local(i) for i in range(3)] == expected_local
    result = run_attention(loaded, TEXT)
    T = len(result.tokens)
    assert T == 40
    ids = torch.tensor([loaded.tokenizer.encode(TEXT).ids])
    with torch.inference_mode():
        theirs = torch.stack(ref(input_ids=ids, output_attentions=True).attentions, dim=1)[0].numpy()
    np.testing.assert_allclose(result.weights, theirs, rtol=0, atol=1e-5)
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    outside = (j <= i - WINDOW) & (j <= i)
    for li, local in enumerate(expected_local):
        masked = result.masked(li)
        assert (masked[outside] == local).all() and masked[j > i].all()
        assert (result.weights[li][:, masked] == 0).all()
        if local:
            assert (theirs[li][:, outside] == 0).all()
        else:
            assert (theirs[li][:, outside] > 0).any()


def test_the_terminal_draws_out_of_window_cells_as_masked(tmp_path):
    folder, _ = make(tmp_path, "mistral")
    text = " ".join(f"w{i}" for i in range(12))
    shown = CliRunner().invoke(app, ["show", text, "-m", str(folder), "-l", "0", "--head", "0"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    from attnviz.render.terminal import MASKED

    last = [line for line in shown.stdout.splitlines() if line.strip().startswith("11 w11")][0]
    assert last.count(MASKED) == 5  # keys w0..w4 are outside the window of w11; nothing comes after it
    # Row of the last token: 12 keys, the first 12 - 7 = 5 outside the window, masked like the future.
    loaded = attnviz.load_model(str(folder))
    result = run_attention(loaded, text, layers=[0], heads=[0])
    assert result.masked(0)[11].tolist() == [True] * 5 + [False] * 7
    assert result.masked()[11].tolist() == [False] * 12  # the look-ahead mask alone


def test_qwen2_without_use_sliding_window_has_no_window(tmp_path):
    folder, ref = make(tmp_path, "qwen2")
    import json

    data = json.loads((folder / "config.json").read_text())
    data["use_sliding_window"] = False
    (folder / "config.json").write_text(json.dumps(data))
    loaded = attnviz.load_model(str(folder))
    assert loaded.config.sliding_window is None and not loaded.config.is_local(2)
