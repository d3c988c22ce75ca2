"""`attnviz inspect MODEL`: config, parameter counts, and what every head does over a probe set."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Annotated, Optional

import typer

from ..text import json_text
from ..errors import AttnvizError
from .common import ModelFlags, OutputFlags, handles_errors, model_flags, output_flags

SORT_HELP = (
    "Order the table by: layer, head, role, score, entropy, confidence, distance, self, prev, "
    "next, special, first, punct, local. Statistics sort largest first (by the difference "
    "from the random model with --baseline)."
)


class Format(str, enum.Enum):
    table = "table"
    json = "json"


def probe_texts(text: list[str] | None, files: list[str] | None) -> tuple[list[str], str]:
    """The probe sentences and a description of where they came from."""
    from ..samples import default_probe_sentences, read_sentences, resolve_text_file

    texts = [t.strip() for t in text or []]
    if any(not t for t in texts):
        raise AttnvizError("--text is empty; give a sentence")
    sources = ["--text"] if texts else []
    for spec in files or []:
        path = spec if spec == "-" else resolve_text_file(spec)
        texts += read_sentences(path)
        sources.append("standard input" if spec == "-" else str(path))
    if not texts:
        return default_probe_sentences(), "the sample sentences"
    return texts, ", ".join(sources)


def profile_texts(loaded, texts: list[str], label: str):
    """Attention of every probe sentence (truncated to the model's maximum), then head profiles.

    Sentences run in padded batches (pipeline.run_attention_batch) and are measured as they come,
    so 100,000 sentences hold one batch of attention maps at a time, not all of them; a long
    text is measured while its maps stream past and keeps none (pipeline.run_for_head_stats)."""
    from ..analysis.heads import profile_heads
    from ..pipeline import run_for_head_stats
    from .progress import progress

    truncated = 0

    def results(advance):
        nonlocal truncated
        for start in range(0, len(texts), BATCH):
            for result in run_for_head_stats(loaded, texts[start : start + BATCH], truncate=True):
                if isinstance(result, AttnvizError):
                    raise result
                truncated += result.truncated
                yield result
            advance(len(texts[start : start + BATCH]))

    with progress(label, len(texts)) as advance:
        report = profile_heads(results(advance))
    return report, truncated


BATCH = 64  # sentences per call of run_for_head_stats (which pads the short ones into batches of 32)


@handles_errors
@model_flags(model_option=False)
@output_flags()
def inspect(
    model: Annotated[
        str,
        typer.Argument(metavar="MODEL", help="'random', a checkpoint folder or file, or a named model such as minilm."),
    ] = "random",
    text: Annotated[
        Optional[list[str]],
        typer.Option(
            "--text",
            "-t",
            metavar="TEXT",
            help="A probe sentence; repeat for several. Default: the sentences shipped in sample_texts/.",
        ),
    ] = None,
    file: Annotated[
        Optional[list[str]],
        typer.Option(
            "--file",
            metavar="FILE",
            help="A text file of probe sentences, one per line (# comments skipped), '-' for standard input, or a sample name (classic, winograd, ambiguous_words, korean); repeatable.",
        ),
    ] = None,
    sort: Annotated[str, typer.Option("--sort", metavar="COLUMN", help=SORT_HELP)] = "layer",
    reverse: Annotated[bool, typer.Option("--reverse", help="Reverse the --sort order.")] = False,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline",
            help="Also profile a random model of the same shape and show each statistic as the difference from it, to tell learned heads from architectural ones.",
        ),
    ] = False,
    baseline_seed: Annotated[
        Optional[int],
        typer.Option(
            "--baseline-seed",
            min=0,
            help="Seed of the --baseline model [default: --seed, plus one when MODEL is random].",
        ),
    ] = None,
    pronouns: Annotated[
        bool,
        typer.Option(
            "--pronouns/--no-pronouns",
            help="Find the heads that resolve pronouns on --pronoun-set (cached per model; see 'attnviz probe coref').",
        ),
    ] = True,
    pronoun_set: Annotated[
        str,
        typer.Option(
            "--pronoun-set",
            metavar="SET_OR_FILE",
            help="The probe set for the pronoun role: agreement (number and gender cues), winograd, or a JSONL file.",
        ),
    ] = "agreement",
    fmt: Annotated[
        Format, typer.Option("--format", help="table: rich tables; json: one object on stdout or --output.")
    ] = Format.table,
    out: OutputFlags = OutputFlags(),
    models: ModelFlags = ModelFlags(),
) -> None:
    """Describe a model and what each of its heads does.

    Prints the config, parameter counts per part, then per-head statistics over a probe set (the
    shipped sample sentences unless --text/--file give others), averaged over the query rows of
    real (non-special) tokens: normalised entropy (1 = uniform), confidence (mean largest
    weight), distance (mean tokens from query to key), and the share of attention to the token
    itself, the previous and next token, special tokens, the first token, punctuation, and the
    local window (self + neighbours).

    Each head gets a role: 'previous token', 'next token', 'self', 'special-token sink',
    'first-token sink' or 'punctuation' when that share is at least half-way from uniform
    attention (1/T per token, so the bar scales with sentence length T) to all the weight;
    otherwise 'local' (the window likewise), 'broad' (entropy >= 0.85), 'focused' (sharp on one
    word chosen by content), or 'mixed'.

    Example: attnviz inspect minilm --sort prev --baseline
    """
    from ..analysis.heads import SORT_COLUMNS, sort_profiles

    if sort not in SORT_COLUMNS:  # before loading anything
        raise AttnvizError(f"unknown sort column {sort!r}; choose one of: {', '.join(SORT_COLUMNS)}")
    out.check()
    texts, probe = probe_texts(text, file)
    if pronouns:
        from ..analysis.probe import resolve_probe_file

        resolve_probe_file(pronoun_set)  # a bad set name fails before the model loads

    _check_plan(models, model, texts, baseline)
    loaded = models.build(model)
    from ..engines import require_native

    require_native(loaded, "inspect (parameter counts, the random baseline)")
    found = _profile(loaded, texts, baseline, baseline_seed, models.seed)
    found.probe = probe
    found.profiles = sort_profiles(found.report.profiles, sort, reverse, found.delta)
    if pronouns:
        from ..pronoun_heads import find

        found.pronoun_heads, _ = find(loaded, pronoun_set)

    if fmt is Format.json:
        out.emit(json_text(_payload(found, texts, sort, reverse), indent=1))
    else:
        _render_tables(found, out, sort)


SHORT_TEXT_BYTES = 1024  # probe sentences no longer than this are never refused for their maps


def _check_plan(models: ModelFlags, model: str, texts: list[str], baseline: bool) -> None:
    """Refuse, before the model loads, probe texts whose measuring would not fit in memory; only
    short texts keep maps (sizes.check_inspect_plan). Sentences are not worth a second tokenizer."""
    if all(len(t.encode("utf-8", "replace")) <= SHORT_TEXT_BYTES for t in texts):
        return
    from ..checkpoints import peek_model
    from ..sizes import check_inspect_plan, memory_limit, model_bytes

    config = models.shape.config() if model == "random" else None
    peeked = peek_model(model, config=config, tokenizer=str(models.tokenizer) if models.tokenizer else None)
    if peeked is None:
        return  # the load says what is wrong; the pipeline checks each pass again
    config, tokenizer = peeked
    if model_bytes(config) > memory_limit()[0]:
        return  # the model alone does not fit: the loader refuses it, naming the flag or key
    lengths = [len(tokenizer.encode(t, max_len=config.max_len, truncate=True).ids) for t in texts]
    check_inspect_plan(config, lengths, 2 if baseline else 1)


@dataclass
class _Inspection:
    """What inspect found: the model, its parameters and head profiles, and the optional parts."""

    loaded: object
    params: object  # analysis.params counts
    report: object  # analysis.heads report over the probe texts
    truncated: int
    sequences: object = None  # decoders: analysis.sequence_roles scores
    base: object = None  # --baseline: the random model's report ...
    base_info: object = None
    base_sequences: object = None
    delta: dict | None = None  # ... and each statistic's difference from it
    probe: str = ""
    profiles: list = field(default_factory=list)  # sorted for display
    pronoun_heads: object = None


def _profile(loaded, texts: list[str], baseline: bool, baseline_seed: int | None, seed: int) -> _Inspection:
    """Parameter counts and head profiles of `loaded` (and of its random baseline with --baseline)."""
    from ..analysis.heads import deltas
    from ..analysis.params import parameter_counts
    from ..checkpoints.lazy_rows import weight_shapes

    params = parameter_counts(weight_shapes(loaded.encoder), loaded.config.num_layers)
    report, truncated = profile_texts(loaded, texts, "profiling heads")
    found = _Inspection(loaded, params, report, truncated)
    # Decoders: induction, duplicate-token and previous-token heads on repeated random tokens.
    found.sequences = sequence_probe(loaded) if loaded.config.causal else None
    if baseline:
        from ..checkpoints import random_model

        bseed = baseline_seed if baseline_seed is not None else seed + (loaded.info.kind == "random")
        base_model = random_model(loaded.config, bseed, loaded.tokenizer)
        found.base_info = base_model.info
        found.base, _ = profile_texts(base_model, texts, "profiling the random baseline")
        found.base_sequences = sequence_probe(base_model) if loaded.config.causal else None
        found.delta = deltas(report, found.base)
    return found


def _payload(found: _Inspection, texts: list[str], sort: str, reverse: bool) -> dict:
    """inspect --format json."""
    pronoun_heads, sequences, base = found.pronoun_heads, found.sequences, found.base
    return {
        "model": found.loaded.info.to_dict(),
        "parameters": found.params.to_dict(),
        "probe": {"source": found.probe, "texts": texts, "truncated": found.truncated},
        "sort": {"column": sort, "reverse": reverse},
        "heads": {
            **found.report.to_dict(),
            "profiles": [_with_pronoun(p.to_dict(), pronoun_heads) for p in found.profiles],
        },
        "sequences": None
        if sequences is None
        else {
            **sequences.to_dict(),
            "baseline": None if found.base_sequences is None else found.base_sequences.to_dict(),
        },
        "pronoun": None
        if pronoun_heads is None
        else {**pronoun_heads.to_dict(), "resolving": [(h["layer"], h["head"]) for h in pronoun_heads.resolving()]},
        "baseline": None
        if base is None
        else {"model": found.base_info.to_dict(), "heads": base.to_dict(), "delta": _delta_rows(found)},
    }


def _delta_rows(found: _Inspection) -> list[dict]:
    return [
        {
            "layer": p.layer,
            "head": p.head,
            "stats": {k: (None if v != v else round(v, 6)) for k, v in found.delta[(p.layer, p.head)].items()},
        }
        for p in found.profiles
    ]


def _render_tables(found: _Inspection, out: OutputFlags, sort: str) -> None:
    from ..render.inspect_view import render_heads, render_model, render_pronoun_heads, render_sequence_roles

    loaded = found.loaded
    with out.console(width=120) as console:
        render_model(console, loaded.info, found.params)
        if found.truncated:
            console.print(
                f"[yellow]{found.truncated} probe sentence(s) were cut to the model's {loaded.config.max_len} tokens.[/]"
            )
        render_heads(console, found.report, found.profiles, sort, found.probe, found.base, found.delta)
        if found.sequences is not None:
            render_sequence_roles(console, found.sequences, found.base_sequences)
        if found.pronoun_heads is not None:
            render_pronoun_heads(console, found.pronoun_heads, len(found.report.profiles))


# Repeated random tokens: SEQUENCES texts of SEQUENCE_LENGTH words, each repeated once.
SEQUENCES, SEQUENCE_LENGTH = 8, 20


def sequence_probe(loaded):
    """Induction, duplicate-token and previous-token scores of every head (analysis.sequence_roles)."""
    from ..analysis.sequence_roles import sequence_scores
    from ..pipeline import run_attention

    n = min(SEQUENCE_LENGTH, max(2, (loaded.config.max_len - 4) // 2))
    texts = [loaded.tokenizer.repeated_random_words(n, seed) for seed in range(SEQUENCES)]
    return sequence_scores([run_attention(loaded, text) for text in texts], n)


def _with_pronoun(profile: dict, pronoun_heads) -> dict:
    """A head's JSON profile with its accuracy on the pronoun probe set (None when not run)."""
    entry = pronoun_heads.lookup(profile["layer"], profile["head"]) if pronoun_heads is not None else None
    profile["pronoun_accuracy"] = None if entry is None else entry["accuracy"]
    profile["pronoun_by_cue"] = None if entry is None else entry["by_cue"]
    profile["pronoun"] = bool(entry and entry["resolves"])
    return profile
