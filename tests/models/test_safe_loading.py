"""PyTorch state dicts load with torch.load(weights_only=True) only: pickled code never runs.

The malicious files below really do run code when unpickled the ordinary way (each test proves
that first, on a separate marker), and attnviz must refuse them without creating its marker.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

import attnviz
from attnviz.checkpoints import random_model
from attnviz.checkpoints.statedict import load_state_dict
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention
from cli_runs import assert_one_error_line, invoke

TEXT = "All is well."


class Payload:
    """Unpickling this object calls exec(): arbitrary code that creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def malicious_files(marker):
    """(name, bytes) of three kinds of poisoned checkpoints, all creating `marker` when unpickled."""
    payload = {"embeddings.word.weight": torch.zeros(2, 2), "evil": Payload(marker)}
    import io

    zipped, legacy = io.BytesIO(), io.BytesIO()
    torch.save(payload, zipped)  # torch >= 1.6 zip format
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)  # the old raw format
    return [
        ("zip", zipped.getvalue()),
        ("legacy", legacy.getvalue()),
        ("raw-pickle", pickle.dumps(Payload(marker), protocol=2)),
        ("raw-pickle-4", pickle.dumps(Payload(marker), protocol=4)),
    ]


@pytest.fixture()
def folder(tmp_path):
    model = random_model(EncoderConfig(num_layers=1, num_heads=2, d_model=16, d_ff=24), seed=0)
    attnviz.save_model(model, tmp_path / "m")
    return tmp_path / "m"


@pytest.mark.parametrize("kind", ["zip", "legacy", "raw-pickle", "raw-pickle-4"])
def test_malicious_pickle_is_refused_and_never_runs(folder, tmp_path, kind, monkeypatch):
    # Proof that the payload is live: the ordinary unpickler runs it.
    proof = tmp_path / f"proof-{kind}"
    data = dict(malicious_files(proof))[kind]
    (tmp_path / "proof.bin").write_bytes(data)
    if kind.startswith("raw-pickle"):
        pickle.loads(data)
    else:
        torch.load(tmp_path / "proof.bin", weights_only=False)
    assert proof.read_text() == "pwned"

    marker = tmp_path / f"marker-{kind}"
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(dict(malicious_files(marker))[kind])
    # Even this environment variable (which flips torch.load's default) must not re-enable pickles.
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    line = assert_one_error_line(invoke("show", TEXT, "--model", str(folder)), "pytorch_model.bin")
    if kind != "raw-pickle-4":
        assert "refused" in line and "weights_only=True" in line
    else:  # protocol 4 is not even a torch file: the restricted unpickler stops at its first opcode
        assert "not a readable PyTorch state dict" in line
    with pytest.raises(AttnvizError):
        load_state_dict(folder / "pytorch_model.bin")
    assert not marker.exists()


def test_malicious_file_given_directly(folder, tmp_path):
    marker = tmp_path / "marker-direct"
    (folder / "evil.pt").write_bytes(dict(malicious_files(marker))["zip"])
    result = invoke("show", TEXT, "--model", str(folder / "evil.pt"))
    assert_one_error_line(result, "evil.pt", "refused", "asks for exec")  # says what the file asked for
    assert not marker.exists()


@pytest.mark.slow
def test_plain_and_wrapped_state_dicts_load(folder):
    reference = attnviz.load_model(str(folder))
    want = run_attention(reference, TEXT).weights
    state = reference.encoder.state_dict()
    (folder / "model.safetensors").unlink()
    half = {k: v.half() for k, v in state.items()}
    for payload, atol in ((state, 0), ({"state_dict": state}, 0), (half, 5e-2)):
        torch.save(payload, folder / "pytorch_model.bin")
        got = run_attention(attnviz.load_model(str(folder)), TEXT).weights
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def bad_bin(folder, payload=None, raw=None) -> str:
    (folder / "model.safetensors").unlink(missing_ok=True)
    if raw is not None:
        (folder / "pytorch_model.bin").write_bytes(raw)
    else:
        torch.save(payload, folder / "pytorch_model.bin")
    return assert_one_error_line(invoke("show", TEXT, "--model", str(folder)), "pytorch_model.bin")


@pytest.mark.slow
def test_corrupt_and_wrong_state_dicts(folder):
    state = attnviz.load_model(str(folder)).encoder.state_dict()
    torch.save(state, folder / "good.bin")
    good = (folder / "good.bin").read_bytes()
    assert "not a readable PyTorch state dict" in bad_bin(folder, raw=good[: len(good) // 2])
    assert "not a readable PyTorch state dict" in bad_bin(folder, raw=b"\x00garbage" * 50)
    assert "not a readable PyTorch state dict" in bad_bin(folder, raw=b"")

    wrong = dict(state)
    wrong["layers.0.ffn.down.weight"] = torch.zeros(16, 25)
    line = bad_bin(folder, wrong)
    assert "layers.0.ffn.down.weight" in line and "[16, 25]" in line and "[16, 24]" in line

    missing = {k: v for k, v in state.items() if k != "embeddings.norm.bias"}
    assert "missing key 'embeddings.norm.bias'" in bad_bin(folder, missing)

    assert "expected a state dict" in bad_bin(folder, [1, 2, 3])
    line = bad_bin(folder, {**state, "layers.0.attention.out.bias": 3})
    assert "layers.0.attention.out.bias is a int, not a tensor" in line
    ints = {**state, "layers.0.attention.out.bias": torch.zeros(16, dtype=torch.int64)}
    assert "layers.0.attention.out.bias" in bad_bin(folder, ints) and "int64" in bad_bin(folder, ints)


def test_family_folder_with_malicious_bin(tmp_path):
    """The same protection for BERT-family folders (pytorch_model.bin is their old default)."""
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "bert",
                "vocab_size": 10,
                "hidden_size": 8,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 8,
                "max_position_embeddings": 16,
            }
        )
    )
    marker = tmp_path / "marker-bert"
    (folder / "pytorch_model.bin").write_bytes(dict(malicious_files(marker))["zip"])
    with pytest.raises(AttnvizError, match="refused"):
        attnviz.load_model(str(folder))
    assert not marker.exists()
