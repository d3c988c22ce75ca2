"""Issue 16 kind 10: long `probe coref` and `inspect --file` runs say how far they are when
stderr is no terminal (a plain line every few seconds), and inspect runs its sentences in batches,
measured as they come, with the same head statistics as one sentence at a time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import attnviz.cli.progress as progress_module
from attnviz.analysis.heads import profile_heads
from attnviz.checkpoints import random_model
from attnviz.cli import main
from attnviz.cli.inspect import profile_texts
from attnviz.config import EncoderConfig
from attnviz.pipeline import run_attention

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^attnviz: (.+): (\d+)/(\d+) \(\d+\.\d%\), \d+ s$")


def _lines(err: str) -> list[re.Match]:
    return [m for m in map(LINE.match, err.splitlines()) if m]


def test_probe_coref_reports_progress_on_a_pipe(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "PLAIN_EVERY_SECONDS", 0.0)
    items = (ROOT / "attnviz" / "sample_texts" / "coref_twins.jsonl").read_text().splitlines()
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(items * (200 // len(items) + 1)) + "\n")
    n = len((items * (200 // len(items) + 1)))
    assert main(["probe", "coref", str(big), "--format", "json", "-o", str(tmp_path / "o.json")]) == 0
    lines = _lines(capsys.readouterr().err)
    assert [int(m[2]) for m in lines] == list(range(64, n, 64))  # one per batch of 64, none at the end
    assert all(m[1] == f"scoring {n} items" and int(m[3]) == n for m in lines)


def test_inspect_file_reports_progress_on_a_pipe(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress_module, "PLAIN_EVERY_SECONDS", 0.0)
    sentences = tmp_path / "many.txt"
    sentences.write_text("".join(f"The dog number {i} ate the food because it was hungry.\n" for i in range(150)))
    assert main(["inspect", "--file", str(sentences), "--no-pronouns", "-o", str(tmp_path / "o.txt")]) == 0
    lines = _lines(capsys.readouterr().err)
    assert [int(m[2]) for m in lines] == [64, 128]


def test_quiet_when_the_work_is_short(tmp_path, capsys):
    assert main(["inspect", "--text", "A dog ate.", "--no-pronouns", "-o", str(tmp_path / "o.txt")]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("causal", [False, True])
def test_batched_profiles_match_one_sentence_at_a_time(causal):
    model = random_model(EncoderConfig(causal=causal), seed=3)
    texts = [f"The {w} didn't cross the street because it was too tired." for w in ("animal", "old dog", "cat")] + [
        "Short.",
        "A much longer sentence that has quite a few more words in it than the others do.",
    ] * 40
    batched, truncated = profile_texts(model, texts, "profiling")
    single = profile_heads([run_attention(model, t, truncate=True) for t in texts])
    assert truncated == 0 and batched.sentences == single.sentences and batched.queries == single.queries
    for a, b in zip(batched.profiles, single.profiles):
        assert a.role == b.role
        for name, value in a.stats.items():
            assert value == pytest.approx(b.stats[name], abs=1e-5, nan_ok=True), name
