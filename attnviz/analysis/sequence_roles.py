"""Heads measured on repeated random tokens: induction, duplicate-token and previous-token heads.

The standard test (Olsson et al. 2022, "In-context learning and induction heads"): a sequence of
n random tokens is repeated twice, x_1..x_n x_1..x_n. At a query in the second copy, at position
k (its token's earlier occurrence is at k - n), a head is
- an *induction head* when it attends to k - n + 1, the token that followed the earlier
  occurrence of the current token (the head that lets a model continue a repeated pattern);
- a *duplicate-token head* when it attends to k - n, the earlier occurrence itself;
- a *previous-token head* when it attends to k - 1.
Random tokens carry no meaning, so only these positional matches can explain such attention.

Scores are mean weights over the second-copy queries of every sequence, each next to what uniform
attention over the keys the query can see would give (1 / (k + 1) in a causal model, 1 / T in an
encoder), and as an excess over it, e = (s - b) / (1 - b). A head gets the role when its excess is
at least SEQUENCE_EXCESS (0.3): weaker than the 0.5 of the sentence roles in heads.py, because
induction scores of real models are spread over several heads (0.3 already means the head puts
far more than a third of what it can on one exact token, every time).

NumPy only, on AttentionResult objects and the positions of the repeated tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import AttnvizError
from ..result import AttentionResult

SEQUENCE_EXCESS = 0.3
SCORES = ("induction", "duplicate", "prev")
ROLE_NAMES = {"induction": "induction", "duplicate": "duplicate token", "prev": "previous token"}


@dataclass(frozen=True)
class SequenceScores:
    """Per head [L, H]: mean weight on each target, its excess over uniform, and the uniform mean."""

    layers: list[int]
    heads: list[int]
    scores: dict[str, np.ndarray]  # SCORES -> [L, H] mean weight
    excess: dict[str, np.ndarray]  # SCORES -> [L, H] mean excess over uniform
    uniform: dict[str, float]  # SCORES -> mean uniform weight of the same rows
    sequences: int
    queries: int  # second-copy query rows per head

    def roles(self) -> dict[tuple[int, int], list[str]]:
        """(layer, head) -> the sequence roles it passes, strongest first."""
        out: dict[tuple[int, int], list[str]] = {}
        for li, layer in enumerate(self.layers):
            for hi, head in enumerate(self.heads):
                passed = sorted(
                    (float(self.excess[s][li, hi]), s) for s in SCORES if self.excess[s][li, hi] >= SEQUENCE_EXCESS
                )
                if passed:
                    out[(layer, head)] = [ROLE_NAMES[s] for _, s in reversed(passed)]
        return out

    def heads_with(self, score: str) -> list[tuple[int, int, float]]:
        """(layer, head, score) of the heads that pass `score`, best first."""
        found = [
            (self.layers[li], self.heads[hi], float(self.scores[score][li, hi]))
            for li in range(len(self.layers))
            for hi in range(len(self.heads))
            if self.excess[score][li, hi] >= SEQUENCE_EXCESS
        ]
        return sorted(found, key=lambda x: (-x[2], x[0], x[1]))

    def to_dict(self) -> dict:
        return {
            "sequences": self.sequences,
            "queries": self.queries,
            "threshold": SEQUENCE_EXCESS,
            "uniform": {s: _round(v) for s, v in self.uniform.items()},
            "scores": {s: np.round(v, 6).tolist() for s, v in self.scores.items()},
            "excess": {s: np.round(v, 6).tolist() for s, v in self.excess.items()},
            "roles": {f"{layer},{head}": roles for (layer, head), roles in self.roles().items()},
        }


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 6)


def repeat_positions(result: AttentionResult, n: int) -> np.ndarray:
    """Token indices of the 2n repeated tokens (the non-special ones), checked to repeat."""
    positions = np.flatnonzero(~np.array(result.special, dtype=bool))
    if len(positions) != 2 * n:
        raise AttnvizError(f"expected {2 * n} repeated tokens, the text has {len(positions)}")
    first, second = positions[:n], positions[n:]
    tokens = result.tokens
    if [tokens[i] for i in first] != [tokens[i] for i in second]:
        raise AttnvizError("the two halves of the repeated sequence are not the same tokens")
    return positions


def sequence_scores(results: list[AttentionResult], n: int) -> SequenceScores:
    """Induction, duplicate-token and previous-token scores of every head over `results`, each the
    attention of a sequence of n random tokens repeated twice (special tokens around it allowed)."""
    if not results:
        raise AttnvizError("no repeated sequences to measure")
    layers, heads = list(results[0].layers), list(results[0].heads)
    L, H = len(layers), len(heads)
    sums = {s: np.zeros((L, H)) for s in SCORES}
    excess = {s: np.zeros((L, H)) for s in SCORES}
    uniform = {s: 0.0 for s in SCORES}
    queries = 0
    for result in results:
        if list(result.layers) != layers or list(result.heads) != heads:
            raise ValueError("all results must hold the same layers and heads")
        pos = repeat_positions(result, n)
        w = result.weights.astype(np.float64)  # [L, H, T, T]
        T = w.shape[-1]
        q = pos[n:]  # second-copy queries [n]
        targets = {"induction": pos[1 : n + 1], "duplicate": pos[:n], "prev": q - 1}  # [n] each
        # What uniform attention gives one key of the row: causal rows see k + 1 keys.
        base = 1.0 / (q + 1) if result.causal else np.full(n, 1.0 / T)  # [n]
        for s, keys in targets.items():
            share = w[:, :, q, keys]  # [L, H, n]
            sums[s] += share.sum(axis=-1)
            excess[s] += ((share - base) / (1.0 - base)).sum(axis=-1)
            uniform[s] += float(base.sum())
        queries += n
    return SequenceScores(
        layers,
        heads,
        {s: v / queries for s, v in sums.items()},
        {s: v / queries for s, v in excess.items()},
        {s: v / queries for s, v in uniform.items()},
        len(results),
        queries,
    )
