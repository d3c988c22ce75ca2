"""Running attnviz in tests: in this process through typer's runner (`invoke`), or as the real
command in a subprocess (`run_attnviz`: stdin bytes, pipes, signals and argv as a shell gives
them), and the one check every bad input shares (`assert_one_error_line`).

`invoke`/`invoke_json` are also the `cli`/`cli_json` fixtures of tests/conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A small random model's shape flags: fast everywhere a command only needs some model.
TINY = ["--num-layers", "2", "--num-heads", "2", "--d-model", "16", "--d-ff", "32"]


def invoke(*args, input=None, env=None):
    """`attnviz ARGS` in this process, stdout and stderr kept apart: a click Result whose
    `exit_code`, `stdout`, `stderr` (and `output`, both) the test reads."""
    from typer.testing import CliRunner

    from attnviz.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], input=input, env=env)


def invoke_json(*args, input=None, env=None):
    """`attnviz ARGS` that must succeed; its standard output parsed as JSON."""
    result = invoke(*args, input=input, env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_attnviz(*args, stdin: bytes | None = None, env: dict | None = None, timeout: float = 120, cwd=None):
    """The real command line (this tree's attnviz, `python -m attnviz`) in a subprocess: the
    CompletedProcess, stdout and stderr as bytes. ATTNVIZ_MAX_MEMORY is unset unless `env` sets it."""
    from attnviz.sizes import LIMIT_VARIABLE

    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    environment.pop(LIMIT_VARIABLE, None)
    return subprocess.run(
        [sys.executable, "-m", "attnviz", *args],
        input=stdin,
        capture_output=True,
        env={**environment, **(env or {})},
        timeout=timeout,
        cwd=cwd,
    )


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def assert_one_error_line(result, *fragments: str) -> str:
    """The contract for bad input: exit 2 and exactly one line on stderr, `attnviz: error: ...`,
    holding every fragment; no traceback and no "internal error" anywhere. Takes what `invoke`
    returns or a CompletedProcess (text or bytes); returns the line without its newline."""
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    out, err = _text(result.stdout), _text(result.stderr)
    assert code == 2, (code, err, out[-2000:])
    assert err.endswith("\n") and err.count("\n") == 1, err
    line = err[:-1]
    assert line.startswith("attnviz: error: ") and "internal error" not in line, line
    assert "Traceback" not in out + err, out + err
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line
