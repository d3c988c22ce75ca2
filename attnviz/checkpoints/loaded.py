"""What a loaded model is, and the empty encoder a checkpoint fills.

A module of its own so that the loaders (`native`, `families`) import it without importing the
package `__init__`, which imports them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import EncoderConfig
from ..result import ModelInfo
from ..sizes import check_model_size
from ..tokenize import TextTokenizer

if TYPE_CHECKING:  # torch is imported only where a model is built
    from ..encoder import Encoder
    from .weights import WeightFile


@dataclass
class LoadedModel:
    encoder: "Encoder"
    tokenizer: TextTokenizer
    info: ModelInfo

    @property
    def config(self) -> EncoderConfig:
        return self.info.config


def build_encoder(config: EncoderConfig, weights: "WeightFile | None" = None, label: str = "config",
                  data: dict | None = None) -> "Encoder":
    """An Encoder whose parameters a checkpoint is about to supply (see `weights.fill_encoder`).

    First the config is checked, from arithmetic and shapes only: against `weights` when given
    (`weights.check_config_fits`: layers, widths, parameter count) and against the memory limit
    (`sizes.check_model_size`), so an absurd config.json is one line naming `label` and the key
    (as `data`, the raw config.json, calls it) instead of a hang or a failed allocation.

    Built on the meta device (shapes only, no memory) with every `torch.nn.init` function made a
    no-op meanwhile: initialising meta tensors is pointless, and `nn.Embedding`'s `normal_` on
    meta pulls in torch's decomposition machinery (1.3 s of MiniLM's 3.4 s `show`, in cProfile).
    The buffers that are functions of the config (not stored in checkpoints) are computed for real.
    """
    from .weights import CONFIG_KEYS, check_config_fits, config_key

    if weights is not None:
        check_config_fits(config, weights, label, data)
    check_model_size(config, label, {f: config_key(f, config, data) for f in CONFIG_KEYS})

    import torch

    from ..encoder import Encoder, sinusoidal_table

    with torch.device("meta"), no_init():
        encoder = Encoder(config)
    if config.positional == "sinusoidal":
        embeddings = encoder.embeddings
        embeddings.sinusoid = sinusoidal_table(config.max_len, embeddings.word.embedding_dim)
    leftover = [name for name, buf in encoder.named_buffers() if buf.is_meta]
    if leftover:  # a new buffer in Encoder that this function does not know how to compute
        raise RuntimeError(f"internal: buffers {leftover} have no value outside a checkpoint")
    return encoder


@contextlib.contextmanager
def no_init():
    """Every in-place initialiser of torch.nn.init (normal_, kaiming_uniform_, ones_...) returns its
    tensor untouched while the block runs; whatever module classes the encoder uses."""
    from torch.nn import init

    names = [n for n in dir(init) if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))]
    saved = {n: getattr(init, n) for n in names}
    try:
        for n in names:
            setattr(init, n, _untouched)
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)


def _untouched(tensor, *args, **kwargs):
    return tensor
