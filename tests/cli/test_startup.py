"""`attnviz --help` (and each command's --help) imports typer and the CLI modules only: no NumPy,
torch, matplotlib, transformers or rich tables, so the help and shell completion stay instant."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "torch", "matplotlib", "transformers", "tokenizers", "attnviz.result", "attnviz.pipeline")

SCRIPT = """
import json, sys
from attnviz.cli import main
try:
    main({args!r})
except SystemExit:
    pass
sys.stderr.write(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


@pytest.mark.subprocess
@pytest.mark.parametrize("args", [["--help"], ["show", "--help"], ["export", "--help"], ["compare", "--help"]])
def test_help_imports_nothing_heavy(args):
    code = SCRIPT.format(args=args, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


@pytest.mark.subprocess
def test_importing_attnviz_itself_is_light():
    code = f"import sys, attnviz; print([m for m in {HEAVY!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
