"""The Python API: the result module is `attnviz.result`, and the notebook names are real functions."""

import inspect
import subprocess
import sys

import pytest

import attnviz


@pytest.mark.slow
@pytest.mark.subprocess
def test_result_module_is_a_module_and_attention_a_function():
    code = (
        "import attnviz\n"
        "import attnviz.result as m\n"
        "import types\n"
        "assert isinstance(m, types.ModuleType), type(m)\n"
        "model = attnviz.load_model('random')\n"
        "result = attnviz.attention(model, 'All is well.')\n"
        "assert isinstance(result, m.AttentionResult), type(result)\n"
        "print(result.weights.shape)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(2, 4, 6, 6)"


def test_public_functions_have_real_signatures():
    for fn in (attnviz.load_model, attnviz.attention, attnviz.save_model, attnviz.render_image):
        params = inspect.signature(fn).parameters.values()
        assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params), fn.__name__
    assert "seed" in inspect.signature(attnviz.load_model).parameters
    assert "layers" in inspect.signature(attnviz.run_attention).parameters


def test_notebook_names_are_exported():
    for name in ("load_model", "run_attention", "render_image", "ImageOptions", "AttentionResult"):
        assert name in attnviz.__all__
        assert getattr(attnviz, name) is not None
