"""Drawing and writing one sentence's files: its images (in worker processes) and its HTML page,
always inside the export folder (folder.py says how symbolic links are met)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..files import make_folders, remove_empty
from ..render.image import ImageOptions
from ..result import AttentionResult
from ..workers import stop_if_sigterm
from .folder import check_inside, write_inside
from .naming import HTML_VIEW, ImageJob


@dataclass(frozen=True)
class RenderTask:
    result: AttentionResult
    jobs: tuple[ImageJob, ...]
    outdir: str
    fmt: str
    options: ImageOptions
    overwrite: bool
    focus: int | None


def render_task(task: RenderTask) -> list[tuple[str, bool, tuple[str, ...]]]:
    """Draw and write the images of one sentence; (path, written, notes) per image, written False =
    already there, notes = what the image left out (render_image's notes).

    A failed write (WriteError) takes away the sentence folder again if this call created it and
    nothing is in it; atomic_write has already removed its temporary file."""
    from ..render.image import render_image

    done = []
    made: list[Path] = []
    try:
        for job in task.jobs:
            stop_if_sigterm()  # a SIGTERM stops the task between two images (workers.py)
            target = Path(task.outdir) / job.path
            check_inside(Path(task.outdir), target.parent)
            if os.path.lexists(target) and not task.overwrite:
                done.append((job.path, False, ()))
                continue
            drawn = render_image(
                task.result, job.layout, task.options, fmt=task.fmt, layer=job.layer, head=job.head, focus=task.focus
            )
            make_folders(target.parent, made)  # listed as made, even if a signal cuts in
            write_inside(target, drawn.data)
            done.append((job.path, True, drawn.notes))
    except BaseException:
        remove_empty(made)
        raise
    return done


def write_page(outdir: Path, folder: str, result: AttentionResult, focus: str | None, overwrite: bool) -> str:
    """The sentence's interactive page, here in the main process (it needs no drawing; a
    40-token page takes milliseconds); an existing page is kept unless `overwrite`, as images are.
    Returns its path relative to OUTDIR."""
    from ..render.html import render_html

    path = f"{folder}/{HTML_VIEW}"
    target = outdir / path
    check_inside(outdir, target.parent)
    if overwrite or not os.path.lexists(target):
        page = render_html(result, focus=focus)
        made = make_folders(target.parent)
        try:
            write_inside(target, page)
        except BaseException:
            remove_empty(made)
            raise
    return path
