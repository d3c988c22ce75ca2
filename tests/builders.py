"""Hand-built attention results and models whose attention is known by construction, shared by
the analysis tests."""

import json
from pathlib import Path

import numpy as np
import torch

from attnviz.result import AttentionResult, ModelInfo
from attnviz.checkpoints import LoadedModel
from attnviz.config import EncoderConfig
from attnviz.encoder import Encoder
from attnviz.tokenize import TextTokenizer

# Query bias of the hand-set model: large enough that each head's softmax is one-hot in float32.
SHARP = 20.0


def hand_result(weights, tokens, offsets, word_ids, text, causal=False):
    weights = np.asarray(weights, dtype=np.float32)
    L, H = weights.shape[:2]
    info = ModelInfo(
        source="random", config=EncoderConfig(num_layers=L, num_heads=H, d_model=4 * H, causal=causal), seed=0
    )
    return AttentionResult(
        text=text,
        tokens=tokens,
        offsets=offsets,
        word_ids=word_ids,
        special=[w is None for w in word_ids],
        weights=weights,
        layers=list(range(L)),
        heads=list(range(H)),
        model=info,
    )


def hand_set_model():
    """One layer, two heads, d_model 4, attention known by construction.

    Every query is the same vector (a bias), so each head attends wherever its keys light up:
    head 0 reads feature 0, which only the word "cat" has (it follows the word: no flip when the
    twins swap cat and dog); head 1 reads feature 2, which only position 2 has (the word right
    after "The": it follows the position, so its winner flips between the twins).
    """
    tok = TextTokenizer.default()
    config = EncoderConfig(
        vocab_size=tok.vocab_size,
        num_layers=1,
        num_heads=2,
        d_model=4,
        d_ff=4,
        max_len=32,
        positional="learned",
        embedding_layernorm=False,
    )
    enc = Encoder(config)
    with torch.no_grad():
        for p in enc.parameters():
            p.zero_()
        cat = tok.encode("cat").ids[1]
        enc.embeddings.word.weight[cat, 0] = 1.0
        enc.embeddings.position.weight[2, 2] = 1.0
        att = enc.layers[0].attention
        att.query.bias.copy_(torch.tensor([SHARP, 0.0, SHARP, 0.0]))
        att.key.weight[0, 0] = 1.0  # head 0 key dim 0 <- feature 0 ("cat")
        att.key.weight[2, 2] = 1.0  # head 1 key dim 0 <- feature 2 (position 2)
    info = ModelInfo(source="hand-set", config=config, learned=True, tokenizer=tok.source, kind="attnviz")
    return LoadedModel(enc, tok, info)


def load_error(folder) -> str:
    """The AttnvizError `attnviz.load_model(folder)` raises: one line that names config.json."""
    import attnviz
    from attnviz.errors import AttnvizError

    try:
        attnviz.load_model(str(folder))
    except AttnvizError as exc:
        message = str(exc)
    else:
        raise AssertionError(f"{folder} loaded without an error")
    assert "\n" not in message and "config.json" in message, message
    return message


def edited_copy(src: Path, dst: Path, **changes) -> Path:
    """`src`'s checkpoint with config.json changed; the other files linked, not copied."""
    dst.mkdir(parents=True)
    for item in src.iterdir():
        if item.name != "config.json" and item.is_file():
            (dst / item.name).symlink_to(item)
    config = json.loads((src / "config.json").read_text())
    config.update(changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def hf_readout(model, readout, layer=None, edit=None) -> float:
    """The readout (interventions.readout.Readout) computed by a transformers causal LM, with
    `edit(x, s)` applied to the input of layer `layer`'s o_proj (the heads' concatenated outputs)
    of sequence s: the reference the native interventions are checked against."""
    import torch

    total = 0.0
    for s, seq in enumerate(readout.sequences):
        handle = None
        if edit is not None:
            proj = model.model.layers[layer].self_attn.o_proj
            handle = proj.register_forward_pre_hook(lambda m, args, s=s: (edit(args[0].clone(), s),))
        try:
            with torch.inference_mode():
                logp = model(input_ids=torch.tensor([seq])).logits[0].float().log_softmax(-1)
        finally:
            if handle is not None:
                handle.remove()
        total += sum(sign * float(logp[pos, tok]) for s2, pos, tok, sign in readout.terms if s2 == s)
    return total


def byte_level_tokenizer(sentences: list[str], bos: bool, vocab_size: int = 300):
    """A byte-level BPE tokenizer trained on `sentences`, as decoders ship them (GPT-2's pieces
    start with 'Ġ'); with `bos`, its post-processor adds <s> in front as LLaMA's tokenizer.json does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from attnviz.tokenize import TextTokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(sentences * 4, trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return TextTokenizer(tok, "byte-level test tokenizer")
