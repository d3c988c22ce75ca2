"""`inspect`'s head statistics made while the maps stream past (analysis.heads.StreamedHeadStats)
equal those of the full maps (analysis.heads._measure via profile_heads): to 1e-6 (sums in another
order) on random encoders and decoders (GQA, sliding windows), texts of several lengths across the
boundaries of small forced blocks of query rows and of the statistics' own chunks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import attnviz
from attnviz import blockwise, sizes
from attnviz.analysis.heads import (
    EXCESS_STATS,
    STATS,
    RowSums,
    SentenceLayout,
    StreamedHeadStats,
    measure_block,
    profile_heads,
)
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.encoder import Encoder, init_random
from attnviz.keep import KeepRequest
from attnviz import pipeline
from attnviz.pipeline import encode, run_attention, run_for_head_stats, run_head_stats
from attnviz.tokenize import Encoding
from cli_runs import invoke_json

TOL = 1e-6

CONFIGS = {
    "encoder": EncoderConfig(vocab_size=300, num_layers=2, num_heads=4, d_model=32, d_ff=64, max_len=512),
    "decoder-gqa": EncoderConfig(
        vocab_size=300,
        num_layers=2,
        num_heads=6,
        num_kv_heads=2,
        d_model=48,
        d_ff=64,
        max_len=512,
        causal=True,
        positional="rope",
        norm="rms",
        ffn="gated",
        norm_placement="pre",
    ),
    "decoder-window": EncoderConfig(
        vocab_size=300,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        d_model=32,
        d_ff=64,
        max_len=512,
        causal=True,
        positional="rope",
        norm_placement="pre",
        sliding_window=13,
        layer_types=("sliding_attention", "full_attention"),
    ),
}


def layout(T: int, specials: bool) -> SentenceLayout:
    """[CLS] ... [SEP] with punctuation every 7th token, or no specials and punctuation every 5th
    (then the first token is no special token: the 'first-token sink' excess is measured)."""
    special = np.zeros(T, bool)
    if specials:
        special[[0, T - 1]] = True
    punct = np.zeros(T, bool)
    punct[3 :: 7 if specials else 5] = True
    punct &= ~special
    queries = np.flatnonzero(~special)
    return SentenceLayout(T, special, punct, queries)


def assert_same_sums(got: RowSums, want: RowSums) -> None:
    assert got.shape == want.shape and got.queries == want.queries
    assert got.counts == want.counts and set(got.sums) == set(want.sums)
    for name in want.sums:
        np.testing.assert_allclose(got.mean(name), want.mean(name), rtol=0, atol=TOL, err_msg=name)
    assert set(got.uniform_sums) == set(want.uniform_sums)
    for name in want.uniform_sums:
        assert got.uniform_mean(name) == pytest.approx(want.uniform_mean(name), abs=1e-12)


@pytest.mark.parametrize("key", list(CONFIGS))
@pytest.mark.parametrize("T", [12, 29, pytest.param(40, marks=pytest.mark.slow)])
def test_streamed_statistics_equal_those_of_the_full_maps(key, T, monkeypatch):
    config = CONFIGS[key]
    encoder = init_random(Encoder(config), seed=3)
    ids = torch.randint(1, 300, (1, T), generator=torch.Generator().manual_seed(T))
    L, H = config.num_layers, config.num_heads
    for rows, chunk_rows in ((None, None), (5, None), (7, 3), (1, 1)):
        # Blocks of `rows` query rows (None: the whole matrix), each measured `chunk_rows` at a time.
        monkeypatch.setattr(blockwise, "BLOCK_BYTES", 64 * 1024**2 if rows is None else 4 * H * rows * T)
        monkeypatch.setattr(sizes, "STATS_CHUNK_BYTES", 64 * 1024**2 if chunk_rows is None else 8 * H * chunk_rows * T)
        shapes = [layout(T, True), layout(T, False)]
        streams = [StreamedHeadStats(list(range(L)), shape, config.causal) for shape in shapes]
        # The same pass keeps every map, so both computations read the same probabilities.
        keep = KeepRequest.maps(range(L)).with_consumers(*streams)
        with torch.inference_mode():
            full = encoder(ids, keep=keep).attentions[0].double().numpy()  # [L, H, T, T]
        for shape, stats in zip(shapes, streams):
            want = RowSums((L, H))
            measure_block(want, shape, full, 0, 0)
            assert_same_sums(stats.result(), want)


def test_only_a_block_of_rows_is_measured_at_a_time():
    """A block covering rows 10..19 and keys 5..24 adds exactly those rows, as their slice of the
    full map would (keys outside have weight 0)."""
    T, shape = 30, layout(30, True)
    rng = np.random.default_rng(0)
    full = np.zeros((2, 3, T, T))
    full[..., 10:20, 5:25] = rng.dirichlet(np.ones(20), size=(2, 3, 10))
    want, got = RowSums((2, 3)), RowSums((2, 3))
    measure_block(want, shape, full[..., 10:20, :], 10, 0)
    measure_block(got, shape, full[..., 10:20, 5:25].copy(), 10, 5)
    assert got.queries == 10
    assert_same_sums(got, want)


def random_text(n: int, seed: int = 0) -> str:
    words = "the a dog cat ate food because it was hungry , . she he street river wide tired".split()
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(words, size=n))


@pytest.mark.parametrize("key", ["encoder", "decoder-window"])
def test_head_profiles_of_a_streamed_text_equal_those_of_its_maps(key, monkeypatch):
    model = attnviz.load_model("random", config=CONFIGS[key])
    texts = [random_text(60, 1), random_text(90, 2)]
    full = profile_heads(run_attention(model, t) for t in texts)
    monkeypatch.setattr(blockwise, "BLOCK_BYTES", 4 * 4 * 11 * 100)  # blocks of about 11 rows
    streamed = [run_head_stats(model, t) for t in texts]
    assert all(r.weights.size == 0 and r.head_stats.shape == (2, 4) for r in streamed)
    got = profile_heads(streamed)
    assert (got.sentences, got.queries, got.layers, got.heads) == (full.sentences, full.queries, [0, 1], [0, 1, 2, 3])
    for a, b in zip(got.profiles, full.profiles):
        assert (a.layer, a.head, a.role) == (b.layer, b.head, b.role)
        np.testing.assert_allclose([a.stats[k] for k in STATS], [b.stats[k] for k in STATS], rtol=0, atol=1e-5)
        np.testing.assert_allclose(
            [a.excess[k] for k in EXCESS_STATS], [b.excess[k] for k in EXCESS_STATS], rtol=0, atol=1e-5
        )


def test_long_texts_stream_and_short_ones_keep_their_maps(monkeypatch):
    model = attnviz.load_model("random", config=CONFIGS["encoder"])
    monkeypatch.setattr(sizes, "STREAM_STATS_BYTES", 4 * 2 * 4 * 30 * 30)  # texts of more than 30 tokens
    texts = ["A short one.", random_text(50), "", "Another short sentence here."]
    out = run_for_head_stats(model, texts)
    assert out[0].weights.shape[:2] == (2, 4) and out[0].head_stats is None
    assert out[1].weights.shape[:2] == (0, 0) and out[1].head_stats is not None
    assert isinstance(out[2], AttnvizError)  # an empty text: its error, in its place
    assert out[3].head_stats is None


def test_a_single_token_text_is_skipped_when_streamed():
    model = attnviz.load_model("random", config=CONFIGS["decoder-gqa"])
    enc = encode(model, "dog")
    one = Encoding(enc.ids[1:2], enc.tokens[1:2], enc.offsets[1:2], enc.word_ids[1:2], [False], enc.type_ids[1:2])
    result = pipeline._head_stats(model, "dog", one)
    assert result.head_stats is None and result.stats_layers == [0, 1] and result.stats_heads == list(range(6))
    report = profile_heads([result, run_head_stats(model, random_text(20))])
    assert report.skipped == 1 and report.sentences == 1


@pytest.mark.slow
def test_inspect_json_is_the_same_when_texts_stream(monkeypatch):
    """`inspect --format json`: streaming every probe text changes no role and no statistic
    beyond the sixth decimal (the JSON's rounding)."""
    args = ["inspect", "--text", random_text(40, 3), "--text", random_text(25, 4), "--no-pronouns", "--format", "json"]
    kept = invoke_json(*args)
    monkeypatch.setattr(sizes, "STREAM_STATS_BYTES", 0)
    monkeypatch.setattr(blockwise, "BLOCK_BYTES", 4 * 12 * 7 * 50)
    streamed = invoke_json(*args)
    assert streamed["heads"]["grid"] == kept["heads"]["grid"]
    assert streamed["heads"]["queries"] == kept["heads"]["queries"]
    for a, b in zip(streamed["heads"]["profiles"], kept["heads"]["profiles"]):
        assert (a["layer"], a["head"], a["role"]) == (b["layer"], b["head"], b["role"])
        for part in ("stats", "excess"):
            for name, value in b[part].items():
                assert (a[part][name] is None) == (value is None)
                if value is not None:
                    assert abs(a[part][name] - value) <= 2e-6, (name, a[part][name], value)
    assert json.dumps(streamed["parameters"]) == json.dumps(kept["parameters"])
