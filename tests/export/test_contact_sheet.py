"""index.html, the export's contact sheet: complete, self-contained, and really loads in a browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

from cli_runs import invoke

TINY = ["--num-layers", "2", "--num-heads", "2", "--d-model", "16", "--d-ff", "32", "--jobs", "1"]
SENTENCES = [
    "The animal didn't cross the street because it was too tired.",
    "그 동물은 너무 피곤해서 길을 건너지 않았다.",
    'Tags <b>like</b> & "quotes" stay text.',
    " ".join(["long"] * 40),
]


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("sheet") / "figures"
    done = invoke("export", *SENTENCES, "-o", str(out), "--max-len", "30", *TINY)
    assert done.exit_code == 1, done.output  # the long sentence fails
    page = Elements()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    return out, page


@pytest.mark.slow
def test_every_image_of_the_manifest_is_on_the_sheet_and_exists(exported):
    out, page = exported
    manifest = json.loads((out / "index.json").read_text(encoding="utf-8"))
    listed = [f["path"] for s in manifest["sentences"] for f in s["files"]]
    shown = [unquote(attrs["src"]) for tag, attrs in page.tags if tag == "img"]
    # model + 2 layers each, and a focus map for the one with a pronoun ("it"; the Korean 그 is
    # the determiner "that", not a pronoun)
    assert shown == listed and len(shown) == 3 * 3 + 1
    assert all((out / src).is_file() for src in shown)
    widths = [int(attrs["width"]) for tag, attrs in page.tags if tag == "img"]
    assert all(w > 100 for w in widths)


@pytest.mark.slow
def test_sheet_shows_each_sentence_escaped_and_the_failure(exported):
    _, page = exported
    text = "".join(page.text)
    for sentence in SENTENCES:
        assert sentence in text
    assert "<b>" not in [tag for tag, _ in page.tags]  # the sentence's markup stayed text
    assert "not exported" in text and "30" in text


def test_sheet_is_self_contained(exported):
    out, page = exported
    html = (out / "index.html").read_text(encoding="utf-8")
    assert not [t for t, _ in page.tags if t in ("script", "link", "iframe")]
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "@import" not in html and "url(" not in html


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.subprocess
@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_every_image_loads_in_headless_chromium(exported):
    out, page = exported
    expected = sum(1 for tag, _ in page.tags if tag == "img")
    # A copy of the page, beside it so the relative links hold, that records in the DOM how many
    # images decoded (naturalWidth > 0) once the page has loaded.
    probe = out / "probe.html"
    probe.write_text(
        (out / "index.html")
        .read_text(encoding="utf-8")
        .replace(
            "</body>",
            "<script>addEventListener('load', () => { const imgs = [...document.images]; "
            "document.body.dataset.loaded = imgs.filter(i => i.complete && i.naturalWidth > 0).length; "
            "document.body.dataset.total = imgs.length; });</script></body>",
        ),
        encoding="utf-8",
    )
    try:
        done = subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--virtual-time-budget=15000",
                "--dump-dom",
                probe.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        probe.unlink()
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = re.search(r'data-loaded="(\d+)"', done.stdout)
    total = re.search(r'data-total="(\d+)"', done.stdout)
    assert loaded and total, done.stdout[:2000]
    assert int(total[1]) == expected > 0
    assert int(loaded[1]) == expected
