"""`probe coref --causal`: the per-item ablation, the sign test, the comparison with the attention
heads, and the pronoun-heads cache that `inspect` reads the confirmed heads from."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import attnviz
from attnviz.analysis.causal_probe import CausalProbe, overlap, sign_test_greater
from attnviz.checkpoints.lm_head import load_lm_head
from attnviz.cli import main
from attnviz.interventions.ablation import ablate
from attnviz.interventions.readout import build_readout
from attnviz.pronoun_heads import cached, checked_entry
from causal_models import write_model

ITEMS = [
    ("The queen thanked the king because she had won.", "she", ["queen", "king"], 0),
    ("The queen thanked the king because he had won.", "he", ["queen", "king"], 1),
    ("The nurse helped the farmer because she was kind.", "she", ["nurse", "farmer"], 0),
    ("The farmer helped the nurse because he was kind.", "he", ["farmer", "nurse"], 0),
    ("The trophy did not fit in the suitcase because it was too big.", "it", ["trophy", "suitcase"], 0),
]


def test_sign_test_is_the_binomial_tail():
    assert sign_test_greater(0, 0) == 1.0
    assert sign_test_greater(10, 0) == pytest.approx(0.5**10)
    expected = sum(math.comb(12, k) for k in range(9, 13)) / 2**12
    assert sign_test_greater(9, 3) == pytest.approx(expected)


def test_confirmed_heads_need_consistent_positive_effects():
    rng = np.random.default_rng(0)
    effects = rng.normal(0, 1, (40, 2, 3))
    effects[:, 1, 2] = np.abs(effects[:, 1, 2]) + 0.1  # always helps: confirmed
    effects[:, 0, 0] = -np.abs(effects[:, 0, 0])  # always hurts the answer when present: not confirmed
    probe = CausalProbe(effects, np.ones(40), [str(i) for i in range(40)])
    assert probe.confirmed() == [(1, 2)]
    assert probe.p_values()[1, 2] == pytest.approx(min(1.0, 0.5**40 * 6))
    assert overlap([(1, 2), (0, 1)], [(1, 2)]) == {
        "attention": 2,
        "causal": 1,
        "both": [[1, 2]],
        "jaccard": 0.5,
        "attention_confirmed_share": 0.5,
    }


@pytest.mark.slow
def test_probe_causal_cli_matches_item_by_item_ablation(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    folder, _ = write_model(tmp_path, "gpt2")
    probe_file = tmp_path / "set.jsonl"
    probe_file.write_text(
        "".join(
            json.dumps({"text": t, "pronoun": p, "candidates": c, "answer": a, "id": f"i{k}"}) + "\n"
            for k, (t, p, c, a) in enumerate(ITEMS)
        )
    )
    code = main(["probe", "coref", str(probe_file), "-m", str(folder), "--ablation", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["n_items"] == len(ITEMS)
    loaded = attnviz.load_model(str(folder))
    head = load_lm_head(loaded)
    effects = []
    for text, pronoun, cands, answer in ITEMS:
        readout = build_readout(loaded, head, text, (cands[answer], cands[1 - answer]), pronoun)
        effects.append(ablate(loaded, head, readout).effect)
    np.testing.assert_allclose(data["mean_effect"], np.mean(effects, axis=0), rtol=0, atol=1e-9)
    assert {"attention", "causal", "both", "jaccard", "top_k_shared"} <= data["overlap"].keys()
    # the cache entry now carries the causal result, and still checks
    entry = cached(loaded, str(probe_file))
    assert entry is not None and entry.causal["n_items"] == len(ITEMS)
    assert checked_entry(json.loads(json.dumps(entry.to_dict())), 3, 4).causal == entry.causal
    # inspect's pronoun table marks the causally confirmed heads when the cache has them
    import dataclasses
    import io

    from rich.console import Console

    from attnviz.render.inspect_view import render_pronoun_heads

    heads = entry.heads[:2]
    forced = [{**h, "resolves": True} for h in heads]
    causal = {
        **entry.causal,
        "heads": [{**c, "confirmed": (c["layer"], c["head"]) == (0, 0)} for c in entry.causal["heads"]],
    }
    sink = io.StringIO()
    render_pronoun_heads(Console(file=sink, width=120), dataclasses.replace(entry, heads=forced, causal=causal), 12)
    text = sink.getvalue()
    assert "causal" in text and "✓" in text and "1 heads confirmed by ablation" in text


@pytest.mark.slow
def test_probe_causal_without_a_head_is_one_line(tmp_path, capsys):
    code = main(["probe", "coref", "agreement", "--ablation"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "has no language-model head" in err


@pytest.mark.slow
def test_causal_flag_with_a_checkpoint_means_the_ablation_probe(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    folder, _ = write_model(tmp_path, "gpt2")
    probe_file = tmp_path / "set.jsonl"
    text, pronoun, cands, answer = ITEMS[0]
    probe_file.write_text(json.dumps({"text": text, "pronoun": pronoun, "candidates": cands, "answer": answer}) * 1)
    code = main(["probe", "coref", str(probe_file), "-m", str(folder), "--causal", "--limit", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 items read out" in captured.out and "causal heads (" in captured.out and "in both:" in captured.out
    assert "ablated 1 of 1 items, about 0.0 min left" in captured.err  # progress when not a terminal
