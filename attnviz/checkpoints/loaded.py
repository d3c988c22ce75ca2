"""What a loaded model is, and the empty encoder a checkpoint fills.

A module of its own so that the loaders (`native`, `families`) import it without importing the
package `__init__`, which imports them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import DTYPES, EncoderConfig
from ..errors import AttnvizError
from ..result import ModelInfo
from ..sizes import check_model_size
from ..tokenize import TextTokenizer

if TYPE_CHECKING:  # torch is imported only where a model is built
    from ..encoder import Encoder
    from .weights import WeightFile


DEVICES = ("cpu", "cuda", "mps")


@dataclass
class LoadedModel:
    """An encoder, its tokenizer and what it is.

    `info.config` is the model as its checkpoint describes it (all its layers: headers and JSON
    say so); `encoder.config` is what was built, which has fewer layers when the model was loaded
    with `last_layer` (see `truncated`). Code that runs the encoder asks `encoder.config`."""

    encoder: "Encoder"
    tokenizer: TextTokenizer
    info: ModelInfo
    # The files the weights were read from (none for a random model), and each parameter's
    # (identity, in-place version) just after loading: while they hold, the files' bytes say what
    # the weights are, so `pronoun_heads.fingerprint` can hash (and remember) files instead of
    # hashing every tensor on every run, and a model loaded up to `last_layer` matches its whole self.
    sources: tuple[str, ...] = ()
    _versions: dict = field(default_factory=dict, repr=False, compare=False)
    engine: str = field(default="native", init=False)  # engines/: what pipeline.run_attention dispatches on

    def mark_loaded(self, sources) -> "LoadedModel":
        """Record where the weights came from and their state now (see `sources`)."""
        self.sources = tuple(str(s) for s in sources)
        self._versions = _param_versions(self.encoder)
        return self

    def unchanged_since_load(self) -> bool:
        """True when no parameter was replaced or changed in place since `mark_loaded`."""
        return bool(self.sources) and self._versions == _param_versions(self.encoder)

    @property
    def config(self) -> EncoderConfig:
        return self.info.config

    @property
    def built_layers(self) -> int:
        """How many layers the encoder has (all of them unless loaded with last_layer)."""
        return self.encoder.config.num_layers


def _param_versions(encoder) -> dict:
    """name -> (id, version counter) of every parameter; torch bumps a tensor's version on every
    in-place change (weight += ..., copy_), and a replaced parameter has another id."""
    try:
        return {name: (id(p), p._version) for name, p in encoder.named_parameters()}
    except RuntimeError:  # inference tensors have no version counter: never trust the files then
        return {"": object()}


def truncated(config: EncoderConfig, last_layer: int | None) -> EncoderConfig:
    """The config of the encoder to build when a command needs layers 0..last_layer only.

    A separate config rather than a flag on the encoder: the encoder then simply has fewer
    layers (nothing to skip, nothing to guard), the loaders map and read the tensors of the
    layers it has and no others, while ModelInfo keeps the real config for every description.
    A last_layer at or beyond the last layer means all of them (the command's own layer check
    then names the real count)."""
    if last_layer is None:
        return config
    if isinstance(last_layer, bool) or not isinstance(last_layer, int) or last_layer < 0:
        raise AttnvizError(f"last_layer must be a non-negative layer index, got {last_layer!r}")
    if last_layer + 1 >= config.num_layers:
        return config
    import dataclasses

    types = None if config.layer_types is None else config.layer_types[: last_layer + 1]
    return dataclasses.replace(config, num_layers=last_layer + 1, layer_types=types)


def torch_dtype(name):
    """ "float32" (default), "bfloat16" or "float16" (or that torch dtype) as a torch dtype; anything
    else is an error."""
    import torch

    if isinstance(name, torch.dtype):
        name = str(name).removeprefix("torch.")
    name = name or "float32"
    if name not in DTYPES:
        raise AttnvizError(f"unknown dtype {name!r}: choose one of {', '.join(DTYPES)}")
    return getattr(torch, name)


def torch_device(name: str | None):
    """ "cpu" (default), "cuda", "cuda:N" or "mps", refused with one line when torch sees no such
    device. ("auto", accelerate's placement, is the transformers engine's: engines/placement.py.)"""
    import torch

    name = "cpu" if name is None else str(name)
    if name == "auto":
        raise AttnvizError(
            "device 'auto' is accelerate's placement of a transformers model (--engine transformers); "
            "the native engine runs on one device: choose cpu, cuda or mps"
        )
    kind, colon, index = name.partition(":")
    # An empty --device is a mistake, not cpu; an index is ASCII digits (isdigit alone takes "٣").
    if kind not in DEVICES or (colon and (kind != "cuda" or not (index.isascii() and index.isdigit()))):
        raise AttnvizError(
            f"unknown device {name!r}: choose cpu or cuda (cuda:N for the N-th GPU), mps (Apple GPUs), "
            "or auto (accelerate places a transformers model across GPUs, CPU and disk)"
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise AttnvizError(f"device {name!r}: torch sees no CUDA GPU on this machine; use --device cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise AttnvizError(f"device {name!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise AttnvizError(f"device {name!r}: torch sees no Apple GPU (MPS) on this machine; use --device cpu")
    return torch.device(name)


def place(encoder: "Encoder", dtype=None, device=None) -> "Encoder":
    """Move a built encoder to the dtype and device a command asked for (no copy when it is
    already there: a float32 CPU load is returned as is)."""
    import torch

    dtype, device = dtype or torch.float32, device or torch.device("cpu")
    first = next(encoder.parameters(), None)
    if first is not None and (first.dtype != dtype or first.device != device):
        encoder = encoder.to(device=device, dtype=dtype)
    return encoder


def build_encoder(
    config: EncoderConfig,
    weights: "WeightFile | None" = None,
    label: str = "config",
    data: dict | None = None,
    last_layer: int | None = None,
) -> "Encoder":
    """An Encoder whose parameters a checkpoint is about to supply (see `weights.fill_encoder`),
    with layers 0..last_layer only when that is given (see `truncated`).

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

    config = truncated(config, last_layer)  # checked whole above, built as far as needed

    import torch

    from ..encoder import Encoder

    with torch.device("meta"), no_init():
        encoder = Encoder(config)
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


def check_vocab(model: LoadedModel) -> None:
    """Token ids beyond the embedding table would crash mid-run (or read garbage): refuse now."""
    if model.tokenizer.vocab_size > model.config.vocab_size:
        raise AttnvizError(
            f"{model.tokenizer.source}: the tokenizer has {model.tokenizer.vocab_size} tokens but the "
            f"model's vocab_size is {model.config.vocab_size}; use the model's own tokenizer"
        )
