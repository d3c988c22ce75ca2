"""What an export will do, checked before the model loads (torch's import alone takes seconds).

`plan()` is the one call the CLI makes before loading the model: it parses the layouts, refuses
an output folder that cannot be one, a user's own index.json/index.html there, a rerun with other
image settings, and unreadable inputs, and collects the sentences. What depends on the model
(the layer and head selection, the model's part of the settings) is checked by `run` once the
model is known and the folder is locked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

from ..render.image import ImageOptions
from .folder import check_outdir
from .inputs import Sentence, collect_sentences
from .manifest import check_settings, export_settings, read_previous
from .naming import DEFAULT_LAYOUTS, parse_layouts

Selection = str | Sequence[int] | None  # a --layer/--head spec ("0,2", "1-3", "all"), indices, or None: all


@dataclass(frozen=True)
class ExportPlan:
    """A validated export, waiting for its model."""

    sentences: tuple[Sentence, ...]
    outdir: Path
    layouts: tuple[str, ...] = DEFAULT_LAYOUTS
    fmt: str = "png"
    options: ImageOptions = ImageOptions()
    layers: Selection = None
    heads: Selection = None
    focus: str | None = None
    truncate: bool = False
    overwrite: bool = False
    jobs: int = 1
    html: bool = False
    exclude_sinks: bool = False

    def settings(self, model=None, dtype: str | None = None, layers=None, heads=None) -> dict:
        """What decides the images' bytes (manifest.export_settings); without `model`, the part
        known before it loads."""
        return export_settings(
            fmt=self.fmt,
            options=self.options,
            focus=self.focus,
            truncate=self.truncate,
            exclude_sinks=self.exclude_sinks,
            model=model,
            dtype=dtype,
            layers=layers,
            heads=heads,
        )


def plan(
    inputs: Iterable[str] | Iterable[Sentence],
    outdir: str | Path,
    *,
    layouts: str | Iterable[str] | None = None,
    fmt: str = "png",
    options: ImageOptions = ImageOptions(),
    layers: Selection = None,
    heads: Selection = None,
    focus: str | None = None,
    truncate: bool = False,
    overwrite: bool = False,
    jobs: int | None = None,
    html: bool = False,
    exclude_sinks: bool = False,
) -> ExportPlan:
    """An ExportPlan, or AttnvizError for what is wrong before any model is loaded. `inputs` are
    the command line's (sentences, files, folders, "-"; see collect_sentences) or Sentences;
    `layouts` a comma list ("model,focus", "all") or names; `jobs` None: one per CPU core."""
    layouts = parse_layouts(layouts if layouts is None or isinstance(layouts, str) else ",".join(layouts))
    outdir = Path(outdir)
    check_outdir(outdir)  # a file in the way fails now, not after the model has loaded
    made = ExportPlan(
        sentences=(),
        outdir=outdir,
        layouts=layouts,
        fmt=fmt,
        options=options,
        layers=layers,
        heads=heads,
        focus=focus,
        truncate=truncate,
        overwrite=overwrite,
        jobs=default_jobs() if jobs is None else jobs,
        html=html,
        exclude_sinks=exclude_sinks,
    )
    # So do a user's own index.html and a rerun with other image options (the model's part and
    # --layer/--head are compared by `run`, once they are known).
    check_settings(outdir, read_previous(outdir, overwrite), made.settings())
    inputs = list(inputs)
    sentences = inputs if inputs and all(isinstance(s, Sentence) for s in inputs) else collect_sentences(inputs)
    return replace(made, sentences=tuple(sentences))


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
