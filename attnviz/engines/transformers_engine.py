"""The transformers engine: any model `transformers.AutoModel` loads, run with eager attention.

For the models the native engine does not read (DeBERTa, ModernBERT, ALBERT, T5, BART, GPT-NeoX,
Falcon, OLMo...). The model's own tokenizer (AutoTokenizer) gives the tokens, character offsets
and special-token marks; the model's `output_attentions` gives the maps, which come back as the
same AttentionResult the native engine returns. Nothing is ever downloaded (local_files_only).

Encoder-decoder models (T5, BART) run their encoder here: encoder self-attention; run_seq2seq(_kinds)
runs the whole model on a source and a target: encoder, decoder and cross-attention.

transformers and torch are imported inside the functions (the optional extra, and a fast --help).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import LAYER_TYPES, EncoderConfig
from ..errors import AttnvizError
from ..result import AttentionResult, ModelInfo
from ..text import check_text
from ..tokenize import cover_marks, trim_spaces
from . import INSTALL, NATIVE_ONLY
from .placement import AUTO, OffloadFolder, device_name, placement_summary

NO_EAGER = "cannot return its attention weights through transformers (it has no eager attention implementation)"


@dataclass
class TokenizedText:
    """One text through the model's own tokenizer."""

    ids: list[int]
    tokens: list[str]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]
    special: list[bool]
    truncated: bool = False


@dataclass
class TransformersModel:
    """A transformers model, its tokenizer and what it is: what the pipeline runs when `engine`
    is "transformers". `hf_model` is the module whose forward returns the attention (the encoder
    of an encoder-decoder model)."""

    hf_model: object
    hf_tokenizer: object
    info: ModelInfo
    encoder_decoder: bool = False
    sources: tuple[str, ...] = ()
    full_model: object = None  # the whole encoder-decoder (cross-attention); hf_model is its encoder
    # --device auto: accelerate's device map ({module: "cpu" | "disk" | GPU index}; {"": device}
    # when the whole model sits on one) and the offload folder removed by `close`; None otherwise.
    device_map: dict | None = None
    offload: object = None  # placement.OffloadFolder
    engine: str = field(default="transformers", init=False)

    def close(self) -> None:
        """Remove the offload folder of a --device auto load (idempotent; nothing otherwise)."""
        if self.offload is not None:
            self.offload.close()

    @property
    def notes(self) -> list[str]:
        """What every result of this model says in its header: where --device auto put it."""
        placed = self.config.extra.get("placement")
        return [f"Placed by accelerate (--device auto): {placed}."] if placed else []

    @property
    def config(self) -> EncoderConfig:
        return self.info.config

    @property
    def built_layers(self) -> int:
        return self.config.num_layers  # always loaded whole

    @property
    def encoder(self):
        """The native encoder's layers (norm view, interventions, parameter counts): not here."""
        raise AttnvizError(f"this command {NATIVE_ONLY}")

    @property
    def tokenizer(self):
        raise AttnvizError(f"this command {NATIVE_ONLY}")

    def unchanged_since_load(self) -> bool:
        return False

    @property
    def dtype_name(self) -> str:
        return str(next(self.hf_model.parameters()).dtype).removeprefix("torch.")


def _import_transformers():
    try:
        import transformers
    except ImportError:
        raise AttnvizError(f"the transformers engine needs transformers: {INSTALL}") from None
    return transformers


def load(
    folder: Path,
    source: str,
    *,
    dtype: str | None = None,
    device: str | None = None,
    max_memory: dict | None = None,
    offload_dir: Path | None = None,
) -> TransformersModel:
    """The model in `folder` (a transformers folder: config.json and weights, a tokenizer), with
    eager attention so that its forward returns the attention probabilities it used.

    device: "cpu" (None), "cuda", "cuda:N", "mps", or "auto": accelerate places the layers across
    the GPUs, the CPU and disk within `max_memory` (placement.parse_max_memory; None: what it
    finds free), offloading into a new folder inside `offload_dir` (None: the temporary folder)
    that `TransformersModel.close` removes."""
    transformers = _import_transformers()
    import torch

    if device == AUTO:
        offload = OffloadFolder(offload_dir)
        try:
            return _load(transformers, torch, folder, source, dtype, device, max_memory, offload)
        except BaseException:
            offload.close()  # a failed or interrupted load leaves nothing behind
            raise
    if device not in (None, "cpu"):
        from ..checkpoints.loaded import torch_device

        device = str(torch_device(device))  # one line for a GPU torch does not see
    return _load(transformers, torch, folder, source, dtype, device, None, None)


def _load(transformers, torch, folder, source, dtype, device, max_memory, offload) -> TransformersModel:
    """`load` once the device is known good; `offload` (a placement.OffloadFolder) means --device auto."""
    # Quiet: attnviz's stderr is one line on error; no progress bars or config warnings.
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    folder = Path(folder)
    if not folder.is_dir():
        raise AttnvizError(f"{source}: the transformers engine loads a model folder (config.json, weights, tokenizer)")
    kwargs = {"local_files_only": True, "attn_implementation": "eager"}
    if dtype is not None:
        kwargs["dtype"] = getattr(torch, dtype)
    if offload is not None:  # --device auto
        kwargs.update(device_map="auto", offload_folder=str(offload.path), max_memory=_budget(torch, max_memory))
    try:
        with _quiet_accelerate():
            model, loading = _from_pretrained(transformers, folder, kwargs)
    except ValueError as exc:
        if "attn" in str(exc).lower() or "eager" in str(exc).lower():
            raise AttnvizError(f"{source}: this model {NO_EAGER}") from None
        raise AttnvizError(f"{source}: transformers cannot load it ({_short(exc)})") from None
    except (OSError, KeyError, RuntimeError, TypeError, _safetensors_error()) as exc:
        raise AttnvizError(f"{source}: transformers cannot load it ({_short(exc)})") from None
    # Weights the checkpoint lacks would be random: attention of a model that is not the one on
    # disk (a config naming another architecture than its weights). Refused, never drawn.
    missing = loading.get("missing_keys") or []
    if missing:
        raise AttnvizError(
            f"{source}: its weights do not fit its config.json ({model.config.model_type}): "
            f"{len(missing)} missing, e.g. {sorted(missing)[0]!r}; check model_type and the weights file"
        )
    if getattr(model.config, "_attn_implementation", "eager") != "eager":
        try:  # transformers 5 may pick another implementation despite the request
            model.set_attn_implementation("eager")
        except (AttributeError, ValueError):
            raise AttnvizError(f"{source}: this model {NO_EAGER}") from None
    hf_config = model.config  # read once, by from_pretrained
    model.eval()
    if device not in (None, "cpu", AUTO):
        model.to(device)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AttnvizError(f"{source}: transformers cannot load its tokenizer ({_short(exc)})") from None
    encoder_decoder = bool(getattr(hf_config, "is_encoder_decoder", False))
    runner = model.get_encoder() if encoder_decoder else model
    config = describe(hf_config, tokenizer, model)
    device_map = _device_map(model) if offload is not None else None
    if offload is not None:  # said in headers and JSON (model.config.extra): where the layers went
        config.extra.update(
            device="auto",
            placement=placement_summary(device_map),
            device_map={k: device_name(v) for k, v in device_map.items()},
        )
    info = ModelInfo(
        source=source,
        config=config,
        learned=True,
        tokenizer=f"{folder} (the model's own; run by the transformers engine)",  # said in headers
        kind=f"transformers:{hf_config.model_type}",
    )
    return TransformersModel(
        runner,
        tokenizer,
        info,
        encoder_decoder,
        sources=(str(folder),),
        full_model=model,
        device_map=device_map,
        offload=offload,
    )


def _safetensors_error() -> type[Exception]:
    """safetensors' error for a corrupt weights file (a bad header): bad input, not an internal error."""
    try:
        from safetensors import SafetensorError
    except ImportError:  # transformers needs safetensors; an exception nothing raises otherwise
        return OSError
    return SafetensorError


def _budget(torch, max_memory: dict | None) -> dict | None:
    """--max-memory for accelerate, refused in one line when it names a GPU torch does not see."""
    if not max_memory:
        return None
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for device in max_memory:
        if isinstance(device, int) and device >= gpus:
            seen = f"sees {gpus} CUDA GPU(s)" if gpus else "sees no CUDA GPU on this machine"
            raise AttnvizError(f"--max-memory names GPU {device} but torch {seen}")
        if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise AttnvizError("--max-memory names mps but torch sees no Apple GPU (MPS) on this machine")
    return dict(max_memory)


@contextlib.contextmanager
def _quiet_accelerate():
    """accelerate warns through Python logging that offloaded parameters sit on the meta device:
    expected with --device auto, and attnviz's stderr stays for errors (the header says where the
    layers went)."""
    logger = logging.getLogger("accelerate")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _device_map(model) -> dict:
    """accelerate's placement of a --device auto load ({module: device}); {"": device} when the
    whole model landed on one device (transformers then sets no hf_device_map)."""
    found = getattr(model, "hf_device_map", None)
    if found:
        return dict(found)
    device = next(model.parameters()).device
    return {"": device.index if device.type == "cuda" and device.index is not None else device.type}


def input_device(model: TransformersModel, module=None):
    """Where token ids go: the device of the weights, or, for a model accelerate placed (some of
    its parameters are then on the meta device, read from disk on demand), the CPU unless the map
    starts on a GPU; accelerate's hooks move inputs to each layer's device."""
    import torch

    module = model.hf_model if module is None else module
    if model.device_map:
        first = next(iter(model.device_map.values()))
        return torch.device(device_name(first)) if device_name(first) not in ("cpu", "disk") else torch.device("cpu")
    return next(module.parameters()).device


def _from_pretrained(transformers, folder: Path, kwargs: dict):
    """(model, loading info) from AutoModel; for an encoder-decoder the model with its LM head
    (AutoModelForSeq2SeqLM), which can write its own target (greedy) when none is given."""
    config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    if getattr(config, "is_encoder_decoder", False):
        from transformers.models.auto.modeling_auto import MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES

        if config.model_type in MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
            return transformers.AutoModelForSeq2SeqLM.from_pretrained(
                folder, config=config, output_loading_info=True, **kwargs
            )
    return transformers.AutoModel.from_pretrained(folder, config=config, output_loading_info=True, **kwargs)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _first_int(config, names: tuple[str, ...]) -> int | None:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def describe(hf_config, tokenizer, model) -> EncoderConfig:
    """An EncoderConfig describing the model's shape as far as it maps: layers, heads, widths,
    whether it is causal and which layers attend within a sliding window. For headers, JSON and
    the masks; the transformers model itself is what runs."""
    layers = _first_int(hf_config, ("num_hidden_layers", "encoder_layers", "num_layers", "n_layer"))
    heads = _first_int(hf_config, ("num_attention_heads", "encoder_attention_heads", "num_heads", "n_head"))
    d_model = _first_int(hf_config, ("hidden_size", "d_model", "n_embd", "dim"))
    if layers is None or heads is None or d_model is None:
        raise AttnvizError(f"model_type {hf_config.model_type!r}: cannot tell its layers, heads and width")
    d_ff = _first_int(hf_config, ("intermediate_size", "d_ff", "encoder_ffn_dim", "ffn_dim", "n_inner")) or 4 * d_model
    max_len = _first_int(hf_config, ("max_position_embeddings", "n_positions", "n_ctx"))
    tok_max = getattr(tokenizer, "model_max_length", None)
    if max_len is None and isinstance(tok_max, int) and 0 < tok_max < 10**6:
        max_len = tok_max
    head_dim = _first_int(hf_config, ("head_dim",))
    if head_dim is None and d_model % heads:
        head_dim = d_model // heads or 1
    vocab = _first_int(hf_config, ("vocab_size",)) or max(len(tokenizer), 1)
    kv = _first_int(hf_config, ("num_key_value_heads", "num_kv_heads"))
    rotary = any(getattr(hf_config, k, None) is not None for k in ("rope_theta", "rope_parameters", "rotary_pct"))
    causal = _causal(hf_config)
    window, layer_types = _windows(hf_config, layers, causal)
    return EncoderConfig(
        vocab_size=vocab,
        num_layers=layers,
        num_heads=heads,
        d_model=d_model,
        d_ff=d_ff,
        max_len=max_len or 512,
        positional="none" if rotary else ("learned" if max_len else "none"),
        causal=causal,
        num_kv_heads=kv if kv is not None and heads % kv == 0 else None,
        head_dim=head_dim,
        pad_token_id=getattr(tokenizer, "pad_token_id", None) or 0,
        sliding_window=window,
        layer_types=layer_types,
        extra={"engine": "transformers", "model_type": hf_config.model_type, "rotary": rotary},
    )


def _causal(hf_config) -> bool:
    """A decoder-only model: is_decoder, or a model type transformers knows as a causal LM and
    not as a masked LM (BERT has both). `run` checks this against the maps themselves."""
    if getattr(hf_config, "is_decoder", False):
        return True
    if getattr(hf_config, "is_encoder_decoder", False):
        return False
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = hf_config.model_type
    return kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def _windows(hf_config, layers: int, causal: bool) -> tuple[int | None, tuple[str, ...] | None]:
    """(sliding_window, layer_types) of a model with local layers (Mistral-like: every layer; with
    layer_types: the "sliding_attention" ones); (None, None) otherwise. In attnviz's terms a causal
    query i sees keys i - window < j <= i, a bidirectional one keys |i - j| < window."""
    window = getattr(hf_config, "sliding_window", None)
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        return None, None
    if not causal:
        if hf_config.model_type != "modernbert":
            return None, None  # no other bidirectional window is known to mean the same
        window += 1  # ModernBERT's sliding_window is half its local_attention: keys |i - j| <= it
    if getattr(hf_config, "use_sliding_window", True) is False:
        return None, None
    types = getattr(hf_config, "layer_types", None)
    if types is None:
        return window, None
    types = tuple(types)
    if len(types) != layers or any(t not in LAYER_TYPES for t in types):
        return None, None  # chunked or other attention kinds: no window mask drawn
    if "sliding_attention" not in types:
        return None, None
    return window, types


def tokenize(model: TransformersModel, text: str, truncate: bool = False) -> TokenizedText:
    """`text` through the model's own tokenizer, refused (one line) when empty or longer than the
    model's maximum (unless `truncate`)."""
    text = check_text(text, "the text")
    if not text.strip():
        raise AttnvizError("the text is empty; give a sentence to visualise")
    tok = model.hf_tokenizer
    fast = bool(getattr(tok, "is_fast", False))
    max_len = model.config.max_len

    def encode(limit: int | None):
        return tok(
            text,
            return_offsets_mapping=fast,
            return_special_tokens_mask=True,
            truncation=limit is not None,
            max_length=limit,
        )

    enc = encode(None)
    truncated = False
    if len(enc["input_ids"]) > max_len:
        if not truncate:
            raise AttnvizError(
                f"the text has {len(enc['input_ids'])} tokens but the model takes at most {max_len}; "
                "shorten it or pass --truncate"
            )
        enc, truncated = encode(max_len), True
    ids = list(enc["input_ids"])
    special = [bool(s) for s in enc.get("special_tokens_mask", [0] * len(ids))]
    if not ids or all(special):
        raise AttnvizError("the text has no tokens the tokenizer can read; give a sentence to visualise")
    tokens = tok.convert_ids_to_tokens(ids)
    if fast:
        raw = [tuple(o) for o in enc["offset_mapping"]]
        offsets = cover_marks(text, [o if s else trim_spaces(text, o) for o, s in zip(raw, special)], special)
        word_ids = [None if s else w for w, s in zip(enc.word_ids(), special)]
    else:  # a slow tokenizer knows no offsets: labels fall back to the token strings
        offsets = [(0, 0)] * len(ids)
        word_ids = [None if s else i for i, s in enumerate(special)]
    return TokenizedText(ids, [str(t) for t in tokens], offsets, word_ids, special, truncated)


def forward(model: TransformersModel, batch: list[list[int]], lengths: list[int]) -> np.ndarray:
    """Attention of a batch of token ids padded on the right: float32 [B, L, H, T, T]."""
    return _to_float32(forward_layers(model, batch, lengths))


def forward_layers(model: TransformersModel, batch: list[list[int]], lengths: list[int]) -> list:
    """transformers' own maps of a batch padded on the right: one torch tensor [B, H, T, T] per
    layer, in the model's dtype, on its layer's device; the only reference to them (so a caller
    that lets a layer go frees it)."""
    import torch

    device = input_device(model)
    ids = torch.tensor(batch, device=device)
    mask = torch.tensor([[1] * n + [0] * (ids.shape[1] - n) for n in lengths], device=device)
    # No KV cache: a decoder would otherwise keep every layer's keys and values for a generation
    # that never comes (2 x layers x KV heads x head size x T numbers).
    no_cache = {"use_cache": False} if _takes(model.hf_model, "use_cache") else {}
    with torch.inference_mode():
        out = model.hf_model(input_ids=ids, attention_mask=mask, output_attentions=True, return_dict=True, **no_cache)
    attentions = list(getattr(out, "attentions", None) or [])
    del out  # the last reference to the maps is `attentions`, freed layer by layer below
    if not attentions or any(a is None for a in attentions):
        raise AttnvizError(f"{model.info.source}: this model {NO_EAGER}")
    return attentions


def _takes(module, name: str) -> bool:
    """Whether `module`'s forward names the argument `name` (not every architecture has use_cache)."""
    import inspect

    try:
        return name in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def _to_float32(attentions: list) -> np.ndarray:
    """transformers' per-layer maps (each [B, H, T, T], in the model's dtype, on the device of its
    layer: with --device auto they may sit on different GPUs) as one CPU float32 [B, L, H, T, T]
    (batches: every map of every text is needed). Each layer is let go once copied in, where a
    stack then a cast made two more copies of them all."""
    first = attentions[0]
    out = np.empty((first.shape[0], len(attentions), *first.shape[1:]), dtype=np.float32)
    for i in range(len(attentions)):
        out[:, i] = attentions[i].float().cpu().numpy()
        attentions[i] = None
    return out


def _float32(maps) -> np.ndarray:
    """A torch tensor (any dtype, any device) as a CPU float32 array."""
    return maps.float().cpu().numpy()


def _no_look_ahead(maps) -> bool:
    """Whether every map (an iterable of [..., T, T], torch or NumPy, one at a time: no copy of
    them all) has an upper triangle of exact zeros: a decoder's causal mask."""
    return not any(bool((m.triu(1) if hasattr(m, "triu") else np.triu(m, 1)).any()) for m in maps)


def _result(model: TransformersModel, text: str, enc: TokenizedText, weights, layers, heads, causal=None, **more):
    """The AttentionResult; `causal` (what the maps of every layer said, None: read `weights` when
    they hold every layer) corrects the config's guess."""
    config = model.config
    T = len(enc.ids)
    if causal is None and T > 1 and weights.size and len(layers) == config.num_layers:
        causal = _no_look_ahead(weights.reshape(-1, T, T))
    if T > 1 and causal is not None:
        # The maps say whether the model looks ahead: a decoder's upper triangle is exactly 0.
        if causal != config.causal:
            config = replace(config, causal=causal, sliding_window=None if not causal else config.sliding_window)
            model.info = replace(model.info, config=config)
    more["notes"] = model.notes + list(more.get("notes", []))
    return AttentionResult.of_encoding(
        enc,
        text,
        weights=weights.astype(np.float32, copy=False),  # no copy of maps already float32
        layers=list(layers),
        heads=list(heads),
        model=model.info,
        **more,
    )


def run(
    model: TransformersModel,
    text: str,
    layers: list[int] | None = None,
    heads: list[int] | None = None,
    truncate: bool = False,
    view: str = "attention",
    focus: Callable[[AttentionResult], int | None] | int | None = None,
    focus_layers: list[int] | None = None,
) -> AttentionResult:
    """pipeline.run_attention for a model run by transformers: the whole model runs (every layer,
    every head); the selected layers and heads are kept."""
    if view in ("norm",) or view.startswith("value-zeroing"):
        raise AttnvizError(f"--view {view} {NATIVE_ONLY}; use --engine native on a model it reads")
    if view not in ("attention", "rollout"):
        raise AttnvizError(f"unknown view {view!r}")
    config = model.config
    all_layers = list(range(config.num_layers))
    layers = all_layers if layers is None else list(layers)
    heads = list(range(config.num_heads)) if heads is None else list(heads)
    enc = tokenize(model, text, truncate)
    T = len(enc.ids)
    # transformers returns every layer's maps; only the selected ones are copied out as float32
    # (a float32 copy of them all would double the peak of a long text: docs/transformers-engine.md).
    maps = [a[0] for a in forward_layers(model, [enc.ids], [T])]  # L x [H, T, T], the model's dtype
    if (len(maps), maps[0].shape[0]) != (config.num_layers, config.num_heads):
        config = replace(config, num_layers=len(maps), num_heads=maps[0].shape[0])
        model.info = replace(model.info, config=config)
    causal = _no_look_ahead(maps) if T > 1 else None
    skeleton = _result(model, text, enc, np.zeros((0, 0, T, T), np.float32), [], [], causal=causal)
    kept = sorted(set(layers))
    if view == "rollout":
        from ..analysis import views

        chosen = np.stack([_float32(maps[i][heads]) for i in range(max(layers) + 1)])  # [L', H', T, T]
        rolled = views.rollout(chosen)[kept]  # [K, T, T]
        which = "all heads" if len(heads) == config.num_heads else "heads " + ",".join(map(str, heads))
        note = (
            f"Rollout view: one map per layer, the mean of {which} mixed with the residual "
            "(0.5 A + 0.5 I) and multiplied through the layers below (Abnar & Zuidema 2020)."
        )
        return replace(
            skeleton,
            weights=rolled[:, None].astype(np.float32),
            layers=kept,
            heads=[views.ROLLOUT_HEAD],
            view="rollout",
            notes=model.notes + [note],
        )
    weights = np.zeros((0, len(heads), T, T), np.float32)
    if kept:
        weights = np.stack([_float32(maps[i][heads]) for i in kept])  # [K, H', T, T]
    result = replace(skeleton, weights=weights, layers=kept, heads=heads)
    index = focus(skeleton) if callable(focus) else focus
    if index is None:
        return result
    focus_layers = all_layers if focus_layers is None else list(focus_layers)
    return replace(
        result,
        focus_rows=np.stack([_float32(maps[i][:, index, :]) for i in focus_layers]),  # [Lf, H, T]
        focus_index=index,
        focus_layers=focus_layers,
        focus_heads=list(range(config.num_heads)),
    )


def run_batch(
    model: TransformersModel, texts: list[str], truncate: bool = False, view: str = "attention", batch_size: int = 32
) -> list[AttentionResult | AttnvizError]:
    """pipeline.run_attention_batch for a model run by transformers: padded batches (padding
    after the real tokens, masked by the attention mask) for the attention view."""
    out: list = [None] * len(texts)
    encoded = []
    for i, text in enumerate(texts):
        try:
            if view != "attention":
                out[i] = run(model, text, truncate=truncate, view=view)
            else:
                encoded.append((i, tokenize(model, text, truncate)))
        except AttnvizError as exc:
            out[i] = exc
    encoded.sort(key=lambda pair: len(pair[1].ids))
    pad = getattr(model.hf_tokenizer, "pad_token_id", None) or 0
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        T = max(len(enc.ids) for _, enc in chunk)
        maps = forward(
            model, [enc.ids + [pad] * (T - len(enc.ids)) for _, enc in chunk], [len(e.ids) for _, e in chunk]
        )
        for b, (i, enc) in enumerate(chunk):
            n = len(enc.ids)
            weights = np.ascontiguousarray(maps[b, :, :, :n, :n])  # [L, H, n, n]
            out[i] = _result(
                model, texts[i], enc, weights, list(range(weights.shape[0])), list(range(weights.shape[1]))
            )
    return out


ATTENTIONS = ("encoder", "decoder", "cross")


def run_seq2seq(
    model: TransformersModel,
    source: str,
    target: str | None,
    attention: str = "cross",
    layers: list[int] | None = None,
    heads: list[int] | None = None,
    truncate: bool = False,
    max_new_tokens: int = 20,
) -> AttentionResult:
    """An encoder-decoder model teacher-forced on `target`: its encoder self-attention (source x
    source), decoder self-attention (causal, target x target) or cross-attention (rows: the
    decoder's tokens, the start token then the target's; columns: the source's tokens). Without
    `target`, the model's own greedy output (at most `max_new_tokens`) is the target."""
    if attention not in ATTENTIONS:
        raise AttnvizError(f"--attention: choose one of {', '.join(ATTENTIONS)}")
    _check_seq2seq(model)
    if attention == "encoder":
        return replace(run(model, source, layers, heads, truncate), attention="encoder")
    return run_seq2seq_kinds(model, source, target, (attention,), layers, heads, truncate, max_new_tokens)[attention]


def _check_seq2seq(model: TransformersModel) -> None:
    if not model.encoder_decoder:
        raise AttnvizError(
            f"{model.info.source}: --target and --attention go with encoder-decoder models (T5, BART...)"
        )


def run_seq2seq_kinds(
    model: TransformersModel,
    source: str,
    target: str | None,
    kinds: tuple[str, ...] = ATTENTIONS,
    layers: list[int] | None = None,
    heads: list[int] | None = None,
    truncate: bool = False,
    max_new_tokens: int = 20,
) -> dict[str, AttentionResult]:
    """Several kinds of attention of one teacher-forced pass (see run_seq2seq), kind -> result:
    "encoder" (source x source), "decoder" (target x target, causal), "cross" (target x source).
    One forward gives all three (the HTML page switches between them)."""
    import torch

    _check_seq2seq(model)
    if not kinds or any(kind not in ATTENTIONS for kind in kinds):
        raise AttnvizError(f"--attention: choose one of {', '.join(ATTENTIONS)}")
    src = tokenize(model, source, truncate)
    hf_config = model.full_model.config
    start = getattr(hf_config, "decoder_start_token_id", None)
    if start is None:
        start = getattr(hf_config, "bos_token_id", None) or 0
    device = input_device(model, model.full_model)
    how = "teacher-forced on the target"
    if target is None:
        tgt = _greedy(model, src, max_new_tokens, device)
        target = model.hf_tokenizer.decode(tgt.ids, skip_special_tokens=True)
        how = f"on its own greedy output ({len(tgt.ids)} tokens)"
    else:
        tgt = tokenize(model, check_text(target, "the target"), truncate)
    # Teacher forcing: the decoder reads the start token, then the target; row i predicts token i.
    dec_ids = [start] + tgt.ids
    with torch.inference_mode():
        out = model.full_model(
            input_ids=torch.tensor([src.ids], device=device),
            attention_mask=torch.ones(1, len(src.ids), dtype=torch.long, device=device),
            decoder_input_ids=torch.tensor([dec_ids], device=device),
            output_attentions=True,
            return_dict=True,
        )
    start_token = str(model.hf_tokenizer.convert_ids_to_tokens([start])[0])
    decoder_rows = dict(
        text=target,
        tokens=[start_token] + tgt.tokens,
        offsets=[(0, 0)] + tgt.offsets,
        word_ids=[None] + tgt.word_ids,
        special=[True] + tgt.special,
    )
    source_rows = dict(text=source, tokens=src.tokens, offsets=src.offsets, word_ids=src.word_ids, special=src.special)
    results = {}
    for kind in kinds:
        maps = {"encoder": out.encoder_attentions, "decoder": out.decoder_attentions, "cross": out.cross_attentions}[
            kind
        ]
        if not maps or any(a is None for a in maps):
            raise AttnvizError(f"{model.info.source}: this model {NO_EAGER}")
        # each layer to the CPU first: with --device auto the layers may sit on different devices
        weights = torch.stack([a.float().cpu() for a in maps], dim=1)[0].numpy()  # [L, H, Tq, Tk]
        L, H = weights.shape[:2]
        chosen_layers = list(range(L)) if layers is None else sorted(set(layers))
        chosen_heads = list(range(H)) if heads is None else list(heads)
        config = replace(
            model.config, num_layers=L, num_heads=H, causal=kind == "decoder", sliding_window=None, layer_types=None
        )
        keys = {}
        if kind == "cross":
            keys = dict(key_tokens=src.tokens, key_offsets=src.offsets, key_special=src.special, key_text=source)
        results[kind] = AttentionResult(
            **(source_rows if kind == "encoder" else decoder_rows),
            weights=np.ascontiguousarray(weights[chosen_layers][:, chosen_heads]),
            layers=chosen_layers,
            heads=chosen_heads,
            model=replace(model.info, config=config),
            truncated=src.truncated or tgt.truncated,
            attention=kind,
            notes=model.notes + [f"{kind} attention of an encoder-decoder model, {how}"],
            **keys,
        )
    return results


def _greedy(model: TransformersModel, src: TokenizedText, max_new_tokens: int, device) -> TokenizedText:
    """The model's own greedy continuation of the source, as the target's tokens (no character
    offsets: the labels are the token strings)."""
    import torch

    if not hasattr(model.full_model, "generate") or not hasattr(model.full_model, "lm_head"):
        raise AttnvizError(
            f"{model.info.source}: this model has no language-model head to write a target; give --target"
        )
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise AttnvizError(f"--max-new-tokens must be a positive integer, got {max_new_tokens!r}")
    if max_new_tokens > model.config.max_len:  # a model that never ends its output would run for hours
        raise AttnvizError(
            f"--max-new-tokens {max_new_tokens} is more than the {model.config.max_len} tokens "
            f"{model.info.source} reads; give at most {model.config.max_len}, or --target"
        )
    with torch.inference_mode():
        out = model.full_model.generate(
            input_ids=torch.tensor([src.ids], device=device),
            attention_mask=torch.ones(1, len(src.ids), dtype=torch.long, device=device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
        )
    ids = [int(i) for i in out[0].tolist()[1:]]  # without the decoder's start token
    if not ids:
        raise AttnvizError(f"{model.info.source}: the model wrote no target; give --target")
    specials = set(model.hf_tokenizer.all_special_ids)
    tokens = [str(t) for t in model.hf_tokenizer.convert_ids_to_tokens(ids)]
    return TokenizedText(ids, tokens, [(0, 0)] * len(ids), [None] * len(ids), [i in specials for i in ids])
