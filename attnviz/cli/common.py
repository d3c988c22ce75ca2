"""What every command shares: error handling, model options, output writing."""

from __future__ import annotations

import contextlib
import enum
import functools
import io
import inspect
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import AttnvizError


class _State:
    debug = bool(os.environ.get("ATTNVIZ_DEBUG"))


STATE = _State()


def fail(message: str, code: int = 2) -> int:
    """Print one line on stderr (never a traceback) and return the exit status."""
    line = " ".join(str(message).split()) or "unknown error"
    print(f"attnviz: error: {line}", file=sys.stderr)
    return code


def handles_errors(command):
    """Turn AttnvizError into exit 2 and unexpected exceptions into exit 1, one line each."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except AttnvizError as exc:
            raise typer.Exit(fail(str(exc), 2)) from None
        except BrokenPipeError:
            # `attnviz show ... | head`: the reader left; that is not an error of ours.
            sys.stderr.close()
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            raise typer.Exit(fail("interrupted", 130)) from None
        except Exception as exc:
            if STATE.debug:
                raise
            raise typer.Exit(fail(f"internal error: {type(exc).__name__}: {exc} "
                                  "(rerun with --debug for the traceback and report it)", 1)) from None

    return wrapper


def emit(text: str, output: Path | None, overwrite: bool) -> None:
    """Machine-readable output: to stdout, or atomically into --output."""
    if output is None:
        typer.echo(text, nl=False)
    else:
        from ..io import atomic_write

        atomic_write(output, text, overwrite)


@contextlib.contextmanager
def report_console(output: Path | None, overwrite: bool, width: int = 100):
    """A rich Console for the terminal or, with --output, for a plain-text file written (atomically)
    when the block ends; the file is `width` columns wide and has no colour codes."""
    from rich.console import Console

    sink = io.StringIO() if output is not None else None
    console = Console(file=sink, width=width if sink else None, highlight=False, soft_wrap=False,
                      no_color=sink is not None)
    yield console
    if sink is not None:
        from ..io import atomic_write

        atomic_write(output, sink.getvalue(), overwrite)


class View(str, enum.Enum):
    attention = "attention"
    rollout = "rollout"
    norm = "norm"


class Positional(str, enum.Enum):
    sinusoidal = "sinusoidal"
    learned = "learned"
    none = "none"


class NormPlacement(str, enum.Enum):
    post = "post"
    pre = "pre"


class Activation(str, enum.Enum):
    gelu = "gelu"
    gelu_tanh = "gelu_tanh"
    relu = "relu"
    silu = "silu"


# Options shared by every command that builds a model. Random-model flags default to None so we
# can tell "not given" from the default and refuse them for checkpoints.
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="'random' (default), a checkpoint folder or weights file, 'minilm', or a model id already in the local Hugging Face cache.")]
TokenizerOpt = Annotated[Optional[Path], typer.Option("--tokenizer", help="Use this tokenizer.json (or a folder holding one) instead of the model's.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random model's weights.")]
NumLayersOpt = Annotated[Optional[int], typer.Option("--num-layers", help="Random model: number of encoder layers [default: 2].")]
NumHeadsOpt = Annotated[Optional[int], typer.Option("--num-heads", help="Random model: attention heads per layer [default: 4].")]
DModelOpt = Annotated[Optional[int], typer.Option("--d-model", help="Random model: hidden size, divisible by --num-heads [default: 64].")]
DFfOpt = Annotated[Optional[int], typer.Option("--d-ff", help="Random model: feed-forward size [default: 256].")]
MaxLenOpt = Annotated[Optional[int], typer.Option("--max-len", help="Random model: longest input in tokens [default: 256].")]
PositionalOpt = Annotated[Optional[Positional], typer.Option("--positional", help="Random model: positional encoding [default: sinusoidal].")]
NormOpt = Annotated[Optional[NormPlacement], typer.Option("--norm-placement", help="Random model: LayerNorm after each sub-block (post, the textbook block) or before it (pre) [default: post].")]
ActivationOpt = Annotated[Optional[Activation], typer.Option("--activation", help="Random model: feed-forward activation [default: gelu].")]


@dataclass(frozen=True)
class RandomShape:
    """The random-model flags as given on the command line (None: not given)."""

    num_layers: int | None = None
    num_heads: int | None = None
    d_model: int | None = None
    d_ff: int | None = None
    max_len: int | None = None
    positional: Positional | None = None
    norm_placement: NormPlacement | None = None
    activation: Activation | None = None

    def given(self) -> dict:
        return {f.name: (v.value if isinstance(v, enum.Enum) else v)
                for f in fields(self) if (v := getattr(self, f.name)) is not None}


_SHAPE_OPTIONS = {"num_layers": NumLayersOpt, "num_heads": NumHeadsOpt, "d_model": DModelOpt, "d_ff": DFfOpt,
                  "max_len": MaxLenOpt, "positional": PositionalOpt, "norm_placement": NormOpt,
                  "activation": ActivationOpt}


def with_random_shape(command):
    """Give `command` the eight random-model flags (--num-layers ... --activation) as one
    `shape: RandomShape` parameter: Typer sees the options, the command one object."""
    signature = inspect.signature(command, eval_str=True)
    visible = [p for p in signature.parameters.values() if p.name != "shape"]
    visible += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
                for name, annotation in _SHAPE_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        shape = RandomShape(**{name: kwargs.pop(name) for name in _SHAPE_OPTIONS})
        return command(*args, shape=shape, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=visible)
    return wrapper


def build_model(model: str, tokenizer: Path | None, seed: int, shape: RandomShape = RandomShape()):
    """Resolve --model; the random-model flags apply to `random` only."""
    from ..checkpoints import load_model
    from ..config import EncoderConfig

    given = shape.given()
    if model != "random" and given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise AttnvizError(f"{flags} set the shape of a random model; a checkpoint brings its own config")
    config = EncoderConfig(**given) if model == "random" else None
    return load_model(model, config=config, seed=seed, tokenizer=str(tokenizer) if tokenizer else None)
