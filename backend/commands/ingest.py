"""CLI commands: import (images from a folder, or annotated datasets through backend.datasets.importers)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from backend.db.extensions import db
from backend.commands.core import prepare_workspace
from backend.commands.progress import Progress

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp"}
DATASET_FORMATS = ("coco", "labelme", "yolo", "yolo-seg", "cvat", "labelstudio")


def find_image_files(root: Path) -> list[Path]:
    """JPEG/PNG/WebP files (by extension; the content is checked on import) under root, recursively, sorted.

    Hidden files and folders (.git, macOS ._* resource forks) are left out; symlinked folders are not followed.
    """
    if root.is_file():
        return [root]
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(folder) / name)
    return found


def import_images(root: Path, source: str, progress: bool | None = None) -> dict:
    """Ingest every image file under root. Returns counts and the rejected files with their reasons."""
    from backend.core.ingest import ingest_bytes
    from backend.media.imaging import ImageRejected

    limit = current_app.config["MAX_UPLOAD_BYTES"]
    files = find_image_files(root)
    stats = {"files": len(files), "imported": 0, "duplicates": 0, "rejected": []}
    bar = Progress("import", "img", progress)
    for done, path in enumerate(files, 1):
        bar(done - 1, len(files))
        shown = str(path.relative_to(root)) if path != root else path.name
        try:
            size = path.stat().st_size
            if size > limit:
                raise ImageRejected("file_too_large", f"The file is {size:,} bytes; the limit is {limit:,} bytes.", 413)
            data = path.read_bytes()
            result = ingest_bytes(data, path.name, source=source)
        except ImageRejected as err:
            db.session.rollback()
            stats["rejected"].append((shown, err.code, err.message))
            bar.write(f"rejected {shown}: {err.message} [{err.code}]")
            continue
        except OSError as err:
            stats["rejected"].append((shown, "unreadable", str(err)))
            bar.write(f"rejected {shown}: cannot read the file: {err.strerror or err} [unreadable]")
            continue
        stats["duplicates" if result.duplicate else "imported"] += 1
    bar(len(files), len(files))
    bar.close()
    return stats


def _import_dataset(path: Path, fmt: str, source: str, progress: bool | None, status: str | None = None) -> None:
    """Hand a labelled dataset to backend.datasets.importers (images through ingest, labels through the same
    validation as the editor) and print its report."""
    try:
        from backend.datasets.importers import ArchiveRefused, import_path
    except ImportError as err:
        raise click.ClickException(
            f"--format {fmt} needs the dataset importers (backend.datasets.importers), which cannot be loaded "
            f"in this build: {err}. Plain images import with --format images."
        ) from None
    bar = Progress(f"import {fmt}", "img", progress)
    try:
        report = import_path(path, fmt, source=source, progress=bar, status=status)
    except ArchiveRefused as err:  # refused before extraction: zip slip, absolute names, links, bombs
        raise click.ClickException(f"refused: {err} [{err.code}]") from None
    except (ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    finally:
        bar.close()
    for item in report.skipped:
        click.echo(f"skipped {item['item']}: {item['reason']}", err=True)
    if report.skipped_count > len(report.skipped):
        click.echo(f"... and {report.skipped_count - len(report.skipped)} more skipped", err=True)
    click.echo(f"{fmt} import: {report}")
    if report.images_added + report.images_existing == 0:
        raise click.exceptions.Exit(1)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path, resolve_path=True))
@click.option("--format", "fmt", type=click.Choice(("images",) + DATASET_FORMATS), default="images",
              show_default=True,
              help="images: plain image files. coco, labelme, yolo, yolo-seg, cvat (CVAT for images 1.1 XML), "
                   "labelstudio (Label Studio JSON): an annotated dataset (images and their regions), read by "
                   "backend.datasets.importers.")
@click.option("--source", default="import", show_default=True,
              help="recorded on every new image (filter the list with ?source=); 1-32 of a-z 0-9 _ - .")
@click.option("--status", type=click.Choice(("submitted", "accepted")), default=None,
              help="for a labelled dataset: `submitted` (the default) puts its labels in the review queue; "
                   "`accepted` trusts them as reviewed ground truth (they are exported and trained on at once)")
@click.option("--progress/--no-progress", default=None,
              help="show the progress bar (default: only when stderr is a terminal)")
@with_appcontext
def import_command(path: Path, fmt: str, source: str, status: str | None, progress: bool | None):
    """Import images from PATH (a folder, searched recursively, or one file).

    \b
    With --format images (the default) every JPEG, PNG and WebP file under PATH
    is checked on its content and stored in the workspace under its sha256:
      - files with the same bytes as a stored image are skipped as duplicates;
      - every file that is refused is printed (on stderr) with the reason
        (not an image, truncated, too many pixels, too large, ...);
      - a summary line ends the run (on stdout).
    Other files (labels, text) are ignored. The exit status is 0 when at least
    one file was imported or already present, 1 when no file could be used.

    Limits come from the settings: INKLABEL_MAX_UPLOAD_BYTES, INKLABEL_MAX_IMAGE_PIXELS.
    """
    from backend.core.ingest import check_source

    prepare_workspace()
    try:
        check_source(source)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--source") from None
    if fmt != "images":
        _import_dataset(path, fmt, source, progress, status)
        return
    if status is not None:
        raise click.BadParameter("plain images have no labels to review; --status is for a labelled dataset "
                                 "(--format coco, labelme, yolo, yolo-seg, cvat or labelstudio)", param_hint="--status")
    started = time.perf_counter()
    stats = import_images(path, source, progress)
    if stats["files"] == 0:
        raise click.ClickException(f"no JPEG, PNG or WebP files under {path}")
    rejected = len(stats["rejected"])
    click.echo(
        f"imported {stats['imported']} new image(s), skipped {stats['duplicates']} duplicate(s), "
        f"rejected {rejected} of {stats['files']} file(s) in {time.perf_counter() - started:.1f} s"
    )
    if stats["imported"] + stats["duplicates"] == 0:
        raise click.exceptions.Exit(1)


COMMANDS = [import_command]
