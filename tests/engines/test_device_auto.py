"""`--device auto`: accelerate places a transformers model across GPUs, CPU and disk (its
big-model inference). On this CPU-only machine a tiny random LLaMA made here is loaded with a CPU
budget too small for it, so some layers really are offloaded to disk (the device map the engine
used, in the JSON, says "disk"); the attention equals the plain CPU run and transformers' own. The
offload folder attnviz makes is gone after success, errors and Ctrl-C; bad --max-memory, devices
torch does not see and unusable offload folders are one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")


import tiny_hf
from cli_runs import assert_one_error_line, invoke

from attnviz.engines.placement import OffloadFolder, parse_max_memory, placement_summary
from attnviz.errors import AttnvizError

TEXT = "the cat sat on the mat because it was tired ."
LONG = " ".join(["the cat sat on the mat ."] * 45)  # over show's SHORT_TEXT_BYTES: the plan is checked
# A CPU budget that holds the embeddings and one layer (~0.8 MB each) of the 3.3 MB model below,
# so accelerate puts the other layers on disk.
BUDGET = "cpu=2000000"


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    """A random LLaMA (4 layers, 4 heads, 2 KV heads, d 128) with its tokenizer, saved by
    transformers in safetensors."""
    import torch
    import transformers

    folder = tmp_path_factory.mktemp("hf") / "llama"
    tok = tiny_hf.tokenizer(True)
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=256,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _json(*args, env=None) -> dict:
    result = invoke("show", *args, "--format", "json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _weights(data: dict) -> np.ndarray:
    return np.asarray(data["weights"], dtype=np.float32)


# --- offloading for real ----------------------------------------------------------------------


@pytest.mark.slow
def test_offloaded_run_equals_the_cpu_run_and_says_where_layers_went(llama, tmp_path):
    offload = tmp_path / "offload"
    offload.mkdir()
    placed = _json(TEXT, "-m", llama, "--device", "auto", "--max-memory", BUDGET, "--offload-dir", offload)
    plain = _json(TEXT, "-m", llama, "--engine", "transformers")
    extra = placed["model"]["config"]["extra"]
    devices = set(extra["device_map"].values())
    assert devices == {"cpu", "disk"}, extra["device_map"]  # offloading really happened
    assert extra["device_map"]["embed_tokens"] == "cpu" and extra["device_map"]["norm"] == "disk"
    assert "disk: layers." in extra["placement"] and extra["device"] == "auto"
    assert "device_map" not in plain["model"]["config"]["extra"]
    assert placed["tokens"] == plain["tokens"]
    np.testing.assert_allclose(_weights(placed), _weights(plain), rtol=0, atol=1e-6)
    expected, _ = tiny_hf.reference(llama, TEXT)
    np.testing.assert_allclose(_weights(placed), expected, rtol=0, atol=1e-6)
    assert list(offload.iterdir()) == []  # attnviz's folder inside --offload-dir is gone
    # The terminal header says it too.
    shown = invoke("show", TEXT, "-m", llama, "--device", "auto", "--max-memory", BUDGET, "-l", "0", "--head", "0")
    assert shown.exit_code == 0, shown.output
    header = " ".join(shown.stdout.split())
    assert "Placed by accelerate (--device auto): cpu: embed_tokens" in header and "disk: layers." in header


@pytest.mark.slow
def test_library_load_keeps_the_folder_while_loaded_and_close_removes_it(llama, tmp_path):
    from attnviz.engines import transformers_engine
    from attnviz.pipeline import run_attention

    model = transformers_engine.load(
        llama, str(llama), device="auto", max_memory=parse_max_memory(BUDGET), offload_dir=tmp_path
    )
    folder = model.offload.path
    assert folder.is_dir() and folder.parent == tmp_path and folder.name.startswith("attnviz-offload-")
    assert "disk" in model.device_map.values()
    result = run_attention(model, TEXT, layers=[3], heads=[1, 0], focus=2)
    expected, _ = tiny_hf.reference(llama, TEXT)
    assert result.weights.dtype == np.float32 and result.weights.shape == (1, 2, 11, 11)
    np.testing.assert_allclose(result.weights, expected[[3]][:, [1, 0]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.focus_rows, expected[:, :, 2, :], rtol=0, atol=1e-6)
    assert result.notes[0].startswith("Placed by accelerate (--device auto): cpu: embed_tokens")
    model.close()
    model.close()  # idempotent
    assert not folder.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cross_attention_of_an_offloaded_encoder_decoder_equals_the_plain_run(tmp_path):
    t5 = tiny_hf.make("t5", tmp_path / "t5")
    args = ["the cat sat on the mat .", "--target", "le chat sur le tapis .", "-m", t5]
    placed = _json(*args, "--device", "auto", "--max-memory", "cpu=20000")
    plain = _json(*args)
    assert placed["attention"] == plain["attention"] == "cross"
    assert "disk" in placed["model"]["config"]["extra"]["device_map"].values()
    assert placed["key_tokens"] == plain["key_tokens"] and placed["tokens"] == plain["tokens"]
    np.testing.assert_allclose(_weights(placed), _weights(plain), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_weights_offloaded_from_a_pytorch_bin_are_written_to_the_folder_and_removed(llama, tmp_path):
    """From safetensors accelerate reads offloaded weights in place; from a pytorch_model.bin it
    writes them into the offload folder: there while the model is loaded, gone after."""
    import shutil

    import torch
    from safetensors.torch import load_file

    from attnviz.engines import transformers_engine
    from attnviz.pipeline import run_attention

    folder = tmp_path / "bin"
    folder.mkdir()
    torch.save(load_file(llama / "model.safetensors"), folder / "pytorch_model.bin")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(llama / name, folder)
    offload = tmp_path / "offload"
    offload.mkdir()
    model = transformers_engine.load(
        folder, "bin", device="auto", max_memory=parse_max_memory(BUDGET), offload_dir=offload
    )
    written = list(model.offload.path.iterdir())
    assert any(p.name.startswith("layers.3.") for p in written), written
    expected, _ = tiny_hf.reference(llama, TEXT)
    np.testing.assert_allclose(run_attention(model, TEXT).weights, expected, rtol=0, atol=1e-6)
    model.close()
    assert list(offload.iterdir()) == []
    ran = invoke("show", TEXT, "-m", folder, "--device", "auto", "--max-memory", BUDGET, "--offload-dir", offload)
    assert ran.exit_code == 0, ran.output
    assert "disk: layers." in " ".join(ran.stdout.split()) and list(offload.iterdir()) == []


@pytest.mark.slow
def test_whole_model_fits_and_the_map_says_so(llama):
    data = _json(TEXT, "-m", llama, "--device", "auto", "--max-memory", "cpu=1GiB")
    extra = data["model"]["config"]["extra"]
    assert extra["device_map"] == {"": "cpu"} and extra["placement"] == "cpu: the whole model"


@pytest.mark.slow
def test_a_long_text_is_not_refused_because_the_whole_model_would_not_fit_in_ram(llama, monkeypatch):
    """show checks a long text's plan before loading: with --device auto only the CPU budget of
    the weights counts (the rest is on disk), so a limit below maps + whole model still runs."""
    from attnviz.checkpoints import peek_model
    from attnviz.sizes import Outputs, check_plan, model_bytes, run_bytes

    config, tokenizer = peek_model(str(llama))
    T = len(tokenizer.encode(LONG, max_len=config.max_len).ids)
    # Every layer's maps (transformers') and the float32 copy of those kept (here all of them).
    maps = run_bytes(config, T) + 4 * config.num_layers * config.num_heads * T * T
    budget = 2_000_000
    limit = maps + budget + model_bytes(config) // 4  # < maps + the whole model
    assert limit < maps + model_bytes(config)
    monkeypatch.setenv("ATTNVIZ_MAX_MEMORY", str(limit))
    with pytest.raises(AttnvizError, match="more than attnviz may use here"):
        check_plan(config, T, config.num_layers, config.num_heads, Outputs(), every_map=True)
    env = {"ATTNVIZ_MAX_MEMORY": str(limit)}
    ok = invoke("show", LONG, "-m", llama, "--device", "auto", "--max-memory", f"cpu={budget}", "-l", "0", env=env)
    assert ok.exit_code == 0, ok.output
    # ... while maps that do not fit are still refused before the model loads, in one line.
    small = {"ATTNVIZ_MAX_MEMORY": str(maps // 2)}
    refused = invoke("show", LONG, "-m", llama, "--device", "auto", "--max-memory", f"cpu={budget}", env=small)
    assert_one_error_line(refused, "attention maps of", "(transformers returns all 4 x 4)", "would need")
    # The transformers engine on one device holds every map too, whatever is shown: counted.
    one = {"ATTNVIZ_MAX_MEMORY": str(model_bytes(config) + run_bytes(config, T, 1, 1, 1) + 10**6)}
    shown = invoke("show", LONG, "-m", llama, "-l", "0", "--head", "0", "--engine", "native", env=one)
    assert shown.exit_code == 0, shown.output  # the native engine keeps one map
    refused = invoke("show", LONG, "-m", llama, "-l", "0", "--head", "0", "--engine", "transformers", env=one)
    assert_one_error_line(refused, "in 1 layer x 1 head (transformers returns all 4 x 4)", "would need")


@pytest.mark.slow
def test_a_model_bigger_than_the_limit_runs_offloaded_where_the_native_engine_refuses_it(llama):
    from attnviz.checkpoints import peek_model
    from attnviz.sizes import model_bytes

    env = {"ATTNVIZ_MAX_MEMORY": str(model_bytes(peek_model(str(llama))[0]) // 2)}
    assert_one_error_line(invoke("show", TEXT, "-m", llama, env=env), "more than attnviz may use here")
    placed = invoke("show", TEXT, "-m", llama, "--device", "auto", "--max-memory", BUDGET, env=env)
    assert placed.exit_code == 0, placed.output


def test_check_plan_counts_only_the_weights_that_stay_in_ram(monkeypatch):
    from attnviz.config import EncoderConfig
    from attnviz.sizes import LIMIT_VARIABLE, Outputs, check_plan, model_bytes, placed_weights, run_bytes

    config = EncoderConfig(num_layers=4, num_heads=4, d_model=256, d_ff=1024, vocab_size=32000, max_len=512)
    weights, maps = model_bytes(config), run_bytes(config, 100)
    monkeypatch.setenv(LIMIT_VARIABLE, str(maps + weights // 2))
    with pytest.raises(AttnvizError, match="more than attnviz may use here"):
        check_plan(config, 100, 4, 4, Outputs())  # the whole model counted: refused
    check_plan(config, 100, 4, 4, Outputs(), weights_in_ram=placed_weights(config, weights // 4))
    check_plan(config, 100, 4, 4, Outputs(), weights_in_ram=placed_weights(config, None))
    assert placed_weights(config, 10**12) == weights and placed_weights(config, 1000) == 1000


# --- the offload folder goes, whatever happens --------------------------------------------------


@pytest.mark.slow
def test_offload_folder_is_removed_after_a_failed_load_and_after_ctrl_c(llama, tmp_path, monkeypatch):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(llama, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    offload = tmp_path / "offload"
    offload.mkdir()
    failed = invoke("show", TEXT, "-m", broken, "--device", "auto", "--offload-dir", offload)
    assert_one_error_line(failed, "transformers cannot load it")
    assert list(offload.iterdir()) == []

    from attnviz.engines import transformers_engine

    made = []
    real = OffloadFolder.__init__

    def record(self, parent=None):
        real(self, parent)
        made.append(self.path)

    def interrupted(*args, **kwargs):
        assert made and made[-1].is_dir()  # the folder exists while the model runs
        raise KeyboardInterrupt

    monkeypatch.setattr(OffloadFolder, "__init__", record)
    monkeypatch.setattr(transformers_engine, "forward_layers", interrupted)
    stopped = invoke("show", TEXT, "-m", llama, "--device", "auto", "--max-memory", BUDGET, "--offload-dir", offload)
    assert stopped.exit_code == 130 and stopped.stderr == "attnviz: error: interrupted\n"
    assert len(made) == 1 and not made[0].exists() and list(offload.iterdir()) == []


@pytest.mark.slow
def test_offload_folder_is_removed_on_sigterm(llama, tmp_path, monkeypatch):
    """A `kill` while the model runs unwinds like Ctrl-C (exit 143): the folder goes."""
    import os
    import signal

    from attnviz import workers
    from attnviz.engines import transformers_engine

    monkeypatch.setattr(workers, "_sigterm", False)  # restored after: the flag a SIGTERM sets
    seen = []

    def killed(model, *args, **kwargs):
        seen.append(model.offload.path)
        assert seen[0].is_dir()
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not unwind")

    monkeypatch.setattr(transformers_engine, "forward_layers", killed)
    handler = signal.getsignal(signal.SIGTERM)
    result = invoke("show", TEXT, "-m", llama, "--device", "auto", "--max-memory", BUDGET, "--offload-dir", tmp_path)
    assert result.exit_code == 143, result.output
    assert seen and not seen[0].exists() and list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is handler  # the command's handler is gone with it


# The real command in a process of its own whose forward pass waits (so a signal finds the
# offload folder there): the folder it made is gone once the signal has stopped it.
SLOW_FORWARD = """
import sys, time
from attnviz.engines import transformers_engine
def waiting(*args, **kwargs):
    print("running", flush=True)
    time.sleep(60)
transformers_engine.forward_layers = waiting
from attnviz.cli import app
sys.argv = ["attnviz", *sys.argv[1:]]
app()
"""


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("signal_name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_to_the_real_command_removes_the_offload_folder(llama, tmp_path, signal_name, code):
    import os
    import signal
    import subprocess

    from cli_runs import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["show", TEXT, "-m", str(llama), "--device", "auto", "--max-memory", BUDGET, "--offload-dir", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_FORWARD, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout.readline() == "running\n"  # the model is loaded, its folder made
        made = list(tmp_path.iterdir())
        assert len(made) == 1 and made[0].name.startswith("attnviz-offload-")
        proc.send_signal(getattr(signal, signal_name))
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []


def test_offload_folder_is_made_inside_the_given_one_and_removed(tmp_path):
    keep = tmp_path / "mine.txt"
    keep.write_text("the user's file")
    folder = OffloadFolder(tmp_path)
    (folder.path / "layers.1.bin").write_bytes(b"\0" * 10)
    assert folder.path.parent == tmp_path and not folder.closed
    folder.close()
    assert folder.closed and not folder.path.exists() and keep.read_text() == "the user's file"


# --- one line for what cannot work --------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--device", "cuda"], ["device 'cuda': torch sees no CUDA GPU on this machine"]),
        (["--device", "cuda:1", "--engine", "transformers"], ["device 'cuda:1': torch sees no CUDA GPU"]),
        (["--device", "mps"], ["device 'mps': torch sees no Apple GPU"]),
        (["--device", "tpu"], ["unknown device 'tpu': choose cpu or cuda", "auto"]),
        (["--device", "auto", "--max-memory", "0=1GiB"], ["--max-memory names GPU 0 but torch sees no CUDA GPU"]),
    ],
)
@pytest.mark.slow
def test_devices_torch_does_not_see_are_one_line(llama, args, fragments):
    assert_one_error_line(invoke("show", TEXT, "-m", llama, *args), *fragments)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--device", "auto", "--max-memory", "cpu=2XB"], ["'2XB' is not a size"]),
        (["--device", "auto", "--max-memory", "cpu"], ["'cpu' is not DEVICE=SIZE", "cpu=2GiB"]),
        (["--device", "auto", "--max-memory", ""], ["--max-memory is empty"]),
        (["--device", "auto", "--max-memory", "gpu=1G"], ["unknown device 'gpu'"]),
        (["--device", "auto", "--max-memory", "cpu=1G,cpu=2G"], ["cpu is given twice"]),
        (["--device", "auto", "--max-memory", "cpu=0"], ["leaves no memory"]),
        (["--device", "auto", "--max-memory", "cpu=-1G"], ["is not a size"]),
        (["--max-memory", "cpu=1G"], ["--max-memory goes with --device auto"]),
        (["--offload-dir", "."], ["--offload-dir goes with --device auto"]),
        (["--device", "auto", "--engine", "native"], ["--device auto is accelerate's placement", "--engine auto"]),
        (["--device", "auto", "--offload-dir", "/proc"], ["cannot make an offload folder in --offload-dir /proc"]),
        (["--device", "auto", "--offload-dir", "/no/such/folder"], ["--offload-dir /no/such/folder does not exist"]),
    ],
)
def test_bad_placement_flags_are_one_line_before_anything_loads(args, fragments, tmp_path):
    """Against a folder that is no model: each is refused before a model would be read."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    assert_one_error_line(invoke("show", TEXT, "-m", model, *args), *fragments)


def test_an_offload_dir_that_is_a_file_and_models_accelerate_cannot_place_are_one_line(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}')
    afile = tmp_path / "file"
    afile.write_text("x")
    line = assert_one_error_line(invoke("show", TEXT, "-m", model, "--device", "auto", "--offload-dir", afile))
    assert "is not a folder" in line
    assert_one_error_line(invoke("show", TEXT, "--device", "auto"), "the random model runs on the native engine")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert_one_error_line(invoke("show", TEXT, "-m", gguf, "--device", "auto"), "is not one", "--device cpu")


def test_max_memory_reads_like_accelerate():
    assert parse_max_memory("cpu=2GiB") == {"cpu": 2 * 2**30}
    assert parse_max_memory(" 0=20GiB, cpu = 30GB ,cuda:1=1.5MiB") == {
        0: 20 * 2**30,
        "cpu": 30 * 10**9,
        1: int(1.5 * 2**20),
    }
    assert parse_max_memory("CPU=500000,mps=4G") == {"cpu": 500000, "mps": 4 * 2**30}
    for bad in ("cpu=", "=1G", "cpu=1G,", "cpu=1e9", "cpu=1GiBs", "cpu=٣G", "disk=1G", "cpu:0=1G", "cpu==1G"):
        with pytest.raises(AttnvizError, match="--max-memory"):
            parse_max_memory(bad)


def test_placement_summary_groups_consecutive_layers():
    device_map = {"embed_tokens": "cpu", "layers.0": 0, "layers.1": 0, "layers.2": "cpu", "layers.3": "disk"}
    device_map.update({"layers.4": "disk", "norm": "disk", "rotary_emb": "disk"})
    assert (
        placement_summary(device_map)
        == "cpu: embed_tokens, layers.2; cuda:0: layers.0-1; disk: layers.3-4, norm, rotary_emb"
    )
    assert placement_summary({"": "disk"}) == "disk: the whole model"
