"""The language-model head of a loaded model: what turns its last hidden states into token logits.

`show` and the other views never need it (they look at attention), so the loaders leave it in the
file; the causal commands (`ablate`, `patch`, `probe --causal`) read it here, from the files the
model was loaded from (`LoadedModel.sources`):

  decoder folders   lm_head.weight [V, D]; without it, the token embedding (tied) when config.json
                    says tie_word_embeddings and names an LM class (GPT-2 always ties)
  GGUF files        output.weight; without it the token embedding (llama.cpp's convention for tied
                    heads), whose rows live in the file (lazy_rows.LazyEmbedding.table)
  BERT family       the masked-LM head where the checkpoint has it: transform (dense, activation,
                    LayerNorm) then the decoder tied to the word embeddings, plus a bias:
                    cls.predictions.* (BERT), lm_head.* (RoBERTa, XLM-R), vocab_* (DistilBERT)

Anything else (attnviz's own checkpoints, random models, encoders saved without their MLM head,
MiniLM's sentence-embedding checkpoint) has no head: `load_lm_head` says so in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AttnvizError
from .loaded import LoadedModel

if TYPE_CHECKING:
    import torch

WHICH = (
    "decoders (GPT-2, LLaMA, Mistral, Qwen2 folders and GGUF files such as --model smollm2) and "
    "BERT-family checkpoints saved with their masked-LM head (BertForMaskedLM, RobertaForMaskedLM, ...)"
)
# model_type -> (prefix of the MLM head, dense, LayerNorm, decoder weight, decoder bias keys)
MLM_HEADS = {
    "bert": ("cls.predictions.", "transform.dense", "transform.LayerNorm", "decoder.weight", ("bias", "decoder.bias")),
    "roberta": ("lm_head.", "dense", "layer_norm", "decoder.weight", ("bias", "decoder.bias")),
    "xlm-roberta": ("lm_head.", "dense", "layer_norm", "decoder.weight", ("bias", "decoder.bias")),
    "distilbert": ("", "vocab_transform", "vocab_layer_norm", "vocab_projector.weight", ("vocab_projector.bias",)),
}
_LM_CLASSES = ("LMHeadModel", "ForCausalLM", "ForMaskedLM", "ForConditionalGeneration")


@dataclass
class LMHead:
    """logits = decoder(transform(hidden)) + bias, in float32.

    weight [V, D]; bias [V] or None; transform: for a masked LM the dense [D, D] + bias, the
    activation name (encoder._ACTIVATIONS) and the LayerNorm weight, bias and eps; None for decoders
    (their final norm is the encoder's `final_norm`, already applied to the hidden states)."""

    weight: "torch.Tensor"
    bias: "torch.Tensor | None"
    masked: bool  # a masked-LM head (candidates fill [MASK] tokens) rather than a next-token head
    transform: tuple | None = None
    source: str = ""

    def logits(self, hidden: "torch.Tensor") -> "torch.Tensor":
        """hidden [..., D] (after the model's final norm) -> logits [..., V], float32."""
        import torch.nn.functional as F

        from ..encoder import _ACTIVATIONS

        x = hidden.float()
        if self.transform is not None:
            dense_w, dense_b, act, ln_w, ln_b, eps = self.transform
            x = _ACTIVATIONS[act](F.linear(x, dense_w, dense_b))
            x = F.layer_norm(x, (x.shape[-1],), ln_w, ln_b, eps)
        return F.linear(x, self.weight, self.bias)


def no_head(loaded: LoadedModel, why: str = "") -> AttnvizError:
    return AttnvizError(f"model {loaded.info.source!r} has no language-model head{why}; the readout needs one: {WHICH}")


def load_lm_head(loaded: LoadedModel) -> LMHead:
    """The head of `loaded` (read from its files now), or a one-line AttnvizError naming the models
    that have one."""
    if loaded.built_layers != loaded.config.num_layers:
        raise AttnvizError("the readout needs every layer of the model; load it without last_layer")
    sources = [Path(s) for s in loaded.sources]
    if not sources or not loaded.info.learned:
        return _refuse(loaded, " (a random model)" if not loaded.info.learned else "")
    gguf = [s for s in sources if s.suffix.lower() == ".gguf"]
    # A GGUF file split over packages (gemma3): its parts, read as one file.
    parts = [s for s in sources if ".gguf.part" in s.name.lower()]
    if gguf or parts:
        return _gguf_head(loaded, gguf[0] if gguf else parts[0], parts or None)
    return _folder_head(loaded, sources)


def _refuse(loaded: LoadedModel, why: str = ""):
    raise no_head(loaded, why)


def _embedding_table(loaded: LoadedModel) -> "torch.Tensor":
    """The token embedding [V, D] as float32 (a lazy GGUF table is read whole, once)."""
    from .lazy_rows import LazyEmbedding

    word = loaded.encoder.embeddings.word
    table = word.table() if isinstance(word, LazyEmbedding) else word.weight
    return table.detach().float()


def _gguf_head(loaded: LoadedModel, path: Path, parts: list[Path] | None = None) -> LMHead:
    import torch

    from .gguf_file import GGUFFile

    with GGUFFile(path, parts=parts) as file:
        if "output.weight" in file.tensors:
            weight = torch.from_numpy(file.read("output.weight")).float()
            return _checked(loaded, LMHead(weight, None, masked=False, source=f"{path}: output.weight"))
    return _checked(loaded, LMHead(_embedding_table(loaded), None, masked=False, source=f"{path}: tied token_embd"))


def _folder_head(loaded: LoadedModel, sources: list[Path]) -> LMHead:
    from . import read_config
    from .weights import open_weights

    index = [s for s in sources if s.name.endswith(".safetensors.index.json")]
    weights_path = index[0] if index else sources[0]
    data = read_config(weights_path.parent)
    model_type = data.get("model_type")
    if model_type is None:  # attnviz's own format: attention only
        return _refuse(loaded, " (an attnviz checkpoint keeps the encoder only)")
    weights = open_weights(weights_path)
    if loaded.config.causal:
        if "lm_head.weight" in weights:
            return _checked(loaded, LMHead(weights.get("lm_head.weight"), None, False, source="lm_head.weight"))
        tied = data.get("tie_word_embeddings", model_type == "gpt2")
        names_lm = any(str(a).endswith(_LM_CLASSES) for a in data.get("architectures") or [_LM_CLASSES[0]])
        if tied and names_lm:
            return _checked(loaded, LMHead(_embedding_table(loaded), None, False, source="tied word embeddings"))
        return _refuse(loaded, f" ({weights.label} has no lm_head.weight and does not tie it to the embeddings)")
    if model_type not in MLM_HEADS:
        return _refuse(loaded, f" (attnviz reads the masked-LM head of {', '.join(MLM_HEADS)} only)")
    base, dense, norm, decoder, biases = MLM_HEADS[model_type]
    if f"{base}{dense}.weight" not in weights:
        return _refuse(loaded, f" ({weights.label} was saved without its masked-LM head, {base}{dense}.*)")

    def get(key: str):
        return weights.get(base + key)

    def norm_key(leaf: str) -> str:
        old = {"weight": "gamma", "bias": "beta"}[leaf]
        return f"{norm}.{leaf}" if f"{base}{norm}.{leaf}" in weights else f"{norm}.{old}"

    act = "gelu" if model_type in ("roberta", "xlm-roberta") else loaded.config.activation
    transform = (
        get(f"{dense}.weight"),
        get(f"{dense}.bias"),
        act,
        get(norm_key("weight")),
        get(norm_key("bias")),
        loaded.config.layer_norm_eps,
    )
    weight = get(decoder) if base + decoder in weights else _embedding_table(loaded)
    bias = next((get(b) for b in biases if base + b in weights), None)
    return _checked(loaded, LMHead(weight, bias, True, transform, source=f"{base}* (masked-LM head)"))


def _checked(loaded: LoadedModel, head: LMHead) -> LMHead:
    """Shapes against the model: [V, D] with D the model width and V at least the tokenizer's."""
    D = loaded.config.d_model
    V, width = head.weight.shape
    if width != D or V < loaded.tokenizer.vocab_size or (head.bias is not None and head.bias.shape != (V,)):
        raise AttnvizError(
            f"{head.source}: the language-model head is [{V}, {width}] but the model is {D} wide "
            f"with {loaded.tokenizer.vocab_size} tokens"
        )
    device = next(loaded.encoder.parameters()).device
    head.weight = head.weight.to(device)
    head.bias = head.bias.to(device) if head.bias is not None else None
    if head.transform is not None:
        head.transform = tuple(t.to(device) if hasattr(t, "to") else t for t in head.transform)
    return head
