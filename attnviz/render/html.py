"""One self-contained, offline HTML page that explores a result interactively.

The page is a single file: the data (JSON in a non-executed `<script type="application/json">`),
the script and the style all inline, read from `html_assets/view.js` and `view.css`. A
Content-Security-Policy meta tag forbids every network access (no connect-src, no remote
scripts, styles, images or fonts) and allows exactly one script: ours, by its sha256 hash. So the
same bytes work opened from disk, from a web server and inside a notebook's sandboxed iframe.

Weights are stored quantised to keep pages small: per view and unit level, an integer
0..2^bits-1 times that block's scale (its largest weight), little-endian, base64. Small pages use
16 bits, large ones 8 (the page says which); exact values stay available through
`attnviz show --format json`.

Pure NumPy on result objects; the analysis (word level, focus, candidates) runs here in Python so
the page shows exactly what the terminal shows.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import numpy as np

from ..result import KIND_NAMES, AttentionResult
from .html_page import asset, page_script, hangul_font_css, script_json, zero_runs

LONG_FROM = 512  # tokens: longer texts get the page of html_long.py

FORMAT = "attnviz-html/1"
# Up to this many stored values in the whole page (every view and level), weights keep 16 bits;
# past it 8 bits halve the size (a 128-token MiniLM page: ~2.5 MB instead of ~5 MB).
MAX_16BIT_VALUES = 400_000
# The head view draws every line of at least this strength (weight / colour-scale maximum) ...
MIN_LINE = 0.02
# ... and, for sentences longer than this, only each query's TOP_K strongest lines per head, so
# that a long sentence stays responsive (128 tokens x 12 heads would be 196,608 lines).
TOP_K_FROM = 40
TOP_K = 5
# Heads with a coloured line each in the head view; more heads cycle through the colours.
HEAD_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#ad494a",
)
# Views whose rows sum to one: their colour scale is 0-1, as in the images.
UNIT_VIEWS = ("attention", "rollout")


# Characters the shipped Hangul font covers (see data/fonts/build_hangul_font.py).
def quantise(weights: np.ndarray, bits: int) -> tuple[float, str]:
    """(scale, base64 of the zero-run-encoded levels): weight ~= level / (2^bits - 1) * scale.
    bits 32: the float32 weights themselves, little-endian (scale 1, exact; small pages only).

    Levels are little-endian uint8 or uint16 units. Most attention weights are near zero, so a
    run of n zero levels is stored as the two units (0, n) (n at most the unit's maximum; longer
    runs take several pairs): for MiniLM at 128 tokens this halves the page, and unlike deflate
    it needs no asynchronous decoder in the page and gives the same bytes with every zlib.
    """
    if bits == 32:
        return 1.0, base64.b64encode(np.ascontiguousarray(weights, dtype="<f4").tobytes()).decode("ascii")
    top = float(weights.max()) if weights.size else 0.0
    scale = top if top > 0 else 1.0
    top_level = 2**bits - 1
    levels = np.rint(weights.astype(np.float64).ravel() / scale * top_level).astype(np.int64)
    raw = zero_runs(levels, top_level).astype("<u2" if bits == 16 else "u1").tobytes()
    return scale, base64.b64encode(raw).decode("ascii")


def dequantise(scale: float, b64: str, bits: int, count: int) -> np.ndarray:
    """The inverse of `quantise` (`count` values), computed as the page's script does: level * (scale / max)."""
    if bits == 32:
        values = np.frombuffer(base64.b64decode(b64), dtype="<f4").astype(np.float64)
        if values.size != count:
            raise ValueError(f"decoded {values.size} values, expected {count}")
        return values
    units = np.frombuffer(base64.b64decode(b64), dtype="<u2" if bits == 16 else "u1").astype(np.int64)
    levels = np.zeros(count, dtype=np.int64)
    i = o = 0
    # A plain loop is fine for tests; the page decodes the same way.
    zeros = np.flatnonzero(units == 0)
    for z in zeros:
        if z < i:
            continue  # this zero was a run length
        n = z - i
        levels[o : o + n] = units[i:z]
        o += n
        o += int(units[z + 1])
        i = z + 2
    levels[o : o + len(units) - i] = units[i:]
    o += len(units) - i
    if o != count:
        raise ValueError(f"decoded {o} values, expected {count}")
    return levels.astype(np.float64) * (scale / (2**bits - 1))


@dataclass(frozen=True)
class _Level:
    result: AttentionResult  # the attention view at this level (tokens or words)
    groups: list[list[int]]  # token indices of each unit (tokens: one each)


def _levels(result: AttentionResult) -> dict[str, _Level]:
    from ..analysis.words import to_words, word_groups

    if result.units == "words":  # already merged: the token level is gone
        return {"words": _Level(result, [[i] for i in range(len(result.tokens))])}
    if result.attention != "self":  # an encoder-decoder's kinds: token level (the switch keeps one level)
        return {"tokens": _Level(result, [[i] for i in range(len(result.tokens))])}
    return {
        "tokens": _Level(result, [[i] for i in range(len(result.tokens))]),
        "words": _Level(to_words(result), word_groups(result)),
    }


def _focus_at(token_focus: int | None, groups: list[list[int]]) -> int | None:
    """The unit holding token `token_focus` (a word holds its pieces)."""
    if token_focus is None:
        return None
    return next(u for u, group in enumerate(groups) if token_focus in group)


def page_data(
    results: dict[str, AttentionResult],
    *,
    focus: str | None = None,
    candidates: list[str] | None = None,
    level: str | None = None,
    bits: int | None = None,
    exclude_sinks: bool | None = None,
    pronoun_heads: dict | None = None,
    open_on_focus: bool = False,
) -> dict:
    """The JSON the page's script reads. `results`: view name -> result of one text (same tokens),
    "attention" first. See `render_html`."""
    from ..analysis.focus import find_pronoun, resolve_focus

    first = next(iter(results.values()))
    per_view = {name: _levels(r) for name, r in results.items()}
    base = per_view[next(iter(per_view))]
    level_names = list(base)
    # The focus: resolved at the finest level there is, then mapped onto each level's unit.
    finest = base[level_names[0]].result
    found = resolve_focus(finest, focus) if focus is not None else find_pronoun(finest)
    notes = list(dict.fromkeys(note for r in results.values() for note in r.notes if not note.startswith("Word level")))
    if found is not None and found.note:
        notes.append(found.note)

    levels: dict[str, dict] = {}
    for name in level_names:
        lv = base[name]
        r = lv.result
        index = _focus_at(found.index if found is not None else None, lv.groups)
        levels[name] = {
            "tokens": r.tokens,
            "labels": r.labels,
            "special": r.special,
            "sinks": r.sink_indices(),  # key indices (cross-attention: the source's)
            "groups": lv.groups,
            "focus": None if index is None else {"index": index, "label": r.labels[index], "auto": focus is None},
        }
        if r.key_tokens is not None:  # cross-attention: the columns are the source's tokens
            levels[name].update(key_labels=r.key_labels, key_special=r.key_special)

    total = sum(lv.result.weights.size for levs in per_view.values() for lv in levs.values())
    if bits is None:
        bits = 16 if total <= MAX_16BIT_VALUES else 8
    if bits not in (8, 16, 32):
        raise ValueError("bits must be 8, 16 or 32")

    views: dict[str, dict] = {}
    for view, levs in per_view.items():
        some = next(iter(levs.values())).result
        entry: dict = {
            "layers": some.layers,
            "heads": some.heads,
            "unit_scale": view in UNIT_VIEWS,
            "data": {},
            "masks": {},
            "candidates": {},
        }
        for name, lv in levs.items():
            scale, b64 = quantise(lv.result.weights, bits)
            entry["data"][name] = {"scale": scale, "b64": b64}
            # Per layer held, what its queries see (masks.py; masks.js applies it): look-ahead, and
            # a local layer's sliding window at token level.
            entry["masks"][name] = [lv.result.mask_rule(layer).to_json() for layer in lv.result.layers]
            if candidates and levels[name]["focus"] is not None:
                entry["candidates"][name] = _candidates(lv.result, levels[name]["focus"]["index"], candidates)
        views[view] = entry

    T = len(first.tokens)
    return {
        "format": FORMAT,
        "text": first.text,
        "model": {
            "name": first.model.name,
            "kind": first.model.kind,
            "learned": first.model.learned,
            "num_layers": first.model.config.num_layers,
            "num_heads": first.model.config.num_heads,
        },
        "causal": first.causal,
        "truncated": first.truncated,
        "bits": bits,
        "levels": levels,
        "views": views,
        "initial": {
            "view": next(iter(views)),
            "level": level if level in levels else level_names[0],
            "sinks_excluded": bool(first.excluded) if exclude_sinks is None else exclude_sinks,
            **(_opening(first, found, pronoun_heads, notes) if open_on_focus else {}),
        },
        "head_view": {
            "min_line": MIN_LINE,
            "top_k": TOP_K if T > TOP_K_FROM else None,
            "top_k_from": TOP_K_FROM,
            "colours": list(HEAD_COLOURS),
        },
        # Heads known to resolve pronouns ({"probe_set", "heads": [{layer, head, accuracy}]}), or None.
        "pronoun_heads": pronoun_heads,
        "notes": notes,
    }


def _opening(result: AttentionResult, found, pronoun_heads: dict | None, notes: list[str]) -> dict:
    """The head the page opens on, alone in the head view (analysis.opening_head), with a note saying why."""
    from ..analysis.opening_head import opening_head

    chosen = opening_head(result, found.index if found else None, (pronoun_heads or {}).get("heads"))
    if chosen is None:
        return {}
    li, hi, why = chosen
    notes.append(f"Opened on layer {result.layers[li]} head {result.heads[hi]}: {why}.")
    return {"layer": li, "head": hi}


def _candidates(result: AttentionResult, index: int, phrases: list[str]) -> dict:
    from ..analysis.candidates import candidate_label, focus_span, resolve_candidates, score_candidates

    span = focus_span(result, index)
    scores = score_candidates(result, span, resolve_candidates(result, phrases, span))
    return {
        "focus": index,
        "labels": [candidate_label(c) for c in scores.candidates],
        "units": [c.units for c in scores.candidates],
        "weights": np.round(scores.weights, 6).tolist(),
        "winners": scores.winners.tolist(),
        "wins": scores.counts(),
        "ties": scores.ties(),
    }


def render_html(
    results: AttentionResult | dict[str, AttentionResult],
    *,
    focus: str | None = None,
    candidates: list[str] | None = None,
    level: str | None = None,
    bits: int | None = None,
    exclude_sinks: bool | None = None,
    pronoun_heads: dict | None = None,
    open_on_focus: bool = False,
) -> str:
    """The whole page as a string (same input, same bytes).

    results: one result, or view name -> result for several views of the same text ("attention",
    "rollout", "norm"), at token level (the page computes the word level too). focus: a word or
    token index (default: the first pronoun); candidates: words the focus may refer to; level:
    "tokens" or "words" shown first; bits: 8 or 16 (default by size); exclude_sinks: start with
    sink tokens out of the colour scale (default: when the result excludes them); pronoun_heads:
    the heads known to resolve pronouns, marked in the focus panel; open_on_focus: open on the one
    head that answers the focus question (`analysis.opening_head`) instead of every head of layer 0.
    """
    if isinstance(results, AttentionResult):
        results = {results.view: results}
    first = results.get("attention", next(iter(results.values())))
    if len(first.tokens) > LONG_FROM:  # a page of text: overviews and a zoom (html_long.py)
        from .html_long import long_notes, render_long_html

        return render_long_html(first, focus=focus, notes=long_notes(results, candidates, level))
    data = page_data(
        results,
        focus=focus,
        candidates=candidates,
        level=level,
        bits=bits,
        exclude_sinks=exclude_sinks,
        pronoun_heads=pronoun_heads,
        open_on_focus=open_on_focus,
    )
    font_text = data["text"] + "".join(lab for lv in data["levels"].values() for lab in lv["labels"])
    return _page(data, data["text"], font_text)


def _page(data: dict, text: str, font_text: str) -> str:
    """The page around `data`: `text` as its heading and title, the Hangul glyphs of `font_text`."""
    script, digest = page_script("view.js")
    # No connect-src, no remote anything: default-src 'none' covers fetch, fonts, frames, media.
    font = hangul_font_css(font_text)
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; img-src data:; "
        + ("font-src data:; " if font else "")
        + "base-uri 'none'; form-action 'none'"
    )
    short = text if len(text) <= 80 else text[:79] + "…"
    e = html.escape
    return "".join(
        [
            "<!doctype html>\n",
            '<html lang="und"><head><meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>attnviz: {e(short)}</title>\n",
            f"<style>{font}{asset('view.css')}</style>\n",
            "</head><body>\n",
            f'<main id="attnviz" aria-label="attention of: {e(short)}">'
            f'<h1 dir="auto">{e(text)}</h1><noscript>This interactive view needs JavaScript; the same data is '
            "available with attnviz show --format json.</noscript></main>\n",
            f'<script type="application/json" id="attnviz-data">{script_json(data)}</script>\n',
            f"<script>{script}</script>\n",
            "</body></html>\n",
        ]
    )


def iframe(page: str, height: int = 720) -> str:
    """The page inside an <iframe srcdoc>, for notebooks: sandboxed (scripts only: no same-origin
    access, no forms, no top navigation), so several views on one notebook page never clash."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
        f'style="width: 100%; height: {height}px; border: 1px solid #ccc; border-radius: 6px" '
        'title="attnviz attention view" loading="lazy"></iframe>'
    )


# Up to this many weights over the three kinds, the page stores them exactly (float32).
MAX_EXACT_VALUES = 200_000
# What each kind's page data holds of its own; the rest (format, bits, head view) is shared.
_KIND_FIELDS = ("text", "model", "causal", "truncated", "levels", "views", "initial", "notes")


def seq2seq_page_data(
    results: dict[str, AttentionResult], *, initial: str, focus: str | None = None, bits: int | None = None
) -> dict:
    """The page's JSON for an encoder-decoder model: `results` maps "encoder", "decoder" and
    "cross" to their results (token level); each kind's data (page_data's fields: its own tokens,
    weights, focus) sits in data["kinds"], and the page opens on `initial`. The focus word is
    looked up in each kind's rows (the source for encoder, the target for decoder and cross); a
    kind whose rows lack it opens with no focus."""
    from ..analysis.focus import resolve_focus
    from ..errors import AttnvizError

    if initial not in results:
        raise ValueError(f"initial kind {initial!r} is not among {list(results)}")
    total = sum(r.weights.size for r in results.values())
    if bits is None:
        bits = 32 if total <= MAX_EXACT_VALUES else (16 if total <= MAX_16BIT_VALUES else 8)
    kinds = {}
    for kind, result in results.items():
        query = focus
        if focus is not None:
            try:
                resolve_focus(result, focus)
            except AttnvizError:
                query = None  # not on this kind's rows: no focus here (the CLI said which side it is on)
        # Opens on the head answering the focus (or the first pronoun with no --focus), as show --html.
        opening = focus is None or query is not None
        data = page_data({"attention": result}, focus=query, level="tokens", bits=bits, open_on_focus=opening)
        if focus is not None and query is None:
            for level in data["levels"].values():
                level["focus"] = None
        kinds[kind] = {name: data[name] for name in _KIND_FIELDS}
        kinds[kind]["name"] = KIND_NAMES.get(kind, kind)
    shared = {name: value for name, value in data.items() if name not in _KIND_FIELDS}
    sources = {r.key_text for r in results.values() if r.key_text is not None}
    source = next(iter(sources)) if sources else results.get("encoder", results[initial]).text
    target = next((r.text for kind, r in results.items() if kind != "encoder"), None)
    return {
        **shared,
        "source": source,
        "target": target,
        "kind": initial,
        "kinds": kinds,  # the script copies kinds[kind]'s fields onto the data when it shows that kind
    }


def render_seq2seq_html(
    results: dict[str, AttentionResult], *, initial: str = "cross", focus: str | None = None, bits: int | None = None
) -> str:
    """One offline page of an encoder-decoder model's encoder, decoder and cross-attention, with a
    switch between them (buttons, and the keys e, d and c); see seq2seq_page_data."""
    data = seq2seq_page_data(results, initial=initial, focus=focus, bits=bits)
    heading = f"{data['source']} → {data['target']}" if data["target"] is not None else data["source"]
    labels = "".join(lab for kind in data["kinds"].values() for lv in kind["levels"].values() for lab in lv["labels"])
    return _page(data, heading, heading + labels)
