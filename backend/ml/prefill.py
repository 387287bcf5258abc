"""From a tattoo probability map to pre-fill regions, style suggestions, concentration and uncertainty (pure).

    result = build_prefill(rgb, prob, classifier=cls, settings=PrefillSettings(), scale=orig_side / work_side)

`rgb` and `prob` are at a working resolution (the long side bounded, see PrefillSettings.work_max_side); `scale`
maps working pixels to the original image's pixels, the frame every returned geometry is in. Regions are the
connected groups of predicted ink (parts closer than `group_gap` of the short side belong to one tattoo, so the
strokes of one line drawing stay one region), traced by backend.geometry.mask_to_polygons (OpenCV contours with
hierarchy, holes kept, shapely simplify), specks under `min_region_fraction` of the image dropped.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import area_bbox, mask_to_polygons
from . import uncertainty
from .infer import CROP_MARGIN, ClassifierRunner, crop_box

NOT_TATTOO_BELOW = 0.002  # predicted ink share under which an image is "probably no tattoo"


@dataclass
class PrefillSettings:
    threshold: float = 0.5
    low_concentration: float = 0.25
    work_max_side: int = 1024
    min_region_fraction: float = 0.0002
    group_gap: float = 0.03
    simplify_tolerance: float = 1.0
    not_tattoo_below: float = NOT_TATTOO_BELOW
    crop_margin: float = CROP_MARGIN  # the classifier's crops, as its export made them
    crop_mask_background: bool = False


def work_size(width: int, height: int, max_side: int) -> tuple[int, int, float]:
    """(work width, work height, scale work→original) for an image of width×height."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height, 1.0
    s = max_side / long_side
    return max(1, round(width * s)), max(1, round(height * s)), long_side / max_side


def split_instances(mask: np.ndarray, gap_px: int, min_area: int) -> list[np.ndarray]:
    """Ink grouped into tattoos: components of the mask dilated by gap_px; groups under min_area pixels dropped."""
    binary = mask.astype(np.uint8)
    if gap_px > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * gap_px + 1, 2 * gap_px + 1))
        grown = cv2.dilate(binary, kernel)
    else:
        grown = binary
    n, labels = cv2.connectedComponents(grown, connectivity=8)
    out = []
    for label in range(1, n):
        inst = (labels == label) & mask
        if int(inst.sum()) >= min_area:
            out.append(inst)
    out.sort(key=lambda m: -int(m.sum()))
    return out


def _scale_geometry(geojson: dict, scale: float) -> dict:
    if scale == 1.0:
        return geojson

    def ring(r):
        return [[round(x * scale, 2), round(y * scale, 2)] for x, y in r]

    if geojson["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [ring(r) for r in geojson["coordinates"]]}
    return {"type": "MultiPolygon", "coordinates": [[ring(r) for r in poly] for poly in geojson["coordinates"]]}


def mask_geometry(mask: np.ndarray, scale: float = 1.0, simplify_tolerance: float = 1.0,
                  min_area: float = 16.0) -> dict | None:
    """One region's mask → Polygon / MultiPolygon GeoJSON (holes kept) in original pixels, or None if empty."""
    polygons = mask_to_polygons(mask.astype(np.uint8), simplify_tolerance=simplify_tolerance, min_area=min_area)
    if not polygons:
        return None
    if len(polygons) == 1:
        geometry = polygons[0]
    else:
        geometry = {"type": "MultiPolygon", "coordinates": [p["coordinates"] for p in polygons]}
    return _scale_geometry(geometry, scale)


def build_prefill(rgb: np.ndarray, prob: np.ndarray, classifier: ClassifierRunner | None = None,
                  settings: PrefillSettings | None = None, scale: float = 1.0,
                  segmenter_version: int | None = None, classifier_version: int | None = None) -> dict:
    settings = settings or PrefillSettings()
    h, w = prob.shape
    mask = prob >= settings.threshold
    min_area = max(4, int(settings.min_region_fraction * h * w))
    gap = max(1, int(round(settings.group_gap * min(h, w))))
    instances = split_instances(mask, gap, min_area)

    regions, details, masks, kept = [], [], [], np.zeros_like(mask)
    for inst in instances:
        geometry = mask_geometry(inst, scale, settings.simplify_tolerance, min_area=min(16.0, min_area))
        if geometry is None:
            continue
        kept |= inst
        masks.append(inst)
        area, bbox = area_bbox(geometry)
        region_id = uuid.uuid4().hex
        regions.append({"id": region_id, "geometry": geometry, "style": None, "motifs": [], "source": "model",
                        "model_version": segmenter_version, "confidence": None})
        ys, xs = np.nonzero(inst)
        details.append({"id": region_id, "area": round(area, 1), "bbox": [round(v, 1) for v in bbox],
                        "mask_confidence": round(float(prob[inst].mean()), 4), "style_probs": {},
                        "work_bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]})

    margins = []
    image_style: dict[str, float] = {}
    if classifier is not None and regions:
        crops = [crop_box(rgb, d["work_bbox"], settings.crop_margin, m if settings.crop_mask_background else None)
                 for d, m in zip(details, masks)]
        probs = classifier.predict(crops)
        total_area = sum(d["area"] for d in details) or 1.0
        for region, detail, p in zip(regions, details, probs):
            top = int(np.argmax(p))
            region["style"] = classifier.classes[top]
            region["confidence"] = round(float(p[top]), 4)
            detail["style_probs"] = {c: round(float(v), 4) for c, v in zip(classifier.classes, p)}
            if classifier_version is not None:
                detail["classifier_version"] = classifier_version
            margins.append(uncertainty.classification_margin(p))
            for c, v in zip(classifier.classes, p):
                image_style[c] = image_style.get(c, 0.0) + float(v) * detail["area"] / total_area
    for d in details:
        d.pop("work_bbox", None)

    concentration = float(kept.mean())
    seg_unc = uncertainty.segmentation_uncertainty(prob, settings.threshold)
    return {
        "regions": regions,
        "details": details,
        "concentration": round(concentration, 5),
        "low_concentration": concentration < settings.low_concentration,
        "suggested_flags": ["not_tattoo"] if concentration < settings.not_tattoo_below else [],
        "style_probs": {k: round(v, 4) for k, v in sorted(image_style.items(), key=lambda kv: -kv[1])},
        "uncertainty": uncertainty.combined_score(seg_unc, margins),
    }
