"""Engines that turn a text into an AttentionResult.

The native engine (encoder.py + checkpoints/) runs the families it knows, exactly and fast; it is
what `pipeline` runs by default. `transformers_engine` runs any other model transformers can load
(the optional `attnviz[transformers]` extra), returning the same AttentionResult. A loaded model
says which engine runs it in its `engine` attribute ("native" or "transformers"), which the
pipeline dispatches on.

Nothing here imports transformers or torch at module level (`attnviz --help` stays fast).
"""

from __future__ import annotations

import importlib.util

from ..errors import AttnvizError

ENGINES = ("auto", "native", "transformers")
INSTALL = "pip install 'attnviz[transformers]'"
NATIVE_ONLY = "needs the native engine; this model runs through transformers"


def transformers_available() -> bool:
    return importlib.util.find_spec("transformers") is not None


def engine_of(model) -> str:
    """ "native" or "transformers": the engine that runs a loaded model."""
    return getattr(model, "engine", "native")


def require_native(model, what: str) -> None:
    """One line when `what` (the norm view, ablation...) needs the native engine's layers."""
    if engine_of(model) != "native":
        raise AttnvizError(f"{what} {NATIVE_ONLY}")
