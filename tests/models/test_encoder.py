"""The encoder's attention against an independent plain-torch computation, and its contracts."""

import math

import pytest
import torch
import torch.nn.functional as F

from attnviz.config import EncoderConfig
from attnviz.encoder import Encoder, init_random
from attnviz.errors import AttnvizError


def reference_attention(model: Encoder, input_ids, attention_mask=None):
    """softmax(QK^T / sqrt(d_head)) per head, written out from the module's own weights."""
    cfg = model.config
    emb = model.embeddings
    T = input_ids.shape[1]
    x = emb.word.weight[input_ids]
    if cfg.positional == "sinusoidal":
        pos = torch.zeros(T, x.shape[-1])
        for p in range(T):
            for i in range(0, x.shape[-1], 2):
                angle = p / (10000 ** (i / x.shape[-1]))
                pos[p, i] = math.sin(angle)
                if i + 1 < x.shape[-1]:
                    pos[p, i + 1] = math.cos(angle)
        x = x + pos
    elif cfg.positional == "learned":
        x = x + emb.position.weight[:T]
    if cfg.embedding_layernorm:
        x = F.layer_norm(x, (x.shape[-1],), emb.norm.weight, emb.norm.bias, cfg.layer_norm_eps)
    out = []
    H, Dh = cfg.num_heads, cfg.d_head
    for layer in model.layers:
        a = layer.attention

        def ln(v, norm):
            return F.layer_norm(v, (v.shape[-1],), norm.weight, norm.bias, cfg.layer_norm_eps)

        h = ln(x, layer.attention_norm) if cfg.norm_placement == "pre" else x
        q = h @ a.query.weight.T + a.query.bias
        k = h @ a.key.weight.T + a.key.bias
        v = h @ a.value.weight.T + a.value.bias
        probs = torch.zeros(x.shape[0], H, T, T)
        ctx = torch.zeros_like(q)
        for b in range(x.shape[0]):
            for head in range(H):
                sl = slice(head * Dh, (head + 1) * Dh)
                s = q[b, :, sl] @ k[b, :, sl].T / math.sqrt(Dh)
                if attention_mask is not None:
                    s = s.masked_fill(attention_mask[b][None, :] == 0, float("-inf"))
                p = torch.softmax(s, dim=-1)
                probs[b, head] = p
                ctx[b, :, sl] = p @ v[b, :, sl]
        out.append(probs)
        attn_out = ctx @ a.out.weight.T + a.out.bias
        act = {"gelu": F.gelu, "relu": F.relu}[cfg.activation]
        if cfg.norm_placement == "pre":
            x = x + attn_out
            x = x + layer.ffn.down(act(layer.ffn.up(ln(x, layer.ffn_norm))))
        else:
            x = ln(x + attn_out, layer.attention_norm)
            x = ln(x + layer.ffn.down(act(layer.ffn.up(x))), layer.ffn_norm)
    return torch.stack(out, dim=1)  # [B, L, H, T, T]


CONFIGS = [
    EncoderConfig(vocab_size=50),
    EncoderConfig(
        vocab_size=50,
        norm_placement="pre",
        positional="learned",
        num_layers=3,
        num_heads=2,
        d_model=32,
        activation="relu",
    ),
    EncoderConfig(vocab_size=50, positional="none", embedding_layernorm=False, num_heads=8),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["post-sinusoidal", "pre-learned", "no-positions"])
def test_attention_matches_reference(config):
    model = init_random(Encoder(config), seed=3)
    ids = torch.randint(0, 50, (2, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = model(ids).attentions
        want = reference_attention(model, ids)
    assert got.shape == (2, config.num_layers, config.num_heads, 11, 11)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(got.sum(-1), torch.ones(got.shape[:-1]), atol=1e-6, rtol=0)


def test_padding_mask_zeroes_padded_keys_and_keeps_real_rows():
    config = EncoderConfig(vocab_size=50)
    model = init_random(Encoder(config), seed=1)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [5, 6, 7, 0, 0, 0]])
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        batched = model(ids, attention_mask=mask).attentions
        alone = model(ids[1:, :3]).attentions
        want = reference_attention(model, ids, mask)
    assert torch.all(batched[1, :, :, :, 3:] == 0)
    torch.testing.assert_close(batched, want, atol=1e-6, rtol=0)
    # The padded sentence's real tokens see exactly what they see when run alone.
    torch.testing.assert_close(batched[1, :, :, :3, :3], alone[0], atol=1e-6, rtol=0)


def test_keep_layers_returns_only_those_and_matches_full_run():
    config = EncoderConfig(vocab_size=50, num_layers=4)
    model = init_random(Encoder(config), seed=2)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        full = model(ids)
        part = model(ids, keep_layers=[2, 0])
    assert part.layers == [0, 2]
    assert part.hidden is None  # layer 3 was never computed
    torch.testing.assert_close(part.attentions[:, 0], full.attentions[:, 0])
    torch.testing.assert_close(part.attentions[:, 1], full.attentions[:, 2])
    assert full.hidden.shape == (1, 5, config.d_model)


def test_same_seed_same_weights_other_seed_other_weights():
    config = EncoderConfig(vocab_size=100)
    a, b, c = (init_random(Encoder(config), seed=s) for s in (7, 7, 8))
    for (name, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(pa, pb), name
        if pa.std() > 0:  # LayerNorm weights are 1 and biases 0 in every model
            assert not torch.equal(pa, pc), name


def test_adding_a_layer_keeps_the_existing_layers():
    small = init_random(Encoder(EncoderConfig(vocab_size=100, num_layers=2)), seed=0)
    big = init_random(Encoder(EncoderConfig(vocab_size=100, num_layers=3)), seed=0)
    big_params = dict(big.named_parameters())
    for name, p in small.named_parameters():
        assert torch.equal(p, big_params[name]), name


def test_random_attention_is_structured_not_flat():
    """The init aims for peaked rows: the mean row maximum is well above uniform 1/T."""
    model = init_random(Encoder(EncoderConfig(vocab_size=100)), seed=0)
    T = 16
    with torch.no_grad():
        probs = model(torch.arange(T)[None] + 5).attentions
    mean_max = probs.max(-1).values.mean().item()
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1) / math.log(T)
    assert mean_max > 4 / T
    assert entropy.mean().item() < 0.8


def test_dropout_is_off_by_default():
    model = init_random(Encoder(EncoderConfig(vocab_size=30, dropout=0.5)), seed=0)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(model(ids).attentions, model(ids).attentions)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"d_model": 65, "num_heads": 4}, "divisible"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_heads": -2}, "num_heads"),
        ({"activation": "tanh"}, "activation"),
        ({"positional": "rotary"}, "positional"),
        ({"norm_placement": "middle"}, "norm_placement"),
        ({"dropout": 1.5}, "dropout"),
        ({"max_len": 2.5}, "max_len"),
    ],
)
def test_invalid_config_raises_clear_error(kwargs, fragment):
    with pytest.raises(AttnvizError, match=fragment) as info:
        EncoderConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_config_round_trips_and_refuses_unknown_keys():
    config = EncoderConfig(num_layers=3, norm_placement="pre")
    assert EncoderConfig.from_dict(config.to_dict()) == config
    with pytest.raises(AttnvizError, match="num_layer"):
        EncoderConfig.from_dict({"num_layer": 3})
