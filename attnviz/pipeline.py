"""Text in, AttentionResult out: tokenize, run the encoder, keep the selected layers and heads."""

from __future__ import annotations

from .attention import AttentionResult
from .checkpoints import LoadedModel


def run_attention(model: LoadedModel, text: str, layers: list[int] | None = None,
                  heads: list[int] | None = None, truncate: bool = False) -> AttentionResult:
    """Attention of `text` for the given layers and heads (default: all).

    Raises AttnvizError for empty text or text longer than the model's maximum (unless
    `truncate`). Layers after the last selected one are never computed.
    """
    import torch

    config = model.config
    layers = list(range(config.num_layers)) if layers is None else list(layers)
    heads = list(range(config.num_heads)) if heads is None else list(heads)
    enc = model.tokenizer.encode(text, max_len=config.max_len, truncate=truncate)
    ids = torch.tensor([enc.ids])                                                  # [1, T]
    type_ids = torch.tensor([enc.type_ids]) if config.type_vocab_size else None
    with torch.inference_mode():
        out = model.encoder(ids, token_type_ids=type_ids, keep_layers=layers)
    weights = out.attentions[0][:, heads].numpy()                                  # [K, H', T, T]
    return AttentionResult(text=text, tokens=enc.tokens, offsets=enc.offsets, word_ids=enc.word_ids,
                           special=enc.special, weights=weights, layers=out.layers, heads=heads,
                           model=model.info, truncated=enc.truncated)
