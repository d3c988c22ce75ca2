"""Jupyter shows an AttentionResult as the interactive page: attnviz registers notebook_html with
IPython's HTML formatter by type name when it is imported in a notebook, so result.py needs no
upward import of the renderers (no import cycle) and `import attnviz` stays free of NumPy."""

from __future__ import annotations

import subprocess
import sys

import pytest

FAKE_NOTEBOOK = """
import sys, types
registered = []
class Formatter:
    def for_type_by_name(self, module, name, func):
        registered.append((module, name, func))
class Shell:
    display_formatter = types.SimpleNamespace(formatters={"text/html": Formatter()})
ipython = types.ModuleType("IPython")
ipython.get_ipython = lambda: Shell()
sys.modules["IPython"] = ipython

import attnviz
assert registered == [("attnviz.result", "AttentionResult", attnviz.notebook_html)], registered
assert "numpy" not in sys.modules

import numpy as np
from attnviz.config import EncoderConfig
from attnviz.result import AttentionResult, ModelInfo
w = np.full((1, 1, 2, 2), 0.5, dtype=np.float32)
r = AttentionResult(text="a b", tokens=["a", "b"], offsets=[(0, 1), (2, 3)], word_ids=[0, 1], special=[False, False],
                    weights=w, layers=[0], heads=[0],
                    model=ModelInfo("random", EncoderConfig(num_layers=1, num_heads=1, d_model=8), seed=0))
page = registered[0][2](r)
assert page.startswith("<iframe") and "srcdoc" in page, page[:80]
print("ok")
"""


@pytest.mark.subprocess
def test_importing_attnviz_in_a_notebook_registers_the_html_view():
    done = subprocess.run([sys.executable, "-c", FAKE_NOTEBOOK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.subprocess
def test_outside_a_notebook_nothing_is_registered_and_ipython_is_not_imported():
    code = "import sys, attnviz; print('IPython' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
