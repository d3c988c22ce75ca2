"""Resolve a `--model` spec into a ready encoder with its tokenizer and a description.

"random" (the default) builds a seeded random encoder from config flags. Checkpoint folders,
state-dict files and named models are resolved here too (see the submodules).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..attention import ModelInfo
from ..config import EncoderConfig
from ..errors import AttnvizError
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


def random_model(config: EncoderConfig | None = None, seed: int = 0,
                 tokenizer: TextTokenizer | None = None) -> LoadedModel:
    """A random encoder: a deterministic function of its config and seed.

    The vocabulary grows to fit the tokenizer, so any `tokenizer.json` works with a random model.
    """
    from ..encoder import Encoder, init_random

    tokenizer = tokenizer or TextTokenizer.default()
    config = config or EncoderConfig()
    if config.vocab_size != tokenizer.vocab_size:
        config = EncoderConfig.from_dict({**config.to_dict(), "vocab_size": tokenizer.vocab_size})
    encoder = init_random(Encoder(config), seed)
    info = ModelInfo(source="random", config=config, seed=seed, learned=False,
                     tokenizer=tokenizer.source, kind="random")
    return LoadedModel(encoder, tokenizer, info)


def load_model(spec: str = "random", *, config: EncoderConfig | None = None, seed: int = 0,
               tokenizer: str | None = None) -> LoadedModel:
    """Load a model by spec. `config` and `seed` apply to random models only.

    `tokenizer` is a path to a tokenizer.json that replaces the model's own.
    """
    tok = TextTokenizer.from_file(tokenizer) if tokenizer else None
    if spec == "random":
        return random_model(config, seed, tok)
    raise AttnvizError(f"unknown model {spec!r}: only 'random' is available in this version")
