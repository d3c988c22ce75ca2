"""Without the `[transformers]` extra (transformers and accelerate not importable), the native
engine runs every model it reads and gives the same output as with it; a model only the
transformers engine reads is one line naming the extra's install command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import warnings

import pytest

import tiny_hf
from cli_runs import ROOT, assert_one_error_line, invoke_json

pytestmark = [pytest.mark.subprocess, pytest.mark.slow]

TEXT = "the cat sat on the mat because it was tired ."

# attnviz's CLI in a fresh interpreter where transformers and accelerate are not installed, as far
# as Python can tell: a None entry in sys.modules makes find_spec answer None and import fail.
WITHOUT_EXTRA = (
    "import sys\n"
    "sys.modules.update(transformers=None, accelerate=None)\n"
    "from attnviz.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def without_extra(*args) -> subprocess.CompletedProcess:
    home = tempfile.mkdtemp(prefix="attnviz-home-")  # its caches, never the repository's
    try:
        return subprocess.run(
            [sys.executable, "-c", WITHOUT_EXTRA, *map(str, args)],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "100", "HOME": home},
            timeout=300,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A BERT and a LLaMA folder (both read natively) written by transformers, and an ALBERT
    folder (transformers engine only)."""
    import torch
    import transformers as T

    base = tmp_path_factory.mktemp("without-extra")
    shape = dict(vocab_size=len(tiny_hf.tokenizer(False)), hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    made = {
        "bert": (T.BertConfig(**shape, intermediate_size=64, max_position_embeddings=64), False),
        "llama": (T.LlamaConfig(**shape, intermediate_size=64, num_key_value_heads=2), True),
    }
    folders = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (config, decoder) in made.items():
            torch.manual_seed(0)
            T.AutoModel.from_config(config).save_pretrained(base / name)
            tiny_hf.tokenizer(decoder).save_pretrained(base / name)
            folders[name] = base / name
    folders["albert"] = tiny_hf.make("albert", base / "albert")
    return folders


@pytest.mark.parametrize("which", ["random", "bert", "llama"])
def test_native_models_give_the_same_json_without_the_extra(folders, which):
    model = [] if which == "random" else ["-m", folders[which]]
    args = ["show", TEXT, *model, "--format", "json", "--engine", "native"]
    run = without_extra(*args)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == invoke_json(*args)


def test_images_and_pages_need_no_extra(folders, tmp_path):
    png, html = tmp_path / "a.png", tmp_path / "a.html"
    run = without_extra("show", TEXT, "-m", folders["llama"], "--png", png, "--html", html)
    assert run.returncode == 0, run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "<html" in html.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "model, flags",
    [("albert", ["--engine", "auto"]), ("albert", ["--engine", "transformers"]), ("bert", ["--device", "auto"])],
)
def test_what_needs_transformers_names_the_extra(folders, model, flags):
    run = without_extra("show", TEXT, "-m", folders[model], *flags)
    assert_one_error_line(run, "pip install 'attnviz[transformers]'")
