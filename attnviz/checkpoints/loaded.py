"""What a loaded model is, and the empty encoder a checkpoint fills.

A module of its own so that the loaders (`native`, `families`) import it without importing the
package `__init__`, which imports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import EncoderConfig
from ..result import ModelInfo
from ..tokenize import TextTokenizer

if TYPE_CHECKING:  # torch is imported only where a model is built
    from ..encoder import Encoder


@dataclass
class LoadedModel:
    encoder: "Encoder"
    tokenizer: TextTokenizer
    info: ModelInfo

    @property
    def config(self) -> EncoderConfig:
        return self.info.config


def build_encoder(config: EncoderConfig) -> "Encoder":
    """An Encoder whose parameters a checkpoint is about to supply (see `weights.fill_encoder`).

    Built on the meta device: shapes only, no memory, no wasted random initialisation. The
    buffers that are functions of the config (not stored in checkpoints) are computed for real.
    """
    import torch

    from ..encoder import Encoder, sinusoidal_table

    with torch.device("meta"):
        encoder = Encoder(config)
    if config.positional == "sinusoidal":
        embeddings = encoder.embeddings
        embeddings.sinusoid = sinusoidal_table(config.max_len, embeddings.word.embedding_dim)
    leftover = [name for name, buf in encoder.named_buffers() if buf.is_meta]
    if leftover:  # a new buffer in Encoder that this function does not know how to compute
        raise RuntimeError(f"internal: buffers {leftover} have no value outside a checkpoint")
    return encoder
