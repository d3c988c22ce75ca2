"""Per-head statistics over a probe set of sentences, and a role for each head.

NumPy only: takes AttentionResult objects (one per sentence, all from the same model, the same
layers and heads) and returns numbers. No torch, no tokenizer.

Which rows count
----------------
A sentence of T tokens gives, per head, a [T, T] matrix `a` whose row i (the query) is a
probability distribution over the keys j. Every token of an AttentionResult is real (attnviz
runs one sentence at a time, so there is no padding). The statistics average over *query rows*
of the non-special tokens only ([CLS] and [SEP] rows behave differently and have no meaningful
"previous token"); keys are all T tokens, specials included. Rows of all sentences are pooled:
every query row of the probe set weighs the same. If a tokenizer adds no special tokens, every
token is a query. Sentences of a single token say nothing about attention and are skipped.

The statistics (means over the query rows i that have the thing measured)
-------------------------------------------------------------------------
- entropy:    H(a_i) / log T, the Shannon entropy of the row normalised by its maximum, so
              1.0 is uniform attention and 0.0 is all weight on one key.
- confidence: max_j a_ij, the largest weight of the row.
- distance:   sum_j a_ij |i - j|, the expected distance in tokens from query to key.
- self:       a_ii.
- prev:       a_i,i-1 (rows with a previous token; for the first word that is [CLS]).
- next:       a_i,i+1 (rows with a next token; for the last word that is [SEP]).
- special:    sum of a_ij over special tokens j ([CLS], [SEP], <s>, ...).
- first:      a_i,0, the weight on the sequence's first token (rows other than token 0).
- punct:      sum of a_ij over punctuation tokens j (non-special tokens made only of Unicode
              punctuation, such as "." and ","; only sentences that have some).
- local:      sum of a_ij over |i - j| <= 1 (self, previous and next together).

Roles, with thresholds that scale with sentence length
------------------------------------------------------
A raw share means little without the sentence length: uniform attention over 5 tokens already
gives the previous token 0.2, over 30 tokens only 0.033. So each share s of a row is compared
with what uniform attention would give that row, b = (number of target keys) / T, as the
*excess*  e = (s - b) / (1 - b):  e = 0 for uniform attention, e = 1 when all weight is on the
target, negative when the target is avoided. Excesses are averaged over the same rows as the
shares (`HeadProfile.excess`). A head's role is the first rule that applies:

1. a positional role, "previous token", "next token", "self", "special-token sink",
   "first-token sink" (only counted where the first token is not special; where it is, as [CLS]
   is, "special-token sink" covers it) or "punctuation", when its mean excess is at least
   ROLE_EXCESS (0.5: at least half-way from uniform to all the weight); the largest excess wins;
2. "local" when the excess of the window self + previous + next (b = window size / T) is at
   least ROLE_EXCESS but no single position qualifies;
3. "broad" when the mean normalised entropy is at least BROAD_ENTROPY (0.85), i.e. the weight
   is spread about as evenly as over T**0.85 keys or more;
4. "focused" when the excess of the row's largest weight on a non-special key (against 1/T;
   `excess["content"]`) is at least ROLE_EXCESS: sharp attention on a word chosen by content
   rather than by a fixed position (the overall confidence would also count a [CLS] sink);
5. "mixed" otherwise.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..result import AttentionResult
from ..errors import AttnvizError
from .. import sizes

ROLE_EXCESS = 0.5
BROAD_ENTROPY = 0.85

# Columns of the statistics, in display order.
STATS = ("entropy", "confidence", "distance", "self", "prev", "next", "special", "first", "punct", "local")
# Shares whose excess over uniform can make a positional role, with the role's name.
TARGET_ROLES = {
    "prev": "previous token",
    "next": "next token",
    "self": "self",
    "special": "special-token sink",
    "first": "first-token sink",
    "punct": "punctuation",
}
ROLES = (*TARGET_ROLES.values(), "local", "broad", "focused", "mixed")
# Short names for the grid.
ROLE_ABBREVIATIONS = {
    "previous token": "prev",
    "next token": "next",
    "self": "self",
    "special-token sink": "sink",
    "first-token sink": "first",
    "punctuation": "punct",
    "local": "local",
    "broad": "broad",
    "focused": "focus",
    "mixed": "mixed",
}
# Statistics that have an excess over uniform (entropy and distance have none).
# "content" is the row's largest weight on a non-special key: the excess behind "focused".
EXCESS_STATS = ("confidence", "content", "self", "prev", "next", "special", "first", "punct", "local")


@dataclass(frozen=True)
class HeadProfile:
    """Statistics and role of one head (model layer and head indices)."""

    layer: int
    head: int
    stats: dict[str, float]  # STATS -> mean over query rows (NaN when no row has it)
    excess: dict[str, float]  # EXCESS_STATS -> mean excess over uniform (NaN likewise)
    role: str
    role_score: float  # the excess (or entropy, for "broad") that decided the role

    def to_dict(self) -> dict:
        return {
            "layer": self.layer,
            "head": self.head,
            "role": self.role,
            "role_score": _json_float(self.role_score),
            "stats": {k: _json_float(v) for k, v in self.stats.items()},
            "excess": {k: _json_float(v) for k, v in self.excess.items()},
        }


@dataclass(frozen=True)
class HeadReport:
    """Profiles of every head over a probe set."""

    profiles: list[HeadProfile]  # layer-major order
    layers: list[int]
    heads: list[int]
    sentences: int  # sentences measured
    queries: int  # query rows per head
    skipped: int  # sentences of a single token
    uniform: dict[str, float]  # what uniform attention would give each statistic on this probe set

    def profile(self, layer: int, head: int) -> HeadProfile:
        return self.profiles[self.layers.index(layer) * len(self.heads) + self.heads.index(head)]

    def grid(self) -> list[list[str]]:
        """Roles as rows of layers and columns of heads."""
        return [[self.profile(layer, head).role for head in self.heads] for layer in self.layers]

    def role_counts(self) -> dict[str, int]:
        counts = {role: 0 for role in ROLES}
        for p in self.profiles:
            counts[p.role] += 1
        return {role: n for role, n in counts.items() if n}

    def to_dict(self) -> dict:
        return {
            "sentences": self.sentences,
            "queries": self.queries,
            "skipped": self.skipped,
            "layers": self.layers,
            "heads": self.heads,
            "uniform": {k: _json_float(v) for k, v in self.uniform.items()},
            "thresholds": {"role_excess": ROLE_EXCESS, "broad_entropy": BROAD_ENTROPY},
            "roles": self.role_counts(),
            "grid": self.grid(),
            "profiles": [p.to_dict() for p in self.profiles],
        }


def _json_float(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def is_punctuation(label: str) -> bool:
    """True for a token made only of Unicode punctuation ("." "," "?!" "」")."""
    return bool(label) and all(unicodedata.category(ch).startswith("P") for ch in label)


class RowSums:
    """Sums and row counts per statistic, each sum an array of `shape` ([L, H] for a sentence's
    layers and heads, [H] while one layer streams past): what the means are made of, so sums of
    blocks of rows, of layers and of sentences add up (`merge`, `stacked`)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}
        self.uniform_sums: dict[str, float] = {}
        self.queries = 0  # query rows measured

    def add(self, name: str, values: np.ndarray, uniform: np.ndarray | None = None) -> None:
        """values: [*shape, R] for R rows; uniform: [R] what uniform attention gives those rows."""
        if values.shape[-1] == 0:
            return
        self.sums[name] = self.sums.get(name, np.zeros(self.shape)) + values.sum(axis=-1, dtype=np.float64)
        self.counts[name] = self.counts.get(name, 0) + values.shape[-1]
        if uniform is not None:
            self.uniform_sums[name] = self.uniform_sums.get(name, 0.0) + float(uniform.sum())

    def merge(self, other: "RowSums") -> None:
        """Add the sums of `other` (same shape): another sentence, measured elsewhere."""
        for name, sums in other.sums.items():
            self.sums[name] = self.sums.get(name, np.zeros(self.shape)) + sums
            self.counts[name] = self.counts.get(name, 0) + other.counts[name]
        for name, total in other.uniform_sums.items():
            self.uniform_sums[name] = self.uniform_sums.get(name, 0.0) + total
        self.queries += other.queries

    @classmethod
    def stacked(cls, per_layer: list["RowSums"]) -> "RowSums":
        """One sentence's sums [L, H] from its layers' sums [H] (each layer counts the same rows)."""
        first = per_layer[0]
        out = cls((len(per_layer), *first.shape))
        out.sums = {name: np.stack([acc.sums[name] for acc in per_layer]) for name in first.sums}
        out.counts, out.uniform_sums, out.queries = dict(first.counts), dict(first.uniform_sums), first.queries
        return out

    def mean(self, name: str) -> np.ndarray:
        if not self.counts.get(name):
            return np.full(self.shape, np.nan)
        return self.sums[name] / self.counts[name]

    def uniform_mean(self, name: str) -> float:
        return self.uniform_sums[name] / self.counts[name] if self.counts.get(name) else math.nan


def _share_and_excess(acc: RowSums, name: str, share: np.ndarray, baseline: np.ndarray) -> None:
    """share: [..., R] weights on a target; baseline: [R] uniform share b of those rows (< 1)."""
    acc.add(name, share, baseline)
    acc.add(name + "_excess", (share - baseline) / (1.0 - baseline))


@dataclass(frozen=True)
class SentenceLayout:
    """What the statistics need of a sentence besides its weights: T tokens, which are special
    ([T] bool) and which punctuation ([T] bool), and its query rows q (the non-special tokens)."""

    T: int
    special: np.ndarray  # [T] bool
    punct: np.ndarray  # [T] bool
    queries: np.ndarray  # [R] int: the query rows measured, ascending

    @classmethod
    def of(cls, result: AttentionResult) -> "SentenceLayout":
        special = np.array(result.special, dtype=bool)
        T = len(special)
        punct = np.array([not s and is_punctuation(label) for s, label in zip(result.special, result.labels)], bool)
        q = np.flatnonzero(~special) if (~special).any() else np.arange(T)
        return cls(T, special, punct.reshape(T), q)


def _measure(acc: RowSums, result: AttentionResult) -> int:
    """Add one sentence's query rows to the sums; returns how many rows it had."""
    w = result.weights.astype(np.float64)  # [L, H, T, T]
    return measure_block(acc, SentenceLayout.of(result), w, 0, 0)


def _at(rows: np.ndarray, which: np.ndarray, keys: np.ndarray, k0: int) -> np.ndarray:
    """rows [..., n, W] over keys k0..k0+W-1: the weight of row which[i] on key keys[i], [..., len(which)]
    (0 for a key outside the block, which has weight 0 there)."""
    inside = (keys >= k0) & (keys < k0 + rows.shape[-1])
    if inside.all():
        return rows[..., which, keys - k0].astype(np.float64)
    out = np.zeros(rows.shape[:-2] + (len(which),))
    out[..., inside] = rows[..., which[inside], keys[inside] - k0]
    return out


def _spread(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """values [..., n] of the rows `where` ([R] bool, n of them True) as [..., R], 0 elsewhere."""
    out = np.zeros(values.shape[:-1] + where.shape)
    out[..., where] = values
    return out


def measure_block(acc: RowSums, layout: SentenceLayout, block: np.ndarray, r0: int, k0: int) -> int:
    """Add the query rows of one block of a sentence's attention to the sums; returns how many.

    block [..., R, W] float64 or float32 (leading dims: the shape of `acc`; float32 blocks are
    measured without a copy, products in float32 and every sum in float64): query rows r0..r0+R-1 against
    keys k0..k0+W-1, every key outside that range having weight 0 (blockwise.py hands out the
    keys a decoder's or a sliding window's rows may see). The whole [L, H, T, T] maps are one
    block (r0 = k0 = 0); each statistic is a sum over rows, so blocks of rows add up to it, and
    each row's sums over keys leave out only zeros. Baselines (what uniform attention would give)
    count all T keys."""
    T, special, q = layout.T, layout.special, layout.queries
    R, W = block.shape[-2], block.shape[-1]
    q = q[(q >= r0) & (q < r0 + R)]  # this block's query rows [Rq]
    Rq = len(q)
    if not Rq:
        return 0
    # The query rows; a run of consecutive rows (every row but [CLS]/[SEP]) is a view, not a copy.
    consecutive = q[-1] - q[0] + 1 == Rq
    rows = block[..., q[0] - r0 : q[-1] - r0 + 1, :] if consecutive else block[..., q - r0, :]  # [..., Rq, W]
    keys = np.arange(k0, k0 + W)  # [W]
    uniform = np.full(Rq, 1.0 / T)

    # Entropy from p log p with 0 log 0 = 0: log(max(p, tiny)) is log p for every p > 0 (a float32
    # probability is never below float64's tiny) and finite for p = 0, whose product is then 0.
    plogp = np.maximum(rows, np.finfo(rows.dtype).tiny)
    np.log(plogp, out=plogp)
    plogp *= rows
    acc.add("entropy", -plogp.sum(axis=-1, dtype=np.float64) / math.log(T), np.ones(Rq))
    del plogp
    confidence = rows.max(axis=-1).astype(np.float64)
    _share_and_excess(acc, "confidence", confidence, uniform)
    # Keys outside the block weigh 0, so they never raise a maximum (initial 0: none inside).
    content_keys = ~special[k0 : k0 + W]
    content = confidence if content_keys.all() else rows[..., content_keys].max(axis=-1, initial=0).astype(np.float64)
    acc.add("content_excess", (content - uniform) / (1.0 - uniform))
    dist = np.abs(q[:, None] - keys[None, :]).astype(np.float64)  # [Rq, W]
    all_dist = np.abs(q[:, None] - np.arange(T)[None, :])  # [Rq, T]: the baseline counts every key
    weighted = rows * dist  # float64: distances reach T, float32 products would be 1e-4 off there
    acc.add("distance", weighted.sum(axis=-1), all_dist.mean(axis=-1))
    del weighted
    index = np.arange(Rq)
    self_share = _at(rows, index, q, k0)
    _share_and_excess(acc, "self", self_share, uniform)

    has_prev = q > 0
    prev_share = _at(rows, index[has_prev], q[has_prev] - 1, k0)
    _share_and_excess(acc, "prev", prev_share, uniform[has_prev])
    has_next = q < T - 1
    next_share = _at(rows, index[has_next], q[has_next] + 1, k0)
    _share_and_excess(acc, "next", next_share, uniform[has_next])

    n_special = int(special.sum())
    special_share = rows[..., special[k0 : k0 + W]].sum(axis=-1, dtype=np.float64)
    _share_and_excess(acc, "special", special_share, np.full(Rq, n_special / T))
    not_first = q > 0
    first_share = _at(rows, index[not_first], np.zeros(int(not_first.sum()), int), k0)
    if special[0]:
        acc.add("first", first_share, uniform[not_first])  # a raw share only: "special" covers it
    else:
        _share_and_excess(acc, "first", first_share, uniform[not_first])

    punct = layout.punct
    n_punct = int(punct.sum())
    if 0 < n_punct < T:
        punct_share = rows[..., punct[k0 : k0 + W]].sum(axis=-1, dtype=np.float64)
        _share_and_excess(acc, "punct", punct_share, np.full(Rq, n_punct / T))

    # The window |i - j| <= 1: previous + self + next, the keys a row has.
    local = prev_share if has_prev.all() else _spread(prev_share, has_prev)
    local = local + self_share
    local += next_share if has_next.all() else _spread(next_share, has_next)
    local_base = (all_dist <= 1).sum(axis=-1) / T
    keep = local_base < 1.0  # in a sentence of <= 3 tokens the window may be everything
    _share_and_excess(acc, "local", local[..., keep], local_base[keep])
    acc.queries += Rq
    return Rq


class StreamedHeadStats:
    """The statistics of `_measure` made while one sentence's maps stream past (a keep.KeepRequest
    consumer): each block of query rows of a layer, probs [1, H, R, W] (keys k0..k0+W-1), is
    added to that layer's sums and let go, so a long text keeps [L, H] numbers per statistic
    instead of L x H x T x T weights. Sums of blocks are sums over all rows: the same numbers as
    `_measure` on the full maps, up to the order of the additions (1e-12 apart).

    result(): the sums [len(layers), H] (a RowSums) once the pass is done."""

    def __init__(self, layers: list[int], layout: SentenceLayout, causal: bool = False) -> None:
        self.order = sorted(layers)
        self.layers = frozenset(layers)
        self.layout = layout
        self.causal = causal  # keys after a row are masked: a chunk of rows reads keys up to its last
        self.per_layer: dict[int, RowSums] = {}

    def rows(self, layer: int, r0: int, k0: int, probs) -> None:
        """probs [1, H, R, W]: query rows r0.., keys k0.. of every head (keys outside: weight 0)."""
        block = probs[0].numpy()  # [H, R, W] float32, measured in place
        H, R, W = block.shape
        acc = self.per_layer.setdefault(layer, RowSums((H,)))
        # Rows measured at once: the float64 temporaries stay near sizes.STATS_CHUNK_BYTES
        # whatever the block (blockwise.py hands out up to 64 MB of float32 scores).
        step = max(1, sizes.STATS_CHUNK_BYTES // (8 * H * max(W, 1)))
        for s in range(0, R, step):
            e = min(R, s + step)
            width = min(W, r0 + e - k0) if self.causal else W  # a decoder's later keys weigh 0
            measure_block(acc, self.layout, block[:, s:e, :width], r0 + s, k0)

    def layer_done(self, layer: int) -> None:
        pass  # the sums are complete; nothing is held but them

    def result(self) -> RowSums:
        return RowSums.stacked([self.per_layer[layer] for layer in self.order])


def assign_role(stats: dict[str, float], excess: dict[str, float]) -> tuple[str, float]:
    """The role of a head from its statistics (see the module docstring for the rules)."""
    candidates = [
        (excess[k], TARGET_ROLES[k])
        for k in TARGET_ROLES
        if not math.isnan(excess.get(k, math.nan)) and excess[k] >= ROLE_EXCESS
    ]
    if candidates:
        # Largest excess wins; ties go to the earlier role in TARGET_ROLES (max keeps the first).
        score, role = max(candidates, key=lambda c: c[0])
        return role, score
    local = excess.get("local", math.nan)
    if not math.isnan(local) and local >= ROLE_EXCESS:
        return "local", local
    if stats["entropy"] >= BROAD_ENTROPY:
        return "broad", stats["entropy"]
    if excess["content"] >= ROLE_EXCESS:
        return "focused", excess["content"]
    best = max((v for v in excess.values() if not math.isnan(v)), default=math.nan)
    return "mixed", best


def profile_heads(results: Iterable[AttentionResult]) -> HeadReport:
    """Statistics and roles of every head in `results` (one result per probe sentence), read once
    and in order: a generator works, so callers need not hold every result at once. A result
    measured while its maps streamed past (`head_stats`, see StreamedHeadStats) adds its sums
    instead of its weights."""
    layers = heads = acc = None
    queries = skipped = total = 0
    for r in results:
        sums = r.head_stats  # RowSums [L, H] when the maps were measured while they streamed past
        r_layers, r_heads = (r.stats_layers, r.stats_heads) if r.stats_layers else (r.layers, r.heads)
        if layers is None:
            layers, heads = list(r_layers), list(r_heads)
            acc = RowSums((len(layers), len(heads)))
        elif list(r_layers) != layers or list(r_heads) != heads:
            raise ValueError("all results must hold the same layers and heads")
        total += 1
        if len(r.tokens) < 2:
            skipped += 1
            continue
        if sums is not None:
            acc.merge(sums)
            queries += sums.queries
        else:
            queries += _measure(acc, r)
    if layers is None:
        raise AttnvizError("no sentences to measure the heads on; give some with --text or --file")
    if not queries:
        raise AttnvizError("every probe sentence is a single token; give longer sentences")

    means = {name: acc.mean(name) for name in STATS}
    excesses = {name: acc.mean(name + "_excess") for name in EXCESS_STATS}
    profiles = []
    for li, layer in enumerate(layers):
        for hi, head in enumerate(heads):
            stats = {name: float(means[name][li, hi]) for name in STATS}
            excess = {name: float(excesses[name][li, hi]) for name in EXCESS_STATS}
            role, score = assign_role(stats, excess)
            profiles.append(HeadProfile(layer, head, stats, excess, role, score))
    uniform = {name: acc.uniform_mean(name) for name in STATS}
    uniform["entropy"] = 1.0 if acc.counts.get("entropy") else math.nan
    return HeadReport(profiles, layers, heads, total - skipped, queries, skipped, uniform)


# Columns `sort_profiles` accepts: numbers sort largest first, layer/head/role in order.
SORT_COLUMNS = ("layer", "head", "role", "score", *STATS)


def deltas(report: HeadReport, baseline: HeadReport) -> dict[tuple[int, int], dict[str, float]]:
    """Per head, each statistic of `report` minus the same head's in `baseline` (same shape)."""
    if report.layers != baseline.layers or report.heads != baseline.heads:
        raise ValueError("the baseline must have the same layers and heads")
    out = {}
    for p in report.profiles:
        b = baseline.profile(p.layer, p.head)
        out[(p.layer, p.head)] = {k: p.stats[k] - b.stats[k] for k in STATS}
    return out


def sort_profiles(
    profiles: list[HeadProfile],
    column: str,
    reverse: bool = False,
    delta: dict[tuple[int, int], dict[str, float]] | None = None,
) -> list[HeadProfile]:
    """Heads ordered by `column` (one of SORT_COLUMNS); ties and NaN keep layer/head order, NaN last.

    Statistics sort largest first (`reverse` flips that), by their difference from the baseline
    when `delta` is given. "layer", "head" and "role" sort in increasing order (roles in the
    order of ROLES).
    """
    if column not in SORT_COLUMNS:
        raise AttnvizError(f"unknown sort column {column!r}; choose one of: {', '.join(SORT_COLUMNS)}")
    canonical = sorted(profiles, key=lambda p: (p.layer, p.head))
    if column in ("layer", "head", "role"):

        def key(p: HeadProfile):
            main = ROLES.index(p.role) if column == "role" else getattr(p, column)
            return (main, p.layer, p.head) if column != "head" else (p.head, p.layer)

        ordered = sorted(canonical, key=key)
        return ordered[::-1] if reverse else ordered

    def value(p: HeadProfile) -> float:
        if column == "score":
            return p.role_score
        return delta[(p.layer, p.head)][column] if delta is not None else p.stats[column]

    known = [p for p in canonical if not math.isnan(value(p))]
    unknown = [p for p in canonical if math.isnan(value(p))]
    # sorted() is stable: equal values stay in layer/head order.
    return sorted(known, key=value, reverse=not reverse) + unknown
