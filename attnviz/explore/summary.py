"""The focus summary under the head strip: where the focus goes in the current head, which
targets win over all heads, the --candidates, and the known pronoun heads (as `show` reports
them). Text only; the numbers come from the Session (analysis.focus, analysis.candidates)."""

from __future__ import annotations

from rich.text import Text

from ..analysis.candidates import NO_WINNER, candidate_label
from ..analysis.focus import ENGLISH_PRONOUNS
from ..errors import AttnvizError
from .cells import fit
from .session import Session


def head_name(layer: int, head: int) -> str:
    return f"L{layer} H{head}" if head >= 0 else f"L{layer} mixed"


def focus_summary(session: Session, spec: str) -> Text:
    result = session.result()
    focus = session.focus_label()
    labels = result.labels
    out = Text(no_wrap=False)
    out.append(f"focus {focus.label!r} ({result.unit_name} {focus.index})", "bold")
    current = next(row for row in session.layer_targets() if row.head == session.head)
    out.append(f" · {head_name(session.layer, session.head)} → ")
    out.append(" · ".join(f"{fit(labels[j], 12)} {w:.2f}" for j, w in current.targets))
    if focus.note:
        out.append(f"\n{focus.note}", "yellow")
    heads, common = session.winners()
    if common:
        out.append(f"\ntop target over {heads} heads: ", "dim")
        out.append(", ".join(f"{fit(labels[j], 12)!r} in {n}" for j, n in common), "dim")
    _candidates(out, session)
    _pronouns(out, session, spec)
    return out


def _candidates(out: Text, session: Session) -> None:
    if not session.options.candidates:
        return
    try:
        scores = session.candidate_scores()
    except AttnvizError as exc:
        out.append(f"\ncandidates: {exc}", "yellow")
        return
    names = [candidate_label(c) for c in scores.candidates]
    li, hi = scores.layers.index(session.layer), scores.heads.index(session.head)
    here = scores.weights[li, hi]
    won = scores.winners
    out.append("\ncandidates here: ")
    out.append(" · ".join(f"{fit(n, 12)} {w:.3f}" for n, w in zip(names, here)))
    out.append(" → " + ("tie" if won[li, hi] == NO_WINNER else names[won[li, hi]]), "bold")
    parts = [f"{fit(n, 12)!r} wins {c}" for n, c in zip(names, scores.counts())]
    if scores.ties():
        parts.append(f"{scores.ties()} tied")
    out.append(f"\nover {won.size} heads: " + ", ".join(parts))
    for note in scores.notes:
        out.append(f"\n{note}", "yellow")


def _pronouns(out: Text, session: Session, spec: str) -> None:
    marks = session.pronoun_marks()
    if marks:
        listed = " ".join(f"L{l}H{h} {m.removeprefix('★ ')}" for (l, h), m in list(marks.items())[:6])
        more = f" (+{len(marks) - 6})" if len(marks) > 6 else ""
        out.append(f"\n★ pronoun heads ({session.pronoun_heads.probe_set}): {listed}{more}", "magenta")
    elif (
        session.pronoun_heads is None
        and session.result().model.learned
        and session.focus_label().label.casefold() in ENGLISH_PRONOUNS
    ):
        out.append(f"\npronoun heads not known yet: `attnviz inspect {spec}` (or --resolve) finds them", "dim")
