"""Issue 16 kind 2: metadata of the wrong type. Every value attnviz reads from a config.json (each
family), a safetensors index, GGUF metadata or a pytorch_model.bin is type-checked where it is
read: a list where a name goes, an object where a number goes, arrays nested thousands deep, must
be one `attnviz: error:` line and exit 2, never a Python message (exit 1) and never silently
taken. Hypothesis mutates the values into other JSON / GGUF types."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attnviz.checkpoints import load_model, random_model, save_model
from attnviz.cli import main
from attnviz.config import EncoderConfig
from attnviz.errors import AttnvizError

DEEP = "[" * 5000 + "]" * 5000  # parse_json refuses it (JSONLimitError), as Python's parser would crash


def run_cli(args) -> tuple[int, str]:
    """`attnviz ARGS` in this process: (exit status, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    return code, err.getvalue()


def assert_one_error(code: int, err: str) -> None:
    assert code == 2, (code, err)
    assert err.count("\n") == 1 and err.startswith("attnviz: error: ") and "Traceback" not in err, err


# config.json ----------------------------------------------------------------------------------------

SHAPE = dict(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48)

# Per family: the keys attnviz reads whatever else the config says, and the JSON kind each holds
# ("int": positive, "nint": non-negative, "float", "str", "bool", "dict", "list"; a "?" suffix: null
# is allowed).
READ_KEYS = {
    "bert": {
        "model_type": "str",
        "vocab_size": "int",
        "hidden_size": "int",
        "num_hidden_layers": "int",
        "num_attention_heads": "int",
        "intermediate_size": "int",
        "max_position_embeddings": "int",
        "hidden_act": "str",
        "layer_norm_eps": "float",
        "type_vocab_size": "nint",
        "pad_token_id": "nint?",
        "is_decoder": "bool",
    },
    "gpt2": {
        "model_type": "str",
        "vocab_size": "int",
        "n_embd": "int",
        "n_head": "int",
        "n_layer": "int",
        "n_positions": "int",
        "n_inner": "int?",
        "activation_function": "str",
        "layer_norm_epsilon": "float",
        "scale_attn_weights": "bool",
        "add_cross_attention": "bool",
    },
    "llama": {
        "model_type": "str",
        "vocab_size": "int",
        "hidden_size": "int",
        "num_hidden_layers": "int",
        "num_attention_heads": "int",
        "num_key_value_heads": "int",
        "intermediate_size": "int",
        "max_position_embeddings": "int",
        "head_dim": "int?",
        "hidden_act": "str",
        "rms_norm_eps": "float",
        "attention_bias": "bool",
        "mlp_bias": "bool",
        "rope_parameters": "dict?",
        "rope_parameters.rope_theta": "float",
        "rope_parameters.rope_type": "str",
    },
    "qwen2": {
        "layer_types": "list?",
        "use_sliding_window": "bool",
        "hidden_act": "str",
        "num_key_value_heads": "int",
    },
    "native": {
        "num_layers": "int",
        "d_model": "int",
        "activation": "str",
        "layer_norm_eps": "float",
        "rope_base": "float",
        "embedding_layernorm": "bool",
        "final_norm": "bool?",
        "embedding_size": "int?",
        "causal": "bool",
        "learned": "bool",
        "seed": "nint?",
    },
}


def wrong_values(kind: str):
    """JSON values (as text) of every other type than `kind`; a float kind takes ints too."""
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    negative_only = kind == "nint"
    kind = "int" if negative_only else kind
    by_kind = {
        "int": st.sampled_from(["1.5", "-0.5", "1e999"]),
        "float": st.sampled_from(["-1.0", "0.0", "Infinity", "NaN", "1e999"]),
        "str": st.text(max_size=5).map(json.dumps),
        "bool": st.sampled_from(["true", "false"]),
        "dict": st.sampled_from(["{}", '{"rope_type": "default"}']),
        "list": st.sampled_from(["[]", '["full_attention"]']),
    }
    others = []
    if kind != "list":
        others.append(st.sampled_from(["[]", "[1]", '["a"]', "[[[[1]]]]", DEEP]))
    if kind != "dict":
        others.append(st.sampled_from(["{}", '{"a": 1}', '{"a": {"b": [1]}}']))
    for other, strategy in by_kind.items():
        if other != kind and not (kind == "float" and other == "int"):
            if not (kind in ("list", "dict") and other in ("list", "dict")):
                others.append(strategy)
    if kind == "float":
        others.append(by_kind["float"])  # the right type, but no finite positive number
    if kind == "int":
        others.append(st.sampled_from(["-3"] if negative_only else ["0", "-3", "12345678901234567890123456789"]))
    if not nullable:
        others.append(st.just("null"))
    return st.one_of(others)


@pytest.fixture(scope="module")
def family_folders(tmp_path_factory):
    """Tiny checkpoints as transformers and attnviz write them, with a WordLevel tokenizer."""
    import transformers as T
    from tokenizers import Tokenizer, models, pre_tokenizers

    base = tmp_path_factory.mktemp("families")
    vocab = {f"w{i}": i for i in range(100)} | {"[UNK]": 100}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    configs = {
        "bert": (T.BertConfig(**SHAPE, max_position_embeddings=64), T.BertModel),
        "gpt2": (T.GPT2Config(vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_positions=64), T.GPT2Model),
        "llama": (T.LlamaConfig(**SHAPE, num_key_value_heads=2, max_position_embeddings=64), T.LlamaModel),
        "qwen2": (T.Qwen2Config(**SHAPE, num_key_value_heads=2, max_position_embeddings=64), T.Qwen2Model),
    }
    folders = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, (config, cls) in configs.items():
            torch.manual_seed(0)
            cls(config).save_pretrained(base / name, safe_serialization=True)
            tokenizer.save(str(base / name / "tokenizer.json"))
            folders[name] = base / name
    save_model(random_model(EncoderConfig(positional="rope", num_layers=1), seed=0), base / "native")
    folders["native"] = base / "native"
    for folder in folders.values():
        load_model(str(folder))  # each loads as written
    return folders


def _mutated_copy(src: Path, key: str, value_text: str, into: Path) -> Path:
    into.mkdir()
    for item in src.iterdir():
        if item.name != "config.json":
            (into / item.name).symlink_to(item)
    data = json.loads((src / "config.json").read_text())
    holder, leaf = data, key
    if "." in key:  # a nested key: rope_parameters.rope_theta
        outer, leaf = key.split(".")
        holder = data.setdefault(outer, {}) if isinstance(data.get(outer), dict) else data.setdefault(outer, {})
    holder[leaf] = "@@MUTATED@@"
    (into / "config.json").write_text(json.dumps(data).replace('"@@MUTATED@@"', value_text))
    return into


@st.composite
def config_mutations(draw):
    family = draw(st.sampled_from(sorted(READ_KEYS)))
    key = draw(st.sampled_from(sorted(READ_KEYS[family])))
    return family, key, draw(wrong_values(READ_KEYS[family][key]))


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config_mutations())
def test_config_json_value_of_another_type_is_one_error_line(family_folders, mutation):
    family, key, value_text = mutation
    with tempfile.TemporaryDirectory() as tmp:
        folder = _mutated_copy(family_folders[family], key, value_text, Path(tmp) / "m")
        code, err = run_cli(["show", "w1 w2", "-m", str(folder), "--format", "json"])
    assert_one_error(code, err)


@pytest.mark.parametrize(
    "family, key, value",
    [
        ("bert", "model_type", '["bert"]'),
        ("bert", "hidden_act", '{"name": "gelu"}'),
        ("qwen2", "layer_types", "3"),
        ("llama", "rope_parameters", "[]"),
        ("gpt2", "n_inner", "[]"),
        ("native", "embedding_size", "true"),
        ("llama", "max_position_embeddings", "12345678901234567890123456789"),  # RoPE builds no table
    ],
)
def test_examples_of_the_issue(family_folders, tmp_path, family, key, value):
    folder = _mutated_copy(family_folders[family], key, value, tmp_path / "m")
    with pytest.raises(AttnvizError) as caught:
        load_model(str(folder))
    assert key.split(".")[-1] in str(caught.value) and "\n" not in str(caught.value)


# safetensors index and pytorch_model.bin --------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", '["model.safetensors"]', "{}", "null", "true"])
def test_sharded_index_weight_map_values_must_be_file_names(family_folders, tmp_path, value):
    folder = tmp_path / "sharded"
    shutil.copytree(family_folders["bert"], folder)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
    from safetensors import safe_open

    with safe_open(str(folder / "model-00001-of-00001.safetensors"), "pt") as handle:
        keys = list(handle.keys())
    index = {"metadata": {}, "weight_map": {k: "model-00001-of-00001.safetensors" for k in keys}}
    (folder / "model.safetensors.index.json").write_text(
        json.dumps(index).replace('"model-00001-of-00001.safetensors"}', value + "}", 1)
    )
    code, err = run_cli(["show", "w1 w2", "-m", str(folder), "--format", "json"])
    assert_one_error(code, err)
    assert "weight_map" in err


@pytest.mark.parametrize("kind", ["meta", "sparse_coo", "sparse_csr", "qint8", "complex"])
def test_state_dict_with_meta_or_sparse_tensors_is_refused(family_folders, tmp_path, kind):
    from safetensors.torch import load_file

    folder = tmp_path / "bin"
    shutil.copytree(family_folders["native"], folder)
    weights = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    name = "layers.0.attention.query.weight"
    tensor = weights[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights[name] = {
            "meta": lambda: torch.empty(tensor.shape, device="meta"),
            "sparse_coo": tensor.to_sparse,
            "sparse_csr": tensor.to_sparse_csr,
            "qint8": lambda: torch.quantize_per_tensor(tensor, 0.1, 0, torch.qint8),
            "complex": lambda: tensor.to(torch.complex64),
        }[kind]()
        torch.save(weights, folder / "pytorch_model.bin")
    code, err = run_cli(["show", "w1 w2", "-m", str(folder), "--format", "json"])
    assert_one_error(code, err)
    assert name in err


# GGUF metadata ------------------------------------------------------------------------------------

# GGUF value types (gguf.GGUFValueType)
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q"}
_FMT[F64] = "<d"


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _value(kind: int, value) -> bytes:
    """A GGUF metadata value: (type, payload); arrays are (ARRAY, (item type, [items]))."""
    if kind == STRING:
        return _string(value)
    if kind == ARRAY:
        item, items = value
        body = b"".join(_value(item, it) for it in items)  # an array's items: payloads of `item`
        return struct.pack("<IQ", item, len(items)) + body
    return struct.pack(_FMT[kind], value)


RAW = -1  # (RAW, bytes): an array value already serialised


def _nested(depth: int) -> tuple[int, bytes]:
    """An array of arrays `depth` deep around [1], serialised without recursion (5,000 levels)."""
    value = struct.pack("<IQI", U32, 1, 1)
    for _ in range(depth):
        value = struct.pack("<IQ", ARRAY, 1) + value
    return RAW, value


def gguf_bytes(meta: dict[str, tuple[int, object]], tensors: dict[str, np.ndarray]) -> bytes:
    """A GGUF v3 file: metadata {key: (type, value)}, float32 tensors {name: array (torch order)}."""
    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(meta))]
    for key, (kind, value) in meta.items():
        if kind == RAW:
            out += [_string(key), struct.pack("<I", ARRAY), value]
        else:
            out += [_string(key), struct.pack("<I", kind), _value(kind, value)]
    offset, blobs = 0, []
    for name, array in tensors.items():
        dims = tuple(reversed(array.shape))
        out += [_string(name), struct.pack("<I", len(dims)), struct.pack(f"<{len(dims)}Q", *dims)]
        out += [struct.pack("<IQ", 0, offset)]
        blob = np.ascontiguousarray(array, dtype="<f4").tobytes()
        blob += b"\0" * (-len(blob) % 32)
        blobs.append(blob)
        offset += len(blob)
    header = b"".join(out)
    return header + b"\0" * (-len(header) % 32) + b"".join(blobs)


def _byte_tokens() -> list[str]:
    from attnviz.checkpoints.gguf_tokenizer import alphabet_of

    return [alphabet_of(b) for b in range(256)]


def tiny_llama_gguf() -> tuple[dict, dict]:
    d, ff, heads, vocab = 16, 24, 2, 258
    tokens = [*_byte_tokens(), "ab", "<s>"]
    rng = np.random.default_rng(0)
    tensors = {"token_embd.weight": rng.standard_normal((vocab, d)), "output_norm.weight": np.ones(d)}
    for name, shape in {
        "attn_norm": (d,),
        "attn_q": (d, d),
        "attn_k": (d, d),
        "attn_v": (d, d),
        "attn_output": (d, d),
        "ffn_norm": (d,),
        "ffn_gate": (ff, d),
        "ffn_up": (ff, d),
        "ffn_down": (d, ff),
    }.items():
        tensors[f"blk.0.{name}.weight"] = rng.standard_normal(shape) * 0.2
    meta = {
        "general.architecture": (STRING, "llama"),
        "general.name": (STRING, "tiny"),
        "llama.block_count": (U32, 1),
        "llama.context_length": (U32, 64),
        "llama.embedding_length": (U32, d),
        "llama.feed_forward_length": (U32, ff),
        "llama.attention.head_count": (U32, heads),
        "llama.attention.head_count_kv": (U32, heads),
        "llama.rope.freq_base": (F32, 10000.0),
        "llama.attention.layer_norm_rms_epsilon": (F32, 1e-5),
        "llama.expert_count": (U32, 0),
        "tokenizer.ggml.model": (STRING, "gpt2"),
        "tokenizer.ggml.pre": (STRING, "default"),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, tokens)),
        "tokenizer.ggml.merges": (ARRAY, (STRING, ["a b"])),
        "tokenizer.ggml.token_type": (ARRAY, (I32, [1] * 257 + [3])),
        "tokenizer.ggml.bos_token_id": (U32, 257),
        "tokenizer.ggml.add_bos_token": (BOOL, True),
    }
    return meta, tensors


# What each key holds, and values of other types (each a (type, value) pair).
_INT_KEYS = [k for k, (t, _) in tiny_llama_gguf()[0].items() if t == U32]
_WRONG = {
    "int": [(STRING, "8"), (F32, 2.5), (BOOL, True), (ARRAY, (U32, [1, 2])), (ARRAY, (STRING, ["a"])), (I32, -4)],
    "float": [(STRING, "1e-5"), (BOOL, True), (ARRAY, (F32, [1e-5])), (F32, float("inf")), (F32, float("nan"))],
    "str": [(U32, 1), (F32, 1.0), (BOOL, False), (ARRAY, (STRING, ["gpt2"])), (ARRAY, (U8, [1]))],
    "bool": [(U32, 1), (STRING, "true"), (ARRAY, (BOOL, [True]))],
    "strings": [(STRING, "a b"), (U32, 3), (ARRAY, (U32, [1, 2])), (ARRAY, (ARRAY, [(STRING, ["a"])]))],
    "types": [(U32, 1), (STRING, "1"), (ARRAY, (F32, [1.0] * 258)), (ARRAY, (I32, [1] * 3)), (ARRAY, (I32, [9] * 258))],
}
_KIND = {
    **{k: "int" for k in _INT_KEYS},
    "llama.rope.freq_base": "float",
    "llama.attention.layer_norm_rms_epsilon": "float",
    "general.architecture": "str",
    "general.name": "str",
    "tokenizer.ggml.model": "str",
    "tokenizer.ggml.pre": "str",
    "tokenizer.ggml.add_bos_token": "bool",
    "tokenizer.ggml.tokens": "strings",
    "tokenizer.ggml.merges": "strings",
    "tokenizer.ggml.token_type": "types",
}


def _gguf_error(meta, tensors, tmp: Path) -> tuple[int, str]:
    path = tmp / "m.gguf"
    path.write_bytes(gguf_bytes(meta, tensors))
    return run_cli(["show", "ab a", "-m", str(path), "--format", "json"])


def test_the_tiny_gguf_loads(tmp_path):
    meta, tensors = tiny_llama_gguf()
    code, err = _gguf_error(meta, tensors, tmp_path)
    assert code == 0, err


@pytest.mark.slow
@settings(max_examples=120, deadline=None)
@given(key=st.sampled_from(sorted(_KIND)), data=st.data())
def test_gguf_metadata_of_another_type_is_one_error_line(key, data):
    meta, tensors = tiny_llama_gguf()
    wrong = data.draw(st.sampled_from(_WRONG[_KIND[key]] + [_nested(3)]))
    if key == "llama.expert_count" and wrong == (I32, -4):
        wrong = (I32, -1)
    meta[key] = wrong
    with tempfile.TemporaryDirectory() as tmp:
        code, err = _gguf_error(meta, tensors, Path(tmp))
    assert_one_error(code, err)


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("tokenizer.ggml.pre", (ARRAY, (STRING, ["default"])), "tokenizer.ggml.pre"),
        ("tokenizer.ggml.token_type", (ARRAY, (I32, [1] * 257 + [42])), "token_type"),
        ("llama.expert_count", (ARRAY, (U32, [8])), "expert_count"),
        ("general.name", _nested(5000), "nests arrays"),
        ("llama.attention.layer_norm_rms_epsilon", (F32, float("inf")), "layer_norm_rms_epsilon"),
    ],
)
def test_gguf_examples_of_the_issue(tmp_path, key, value, words):
    meta, tensors = tiny_llama_gguf()
    meta[key] = value
    code, err = _gguf_error(meta, tensors, tmp_path)
    assert_one_error(code, err)
    assert words in err, err
