"""Tiny random transformers models for the transformers engine's tests, made here (no download).

`make(kind, folder)` writes a model of that architecture (2 layers, 4 heads, d 32) with a tiny
WordLevel tokenizer wrapped in PreTrainedTokenizerFast: [CLS] text [SEP] for encoders, text for
decoders (their attention is read as is)."""

from __future__ import annotations

from pathlib import Path

WORDS = "the cat sat on mat . a dog ran in park it was tired because , le chat sur tapis".split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# Architectures the native engine does not read: name -> (config class name, kwargs, decoder?)
ARCHS = {
    "deberta-v2": (
        "DebertaV2Config",
        dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            relative_attention=True,
            position_buckets=8,
            pos_att_type=["p2c", "c2p"],
        ),
        False,
    ),
    "modernbert": (
        "ModernBertConfig",
        dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            local_attention=4,
            global_attn_every_n_layers=2,
        ),
        False,
    ),
    "albert": (
        "AlbertConfig",
        dict(
            embedding_size=16,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        False,
    ),
    "gpt_neox": (
        "GPTNeoXConfig",
        dict(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64
        ),
        True,
    ),
    "falcon": (
        "FalconConfig",
        dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=64,
            new_decoder_architecture=False,
            multi_query=True,
        ),
        True,
    ),
    "olmo2": (
        "Olmo2Config",
        dict(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64
        ),
        True,
    ),
    "t5": (
        "T5Config",
        dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4, decoder_start_token_id=0),
        False,
    ),
    "bart": (
        "BartConfig",
        dict(
            d_model=32,
            encoder_layers=2,
            decoder_layers=2,
            encoder_attention_heads=4,
            decoder_attention_heads=4,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=64,
        ),
        False,
    ),
    "mistral": (
        "MistralConfig",
        dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            sliding_window=3,
        ),
        True,
    ),
}


def tokenizer(decoder: bool):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    if not decoder:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def make(kind: str, folder: Path, seed: int = 0) -> Path:
    import torch
    import transformers

    cls_name, kwargs, decoder = ARCHS[kind]
    tok = tokenizer(decoder)
    ids = dict(pad_token_id=0, bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3)
    config = getattr(transformers, cls_name)(vocab_size=len(tok), **ids, **kwargs)
    torch.manual_seed(seed)
    model = transformers.AutoModel.from_config(config)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return Path(folder)


def reference(folder: Path, text: str):
    """transformers' own output_attentions for `text`: float32 [L, H, T, T] (the encoder's of an
    encoder-decoder model), and the token ids."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModel.from_pretrained(folder, local_files_only=True, attn_implementation="eager")
    model.eval()
    enc = tok(text, return_tensors="pt")
    runner = model.get_encoder() if model.config.is_encoder_decoder else model
    with torch.no_grad():
        out = runner(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], output_attentions=True)
    return torch.stack(out.attentions, dim=1)[0].float().numpy(), enc["input_ids"][0].tolist()
