"""Batch export: many sentences in, a folder of heatmaps, a manifest and a contact sheet out.

    OUTDIR/
      001-the-cat-sat-on-the-mat/model.png      whole model, layers x heads
      001-the-cat-sat-on-the-mat/L0.png         one layer's heads
      001-the-cat-sat-on-the-mat/L0-H03.png     one head
      001-the-cat-sat-on-the-mat/focus.png      where the focus word (default: a pronoun) attends
      001-the-cat-sat-on-the-mat/view.html      with --html: the interactive page (render/html.py)
      index.json                                 every sentence: text, tokens, files, model
      index.html                                 a contact sheet of every image, works offline

Names are predictable: the sentence's position among all inputs, then a short Unicode-aware slug
of its first words (`003-the-animal-didnt-cross`, `012-그-동물은-길을`), at most 24 characters and
72 bytes of UTF-8 (a first word longer than that is cut and tagged with a hash of the sentence), so
names fit every file system whatever the script. Every file is written atomically (temporary name,
then rename), so an interrupted export leaves only whole files; a rerun skips images that exist
unless `overwrite`, so it resumes where the last one stopped. A write the system refuses (disk
full, read-only) stops the export with one error, leaving no partial file and no empty folder.

The work is counted before any drawing (one cheap pass: tokens and focus words), so the progress
total is right from the start.

Attention is computed in this process (it is cheap); images are drawn by `jobs` worker processes,
each keeping its own reusable figures (see render/image/engine.py). torch is never imported by workers.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import stat
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import quote

from .result import AttentionResult
from .errors import AttnvizError
from .export_folder import (
    CONTACT_SHEET,
    EXPORT_FORMAT,
    GENERATOR,
    MANIFEST,
    check_settings,
    export_settings,
    image_options_record,
    read_previous,
)
from .files import WriteError, make_folders, remove_empty, write_error
from .render.image import ImageOptions
from .workers import exit_on_sigterm, stop_if_sigterm

LAYOUTS = ("model", "layers", "heads", "focus")  # export names: one file, one per layer, one per head
DEFAULT_LAYOUTS = ("model", "layers", "focus")
SLUG_CHARS = 24
SLUG_BYTES = 72  # 24 characters of 3-byte UTF-8 (Hangul, CJK); folder names stay far below 255 bytes
HASH_CHARS = 6  # the tag of a cut word: 24 bits of the sentence's SHA-1
HTML_VIEW = "view.html"


# --- inputs --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    index: int  # 1-based position among all inputs: the number in its folder name
    text: str
    source: str  # where it came from, for messages: "notes.txt, line 3", "argument 2", "stdin, line 1"


def _read_lines(path: str | Path) -> list[str]:
    """Sentences of a file (or "-" for standard input): one a line, blank lines and # comments skipped."""
    from .samples import read_sentences

    return read_sentences(path, allow_empty=True)


def collect_sentences(inputs: Iterable[str]) -> list[Sentence]:
    """Expand INPUTS: "-" reads standard input, a file gives its lines, a folder its `*.txt` files
    (sorted by name, not recursive), anything else is a sentence itself.

    An input that looks like a path (ends in .txt, or contains a path separator and no spaces) but
    does not exist is an error rather than a sentence: it is almost certainly a typo.
    """
    found: list[tuple[str, str]] = []
    stdin_used = False
    for position, spec in enumerate(inputs, start=1):
        path = Path(spec)
        kind = _path_kind(spec) if spec.strip() else None
        if spec == "-":
            if stdin_used:
                raise AttnvizError("'-' (standard input) is given twice; give it once")
            stdin_used = True
            found += [(text, f"stdin, sentence {k}") for k, text in enumerate(_read_lines("-"), start=1)]
        elif kind == "folder":
            files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".txt" and p.is_file())
            if not files:
                raise AttnvizError(f"folder {spec} holds no .txt files; give text files with one sentence a line")
            for file in files:
                found += [(text, f"{file}, sentence {k}") for k, text in enumerate(_read_lines(file), start=1)]
        elif kind == "file":
            found += [(text, f"{path}, sentence {k}") for k, text in enumerate(_read_lines(path), start=1)]
        elif _looks_like_path(spec):
            raise AttnvizError(
                f"no such file or folder: {spec}; give text files, folders of .txt files, "
                "'-' for standard input, or sentences"
            )
        else:
            found.append((spec, f"argument {position}"))
    if not found:
        raise AttnvizError("no sentences to export: the inputs hold only blank lines and # comments")
    return [Sentence(i, text, source) for i, (text, source) in enumerate(found, start=1)]


def _path_kind(spec: str) -> str | None:
    """ "folder", "file" or None (nothing there): a long sentence is too long to be a file name (the
    system says ENAMETOOLONG), one with a NUL byte cannot be one; both are sentences, not errors."""
    try:
        mode = os.stat(spec).st_mode
    except (OSError, ValueError):
        return None
    return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else None


def _looks_like_path(spec: str) -> bool:
    s = spec.strip()
    return bool(s) and (s.lower().endswith(".txt") or (("/" in s or os.sep in s) and " " not in s))


# --- names ---------------------------------------------------------------------------------------


def slugify(text: str, limit: int = SLUG_CHARS, max_bytes: int = SLUG_BYTES) -> str:
    """The first words of `text`, lower case, joined by '-': safe in file names on every system.

    Letters and digits of any script survive (NFKC-normalised and case-folded), apostrophes vanish
    ("didn't" -> "didnt"), everything else separates words. Whole words are kept up to `limit`
    characters and `max_bytes` bytes of UTF-8. A first word longer than that (a long compound, a
    script written without spaces) is cut at a character and tagged with a short hash of the whole
    text, so two such sentences that start alike still get different names. A text without letters
    or digits gives "text". The same text always gives the same slug.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = re.sub(r"['’ʼ‘`´]", "", folded)
    words = [unicodedata.normalize("NFC", w) for w in re.findall(r"[^\W_]+", folded)]

    def fits(candidate: str) -> bool:
        return len(candidate) <= limit and len(candidate.encode("utf-8")) <= max_bytes

    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if not fits(candidate):
            break
        slug = candidate
    if not slug and words:
        tag = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_CHARS]
        head = words[0][:limit]
        while head and not fits(f"{head}-{tag}"):
            head = head[:-1]
        slug = f"{head}-{tag}" if head else tag
    return slug or "text"


def sentence_folder(sentence: Sentence, count: int) -> str:
    width = max(3, len(str(count)))
    return f"{sentence.index:0{width}d}-{slugify(sentence.text)}"


@dataclass(frozen=True)
class ImageJob:
    """One image to draw: which layout of which layer/head, and its path relative to OUTDIR."""

    layout: str  # render layout: head, layer, model, focus
    path: str  # POSIX, relative to OUTDIR
    layer: int | None = None
    head: int | None = None


def plan_images(
    folder: str,
    layouts: Iterable[str],
    layers: list[int],
    heads: list[int],
    num_layers: int,
    num_heads: int,
    fmt: str,
    focus: int | None,
) -> list[ImageJob]:
    """The files of one sentence, in a fixed order. Layer numbers are padded to the model's width,
    head numbers to at least two digits (L2-H05), so names sort in order."""
    lw = len(str(max(num_layers - 1, 0)))
    hw = max(2, len(str(max(num_heads - 1, 0))))
    jobs: list[ImageJob] = []
    for layout in layouts:
        if layout == "model":
            jobs.append(ImageJob("model", f"{folder}/model.{fmt}"))
        elif layout == "layers":
            jobs += [ImageJob("layer", f"{folder}/L{l:0{lw}d}.{fmt}", layer=l) for l in layers]
        elif layout == "heads":
            jobs += [
                ImageJob("head", f"{folder}/L{l:0{lw}d}-H{h:0{hw}d}.{fmt}", layer=l, head=h)
                for l in layers
                for h in heads
            ]
        elif layout == "focus":
            if focus is not None:
                jobs.append(ImageJob("focus", f"{folder}/focus.{fmt}"))
        else:
            raise AttnvizError(f"unknown layout {layout!r}: use {', '.join(LAYOUTS)}")
    return jobs


def parse_layouts(spec: str | None) -> tuple[str, ...]:
    """'model,layers' -> ("model", "layers"); 'all' -> every layout; None -> the default."""
    if spec is None:
        return DEFAULT_LAYOUTS
    names = [part.strip().lower() for part in spec.split(",") if part.strip()]
    if "all" in names:  # "all,heads" is still every layout
        return LAYOUTS
    aliases = {"layer": "layers", "head": "heads"}
    names = [aliases.get(n, n) for n in names]
    bad = [n for n in names if n not in LAYOUTS]
    if bad or not names:
        raise AttnvizError(
            f"unknown layout {', '.join(bad) or repr(spec)}: use a comma list of {', '.join(LAYOUTS)}, or all"
        )
    return tuple(dict.fromkeys(names))


# --- drawing (runs in worker processes) -------------------------------------------------------------


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
    from .files import atomic_write
    from .render.image import render_image

    done = []
    made: list[Path] = []
    try:
        for job in task.jobs:
            stop_if_sigterm()  # a SIGTERM stops the task between two images (workers.py)
            target = Path(task.outdir) / job.path
            if target.exists() and not task.overwrite:
                done.append((job.path, False, ()))
                continue
            drawn = render_image(
                task.result, job.layout, task.options, fmt=task.fmt, layer=job.layer, head=job.head, focus=task.focus
            )
            make_folders(target.parent, made)  # listed as made, even if a signal cuts in
            atomic_write(target, drawn.data, overwrite=True)
            done.append((job.path, True, drawn.notes))
    except BaseException:
        remove_empty(made)
        raise
    return done


# --- the export -------------------------------------------------------------------------------------


@dataclass
class SentenceRecord:
    sentence: Sentence
    folder: str
    result: AttentionResult | None = None
    focus: int | None = None
    jobs: list[ImageJob] = field(default_factory=list)
    written: int = 0
    kept: int = 0
    error: str | None = None
    html: str | None = None  # the interactive page, relative to OUTDIR (export --html)
    notes: list[str] = field(default_factory=list)  # one entry per image and note it drew with


@dataclass
class ExportReport:
    records: list[SentenceRecord]
    outdir: Path

    @property
    def failed(self) -> list[SentenceRecord]:
        return [r for r in self.records if r.error is not None]

    @property
    def succeeded(self) -> list[SentenceRecord]:
        return [r for r in self.records if r.error is None]

    @property
    def written(self) -> int:
        return sum(r.written for r in self.records)

    @property
    def kept(self) -> int:
        return sum(r.kept for r in self.records)

    def notes(self) -> dict[str, int]:
        """Each note the drawn images carry (e.g. --annotate values left out) -> how many images."""
        counts: dict[str, int] = {}
        for record in self.records:
            for note in record.notes:
                counts[note] = counts.get(note, 0) + 1
        return counts

    def summary(self) -> str:
        ok, bad = len(self.succeeded), len(self.failed)
        images = f"{self.written} image{'s' if self.written != 1 else ''} written"
        if self.kept:
            images += f", {self.kept} already there"
        return (
            f"exported {ok} of {ok + bad} sentence{'s' if ok + bad != 1 else ''} to {self.outdir} "
            f"({images}); {bad} failed"
        )


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_outdir(outdir: str | Path) -> None:
    """Refuse an output folder that cannot be one (a file, or a file among its parents, or a name
    the system rejects), before any slow work. Whether it may be written is known only on writing."""
    outdir = Path(outdir)
    probe = outdir
    while True:
        try:
            mode = os.stat(probe).st_mode
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                return
            probe = probe.parent
            continue
        except OSError as exc:
            raise write_error(outdir, exc, "create folder") from None
        if stat.S_ISDIR(mode):
            return
        if probe == outdir:
            raise AttnvizError(f"{outdir} is a file; give a folder for the export")
        raise AttnvizError(f"cannot create folder {outdir}: {probe} is a file, not a folder")


def export(
    model,
    sentences: list[Sentence],
    outdir: str | Path,
    *,
    layouts: Iterable[str] = DEFAULT_LAYOUTS,
    fmt: str = "png",
    options: ImageOptions = ImageOptions(),
    layers: list[int] | None = None,
    heads: list[int] | None = None,
    focus: str | None = None,
    truncate: bool = False,
    overwrite: bool = False,
    jobs: int = 1,
    html: bool = False,
    exclude_sinks: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[SentenceRecord], None] | None = None,
) -> ExportReport:
    """Export every sentence; a sentence that fails (too long, focus word missing, ...) is recorded
    and skipped. Writes the manifest and the contact sheet last, so they list what is on disk.

    Two passes: the first tokenizes every sentence and finds its focus word (running the model's
    first layer only), which fixes the list of images; the second computes the attention and draws.
    `on_progress(done_images, total_images)` is called once with the final total before any
    drawing, then as images finish. With `html`, each sentence also gets its interactive page
    (NNN-slug/view.html, render/html.py), kept on a rerun unless `overwrite`. With `exclude_sinks`,
    each result leaves its sink tokens out of rankings and auto colour scales (`without_sinks`).

    A write the system refuses (disk full, read-only, ...) stops the whole export: it raises one
    WriteError, other workers stop, no partial file and no folder left empty by this run remain,
    and the same call later resumes where it stopped.
    """
    from .analysis.focus import find_pronoun, resolve_focus
    from .pipeline import run_attention

    outdir = Path(outdir)
    check_outdir(outdir)
    previous = read_previous(outdir, overwrite)  # a user's own index.html is refused, not replaced
    layouts = tuple(layouts)
    config = model.config
    layers = list(range(config.num_layers)) if layers is None else list(layers)
    heads = list(range(config.num_heads)) if heads is None else list(heads)
    records = [SentenceRecord(s, sentence_folder(s, len(sentences))) for s in sentences]
    settings = export_settings(
        fmt=fmt,
        options=options,
        focus=focus,
        truncate=truncate,
        exclude_sinks=exclude_sinks,
        model=model,
        dtype=_weights_dtype(model),
        layers=layers,
        heads=heads,
    )
    # Kept images must be what this run would draw: other settings are refused, not mixed in.
    check_settings(outdir, previous, settings, {r.folder: r.sentence.text for r in records})
    progress = _Progress(on_progress)

    def plan(record: SentenceRecord) -> None:
        """The sentence's images (its focus word decides whether it gets a focus map), or its failure."""
        try:
            if not record.sentence.text.strip():
                raise AttnvizError("the sentence is empty")
            # One head of the first layer: the tokens, the truncation and the errors of the full run.
            probe = run_attention(model, record.sentence.text, layers=[0], heads=[0], truncate=truncate)
            if "focus" in layouts:
                found = resolve_focus(probe, focus) if focus is not None else find_pronoun(probe)
                record.focus = None if found is None else found.index
            record.jobs = plan_images(
                record.folder, layouts, layers, heads, config.num_layers, config.num_heads, fmt, record.focus
            )
        except AttnvizError as exc:
            _fail(record, str(exc), on_failure)

    def prepare(record: SentenceRecord) -> RenderTask | None:
        if record.error is not None:
            return None
        try:
            record.result = run_attention(model, record.sentence.text, layers=layers, heads=heads, truncate=truncate)
            if exclude_sinks:
                record.result = record.result.without_sinks()
        except AttnvizError as exc:
            _fail(record, str(exc), on_failure)
            progress.step(len(record.jobs))
            return None
        _remove_stale_parts(outdir / record.folder)
        if html:
            try:
                record.html = _write_page(outdir, record, focus, overwrite)
            except WriteError:
                raise
            except AttnvizError as exc:
                _fail(record, str(exc), on_failure)
                progress.step(len(record.jobs))
                return None
        return RenderTask(record.result, tuple(record.jobs), str(outdir), fmt, options, overwrite, record.focus)

    def finish(record: SentenceRecord, outcome: list[tuple[str, bool, tuple[str, ...]]] | BaseException) -> None:
        stop_if_sigterm()  # an outcome that is the signal under another name is no failure (workers.py)
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception) or isinstance(outcome, WriteError):
                raise outcome  # Ctrl-C, or the output cannot be written: stop everything
            message = str(outcome)
            if not isinstance(outcome, (AttnvizError, OSError)):  # a bug: report it, go on with the rest
                message = f"internal error while drawing: {type(outcome).__name__}: {outcome}"
            _fail(record, message, on_failure)
            progress.step(len(record.jobs))
            return
        record.written = sum(1 for _, written, _ in outcome if written)
        record.notes = [note for _, _, notes in outcome for note in notes]
        record.kept = len(outcome) - record.written
        progress.step(len(outcome))

    import torch

    # Sentences are short: one thread runs them faster than several fighting over the cores
    # (20x on 2 busy cores), and leaves the other cores to the drawing processes.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    created = make_folders(outdir)
    try:
        with exit_on_sigterm():  # a `kill` unwinds like Ctrl-C: no temporary file, no empty folder
            for record in records:
                plan(record)
            progress.start(sum(len(r.jobs) for r in records if r.error is None))
            _export_all(records, prepare, finish, jobs)
            write_manifest(outdir, records, model, layouts, fmt, options, settings)
            write_contact_sheet(outdir, records, model)
    except WriteError as exc:
        remove_empty(created)
        raise WriteError(
            f"{exc} (the export stopped there; finished images are kept and the same command resumes)",
            exc.path,
            exc.errno,
        ) from None
    except BaseException:
        remove_empty(created)
        raise
    finally:
        torch.set_num_threads(threads)
    return ExportReport(records, outdir)


def _weights_dtype(model) -> str | None:
    """ "float32", "bfloat16", ...: the precision the attention was computed in (--dtype)."""
    try:
        return str(next(model.encoder.parameters()).dtype).removeprefix("torch.")
    except (AttributeError, StopIteration):
        return None


def _write_page(outdir: Path, record: SentenceRecord, focus: str | None, overwrite: bool) -> str:
    """The sentence's interactive page, here in the main process (it needs no drawing; a
    40-token page takes milliseconds); an existing page is kept unless `overwrite`, as images are."""
    from .files import atomic_write
    from .render.html import render_html

    path = f"{record.folder}/{HTML_VIEW}"
    target = outdir / path
    if overwrite or not target.exists():
        page = render_html(record.result, focus=focus)
        made = make_folders(target.parent)
        try:
            atomic_write(target, page, overwrite=True)
        except BaseException:
            remove_empty(made)
            raise
    return path


def _export_all(records, prepare, finish, jobs: int) -> None:
    if jobs <= 1 or len(records) <= 1:
        for record in records:
            task = prepare(record)
            if task is not None:
                try:
                    outcome = render_task(task)
                except Exception as exc:  # noqa: BLE001 - finish() reports it as this sentence's failure
                    outcome = exc
                finish(record, outcome)
    else:
        _run_parallel(records, prepare, finish, jobs)


def _run_parallel(records, prepare, finish, jobs: int) -> None:
    """Tokenize and run the model here while `jobs` worker processes draw; at most a few sentences
    wait in the queue, so memory stays flat however many sentences there are. The workers die
    with this process, even when it is killed (see workers.py)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from .workers import bound_pool

    window = jobs * 3
    pending: dict = {}
    with bound_pool(jobs) as pool:
        for record in records:
            task = prepare(record)
            if task is None:
                continue
            pending[pool.submit(render_task, task)] = record
            while len(pending) >= window:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    _collect(future, pending.pop(future), finish)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                _collect(future, pending.pop(future), finish)


def _collect(future, record, finish) -> None:
    try:
        outcome = future.result()
    except BaseException as exc:  # noqa: BLE001 - handed to finish, which re-raises the unexpected
        outcome = exc
    finish(record, outcome)


class _Progress:
    """Images done out of a total known before the first one is drawn."""

    def __init__(self, callback) -> None:
        self.callback = callback
        self.done = 0
        self.total = 0

    def start(self, total: int) -> None:
        self.total = total
        if self.callback:
            self.callback(self.done, self.total)

    def step(self, n: int) -> None:
        self.done += n
        if self.callback:
            self.callback(self.done, self.total)


def _fail(record: SentenceRecord, message: str, on_failure) -> None:
    record.error = " ".join(message.split())
    if on_failure:
        on_failure(record)


_PART = re.compile(r"^\..+\.part$")


def _remove_stale_parts(folder: Path) -> None:
    """Temporary files left by an export that was killed mid-write (atomic_write's `.NAME.*.part`)."""
    if folder.is_dir():
        for entry in folder.iterdir():
            if _PART.match(entry.name) and entry.is_file():
                entry.unlink(missing_ok=True)


# --- manifest and contact sheet ------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, without decoding it."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def manifest_entries(outdir: Path, records: list[SentenceRecord]) -> list[dict]:
    entries = []
    for record in records:
        entry: dict = {
            "index": record.sentence.index,
            "id": record.folder,
            "source": record.sentence.source,
            "text": record.sentence.text,
            "status": "failed" if record.error else "ok",
        }
        if record.error:
            entry["error"] = record.error
            entry["files"] = []
        else:
            result = record.result
            entry.update(
                {
                    "tokens": result.tokens,
                    "labels": result.labels,
                    "truncated": result.truncated,
                    "model": result.model.name,
                    "focus": None
                    if record.focus is None
                    else {"index": record.focus, "label": result.labels[record.focus]},
                    "files": [],
                }
            )
            if record.html:
                entry["html"] = record.html
            for job in record.jobs:
                file: dict = {"path": job.path, "layout": job.layout}
                if job.layer is not None:
                    file["layer"] = job.layer
                if job.head is not None:
                    file["head"] = job.head
                size = png_size(outdir / job.path) if job.path.endswith(".png") else None
                if size:
                    file["width"], file["height"] = size
                entry["files"].append(file)
        entries.append(entry)
    return entries


def write_manifest(
    outdir: Path, records, model, layouts, fmt: str, options: ImageOptions, settings: dict | None = None
) -> Path:
    """index.json. "format" comes first: export_folder recognises its own manifest by it. `settings`
    (export_folder.export_settings) are what a rerun into this folder must match."""
    from .files import atomic_write

    payload = {
        "format": EXPORT_FORMAT,
        "model": model.info.to_dict(),
        "layouts": list(layouts),
        "image_format": fmt,
        "image_options": image_options_record(options),
        "counts": {
            "sentences": len(records),
            "failed": sum(1 for r in records if r.error),
            "images": sum(len(r.jobs) for r in records if not r.error),
        },
        "sentences": manifest_entries(outdir, records),
    }
    if settings is not None:
        payload["settings"] = settings
    return atomic_write(outdir / MANIFEST, json.dumps(payload, ensure_ascii=False, indent=1) + "\n", overwrite=True)


_CSS = """
:root { color-scheme: light dark; --fg: #1d1d1f; --muted: #6e6e73; --bg: #fbfbfd; --card: #fff; --line: #d2d2d7; }
@media (prefers-color-scheme: dark) { :root { --fg: #f5f5f7; --muted: #a1a1a6; --bg: #111; --card: #1c1c1e; --line: #3a3a3c; } }
* { box-sizing: border-box; }
body { margin: 0; padding: 1.5rem; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans KR", "Malgun Gothic", sans-serif; color: var(--fg); background: var(--bg); }
header { margin-bottom: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
.meta, .source, figcaption { color: var(--muted); font-size: .85rem; }
nav { display: flex; flex-wrap: wrap; gap: .3rem .8rem; margin: .8rem 0; font-size: .85rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.2rem; margin: 0 0 1.2rem; }
section h2 { font-size: 1.05rem; font-weight: 600; margin: 0 0 .2rem; }
.num { color: var(--muted); font-variant-numeric: tabular-nums; margin-right: .4rem; }
.tokens { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .8rem; color: var(--muted); margin: .3rem 0 .8rem; word-break: break-word; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 1rem; }
figure { margin: 0; }
figure img { width: 100%; height: auto; display: block; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
.failed { border-color: #d70015; }
.failed p { color: #d70015; margin: .3rem 0 0; }
a { color: inherit; }
"""


def write_contact_sheet(outdir: Path, records, model) -> Path:
    """index.html: every image with its sentence; inline CSS, relative links, no script, no network."""
    from .files import atomic_write

    ok = [r for r in records if not r.error]
    failed = [r for r in records if r.error]
    e = html.escape
    parts = [
        "<!doctype html>",
        '<html lang="und"><head><meta charset="utf-8">',
        GENERATOR,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>attnviz export: {len(records)} sentences</title>",
        f"<style>{_CSS}</style></head><body>",
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
    return atomic_write(outdir / CONTACT_SHEET, "\n".join(parts) + "\n", overwrite=True)
