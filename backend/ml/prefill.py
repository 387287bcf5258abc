"""From a tattoo probability map to pre-fill regions, style suggestions, concentration and uncertainty (pure).

    result = build_prefill(rgb, prob, classifier=cls, settings=PrefillSettings(), scale=orig_side / work_side)

in two steps, which the batch pre-fill (backend/jobs/prefill.py) runs apart:

    traced = trace_prefill(prob, settings, scale)                # no model: regions, areas, uncertainty (numpy)
    styles = classify_regions(cls, [(rgb, traced)], settings)    # one classifier call for a batch's regions
    result = finish_prefill(traced, styles[0], cls.classes, settings)

This module does not import torch.

`rgb` and `prob` are at a working resolution (the long side bounded, see PrefillSettings.work_max_side); `scale`
maps working pixels to the original image's pixels, the frame every returned geometry is in. Regions are the
connected groups of predicted ink (parts closer than `group_gap` of the short side belong to one tattoo, so the
strokes of one line drawing stay one region), traced by backend.core.geometry.mask_to_polygons (OpenCV contours with
hierarchy, holes kept, shapely simplify), specks under `min_region_fraction` of the image dropped, and regions
scored (`region_score`) under `min_score` not suggested. Training fits `threshold`, `group_gap` and `min_score` to
the boxes of its export (backend/ml/prefill_calibration.py).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np
import shapely

from backend.core.geometry import (DEFAULT_MAX_VERTICES, GeometryError, _centre_line_shape, _polygonal, area_bbox,
                        mask_to_polygons, to_geojson, validate_geometry)
from backend.ml import uncertainty
from backend.ml.crops import CROP_MARGIN, crop_box
from backend.ml.skin import on_body

if TYPE_CHECKING:
    from backend.ml.infer import ClassifierRunner

NOT_TATTOO_BELOW = 0.002  # predicted ink share under which an image is "probably no tattoo"
UNCERTAINTY_SIDE = 256
FULL_SCORE_SHARE = 0.01  # a region with at least this share of the image's pixels keeps its whole mask confidence


@dataclass
class PrefillSettings:
    threshold: float = 0.5
    low_concentration: float = 0.25
    work_max_side: int = 512  # the pre-fill works at max(this, the model's input size)
    min_region_fraction: float = 0.0002
    group_gap: float = 0.03
    min_score: float = 0.0  # regions scored under this (region_score) are not suggested
    simplify_tolerance: float = 1.0
    not_tattoo_below: float = NOT_TATTOO_BELOW
    crop_margin: float = CROP_MARGIN  # the classifier's crops, as its export made them
    crop_mask_background: bool = False
    # Regions only on the body (backend/ml/skin.py), in photos where at least `body_min_skin` is skin: on the
    # held-out real photos of bench_real.py, with the models of two full runs, this took the share of predicted
    # area inside human boxes from 27.8 / 24.3 % to 43.9 / 38.8 % (limb outlines, clothing borders, background)
    # at a cost of 0.009 IoU on 60 procedural images.
    on_body: bool = True
    body_close: float = 0.08
    body_rim: float = 0.05
    body_min_skin: float = 0.05


def work_size(width: int, height: int, max_side: int) -> tuple[int, int, float]:
    """(work width, work height, scale work→original) for an image of width×height."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height, 1.0
    s = max_side / long_side
    return max(1, round(width * s)), max(1, round(height * s)), long_side / max_side


@dataclass
class Instance:
    """One tattoo's ink: a boolean crop of the mask and where it sits."""

    x0: int
    y0: int
    mask: np.ndarray

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def bbox(self) -> list[int]:
        h, w = self.mask.shape
        return [self.x0, self.y0, self.x0 + w, self.y0 + h]

    def full(self, shape: tuple[int, int]) -> np.ndarray:
        out = np.zeros(shape, bool)
        h, w = self.mask.shape
        out[self.y0:self.y0 + h, self.x0:self.x0 + w] = self.mask
        return out


def split_instances(mask: np.ndarray, gap_px: int, min_area: int) -> list[Instance]:
    """Ink grouped into tattoos: parts closer than gap_px to each other form one group (a distance transform, so
    the cost does not grow with the gap); groups under min_area pixels are dropped. Largest first."""
    mask = mask.astype(bool)
    if gap_px > 0:
        dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)
        grown = (dist <= gap_px).astype(np.uint8)
    else:
        grown = mask.astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=8)
    out = []
    for label in range(1, n):
        x, y, w, h = (int(v) for v in stats[label, :4])
        crop = (labels[y:y + h, x:x + w] == label) & mask[y:y + h, x:x + w]
        if int(crop.sum()) < min_area:
            continue
        rows, cols = np.any(crop, axis=1), np.any(crop, axis=0)
        r0, r1 = int(np.argmax(rows)), len(rows) - int(np.argmax(rows[::-1]))
        c0, c1 = int(np.argmax(cols)), len(cols) - int(np.argmax(cols[::-1]))
        out.append(Instance(x + c0, y + r0, crop[r0:r1, c0:c1]))
    out.sort(key=lambda inst: -inst.area)
    return out


def region_score(mask_confidence: float, ink: int, pixels: int) -> float:
    """How likely a region is one of the tattoos an annotator would box: its mean probability, lowered for regions
    under FULL_SCORE_SHARE of the image (by the square root of the shortfall). On real photos most false regions
    are small (a necklace link, a fold of clothing, a letter of a sign); ranking by this score rather than by the
    confidence alone raised box AP50 on bench_real's training photos (issue 21)."""
    share = ink / pixels if pixels else 0.0
    return round(mask_confidence * min(1.0, share / FULL_SCORE_SHARE) ** 0.5, 4)


def instance_confidence(prob: np.ndarray, inst: Instance) -> tuple[float, float]:
    """(mask confidence: the instance's mean probability, region_score)."""
    x0, y0, x1, y1 = inst.bbox
    confidence = round(float(prob[y0:y1, x0:x1][inst.mask].mean()), 4)
    return confidence, region_score(confidence, inst.area, prob.size)


def _transform_geometry(geojson: dict, scale: float, dx: float = 0.0, dy: float = 0.0,
                        bounds: tuple[float, float] | None = None) -> dict:
    """(x + dx, y + dy) · scale, clamped to [0, width] × [0, height] when `bounds` is given."""
    if scale == 1.0 and dx == 0 and dy == 0 and bounds is None:
        return geojson
    bw, bh = bounds if bounds is not None else (float("inf"), float("inf"))

    def ring(r):
        return [[round(min(max((x + dx) * scale, 0.0), bw), 2), round(min(max((y + dy) * scale, 0.0), bh), 2)]
                for x, y in r]

    if geojson["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [ring(r) for r in geojson["coordinates"]]}
    return {"type": "MultiPolygon", "coordinates": [[ring(r) for r in poly] for poly in geojson["coordinates"]]}


THICK_SHARE = 0.9  # a median that keeps less of a region's ink than this share: the region is line work
THIN_TOLERANCE = 0.35  # px: the simplification of line work (a wider one collapses one-pixel strokes)


def _smoothed(mask: np.ndarray) -> tuple[np.ndarray, bool]:
    """A 3×3 median of the uint8 mask (takes off one-pixel spurs and bridges), unless the region is line work: a
    median erases every one-pixel stroke, so when it would take away more than a tenth of the ink the strokes
    are that thin (fine line) and the mask is kept as it is; the flag says so."""
    if min(mask.shape) < 3:
        return mask, False
    smoothed = (cv2.medianBlur(mask * 255, 3) > 0).astype(np.uint8)
    if np.count_nonzero(smoothed) >= THICK_SHARE * np.count_nonzero(mask):
        return smoothed, False
    return mask, True


def _speckless_padded(mask: np.ndarray, min_area: float, offset: tuple[int, int],
                      frame: tuple[int, int] | None, fast: bool) -> tuple[np.ndarray, int, int, bool, bool]:
    """The mask as uint8 (`_smoothed` first when `fast`), specks under min_area dropped, padded by a pixel on the
    sides that do not touch the frame's edge; also (left, top) padding, whether some side touches the edge and
    whether the region is line work."""
    mask = mask.astype(np.uint8)
    thin = False
    if fast:
        mask, thin = _smoothed(mask)
    if min_area > 1:  # specks are dropped before tracing: cheaper than tracing and discarding them
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        if n > 1 and (stats[1:, cv2.CC_STAT_AREA] < min_area).any():
            keep = np.zeros(n, np.uint8)
            keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
            mask = keep[labels]
    ox, oy = offset
    fw, fh = frame if frame is not None else (ox + mask.shape[1], oy + mask.shape[0])
    left, top = int(ox > 0), int(oy > 0)
    right, bottom = int(ox + mask.shape[1] < fw), int(oy + mask.shape[0] < fh)
    if left or top or right or bottom:
        mask = np.pad(mask, ((top, bottom), (left, right)))
    return mask, left, top, not (left and top and right and bottom), thin


def _traced(mask: np.ndarray, simplify_tolerance: float, min_area: float, offset: tuple[int, int],
            frame: tuple[int, int] | None):
    """The fast path's shape of a region (in the mask's padded pixels) and the (dx, dy) that places it."""
    mask, left, top, clip, thin = _speckless_padded(mask, min_area, offset, frame, fast=True)
    tolerance = min(simplify_tolerance, THIN_TOLERANCE) if thin else simplify_tolerance
    return _fast_shape(mask, tolerance, min_area, clip), (offset[0] - left, offset[1] - top)


_MITRE = {"join_style": "mitre", "mitre_limit": 2.0, "cap_style": "square"}


def _fast_shape(mask: np.ndarray, tolerance: float, min_area: float, clip: bool):
    """mask_to_polygons' tracing (contours through the border pixels' centres grown by half a pixel onto the pixel
    edges, holes kept) done on all parts at once in shapely's vectorised calls, then one topology-preserving
    simplify of the whole region; a shapely Polygon / MultiPolygon in the mask's pixels, or None."""
    contours, hierarchy = cv2.findContours(np.ascontiguousarray(mask), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return None
    hierarchy = hierarchy[0]
    shapes = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole; handled with its parent
            continue
        holes = []
        child = hierarchy[i][2]
        while child != -1:
            holes.append(contours[child][:, 0, :] + 0.5)
            child = hierarchy[child][0]
        shapes.append(_centre_line_shape(contour[:, 0, :] + 0.5, holes))
    parts = shapely.get_parts(shapely.buffer(np.array(shapes, dtype=object), 0.5, **_MITRE))
    parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) >= min_area)]  # 3: Polygon
    if not len(parts):
        return None
    shape = parts[0] if len(parts) == 1 else shapely.MultiPolygon(list(parts))
    if tolerance > 0:
        simpler = shapely.simplify(shape, tolerance, preserve_topology=True)
        if not simpler.is_empty:
            shape = simpler
    if clip:  # it touches the frame's edge, where the half-pixel growth went past it
        h, w = mask.shape
        shape = _polygonal(shape.intersection(shapely.box(0, 0, w, h)))
    return shape


def _place(shape, scale: float, dx: float, dy: float, bounds: tuple[float, float] | None):
    """(x + dx, y + dy) · scale, clamped to `bounds` and rounded to 0.01 px, on a shapely geometry (vectorised)."""
    bw, bh = bounds if bounds is not None else (np.inf, np.inf)

    def move(xy):
        out = (xy + (dx, dy)) * scale
        np.clip(out[:, 0], 0.0, bw, out=out[:, 0])
        np.clip(out[:, 1], 0.0, bh, out=out[:, 1])
        return np.round(out, 2)

    return shapely.transform(shape, move)


def _fast_region(mask: np.ndarray, scale: float, simplify_tolerance: float, min_area: float,
                 offset: tuple[int, int], frame: tuple[int, int] | None,
                 bounds: tuple[float, float]) -> tuple[dict, float, list[float]] | None:
    """The pre-fill's tracing of one region: (valid GeoJSON inside `bounds`, area, bbox) or None. Valid shapes
    (nearly all) skip validate_geometry's parse-and-rebuild; the rest go through its repair."""
    shape, (dx, dy) = _traced(mask, simplify_tolerance, min_area, offset, frame)
    if shape is None:
        return None
    shape = _place(shape, scale, dx, dy, bounds)
    if shape.is_valid and shape.area > 0 and shapely.get_num_coordinates(shape) <= DEFAULT_MAX_VERTICES:
        minx, miny, maxx, maxy = shape.bounds
        return to_geojson(shape), float(shape.area), [minx, miny, maxx, maxy]
    try:
        geometry = validate_geometry(to_geojson(shape), bounds[0], bounds[1])
    except GeometryError:
        return None
    area, bbox = area_bbox(geometry)
    return geometry, area, bbox


def mask_geometry(mask: np.ndarray, scale: float = 1.0, simplify_tolerance: float = 1.0,
                  min_area: float = 16.0, offset: tuple[int, int] = (0, 0),
                  frame: tuple[int, int] | None = None, bounds: tuple[float, float] | None = None,
                  fast: bool = False) -> dict | None:
    """A region's mask → Polygon / MultiPolygon GeoJSON (holes kept), or None if nothing is left.

    `mask` may be a crop at `offset` (x, y) of a `frame` (width, height) image: it is padded by a pixel where it
    does not touch the frame's edge, so the polygons are not cut at the crop. Coordinates are then multiplied by
    `scale` (working → original pixels) and clamped to `bounds` (original width, height).

    `fast` (the pre-fill): a 3×3 median first takes off one-pixel spurs and bridges of a model's mask (which cost
    the tracer the most and barely change its IoU with the truth) — except on line work, which it would erase
    (`_smoothed`); the parts are traced in shapely's vectorised
    calls and the region is simplified once, topology kept, instead of part by part with a fidelity check (the
    result keeps IoU ≈ 0.97 with the mask instead of ≈ 0.99). Hand-made masks take the exact path."""
    if fast:
        frame = frame if frame is not None else (offset[0] + mask.shape[1], offset[1] + mask.shape[0])
        shape, (dx, dy) = _traced(mask, simplify_tolerance, min_area, offset, frame)
        return None if shape is None else to_geojson(_place(shape, scale, dx, dy, bounds))
    mask, left, top, _, _ = _speckless_padded(mask, min_area, offset, frame, fast=False)
    ox, oy = offset
    polygons = mask_to_polygons(mask, simplify_tolerance=simplify_tolerance, min_area=min_area)
    if not polygons:
        return None
    if len(polygons) == 1:
        geometry = polygons[0]
    else:
        geometry = {"type": "MultiPolygon", "coordinates": [p["coordinates"] for p in polygons]}
    return _transform_geometry(geometry, scale, ox - left, oy - top, bounds)


def image_mask_geometry(mask: np.ndarray, scale: float = 1.0, simplify_tolerance: float = 1.0,
                        min_area: float = 16.0, bounds: tuple[float, float] | None = None) -> dict | None:
    """`mask_geometry` of a whole-image mask, traced only within the bounding box of its ink (faster)."""
    mask = np.asarray(mask).astype(bool)
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    r0, r1 = int(np.argmax(rows)), len(rows) - int(np.argmax(rows[::-1]))
    c0, c1 = int(np.argmax(cols)), len(cols) - int(np.argmax(cols[::-1]))
    return mask_geometry(mask[r0:r1, c0:c1], scale, simplify_tolerance, min_area, (c0, r0),
                         (mask.shape[1], mask.shape[0]), bounds)


@dataclass
class TracedRegion:
    """One region as the tracing found it: its geometry in original pixels, and where its crop for the classifier is
    cut (working pixels; the instance's mask within that box only when the crops mask the background)."""

    geometry: dict
    area: float
    bbox: list[float]
    mask_confidence: float
    score: float  # region_score: for ranking regions as detections
    ink: int  # predicted pixels (working resolution)
    instance_bbox: list[int]
    instance_mask: np.ndarray | None


@dataclass
class TracedImage:
    """What the tracing of one probability map gives (small and picklable)."""

    regions: list[TracedRegion]
    shape: tuple[int, int]  # the working resolution (height, width)
    concentration: float
    segmentation: dict  # uncertainty.segmentation_uncertainty


def body_gate(rgb: np.ndarray | None, settings: PrefillSettings) -> np.ndarray | None:
    """Where regions may be (the body's interior, see PrefillSettings.on_body), or None: anywhere."""
    if rgb is None or not settings.on_body:
        return None
    body = on_body(rgb, settings.body_close, settings.body_rim)
    return body.interior if body.skin_share >= settings.body_min_skin else None


def _min_area(settings: PrefillSettings, h: int, w: int) -> int:
    return max(4, int(settings.min_region_fraction * h * w))


def prefill_instances(prob: np.ndarray, settings: PrefillSettings, allowed: np.ndarray | None) -> list[Instance]:
    """The pre-fill's tattoos before tracing: `prob` cut at the threshold, kept to `allowed` (body_gate; None:
    anywhere) and grouped by `group_gap` (split_instances)."""
    h, w = prob.shape
    mask = prob >= settings.threshold
    if allowed is not None:
        mask &= allowed
    gap = max(1, int(round(settings.group_gap * min(h, w))))
    return split_instances(mask, gap, _min_area(settings, h, w))


def trace_prefill(prob: np.ndarray, settings: PrefillSettings | None = None, scale: float = 1.0,
                  image_size: tuple[int, int] | None = None, rgb: np.ndarray | None = None) -> TracedImage:
    """The model-free step: threshold, group into tattoos, trace each (see the module docstring), concentration and
    segmentation uncertainty. `prob` is float in [0, 1]; `image_size` (original width, height; default: the
    working size × scale) clips the geometry; `rgb` (the working image) keeps the regions on the body
    (`body_gate`). The uncertainty is the model's own, over the whole map."""
    settings = settings or PrefillSettings()
    h, w = prob.shape
    if image_size is None:
        image_size = (round(w * scale), round(h * scale))
    min_area = _min_area(settings, h, w)
    regions = []
    for inst in prefill_instances(prob, settings, body_gate(rgb, settings)):
        confidence, score = instance_confidence(prob, inst)
        if score < settings.min_score:
            continue
        traced = _fast_region(inst.mask, scale, settings.simplify_tolerance, min(16.0, min_area),
                              (inst.x0, inst.y0), (w, h), image_size)
        if traced is None:
            continue
        geometry, area, bbox = traced
        regions.append(TracedRegion(geometry, area, bbox, confidence, score, inst.area, inst.bbox,
                                    inst.mask if settings.crop_mask_background else None))
    concentration = sum(region.ink for region in regions) / float(h * w)
    # the uncertainty parts are means over the map: a 256-pixel view of it gives the same numbers 4-16× cheaper
    step = max(1, int(np.ceil(max(h, w) / UNCERTAINTY_SIDE)))
    segmentation = uncertainty.segmentation_uncertainty(prob[::step, ::step], settings.threshold)
    return TracedImage(regions, (h, w), concentration, segmentation)


def _region_crop(rgb: np.ndarray, traced: TracedImage, region: TracedRegion, settings: PrefillSettings) -> np.ndarray:
    mask = None
    if region.instance_mask is not None:
        x0, y0 = region.instance_bbox[:2]
        mask = Instance(x0, y0, region.instance_mask).full(traced.shape)
    return crop_box(rgb, region.instance_bbox, settings.crop_margin, mask)


def classify_regions(classifier: ClassifierRunner | None, images: Sequence[tuple[np.ndarray, TracedImage]],
                     settings: PrefillSettings) -> list[np.ndarray | None]:
    """The style probabilities (regions × classes) of every traced region of each (working image, traced) pair, in
    one classifier call for them all (its predict batches the crops); None per image without a classifier."""
    if classifier is None:
        return [None] * len(images)
    crops = [_region_crop(rgb, traced, region, settings) for rgb, traced in images for region in traced.regions]
    probs = classifier.predict(crops) if crops else np.zeros((0, len(classifier.classes)), np.float32)
    ends = np.cumsum([len(traced.regions) for _, traced in images])
    return [probs[end - len(traced.regions):end] for end, (_, traced) in zip(ends, images)]


def finish_prefill(traced: TracedImage, style_probs: np.ndarray | None, classes: Sequence[str] | None,
                   settings: PrefillSettings | None = None, segmenter_version: int | None = None,
                   classifier_version: int | None = None) -> dict:
    """The pre-fill result of one traced image and its regions' style probabilities (None: no classifier)."""
    settings = settings or PrefillSettings()
    regions, details = [], []
    for traced_region in traced.regions:
        region_id = uuid.uuid4().hex
        regions.append({"id": region_id, "geometry": traced_region.geometry, "style": None, "motifs": [],
                        "source": "model", "model_version": segmenter_version, "confidence": None})
        details.append({"id": region_id, "area": round(traced_region.area, 1),
                        "bbox": [round(v, 1) for v in traced_region.bbox],
                        "mask_confidence": traced_region.mask_confidence, "score": traced_region.score,
                        "style_probs": {}})

    margins = []
    image_style: dict[str, float] = {}
    if style_probs is not None and regions:
        total_area = sum(d["area"] for d in details) or 1.0
        for region, detail, p in zip(regions, details, style_probs):
            top = int(np.argmax(p))
            region["style"] = classes[top]
            region["confidence"] = round(float(p[top]), 4)
            detail["style_probs"] = {c: round(float(v), 4) for c, v in zip(classes, p)}
            if classifier_version is not None:
                detail["classifier_version"] = classifier_version
            margins.append(uncertainty.classification_margin(p))
            for c, v in zip(classes, p):
                image_style[c] = image_style.get(c, 0.0) + float(v) * detail["area"] / total_area
    concentration = traced.concentration
    return {
        "regions": regions,
        "details": details,
        "concentration": round(concentration, 5),
        "low_concentration": concentration < settings.low_concentration,
        "suggested_flags": ["not_tattoo"] if concentration < settings.not_tattoo_below else [],
        "style_probs": {k: round(v, 4) for k, v in sorted(image_style.items(), key=lambda kv: -kv[1])},
        "uncertainty": uncertainty.combined_score(traced.segmentation, margins),
    }


def build_prefill(rgb: np.ndarray, prob: np.ndarray, classifier: ClassifierRunner | None = None,
                  settings: PrefillSettings | None = None, scale: float = 1.0,
                  segmenter_version: int | None = None, classifier_version: int | None = None,
                  image_size: tuple[int, int] | None = None) -> dict:
    """One image's pre-fill: trace_prefill, classify_regions and finish_prefill in a row. `image_size` (original
    width, height; default: the working size × scale) is where geometry is clipped."""
    settings = settings or PrefillSettings()
    traced = trace_prefill(prob, settings, scale, image_size, rgb)
    (style_probs,) = classify_regions(classifier, [(rgb, traced)], settings)
    return finish_prefill(traced, style_probs, classifier.classes if classifier is not None else None, settings,
                          segmenter_version, classifier_version)
