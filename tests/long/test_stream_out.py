"""JSON and NPZ written as they are produced equal the old whole-output ones byte for byte on
short texts; --digits rounds and says so; float16 NPZ halves the weights; failures leave nothing."""

from __future__ import annotations

import io
import json
import time
import zipfile

import numpy as np
import pytest

import attnviz
from attnviz import stream_out
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError
from attnviz.pipeline import run_attention

SENTENCE = "The animal didn't cross the street because it was too tired."


@pytest.fixture(scope="module")
def results():
    encoder = attnviz.load_model("random", config=EncoderConfig(num_layers=2, num_heads=3, d_model=24))
    decoder = attnviz.load_model(
        "random", config=EncoderConfig(num_layers=3, num_heads=4, d_model=32, causal=True, positional="rope")
    )
    return {
        "encoder": run_attention(encoder, SENTENCE),
        "decoder-some": run_attention(decoder, SENTENCE, layers=[0, 2], heads=[3, 1]),
        "decoder-focus": run_attention(decoder, SENTENCE, layers=[1], heads=[0], focus=6),
    }


@pytest.mark.parametrize("key", ["encoder", "decoder-some", "decoder-focus"])
def test_json_equals_the_whole_string(results, key, tmp_path):
    result = results[key]
    old = json.dumps(result.to_dict(), ensure_ascii=False) + "\n"
    stream_out.write_json(result, tmp_path / "a.json")
    assert (tmp_path / "a.json").read_text(encoding="utf-8") == old
    pieces = []
    stream_out.write_json(result, None, echo=pieces.append)
    assert "".join(pieces) == old
    extra = {"candidates": {"focus": "it", "scores": [0.5, 0.25]}}
    data = result.to_dict()
    data.update(extra)
    stream_out.write_json(result, tmp_path / "b.json", extra=extra)
    assert (tmp_path / "b.json").read_text(encoding="utf-8") == json.dumps(data, ensure_ascii=False) + "\n"


def test_json_in_many_pieces_is_the_same(results, monkeypatch):
    monkeypatch.setattr(stream_out, "CHUNK_BYTES", 50)
    pieces = list(stream_out.json_pieces(results["encoder"]))
    assert len(pieces) > 20
    assert "".join(pieces) == json.dumps(results["encoder"].to_dict(), ensure_ascii=False) + "\n"


def test_digits_round_and_are_recorded(results, tmp_path):
    result = results["decoder-some"]
    stream_out.write_json(result, tmp_path / "r.json", digits=3)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["digits"] == 3 and list(data)[-1] == "weights"
    weights = np.array(data["weights"])
    np.testing.assert_allclose(weights, result.weights, rtol=0, atol=5e-4 + 1e-7)
    assert all(len(repr(float(w)).split(".")[-1]) <= 3 for w in weights.ravel())
    full = tmp_path / "f.json"
    stream_out.write_json(result, full)
    assert (tmp_path / "r.json").stat().st_size < 0.6 * full.stat().st_size


@pytest.mark.parametrize("key", ["encoder", "decoder-some", "decoder-focus"])
def test_npz_equals_np_savez(results, key, tmp_path, monkeypatch):
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now)  # the zip members' timestamps
    result = results[key]
    buffer = io.BytesIO()
    np.savez(buffer, **result.npz_arrays())
    stream_out.write_npz(result, tmp_path / "a.npz")
    assert (tmp_path / "a.npz").read_bytes() == buffer.getvalue()


def test_npz_float16(results, tmp_path):
    result = results["encoder"]
    stream_out.write_npz(result, tmp_path / "h.npz", precision="float16")
    stream_out.write_npz(result, tmp_path / "s.npz")
    with np.load(tmp_path / "h.npz") as half, np.load(tmp_path / "s.npz") as single:
        assert half["weights"].dtype == np.float16
        np.testing.assert_allclose(half["weights"], single["weights"], rtol=1e-3, atol=1e-4)
        assert list(half["tokens"]) == list(single["tokens"])
    with zipfile.ZipFile(tmp_path / "h.npz") as z:
        assert (
            z.getinfo("weights.npy").file_size
            < 0.55 * zipfile.ZipFile(tmp_path / "s.npz").getinfo("weights.npy").file_size
        )


def test_a_failed_write_leaves_nothing(results, tmp_path):
    target = tmp_path / "x.json"
    target.write_text("mine")

    def broken():
        yield "{"
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        with stream_out.streamed_file(target, overwrite=True) as write:
            for piece in broken():
                write(piece.encode())
    assert target.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
    with pytest.raises(AttnvizError, match="already exists"):
        stream_out.write_json(results["encoder"], target)
    assert target.read_text() == "mine"
