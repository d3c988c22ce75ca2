"""Tiny random language models written by transformers (GPT-2, LLaMA with grouped-query attention,
Qwen2, BERT with its masked-LM head, one-head GPT-2), and the reference interventions done on the
transformers model with forward hooks, for the exactness tests of attnviz.interventions."""

from __future__ import annotations

import builders

import torch

transformers = __import__("pytest").importorskip("transformers")

SENTENCES = [
    "The queen thanked the king because she had won.",
    "The king thanked the queen because he had won.",
    "The trophy did not fit in the suitcase because it was too big.",
    "The nurse helped the farmer because she was kind.",
    "The farmer helped the nurse because he was kind.",
    'In that sentence, "she" refers to the queen king trophy suitcase nurse farmer.',
]
VOCAB = 480


def byte_level_tokenizer(bos: bool):
    return builders.byte_level_tokenizer(SENTENCES, bos, vocab_size=460)


def wordpiece_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    from attnviz.tokenize import TextTokenizer

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(SENTENCES * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return TextTokenizer(tok, "wordpiece test tokenizer")


SHAPE = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4)


def models():
    """id -> (config, model class, tokenizer factory)."""
    T = transformers
    gpt2 = dict(vocab_size=VOCAB, n_embd=32, n_layer=3, n_positions=128)
    return {
        "gpt2": (T.GPT2Config(**gpt2, n_head=4), T.GPT2LMHeadModel, lambda: byte_level_tokenizer(False)),
        "gpt2-one-head": (T.GPT2Config(**gpt2, n_head=1), T.GPT2LMHeadModel, lambda: byte_level_tokenizer(False)),
        "llama-gqa": (
            T.LlamaConfig(**SHAPE, num_key_value_heads=2, max_position_embeddings=128),
            T.LlamaForCausalLM,
            lambda: byte_level_tokenizer(True),
        ),
        "qwen2": (
            T.Qwen2Config(**SHAPE, num_key_value_heads=2, max_position_embeddings=128),
            T.Qwen2ForCausalLM,
            lambda: byte_level_tokenizer(True),
        ),
        "bert-mlm": (
            T.BertConfig(**{**SHAPE, "vocab_size": 200}, max_position_embeddings=128),
            T.BertForMaskedLM,
            wordpiece_tokenizer,
        ),
        "bert-bare": (
            T.BertConfig(**{**SHAPE, "vocab_size": 200}, max_position_embeddings=128),
            T.BertModel,
            wordpiece_tokenizer,
        ),
    }


def sharpen(model: torch.nn.Module, seed: int) -> None:
    """Weights with std 0.3 (peaked attention rows), norm scales around 1, biases away from 0."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if ("norm" in name.lower() or ".ln_" in name) and name.endswith("weight"):
                param.copy_(1.0 + 0.2 * noise)
            elif name.endswith("bias"):
                param.copy_(0.2 * noise)
            else:
                param.copy_(0.3 * noise)


def write_model(folder, key: str):
    """Save the tiny model `key` as a users' folder; returns (folder, the transformers model)."""
    config, cls, make_tokenizer = models()[key]
    torch.manual_seed(0)
    model = cls(config)
    sharpen(model, seed=len(key))
    if hasattr(model, "tie_weights"):
        model.tie_weights()
    folder = folder / key
    model.save_pretrained(folder)
    (folder / "tokenizer.json").write_text(make_tokenizer().to_str(), encoding="utf-8")
    reference = cls.from_pretrained(folder, attn_implementation="eager")
    reference.eval()
    return folder, reference


def out_projections(model):
    """The attention output projection of every layer (its input is the per-head context)."""
    base = getattr(model, model.base_model_prefix, model)
    if hasattr(base, "h"):  # GPT-2
        return [block.attn.c_proj for block in base.h]
    if hasattr(base, "encoder"):  # BERT
        return [layer.attention.output.dense for layer in base.encoder.layer]
    return [layer.self_attn.o_proj for layer in base.layers]


def hf_readout(model, readout, edit=None, layer=None) -> float:
    """The readout computed by transformers, one forward per sequence, with `edit(context [B, T,
    H*Dh], s) -> context` applied before layer `layer`'s output projection when given."""
    total = 0.0
    handles = []
    for s, seq in enumerate(readout.sequences):
        if edit is not None:
            proj = out_projections(model)[layer]
            handles.append(proj.register_forward_pre_hook(lambda mod, args, s=s: (edit(args[0], s),)))
        try:
            with torch.inference_mode():
                logits = model(input_ids=torch.tensor([seq])).logits[0].float().log_softmax(-1)
        finally:
            for h in handles:
                h.remove()
            handles.clear()
        for s2, pos, tok, sign in readout.terms:
            if s2 == s:
                total += sign * float(logits[pos, tok])
    return total


def hf_contexts(model, readout, layer):
    """The clean per-head context [T, H*Dh] of each sequence at `layer` (input of its output projection)."""
    got = []
    proj = out_projections(model)[layer]
    for seq in readout.sequences:
        seen = []
        h = proj.register_forward_pre_hook(lambda mod, args, seen=seen: seen.append(args[0][0].clone()))
        try:
            with torch.inference_mode():
                model(input_ids=torch.tensor([seq]))
        finally:
            h.remove()
        got.append(seen[0])
    return got
