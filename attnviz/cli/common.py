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

from ..config import ACTIVATIONS, DTYPES, FFNS, NORM_PLACEMENTS, NORMS, POSITIONAL, VIEWS
from ..errors import AttnvizError
from ..workers import stop_if_sigterm


class _State:
    debug = bool(os.environ.get("ATTNVIZ_DEBUG"))


STATE = _State()
# What the running command must undo when it ends, however it ends (an offload folder of
# --device auto): `at_command_end` registers, `handles_errors` closes.
_COMMAND_END: list[contextlib.ExitStack] = []


def at_command_end(callback, *args) -> None:
    """Call `callback(*args)` when the running command ends: success, error, Ctrl-C or SIGTERM
    (`unwind_on_sigterm`). Outside a command (library use), nothing: the caller cleans up itself."""
    if _COMMAND_END:
        unwind_on_sigterm()
        _COMMAND_END[-1].callback(callback, *args)


def unwind_on_sigterm() -> None:
    """From now until the running command ends, SIGTERM unwinds like Ctrl-C (workers.exit_on_sigterm),
    so `at_command_end` callbacks and `finally` blocks run on a `kill` too."""
    if _COMMAND_END and not getattr(_COMMAND_END[-1], "sigterm_unwinds", False):
        from ..workers import exit_on_sigterm

        _COMMAND_END[-1].enter_context(exit_on_sigterm())
        _COMMAND_END[-1].sigterm_unwinds = True


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
            try:
                with contextlib.ExitStack() as stack:
                    _COMMAND_END.append(stack)
                    try:
                        done = command(*args, **kwargs)
                    finally:
                        _COMMAND_END.remove(stack)
            except Exception:
                stop_if_sigterm()  # the signal, renamed by a C extension (see workers.py)
                raise
            stop_if_sigterm()  # ... or swallowed by one
            return done
        except (typer.Exit, typer.Abort):
            raise
        except AttnvizError as exc:
            raise typer.Exit(fail(str(exc), 2)) from None
        except BrokenPipeError:
            # `attnviz show ... | head`: the reader left; that is not an error of ours.
            raise typer.Exit(quiet_stdout()) from None
        except KeyboardInterrupt:
            raise typer.Exit(fail("interrupted", 130)) from None
        except Exception as exc:
            if STATE.debug:
                raise
            raise typer.Exit(
                fail(
                    f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback and report it)",
                    1,
                )
            ) from None

    return wrapper


def quiet_stdout() -> int:
    """After a closed pipe: point stdout at /dev/null, so that the final flush at exit (of whatever
    Python still buffers) cannot fail again, and return the exit status 0 (Python's docs on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (a test harness): nothing left to flush
        pass
    return 0


def finish_stdout(code: int) -> int:
    """Flush standard output before exiting with `code`: a full disk or /dev/full met by the last
    bytes is one error line and exit 2 (not a success with a cut file), a closed pipe is quiet."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return quiet_stdout() if code == 0 else code
    except AttnvizError as exc:  # files.WriteError from the checked standard output
        return fail(str(exc), 2) if code == 0 else code
    except (OSError, ValueError):  # an unchecked stream (a test harness) that is closed
        pass
    return code


def make_console(**kwargs):
    """A rich Console for attnviz's output: like rich's own, except that a closed pipe raises
    BrokenPipeError (which `handles_errors` turns into a quiet exit 0) where rich would exit 1."""
    from rich.console import Console

    class PipeConsole(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError

    return PipeConsole(**kwargs)


def emit(text: str, output: Path | None, overwrite: bool) -> None:
    """Machine-readable output: to stdout, or atomically into --output."""
    if output is None:
        from ..files import write_stdout_bytes

        write_stdout_bytes(text.encode("utf-8", "surrogateescape"))  # JSON is UTF-8 whatever the locale
    else:
        from ..files import atomic_write

        atomic_write(output, text, overwrite)


@contextlib.contextmanager
def report_console(output: Path | None, overwrite: bool, width: int = 100):
    """A rich Console for the terminal or, with --output, for a plain-text file written (atomically)
    when the block ends; the file is `width` columns wide and has no colour codes."""
    sink = io.StringIO() if output is not None else None
    yield make_console(**_console_options(output, width, sink))
    if sink is not None:
        from ..files import atomic_write

        atomic_write(output, sink.getvalue(), overwrite)


def _console_options(output: Path | None, width: int, sink) -> dict:
    """report_console's Console options: the terminal's own size and colours, or with --output a
    plain `width`-column file."""
    return dict(
        file=sink,
        width=width if output is not None else None,
        highlight=False,
        soft_wrap=False,
        no_color=output is not None,
    )


def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """A str Enum for typer whose members are `values`: the config's (or the library's) own tuple,
    so a choice added there is a CLI choice at once."""
    return enum.Enum(name, {v: v for v in values}, type=str)


View = _choices("View", VIEWS)
Positional = _choices("Positional", POSITIONAL)
NormPlacement = _choices("NormPlacement", NORM_PLACEMENTS)
Activation = _choices("Activation", ACTIVATIONS)
Norm = _choices("Norm", NORMS)
Ffn = _choices("Ffn", FFNS)
Dtype = _choices("Dtype", DTYPES)


def _selection(value: str | None) -> str | None:
    """--layer/--head: "" would otherwise read as "all", silently."""
    if value is not None and not value.strip():
        raise typer.BadParameter("an empty selection; give indices and ranges such as 0,2 or 1-3, or 'all'")
    return value


# Layer and head selections ("0,2", "1-3", "all"); parse them with selection.parse_indices.
LayerOpt = Annotated[
    Optional[str],
    typer.Option("--layer", "-l", callback=_selection, help="Layers: indices and ranges such as 0,2 or 1-3, or 'all'."),
]
HeadOpt = Annotated[Optional[str], typer.Option("--head", callback=_selection, help="Heads, like --layer.")]


# Options shared by every command that builds a model. Random-model flags default to None so we
# can tell "not given" from the default and refuse them for checkpoints.
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="'random' (default), a checkpoint folder or weights file, 'minilm', or a model id already in the local Hugging Face cache.",
    ),
]
TokenizerOpt = Annotated[
    Optional[Path],
    typer.Option("--tokenizer", help="Use this tokenizer.json (or a folder holding one) instead of the model's."),
]
SeedOpt = Annotated[
    int, typer.Option("--seed", min=0, help="Seed of the random model's weights (a non-negative integer).")
]
NumLayersOpt = Annotated[
    Optional[int], typer.Option("--num-layers", help="Random model: number of encoder layers [default: 2].")
]
NumHeadsOpt = Annotated[
    Optional[int], typer.Option("--num-heads", help="Random model: attention heads per layer [default: 4].")
]
DModelOpt = Annotated[
    Optional[int], typer.Option("--d-model", help="Random model: hidden size, divisible by --num-heads [default: 64].")
]
DFfOpt = Annotated[Optional[int], typer.Option("--d-ff", help="Random model: feed-forward size [default: 256].")]
MaxLenOpt = Annotated[
    Optional[int], typer.Option("--max-len", help="Random model: longest input in tokens [default: 256].")
]
PositionalOpt = Annotated[
    Optional[Positional],
    typer.Option(
        "--positional",
        help="Random model: positional encoding; rope rotates queries and keys by position (LLaMA) [default: sinusoidal].",
    ),
]
NormOpt = Annotated[
    Optional[NormPlacement],
    typer.Option(
        "--norm-placement",
        help="Random model: LayerNorm after each sub-block (post, the textbook block) or before it (pre) [default: post].",
    ),
]
ActivationOpt = Annotated[
    Optional[Activation], typer.Option("--activation", help="Random model: feed-forward activation [default: gelu].")
]
CausalOpt = Annotated[
    bool,
    typer.Option(
        "--causal",
        help="Random model: a decoder; each token attends only to itself and the tokens before it (the look-ahead mask).",
    ),
]
NormKindOpt = Annotated[
    Optional[Norm],
    typer.Option("--norm", help="Random model: LayerNorm (layer) or RMSNorm (rms, LLaMA) [default: layer]."),
]
KvHeadsOpt = Annotated[
    Optional[int],
    typer.Option(
        "--kv-heads",
        help="Random model: key/value heads, each shared by a group of query heads (grouped-query attention); divides --num-heads [default: one per head].",
    ),
]
FfnOpt = Annotated[
    Optional[Ffn],
    typer.Option(
        "--ffn",
        help="Random model: feed-forward down(act(up x)) (standard) or down(act(gate x) * up x) (gated, SwiGLU) [default: standard].",
    ),
]
DtypeOpt = Annotated[
    Optional[Dtype],
    typer.Option(
        "--dtype",
        help="Precision of the model's weights; attention is always returned as float32 [default: float32].",
        show_default=False,
    ),
]
DeviceOpt = Annotated[
    Optional[str],
    typer.Option(
        "--device",
        help="Where the model runs: cpu, cuda (cuda:N) or mps when torch sees that GPU, or auto: accelerate places a transformers model across the GPUs, the CPU and disk (models bigger than one device; the transformers engine) [default: cpu].",
        show_default=False,
    ),
]
MaxMemoryOpt = Annotated[
    Optional[str],
    typer.Option(
        "--max-memory",
        help="With --device auto: the most each device may hold of the weights, e.g. cpu=2GiB or 0=20GiB,cpu=30GiB; the rest is read from disk layer by layer [default: what accelerate finds free].",
        show_default=False,
    ),
]
OffloadDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--offload-dir",
        help="With --device auto: make the folder for offloaded weights inside this folder (removed when the command ends) [default: the temporary folder].",
        show_default=False,
    ),
]

Engine = _choices("Engine", ("auto", "native", "transformers"))  # engines.ENGINES (not imported: --help stays light)
EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="What runs the model: native (attnviz's own, exact and fast, for the families it reads), transformers (any model transformers loads; pip install 'attnviz[transformers]'), or auto: native where it reads the model, else transformers.",
    ),
]

# RandomShape field -> EncoderConfig field, where the names differ.
_CONFIG_NAMES = {"kv_heads": "num_kv_heads"}
# RandomShape fields that apply to every model, not the random model's shape.
EVERY_MODEL = ("dtype", "device", "max_memory", "offload_dir")


@dataclass(frozen=True)
class RandomShape:
    """The model flags as given on the command line (None: not given): the random model's shape,
    and the precision and device that apply to every model (`dtype`, `device`)."""

    num_layers: int | None = None
    num_heads: int | None = None
    d_model: int | None = None
    d_ff: int | None = None
    max_len: int | None = None
    positional: Positional | None = None
    norm_placement: NormPlacement | None = None
    activation: Activation | None = None
    causal: bool = False
    norm: Norm | None = None
    kv_heads: int | None = None
    ffn: Ffn | None = None
    dtype: Dtype | None = None
    device: str | None = None
    max_memory: str | None = None  # --device auto only (engines/placement.py)
    offload_dir: Path | None = None

    def given(self) -> dict:
        """The random-model shape flags given, by their option names (not those of every model)."""
        return {
            f.name: (v.value if isinstance(v, enum.Enum) else v)
            for f in fields(self)
            if f.name not in EVERY_MODEL and (v := getattr(self, f.name)) is not None and v is not False
        }

    def budget(self) -> dict | None:
        """--max-memory parsed (None when not given); one line when it goes without --device auto
        or does not read. Torch-free: checked before anything loads."""
        from ..engines.placement import AUTO, parse_max_memory

        if self.device != AUTO:
            given = [flag for flag, v in (("--max-memory", self.max_memory), ("--offload-dir", self.offload_dir)) if v]
            if given:
                raise AttnvizError(
                    f"{' and '.join(given)} go{'es' * (len(given) == 1)} with --device auto "
                    "(accelerate's placement across GPUs, CPU and disk)"
                )
            return None
        return None if self.max_memory is None else parse_max_memory(self.max_memory)

    def config(self):
        """The random model's EncoderConfig (AttnvizError on a bad combination)."""
        from ..config import EncoderConfig

        return EncoderConfig(**{_CONFIG_NAMES.get(k, k): v for k, v in self.given().items()})


def option_group(param: str, group: type, options: dict):
    """A decorator: Typer sees each of `options` ({name: (annotated type, default)}) as an option
    of its own, while the command receives them together as one `param: group` object."""

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        visible = [p for p in signature.parameters.values() if p.name != param]
        visible += [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for name, (annotation, default) in options.items()
        ]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            kwargs[param] = group(**{name: kwargs.pop(name) for name in options})
            return command(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=visible)
        return wrapper

    return decorate


_SHAPE_OPTIONS = {
    "num_layers": (NumLayersOpt, None),
    "num_heads": (NumHeadsOpt, None),
    "d_model": (DModelOpt, None),
    "d_ff": (DFfOpt, None),
    "max_len": (MaxLenOpt, None),
    "positional": (PositionalOpt, None),
    "norm_placement": (NormOpt, None),
    "activation": (ActivationOpt, None),
    "causal": (CausalOpt, False),
    "norm": (NormKindOpt, None),
    "kv_heads": (KvHeadsOpt, None),
    "ffn": (FfnOpt, None),
}
# The random-model flags and --dtype/--device (every command that runs a model).
SHAPE_OPTIONS = {
    **_SHAPE_OPTIONS,
    "dtype": (DtypeOpt, None),
    "device": (DeviceOpt, None),
    "max_memory": (MaxMemoryOpt, None),
    "offload_dir": (OffloadDirOpt, None),
}
# ... received as `shape: RandomShape`.
with_random_shape = option_group("shape", RandomShape, SHAPE_OPTIONS)
# The random-model flags alone (`init`, which writes a model without running it).
with_shape_only = option_group("shape", RandomShape, _SHAPE_OPTIONS)


@dataclass(frozen=True)
class ModelFlags:
    """--model, --tokenizer, --seed and the random-model shape, as given on the command line."""

    model: str = "random"
    tokenizer: Path | None = None
    seed: int = 0
    shape: RandomShape = RandomShape()
    engine: Engine = Engine.auto

    @classmethod
    def from_options(cls, **given) -> "ModelFlags":
        shape = RandomShape(**{name: given.pop(name) for name in SHAPE_OPTIONS})
        return cls(shape=shape, **given)

    def build(self, model: str | None = None, last_layer: int | None = None):
        """The model these flags describe (`model` replaces --model: inspect's MODEL argument),
        loaded up to `last_layer` (None: all layers)."""
        return build_model(
            self.model if model is None else model, self.tokenizer, self.seed, self.shape, last_layer, self.engine
        )


def model_flags(model_option: bool = True):
    """A decorator: the model flags of every command that builds one, received as `models: ModelFlags`.
    Without `model_option` the command names the model itself (inspect's MODEL argument)."""
    options = {"model": (ModelOpt, "random")} if model_option else {}
    options.update(
        {"tokenizer": (TokenizerOpt, None), "seed": (SeedOpt, 0), **SHAPE_OPTIONS, "engine": (EngineOpt, Engine.auto)}
    )
    return option_group("models", ModelFlags.from_options, options)


def check_not_dash(
    option: str, path: Path | None, what: str = "a file", dash: str = "- is standard output only for --output"
) -> None:
    """The other side of `stdout_or_file`: `-` means standard output only for --output (text); an
    image, a page or export's folder named `-` would be a file of that name here, never what was meant."""
    if path is not None and str(path) == "-":
        raise AttnvizError(f"{option} writes {what}: give it a name ({dash})")


def stdout_or_file(output: Path | None) -> Path | None:
    """--output as commands use it: `-o -` means standard output, as it does for most tools, so
    it is None (no file) like no --output at all."""
    return None if output is not None and str(output) == "-" else output


@dataclass(frozen=True)
class OutputFlags:
    """--output, --overwrite and (where a command has it) --truncate, as given on the command line.
    `-o -` is standard output: `output` is then None and `to_stdout` True."""

    output: Path | None = None
    overwrite: bool = False
    truncate: bool = False
    to_stdout: bool = False

    def __post_init__(self) -> None:
        if self.output is not None and stdout_or_file(self.output) is None:
            object.__setattr__(self, "output", None)
            object.__setattr__(self, "to_stdout", True)

    def check(self) -> None:
        """Refuse an existing --output (without --overwrite) before any slow work."""
        if self.output is not None:
            from ..files import check_writable

            check_writable(self.output, self.overwrite)

    def emit(self, text: str) -> None:
        emit(text, self.output, self.overwrite)

    def console(self, width: int = 100):
        return report_console(self.output, self.overwrite, width)

    def probe_console(self, width: int = 100):
        """A console like `console()`'s (same width and colours) that writes nothing: its size, known
        before the model runs, sets the grid a long text's overview is pooled to while streaming."""
        return make_console(**_console_options(self.output, width, io.StringIO() if self.output is not None else None))


OUTPUT_HELP = "Write to this file instead of the terminal (written atomically); - is standard output."


def output_flags(
    replaces: str = "--output",
    truncate: str | None = None,
    *,
    output_help: str = OUTPUT_HELP,
    overwrite_help: str | None = None,
    required: bool = False,
):
    """A decorator: --output/-o and --overwrite (help: "Replace `replaces` ...", or `overwrite_help`),
    and --truncate with the help `truncate` when given, received as `out: OutputFlags`. With
    `required`, --output must be given (export's folder)."""
    if overwrite_help is None:
        overwrite_help = f"Replace {replaces} if {'they exist' if '/' in replaces else 'it exists'}."
    output_type = Path if required else Optional[Path]
    options = {
        "output": (
            Annotated[output_type, typer.Option("--output", "-o", help=output_help, show_default=False)],
            inspect.Parameter.empty if required else None,
        ),
        "overwrite": (overwrite_option(overwrite_help), False),
    }
    if truncate is not None:
        options["truncate"] = (truncate_option(truncate), False)
    return option_group("out", OutputFlags, options)


def overwrite_option(help: str):
    """--overwrite with `help` (what it replaces), as a type for a parameter."""
    return Annotated[bool, typer.Option("--overwrite", help=help)]


def focus_option(help: str):
    """--focus/-f (a word of the text, or a token index) with `help`, as a type for a parameter."""
    return Annotated[Optional[str], typer.Option("--focus", "-f", help=help, show_default=False)]


def candidates_option(help: str, required: bool = False):
    """--candidates/-c (comma-separated words) with `help`; `required`: a str that must be given."""
    return Annotated[
        str if required else Optional[str], typer.Option("--candidates", "-c", help=help, show_default=False)
    ]


def words_option(help: str):
    """--words (subword pieces merged into words) with `help`, as a type for a parameter."""
    return Annotated[bool, typer.Option("--words", help=help)]


def top_option(help: str, most: int):
    """--top (how many, 1 to `most`) with `help`, as a type for a parameter."""
    return Annotated[int, typer.Option("--top", min=1, max=most, help=help)]


def truncate_option(help: str):
    """--truncate with `help` (what is cut, and what happens without it), as a type for a parameter."""
    return Annotated[bool, typer.Option("--truncate", help=help)]


class Preset(str, enum.Enum):
    slide = "slide"
    paper = "paper"


@dataclass(frozen=True)
class ImageFlags:
    """The figure flags of `show --png`, `export` and `compare --png`, as given on the command line."""

    cmap: str = "viridis"
    annotate: bool = False
    dpi: float | None = None
    size: str | None = None
    preset: Preset | None = None
    transparent: bool = False
    scale: str | None = None

    def require(self, png) -> None:
        """Figure flags without the image they shape are a mistake, not something to ignore."""
        given = [
            flag
            for flag, value, default in (
                ("--cmap", self.cmap, "viridis"),
                ("--annotate", self.annotate, False),
                ("--dpi", self.dpi, None),
                ("--size", self.size, None),
                ("--preset", self.preset, None),
                ("--transparent", self.transparent, False),
                ("--scale", self.scale, None),
            )
            if value != default
        ]
        if png is None and given:
            raise AttnvizError(
                f"{', '.join(given)} shape{'s' * (len(given) == 1)} an image: add --png FILE "
                "(the terminal tables and --html do not use it)"
            )

    def options(self):
        """Validated render.image.ImageOptions (AttnvizError on a bad value)."""
        from ..render.image import ImageOptions, parse_size, validate_options

        preset = self.preset.value if self.preset is not None else None
        inches = parse_size(self.size, self.dpi, preset) if self.size is not None else None
        return validate_options(
            ImageOptions(
                cmap=self.cmap,
                annotate=self.annotate,
                dpi=self.dpi,
                size=inches,
                preset=preset,
                transparent=self.transparent,
                scale=self.scale,
            )
        )


# The figure flags, received as `image: ImageFlags`.
with_image_flags = option_group(
    "image",
    ImageFlags,
    {
        "cmap": (
            Annotated[
                str,
                typer.Option(
                    "--cmap",
                    help="Colormap: any matplotlib name; viridis (perceptually uniform, colour-blind safe) by default.",
                ),
            ],
            "viridis",
        ),
        "annotate": (
            Annotated[
                bool,
                typer.Option(
                    "--annotate", help="Write each cell's weight in it (when the cells are big enough to read it)."
                ),
            ],
            False,
        ),
        "dpi": (
            Annotated[
                Optional[float],
                typer.Option(
                    "--dpi",
                    help="Pixels per inch of PNG output [default: 120; slide 150; paper 300].",
                    show_default=False,
                ),
            ],
            None,
        ),
        "size": (
            Annotated[
                Optional[str],
                typer.Option(
                    "--size",
                    help="Figure size WIDTHxHEIGHT in inches (8x4.5), or with a unit: 20x12cm, 160x90mm, 1600x900px [default: fitted to the sentence].",
                    show_default=False,
                ),
            ],
            None,
        ),
        "preset": (
            Annotated[
                Optional[Preset],
                typer.Option(
                    "--preset",
                    help="slide: 16:9, 2000x1125 px, large type; paper: 3.5 in column (7 in for grids), small type, 300 dpi, best saved as .pdf or .svg.",
                    show_default=False,
                ),
            ],
            None,
        ),
        "transparent": (
            Annotated[bool, typer.Option("--transparent", help="Transparent background instead of white.")],
            False,
        ),
        "scale": (
            Annotated[
                Optional[str],
                typer.Option(
                    "--scale",
                    help="Colour scale: fixed (0-1, so images compare; attention and rollout rows sum to one), auto (each image's largest weight, excluded sink tokens left out), or a maximum such as 0.5 shared by every image [default: fixed; auto for --view norm].",
                    show_default=False,
                ),
            ],
            None,
        ),
    },
)


def build_model(
    model: str,
    tokenizer: Path | None,
    seed: int,
    shape: RandomShape = RandomShape(),
    last_layer: int | None = None,
    engine=Engine.auto,
):
    """Resolve --model; the random-model flags apply to `random` only, --dtype and --device to any.

    last_layer: the last layer the command will look at (None: all); later ones are not loaded.
    engine: --engine (see `choose_engine`)."""
    from ..checkpoints import load_model
    from ..engines.placement import AUTO

    engine = engine.value if isinstance(engine, enum.Enum) else str(engine)
    budget = shape.budget()  # --max-memory: before anything loads
    if shape.device == AUTO:
        folder = _placed_folder(model, engine)
    elif engine != "native" and model != "random":
        folder = choose_engine(model, engine)
    else:
        folder = None
    if folder is not None:
        if tokenizer is not None:
            raise AttnvizError(
                "--tokenizer replaces a native model's tokenizer; the transformers engine uses the model's own"
            )
        from ..engines import transformers_engine

        unwind_on_sigterm()  # a `kill` during the load still removes the offload folder (the load's own cleanup)
        loaded = transformers_engine.load(
            folder,
            model,
            dtype=shape.dtype.value if shape.dtype else None,
            device=shape.device,
            max_memory=budget,
            offload_dir=shape.offload_dir,
        )
        at_command_end(loaded.close)  # the offload folder goes when the command ends
        return loaded
    if engine == "transformers" and model == "random":
        raise AttnvizError("the random model runs on the native engine only; drop --engine transformers")
    given = shape.given()
    if model != "random" and given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise AttnvizError(f"{flags} set the shape of a random model; a checkpoint brings its own config")
    config = None
    if model == "random":
        from ..sizes import check_model_size

        config = shape.config()
        # Named by the flags that set them; before torch is even imported.
        check_model_size(config, keys={_CONFIG_NAMES.get(k, k): "--" + k.replace("_", "-") for k in given})
    return load_model(
        model,
        config=config,
        seed=seed,
        tokenizer=str(tokenizer) if tokenizer else None,
        last_layer=last_layer,
        dtype=shape.dtype.value if shape.dtype else None,
        device=shape.device,
    )


def _placed_folder(spec: str, engine: str) -> Path:
    """The model folder `--device auto` hands to accelerate, through the transformers engine
    (whatever --engine auto would choose: accelerate places transformers modules); the native
    engine has no placement across devices, which is one line."""
    from ..engines import INSTALL, transformers_available

    use = "use --device cpu (or cuda, mps)"
    if engine == "native":
        raise AttnvizError(
            "--device auto is accelerate's placement, which the transformers engine runs: "
            f"{use} with --engine native, or --engine auto"
        )
    if spec == "random":
        raise AttnvizError(
            f"--device auto places a transformers model folder; the random model runs on the native engine: {use}"
        )
    from ..checkpoints import read_config
    from ..checkpoints.native import is_native

    folder = _transformers_folder(spec, False)
    if folder is None or is_native(read_config(folder)):
        raise AttnvizError(
            f"--device auto places a transformers model folder (config.json and weights); {spec!r} is not one "
            f"(a GGUF file, a weights file or an attnviz checkpoint run on the native engine): {use}"
        )
    if not transformers_available():
        raise AttnvizError(f"--device auto needs the transformers engine, which is not installed: {INSTALL}")
    return folder


def choose_engine(spec: str, engine: str) -> Path | None:
    """The model folder to load through transformers, or None for the native engine: with
    `--engine transformers` any transformers folder (or cached model id), with `auto` the ones
    whose model_type the native loaders do not read. Without transformers installed, such a
    model is one line naming the extra."""
    from ..checkpoints import native_reads
    from ..engines import INSTALL, transformers_available

    folder = _transformers_folder(spec, engine == "transformers")
    if folder is None:
        return None
    if engine == "auto" and native_reads(folder):
        return None
    if not transformers_available():
        kind = "" if engine == "transformers" else " the native engine does not read it, and"
        raise AttnvizError(f"model {spec!r}:{kind} the transformers engine is not installed: {INSTALL}")
    return folder


def _transformers_folder(spec: str, required: bool) -> Path | None:
    """The folder of a transformers model `spec` names (a folder or a cached id), or None (a
    GGUF file, a weights file, a short name... for the native engine); `required`: one line instead."""
    from ..checkpoints import GGUF_SUFFIX
    from ..checkpoints.named import SHORT_FILES, SPLIT_FILES, resolve_named

    path = Path(spec).expanduser()
    if not path.exists() and spec.lower() not in {**SHORT_FILES, **SPLIT_FILES}:
        try:
            path, _ = resolve_named(spec)
        except AttnvizError:
            if required:
                raise
            return None
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if required:
        what = "a GGUF file" if path.suffix.lower() == GGUF_SUFFIX else "not a transformers model folder"
        raise AttnvizError(f"model {spec!r}: {what}; the transformers engine loads a folder with config.json")
    return None
