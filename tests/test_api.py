"""The Python API's names: `attnviz.attention` stays the function whatever is imported after it."""

import subprocess
import sys


def test_attention_function_survives_submodule_imports():
    code = ("import attnviz\n"
            "from attnviz.attention import AttentionResult\n"
            "import attnviz.attention\n"
            "model = attnviz.load_model('random')\n"
            "result = attnviz.attention(model, 'All is well.')\n"
            "assert isinstance(result, AttentionResult), type(result)\n"
            "print(result.weights.shape)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(2, 4, 6, 6)"
