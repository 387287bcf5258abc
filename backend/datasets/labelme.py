"""LabelMe JSON (`labelme/{split}/<sha256>.json`), written for LabelMe's own loader and read back by the importer.

Each file follows LabelMe 5's format: `version`, `flags`, `shapes`, `imagePath` (relative to the JSON file:
`../../images/{split}/<sha256>.jpg`), `imageData` (null: the image is beside it), `imageHeight`, `imageWidth`.

- a region is one `polygon` shape per part, all parts of a region sharing its `group_id` (1-based region number,
  LabelMe's way to group shapes into one instance);
- `label` is the region's style key, or `tattoo` when it has none; motifs are the shape's `flags` (`{"rose": true}`);
  `region_id` and `source` are kept as extra shape keys (LabelMe keeps unknown keys);
- image-level styles and flags are the file's `flags` (`{"japanese": true, "bad_example": true}`);
- **holes**: LabelMe has no holes, so a polygon with holes is one bridged ring (see backend/datasets/yolo.py): the
  outline, a zero-width cut to each hole, the hole walked the other way. LabelMe's own `shape_to_mask` (Pillow's
  polygon fill) leaves the holes empty, and the importer turns the ring back into a polygon with holes.
"""
from __future__ import annotations

from typing import Any

from .yolo import geometry_rings

LABELME_VERSION = "5.5.0"
DEFAULT_LABEL = "tattoo"


def labelme_document(regions: list[dict], tags: dict, image_path: str, width: int, height: int) -> dict:
    shapes = []
    for number, region in enumerate(regions, start=1):
        for ring in geometry_rings(region["geometry"]):
            shapes.append({
                "label": region.get("style") or DEFAULT_LABEL,
                "points": [[round(x, 3), round(y, 3)] for x, y in ring],
                "group_id": number,
                "description": "",
                "shape_type": "polygon",
                "flags": {motif: True for motif in region.get("motifs") or []},
                "mask": None,
                "region_id": region.get("id"),
                "source": region.get("source", "human"),
            })
    flags = {key: True for key in list(tags.get("styles", [])) + list(tags.get("flags", []))}
    return {
        "version": LABELME_VERSION,
        "flags": flags,
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": height,
        "imageWidth": width,
    }


def is_labelme(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("shapes"), list) and "imagePath" in document


def shape_ring(shape: dict) -> list[list[float]]:
    """The outline of one LabelMe shape as a closed ring in pixels; ValueError for shapes that are not areas."""
    kind = shape.get("shape_type") or "polygon"
    points = shape.get("points")
    if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
        raise ValueError("points must be a list of [x, y]")
    if kind == "polygon":
        if len(points) < 3:
            raise ValueError("a polygon needs at least 3 points")
        ring = [[p[0], p[1]] for p in points]
    elif kind == "rectangle":
        if len(points) != 2:
            raise ValueError("a rectangle needs 2 points")
        (x0, y0), (x1, y1) = points
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
    elif kind == "circle":
        import math

        if len(points) != 2:
            raise ValueError("a circle needs 2 points (centre, rim)")
        (cx, cy), (px, py) = points
        r = math.hypot(px - cx, py - cy)
        ring = [[cx + r * math.cos(2 * math.pi * k / 64), cy + r * math.sin(2 * math.pi * k / 64)] for k in range(64)]
    else:
        raise ValueError(f"shape type {kind!r} has no area (only polygon, rectangle and circle are imported)")
    return ring + [ring[0]]
