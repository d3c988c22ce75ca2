"""The model's own answer: how much more it expects the right referent than the wrong one.

readout = log P(" " + right) - log P(" " + wrong) as the continuation of the prompt
TEMPLATE.format(text, focus), by default `TEXT In that sentence, "FOCUS" refers to the`. A candidate's
log-probability is summed over its tokens (the tokens of prompt + " " + candidate after the prompt's
own). For a masked LM the candidate stands in [MASK] tokens after the same prompt, one per token,
and its log-probability is the sum over those masks.

Everything the interventions need is prepared once here (`Readout`): the sequences to run, right-
padded into one batch, and the (sequence, position, token, sign) terms whose log-probabilities make
the number. A decoder needs, for a candidate of k tokens, the prompt followed by its first k - 1
tokens; sequences that are prefixes of others are dropped (a causal model's logits at a position do
not depend on what follows), so single-token candidates share one run of the prompt alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..checkpoints.lm_head import LMHead
from ..checkpoints.loaded import LoadedModel
from ..errors import AttnvizError
from ..text import check_text

DEFAULT_TEMPLATE = '{text} In that sentence, "{focus}" refers to the'
PRONOUNS = ("she", "he", "it", "they", "her", "him", "them", "his", "its", "their")
MASK_TOKENS = ("[MASK]", "<mask>")


@dataclass
class Readout:
    """The prepared readout of one text: what to run and which log-probabilities to add up."""

    text: str
    focus: str
    right: str
    wrong: str
    template: str
    prompt: str
    sequences: list[list[int]]  # token ids, S sequences
    terms: list[tuple[int, int, int, float]]  # (sequence, position, token id, +1 right / -1 wrong)
    mean_lengths: list[int]  # per sequence: positions that `--mode mean` averages over
    prompt_tokens: list[str]  # the prompt's tokens (for --position and messages)
    prompt_offsets: list[tuple[int, int]]  # their character spans in `prompt`
    text_start: int  # where the text begins in the prompt
    masked: bool = False
    candidate_ids: dict = field(default_factory=dict)  # "right"/"wrong" -> token ids

    @property
    def lengths(self) -> list[int]:
        return [len(s) for s in self.sequences]

    def inputs(self, loaded: LoadedModel):
        """(ids [S, T], attention mask [S, T] or None) on the model's device, right-padded. A
        decoder needs no mask: its real tokens never see the pads after them."""
        import torch

        T = max(self.lengths)
        device = next(loaded.encoder.parameters()).device
        pad = loaded.config.pad_token_id
        ids = torch.tensor([s + [pad] * (T - len(s)) for s in self.sequences], device=device)
        if loaded.config.causal or len(set(self.lengths)) == 1:
            return ids, None
        mask = torch.tensor([[1] * len(s) + [0] * (T - len(s)) for s in self.sequences], device=device)
        return ids, mask

    def value(self, head: LMHead, hidden) -> "object":
        """hidden [R*S, T, D] (R repeats of the S sequences, after the final norm) -> readout [R]
        as a float64 tensor."""
        import torch

        S = len(self.sequences)
        R = hidden.shape[0] // S
        seq = torch.tensor([t[0] for t in self.terms], device=hidden.device)
        pos = torch.tensor([t[1] for t in self.terms], device=hidden.device)
        tok = torch.tensor([t[2] for t in self.terms], device=hidden.device)
        sign = torch.tensor([t[3] for t in self.terms], dtype=torch.float64, device=hidden.device)
        picked = hidden.view(R, S, *hidden.shape[1:])[:, seq, pos]  # [R, n_terms, D]
        logp = head.logits(picked).log_softmax(dim=-1)  # [R, n_terms, V]
        chosen = logp.gather(-1, tok[None, :, None].expand(R, -1, 1))[..., 0].double()  # [R, n_terms]
        return (chosen * sign).sum(-1)  # [R]


def default_focus(text: str) -> str:
    """The first pronoun of the text (she, he, it, they, ...)."""
    for word in re.findall(r"\w+", text):
        if word.lower() in PRONOUNS:
            return word
    raise AttnvizError("no pronoun in the text to ask about; name the word with --focus")


def build_readout(
    loaded: LoadedModel,
    head: LMHead,
    text: str,
    candidates: tuple[str, str],
    focus: str | None = None,
    template: str | None = None,
) -> Readout:
    """Prepare the readout of `text` for (right, wrong) candidates (one-line errors for an unknown
    candidate, a focus word that is not in the text, a template without {text})."""
    text = check_text(text, "the text").strip()
    right, wrong = (c.strip() for c in candidates)
    template = DEFAULT_TEMPLATE if template is None else template
    if "{text}" not in template:
        raise AttnvizError("the readout template must contain {text} (and may contain {focus})")
    focus = focus.strip() if focus else default_focus(text)
    if not re.search(rf"(?<!\w){re.escape(focus)}(?!\w)", text):
        raise AttnvizError(f"the focus word {focus!r} is not in the text")
    for name, cand in (("right", right), ("wrong", wrong)):
        if not cand:
            raise AttnvizError(f"the {name} candidate is empty; give --candidates RIGHT,WRONG")
        if not re.search(rf"(?<!\w){re.escape(cand)}(?!\w)", text, flags=re.IGNORECASE):
            raise AttnvizError(f"candidate {cand!r} is not a word of the text; give two words of it, right first")
    if right.lower() == wrong.lower():
        raise AttnvizError(f"the two candidates are the same word ({right!r})")
    text_start = template.index("{text}")
    prompt = template.replace("{text}", text).replace("{focus}", focus)
    if "{focus}" in template and template.index("{focus}") < text_start:
        text_start += len(focus) - len("{focus}")
    tok = loaded.tokenizer
    enc = tok.encode(prompt, max_len=loaded.config.max_len)
    ids = list(enc.ids)
    if head.masked:
        return _masked(loaded, enc, prompt, text, focus, right, wrong, template, text_start)
    # A trailing special token (an EOS some tokenizers append) is not part of the prompt.
    n = len(ids)
    while n > 1 and enc.special[n - 1]:
        n -= 1
    prompt_ids, trailing = ids[:n], ids[n:]
    cands = {}
    for name, cand in (("right", right), ("wrong", wrong)):
        full = tok._encode(prompt + " " + cand).ids
        if trailing and full[-len(trailing) :] == trailing:
            full = full[: -len(trailing)]
        if full[:n] == prompt_ids and len(full) > n:
            rest = full[n:]
        else:  # the candidate merged with the prompt's end: tokenize it on its own
            rest = tok._encode(" " + cand, add_special_tokens=False).ids
        if not rest:
            raise AttnvizError(f"candidate {cand!r} has no tokens in this model's vocabulary")
        cands[name] = rest
    sequences: list[list[int]] = []
    terms = []
    for name, sign in (("right", 1.0), ("wrong", -1.0)):
        c = cands[name]
        seq = prompt_ids + c[:-1]
        for i, t in enumerate(c):
            terms.append((seq, n - 1 + i, t, sign))
    # One run per sequence that is not a prefix of another (causal: a prefix's logits are the same).
    wanted = sorted({tuple(s) for s, *_ in terms}, key=len, reverse=True)
    for s in wanted:
        if not any(list(s) == other[: len(s)] for other in sequences):
            sequences.append(list(s))

    def index_of(s):
        return next(i for i, other in enumerate(sequences) if other[: len(s)] == list(s))

    terms = [(index_of(s), p, t, sign) for s, p, t, sign in terms]
    return Readout(
        text=text,
        focus=focus,
        right=right,
        wrong=wrong,
        template=template,
        prompt=prompt,
        sequences=sequences,
        terms=terms,
        mean_lengths=[n] * len(sequences),
        prompt_tokens=list(enc.tokens[:n]),
        prompt_offsets=list(enc.offsets[:n]),
        text_start=text_start,
        candidate_ids=cands,
    )


def _masked(loaded, enc, prompt, text, focus, right, wrong, template, text_start) -> Readout:
    """A masked LM: prompt [MASK] x k (before the trailing specials) for each candidate of k tokens."""
    tok = loaded.tokenizer
    mask_id = next((tok._tok.token_to_id(m) for m in MASK_TOKENS if tok._tok.token_to_id(m) is not None), None)
    if mask_id is None:
        raise AttnvizError(f"{tok.source}: the tokenizer has no mask token ({' or '.join(MASK_TOKENS)})")
    ids = list(enc.ids)
    end = len(ids)
    while end > 0 and enc.special[end - 1]:
        end -= 1
    sequences, terms, cands = [], [], {}
    for name, cand, sign in (("right", right, 1.0), ("wrong", wrong, -1.0)):
        c = tok._encode(" " + cand, add_special_tokens=False).ids
        if not c:
            raise AttnvizError(f"candidate {cand!r} has no tokens in this model's vocabulary")
        cands[name] = c
        seq = ids[:end] + [mask_id] * len(c) + ids[end:]
        if seq not in sequences:
            sequences.append(seq)
        s = sequences.index(seq)
        terms += [(s, end + i, t, sign) for i, t in enumerate(c)]
    return Readout(
        text=text,
        focus=focus,
        right=right,
        wrong=wrong,
        template=template,
        prompt=prompt,
        sequences=sequences,
        terms=terms,
        mean_lengths=[len(s) for s in sequences],
        prompt_tokens=list(enc.tokens[:end]),
        prompt_offsets=list(enc.offsets[:end]),
        text_start=text_start,
        masked=True,
        candidate_ids=cands,
    )
