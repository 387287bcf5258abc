"""A few validation images of a segmenter with its predicted mask next to the true one (the ML console's overlays).

    validation_samples(model_version, limit=4) -> {"items": [{image_id, width, height, iou, predicted, truth}], ...}

The images are the validation split of the export the model was trained on (its manifest pins each image's
annotation version, so "truth" is the annotation the model learned from, not a later edit). When that export is
gone or the images left the pool, there are no samples: the answer says why instead of failing.
"""
from __future__ import annotations

from typing import Optional

from flask import current_app
from shapely.geometry import shape
from shapely.ops import unary_union
from sqlalchemy import select

from backend.core.errors import Conflict
from backend.db.extensions import db
from backend.db.models import AnnotationRevision, Export, Image, ModelVersion
from backend.jobs.predictions import _device, _load_runner, _store, decode_work_image

WORK_SIDE = 768  # predictions at this long side, geometry scaled back to original pixels


def _truth(image_id: int, version: int) -> list[dict]:
    doc = db.session.scalar(select(AnnotationRevision.document).where(
        AnnotationRevision.image_id == image_id, AnnotationRevision.version == version))
    return [r["geometry"] for r in (doc or {}).get("regions") or [] if r.get("geometry")]


def _iou(predicted: Optional[dict], truth: list[dict]) -> Optional[float]:
    try:
        a = shape(predicted).buffer(0) if predicted else None
        b = unary_union([shape(g).buffer(0) for g in truth]) if truth else None
    except Exception:  # a geometry shapely cannot read: no number rather than a wrong one
        return None
    if a is None and b is None:
        return 1.0
    if a is None or b is None:
        return 0.0
    union = a.union(b).area
    return round(a.intersection(b).area / union, 4) if union else 1.0


def _validation_images(mv: ModelVersion, limit: int) -> tuple[list[tuple[int, int]], Optional[str]]:
    from backend.datasets.compare import ManifestUnreadable, read_manifest
    from backend.datasets.export import export_file

    export = db.session.get(Export, mv.export_id) if mv.export_id else None
    path = export_file(export, current_app.config["WORKSPACE"]) if export is not None else None
    if path is None:
        return [], "the export this model was trained on is no longer in the workspace"
    try:
        manifest = read_manifest(path)
    except ManifestUnreadable as err:
        return [], str(err)
    items = [(int(i["id"]), int(i.get("version") or 0)) for i in manifest.get("images") or []
             if i.get("split") == "val" and "id" in i]
    return items[:limit], None if items else "the export has no validation images"


def validation_samples(mv: ModelVersion, limit: int = 4) -> dict:
    if mv.kind != "segmenter":
        raise Conflict("not_a_segmenter", "Validation overlays exist for segmenters only.")
    pinned, reason = _validation_images(mv, limit)
    runner = _load_runner(mv, _device()) if pinned else None
    store = _store()
    items = []
    for image_id, version in pinned:
        image = db.session.get(Image, image_id)
        if image is None:
            continue
        rgb, scale = decode_work_image(store, image.sha256, image.format, image.width, image.height, WORK_SIDE)
        probs, _ = runner.predict([rgb])
        from backend.ml.prefill import image_mask_geometry

        predicted = image_mask_geometry(probs[0] >= runner.threshold, scale=scale, simplify_tolerance=1.0,
                                        bounds=(image.width, image.height))
        truth = _truth(image_id, version)
        items.append({"image_id": image_id, "version": version, "width": image.width, "height": image.height,
                      "display_url": f"/api/v1/images/{image_id}/file?size=display",
                      "iou": _iou(predicted, truth), "predicted": predicted, "truth": truth})
    db.session.commit()
    return {"model_id": mv.id, "export_id": mv.export_id, "items": items,
            "note": reason if not items else None}
