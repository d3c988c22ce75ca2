"""Issue 16 kind 1: non-finite numbers from finite weights. A checkpoint whose weights are all
finite but huge makes inf/NaN in the forward pass; every output (table, JSON, PNG, HTML) must be
one error line naming the layer, never NaN drawn or written. A float16 overflow blames the cast.
A non-finite epsilon is refused when the model loads."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from attnviz.checkpoints import load_model, random_model, save_model
from attnviz.cli import main
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.numerics import NonFiniteError
from attnviz.text import json_text


def _checkpoint(folder, scale: dict[str, float]):
    """A 2-layer random attnviz checkpoint whose weights named in `scale` are multiplied."""
    save_model(random_model(EncoderConfig(num_layers=2), seed=0), folder)
    weights = load_file(str(folder / "model.safetensors"))
    for name, factor in scale.items():
        weights[name] = weights[name] * factor
    assert all(torch.isfinite(w).all() for w in weights.values())  # finite weights, every one
    save_file(weights, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    folder = tmp_path_factory.mktemp("huge") / "m"
    return _checkpoint(folder, {"layers.0.attention.query.weight": 1e19, "layers.0.attention.key.weight": 1e19})


def _one_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("attnviz: error: "), err
    return err


@pytest.mark.parametrize("extra", [[], ["--format", "json"], ["--png", "out.png"], ["--html", "out.html"]])
def test_huge_finite_weights_are_one_error_naming_the_layer(huge, extra, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["show", "A dog ate food because it was hungry.", "-m", str(huge), *extra])
    err = _one_line(capsys, code)
    assert "layer 0" in err and "inf/NaN" in err
    assert not list(tmp_path.iterdir())  # no image or page drawn from NaN


def test_json_output_never_holds_nan(huge, capsys):
    code = main(["show", "a dog", "-m", str(huge), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 2 and "NaN" not in out


def test_probe_and_compare_refuse_too(huge, capsys):
    code = main(["compare", "A dog ate.", "A cat ate.", "-m", str(huge)])
    assert "layer 0" in _one_line(capsys, code)


def test_float16_overflow_blames_the_cast(tmp_path, capsys):
    # Feed-forward weights x300: fine in float32, but the activations outgrow float16's 65,504.
    folder = _checkpoint(tmp_path / "f16", {"layers.1.ffn.up.weight": 300.0, "layers.1.ffn.down.weight": 300.0})
    assert main(["show", "a dog ate food", "-m", str(folder), "--format", "json"]) == 0
    capsys.readouterr()
    code = main(["show", "a dog ate food", "-m", str(folder), "--dtype", "float16", "--format", "json"])
    err = _one_line(capsys, code)
    assert "layer 1" in err and "float16" in err and "--dtype float32" in err


def test_the_check_names_the_first_layer_with_the_problem():
    model = random_model(EncoderConfig(num_layers=3), seed=0)
    with torch.no_grad():
        model.encoder.layers[1].attention.query.weight.mul_(1e19)
        model.encoder.layers[1].attention.key.weight.mul_(1e19)
    ids = torch.tensor([[1, 5, 7, 9, 2]])
    with pytest.raises(NonFiniteError, match="^layer 1: the attention weights"):
        model.encoder(ids, keep_layers=[1])
    with pytest.raises(NonFiniteError, match="^layer 1: the hidden states"):
        model.encoder(ids, keep_layers=[2])  # layer 1's attention not kept: its output is checked


@pytest.mark.parametrize("eps", ["Infinity", "1e999", "-Infinity", "NaN"])
def test_non_finite_layer_norm_eps_is_refused_at_load(tmp_path, eps):
    save_model(random_model(EncoderConfig(), seed=0), tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    path.write_text(path.read_text().replace('"layer_norm_eps": 1e-12', f'"layer_norm_eps": {eps}'))
    with pytest.raises(AttnvizError, match="layer_norm_eps must be a positive finite number"):
        load_model(str(tmp_path / "m"))


@pytest.mark.parametrize("eps", [float("inf"), 10**400])
def test_config_refuses_infinite_eps_and_rope_base(eps):
    with pytest.raises(AttnvizError, match="layer_norm_eps"):
        EncoderConfig(layer_norm_eps=eps)
    with pytest.raises(AttnvizError, match="rope_base"):
        EncoderConfig(positional="rope", rope_base=eps)


def test_decoder_rms_eps_infinite_is_refused(tmp_path):
    from attnviz.checkpoints.foreign import decoder_eps

    with pytest.raises(AttnvizError, match="rms_norm_eps must be a positive finite number"):
        decoder_eps({"rms_norm_eps": float("inf")}, "rms_norm_eps", 1e-6, "config.json")


def test_json_writer_refuses_nan():
    assert json.loads(json_text({"w": [0.5]})) == {"w": [0.5]}
    with pytest.raises(AttnvizError, match="NaN or infinity"):
        json_text({"w": [float("nan")]})
