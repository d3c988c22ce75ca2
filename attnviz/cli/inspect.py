"""`attnviz inspect MODEL`: config, parameter counts, and what every head does over a probe set."""

from __future__ import annotations

import enum
import sys
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
    """Attention of every probe sentence (truncated to the model's maximum), then head profiles."""
    from rich.console import Console
    from rich.progress import Progress

    from ..analysis.heads import profile_heads
    from ..pipeline import run_attention

    results = []
    with Progress(transient=True, disable=not sys.stderr.isatty(), console=Console(stderr=True)) as progress:
        task = progress.add_task(label, total=len(texts))
        for text in texts:
            results.append(run_attention(loaded, text, truncate=True))
            progress.advance(task)
    truncated = sum(r.truncated for r in results)
    return profile_heads(results), truncated


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
    from ..analysis.heads import SORT_COLUMNS, deltas, sort_profiles
    from ..analysis.params import parameter_counts
    from ..checkpoints.lazy_rows import weight_shapes

    if sort not in SORT_COLUMNS:  # before loading anything
        raise AttnvizError(f"unknown sort column {sort!r}; choose one of: {', '.join(SORT_COLUMNS)}")
    out.check()
    texts, probe = probe_texts(text, file)
    if pronouns:
        from ..analysis.probe import resolve_probe_file

        resolve_probe_file(pronoun_set)  # a bad set name fails before the model loads

    loaded = models.build(model)
    from ..engines import require_native

    require_native(loaded, "inspect (parameter counts, the random baseline)")
    params = parameter_counts(weight_shapes(loaded.encoder), loaded.config.num_layers)
    report, truncated = profile_texts(loaded, texts, "profiling heads")

    base = delta = base_sequences = None
    base_info = None
    # Decoders: induction, duplicate-token and previous-token heads on repeated random tokens.
    sequences = sequence_probe(loaded) if loaded.config.causal else None
    if baseline:
        from ..checkpoints import random_model

        bseed = baseline_seed if baseline_seed is not None else models.seed + (loaded.info.kind == "random")
        base_model = random_model(loaded.config, bseed, loaded.tokenizer)
        base_info = base_model.info
        base, _ = profile_texts(base_model, texts, "profiling the random baseline")
        base_sequences = sequence_probe(base_model) if loaded.config.causal else None
        delta = deltas(report, base)
    profiles = sort_profiles(report.profiles, sort, reverse, delta)
    pronoun_heads = None
    if pronouns:
        from ..pronoun_heads import find

        pronoun_heads, _ = find(loaded, pronoun_set)

    if fmt is Format.json:
        payload = {
            "model": loaded.info.to_dict(),
            "parameters": params.to_dict(),
            "probe": {"source": probe, "texts": texts, "truncated": truncated},
            "sort": {"column": sort, "reverse": reverse},
            "heads": {**report.to_dict(), "profiles": [_with_pronoun(p.to_dict(), pronoun_heads) for p in profiles]},
            "sequences": None
            if sequences is None
            else {**sequences.to_dict(), "baseline": None if base_sequences is None else base_sequences.to_dict()},
            "pronoun": None
            if pronoun_heads is None
            else {**pronoun_heads.to_dict(), "resolving": [(h["layer"], h["head"]) for h in pronoun_heads.resolving()]},
            "baseline": None
            if base is None
            else {
                "model": base_info.to_dict(),
                "heads": base.to_dict(),
                "delta": [
                    {
                        "layer": p.layer,
                        "head": p.head,
                        "stats": {k: (None if v != v else round(v, 6)) for k, v in delta[(p.layer, p.head)].items()},
                    }
                    for p in profiles
                ],
            },
        }
        out.emit(json_text(payload, indent=1))
        return

    from ..render.inspect_view import render_heads, render_model

    with out.console(width=120) as console:
        render_model(console, loaded.info, params)
        if truncated:
            console.print(
                f"[yellow]{truncated} probe sentence(s) were cut to the model's {loaded.config.max_len} tokens.[/]"
            )
        render_heads(console, report, profiles, sort, probe, base, delta)
        if sequences is not None:
            from ..render.inspect_view import render_sequence_roles

            render_sequence_roles(console, sequences, base_sequences)
        if pronoun_heads is not None:
            from ..render.inspect_view import render_pronoun_heads

            render_pronoun_heads(console, pronoun_heads, len(report.profiles))


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
