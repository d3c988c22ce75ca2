"""Text in, AttentionResult out: tokenize, run the encoder, keep the selected layers and heads."""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from .keep import KeepRequest
from .analysis.streamed_pooling import PoolPlan, StreamedPooling
from .result import AttentionResult
from .engines import engine_of
from .errors import AttnvizError
from .checkpoints import LoadedModel
from .text import check_text
from .sizes import check_run_size
from .tokenize import Encoding


def encode(model: LoadedModel, text: str, truncate: bool = False) -> Encoding:
    """`text` tokenized for `model`; AttnvizError for text that is empty, longer than the model's
    maximum (unless `truncate`), or not UTF-8 (bad bytes of a command-line argument)."""
    return model.tokenizer.encode(check_text(text, "the text"), max_len=model.config.max_len, truncate=truncate)


def token_count(model, text: str, truncate: bool = False) -> int:
    """How many tokens `text` is for `model`, through whichever engine runs it (as `encode` refuses)."""
    if engine_of(model) == "transformers":
        from .engines import transformers_engine

        return len(transformers_engine.tokenize(model, text, truncate).ids)
    return len(encode(model, text, truncate).ids)


def model_inputs(
    model: LoadedModel, encodings: list[Encoding], layers: int | None = None, keep: KeepRequest | None = None
):
    """(ids [B, T], attention mask [B, T] or None, token types [B, T] or None) for a batch, padded
    after the real tokens, once the attention maps of `layers` kept layers (or what `keep` keeps)
    are known to fit."""

    config = model.config
    T = max(len(enc.ids) for enc in encodings)
    if keep is not None:
        check_run_size(config, T, len(encodings), len(keep.layers), keep.head_count(config.num_heads))
    else:
        check_run_size(config, T, len(encodings), layers)
    pads = [T - len(enc.ids) for enc in encodings]
    ids = _on_device(model, [enc.ids + [config.pad_token_id] * p for enc, p in zip(encodings, pads)])
    mask = (
        _on_device(model, [[1] * len(enc.ids) + [0] * p for enc, p in zip(encodings, pads)])
        if any(pads) or len(encodings) > 1
        else None
    )
    type_ids = (
        _on_device(model, [enc.type_ids + [0] * p for enc, p in zip(encodings, pads)])
        if config.type_vocab_size
        else None
    )
    return ids, mask, type_ids


def run_attention(
    model: LoadedModel,
    text: str,
    layers: list[int] | None = None,
    heads: list[int] | None = None,
    truncate: bool = False,
    view: str = "attention",
    focus: Callable[[AttentionResult], int | None] | int | None = None,
    focus_layers: list[int] | None = None,
    pool: Callable[[AttentionResult], PoolPlan | None] | PoolPlan | None = None,
) -> AttentionResult:
    """Attention of `text` for the given layers and heads (default: all).

    Raises AttnvizError for empty text or text longer than the model's maximum (unless
    `truncate`). Layers after the last selected one are never computed.

    Only the maps of `layers` x `heads` are kept; the rest of each layer is computed and let go
    (keep.KeepRequest). focus: a token index, or a function of the tokenized text (an
    AttentionResult with no maps yet) that picks one (None: no focus); its row of every head of
    `focus_layers` (default: every layer loaded) is kept as well, as `focus_rows`, for a
    summary over all heads while the maps of a few are kept.

    pool: a streamed_pooling.PoolPlan, or a function of the tokenized text that gives one (None:
    nothing pooled): the maps of its layers are pooled while they stream (the terminal overview
    of a long text) and not kept; the grids are the result's `pooled`.

    view: "attention" (the probabilities), "rollout" (one map per layer, mixing the given heads
    of every layer up to it; its head index is -1) or "norm" (each weight times the norm of the
    transformed value vector, Kobayashi et al. 2020). See analysis/views.py.
    """
    if engine_of(model) == "transformers":  # engines/transformers_engine.py: the same result, another engine
        from .engines import transformers_engine

        return transformers_engine.run(model, text, layers, heads, truncate, view, focus, focus_layers)
    import torch

    if view.startswith("value-zeroing"):  # an intervention: interventions/value_zeroing.py
        from .interventions.value_zeroing import value_zeroing_result

        return value_zeroing_result(model, encode(model, text, truncate), text, layers, heads, view)
    if view != "attention":
        return _other_view(model, text, layers, heads, truncate, view)

    config = model.config
    layers = list(range(model.built_layers)) if layers is None else list(layers)
    heads = list(range(config.num_heads)) if heads is None else list(heads)
    enc = encode(model, text, truncate)
    skeleton = _result(model, text, enc, np.zeros((0, 0, len(enc.ids), len(enc.ids)), np.float32), [], [])
    index = focus(skeleton) if callable(focus) else focus
    plan = pool(skeleton) if callable(pool) else pool
    pooling = None
    if plan is not None:
        pooling = StreamedPooling(skeleton, plan)
        _built(model, list(plan.layers))
        layers = [i for i in layers if i not in plan.layers]  # pooled instead of kept
    keep = KeepRequest.maps(layers, None if heads == list(range(config.num_heads)) else heads)
    if pooling is not None:
        keep = keep.with_consumers(pooling)
    if index is not None:
        focus_layers = list(range(model.built_layers)) if focus_layers is None else focus_layers
        keep = keep.with_focus(index, _built(model, focus_layers))
    ids, _, type_ids = model_inputs(model, [enc], keep=keep)  # [1, T]
    _built(model, list(keep.layers))
    with torch.inference_mode():
        out = model.encoder(ids, token_type_ids=type_ids, keep=keep)
    T = len(enc.ids)
    if keep.layers:
        weights = out.attentions[0].float().cpu().numpy()  # [K, H', T, T]: sorted layers, heads as given
    else:
        weights = np.zeros((0, len(heads), T, T), np.float32)  # no map kept (no memory: 0 cells)
    result = _result(model, text, enc, weights, list(keep.layers), heads)
    if pooling is not None:
        result = replace(result, pooled=pooling.pooled())
    if out.focus_rows is None:
        return result
    return replace(
        result,
        focus_rows=out.focus_rows[0].float().cpu().numpy(),  # [Lf, H, T]
        focus_index=index,
        focus_layers=list(out.focus_layers),
        focus_heads=list(range(config.num_heads)),
    )


def run_head_stats(model: LoadedModel, text: str, truncate: bool = False) -> AttentionResult:
    """The per-head statistics `attnviz inspect` reads (analysis.heads) of `text`, summed over
    blocks of query rows while the maps of every layer and head stream past: the result keeps no
    map (weights [0, 0, T, T]) and holds them as `head_stats` [layers, heads], so a long text
    costs O(layers x heads) numbers, not layers x heads x T x T floats. Native engine only."""
    from .engines import require_native

    require_native(model, "head statistics measured while the maps stream past")
    return _head_stats(model, text, encode(model, text, truncate))


def _head_stats(model: LoadedModel, text: str, enc: Encoding) -> AttentionResult:
    import torch

    from .analysis.heads import SentenceLayout, StreamedHeadStats

    config = model.config
    T = len(enc.ids)
    skeleton = _result(model, text, enc, np.zeros((0, 0, T, T), np.float32), [], [])
    layers = list(range(model.built_layers))
    heads = list(range(config.num_heads))
    if T < 2:  # a single token says nothing about attention (profile_heads skips it)
        return replace(skeleton, stats_layers=layers, stats_heads=heads)
    stats = StreamedHeadStats(layers, SentenceLayout.of(skeleton), config.causal)
    keep = KeepRequest().with_consumers(stats)
    ids, _, type_ids = model_inputs(model, [enc], keep=keep)  # [1, T]
    with torch.inference_mode():
        model.encoder(ids, token_type_ids=type_ids, keep=keep)
    return replace(skeleton, head_stats=stats.result(), stats_layers=layers, stats_heads=heads)


def _result(model, text: str, enc: Encoding, weights, layers: list[int], heads: list[int]) -> AttentionResult:
    return AttentionResult.of_encoding(
        enc,
        text,
        weights=weights,
        layers=layers,
        heads=heads,
        model=model.info,
    )


def _other_view(
    model: LoadedModel, text: str, layers: list[int] | None, heads: list[int] | None, truncate: bool, view: str
) -> AttentionResult:
    import numpy as np
    import torch

    from .analysis import views

    if view not in views.VIEWS:
        raise AttnvizError(f"unknown view {view!r}: choose one of {', '.join(views.VIEWS)}")
    config = model.config
    layers = list(range(model.built_layers)) if layers is None else sorted(set(layers))
    heads = list(range(config.num_heads)) if heads is None else list(heads)
    enc = encode(model, text, truncate)
    notes = []
    if view == "rollout":
        # Rollout through layer l needs every layer up to l: their products are made while the
        # maps stream past (views.RolloutProducts), one layer's head mean at a time.
        products = views.RolloutProducts(_built(model, list(range(layers[-1] + 1))), heads, len(enc.ids), layers)
        keep = KeepRequest().with_consumers(products)
        ids, _, type_ids = model_inputs(model, [enc], keep=keep)  # [1, T]
        with torch.inference_mode():
            model.encoder(ids, token_type_ids=type_ids, keep=keep)
        weights = np.stack([products.kept[i] for i in layers])[:, None]  # [L, 1, T, T]
        out_heads = [views.ROLLOUT_HEAD]
        which = "all heads" if len(heads) == config.num_heads else "heads " + ",".join(map(str, heads))
        notes.append(
            f"Rollout view: one map per layer, the mean of {which} mixed with the residual "
            "(0.5 A + 0.5 I) and multiplied through the layers below (Abnar & Zuidema 2020)."
        )
    else:
        ids, _, type_ids = model_inputs(model, [enc], len(layers))  # [1, T]
        with torch.inference_mode():
            out = model.encoder(ids, token_type_ids=type_ids, keep_layers=_built(model, layers), keep_values=True)
        probs = out.attentions[0].double().cpu().numpy()  # [K, H, T, T]
        values = out.values[0].double().cpu().numpy()  # [K, T, G*Dh]
        attns = [model.encoder.layers[layer].attention for layer in out.layers]
        weights = np.stack(
            [
                views.norm_view(probs[k], values[k], attn.out.weight.detach().double().cpu().numpy(), attn.kv_heads)
                for k, attn in enumerate(attns)
            ]
        )[:, heads]  # [L, H', T, T]
        out_heads = heads
        notes.append(
            "Norm view: each weight times the norm of the value vector it carries, after the "
            "output projection (||alpha f(x)||, Kobayashi et al. 2020); rows do not sum to one."
        )
    return AttentionResult.of_encoding(
        enc,
        text,
        weights=weights.astype(np.float32),
        layers=layers,
        heads=out_heads,
        model=model.info,
        view=view,
        notes=notes,
    )


def run_attention_batch(
    model: LoadedModel, texts: list[str], truncate: bool = False, view: str = "attention", batch_size: int = 32
) -> list[AttentionResult | AttnvizError]:
    """run_attention for many texts (all layers and heads): one result per text, or the
    AttnvizError that text raised (empty, too long). Texts of the attention view run in padded
    batches (an additive mask gives padded keys exactly zero weight, and padding sits after the
    real tokens, so positions are unchanged); other views run one by one."""
    if engine_of(model) == "transformers":
        from .engines import transformers_engine

        return transformers_engine.run_batch(model, texts, truncate, view, batch_size)
    out: list[AttentionResult | AttnvizError | None] = [None] * len(texts)
    encoded = []
    for i, text in enumerate(texts):
        try:
            if view != "attention":
                out[i] = run_attention(model, text, truncate=truncate, view=view)
            else:
                encoded.append((i, encode(model, text, truncate)))
        except AttnvizError as exc:
            out[i] = exc
    _run_encoded(model, texts, encoded, out, batch_size)
    return out


def run_for_head_stats(
    model: LoadedModel, texts: list[str], truncate: bool = False, batch_size: int = 32
) -> list[AttentionResult | AttnvizError]:
    """What `inspect` measures of each text (analysis.heads.profile_heads reads either): a text
    whose maps of every layer and head would exceed sizes.STREAM_STATS_BYTES is measured while
    they stream past (run_head_stats: statistics, no map); the others run in padded batches with
    every map, as run_attention_batch runs them. One result per text, or its AttnvizError."""
    from .sizes import streams_head_stats

    if engine_of(model) == "transformers":  # its maps come whole from transformers
        return run_attention_batch(model, texts, truncate, batch_size=batch_size)
    out: list[AttentionResult | AttnvizError | None] = [None] * len(texts)
    encoded = []
    for i, text in enumerate(texts):
        try:
            enc = encode(model, text, truncate)
            if streams_head_stats(model.config, len(enc.ids), model.built_layers):
                out[i] = _head_stats(model, text, enc)
            else:
                encoded.append((i, enc))
        except AttnvizError as exc:
            out[i] = exc
    _run_encoded(model, texts, encoded, out, batch_size)
    return out


def _run_encoded(model: LoadedModel, texts: list[str], encoded: list, out: list, batch_size: int) -> None:
    """Results of the (index, Encoding) pairs `encoded`, every map kept, into out[index]."""
    import torch

    config = model.config
    # Similar lengths together: less padding. Sorting is stable, so the order is deterministic.
    encoded.sort(key=lambda pair: len(pair[1].ids))
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        ids, mask, type_ids = model_inputs(model, [enc for _, enc in chunk])  # [B, T]
        with torch.inference_mode():
            result = model.encoder(ids, attention_mask=mask, token_type_ids=type_ids)
        attentions = result.attentions.float().cpu()
        for b, (i, enc) in enumerate(chunk):
            n = len(enc.ids)
            weights = attentions[b, :, :, :n, :n].numpy()  # [L, H, n, n]
            out[i] = AttentionResult.of_encoding(
                enc,
                texts[i],
                weights=weights.copy(),
                layers=result.layers,
                heads=list(range(config.num_heads)),
                model=model.info,
            )


def _on_device(model: LoadedModel, rows: list[list[int]]):
    """Token ids (or masks) as a [B, T] tensor on the device the encoder's weights are on."""
    import torch

    # Any parameter: a GGUF model's token table is not one (checkpoints/lazy_rows.py).
    return torch.tensor(rows, device=next(model.encoder.parameters()).device)


def _built(model: LoadedModel, layers: list[int]) -> list[int]:
    """The layers to run, refused in one line when the model was loaded only up to an earlier one."""
    built = model.built_layers
    beyond = [i for i in layers if i >= built]
    if beyond and built < model.config.num_layers:
        raise AttnvizError(
            f"layer {beyond[0]} was not loaded: the model was loaded up to layer {built - 1} "
            "(last_layer); load it with a later last_layer"
        )
    return layers
