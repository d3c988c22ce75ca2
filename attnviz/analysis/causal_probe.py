"""Heads whose ablation hurts the model's answer across a probe set, and how they compare with the
heads whose attention points at the right referent. Plain arrays: no torch.

Per item the ablation gives every head's effect on the readout (clean - ablated; positive: the head
helps the right answer). A head is *causally confirmed* when its effect is positive on significantly
more items than it is negative: an exact one-sided sign test on the per-item effects (paired: each
item is its own control), Bonferroni-corrected over the heads, p < 0.05. The sign test assumes
nothing about the effects' distribution (log-probability differences are heavy-tailed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SIGNIFICANCE = 0.05


def sign_test_greater(wins: int, losses: int) -> float:
    """P(X >= wins) for X ~ Binomial(wins + losses, 1/2): the one-sided exact sign test (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    logs = [
        math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) - n * math.log(2) for k in range(wins, n + 1)
    ]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(v - top) for v in logs))


@dataclass
class CausalProbe:
    effects: np.ndarray  # [N, L, H] per item, clean - ablated
    clean: np.ndarray  # [N] clean readouts
    items: list[str]  # an id per item
    mode: str = "zero"
    skipped: list = field(default_factory=list)  # (line, reason)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def mean_effect(self) -> np.ndarray:
        return self.effects.mean(axis=0)  # [L, H]

    def p_values(self) -> np.ndarray:
        """Bonferroni-corrected one-sided sign-test p-values [L, H] (effect > 0)."""
        _, L, H = self.effects.shape
        wins, losses = (self.effects > 0).sum(0), (self.effects < 0).sum(0)
        p = np.array([[sign_test_greater(int(wins[l, h]), int(losses[l, h])) for h in range(H)] for l in range(L)])
        return np.minimum(1.0, p * L * H)

    def confirmed(self) -> list[tuple[int, int]]:
        """Heads whose ablation hurts significantly, largest mean effect first."""
        p, mean = self.p_values(), self.mean_effect()
        cells = [(l, h) for l, h in zip(*np.nonzero((p < SIGNIFICANCE) & (mean > 0)))]
        return sorted(((int(l), int(h)) for l, h in cells), key=lambda c: -mean[c])

    def accuracy(self) -> float:
        """Share of items whose clean readout prefers the right candidate."""
        return float((self.clean > 0).mean()) if len(self.clean) else 0.0

    def head_entries(self) -> list[dict]:
        p, mean = self.p_values(), self.mean_effect()
        confirmed = set(self.confirmed())
        return [
            {
                "layer": l,
                "head": h,
                "mean_effect": float(mean[l, h]),
                "p": float(p[l, h]),
                "confirmed": (l, h) in confirmed,
            }
            for l in range(mean.shape[0])
            for h in range(mean.shape[1])
        ]

    def summary(self) -> dict:
        """What the pronoun-heads cache keeps (pronoun_heads.PronounHeads.causal)."""
        return {"n_items": self.n_items, "mode": self.mode, "accuracy": self.accuracy(), "heads": self.head_entries()}


def overlap(attention: list[tuple[int, int]], causal: list[tuple[int, int]]) -> dict:
    """How much the attention-based and the causal head lists agree."""
    a, c = set(attention), set(causal)
    both = sorted(a & c)
    union = a | c
    return {
        "attention": len(a),
        "causal": len(c),
        "both": [list(x) for x in both],
        "jaccard": len(both) / len(union) if union else None,
        "attention_confirmed_share": len(both) / len(a) if a else None,
    }


def top_overlap(attention_score: np.ndarray, causal_score: np.ndarray, k: int = 10) -> int:
    """How many of the k best heads by attention accuracy are also among the k best by mean effect."""
    top_a = set(np.argsort(-attention_score.ravel(), kind="stable")[:k].tolist())
    top_c = set(np.argsort(-causal_score.ravel(), kind="stable")[:k].tolist())
    return len(top_a & top_c)
