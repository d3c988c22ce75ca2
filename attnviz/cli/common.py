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


def option_group(param: str, group: type, options: dict):
    """A decorator: Typer sees each of `options` ({name: (annotated type, default)}) as an option
    of its own, while the command receives them together as one `param: group` object."""

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        visible = [p for p in signature.parameters.values() if p.name != param]
        visible += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                    for name, (annotation, default) in options.items()]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            kwargs[param] = group(**{name: kwargs.pop(name) for name in options})
            return command(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=visible)
        return wrapper

    return decorate


# The eight random-model flags, received as `shape: RandomShape`.
with_random_shape = option_group("shape", RandomShape, {
    "num_layers": (NumLayersOpt, None), "num_heads": (NumHeadsOpt, None), "d_model": (DModelOpt, None),
    "d_ff": (DFfOpt, None), "max_len": (MaxLenOpt, None), "positional": (PositionalOpt, None),
    "norm_placement": (NormOpt, None), "activation": (ActivationOpt, None)})


class Preset(str, enum.Enum):
    slide = "slide"
    paper = "paper"


@dataclass(frozen=True)
class ImageFlags:
    """The figure flags of `show --png` and `export`, as given on the command line."""

    cmap: str = "viridis"
    annotate: bool = False
    dpi: float | None = None
    size: str | None = None
    preset: Preset | None = None
    transparent: bool = False

    def options(self):
        """Validated render.image.ImageOptions (AttnvizError on a bad value)."""
        from ..render.image import ImageOptions, parse_size, validate_options

        preset = self.preset.value if self.preset is not None else None
        inches = parse_size(self.size, self.dpi, preset) if self.size is not None else None
        return validate_options(ImageOptions(cmap=self.cmap, annotate=self.annotate, dpi=self.dpi, size=inches,
                                             preset=preset, transparent=self.transparent))


# The figure flags, received as `image: ImageFlags`.
with_image_flags = option_group("image", ImageFlags, {
    "cmap": (Annotated[str, typer.Option("--cmap", help="Colormap: any matplotlib name; viridis (perceptually uniform, colour-blind safe) by default.")], "viridis"),
    "annotate": (Annotated[bool, typer.Option("--annotate", help="Write each cell's weight in it (when the cells are big enough to read it).")], False),
    "dpi": (Annotated[Optional[float], typer.Option("--dpi", help="Pixels per inch of PNG output [default: 120; slide 150; paper 300].", show_default=False)], None),
    "size": (Annotated[Optional[str], typer.Option("--size", help="Figure size WIDTHxHEIGHT in inches (8x4.5), or with a unit: 20x12cm, 160x90mm, 1600x900px [default: fitted to the sentence].", show_default=False)], None),
    "preset": (Annotated[Optional[Preset], typer.Option("--preset", help="slide: 16:9, 2000x1125 px, large type; paper: 3.5 in column (7 in for grids), small type, 300 dpi, best saved as .pdf or .svg.", show_default=False)], None),
    "transparent": (Annotated[bool, typer.Option("--transparent", help="Transparent background instead of white.")], False),
})


def build_model(model: str, tokenizer: Path | None, seed: int, shape: RandomShape = RandomShape(),
                last_layer: int | None = None):
    """Resolve --model; the random-model flags apply to `random` only. A checkpoint is loaded up to
    `last_layer` (inclusive) when given."""
    from ..checkpoints import load_model
    from ..config import EncoderConfig

    given = shape.given()
    if model != "random" and given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise AttnvizError(f"{flags} set the shape of a random model; a checkpoint brings its own config")
    config = EncoderConfig(**given) if model == "random" else None
    options = {} if model == "random" or last_layer is None else {"last_layer": last_layer}
    return load_model(model, config=config, seed=seed, tokenizer=str(tokenizer) if tokenizer else None, **options)
