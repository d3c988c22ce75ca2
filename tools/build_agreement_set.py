"""Build attnviz/data/probes/agreement.jsonl: pronouns whose antecedent follows from agreement alone.

    python tools/build_agreement_set.py            # rewrites the file (identical bytes every run)
    python tools/build_agreement_set.py --check    # exit 1 if the shipped file differs

Two cues, each in twins that differ only in the pronoun, so the answer flips with it:
- number: a singular noun that takes "it" and a plural noun; "it" -> the singular one, "they" -> the plural one.
- gender: a clearly male and a clearly female noun; "he" -> the male one, "she" -> the female one.
Every base sentence is written with the candidates in both orders, so "the first mentioned" and
"the nearest candidate" are right on exactly half the items: only agreement separates them.
Continuations are past-tense verbs that do not agree in number ("seemed", not "was"/"were"), so
nothing but the pronoun tells the twins apart. Spans are pinned with character offsets.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "attnviz" / "data" / "probes" / "agreement.jsonl"
SEED = 20261122
BASES_PER_CUE = 32  # x 2 orders x 2 pronouns = 128 items per cue

# {A} first mention, {B} second mention, {P} the pronoun, {C} a continuation.
FRAMES = [
    "The {A} ignored the {B} because {P} {C}.",
    "The {A} followed the {B} until {P} {C}.",
    "When the {A} saw the {B}, {P} {C}.",
    "After the {A} passed the {B}, {P} {C}.",
    "The {A} watched the {B} while {P} {C}.",
    "Before the {A} reached the {B}, {P} {C}.",
    "The {A} noticed the {B} as soon as {P} {C}.",
    "Next to the {A} stood the {B}, and {P} {C}.",
    "The {A} and the {B} met at noon, and later {P} {C}.",
    "Although the {A} greeted the {B}, {P} {C}.",
    "The {A} stayed near the {B}, but {P} {C}.",
    "Everyone saw the {A} with the {B} before {P} {C}.",
]
CONTINUATIONS = [
    "seemed tired",
    "looked surprised",
    "turned around",
    "waited by the gate",
    "slowed down",
    "left early",
    "stopped near the river",
    "felt hungry",
    "seemed calm",
    "moved away",
    "hid behind the wall",
    "made a loud noise",
]
# Number: singular nouns that naturally take "it", plural nouns that take "they".
SINGULAR = [
    "dog",
    "cat",
    "bird",
    "horse",
    "robot",
    "truck",
    "kitten",
    "fox",
    "drone",
    "parrot",
    "puppy",
    "camel",
    "tractor",
    "goose",
    "rabbit",
    "pony",
]
PLURAL = [
    "boys",
    "girls",
    "children",
    "farmers",
    "tourists",
    "students",
    "neighbours",
    "workers",
    "soldiers",
    "guards",
    "visitors",
    "players",
    "sheep dogs",
    "ducks",
    "monkeys",
    "pigeons",
]
# Gender: nouns whose gender is part of their meaning.
MALE = [
    "king",
    "uncle",
    "father",
    "brother",
    "actor",
    "waiter",
    "boy",
    "man",
    "husband",
    "son",
    "grandfather",
    "monk",
    "nephew",
    "prince",
    "gentleman",
    "groom",
]
FEMALE = [
    "queen",
    "aunt",
    "mother",
    "sister",
    "actress",
    "waitress",
    "girl",
    "woman",
    "wife",
    "daughter",
    "grandmother",
    "nun",
    "niece",
    "princess",
    "lady",
    "bride",
]

CUES = {
    # cue: (nouns of candidate kind 0, nouns of kind 1, pronoun for kind 0, pronoun for kind 1)
    "number": (SINGULAR, PLURAL, "it", "they"),
    "gender": (MALE, FEMALE, "he", "she"),
}


def _sentence(frame: str, first: str, second: str, pronoun: str, continuation: str) -> dict:
    """The text with the character spans of both nouns (head word: the last word) and the pronoun."""
    text = ""
    spans = {}
    rest = frame
    for key, value in (("A", first), ("B", second), ("P", pronoun), ("C", continuation)):
        before, rest = rest.split("{" + key + "}", 1)
        text += before
        if key in "ABP":
            head = value.split()[-1]
            start = len(text) + len(value) - len(head)
            spans[key] = {"text": head, "start": start, "end": start + len(head)}
        text += value
    text += rest
    return {"text": text, "spans": spans}


def build() -> list[dict]:
    rng = random.Random(SEED)
    items = []
    for cue, (kind0, kind1, pronoun0, pronoun1) in CUES.items():
        for base in range(BASES_PER_CUE):
            frame = FRAMES[base % len(FRAMES)]
            continuation = CONTINUATIONS[rng.randrange(len(CONTINUATIONS))]
            noun0, noun1 = kind0[rng.randrange(len(kind0))], kind1[rng.randrange(len(kind1))]
            for order, (first, second) in enumerate(((noun0, noun1), (noun1, noun0))):
                group = f"{cue}-{base:02d}{'ab'[order]}"
                for pronoun in (pronoun0, pronoun1):
                    made = _sentence(frame, first, second, pronoun, continuation)
                    wanted = noun0 if pronoun == pronoun0 else noun1  # the agreeing noun
                    answer = 0 if wanted == first else 1
                    items.append(
                        {
                            "id": f"{group}-{pronoun}",
                            "group": group,
                            "cue": cue,
                            "text": made["text"],
                            "pronoun": made["spans"]["P"],
                            "candidates": [made["spans"]["A"], made["spans"]["B"]],
                            "answer": answer,
                        }
                    )
    return items


def render(items: list[dict]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing")
    args = parser.parse_args()
    text = render(build())
    if args.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == text
        print(f"{OUT}: {'up to date' if same else 'differs from what this script builds'}")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({text.count(chr(10))} items)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
