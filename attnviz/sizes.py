"""How much memory a model and a run need, estimated from the config alone, and the limit we allow.

Everything that builds an encoder (random models, every checkpoint loader) asks `check_model_size`
first and the pipeline asks `check_run_size` before a forward pass, so an absurd config
(`--d-model 1000000000`, `num_hidden_layers: 1e9` in a config.json) is one clear error instead of
torch trying to allocate terabytes or Python building a billion modules.

The limit is half of this machine's physical RAM (os.sysconf): attnviz shares the machine with
other programs and torch needs working memory beyond the estimate; a fixed 8 GiB where sysconf
does not tell. ATTNVIZ_MAX_MEMORY (bytes, or with a unit: "2G", "500M") sets another limit.
Layers are also capped at MAX_LAYERS, since building a module per layer costs time as well as
memory (about 1 ms and 100 KB each, measured) even when the layers are tiny.

Torch-free: the estimate is arithmetic on the config, exact for the parameters (tested against
the Encoder's own count).
"""

from __future__ import annotations

import os
import re

from .config import EncoderConfig
from .errors import AttnvizError

FLOAT_BYTES = 4  # the encoder computes in float32
BLOCK_BYTES = 64 * 1024**2  # scores of one block of query rows (blockwise.BLOCK_BYTES; no torch here)
# A float32 weight in JSON: the shortest repr that reads back ("0.0123456789", "1.2345678e-05")
# and ", ": 13 bytes on average over real maps (measured: 12.6 on SmolLM2, 12.9 on MiniLM).
JSON_WEIGHT_BYTES = 13
HTML_WEIGHT_BYTES = 3  # 16-bit weights in base64 (2 x 4/3) and the page around them
HTML_COPIES = 3  # the page string, its encoded bytes, the base64 pieces it is joined from
# `inspect` measures a text whose maps of every layer and head exceed this while they stream past
# (analysis.heads.StreamedHeadStats) instead of keeping them; shorter texts run in padded batches
# of at most INSPECT_BATCH, so a batch keeps at most 32 x 8 MB of maps.
STREAM_STATS_BYTES = 8 * 1024**2
INSPECT_BATCH = 32
# A streamed block of rows is measured in chunks of about this many float64 bytes; the chunk and
# the temporaries of its statistics (logs, products, masks) take about STATS_COPIES of it.
STATS_CHUNK_BYTES = 16 * 1024**2
STATS_COPIES = 6
LAYER_OVERHEAD = 100 * 1024  # Python objects of one layer's modules (measured: ~80-120 KB)
MAX_LAYERS = 4096  # real models have at most a few hundred layers
FALLBACK_LIMIT = 8 * 1024**3  # when sysconf cannot tell the RAM size
RAM_SHARE = 0.5
LIMIT_VARIABLE = "ATTNVIZ_MAX_MEMORY"
# Fields that set a model's size, and a small value each takes in the default random model: the
# field whose reset shrinks the estimate most is the one an error message names.
SIZE_FIELDS = {
    "num_layers": 2,
    "num_heads": 4,
    "d_model": 64,
    "d_ff": 256,
    "vocab_size": 34394,
    "max_len": 256,
    "type_vocab_size": 0,
    "embedding_size": None,
    "head_dim": None,
    "num_kv_heads": None,
    "position_offset": 0,
}


def parameter_count(config: EncoderConfig | dict) -> int:
    """The number of parameters of `Encoder(config)`, without building it."""
    c = config.to_dict() if isinstance(config, EncoderConfig) else config
    D, F, L, H = c["d_model"], c["d_ff"], c["num_layers"], c["num_heads"]
    Dh = c.get("head_dim") or D // H
    G = c.get("num_kv_heads") or H
    E = c.get("embedding_size") or D
    rms = c.get("norm", "layer") == "rms"

    def norm(width: int) -> int:  # RMSNorm has a weight only; LayerNorm a weight and a bias
        return width if rms else 2 * width

    def linear(n_in: int, n_out: int, bias: bool) -> int:
        return n_in * n_out + (n_out if bias else 0)

    total = c["vocab_size"] * E
    if c.get("positional", "sinusoidal") == "learned":
        total += (c["max_len"] + c.get("position_offset", 0)) * E
    total += c.get("type_vocab_size", 0) * E
    if c.get("embedding_layernorm", True):
        total += norm(E)
    if E != D:
        total += linear(E, D, True)
    qkv_bias, ffn_bias = c.get("attention_bias", True), c.get("ffn_bias", True)
    layer = (
        linear(D, H * Dh, qkv_bias)
        + 2 * linear(D, G * Dh, qkv_bias)
        + linear(H * Dh, D, c.get("output_bias", True))
        + (3 if c.get("ffn", "standard") == "gated" else 2) * D * F
        + ((2 if c.get("ffn", "standard") == "gated" else 1) * F + D if ffn_bias else 0)
        + 2 * norm(D)
        + (2 * norm(D) if c.get("sandwich_norm") else 0)  # Gemma's norms after attention and feed-forward
        + (2 * norm(Dh) if c.get("qk_norm") else 0)  # QK-norm: one [Dh] weight each for q and k
    )
    total += L * layer
    final = c.get("final_norm")
    if (c.get("norm_placement", "post") == "pre") if final is None else final:
        total += norm(D)
    return total


def model_bytes(config: EncoderConfig | dict) -> int:
    """Memory of a built model: float32 parameters and the modules themselves, plus the one
    temporary copy of the largest tensor that filling it takes (random values drawn before they are
    copied in; a checkpoint's tensor read before it is placed)."""
    c = config.to_dict() if isinstance(config, EncoderConfig) else config
    return FLOAT_BYTES * (parameter_count(c) + largest_tensor(c)) + LAYER_OVERHEAD * c["num_layers"]


def largest_tensor(c: dict) -> int:
    """Elements of the model's largest weight matrix: an embedding table or a layer's projection."""
    D, F, H = c["d_model"], c["d_ff"], c["num_heads"]
    Dh = c.get("head_dim") or D // H
    E = c.get("embedding_size") or D
    positions = c["max_len"] + c.get("position_offset", 0) if c.get("positional", "sinusoidal") == "learned" else 0
    return max(c["vocab_size"] * E, positions * E, c.get("type_vocab_size", 0) * E, D * F, D * H * Dh)


def run_bytes(
    config: EncoderConfig, tokens: int, batch: int = 1, layers: int | None = None, heads: int | None = None
) -> int:
    """Working memory of one forward pass over `batch` texts of `tokens` tokens keeping the maps of
    `layers` layers x `heads` heads (default: all): the kept maps once (the result shares them),
    the scores and probabilities of the layer being computed (whole for a short text, a block of
    query rows of at most BLOCK_BYTES for a long one: blockwise.py), and the activations."""
    K = config.num_layers if layers is None else layers
    Hk = config.num_heads if heads is None else heads
    kept = batch * K * Hk * tokens * tokens
    layer = min(batch * config.num_heads * tokens * tokens * FLOAT_BYTES, BLOCK_BYTES)
    hidden = batch * tokens * (4 * config.d_model + 3 * config.d_ff + 4 * config.num_heads * config.d_head)
    return FLOAT_BYTES * (kept + hidden) + 3 * layer


def output_bytes(maps: int, tokens: int, causal: bool, outputs: "Outputs") -> tuple[int, int]:
    """(memory, disk) the chosen outputs of `maps` [T, T] maps need beyond the maps themselves.

    JSON and NPZ are streamed (stream_out.py): memory is a map's worth of conversion at most; the
    file takes about JSON_WEIGHT_BYTES per weight (fewer with --digits; a decoder's masked half
    are short zeros), NPZ 4 bytes per weight (2 in float16). The HTML page is a string built in
    memory, about HTML_WEIGHT_BYTES per weight of what it holds, a few copies of it while it is
    made; an image converts the maps it draws to float64 once."""
    cells = maps * tokens * tokens
    seen = cells // 2 if causal else cells
    memory = disk = 0
    if outputs.json:
        per = JSON_WEIGHT_BYTES if outputs.digits is None else outputs.digits + 4
        disk += seen * per + (cells - seen) * 5
        memory += 8 * tokens * tokens
    if outputs.npz:
        per = 2 if outputs.precision == "float16" else 4
        disk += cells * per
        memory += per * tokens * tokens
    if outputs.html:
        memory += HTML_COPIES * HTML_WEIGHT_BYTES * cells
        disk += HTML_WEIGHT_BYTES * cells
    if outputs.image:
        memory += 8 * cells
    return memory, disk


def check_plan(
    config: EncoderConfig,
    tokens: int,
    layers: int,
    heads: int,
    outputs: "Outputs",
    folder=None,
    weights_in_ram: int | None = None,
    every_map: bool = False,
) -> None:
    """Refuse, before the model loads, a run whose kept maps and outputs would not fit in memory
    (or its files on the disk of `folder`), in one line saying what would fit.

    weights_in_ram: the bytes of weights that will sit in RAM (default: the whole model,
    `model_bytes`). A `--device auto` run passes what accelerate may keep there (`placed_weights`):
    the point of offloading is a model bigger than the RAM, so the whole model must not count.
    every_map: the forward pass returns every layer's and head's map whatever is shown (the
    transformers engine's output_attentions); `layers` x `heads` are then what is written."""
    maps = layers * heads
    extra, disk = output_bytes(maps, tokens, config.causal, outputs)
    weights = model_bytes(config) if weights_in_ram is None else weights_in_ram
    need = _pass_bytes(config, tokens, layers, heads, every_map) + weights + extra
    limit, why = memory_limit()
    what = f"{tokens} tokens in {layers} layer{'s' * (layers != 1)} x {heads} head{'s' * (heads != 1)}"
    if need > limit:
        every = f" (transformers returns all {config.num_layers} x {config.num_heads})" if every_map else ""
        # No map kept (a long text's overview, pooled while the maps stream): the pass itself is too big.
        lead = f"attention maps of {what}{every}" if layers or every_map else f"the forward pass over {tokens} tokens"
        fits = (
            _what_fits(config, tokens, layers, heads, outputs, limit, weights, every_map)
            if layers
            else "shorten the text"
        )
        raise AttnvizError(
            f"{lead}{outputs.describe()} would need {human_bytes(need)}, more than attnviz may "
            f"use here ({human_bytes(limit)}: {why}); {fits}"
        )
    if folder is not None and disk:
        import shutil

        try:
            usage = shutil.disk_usage(folder)
        except OSError:
            return
        free = usage.free
        # A file system of no size (/sys, /proc) tells nothing about room: the write says what is wrong.
        if usage.total and disk > free:
            raise AttnvizError(
                f"the output of {what}{outputs.describe()} would take about {human_bytes(disk)} but {folder} has "
                f"{human_bytes(free)} free; choose fewer layers or heads, --format npz --precision float16, "
                "or JSON --digits 3"
            )


def _pass_bytes(config: EncoderConfig, tokens: int, layers: int, heads: int, every_map: bool) -> int:
    """run_bytes of one text keeping `layers` x `heads` maps; with `every_map` (the transformers
    engine's output_attentions) every map as well, counted as float32 (a 16-bit model holds half),
    beside the float32 copy of the kept ones. Measured peak beyond the model at 1,001 tokens, all
    maps returned, one head kept: 1.28x the float32 maps (float32 model), 0.83x (bfloat16)."""
    kept = run_bytes(config, tokens, 1, layers, heads)
    if not every_map:
        return kept
    return kept + FLOAT_BYTES * config.num_layers * config.num_heads * tokens * tokens


def _what_fits(
    config: EncoderConfig,
    tokens: int,
    layers: int,
    heads: int,
    outputs: "Outputs",
    limit: int,
    weights: int,
    every_map: bool = False,
) -> str:
    """What would fit instead: as many layers with these heads, one head per layer, NPZ, a shorter text."""

    def fits(k: int, h: int, out: "Outputs") -> bool:
        extra = output_bytes(k * h, tokens, config.causal, out)[0]
        return _pass_bytes(config, tokens, k, h, every_map) + weights + extra <= limit

    hints = []
    k = max((k for k in range(1, layers) if fits(k, heads, outputs)), default=0)
    if k:
        hints.append(f"{k} layer{'s' * (k != 1)} of {heads} head{'s' * (heads != 1)} would fit (--layer)")
    elif heads > 1 and fits(1, max(1, heads // 4), outputs):
        h = max((h for h in range(1, heads) if fits(1, h, outputs)), default=1)
        hints.append(f"one layer of {h} head{'s' * (h != 1)} would fit (--layer, --head)")
    if outputs.json or outputs.html:
        npz = Outputs(npz=True, precision="float16")
        if fits(layers, heads, npz):
            hints.append("--format npz --precision float16 would fit")
    return "; ".join(hints) or "shorten the text or choose fewer layers or heads"


class Outputs:
    """The outputs a command will write, for the estimate (JSON, NPZ and its precision, HTML, images)."""

    def __init__(
        self,
        json: bool = False,
        digits: int | None = None,
        npz: bool = False,
        precision: str = "float32",
        html: bool = False,
        image: bool = False,
    ) -> None:
        self.json, self.digits, self.npz, self.precision = json, digits, npz, precision
        self.html, self.image = html, image

    def describe(self) -> str:
        names = [
            n for n, on in (("JSON", self.json), ("NPZ", self.npz), ("HTML", self.html), ("an image", self.image)) if on
        ]
        return " to " + " and ".join(names) if names else ""


def placed_weights(config: EncoderConfig, cpu_budget: int | None) -> int:
    """Bytes of weights a `--device auto` run keeps in RAM: at most accelerate's CPU budget
    (`--max-memory cpu=...`); what does not fit there stays on disk (or on a GPU) and is read a
    layer at a time. Without a budget accelerate fills only the memory it finds free, so the
    weights cannot be what overflows it: 0 here, and the maps and outputs are what is checked."""
    return 0 if cpu_budget is None else min(model_bytes(config), cpu_budget)


def memory_limit() -> tuple[int, str]:
    """(bytes attnviz may use, how that limit was chosen, for messages)."""
    given = os.environ.get(LIMIT_VARIABLE, "").strip()
    if given:
        value = parse_bytes(given)
        if value is None:
            shown = given if len(given) <= 40 else given[:40] + "..."
            raise AttnvizError(f"{LIMIT_VARIABLE}={shown!r} is not a size; give bytes or e.g. 4G, 500M")
        return value, f"{LIMIT_VARIABLE}={given}"
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        ram = 0
    if ram <= 0:
        return FALLBACK_LIMIT, f"a fixed {human_bytes(FALLBACK_LIMIT)}; set {LIMIT_VARIABLE} to change it"
    return int(ram * RAM_SHARE), (
        f"half of this machine's {human_bytes(ram)} of RAM; set {LIMIT_VARIABLE} to change it"
    )


def streams_head_stats(config: EncoderConfig, tokens: int, layers: int | None = None) -> bool:
    """Whether `inspect` measures a text of `tokens` tokens while its maps stream past (their
    `layers` (default: all) x heads x T x T floats would exceed STREAM_STATS_BYTES)."""
    K = config.num_layers if layers is None else layers
    return FLOAT_BYTES * K * config.num_heads * tokens * tokens > STREAM_STATS_BYTES


def inspect_bytes(config: EncoderConfig, lengths: list[int], models: int = 1) -> int:
    """Memory of `inspect` over probe texts of `lengths` tokens with `models` models built (2 with
    --baseline): the models, and the larger of a padded batch of short texts with every map kept
    (at most INSPECT_BATCH texts as long as the longest of them) and one long text measured as it
    streams (no map kept: a block of scores, the activations and the statistics' chunk)."""
    short = [t for t in lengths if not streams_head_stats(config, t)]
    long = [t for t in lengths if streams_head_stats(config, t)]
    work = 0
    if short:
        work = run_bytes(config, max(short), min(INSPECT_BATCH, len(short)))
    if long:
        work = max(work, run_bytes(config, max(long), 1, 0, 0) + STATS_COPIES * STATS_CHUNK_BYTES)
    return work + models * model_bytes(config)


def check_inspect_plan(config: EncoderConfig, lengths: list[int], models: int = 1) -> None:
    """Refuse, before the model loads, an `inspect` whose probe texts would not fit in memory,
    counting what inspect keeps: statistics of every head, the maps of short texts only."""
    need = inspect_bytes(config, lengths, models)
    limit, why = memory_limit()
    if need > limit:
        longest = max(lengths)
        raise AttnvizError(
            f"inspecting {len(lengths)} probe text{'s' * (len(lengths) != 1)} (the longest {longest} tokens) "
            f"would need {human_bytes(need)}, more than attnviz may use here ({human_bytes(limit)}: {why}); "
            "shorten the texts" + (" or leave out --baseline" if models > 1 else "")
        )


def check_model_size(config: EncoderConfig | dict, label: str = "", keys: dict[str, str] | None = None) -> None:
    """Refuse a model that would not fit in memory (or has absurdly many layers), naming the
    config key responsible as `keys` calls it (default: the field's own name) after `label`."""
    c = config.to_dict() if isinstance(config, EncoderConfig) else config
    keys = keys or {}
    prefix = f"{label}: " if label else ""
    layers = c["num_layers"]
    if layers > MAX_LAYERS:
        key = keys.get("num_layers", "num_layers")
        raise AttnvizError(
            f"{prefix}{key} {layers} is more layers than attnviz builds (at most "
            f"{MAX_LAYERS}; the model would need {human_bytes(model_bytes(c))})"
        )
    need = model_bytes(c)
    limit, why = memory_limit()
    if need > limit:
        field = blame(c)
        key = keys.get(field, field)
        raise AttnvizError(
            f"{prefix}{key} {c[field]} makes a model of {human_bytes(need)}, more than "
            f"attnviz may use here ({human_bytes(limit)}: {why})"
        )


def check_run_size(
    config: EncoderConfig, tokens: int, batch: int = 1, layers: int | None = None, heads: int | None = None
) -> None:
    """Refuse a forward pass whose kept attention maps would not fit, before it starts."""
    need = run_bytes(config, tokens, batch, layers, heads) + model_bytes(config)
    limit, why = memory_limit()
    if need > limit:
        K = config.num_layers if layers is None else layers
        texts = f"{batch} texts of up to {tokens} tokens" if batch > 1 else f"{tokens} tokens"
        H = config.num_heads if heads is None else heads
        raise AttnvizError(
            f"attention maps of {texts} in {K} layers x {H} heads would need "
            f"{human_bytes(need)}, more than attnviz may use here ({human_bytes(limit)}: "
            f"{why}); shorten the text or choose fewer layers"
        )


def blame(c: dict) -> str:
    """The size field an error about `c` names: the one whose reset to the default random model's
    value shrinks the estimate most (an outlier such as d_model 10^9); when every field is already
    that small, the one whose halving shrinks it most (the largest share of a uniformly big model)."""
    base = model_bytes(c)

    def saving(field: str, value) -> int:
        return base - model_bytes({**c, field: value})

    sized = [f for f in SIZE_FIELDS if isinstance(c.get(f), int)]
    outliers = {f: saving(f, SIZE_FIELDS[f]) for f in sized if c[f] != SIZE_FIELDS[f]}
    if outliers and max(outliers.values()) > 0:
        return max(outliers, key=outliers.get)
    halved = {f: saving(f, max(1, c[f] // 2)) for f in sized if c[f] > 1}
    return max(halved, key=halved.get) if halved else "num_layers"


def parse_bytes(text: str) -> int | None:
    """ "123", "4G", "4GB", "500M", "1.5T" -> bytes (binary units); None if not a size."""
    # ASCII digits only (\d would take ٣ for 3), and at most 20 of them: more is no size of memory
    # (a float of 5,000 digits is infinity, which int() refuses with an OverflowError).
    match = re.fullmatch(r"\s*([0-9]{1,20}(?:\.[0-9]{1,20})?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        return None
    scale = 1024 ** "BKMGT".index((match[2] or "B").upper())
    return int(float(match[1]) * scale)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB", "EB"):
        if n < 1024 or unit == "EB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")
