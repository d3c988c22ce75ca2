"""The `attnviz` command line: parse, call the library, print. No math here.

Each command lives in its own module and is registered below; heavy imports (torch, matplotlib)
happen inside the command functions, so `attnviz --help` stays instant.
"""

from __future__ import annotations

import errno

import typer

from .. import __version__
from .ablate import ablate
from .common import STATE, fail, finish_stdout, quiet_stdout
from .compare import compare
from .explore import explore
from .export import export
from .inspect import inspect
from .patch import patch
from .init import init
from .probe import probe_app
from .show import show

app = typer.Typer(
    name="attnviz",
    help="See what the heads of a transformer encoder attend to, in the terminal or as images.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command(no_args_is_help=True)(show)
app.command()(inspect)
app.command(no_args_is_help=True)(init)
app.command(no_args_is_help=True)(compare)
app.command(no_args_is_help=True)(export)
app.command()(explore)
app.add_typer(probe_app, name="probe")
app.command(no_args_is_help=True)(ablate)
app.command(no_args_is_help=True)(patch)


def _version(value: bool) -> None:
    if value:
        print(f"attnviz {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of unexpected errors."),
) -> None:
    STATE.debug = debug


def _click_exceptions():
    """Recent typer vendors its own copy of click; older ones use click itself."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


def main(argv: list[str] | None = None) -> int:
    """Console entry point: usage errors become one line on stderr with exit status 2; standard
    output is checked (see files.checked_stdout) and flushed before the exit status is decided."""
    from ..environment import check_environment
    from ..files import checked_stdout

    with checked_stdout():
        code = check_environment(fail)
        if code is None:
            code = _run(argv)
        return finish_stdout(code)


def _run(argv: list[str] | None) -> int:
    ex = _click_exceptions()
    try:
        rv = app(args=argv, prog_name="attnviz", standalone_mode=False)
    except ex.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `attnviz show` alone: the help, as is
            print(exc.format_message())
            return 2
        command = exc.ctx.command_path if exc.ctx else "attnviz"
        return fail(f"{exc.format_message()} (see '{command} --help')", 2)
    except ex.ClickException as exc:
        return fail(exc.format_message(), exc.exit_code)
    except typer.Abort:  # Ctrl-C inside a prompt or progress bar
        return fail("interrupted", 130)
    except SystemExit as exc:
        # click answers a closed pipe outside our commands (`attnviz show --help | head -1`) with
        # exit 1; for attnviz the reader leaving is not an error (see common.handles_errors).
        if isinstance(exc.__context__, OSError) and exc.__context__.errno == errno.EPIPE:
            return quiet_stdout()
        raise
    return rv if isinstance(rv, int) else 0
