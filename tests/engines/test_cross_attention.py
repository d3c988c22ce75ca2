"""Encoder-decoder models through the transformers engine: `show SOURCE --target TEXT` gives
encoder, decoder (causal) and cross-attention (rows: target tokens, columns: source tokens),
equal to transformers' own output_attentions, in the terminal and in JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("transformers")


import tiny_hf
from cli_runs import assert_one_error_line, invoke

SOURCE = "the cat sat on the mat ."
TARGET = "le chat sur le tapis ."


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq2seq")
    return {kind: tiny_hf.make(kind, root / kind) for kind in ("t5", "bart", "albert")}


def reference(folder):
    """transformers' own attentions, teacher-forced: decoder input = start token + target ids."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager")
    model.eval()
    src = tok(SOURCE, return_tensors="pt")
    tgt = tok(TARGET)["input_ids"]
    dec = torch.tensor([[model.config.decoder_start_token_id] + tgt])
    with torch.no_grad():
        out = model(
            **{k: src[k] for k in ("input_ids", "attention_mask")}, decoder_input_ids=dec, output_attentions=True
        )
    stack = lambda maps: torch.stack(maps, dim=1)[0].numpy()  # noqa: E731
    return {
        "encoder": stack(out.encoder_attentions),
        "decoder": stack(out.decoder_attentions),
        "cross": stack(out.cross_attentions),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["t5", "bart"])
def test_three_kinds_equal_transformers(models, kind):
    from attnviz.engines import transformers_engine

    model = transformers_engine.load(models[kind], kind)
    expected = reference(models[kind])
    target_labels = TARGET.split()
    for attention in ("encoder", "decoder", "cross"):
        result = transformers_engine.run_seq2seq(model, SOURCE, TARGET, attention)
        assert result.attention == attention
        assert np.array_equal(result.weights, expected[attention]), attention
        if attention == "encoder":
            assert result.labels[1:-1] == SOURCE.split() and result.key_tokens is None
            continue
        # Rows: the decoder's start token, then the target ([CLS] ... [SEP] with this tokenizer).
        assert result.labels[2:-1] == target_labels and result.special[0]
        if attention == "cross":
            assert result.weights.shape[2:] == (len(result.tokens), len(result.key_tokens))
            assert result.key_labels[1:-1] == SOURCE.split()
            assert not result.causal and not result.masked(0).any()
            assert result.masked(0).shape == result.weights.shape[2:]
        else:
            T = len(result.tokens)
            assert result.causal and np.array_equal(result.masked(0), np.triu(np.ones((T, T), bool), k=1))


@pytest.mark.slow
def test_cli_cross_attention_tables_and_json(models):
    folder = models["t5"]
    done = invoke("show", SOURCE, "--target", TARGET, "-m", folder, "-l", "1", "--head", "2")
    assert done.exit_code == 0, done.output
    assert "cross attention" in done.stdout and "rows: target tokens · columns: source tokens" in done.stdout
    assert "tapis" in done.stdout and "mat" in done.stdout
    done = invoke("show", SOURCE, "--target", TARGET, "-m", folder, "--format", "json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["attention"] == "cross" and data["key_labels"][1:-1] == SOURCE.split()
    assert data["labels"][2:-1] == TARGET.split() and data["text"] == TARGET and data["key_text"] == SOURCE
    assert np.array_equal(np.array(data["weights"], dtype=np.float32), reference(folder)["cross"])
    done = invoke("show", SOURCE, "--target", TARGET, "-m", folder, "--attention", "decoder", "--format", "json")
    assert json.loads(done.stdout)["causal"] is True


@pytest.mark.slow
def test_cross_attention_refusals_are_one_line(models, tmp_path):
    # (--png, --html and npz draw cross-attention: test_cross_views.py)
    assert_one_error_line(invoke("show", SOURCE, "--target", TARGET, "-m", models["albert"]), "encoder-decoder")
    assert_one_error_line(invoke("show", SOURCE, "--target", TARGET), "encoder-decoder")
    # A greedy output longer than the model reads (a model that never ends it would run for hours).
    too_long = invoke("show", SOURCE, "-m", models["t5"], "--attention", "cross", "--max-new-tokens", "100000000")
    assert_one_error_line(too_long, "--max-new-tokens 100000000 is more than the 64 tokens", "or --target")


@pytest.mark.slow
def test_without_target_the_models_greedy_output_is_the_target(models):
    """No --target: the model writes its own (greedy, --max-new-tokens); the rows are its tokens."""
    import torch
    import transformers

    from attnviz.engines import transformers_engine

    folder = models["t5"]
    model = transformers_engine.load(folder, "t5")
    result = transformers_engine.run_seq2seq(model, SOURCE, None, "cross", max_new_tokens=4)
    ref = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder, local_files_only=True, attn_implementation="eager")
    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    src = tok(SOURCE, return_tensors="pt")
    with torch.no_grad():
        generated = ref.eval().generate(**src, max_new_tokens=4, do_sample=False, num_beams=1)
        out = ref(**src, decoder_input_ids=generated, output_attentions=True)
    assert result.tokens == tok.convert_ids_to_tokens(generated[0].tolist())
    assert np.array_equal(result.weights, torch.stack(out.cross_attentions, dim=1)[0].numpy())
    assert "greedy output" in result.notes[0]
    done = invoke("show", SOURCE, "--attention", "cross", "-m", folder, "--max-new-tokens", "3", "--format", "json")
    assert done.exit_code == 0, done.output
    assert len(json.loads(done.stdout)["tokens"]) <= 4
