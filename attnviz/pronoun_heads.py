"""Which heads resolve pronouns: found with a probe set, remembered per model in the user's cache.

A head "resolves" pronouns when, on the probe set (by default `agreement`: pronouns decided by
number or gender alone), it picks the right antecedent significantly more often than both
position baselines, always-nearest and always-farthest (exact one-sided McNemar tests,
Bonferroni-corrected over the heads; see analysis.probe.ProbeResult.head_tests).

Results are cached in `$ATTNVIZ_CACHE_DIR`, else `$XDG_CACHE_HOME/attnviz`, else `~/.cache/attnviz`,
under a key made of the model's content (config, tokenizer and every weight tensor) and the probe
set's bytes, so a changed checkpoint or a changed set never meets stale results. A cache file that
cannot be read is ignored with a note.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .analysis.probe import ProbeResult, read_items, resolve_probe_file, run_probe
from .checkpoints import LoadedModel
from .engines import engine_of
from .errors import AttnvizError
from .files import atomic_write
from .reading import JSON_LIMIT, TEXT_LIMIT, JSONLimitError, parse_json, read_bytes

DEFAULT_SET = "agreement"
CACHE_VERSION = 1


@dataclass(frozen=True)
class PronounHeads:
    """Every head's score on a probe set, and which of them resolve pronouns."""

    probe_set: str
    n_items: int
    baselines: dict  # "nearest", "farthest", "chance": accuracies
    heads: list[dict]  # per head: layer, head, accuracy, by_cue, p_nearest, p_farthest, resolves
    notes: list[str] = field(default_factory=list, compare=False)
    # `probe coref --causal`: {"n_items", "mode", "accuracy", "heads": [{layer, head, mean_effect, p,
    # confirmed}]} (analysis.causal_probe.CausalProbe.summary); None until such a run. Optional in
    # the cache file, so entries written before it still read.
    causal: dict | None = None

    def causally_confirmed(self) -> set[tuple[int, int]]:
        """The heads whose ablation hurts the readout significantly (empty without a causal run)."""
        if not self.causal:
            return set()
        return {(h["layer"], h["head"]) for h in self.causal["heads"] if h["confirmed"]}

    def resolving(self) -> list[dict]:
        """The heads that resolve pronouns, best first."""
        return sorted((h for h in self.heads if h["resolves"]), key=lambda h: (-h["accuracy"], h["layer"], h["head"]))

    def lookup(self, layer: int, head: int) -> dict | None:
        for entry in self.heads:
            if entry["layer"] == layer and entry["head"] == head:
                return entry
        return None

    def to_dict(self) -> dict:
        data = {"probe_set": self.probe_set, "n_items": self.n_items, "baselines": self.baselines, "heads": self.heads}
        if self.causal is not None:
            data["causal"] = self.causal
        return data

    @classmethod
    def from_probe(cls, probe: ProbeResult, probe_set: str) -> "PronounHeads":
        baselines = {name: float(probe.baseline_right(name).mean()) for name in ("nearest", "farthest")}
        return cls(probe_set, probe.n_items, {**baselines, "chance": probe.chance()}, probe.head_tests())


def cache_dir() -> Path:
    if os.environ.get("ATTNVIZ_CACHE_DIR"):
        return Path(os.environ["ATTNVIZ_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attnviz"


def fingerprint(model: LoadedModel) -> str | None:
    """sha256 over what decides the attention: the config, the tokenizer and every weight tensor
    (name, shape, dtype and bytes); None when that cannot be known (below).

    Hashing every tensor costs about 50 ms for MiniLM's 90 MB and half a second for SmolLM2's
    540 MB, on every `show`. So, for a model read from files and unchanged since
    (`LoadedModel.unchanged_since_load`), the weights' digest is remembered in the cache folder
    under the files' identity (path, size, modification and change times, inode: any write changes
    one) and the dtype, and read back next time. A model loaded up to `last_layer` lacks tensors:
    it can only be matched through that memory (a whole load of the same files wrote it), else
    its fingerprint is unknown and nothing is cached for it."""
    if engine_of(model) != "native":
        return None  # a model run by transformers (engines/): its heads are not remembered
    weights = _weights_digest(model)
    if weights is None:
        return None
    digest = hashlib.sha256()
    digest.update(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    digest.update(model.tokenizer.to_str().encode())
    digest.update(weights.encode())
    return digest.hexdigest()


def _weights_digest(model: LoadedModel) -> str | None:
    import torch

    memo = None
    if model.unchanged_since_load():
        first = next(model.encoder.parameters(), None)
        identity = ";".join(_file_identity(Path(p)) for p in model.sources) + f";{getattr(first, 'dtype', None)}"
        memo = cache_dir() / "weight-digests" / hashlib.sha256(identity.encode()).hexdigest()[:32]
        try:
            known = read_bytes(memo, "a digest", 1024).decode("ascii").strip()
            if len(known) == 64:
                return known
        except (OSError, ValueError):  # AttnvizError and UnicodeDecodeError are ValueErrors
            pass  # not remembered yet, or unreadable: compute it
    if model.built_layers < model.config.num_layers:
        return None
    digest = hashlib.sha256()
    for name, tensor in model.encoder.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(memoryview(tensor.view(torch.uint8).reshape(-1).numpy()))
    if memo is not None:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(memo, digest.hexdigest(), overwrite=True, links="replace")
        except (OSError, AttnvizError):
            pass  # a memory that cannot be written costs time, never correctness
    return digest.hexdigest()


def _file_identity(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


def _cache_path(model: LoadedModel, probe_file: Path) -> Path | None:
    """Where the entry of `model` on `probe_file` lives; None when the model's content is unknown."""
    weights = fingerprint(model)
    if weights is None:
        return None
    key = hashlib.sha256(
        f"{weights}:{hashlib.sha256(read_bytes(probe_file, 'a .jsonl probe file', TEXT_LIMIT)).hexdigest()}".encode()
    )
    return cache_dir() / "pronoun-heads" / f"{key.hexdigest()[:32]}.json"


def cached(model: LoadedModel, probe_set: str = DEFAULT_SET) -> PronounHeads | None:
    """The cached pronoun heads of `model` on `probe_set`, or None (unknown). A corrupt entry is
    ignored: the result then carries a note saying so."""
    probe_file, name = resolve_probe_file(probe_set)
    path = _cache_path(model, probe_file)
    if path is None or not path.exists():
        return None
    try:
        data = parse_json(read_bytes(path, "a cache entry", JSON_LIMIT))  # AttnvizError: a ValueError
        if isinstance(data, dict) and data.get("version") != CACHE_VERSION:
            return None
        return checked_entry(data, model.config.num_layers, model.config.num_heads)
    except (CorruptEntry, JSONLimitError) as exc:  # their text says what is wrong
        note = f"ignored a corrupt pronoun-heads cache file {path} ({exc}); recomputing is safe"
    except (OSError, ValueError) as exc:
        note = f"ignored a corrupt pronoun-heads cache file {path} ({type(exc).__name__}); recomputing is safe"
    return PronounHeads(name, 0, {}, [], notes=[note])


class CorruptEntry(ValueError):
    """A cache entry that parses but is not what `store` writes: its values cannot be trusted."""


def _share(value, what: str) -> float:
    """`value` as a share in [0, 1] (accuracies and p-values); anything else is a CorruptEntry."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        # `not 0 <= nan <= 1` holds too: NaN is refused here
        raise CorruptEntry(f"{what} is {str(value)[:20]!r}, not a number from 0 to 1")
    return float(value)


def _index(value, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise CorruptEntry(f"{what} is {str(value)[:20]!r}, not 0-{size - 1} for this model")
    return value


def checked_entry(data, num_layers: int, num_heads: int) -> PronounHeads:
    """A parsed cache entry as PronounHeads, every value checked as `store` writes it (types,
    shares within 0..1, layer and head indices within the model, one entry per head, the same cues
    everywhere): a file damaged or edited by hand must not put `★ nan%` in a table or crash one.
    Raises CorruptEntry with the first thing wrong."""
    if not isinstance(data, dict):
        raise CorruptEntry("not a JSON object")
    probe_set, n_items, baselines, heads = (data.get(k) for k in ("probe_set", "n_items", "baselines", "heads"))
    if not isinstance(probe_set, str) or not probe_set:
        raise CorruptEntry("probe_set is not a name")
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise CorruptEntry("n_items is not a positive integer")
    if not isinstance(baselines, dict) or not {"nearest", "farthest", "chance"} <= baselines.keys():
        raise CorruptEntry("baselines lack nearest, farthest or chance")
    baselines = {str(k): _share(v, f"baseline {k}") for k, v in baselines.items()}
    if not isinstance(heads, list):
        raise CorruptEntry("heads is not a list")
    checked, seen, cues = [], set(), None
    for entry in heads:
        if not isinstance(entry, dict):
            raise CorruptEntry("a head entry is not an object")
        layer = _index(entry.get("layer"), num_layers, "layer")
        head = _index(entry.get("head"), num_heads, "head")
        where = f"layer {layer} head {head}"
        if (layer, head) in seen:
            raise CorruptEntry(f"{where} is listed twice")
        seen.add((layer, head))
        if not isinstance(entry.get("resolves"), bool):
            raise CorruptEntry(f"{where}: resolves is not true or false")
        by_cue = entry.get("by_cue")
        if not isinstance(by_cue, dict) or (cues is not None and by_cue.keys() != cues):
            raise CorruptEntry(f"{where}: by_cue is not an object with the same cues as the other heads")
        cues = by_cue.keys()
        # The keys in analysis.probe.head_tests' order: output read from the cache has the same bytes.
        checked.append(
            {
                "layer": layer,
                "head": head,
                "accuracy": _share(entry.get("accuracy"), f"{where} accuracy"),
                "resolves": entry["resolves"],
                "by_cue": {str(c): _share(v, f"{where} cue {c} accuracy") for c, v in by_cue.items()},
                **{k: _share(entry.get(k), f"{where} {k}") for k in ("p_nearest", "p_farthest")},
            }
        )
    causal = _checked_causal(data.get("causal"), num_layers, num_heads)
    return PronounHeads(probe_set, n_items, baselines, checked, causal=causal)


def _checked_causal(causal, num_layers: int, num_heads: int) -> dict | None:
    """The optional causal part of an entry (see PronounHeads.causal), checked like the rest."""
    if causal is None:
        return None
    if not isinstance(causal, dict) or not isinstance(causal.get("heads"), list):
        raise CorruptEntry("causal is not an object with a list of heads")
    n = causal.get("n_items")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or not isinstance(causal.get("mode"), str):
        raise CorruptEntry("causal lacks n_items or mode")
    heads = []
    for entry in causal["heads"]:
        if not isinstance(entry, dict):
            raise CorruptEntry("a causal head entry is not an object")
        layer = _index(entry.get("layer"), num_layers, "causal layer")
        head = _index(entry.get("head"), num_heads, "causal head")
        effect = entry.get("mean_effect")
        if isinstance(effect, bool) or not isinstance(effect, (int, float)) or effect != effect:
            raise CorruptEntry(f"causal layer {layer} head {head}: mean_effect is not a number")
        if not isinstance(entry.get("confirmed"), bool):
            raise CorruptEntry(f"causal layer {layer} head {head}: confirmed is not true or false")
        p = _share(entry.get("p"), f"causal layer {layer} head {head} p")
        heads.append(
            {"layer": layer, "head": head, "mean_effect": float(effect), "p": p, "confirmed": entry["confirmed"]}
        )
    return {
        "n_items": n,
        "mode": causal["mode"],
        "accuracy": _share(causal.get("accuracy", 0.0), "causal accuracy"),
        "heads": heads,
    }


def store(model: LoadedModel, heads: PronounHeads, probe_set: str = DEFAULT_SET) -> Path | None:
    """Remember `heads` for `model`; a cache that cannot be written is not an error (None)."""
    probe_file, _ = resolve_probe_file(probe_set)
    path = _cache_path(model, probe_file)
    if path is None:
        return None
    if heads.causal is None:  # an attention-only rerun keeps what a causal run found
        known = cached(model, probe_set)
        if known is not None and known.causal is not None and known.n_items == heads.n_items:
            heads = dataclasses.replace(heads, causal=known.causal)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"version": CACHE_VERSION, **heads.to_dict()}), overwrite=True, links="replace")
    except (OSError, AttnvizError):
        return None
    return path


def find(
    model: LoadedModel, probe_set: str = DEFAULT_SET, *, use_cache: bool = True, progress=None
) -> tuple[PronounHeads, ProbeResult | None]:
    """The pronoun heads of `model`: from the cache, or by running the probe set (then cached).
    Returns the heads and the probe result (None when they came from the cache)."""
    from .pipeline import run_attention_batch

    if use_cache:
        known = cached(model, probe_set)
        if known is not None and known.heads:
            return known, None
    probe_file, name = resolve_probe_file(probe_set)
    items, skipped = read_items(probe_file)
    result = run_probe(
        items, lambda texts: run_attention_batch(model, texts, truncate=True), skipped, progress=progress
    )
    result.source = name
    if not result.n_items:
        raise AttnvizError(f"no item of the probe set {name!r} could be scored with this model")
    heads = PronounHeads.from_probe(result, name)
    store(model, heads, probe_set)
    return heads, result
