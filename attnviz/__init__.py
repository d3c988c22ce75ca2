"""attnviz: see what the heads of a transformer encoder attend to.

Light on import: torch and matplotlib load only when a model runs or an image is drawn.
"""

__version__ = "0.1.0"

# Imported here, before the `attention` function below is defined: importing the submodule later
# would rebind the name `attnviz.attention` from the function to the module.
from .attention import AttentionResult, ModelInfo  # noqa: E402  (NumPy only)
from .config import EncoderConfig  # noqa: E402
from .errors import AttnvizError  # noqa: E402


def load_model(spec: str = "random", **kwargs):
    """Load a model ("random", a checkpoint folder, a named model) with its tokenizer."""
    from .checkpoints import load_model as _load

    return _load(spec, **kwargs)


def save_model(model, folder, **kwargs):
    """Write a loaded model as an attnviz checkpoint folder; see `attnviz.checkpoints.save_model`."""
    from .checkpoints import save_model as _save

    return _save(model, folder, **kwargs)


def attention(model, text: str, **kwargs) -> AttentionResult:
    """Run `text` through a loaded model; see `attnviz.pipeline.run_attention`."""
    from .pipeline import run_attention

    return run_attention(model, text, **kwargs)


__all__ = ["AttentionResult", "AttnvizError", "EncoderConfig", "ModelInfo", "attention", "load_model", "save_model",
           "__version__"]
