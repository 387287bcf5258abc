"""Create an export: a versioned, leak-free training set as one zip under workspace/exports/<export_id>.zip.

    export = create_export({"formats": ["coco", "masks"], "split": {"val": 0.1, "test": 0.1, "seed": 0}},
                           user_id=None, progress=None)      # inside an app context; returns the Export row

Steps: pin the selected images and their annotation versions (backend/datasets/snapshot.py); leave out images
flagged out of training (taxonomy flags with excluded_from_training) and list them in the manifest; split the rest
by near-duplicate group (splits.py); render every image on worker threads or, for large exports, forked
processes (render.py) and write the results to
the zip in a fixed order (train, val, test, then by image id), one entry at a time; then the COCO files, the crops
CSV, yolo/data.yaml, README.md and manifest.json (manifest.py). The archive is written to `<id>.zip.part` and
renamed when complete, so a listed zip is never half-written.

Memory stays flat in the number of images: documents are read 200 at a time, at most `WINDOW` images are in flight,
COCO entries, crop rows and file hashes go to temporary files.
"""
from __future__ import annotations

import csv
import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import IO, Callable, Iterator

import orjson
from flask import current_app
from sqlalchemy import select

from backend.db.engine import reads_only
from backend.db.extensions import db
from backend.db.models import Export, ModelVersion, new_uuid, utcnow
from backend.media.storage import BlobStore
from backend.core.taxonomy import excluded_flags, load_taxonomy, taxonomy_path, trainable_styles
from backend.datasets import coco, crops, cvat, yolo
from backend.datasets.archive import ZipOut
from backend.datasets.boxes import BOX_CSV_COLUMNS, class_names
from backend.datasets.manifest import FORMAT, FORMAT_VERSION, manifest_chunks, readme_text
from backend.datasets.options import ExportOptions
from backend.datasets.render import EXCLUDED_SPLIT, ImageTask, Rendered, RenderSettings, render_image
from backend.datasets.snapshot import PinnedImage, iter_documents, pin_images
from backend.datasets.splits import SPLITS, SplitItem, assign_splits

log = logging.getLogger(__name__)

Progress = Callable[..., None]
WINDOW = 16  # images rendered ahead of the writer
MAX_LISTED = 10_000  # excluded / skipped images listed by name in the manifest (all are counted)


def export_workers() -> int:
    """Render threads: INKLABEL_EXPORT_WORKERS, else the number of CPUs (at most 4)."""
    value = os.environ.get("INKLABEL_EXPORT_WORKERS")
    if value:
        return max(1, int(value))
    return max(1, min(4, os.cpu_count() or 1))


def _works_on_pixels(settings: RenderSettings) -> bool:
    return settings.images or bool(settings.formats & {"masks", "crops"})


def render_workers(settings: RenderSettings) -> int:
    """Threads pay only where pixels are worked on (images, masks, crops); the other formats are plain Python, which
    threads cannot overlap (the GIL) and only slow down by handing it back and forth."""
    return export_workers() if _works_on_pixels(settings) else 1


# Large exports that work on pixels render in forked processes. Threads overlap little there: rasterising and
# painting a mask are many small numpy calls that hold the GIL, so two render threads on 2 cores used 40 s of CPU
# where one used 31 s, for the same wall time (10,000 images COCO + masks ~30 s either way); three forked processes
# took 19.6 s (benchmarks/README.md, issue 22). Fork starts a process in milliseconds without re-importing
# anything; the children only run render_image (numpy, Pillow, ISA-L) on the tasks they are sent. Below the
# threshold, a process's start is not worth it. INKLABEL_EXPORT_PROCESSES=0 turns processes off.
PROCESS_MIN_IMAGES = 500
PROCESS_WINDOW = 64  # a round trip to a process costs more than a hand-over to a thread: keep more in flight


def render_processes(settings: RenderSettings, images: int) -> int:
    """How many render processes this export uses; 0 means threads (render_workers)."""
    setting = os.environ.get("INKLABEL_EXPORT_PROCESSES", "").strip()
    if setting == "0" or not _works_on_pixels(settings) or images < PROCESS_MIN_IMAGES:
        return 0
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return 0  # no fork (Windows), or a daemonic process, which may not have children
    if setting:
        return max(1, int(setting))
    return min(4, (os.cpu_count() or 1) + 1)  # one more than the CPUs: the writer in this process is mostly idle


def exports_dir(workspace: str | os.PathLike) -> Path:
    path = Path(workspace) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_file(export: Export, workspace: str | os.PathLike) -> Path | None:
    """The zip of a finished export, or None."""
    if not export.path:
        return None
    path = exports_dir(workspace) / Path(export.path).name
    return path if path.is_file() else None


class _Writer:
    """Receives rendered images in order and writes them; keeps only counters and temporary files."""

    def __init__(self, zipout: ZipOut, opts: ExportOptions, coco_info: dict):
        self.zip = zipout
        self.opts = opts
        self.formats = set(opts.formats)
        self.coco_info = coco_info
        self.coco: dict[str, coco.CocoSplitWriter] = {}
        self.cvat: dict[str, cvat.CvatSplitWriter] = {}
        self.labelstudio: dict[str, IO[bytes]] = {}
        self.box_rows = _temp_text()
        self.box_csv = csv.DictWriter(self.box_rows, fieldnames=BOX_CSV_COLUMNS, lineterminator="\n")
        self.boxes = 0
        self.images_index = _temp_text()
        self.crop_rows = _temp_text()
        self.crop_csv = csv.DictWriter(self.crop_rows, fieldnames=crops.CSV_COLUMNS, lineterminator="\n")
        self.crop_csv.writeheader()
        self.images = Counter()
        self.regions = Counter()
        self.styles: dict[str, Counter] = {}
        self.crops = Counter()
        self.crops_skipped = Counter()
        self.model_versions: set[int] = set()
        self.excluded: list[dict] = []
        self.excluded_count = 0
        self.skipped: list[dict] = []
        self.skipped_count = 0

    def exclude(self, image: PinnedImage, flags: list[str]) -> None:
        self.excluded_count += 1
        if len(self.excluded) < MAX_LISTED:
            self.excluded.append({"image_id": image.id, "sha256": image.sha256, "flags": sorted(flags),
                                  "reason": "flagged out of training: " + ", ".join(sorted(flags))})

    def skip(self, image_id: int, sha: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < MAX_LISTED:
            self.skipped.append({"image_id": image_id, "sha256": sha, "reason": reason})

    def add(self, r: Rendered) -> None:
        if r.error:
            self.skip(r.image_id, r.sha256, r.error)
            return
        for name, data in r.files:
            self.zip.write_bytes(name, data)
        if "coco" in self.formats and r.coco_image is not None:
            self._coco(r.split).add(r.coco_image, r.coco_annotations)
        if r.cvat_element is not None:
            self._cvat(r.split).add(r.cvat_element)
        if r.ls_task is not None:
            out = self._labelstudio(r.split)
            out.write((b",\n" if out.tell() else b"") + orjson.dumps(r.ls_task))
        for row in r.box_rows:
            if not self.boxes:
                self.box_csv.writeheader()
            self.box_csv.writerow(row)
            self.boxes += 1
        for crop in r.crops:
            name = f"crops/{r.split}/{crop.style}/{crop.stem}.jpg"
            if name in self.zip:  # region ids are unique per image only
                name = f"crops/{r.split}/{crop.style}/{crop.stem}-{r.sha256[:12]}.jpg"
            self.zip.write_bytes(name, crop.data)
            self.crop_csv.writerow({"path": name, **crop.row})
            self.crops[r.split] += 1
        self.crops_skipped.update(r.crops_skipped)
        self.images[r.split] += 1
        self.regions[r.split] += r.regions
        self.styles.setdefault(r.split, Counter()).update(r.styles)
        self.model_versions |= r.model_versions
        self.images_index.write(json.dumps({"id": r.image_id, "sha256": r.sha256, "split": r.split,
                                            "version": r.version}) + "\n")

    def _coco(self, split: str) -> coco.CocoSplitWriter:
        if split not in self.coco:
            self.coco[split] = coco.CocoSplitWriter(self.coco_info, coco.categories(self.coco_info["classes"]))
        return self.coco[split]

    def _cvat(self, split: str) -> cvat.CvatSplitWriter:
        if split not in self.cvat:
            self.cvat[split] = cvat.CvatSplitWriter(self.coco_info["styles"], self.coco_info["tag_labels"])
        return self.cvat[split]

    def _labelstudio(self, split: str) -> IO[bytes]:
        if split not in self.labelstudio:
            self.labelstudio[split] = tempfile.TemporaryFile("w+b")
        return self.labelstudio[split]

    def splits(self) -> list[str]:
        return list(SPLITS) + ([EXCLUDED_SPLIT] if self.opts.include_excluded else [])

    def finish(self, head: dict) -> dict:
        if "coco" in self.formats:
            for split in self.splits():
                writer = self._coco(split)
                self.zip.write_chunks(f"coco/{split}.json", writer.chunks())
                writer.close()
        for split in self.splits():
            if "cvat" in self.formats:
                self.zip.write_chunks(f"cvat/{split}.xml", self._cvat(split).chunks())
            if "labelstudio" in self.formats:
                self.zip.write_chunks(f"labelstudio/{split}.json", _json_array(self._labelstudio(split)))
        if "labelstudio" in self.formats:
            from backend.datasets.labelstudio import labeling_config

            self.zip.write_bytes("labelstudio/config.xml", labeling_config(
                self.coco_info["styles"], [t for t in self.coco_info["tag_labels"]
                                           if t not in self.coco_info["styles"]]).encode())
        if "masks" in self.formats and len(self.coco_info["classes"]) > 1:
            legend = {"0": "background", **{str(i + 1): n for i, n in enumerate(self.coco_info["classes"])}}
            self.zip.write_bytes("masks_class/legend.json", json.dumps(legend, indent=1).encode())
        if self.boxes:
            self.box_rows.seek(0)
            self.zip.write_chunks("boxes/labels.csv", (line.encode() for line in self.box_rows))
        if "crops" in self.formats:
            self.crop_rows.seek(0)
            self.zip.write_chunks("crops/labels.csv", (line.encode() for line in self.crop_rows))
        if "yolo" in self.formats:
            self.zip.write_bytes("yolo/data.yaml", yolo.data_yaml(list(SPLITS), self.coco_info["classes"]).encode())
        self.zip.write_bytes("README.md", readme_text(self.opts.formats, self.opts.images,
                                                      self.opts.include_excluded, self.opts.categories).encode())
        head["counts"] = {
            "images": {s: self.images[s] for s in self.splits()},
            "regions": {s: self.regions[s] for s in self.splits()},
            "styles": {s: dict(sorted(self.styles.get(s, Counter()).items())) for s in self.splits()},
            "crops": {s: self.crops[s] for s in SPLITS} if "crops" in self.formats else {},
            "crops_skipped": dict(sorted(self.crops_skipped.items())),
            "boxes": self.boxes,
            "excluded_images": self.excluded_count,
            "skipped_images": self.skipped_count,
            "files": self.zip.count + 1,  # and manifest.json
        }
        head["excluded"] = self.excluded
        head["skipped"] = self.skipped
        head["model_versions"] = _model_versions(self.model_versions)
        self.zip.write_chunks("manifest.json", manifest_chunks(head, self.images_index, self.zip.entries()))
        self.close()
        return head

    def close(self) -> None:
        for writer in [*self.coco.values(), *self.cvat.values()]:
            writer.close()
        for fh in self.labelstudio.values():
            fh.close()
        self.images_index.close()
        self.crop_rows.close()
        self.box_rows.close()


def _temp_text():
    return tempfile.TemporaryFile("w+", encoding="utf-8", newline="")


def _json_array(items: IO[bytes]) -> Iterator[bytes]:
    """A JSON array from comma-separated items in a temporary file."""
    yield b"[\n"
    items.seek(0)
    while chunk := items.read(1024 * 1024):
        yield chunk
    yield b"\n]\n"


def _model_versions(ids: set[int]) -> list[dict]:
    if not ids:
        return []
    with reads_only():
        try:
            rows = db.session.execute(
                select(ModelVersion.id, ModelVersion.kind, ModelVersion.name, ModelVersion.created_at)
                .where(ModelVersion.id.in_(sorted(ids))).order_by(ModelVersion.id)
            ).all()
        finally:
            db.session.commit()
    known = {r[0]: r for r in rows}
    return [
        {"id": i, "kind": known[i][1], "name": known[i][2],
         "created_at": known[i][3].isoformat() if known[i][3] else None} if i in known
        else {"id": i, "kind": None, "name": None, "deleted": True}
        for i in sorted(ids)
    ]


def _taxonomy_info(workspace: str) -> dict:
    taxonomy = load_taxonomy(workspace)
    digest = hashlib.sha256(taxonomy_path(workspace).read_bytes()).hexdigest()
    return {
        "version": taxonomy.get("version"),
        "sha256": digest,
        "styles": [s["key"] for s in taxonomy["styles"]],
        "flags": [f["key"] for f in taxonomy["flags"]],
        "trainable_styles": trainable_styles(taxonomy),
        "excluded_flags": sorted(excluded_flags(taxonomy)),
    }


def _in_order(settings: RenderSettings, items: Iterator, workers: int, processes: int = 0) -> Iterator:
    """Render the ImageTasks among `items` on `processes` forked processes (or `workers` threads); yield results
    and the other items in input order. A bounded number of items is in flight, so memory does not grow with the
    export. Should a render process die, its images are rendered here instead."""
    pending: deque = deque()
    if processes:
        pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_exit_with_parent, initargs=(os.getpid(),))
        window = PROCESS_WINDOW
    else:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inklabel-export") if workers > 1 else None
        window = WINDOW
    try:
        for item in items:
            if isinstance(item, ImageTask):
                item = _submit(pool, item, settings)
            pending.append(item)
            while len(pending) > window:
                yield _resolved(pending.popleft(), settings)
        while pending:
            yield _resolved(pending.popleft(), settings)
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent: int) -> None:
    """In a render process: leave as soon as the exporting process is gone. A killed process (a worker past its
    request limits, SIGKILL) cannot stop its pool, and its render processes would wait for tasks for ever."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="inklabel-export-orphan-watch", daemon=True).start()


def _submit(pool, task: ImageTask, settings: RenderSettings):
    if pool is None:
        return render_image(task, settings)
    try:
        return (pool.submit(render_image, task, settings), task)
    except BrokenProcessPool:
        return _render_here(task, settings)


def _resolved(item, settings: RenderSettings):
    if not isinstance(item, tuple) or not isinstance(item[0], Future):
        return item
    future, task = item
    try:
        return future.result()
    except BrokenProcessPool:
        return _render_here(task, settings)


def _render_here(task: ImageTask, settings: RenderSettings):
    log.warning("export render process died; rendering image %s in the exporting process", task.image_id)
    return render_image(task, settings)


def create_export(options: dict | ExportOptions | None = None, user_id: int | None = None,
                  progress: Progress | None = None, export_id: str | None = None) -> Export:
    """Build an export synchronously (inside an app context) and return its Export row (status succeeded).

    The returned row is detached with every attribute loaded (read it freely; `db.session.get(Export, id)` for a
    live one). `options` as in the body of POST /api/v1/exports (ExportOptions); `progress(done, total, message)` is called
    as images are written (JobContext.progress fits; it may raise to cancel). With `export_id` an existing Export
    row (made by the API) is filled in; otherwise a new one is created. On failure the row is marked failed, the
    partial file deleted and the exception re-raised.
    """
    opts = options if isinstance(options, ExportOptions) else ExportOptions.model_validate(options or {})
    config = current_app.config
    workspace = config["WORKSPACE"]
    export = db.session.get(Export, export_id) if export_id else None
    if export is None:
        export = Export(id=export_id or new_uuid(), created_by=user_id)
        db.session.add(export)
    export.status = "running"
    export.options = opts.model_dump(mode="json")
    export.manifest = None
    db.session.commit()
    export_key, created_at, created_by = export.id, export.created_at, export.created_by

    final = exports_dir(workspace) / f"{export_key}.zip"
    part = final.with_name(final.name + ".part")
    zipout = ZipOut(part)
    writer = None
    try:
        head, writer = _build(opts, zipout, config, progress)
        head = {"format": FORMAT, "format_version": FORMAT_VERSION, "export_id": export_key,
                "created_at": (created_at or utcnow()).isoformat(), "created_by": created_by, **head}
        summary = writer.finish(head)
        zipout.close()
        os.replace(part, final)
    except BaseException as err:
        if writer is not None:
            writer.close()
        zipout.abort()
        db.session.rollback()
        row = db.session.get(Export, export_key)
        if row is not None:
            cancelled = type(err).__name__ == "JobCancelled"
            row.status = "cancelled" if cancelled else "failed"
            row.manifest = {"error": "cancelled by request" if cancelled else f"{type(err).__name__}: {err}"[:2000]}
            db.session.commit()
        raise
    export = db.session.get(Export, export_key)
    export.status = "succeeded"
    export.manifest = summary
    export.path = final.name
    export.size_bytes = final.stat().st_size
    db.session.commit()
    # Hand back the row with its attributes loaded but no transaction left open (on SQLite an open read
    # transaction holds the write lock): refreshed, detached, the read ended.
    db.session.refresh(export)
    db.session.expunge(export)
    db.session.rollback()
    return export


def _build(opts: ExportOptions, zipout: ZipOut, config, progress: Progress | None) -> tuple[dict, _Writer]:
    workspace = config["WORKSPACE"]
    taxonomy_info = _taxonomy_info(workspace)
    out_flags = set(taxonomy_info["excluded_flags"])
    pinned = pin_images(opts.filter.status, opts.filter.styles, opts.filter.flags)

    training = [im for im in pinned if not (set(im.flags) & out_flags)]
    flagged = [im for im in pinned if set(im.flags) & out_flags]
    split = assign_splits([SplitItem(im.id, im.sha256, im.phash) for im in training],
                          val=opts.split.val, test=opts.split.test, seed=opts.split.seed,
                          max_distance=opts.split.near_duplicate_distance)
    by_id = {im.id: im for im in pinned}
    order: list[tuple[str, PinnedImage]] = [
        (name, by_id[image_id]) for name in SPLITS
        for image_id in sorted(i for i, s in split.assignment.items() if s == name)
    ]
    if opts.include_excluded:
        order += [(EXCLUDED_SPLIT, im) for im in flagged]

    classes = class_names(opts.categories, taxonomy_info["trainable_styles"])
    coco_info = {"description": "inklabel export", "version": str(FORMAT_VERSION),
                 "styles": taxonomy_info["styles"], "trainable_styles": taxonomy_info["trainable_styles"],
                 "categories": opts.categories, "classes": classes,
                 "tag_labels": taxonomy_info["styles"] + taxonomy_info["flags"]}
    writer = _Writer(zipout, opts, coco_info)
    for im in flagged:
        writer.exclude(im, [f for f in im.flags if f in out_flags])

    store = BlobStore.from_config(config)
    settings = RenderSettings(
        formats=frozenset(opts.formats), images=opts.images, crop_margin=opts.crops.margin,
        crop_mask_background=opts.crops.mask_background, trainable=frozenset(taxonomy_info["trainable_styles"]),
        max_pixels=config.get("MAX_IMAGE_PIXELS"), class_names=tuple(classes),
    )
    split_of = {im.id: name for name, im in order}
    reads_files = opts.images or "crops" in settings.formats  # only these open the originals
    images = [im for _, im in order]
    total = len(images)
    if progress:
        progress(0, total, f"exporting {total} images")

    def tasks():
        for im, document in iter_documents(images):
            name = split_of[im.id]
            if document is None:
                yield ("skip", im, "deleted during the export")
                continue
            flags = [f for f in document["tags"]["flags"] if f in out_flags]
            if flags and name != EXCLUDED_SPLIT:  # flagged in the pinned version after all
                yield ("exclude", im, flags)
                continue
            yield ImageTask(image_id=im.id, sha256=im.sha256, width=im.width, height=im.height, status=im.status,
                            version=im.version, original_filename=im.original_filename, split=name,
                            document=document,
                            original_path=str(store.original_path(im.sha256, im.format)) if reads_files else "")

    done = 0
    processes = render_processes(settings, total)
    for item in _in_order(settings, tasks(), render_workers(settings), processes):
        if isinstance(item, Rendered):
            writer.add(item)
        elif item[0] == "skip":
            writer.skip(item[1].id, item[1].sha256, item[2])
        else:
            writer.exclude(item[1], item[2])
        done += 1
        if progress:
            progress(done, total, "writing images")
    head = {
        "options": opts.model_dump(mode="json"),
        "filter": opts.filter.model_dump(mode="json", exclude={k for k in ("styles", "flags")
                                                                 if not getattr(opts.filter, k)}),
        "split": {
            "seed": opts.split.seed, "val": opts.split.val, "test": opts.split.test,
            "near_duplicate_distance": opts.split.near_duplicate_distance,
            "method": "near-duplicate groups (pHash Hamming distance) assigned by sha256(seed:group key)",
            "groups": split.groups,
            "missing_phash": split.missing_phash,
        },
        "taxonomy": taxonomy_info,
    }
    return head, writer
