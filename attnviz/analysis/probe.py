"""Coreference probe: score every head on an annotated set of pronouns and their candidates.

One JSON object a line:
    {"text": ..., "pronoun": "it", "candidates": ["trophy", "suitcase"], "answer": 0, "group": 7}
`pronoun` and each candidate may instead be {"text", "start", "end"} (character offsets) to pin
the exact occurrence; a pinned span covers every token whose offsets fall inside it. A string
matches whole words: the pronoun's first occurrence, each candidate's occurrence nearest before
the pronoun, else its first (analysis.candidates).

A head picks the candidate that receives the most word-level attention from the pronoun (sum
over the candidate's tokens, mean over the pronoun's tokens; Clark et al. 2019); an exact tie is
no pick and counts as wrong. Baselines: always the candidate nearest to the pronoun, always the
farthest (character distance between the spans; a tie again counts as wrong), and chance.
Twin-aware: items sharing a "group" are twins whose answers differ; a head gets a group "both
right" only when it gets every scored twin of the group right. A head that just prefers a
position or a word gets at most one of two twins.

This module parses and scores; the model run is a callback, so the math stays testable on
hand-built results.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..result import AttentionResult
from ..errors import AttnvizError
from ..reading import JSONLimitError, check_regular_file, parse_json, read_text
from ..text import LINE_BREAK
from .candidates import NO_WINNER, Span, find_span, pinned_span, span_weights, winners

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Item:
    line: int
    text: str
    pronoun: str | dict
    candidates: list
    answer: int
    group: object = None  # str or int; None: not part of a twin group
    id: str | None = None
    cue: str | None = None  # what decides the answer ("number", "gender", a WSC "kind"...), for per-cue results


@dataclass(frozen=True)
class Skipped:
    line: int
    reason: str


def _span_spec(value, what: str) -> str | dict:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{what} is an empty string")
        return value
    if isinstance(value, dict):
        missing = [k for k in ("text", "start", "end") if k not in value]
        if missing:
            raise ValueError(f"{what} object lacks {', '.join(repr(m) for m in missing)}")
        if not isinstance(value["text"], str) or not value["text"]:
            raise ValueError(f"{what} 'text' must be a non-empty string")
        for key in ("start", "end"):
            if not isinstance(value[key], int) or isinstance(value[key], bool):
                raise ValueError(f"{what} '{key}' must be an integer character offset")
        return {"text": value["text"], "start": value["start"], "end": value["end"]}
    raise ValueError(f"{what} must be a string or an object with text, start and end")


def _short(value, limit: int = 40) -> str:
    """repr(value), cut to `limit` characters: a skip warning quotes the bad value, not 4000 digits of it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text)} characters)"


def parse_item(raw: str, line: int) -> Item:
    """One line -> Item; ValueError with the reason when the line is malformed."""
    try:
        data = parse_json(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except JSONLimitError as exc:
        raise ValueError(f"cannot be read ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("'text' must be a non-empty string")
    if "pronoun" not in data:
        raise ValueError("'pronoun' is missing")
    pronoun = _span_spec(data["pronoun"], "pronoun")
    cands = data.get("candidates")
    if not isinstance(cands, list) or len(cands) < 2:
        raise ValueError("'candidates' must be a list of at least two candidates")
    cands = [_span_spec(c, f"candidate {k}") for k, c in enumerate(cands)]
    if "answer" not in data:
        raise ValueError("'answer' is missing")
    answer = data["answer"]
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(cands):
        raise ValueError(f"'answer' must be the index of a candidate (0-{len(cands) - 1}), got {_short(answer)}")
    group = data.get("group")
    if group is not None and (isinstance(group, bool) or not isinstance(group, (str, int))):
        raise ValueError("'group' must be a string or an integer")
    ident = data.get("id")
    cue = data.get("cue", data.get("kind"))
    if cue is not None and (not isinstance(cue, str) or not cue.strip()):
        raise ValueError("'cue' must be a non-empty string")
    return Item(line, text, pronoun, cands, answer, group, ident if isinstance(ident, str) else None, cue)


# Probe sets shipped in the package (attnviz/data/probes; provenance and licences in its README.md).
PROBE_SETS = {
    "agreement": "English pronouns decided by number (it/they) or gender (he/she) alone, in twins",
    "winograd": "the Winograd Schema Challenge (WSC273, CC BY 4.0): decided by world knowledge",
}


def probe_set_path(name: str) -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "probes" / f"{name}.jsonl"


def resolve_probe_file(spec: str | Path) -> tuple[Path, str]:
    """A built-in set name or a path -> (file, name to show). An existing path wins over a name."""
    path = Path(spec)
    if str(spec) in PROBE_SETS and not path.exists():
        return probe_set_path(str(spec)), str(spec)
    if not path.exists() and "/" not in str(spec) and not str(spec).endswith((".jsonl", ".json")):
        raise AttnvizError(f"no probe set or file {str(spec)!r}; built-in sets: {', '.join(PROBE_SETS)}")
    check_regular_file(path, "a .jsonl file or a built-in set name")  # a FIFO or /dev/zero: refused now
    return path, str(spec)


def read_items(path: str | Path) -> tuple[list[Item], list[Skipped]]:
    """Parse a JSONL file; blank lines are ignored, malformed ones come back as Skipped."""
    text = read_text(path, "a .jsonl file with one item per line")
    items, skipped = [], []
    for number, line in enumerate(LINE_BREAK.split(text), start=1):
        if not line.strip():
            continue
        try:
            items.append(parse_item(line, number))
        except ValueError as exc:
            skipped.append(Skipped(number, str(exc)))
    return items, skipped


@dataclass(frozen=True)
class ItemScore:
    item: Item
    pronoun: Span
    candidates: list[Span]
    weights: np.ndarray  # [L, H, C] word-level attention from the pronoun to each candidate
    nearest: int  # candidate index, NO_WINNER on a distance tie
    farthest: int

    @property
    def picks(self) -> np.ndarray:
        return winners(self.weights)  # [L, H]


def _distance(a: Span, b: Span) -> int:
    if a.end <= b.start:
        return b.start - a.end
    if b.end <= a.start:
        return a.start - b.end
    return 0


def _extreme(distances: list[int], pick: Callable) -> int:
    target = pick(distances)
    return distances.index(target) if distances.count(target) == 1 else NO_WINNER


def resolve_item(result: AttentionResult, item: Item) -> tuple[Span, list[Span]]:
    """The pronoun's and candidates' spans in `result` (AttnvizError when one is not there)."""
    if isinstance(item.pronoun, dict):
        pronoun = pinned_span(result, item.pronoun["text"], item.pronoun["start"], item.pronoun["end"], "pronoun")
    else:
        pronoun = find_span(result, item.pronoun, "pronoun")
    cands = []
    for k, c in enumerate(item.candidates):
        if isinstance(c, dict):
            cands.append(pinned_span(result, c["text"], c["start"], c["end"], f"candidate {k}"))
        else:
            cands.append(find_span(result, c, f"candidate {k}", before=pronoun.start))
    for k, c in enumerate(cands):
        if set(c.units) & set(pronoun.units):
            raise AttnvizError(f"candidate {k} {c.label!r} overlaps the pronoun")
    keys = [tuple(c.units) for c in cands]
    if len(set(keys)) != len(keys):
        raise AttnvizError("two candidates are the same words of the text")
    return pronoun, cands


def score_item(result: AttentionResult, item: Item) -> ItemScore:
    pronoun, cands = resolve_item(result, item)
    weights = result.weights.astype(np.float64)
    scores = np.stack([span_weights(weights, pronoun.units, c.units) for c in cands], axis=-1)  # [L, H, C]
    distances = [_distance(c, pronoun) for c in cands]
    return ItemScore(item, pronoun, cands, scores, _extreme(distances, min), _extreme(distances, max))


def mcnemar_one_sided(wins: int, losses: int) -> float:
    """P(at least `wins` of wins+losses discordant items go the head's way | no difference):
    an exact one-sided McNemar (sign) test."""
    n = wins + losses
    if n == 0:
        return 1.0
    return min(1.0, sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n)


def poisson_binomial_tail(probs: list[float], k: int) -> float:
    """P(at least k successes) for independent trials with success probabilities `probs`."""
    dist = np.zeros(len(probs) + 1)
    dist[0] = 1.0
    for q in probs:
        dist[1:] = dist[1:] * (1 - q) + dist[:-1] * q
        dist[0] *= 1 - q
    return float(min(1.0, dist[k:].sum()))


@dataclass
class ProbeResult:
    layers: list[int]
    heads: list[int]
    scores: list[ItemScore]
    skipped: list[Skipped]
    model: dict = field(default_factory=dict)
    view: str = "attention"
    source: str = ""

    # ---- per item ----
    @property
    def n_items(self) -> int:
        return len(self.scores)

    def right(self) -> np.ndarray:
        """[N, L, H] bool: the head picked the answer."""
        if not self.scores:
            return np.zeros((0, len(self.layers), len(self.heads)), dtype=bool)
        return np.stack([s.picks == s.item.answer for s in self.scores])

    def baseline_right(self, name: str) -> np.ndarray:
        """[N] bool for "nearest" or "farthest"."""
        return np.array([getattr(s, name) == s.item.answer for s in self.scores], dtype=bool)

    # ---- totals ----
    def correct(self) -> np.ndarray:
        return self.right().sum(axis=0)  # [L, H]

    def accuracy(self) -> np.ndarray:
        return self.correct() / max(self.n_items, 1)

    def ties(self) -> np.ndarray:
        if not self.scores:
            return np.zeros((len(self.layers), len(self.heads)), dtype=int)
        return np.stack([s.picks == NO_WINNER for s in self.scores]).sum(axis=0)

    def chance(self) -> float:
        return float(np.mean([1 / len(s.candidates) for s in self.scores])) if self.scores else 0.0

    # ---- per cue ----
    def cues(self) -> list[str]:
        """The cues the scored items carry ("number", "gender", ...), sorted; [] when none do."""
        return sorted({s.item.cue for s in self.scores if s.item.cue is not None})

    def cue_rows(self, cue: str) -> np.ndarray:
        return np.array([s.item.cue == cue for s in self.scores], dtype=bool)  # [N]

    def cue_summary(self) -> dict[str, dict]:
        """Per cue: item count, per-head accuracy [L, H] and the baselines on those items."""
        right = self.right()
        out = {}
        for cue in self.cues():
            rows = self.cue_rows(cue)
            out[cue] = {
                "n_items": int(rows.sum()),
                "accuracy": right[rows].mean(axis=0),
                "baselines": {name: float(self.baseline_right(name)[rows].mean()) for name in ("nearest", "farthest")},
            }
        return out

    # ---- heads that resolve the pronoun ----
    def head_tests(self) -> list[dict]:
        """Every head against both position baselines, item by item: exact one-sided McNemar
        tests, Bonferroni-corrected over the heads. A head "resolves" the pronouns when it beats
        always-nearest and always-farthest, each significantly: a head that prefers a position
        can beat at most one of them."""
        right = self.right()  # [N, L, H]
        acc, n_heads = self.accuracy(), max(right[0].size if len(right) else 0, 1)
        by_cue = self.cue_summary()
        out = []
        for li, layer in enumerate(self.layers):
            for hi, head in enumerate(self.heads):
                entry = {
                    "layer": layer,
                    "head": head,
                    "accuracy": float(acc[li, hi]),
                    "resolves": True,
                    "by_cue": {cue: float(summary["accuracy"][li, hi]) for cue, summary in by_cue.items()},
                }
                for name in ("nearest", "farthest"):
                    base = self.baseline_right(name)
                    wins = int((right[:, li, hi] & ~base).sum())
                    losses = int((~right[:, li, hi] & base).sum())
                    corrected = min(1.0, mcnemar_one_sided(wins, losses) * n_heads)
                    entry[f"p_{name}"] = corrected
                    entry["resolves"] &= bool(acc[li, hi] > base.mean() and corrected < SIGNIFICANCE)
                out.append(entry)
        return out

    # ---- twins ----
    def groups(self) -> list[list[int]]:
        """Item indices of each group with at least two scored items, in order of first appearance."""
        members: dict = {}
        for i, s in enumerate(self.scores):
            if s.item.group is not None:
                members.setdefault((type(s.item.group).__name__, s.item.group), []).append(i)
        return [m for m in members.values() if len(m) >= 2]

    def incomplete_groups(self) -> int:
        members: dict = {}
        for s in self.scores:
            if s.item.group is not None:
                key = (type(s.item.group).__name__, s.item.group)
                members[key] = members.get(key, 0) + 1
        return sum(1 for n in members.values() if n < 2)

    def both_right(self) -> np.ndarray | None:
        """[L, H] share of groups whose twins the head all gets right; None without groups."""
        groups = self.groups()
        if not groups:
            return None
        right = self.right()
        return np.mean([right[g].all(axis=0) for g in groups], axis=0)

    def baseline_both_right(self, name: str) -> float | None:
        groups = self.groups()
        if not groups:
            return None
        right = self.baseline_right(name)
        return float(np.mean([right[g].all() for g in groups]))

    def chance_both_right(self) -> float | None:
        groups = self.groups()
        if not groups:
            return None
        return float(np.mean([np.prod([1 / len(self.scores[i].candidates) for i in g]) for g in groups]))

    def blind_groups(self) -> int:
        """Twin groups a causal model cannot tell apart: every twin's text is the same up to the end of
        its pronoun, and the pronoun sees only itself and what comes before it, so every head gives
        all twins the same weights and, their answers differing, gets at most one right. 0 for an
        encoder."""
        if not self.model.get("config", {}).get("causal"):
            return 0
        return sum(
            1 for g in self.groups() if len({self.scores[i].item.text[: self.scores[i].pronoun.end] for i in g}) == 1
        )

    # ---- ranking and verdict ----
    def best(self, k: int = 10) -> list[dict]:
        acc, correct = self.accuracy(), self.correct()
        both = self.both_right()
        order = sorted(
            ((li, hi) for li in range(len(self.layers)) for hi in range(len(self.heads))),
            key=lambda p: (-correct[p], -(both[p] if both is not None else 0), p),
        )
        base_name, base_right = self.best_baseline()
        right = self.right()
        out = []
        for li, hi in order[:k]:
            wins = int((right[:, li, hi] & ~base_right).sum())
            losses = int((~right[:, li, hi] & base_right).sum())
            p = mcnemar_one_sided(wins, losses)
            entry = {
                "layer": self.layers[li],
                "head": self.heads[hi],
                "accuracy": float(acc[li, hi]),
                "correct": int(correct[li, hi]),
                "vs_baseline": {
                    "baseline": base_name,
                    "wins": wins,
                    "losses": losses,
                    "p": p,
                    "p_corrected": min(1.0, p * acc.size),
                },
            }
            if both is not None:
                entry["both_right"] = float(both[li, hi])
            out.append(entry)
        return out

    def best_baseline(self) -> tuple[str, np.ndarray]:
        near, far = self.baseline_right("nearest"), self.baseline_right("farthest")
        return ("nearest", near) if near.sum() >= far.sum() else ("farthest", far)

    def verdict(self) -> dict:
        """Does any head beat the better of the nearest/farthest baselines beyond what trying
        every head would give by chance? Exact one-sided McNemar test, Bonferroni-corrected over
        the number of heads."""
        if not self.scores:
            return {"beats_baselines": False, "text": "no items could be scored"}
        top = self.best(1)[0]
        base_name, base_right = self.best_baseline()
        base_acc = float(base_right.mean())
        n_heads = len(self.layers) * len(self.heads)
        vs = top["vs_baseline"]
        head = f"layer {top['layer']} head {top['head']}"
        beats = top["accuracy"] > base_acc and vs["p_corrected"] < SIGNIFICANCE
        gap = 100 * (top["accuracy"] - base_acc)
        if beats:
            text = (
                f"Yes: {head} resolves {100 * top['accuracy']:.1f}% of the pronouns against {100 * base_acc:.1f}% "
                f"for always-{base_name}, {gap:+.1f} points, more than trying {n_heads} heads explains "
                f"(McNemar p = {vs['p']:.2g}, Bonferroni-corrected {vs['p_corrected']:.2g})."
            )
        elif top["accuracy"] > base_acc:
            text = (
                f"No head clearly beats the baselines: the best, {head}, gets {100 * top['accuracy']:.1f}% against "
                f"{100 * base_acc:.1f}% for always-{base_name} ({gap:+.1f} points), but with {n_heads} heads "
                f"tried a gap this size is expected by chance (McNemar p = {vs['p']:.2g}, "
                f"Bonferroni-corrected {vs['p_corrected']:.2g})."
            )
        else:
            text = (
                f"No: no head beats always-{base_name} ({100 * base_acc:.1f}%); the best, {head}, gets "
                f"{100 * top['accuracy']:.1f}%."
            )
        out = {
            "beats_baselines": bool(beats),
            "best_head": {"layer": top["layer"], "head": top["head"]},
            "best_accuracy": top["accuracy"],
            "baseline": base_name,
            "baseline_accuracy": base_acc,
            "p": vs["p"],
            "p_corrected": vs["p_corrected"],
            "text": text,
        }
        twins = self.twin_verdict()
        if twins is not None:
            out["twins"] = twins
            out["text"] = f"{text} {twins['text']}"
        return out

    def twin_verdict(self) -> dict | None:
        """The head that gets the most twin groups all right, against chance (a head that picks
        by position or by word gets at most one twin of a pair)."""
        both = self.both_right()
        if both is None:
            return None
        groups = self.groups()
        acc = self.accuracy()
        li, hi = min(
            ((li, hi) for li in range(len(self.layers)) for hi in range(len(self.heads))),
            key=lambda p: (-both[p], -acc[p], p),
        )
        hits = int(round(float(both[li, hi]) * len(groups)))
        probs = [float(np.prod([1 / len(self.scores[i].candidates) for i in g])) for g in groups]
        p = poisson_binomial_tail(probs, hits)
        corrected = min(1.0, p * both.size)
        chance = float(np.mean(probs))
        head = f"layer {self.layers[li]} head {self.heads[hi]}"
        share = f"{100 * both[li, hi]:.1f}% of {len(groups)} twin groups"
        if both[li, hi] > chance and corrected < SIGNIFICANCE:
            text = f"Twins: {head} gets both twins right in {share}, above chance ({100 * chance:.1f}%; corrected p = {corrected:.2g})."
        elif both[li, hi] > chance:
            text = (
                f"Twins: the best, {head}, gets both twins right in {share} against {100 * chance:.1f}% by chance, "
                f"within what {both.size} heads give by luck (corrected p = {corrected:.2g})."
            )
        else:
            text = (
                f"Twins: no head gets both twins right more often than chance ({100 * chance:.1f}%); the best, "
                f"{head}, manages {share}: the heads pick by position or word, not by meaning."
            )
        blind = self.blind_groups()
        if blind:
            text += (
                f" In {blind} of the {len(groups)} groups the twins are the same up to the pronoun, which in a "
                "causal model sees only itself and what comes before it: there every head gives the twins the "
                f"same weights and gets at most one right, so no head can reach more than "
                f"{100 * (len(groups) - blind) / len(groups):.1f}%."
            )
        return {
            "best_head": {"layer": self.layers[li], "head": self.heads[hi]},
            "both_right": float(both[li, hi]),
            "groups": len(groups),
            "blind_groups": blind,
            "chance": chance,
            "p": p,
            "p_corrected": corrected,
            "above_chance": bool(both[li, hi] > chance and corrected < SIGNIFICANCE),
            "text": text,
        }

    def to_dict(self, top: int = 10) -> dict:
        acc = self.accuracy()
        data = {
            "source": self.source,
            "model": self.model,
            "view": self.view,
            "n_items": self.n_items,
            "n_skipped": len(self.skipped),
            "skipped": [{"line": s.line, "reason": s.reason} for s in self.skipped],
            "layers": self.layers,
            "heads": self.heads,
            "accuracy": acc.tolist(),
            "correct": self.correct().tolist(),
            "ties": self.ties().tolist(),
            "baselines": {
                "nearest": float(self.baseline_right("nearest").mean()) if self.scores else 0.0,
                "farthest": float(self.baseline_right("farthest").mean()) if self.scores else 0.0,
                "chance": self.chance(),
            },
            "best": self.best(top),
            "verdict": self.verdict(),
        }
        cues = self.cue_summary()
        if cues:
            data["cues"] = {
                cue: {"n_items": c["n_items"], "accuracy": c["accuracy"].tolist(), "baselines": c["baselines"]}
                for cue, c in cues.items()
            }
            for entry in data["best"]:
                li, hi = self.layers.index(entry["layer"]), self.heads.index(entry["head"])
                entry["by_cue"] = {cue: float(c["accuracy"][li, hi]) for cue, c in cues.items()}
        both = self.both_right()
        if both is not None:
            data["n_groups"] = len(self.groups())
            data["n_incomplete_groups"] = self.incomplete_groups()
            data["both_right"] = both.tolist()
            data["baselines_both_right"] = {
                "nearest": self.baseline_both_right("nearest"),
                "farthest": self.baseline_both_right("farthest"),
                "chance": self.chance_both_right(),
            }
        return data


def run_probe(
    items: Iterable[Item],
    attention: Callable[[list[str]], list],
    skipped: list[Skipped] | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 64,
) -> ProbeResult:
    """Score every item. `attention(texts)` returns, per text, an AttentionResult (token or word
    level) or the AttnvizError that text raised (pipeline.run_attention_batch does).

    Items whose text cannot be run (too long) or whose spans cannot be found are skipped with
    their line number and reason. `progress(n)` is called after every `chunk` items.
    """
    items = list(items)
    skipped = list(skipped or [])
    scores: list[ItemScore] = []
    layers = heads = None
    info, view = {}, "attention"
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        for item, result in zip(part, attention([it.text for it in part])):
            try:
                if isinstance(result, AttnvizError):
                    raise result
                score = score_item(result, item)
            except AttnvizError as exc:
                skipped.append(Skipped(item.line, str(exc)))
                continue
            if layers is None:
                layers, heads = list(result.layers), list(result.heads)
                info, view = result.model.to_dict(), result.view
            scores.append(score)
        if progress is not None:
            progress(len(part))
    skipped.sort(key=lambda s: s.line)
    return ProbeResult(layers or [], heads or [], scores, skipped, info, view)
