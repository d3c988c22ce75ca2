"""index.html of an export folder: a contact sheet of every image with its sentence, that works
offline (inline CSS from render/html_assets/contact_sheet.css, relative links, no script)."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from ..render.html_page import asset
from .folder import write_inside
from .manifest import CONTACT_SHEET, GENERATOR, png_size


def write_contact_sheet(outdir: Path, records, model) -> Path:
    """index.html: every image with its sentence; inline CSS, relative links, no script, no network."""

    ok = [r for r in records if not r.error]
    failed = [r for r in records if r.error]
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="und"><head><meta charset="utf-8">',
        GENERATOR,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>attnviz export: {len(records)} sentences</title>",
        f"<style>{asset('contact_sheet.css')}</style></head><body>",
        "<header>",
        f"<h1>Attention heatmaps of {len(records)} sentence{'s' if len(records) != 1 else ''}</h1>",
        f'<div class="meta">model: {e(model.info.name)}'
        + ("" if model.info.learned else " (random weights: the patterns are not learned)")
        + f" · {sum(len(r.jobs) for r in ok)} images"
        + (f" · {len(failed)} failed" if failed else "")
        + ' · <a href="index.json">index.json</a></div>',
    ]
    if len(records) > 1:
        parts.append(
            "<nav>" + "".join(f'<a href="#s{r.sentence.index}">{r.sentence.index}</a>' for r in records) + "</nav>"
        )
    parts.append("</header>")
    for record in records:
        s = record.sentence
        if record.error:
            parts.append(
                f'<section id="s{s.index}" class="failed"><h2><span class="num">{s.index}</span>'
                f'{e(s.text)}</h2><div class="source">{e(s.source)}</div>'
                f"<p>not exported: {e(record.error)}</p></section>"
            )
            continue
        tokens = " · ".join(e(t) for t in record.result.labels)
        parts.append(
            f'<section id="s{s.index}"><h2><span class="num">{s.index}</span>{e(s.text)}</h2>'
            f'<div class="source">{e(s.source)} · {e(record.folder)}/'
            + (f' · <a class="view" href="{quote(record.html)}">interactive view</a>' if record.html else "")
            + "</div>"
            f'<div class="tokens">{tokens}</div><div class="grid">'
        )
        for job in record.jobs:
            href = quote(job.path)
            caption = e(job.path.rsplit("/", 1)[-1])
            if job.path.endswith(".pdf"):
                parts.append(f'<figure><a href="{href}">{caption}</a></figure>')
                continue
            size = png_size(outdir / job.path) if job.path.endswith(".png") else None
            dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
            parts.append(
                f'<figure><a href="{href}"><img src="{href}"{dims} alt="{e(job.layout)} heatmap of '
                f'sentence {s.index}" decoding="async"></a><figcaption>{caption}</figcaption></figure>'
            )
        parts.append("</div></section>")
    parts.append("</body></html>")
    write_inside(outdir / CONTACT_SHEET, "\n".join(parts) + "\n")
    return outdir / CONTACT_SHEET
