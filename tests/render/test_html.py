"""The interactive HTML page (attnviz/render/html.py): one offline file, safe embedding, exact
data, deterministic bytes, size budgets; `show --html`, `export --html` and `_repr_html_`.
The page's behaviour in a real browser is tested in test_html_browser.py."""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest

import attnviz
from attnviz.analysis.words import to_words
from attnviz.pipeline import run_attention
from attnviz.render.html import dequantise, render_html
from cli_runs import assert_one_error_line, invoke

SENTENCE = "The animal didn't cross the street because it was too tired."


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def page_json(page: str) -> dict:
    found = re.findall(r'<script type="application/json" id="attnviz-data">(.*?)</script>', page, re.S)
    assert len(found) == 1
    return json.loads(found[0])


def inline_script(page: str) -> str:
    return re.findall(r"<script>(.*?)</script>", page, re.S)[-1]


def weights_of(data: dict, view: str, level: str) -> np.ndarray:
    v = data["views"][view]
    T = len(data["levels"][level]["labels"])
    shape = (len(v["layers"]), len(v["heads"]), T, T)
    block = v["data"][level]
    return dequantise(block["scale"], block["b64"], data["bits"], int(np.prod(shape))).reshape(shape)


@pytest.fixture(scope="module")
def result(small_model):
    return run_attention(small_model, SENTENCE)


def test_page_is_one_offline_file_with_a_strict_csp(result):
    page = render_html(result)
    parser = Tags()
    parser.feed(page)
    # Nothing is fetched: no element with src or href, no CSS url() or @import, no remote text.
    assert not [(t, a) for t, a in parser.tags if "src" in a or "href" in a]
    assert [t for t, _ in parser.tags if t in ("link", "img", "iframe", "object", "embed")] == []
    assert "url(" not in page and "@import" not in page and "@font-face" not in page
    assert set(re.findall(r"https?://[^\s\"']+", page)) <= {"http://www.w3.org/2000/svg"}  # SVG's namespace name
    csp = [a["content"] for t, a in parser.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1
    rules = dict(r.strip().split(" ", 1) for r in csp[0].split(";"))
    assert rules["default-src"] == "'none'" and "connect-src" not in rules
    assert rules["style-src"] == "'unsafe-inline'" and rules["img-src"] == "data:" and "font-src" not in rules
    # The one script allowed is ours, by the hash of its exact text.
    digest = base64.b64encode(hashlib.sha256(inline_script(page).encode("utf-8")).digest()).decode()
    assert rules["script-src"] == f"'sha256-{digest}'"
    scripts = [a for t, a in parser.tags if t == "script"]
    assert scripts == [{"type": "application/json", "id": "attnviz-data"}, {}]


def test_hostile_text_stays_data(small_model):
    text = "It said </script><script>alert(1)</script> <!-- and \u2028 \u2029 \u202e done"
    r = run_attention(small_model, text)
    page = render_html(r)
    raw = re.search(r'id="attnviz-data">(.*?)</script>', page, re.S)[1]
    assert "</" not in raw and "<!--" not in raw and "\u2028" not in raw and "\u2029" not in raw
    data = json.loads(raw)
    assert data["text"] == text
    assert page.count("</script>") == 2  # the data's and the script's own ends, nothing injected
    assert "<script>alert" not in page
    assert "&lt;/script&gt;" in page  # the heading shows the text escaped


@pytest.mark.slow
def test_same_bytes_every_run(result, tmp_path):
    assert render_html(result) == render_html(result)
    outs = []
    for name in ("a.html", "b.html"):
        done = invoke("show", SENTENCE, "--html", str(tmp_path / name))
        assert done.exit_code == 0, done.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]


@pytest.mark.parametrize("bits", [8, 16])
def test_weights_match_the_result_within_quantisation(result, bits):
    data = page_json(render_html(result, bits=bits))
    assert data["bits"] == bits
    words = to_words(result)
    for level, expected in (("tokens", result), ("words", words)):
        got = weights_of(data, "attention", level)
        step = data["views"]["attention"]["data"][level]["scale"] / (2**bits - 1)
        assert np.abs(got - expected.weights).max() <= step / 2 + 1e-7
        assert data["levels"][level]["labels"] == expected.labels
    assert len(data["levels"]["words"]["labels"]) < len(result.tokens)  # didn + 't merged


def test_small_pages_keep_16_bits_and_say_so(result):
    page = render_html(result)
    assert page_json(page)["bits"] == 16
    assert 'weights stored at " + DATA.bits + " bits' in page


def test_viridis_table_is_matplotlibs(result):
    import matplotlib

    script = inline_script(render_html(result))
    table = re.search(r'const VIRIDIS = "([0-9a-f]+)"', script)[1]
    ours = np.frombuffer(bytes.fromhex(table), dtype=np.uint8).reshape(256, 3)
    theirs = np.round(np.asarray(matplotlib.colormaps["viridis"](np.arange(256)))[:, :3] * 255)
    assert np.array_equal(ours, theirs.astype(np.uint8))


def test_focus_and_candidates_at_both_levels(result):
    data = page_json(render_html(result, candidates=["animal", "street"]))
    tokens, words = data["levels"]["tokens"], data["levels"]["words"]
    assert tokens["focus"] == {"index": 9, "label": "it", "auto": True}
    assert words["labels"][words["focus"]["index"]] == "it" and words["focus"]["index"] == 8
    cands = data["views"]["attention"]["candidates"]["tokens"]
    assert cands["labels"] == ["animal", "street"] and cands["focus"] == 9
    w = cands["weights"]
    assert np.allclose(w, result.weights[:, :, 9][:, :, [2, 7]], atol=1e-6)
    assert sum(cands["wins"]) + cands["ties"] == 8
    assert data["pronoun_heads"] is None  # the slot for heads attnviz will learn about
    explicit = page_json(render_html(result, focus="street"))["levels"]["tokens"]["focus"]
    assert explicit == {"index": 7, "label": "street", "auto": False}


def test_long_text_draws_top_k_lines_and_says_so(small_model):
    short = page_json(render_html(run_attention(small_model, SENTENCE)))
    assert short["head_view"]["top_k"] is None
    long = page_json(render_html(run_attention(small_model, " ".join(["word"] * 45))))
    assert long["head_view"]["top_k"] == 5


@pytest.mark.subprocess
def test_rendering_needs_neither_torch_nor_matplotlib():
    code = """
import sys, numpy as np
from attnviz.result import AttentionResult, ModelInfo
from attnviz.config import EncoderConfig
assert "attnviz.render.html" not in sys.modules
import attnviz
w = np.full((1, 2, 3, 3), 1 / 3, dtype=np.float32)
r = AttentionResult(text="a b", tokens=["[CLS]", "a", "b"], offsets=[(0, 0), (0, 1), (2, 3)], word_ids=[None, 0, 1],
                    special=[True, False, False], weights=w, layers=[0], heads=[0, 1],
                    model=ModelInfo("random", EncoderConfig(num_layers=1, num_heads=2, d_model=8), seed=0))
page = attnviz.notebook_html(r)
assert page.startswith("<iframe"), page[:50]
heavy = [m for m in ("torch", "matplotlib", "transformers") if m in sys.modules]
assert not heavy, heavy
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_repr_html_is_a_sandboxed_srcdoc_iframe(result):
    frame = attnviz.notebook_html(result)
    parser = Tags()
    parser.feed(frame)
    assert [t for t, _ in parser.tags] == ["iframe"]
    attrs = parser.tags[0][1]
    assert attrs["sandbox"] == "allow-scripts"  # no allow-same-origin: views cannot reach each other
    assert attrs["srcdoc"] == render_html(result)  # the parser unescapes the attribute back to the page
    assert "<script" not in frame  # escaped inside the attribute
    assert htmllib.unescape(re.search(r'srcdoc="([^"]*)"', frame)[1]) == render_html(result)


@pytest.mark.slow
def test_show_html_refuses_to_overwrite_and_replaces_the_tables(tmp_path):
    target = tmp_path / "view.html"
    done = invoke("show", SENTENCE, "--html", str(target))
    assert done.exit_code == 0
    assert done.stdout == ""  # no tables
    assert "interactive HTML" in done.stderr and "16 bits" in done.stderr
    line = assert_one_error_line(invoke("show", SENTENCE, "--html", str(target)))
    assert line == f"attnviz: error: {target} already exists; pass --overwrite to replace it"
    assert invoke("show", SENTENCE, "--html", str(target), "--overwrite").exit_code == 0
    with_table = invoke("show", SENTENCE, "--html", str(target), "--overwrite", "--format", "json")
    assert with_table.exit_code == 0 and json.loads(with_table.stdout)["tokens"][9] == "it"


@pytest.mark.slow
def test_show_html_embeds_the_asked_view_beside_attention_and_starts_at_word_level(tmp_path):
    target = tmp_path / "rollout.html"
    done = invoke("show", SENTENCE, "--html", str(target), "--view", "rollout", "--words", "-c", "animal,street")
    assert done.exit_code == 0, done.output
    data = page_json(target.read_text(encoding="utf-8"))
    assert list(data["views"]) == ["attention", "rollout"]
    assert data["views"]["rollout"]["heads"] == [-1] and data["views"]["attention"]["heads"] == [0, 1, 2, 3]
    assert data["initial"]["level"] == "words"
    assert data["views"]["rollout"]["candidates"]["words"]["labels"] == ["animal", "street"]
    norm = tmp_path / "norm.html"
    assert invoke("show", SENTENCE, "--html", str(norm), "--view", "norm", "-l", "1", "--head", "1,2").exit_code == 0
    views = page_json(norm.read_text(encoding="utf-8"))["views"]
    assert {k: (v["layers"], v["heads"]) for k, v in views.items()} == {
        "attention": ([1], [1, 2]),
        "norm": ([1], [1, 2]),
    }


@pytest.mark.slow
def test_export_html_writes_linked_listed_pages(tmp_path):
    out = tmp_path / "figures"
    done = invoke(
        "export",
        SENTENCE,
        "그 동물은 너무 피곤해서 길을 건너지 않았다.",
        "-o",
        str(out),
        "--html",
        "--layout",
        "model",
        "-j",
        "1",
        "-q",
    )
    assert done.exit_code == 0, done.output
    manifest = json.loads((out / "index.json").read_text(encoding="utf-8"))
    pages = [s["html"] for s in manifest["sentences"]]
    assert pages == [f"{s['id']}/view.html" for s in manifest["sentences"]]
    sheet = (out / "index.html").read_text(encoding="utf-8")
    for page, sentence in zip(pages, manifest["sentences"]):
        assert (out / page).is_file()
        assert page_json((out / page).read_text(encoding="utf-8"))["text"] == sentence["text"]
        assert re.search(r'href="([^"]+/view\.html)"', sheet)
    from urllib.parse import unquote

    assert [unquote(h) for h in re.findall(r'href="([^"]+/view\.html)"', sheet)] == pages
    # A rerun keeps the pages (resume), --overwrite rewrites them.
    stamp = (out / pages[0]).stat().st_mtime_ns
    assert invoke("export", SENTENCE, "-o", str(out), "--html", "--layout", "model", "-j", "1", "-q").exit_code == 0
    assert (out / pages[0]).stat().st_mtime_ns == stamp


@pytest.mark.slow
@pytest.mark.real_model
def test_size_budgets_with_minilm(minilm):
    model = minilm
    short = run_attention(model, "The animal didn't cross the street because it was tired.")
    assert short.weights.shape == (6, 12, 15, 15)
    words = (
        "The animal didn't cross the street because it was too tired, and the children who watched it "
        "from the crowded bus laughed.".split()
    )
    text = " ".join((words * 6)[:107])
    long = run_attention(model, text)
    assert long.weights.shape == (6, 12, 128, 128)
    small_page = render_html(short).encode("utf-8")
    big_page = render_html(long).encode("utf-8")
    print(
        f"\nMiniLM HTML page: 15 tokens {len(small_page) / 1024:.0f} KB (16 bits), "
        f"128 tokens {len(big_page) / 1024:.0f} KB (8 bits)"
    )
    assert len(small_page) <= 300 * 1024
    assert len(big_page) <= 3 * 1024 * 1024
    assert page_json(big_page.decode())["bits"] == 8 and page_json(small_page.decode())["bits"] == 16


@pytest.mark.slow
def test_korean_pages_embed_just_their_hangul_glyphs(small_model):
    from fontTools.ttLib import TTFont
    import io

    text = "개가 배고파서 음식을 먹었다. 그것은 맛있었다."
    page = render_html(run_attention(small_model, text))
    assert page == render_html(run_attention(small_model, text))  # the subset is the same bytes too
    urls = re.findall(r"url\(([^)]*)\)", page)
    assert len(urls) == 1 and urls[0].startswith("data:font/ttf;base64,")  # nothing remote
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', page)[1]
    assert "font-src data:;" in csp
    font = TTFont(io.BytesIO(base64.b64decode(urls[0].split(",", 1)[1])))
    hangul = {ch for ch in text if "\uac00" <= ch <= "\ud7a3"}
    assert {chr(c) for c in font.getBestCmap() if 0xAC00 <= c <= 0xD7A3} == hangul
    assert "Open Font License" in page and len(urls[0]) < 40_000
    assert font["name"].getDebugName(1) == "Attnviz Hangul"
