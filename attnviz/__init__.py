"""attnviz: see what the heads of a transformer attend to.

Light on import: torch and matplotlib load only when a model runs or an image is drawn. The
names a notebook needs are here: `load_model`, `attention` (alias `run_attention`),
`render_image`, `ImageOptions`, `AttentionResult`, `save_model`.
"""

from __future__ import annotations

__version__ = "0.2.0"

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .config import EncoderConfig
from .errors import AttnvizError

if TYPE_CHECKING:  # heavy modules (torch, matplotlib, even NumPy) load on first use, not on import
    from .checkpoints.loaded import LoadedModel
    from .render.image import ImageOptions
    from .result import AttentionResult, ModelInfo


def load_model(
    spec: str = "random",
    *,
    config: EncoderConfig | None = None,
    seed: int = 0,
    tokenizer: str | None = None,
    last_layer: int | None = None,
    dtype: str | None = None,
    device: str | None = None,
) -> "LoadedModel":
    """Load a model ("random", a checkpoint folder or weights file, a named model such as "minilm")
    with its tokenizer. `config` and `seed` shape a random model; `tokenizer` replaces the model's;
    `last_layer` loads layers 0..last_layer only; `dtype` ("float32", "bfloat16", "float16") and
    `device` ("cpu", "cuda") place the weights (attention is float32 whatever the dtype)."""
    from .checkpoints import load_model as _load

    return _load(spec, config=config, seed=seed, tokenizer=tokenizer, last_layer=last_layer, dtype=dtype, device=device)


def save_model(
    model: "LoadedModel", folder: str | Path, *, overwrite: bool = False, learned: bool | None = None
) -> Path:
    """Write a loaded model as an attnviz checkpoint folder; see `attnviz.checkpoints.save_model`."""
    from .checkpoints import save_model as _save

    return _save(model, folder, overwrite=overwrite, learned=learned)


def attention(
    model: "LoadedModel",
    text: str,
    layers: list[int] | None = None,
    heads: list[int] | None = None,
    truncate: bool = False,
    view: str = "attention",
) -> "AttentionResult":
    """Run `text` through a loaded model: the attention of the given layers and heads (default all);
    view "attention", "rollout" or "norm". See `attnviz.pipeline.run_attention`."""
    from .pipeline import run_attention as _run

    return _run(model, text, layers=layers, heads=heads, truncate=truncate, view=view)


run_attention = attention


def render_image(
    result: "AttentionResult",
    layout: str | None = None,
    options: "ImageOptions | None" = None,
    fmt: str = "png",
    focus: int | None = None,
) -> bytes:
    """Draw `result` as image bytes (fmt "png", "svg" or "pdf"). layout: "head", "layer", "model" or
    "focus" (default: chosen from the result's layers and heads, and `focus`)."""
    from .render import image as _image

    layout = layout or _image.choose_layout(result, focus)
    return _image.render_image(result, layout, options or _image.ImageOptions(), fmt=fmt, focus=focus).data


def notebook_html(result: "AttentionResult") -> str:
    """The interactive HTML view of `result` (render/html.py), offline, in a sandboxed iframe (scripts
    only), so several views on one notebook page never clash. Jupyter shows every AttentionResult
    this way once attnviz is imported (see _show_results_in_notebooks)."""
    from .render.html import iframe, render_html

    return iframe(render_html(result))


def _show_results_in_notebooks() -> None:
    """Register notebook_html with IPython's HTML formatter, by type name: neither attnviz.result
    (NumPy) is imported for it nor does result.py point up at the renderers (no import cycle)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is not None and hasattr(shell, "display_formatter"):
        html = shell.display_formatter.formatters["text/html"]
        html.for_type_by_name("attnviz.result", "AttentionResult", notebook_html)


_show_results_in_notebooks()


def __getattr__(name: str):
    # Kept out of the import of attnviz itself, which the CLI pays on every start (`--help` too).
    if name == "ImageOptions":  # matplotlib-free, but not NumPy-free
        from .render.image import ImageOptions

        return ImageOptions
    if name in ("AttentionResult", "ModelInfo"):  # NumPy
        from . import result

        return getattr(result, name)
    raise AttributeError(f"module 'attnviz' has no attribute {name!r}")


__all__ = [
    "AttentionResult",
    "AttnvizError",
    "EncoderConfig",
    "ImageOptions",
    "ModelInfo",
    "attention",
    "load_model",
    "notebook_html",
    "render_image",
    "run_attention",
    "save_model",
    "__version__",
]
