"""Real photos with human boxes in a workspace: the fixed held-out split, the import of their boxes, and procedural
tattoos composited on their skin (backend/ml/synth_real.py). Used by `manage.py demo --real DIR` and
benchmarks/bench_real.py; needs an app context.

    train, held_out = real_photo_split(folder)                 # by sorted file name: every 4th photo held out
    import_real_photos(folder, train, user_id)                 # YOLO boxes -> box regions, accepted
    populate_composites(RealBackgrounds.from_folder(folder, train), 200, user)
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from flask import current_app

from backend.db.extensions import db
from backend.db.models import User

HELD_OUT_EVERY = 4  # photo i (in sorted file-name order) is held out when i % 4 == 3: 30 of the 120 shared photos
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def labelled_photos(folder: str | Path) -> list[Path]:
    """Photos with a YOLO label file next to them (images/ or the folder itself), sorted by file name."""
    folder = Path(folder)
    photos = [p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.with_suffix(".txt").is_file()]
    return sorted(photos, key=lambda p: p.name)


def real_photo_split(folder: str | Path) -> tuple[list[str], list[str]]:
    """(training names, held-out names): fixed by sorted file name, every HELD_OUT_EVERY-th photo held out."""
    names = [p.name for p in labelled_photos(folder)]
    held = [n for i, n in enumerate(names) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]
    return [n for n in names if n not in set(held)], held


def import_real_photos(folder: str | Path, names: list[str] | None, user_id: int | None,
                       status: str = "accepted", progress=None):
    """Import the named photos of a YOLO-labelled folder (all when `names` is None) through the tool's importer:
    their boxes become box regions, the images get `status`. Returns the ImportReport."""
    from backend.datasets.importers import import_path

    folder = Path(folder)
    wanted = set(names) if names is not None else None
    staging = Path(current_app.config["WORKSPACE"]) / "tmp" / f"real-{uuid.uuid4().hex}"
    (staging / "images").mkdir(parents=True)
    try:
        for photo in labelled_photos(folder):
            if wanted is None or photo.name in wanted:
                shutil.copyfile(photo, staging / "images" / photo.name)
                shutil.copyfile(photo.with_suffix(".txt"), staging / "images" / photo.with_suffix(".txt").name)
        classes = next(folder.rglob("classes.txt"), None)
        if classes is not None:
            shutil.copyfile(classes, staging / "classes.txt")
        return import_path(staging, "yolo", source="import", user_id=user_id, status=status, progress=progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def save_synthetic_truth(image_id: int, sample, user: User, comment: str) -> None:
    """Save a procedural sample's exact masks and styles as the image's annotation, submit and accept it."""
    from backend.core.annotations import save_document, submit_image
    from backend.ml.prefill import image_mask_geometry
    from backend.core.workflow.review import review_image

    regions = []
    for tattoo in sample.tattoos:
        geometry = image_mask_geometry(tattoo.mask, 1.0, simplify_tolerance=0.75, min_area=2.0)
        if geometry is not None:
            regions.append({"geometry": geometry, "style": tattoo.style, "motifs": tattoo.motifs, "source": "human"})
    save_document(image_id, user, 0, regions, {"styles": sample.styles, "flags": []})
    submit_image(image_id)
    review_image(db.session, image_id, user, "accept", comment)
    db.session.commit()


def populate_composites(source, n_images: int, user: User, seed: int = 0, progress=None, **options) -> list[int]:
    """Ingest n procedural tattoos composited on real skin (source "synthetic"), labelled with their exact masks and
    accepted. `options` go to synth_real.generate_on_real. Returns the image ids."""
    from backend.core.ingest import ingest_bytes
    from backend.ml.synth_real import generate_on_real

    ids = []
    for i in range(n_images):
        sample = generate_on_real(seed + i, source, **options)
        result = ingest_bytes(sample.jpeg_bytes(), f"composite-{seed + i:05d}.jpg", source="synthetic",
                              user_id=user.id)
        if not result.duplicate:
            save_synthetic_truth(result.image.id, sample, user, "synthetic ground truth (composite on real skin)")
            ids.append(result.image.id)
        if progress:
            progress(i + 1, n_images, f"{len(ids)} composites")
    return ids


def add_real_photos(folder: str | Path, user: User, n_composites: int, seed: int = 0, progress=None) -> str:
    """`manage.py demo --real DIR`: every boxed photo of DIR imported with its boxes (accepted, so the segmenter
    learns from them) and `n_composites` procedural tattoos composited on their skin. Returns a line for people."""
    from backend.ml.synth_real import RealBackgrounds

    report = import_real_photos(folder, None, user.id, progress=progress)
    composites = populate_composites(RealBackgrounds.from_folder(folder), n_composites, user, seed + 500_000,
                                     progress=progress) if report.images_added or report.images_existing else []
    return (f"{report.images_added} real photo(s) with {report.regions_added} box(es) from {folder}, "
            f"{len(composites)} composites on their skin")
