"""Running the real `attnviz` command in a subprocess, for the hardening tests (issue 16) that need
a real process: file descriptors, signals, the environment, the working folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def attnviz_cmd(*args, stdin=None, env: dict | None = None, timeout: float = 180, cwd=None, stdout=None):
    """The CompletedProcess (bytes) of `python -m attnviz ARGS` from this tree. `stdin`: bytes, or
    a file object / descriptor; `stdout`: a file object to write to instead of capturing."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100", "ATTNVIZ_MAX_MEMORY": "3G"}
    environment.update(env or {})
    environment = {k: v for k, v in environment.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "attnviz", *args],
        input=stdin if isinstance(stdin, bytes) else None,
        stdin=None if isinstance(stdin, bytes) or stdin is None else stdin,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        env=environment,
        timeout=timeout,
        cwd=cwd,
    )


def one_error_line(proc) -> str:
    """Exit 2 and exactly one line on stderr, `attnviz: error: ...`; returns that line."""
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2, (proc.returncode, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("attnviz: error: ") and "Traceback" not in err, err
    return err.strip()


def one_line_in_process(capsys, code: int) -> str:
    """The same for `attnviz.cli.main([...])` run in this process (its stderr captured)."""
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.endswith("\n") and err.count("\n") == 1 and err.startswith("attnviz: error: "), err
    return err.strip()
