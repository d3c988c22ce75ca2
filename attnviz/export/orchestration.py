"""Running an export: every sentence's attention computed here, its images drawn by workers, the
manifest and the contact sheet written last so they list what is on disk.

Two passes: the first tokenizes every sentence and finds its focus word (running the model's
first layer only), which fixes the list of images, so the progress total is right from the
start; the second computes the attention and draws. Attention is computed in this process (it is
cheap); images are drawn by `jobs` worker processes, each keeping its own reusable figures (see
render/image/engine.py). torch is never imported by workers.

Every file is written atomically (temporary name, then rename), so an interrupted export leaves
only whole files; a rerun skips images that exist unless `overwrite`, so it resumes where the last
one stopped. A write the system refuses (disk full, read-only) stops the export with one error,
leaving no partial file and no empty folder. SIGTERM unwinds like Ctrl-C (workers.py).
"""

from __future__ import annotations

import contextlib
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..errors import AttnvizError
from ..files import WriteError, make_folders, remove_empty
from ..render.image import ImageOptions
from ..result import AttentionResult
from ..selection import parse_indices
from ..workers import exit_on_sigterm, stop_if_sigterm
from . import drawing
from .contact_sheet import write_contact_sheet
from .folder import FolderLock, check_inside, remove_stale_parts
from .inputs import Sentence
from .manifest import check_settings, read_previous, write_manifest
from .naming import DEFAULT_LAYOUTS, ImageJob, plan_images, sentence_folder
from .planning import ExportPlan, Selection, plan

Outcome = list[tuple[str, bool, tuple[str, ...]]]  # drawing.render_task's answer, or what it raised


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


def export(
    model,
    sentences: list[Sentence],
    outdir: str | Path,
    *,
    layouts: Iterable[str] = DEFAULT_LAYOUTS,
    fmt: str = "png",
    options: ImageOptions = ImageOptions(),
    layers: Selection = None,
    heads: Selection = None,
    focus: str | None = None,
    truncate: bool = False,
    overwrite: bool = False,
    jobs: int = 1,
    html: bool = False,
    exclude_sinks: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[SentenceRecord], None] | None = None,
) -> ExportReport:
    """Plan and run an export in one call (the library's way; the CLI plans before loading the model).

    A sentence that fails (too long, focus word missing, ...) is recorded and skipped.
    `on_progress(done_images, total_images)` is called once with the final total before any
    drawing, then as images finish. With `html`, each sentence also gets its interactive page
    (NNN-slug/view.html, render/html.py), kept on a rerun unless `overwrite`. With `exclude_sinks`,
    each result leaves its sink tokens out of rankings and auto colour scales (`without_sinks`).

    A write the system refuses (disk full, read-only, ...) stops the whole export: it raises one
    WriteError, other workers stop, no partial file and no folder left empty by this run remain,
    and the same call later resumes where it stopped.
    """
    planned = plan(
        sentences,
        outdir,
        layouts=layouts,
        fmt=fmt,
        options=options,
        layers=layers,
        heads=heads,
        focus=focus,
        truncate=truncate,
        overwrite=overwrite,
        jobs=jobs,
        html=html,
        exclude_sinks=exclude_sinks,
    )
    return run(model, planned, on_progress=on_progress, on_failure=on_failure)


def run(
    model,
    planned: ExportPlan,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[SentenceRecord], None] | None = None,
) -> ExportReport:
    """Export `planned` with `model` (see `export`): lock the folder, check it again as it is now
    (another export may have written it while the model loaded), draw, write the index."""
    state = _Export(model, planned, on_progress, on_failure)
    outdir = planned.outdir
    created = make_folders(outdir)
    lock = FolderLock(outdir)
    finished = False
    try:
        with exit_on_sigterm(), _one_torch_thread():  # a `kill` unwinds like Ctrl-C
            lock.acquire()
            state.check_folder()
            state.draw_all()
            write_manifest(outdir, state.records, model, planned.layouts, planned.fmt, planned.options, state.settings)
            write_contact_sheet(outdir, state.records, model)
        finished = True
    except WriteError as exc:
        raise WriteError(
            f"{exc} (the export stopped there; finished images are kept and the same command resumes)",
            exc.path,
            exc.errno,
        ) from None
    finally:
        lock.release()
        if not finished:
            remove_empty(created)  # no temporary file and no folder this run made stays empty
    return ExportReport(state.records, outdir)


@contextlib.contextmanager
def _one_torch_thread():
    """Sentences are short: one thread runs them faster than several fighting over the cores
    (20x on 2 busy cores), and leaves the other cores to the drawing processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _indices(selection: Selection, count: int, what: str) -> list[int]:
    if selection is None or isinstance(selection, str):
        return parse_indices(selection, count, what)
    return list(selection)


class _Export:
    """One run's state: the plan, the model's layers and heads, a record per sentence."""

    def __init__(self, model, planned: ExportPlan, on_progress, on_failure) -> None:
        config = model.config
        self.model = model
        self.plan = planned
        self.layers = _indices(planned.layers, config.num_layers, "layer")
        self.heads = _indices(planned.heads, config.num_heads, "head")
        count = len(planned.sentences)
        self.records = [SentenceRecord(s, sentence_folder(s, count)) for s in planned.sentences]
        self.settings = planned.settings(model, _weights_dtype(model), self.layers, self.heads)
        self.progress = _Progress(on_progress)
        self.on_failure = on_failure

    def check_folder(self) -> None:
        """Kept images must be what this run would draw: other settings are refused, not mixed
        in; a sentence folder that is a symbolic link is refused, not written through."""
        outdir = self.plan.outdir
        previous = read_previous(outdir, self.plan.overwrite)
        check_settings(outdir, previous, self.settings, {r.folder: r.sentence.text for r in self.records})
        for record in self.records:
            check_inside(outdir, outdir / record.folder)

    def draw_all(self) -> None:
        for record in self.records:
            self.plan_sentence(record)
        self.progress.start(sum(len(r.jobs) for r in self.records if r.error is None))
        if self.plan.jobs <= 1 or len(self.records) <= 1:
            _draw_here(self)
        else:
            _draw_in_workers(self, self.plan.jobs)

    def plan_sentence(self, record: SentenceRecord) -> None:
        """The sentence's images (its focus word decides whether it gets a focus map), or its failure."""
        from ..analysis.focus import find_pronoun, resolve_focus
        from ..pipeline import run_attention

        planned, config = self.plan, self.model.config
        try:
            if not record.sentence.text.strip():
                raise AttnvizError("the sentence is empty")
            # One head of the first layer: the tokens, the truncation and the errors of the full run.
            probe = run_attention(self.model, record.sentence.text, layers=[0], heads=[0], truncate=planned.truncate)
            if "focus" in planned.layouts:
                found = resolve_focus(probe, planned.focus) if planned.focus is not None else find_pronoun(probe)
                record.focus = None if found is None else found.index
            record.jobs = plan_images(
                record.folder,
                planned.layouts,
                self.layers,
                self.heads,
                config.num_layers,
                config.num_heads,
                planned.fmt,
                record.focus,
            )
        except AttnvizError as exc:
            self.fail(record, str(exc))

    def prepare(self, record: SentenceRecord) -> drawing.RenderTask | None:
        """The sentence's attention (and its page with --html), ready to draw; None when it failed."""
        from ..pipeline import run_attention

        planned = self.plan
        if record.error is not None:
            return None
        try:
            result = run_attention(
                self.model, record.sentence.text, layers=self.layers, heads=self.heads, truncate=planned.truncate
            )
            record.result = result.without_sinks() if planned.exclude_sinks else result
            remove_stale_parts(planned.outdir, record.folder)
            if planned.html:
                record.html = drawing.write_page(
                    planned.outdir, record.folder, record.result, planned.focus, planned.overwrite
                )
        except WriteError:
            raise  # the output cannot be written: stop everything
        except AttnvizError as exc:
            self.fail(record, str(exc))
            self.progress.step(len(record.jobs))
            return None
        return drawing.RenderTask(
            record.result,
            tuple(record.jobs),
            str(planned.outdir),
            planned.fmt,
            planned.options,
            planned.overwrite,
            record.focus,
        )

    def finish(self, record: SentenceRecord, outcome: Outcome | BaseException) -> None:
        stop_if_sigterm()  # an outcome that is the signal under another name is no failure (workers.py)
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception) or isinstance(outcome, WriteError):
                raise outcome  # Ctrl-C, or the output cannot be written: stop everything
            message = str(outcome)
            if not isinstance(outcome, (AttnvizError, OSError)):  # a bug: report it, go on with the rest
                message = f"internal error while drawing: {type(outcome).__name__}: {outcome}"
            self.fail(record, message)
            self.progress.step(len(record.jobs))
            return
        record.written = sum(1 for _, written, _ in outcome if written)
        record.notes = [note for _, _, notes in outcome for note in notes]
        record.kept = len(outcome) - record.written
        self.progress.step(len(outcome))

    def fail(self, record: SentenceRecord, message: str) -> None:
        record.error = " ".join(message.split())
        if self.on_failure:
            self.on_failure(record)


def _weights_dtype(model) -> str | None:
    """ "float32", "bfloat16", ...: the precision the attention was computed in (--dtype)."""
    if getattr(model, "engine", "native") != "native":  # engines/transformers_engine.py
        return model.dtype_name
    try:
        return str(next(model.encoder.parameters()).dtype).removeprefix("torch.")
    except (AttributeError, StopIteration):
        return None


def _draw_here(state: _Export) -> None:
    for record in state.records:
        task = state.prepare(record)
        if task is not None:
            try:
                outcome = drawing.render_task(task)
            except Exception as exc:  # noqa: BLE001 - finish() reports it as this sentence's failure
                outcome = exc
            state.finish(record, outcome)


def _draw_in_workers(state: _Export, jobs: int) -> None:
    """Tokenize and run the model here while `jobs` worker processes draw; at most a few sentences
    wait in the queue, so memory stays flat however many sentences there are. The workers die
    with this process, even when it is killed (see workers.py)."""
    from ..workers import bound_pool

    window = jobs * 3
    pending: dict = {}
    with bound_pool(jobs) as pool:
        for record in state.records:
            task = state.prepare(record)
            if task is None:
                continue
            pending[pool.submit(drawing.render_task, task)] = record
            while len(pending) >= window:
                _collect_some(state, pending)
        while pending:
            _collect_some(state, pending)


def _collect_some(state: _Export, pending: dict) -> None:
    done, _ = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        record = pending.pop(future)
        try:
            outcome = future.result()
        except BaseException as exc:  # noqa: BLE001 - handed to finish, which re-raises the unexpected
            outcome = exc
        state.finish(record, outcome)


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
