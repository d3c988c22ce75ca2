"""`attnviz ablate` and `attnviz patch`: exit codes, one-line errors, JSON fields, the PNG."""

from __future__ import annotations

import json

import pytest

from attnviz.cli import main
from causal_models import write_model

TEXT = "The queen thanked the king because she had won."
TWIN = "The queen thanked the king because he had won."


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("causal")
    return {key: str(write_model(root, key)[0]) for key in ("gpt2", "bert-bare", "bert-mlm")}


def run(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ablate_json_has_the_fields(folders, capsys):
    code, out, err = run(["ablate", TEXT, "-m", folders["gpt2"], "-c", "queen,king", "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    for key in ("clean", "ablated", "effect", "layers", "heads", "template"):
        assert key in data
    assert data["layers"] == [0, 1, 2] and data["heads"] == [0, 1, 2, 3]
    assert len(data["effect"]) == 3 and len(data["effect"][0]) == 4
    assert data["effect"][1][2] == pytest.approx(data["clean"] - data["ablated"][1][2])
    assert data["focus"] == "she" and "{text}" in data["template"]


def test_ablate_table_layer_level_and_png(folders, capsys, tmp_path):
    png = tmp_path / "map.png"
    code, out, err = run(
        [
            "ablate",
            TEXT,
            "-m",
            folders["bert-mlm"],
            "-c",
            "queen,king",
            "--layer-level",
            "--mode",
            "mean",
            "--png",
            str(png),
        ],
        capsys,
    )
    assert code == 0, err
    assert "clean readout" in out and "heads that matter most: L" in out and "h3" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the PNG is not overwritten without --overwrite
    code, _, err = run(["ablate", TEXT, "-m", folders["gpt2"], "-c", "queen,king", "--png", str(png)], capsys)
    assert code == 2 and err.startswith("attnviz: error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["-c", "queen,prince"], "candidate 'prince' is not a word of the text"),
        (["-c", "queen"], "--candidates takes two words"),
        (["-c", "queen,king", "--focus", "it"], "the focus word 'it' is not in the text"),
        (["-c", "queen,king", "--readout", "no placeholder"], "must contain {text}"),
    ],
)
def test_ablate_bad_input_is_one_line(folders, capsys, args, message):
    code, out, err = run(["ablate", TEXT, "-m", folders["gpt2"], *args], capsys)
    assert code == 2 and out == ""
    assert err.startswith("attnviz: error: ") and message in err and err.count("\n") == 1


def test_models_without_a_head_are_one_line(folders, capsys):
    for model in (folders["bert-bare"], "random"):
        code, out, err = run(["ablate", TEXT, "-m", model, "-c", "queen,king"], capsys)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert "has no language-model head" in err and "decoders" in err and "masked-LM head" in err


def test_patch_json_and_the_length_check(folders, capsys):
    code, out, err = run(
        ["patch", TEXT, TWIN, "-m", folders["gpt2"], "-c", "queen,king", "--position", "focus", "--format", "json"],
        capsys,
    )
    assert code == 0, err
    data = json.loads(out)
    assert len(data["fraction"]) == 3 and len(data["fraction"][0]) == 4 and data["positions"]
    gap = data["clean"] - data["corrupt"]
    assert data["fraction"][0][0] == pytest.approx((data["patched"][0][0] - data["corrupt"]) / gap)
    code, out, err = run(
        [
            "patch",
            TEXT,
            "The queen thanked the king because she really had won.",
            "-m",
            folders["gpt2"],
            "-c",
            "queen,king",
        ],
        capsys,
    )
    assert code == 2 and out == "" and "the twins tokenize to" in err and err.count("\n") == 1
    code, out, err = run(["patch", TEXT, TWIN, "-m", folders["gpt2"], "-c", "queen,king", "--position", "x"], capsys)
    assert code == 2 and "--position takes all, focus, last or a token index" in err
