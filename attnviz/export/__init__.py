"""Batch export: many sentences in, a folder of heatmaps, a manifest and a contact sheet out.

    OUTDIR/
      001-the-cat-sat-on-the-mat/model.png      whole model, layers x heads
      001-the-cat-sat-on-the-mat/L0.png         one layer's heads
      001-the-cat-sat-on-the-mat/L0-H03.png     one head
      001-the-cat-sat-on-the-mat/focus.png      where the focus word (default: a pronoun) attends
      001-the-cat-sat-on-the-mat/view.html      with --html: the interactive page (render/html.py)
      index.json                                 every sentence: text, tokens, files, model
      index.html                                 a contact sheet of every image, works offline

One module per job: inputs (collecting sentences), naming (slugs, image names, layouts), planning (what
an export will do, checked before the model loads), folder (the folder: symbolic links, the lock),
drawing (what worker processes run), orchestration (running it), manifest (index.json, written and
read), contact_sheet (index.html).

    planned = export.plan(["notes.txt"], "figures", layouts="model,focus")   # before the model loads
    report = export.run(model, planned)
"""

from ..errors import AttnvizError
from .folder import LOCK_FILE, check_outdir
from .inputs import MAX_INPUT_BYTES, Sentence, collect_sentences
from .manifest import CONTACT_SHEET, EXPORT_FORMAT, GENERATOR, MANIFEST
from .naming import (
    DEFAULT_LAYOUTS,
    LAYOUTS,
    SLUG_BYTES,
    SLUG_CHARS,
    ImageJob,
    parse_layouts,
    plan_images,
    sentence_folder,
    slugify,
)
from .orchestration import ExportReport, SentenceRecord, export, run
from .planning import ExportPlan, default_jobs, plan

__all__ = [
    "AttnvizError",
    "CONTACT_SHEET",
    "DEFAULT_LAYOUTS",
    "EXPORT_FORMAT",
    "ExportPlan",
    "ExportReport",
    "GENERATOR",
    "ImageJob",
    "LAYOUTS",
    "LOCK_FILE",
    "MANIFEST",
    "MAX_INPUT_BYTES",
    "SLUG_BYTES",
    "SLUG_CHARS",
    "Sentence",
    "SentenceRecord",
    "check_outdir",
    "collect_sentences",
    "default_jobs",
    "export",
    "parse_layouts",
    "plan",
    "plan_images",
    "run",
    "sentence_folder",
    "slugify",
]
