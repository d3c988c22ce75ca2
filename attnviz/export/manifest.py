"""The export folder's index.json: written at the end of an export, read before the next one.

Before writing into a folder, an export reads what it already holds (`read_previous`). Two things
make a rerun unsafe, and both are refused (one AttnvizError line) unless `--overwrite`:

- a top-level file export would replace (index.json, index.html) that attnviz did not write: the
  user's own homepage or data. attnviz's index.json starts with its format marker, its index.html
  carries the generator meta tag (pages written before that tag have the "attnviz export:" title).
- an index.json made with other settings than this run: the kept images would show the old model
  or colours under an index that names the new ones. The settings are everything that decides
  the images' bytes (`export_settings`); the first one that differs is named with both values.

An index.json written before `settings` were recorded is compared on what it does record (the
model, the image format and options); what it lacks (layers, heads, focus, ...) counts as unchanged.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from pathlib import Path

from ..errors import AttnvizError
from .folder import write_inside

MANIFEST = "index.json"
CONTACT_SHEET = "index.html"
EXPORT_FORMAT = "attnviz-export/1"
GENERATOR = '<meta name="generator" content="attnviz export">'
_OLD_SHEET_TITLE = "<title>attnviz export: "  # pages written before GENERATOR
_HEAD_BYTES = 4096  # both markers sit in a file's first few hundred bytes
_REDO = "use another folder, or --overwrite to redraw everything"

# Setting name -> how the command line calls it, in the order they are compared.
LABELS = {
    "model": "--model",
    "seed": "--seed",
    "tokenizer": "--tokenizer",
    "dtype": "--dtype",
    "format": "--format",
    "preset": "--preset",
    "cmap": "--cmap",
    "annotate": "--annotate",
    "dpi": "--dpi",
    "size": "--size",
    "transparent": "--transparent",
    "scale": "--scale",
    "layers": "--layer",
    "heads": "--head",
    "focus": "--focus",
    "truncate": "--truncate",
    "exclude_sinks": "--exclude-sinks",
}


def image_options_record(options) -> dict:
    """ImageOptions as index.json records them (`image_options`), resolved where two spellings
    draw the same bytes (no --dpi with a preset = the preset's dpi)."""
    return {
        "preset": options.preset,
        "cmap": options.cmap,
        "annotate": options.annotate,
        "dpi": options.style().dpi,
        "size": list(options.size) if options.size else None,
        "transparent": options.transparent,
        "scale": options.scale or "view default",
    }


def model_record(info: dict) -> dict:
    """The model's part of the settings, from `ModelInfo.to_dict()` (also an old index.json's "model")."""
    record = {"model": info.get("source"), "seed": info.get("seed"), "tokenizer": info.get("tokenizer")}
    record.update({f"config.{key}": value for key, value in (info.get("config") or {}).items()})
    return record


def export_settings(
    *,
    fmt: str,
    options,
    focus: str | None,
    truncate: bool,
    exclude_sinks: bool,
    model=None,
    dtype: str | None = None,
    layers: list[int] | None = None,
    heads: list[int] | None = None,
) -> dict:
    """Everything that decides the bytes of an exported image. Without `model` (before it is
    loaded) the model's part and the layer/head selection are left out, and so not compared."""
    settings: dict = {}
    if model is not None:
        settings.update(model_record(model.info.to_dict()))
        settings["dtype"] = dtype
    settings["format"] = fmt
    settings.update(image_options_record(options))
    if model is not None:
        settings["layers"], settings["heads"] = list(layers), list(heads)
    settings.update({"focus": focus, "truncate": truncate, "exclude_sinks": exclude_sinks})
    return settings


def recorded_settings(manifest: dict) -> dict:
    """The settings an index.json records; from an old one (no "settings"), what it does say."""
    if isinstance(manifest.get("settings"), dict):
        return manifest["settings"]
    settings = model_record(manifest["model"]) if isinstance(manifest.get("model"), dict) else {}
    if "image_format" in manifest:
        settings["format"] = manifest["image_format"]
    if isinstance(manifest.get("image_options"), dict):
        settings.update(manifest["image_options"])
    return settings


def read_previous(outdir: Path, overwrite: bool) -> dict | None:
    """The folder's own index.json (None: there is none, or `overwrite` replaces everything).

    AttnvizError when index.json or index.html is there and not attnviz's: export would replace it."""
    if overwrite:
        return None
    manifest = None
    for name in (MANIFEST, CONTACT_SHEET):
        path = outdir / name
        if not os.path.lexists(path):
            continue
        head = _head(path)
        if name == MANIFEST:
            manifest = _own_manifest(path, head)
            mine = manifest is not None
        else:
            mine = head is not None and (GENERATOR.encode() in head or _OLD_SHEET_TITLE.encode() in head)
        if not mine:
            raise AttnvizError(
                f"{path} is there and was not written by attnviz export; "
                "use another folder, or --overwrite to replace it"
            )
    return manifest


def _head(path: Path) -> bytes | None:
    """The first bytes of a regular file; None for anything else (a folder, a pipe: never read)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # a symbolic link is not ours either
            return None
        with open(path, "rb") as handle:
            return handle.read(_HEAD_BYTES)
    except OSError as exc:
        raise AttnvizError(
            f"cannot read {path}: {exc.strerror or exc}; it may not be attnviz's, so "
            "export will not replace it: use another folder, or --overwrite"
        ) from None


def _own_manifest(path: Path, head: bytes | None) -> dict | None:
    # write_manifest puts the marker first, so a user's big JSON file is not parsed to learn it is not ours.
    if head is None or f'"format": "{EXPORT_FORMAT}"'.encode() not in head:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == EXPORT_FORMAT else None


def check_settings(outdir: Path, manifest: dict | None, settings: dict, folders: dict[str, str] | None = None) -> None:
    """Refuse a rerun whose settings differ from the folder's index.json, or that would put another
    sentence (`folders`: folder name -> text) into a sentence folder it lists: two sentences that
    start alike share a name. Settings missing on either side are not compared."""
    if manifest is None:
        return
    before = recorded_settings(manifest)
    for name, now in settings.items():
        if name in before and not _same(before[name], now):
            label = LABELS.get(name) or f"model config {name.removeprefix('config.')}"
            raise AttnvizError(
                f"{outdir} holds an export made with {label} {_show(name, before[name])}, "
                f"this one has {label} {_show(name, now)}: {_REDO}"
            )
    old = {
        e.get("id"): e.get("text")
        for e in manifest.get("sentences") or []
        if isinstance(e, dict) and e.get("status") == "ok"
    }
    for folder, text in (folders or {}).items():
        if folder in old and old[folder] != text:
            raise AttnvizError(
                f"{outdir / folder} holds the images of {_quote(old[folder])}, this export "
                f"puts {_quote(text)} there: {_REDO}"
            )


def _same(before, now) -> bool:
    # JSON turns tuples into lists and may write 8 for 8.0; compare as index.json would hold them.
    return json.loads(json.dumps(before)) == json.loads(json.dumps(now))


def _show(name: str, value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):  # --size in inches (8x4.5), --layer/--head lists (0,1)
        return ("x" if name == "size" else ",").join(_show(name, v) for v in value)
    return str(value)


def _quote(text) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= 60 else text[:59] + "…")


# --- writing ---------------------------------------------------------------------------------------


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


def manifest_entries(outdir: Path, records: list) -> list[dict]:
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


def write_manifest(outdir: Path, records, model, layouts, fmt: str, options, settings: dict | None = None) -> Path:
    """index.json. "format" comes first: read_previous recognises its own manifest by it. `settings`
    (export_settings) are what a rerun into this folder must match."""

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
    write_inside(outdir / MANIFEST, json.dumps(payload, ensure_ascii=False, indent=1) + "\n")
    return outdir / MANIFEST
