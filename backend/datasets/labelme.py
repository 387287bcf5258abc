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
  polygon fill) leaves the holes empty, and the importer turns the ring back into a polygon with holes.- a box region is a `rectangle` shape.

Reading follows LabelMe's own converters (`shapes_to_label`, used by its labelme2voc / labelme2coco examples):

- shapes with the same (`label`, `group_id`) are one instance; a shape without `group_id` is its own;
- shapes are painted in order, so a later shape covers the earlier instances it overlaps, and `__ignore__` shapes
  cover what is under them but are no region (LabelMe's converters leave those pixels out of every instance);
  files written by inklabel (every shape has a `region_id`) keep their regions whole, overlaps included;
- every shape type LabelMe writes is an area as `shape_to_mask` fills it: polygon, rectangle (a box region),
  circle, oriented_rectangle, line and linestrip (10 px strokes), point (a 5 px disc) and mask (its PNG patch).
  The only difference left is Pillow's pixel convention (pixel centres on integers, outline pixels drawn): masks
  agree at IoU >= 0.95 for areas, less for 10 px strokes and points (tests/api/test_format_interop.py).
"""
from __future__ import annotations

from typing import Any

from backend.datasets.boxes import box_corners, is_box
from backend.datasets.yolo import geometry_rings

LABELME_VERSION = "5.5.0"
DEFAULT_LABEL = "tattoo"


def labelme_document(regions: list[dict], tags: dict, image_path: str, width: int, height: int) -> dict:
    shapes = []
    for number, region in enumerate(regions, start=1):
        if is_box(region):
            x0, y0, x1, y1 = box_corners(region["geometry"])
            shapes.append(_shape(region, number, "rectangle", [[x0, y0], [x1, y1]]))
            continue
        for ring in geometry_rings(region["geometry"]):
            shapes.append(_shape(region, number, "polygon", ring))
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


def _shape(region: dict, number: int, shape_type: str, points) -> dict:
    return {
        "label": region.get("style") or DEFAULT_LABEL,
        "points": [[round(x, 3), round(y, 3)] for x, y in points],
        "group_id": number,
        "description": "",
        "shape_type": shape_type,
        "flags": {motif: True for motif in region.get("motifs") or []},
        "mask": None,
        "region_id": region.get("id"),
        "source": region.get("source", "human"),
    }


def is_labelme(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("shapes"), list) and "imagePath" in document


IGNORE_LABEL = "__ignore__"  # LabelMe's converters leave these pixels out of every class and instance
LINE_WIDTH = 10  # what LabelMe's shape_to_mask draws lines and line strips with
POINT_RADIUS = 5  # and points


def _points(shape: dict, count: int | None = None, at_least: int = 1) -> list[tuple[float, float]]:
    import math

    points = shape.get("points")
    if not isinstance(points, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in points):
        raise ValueError("points must be a list of [x, y]")
    try:
        out = [(float(x), float(y)) for x, y in points]
    except (TypeError, ValueError):
        raise ValueError("points must be numbers") from None
    if not all(math.isfinite(v) for p in out for v in p):
        raise ValueError("points must be finite numbers")
    kind = shape.get("shape_type") or "polygon"
    if count is not None and len(out) != count:
        raise ValueError(f"a {kind} needs {count} points, not {len(out)}")
    if len(out) < at_least:
        raise ValueError(f"a {kind} needs at least {at_least} points")
    return out


def _mask_shape(shape: dict, points: list[tuple[float, float]]):
    import base64
    import binascii
    import io

    import numpy as np
    from PIL import Image

    from backend.datasets.coco import mask_to_geometry

    data = shape.get("mask")
    if not isinstance(data, str) or len(data) > 64 * 1024**2:
        raise ValueError("a mask shape needs its mask as a base64 PNG")
    try:
        with Image.open(io.BytesIO(base64.b64decode(data, validate=True))) as img:
            if img.width * img.height > 100_000_000:
                raise ValueError("the mask is too large")
            patch = np.asarray(img.convert("L")) > 0
    except (binascii.Error, OSError, Image.DecompressionBombError) as err:
        raise ValueError(f"the mask is not a readable PNG: {err}"[:200]) from None
    (x1, y1), _ = points
    left, top = int(round(x1)), int(round(y1))
    geometry = mask_to_geometry(patch.astype(np.uint8))
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    moved = [[[[x + left, y + top] for x, y in ring] for ring in poly] for poly in polygons]
    return {"type": "MultiPolygon", "coordinates": moved}


def shape_area(shape: dict) -> tuple[str, object]:
    """(kind, shapely geometry) of one LabelMe shape, as LabelMe's own `shape_to_mask` fills it.

    polygon / oriented_rectangle: the polygon; rectangle: a box region; circle: centre + rim point; line and
    linestrip: strokes LINE_WIDTH pixels wide (rounded joints), point: a disc of POINT_RADIUS; mask: the shape's
    PNG patch placed at its first point. ValueError for malformed shapes and unknown types.
    """
    from shapely.geometry import LineString, Point, Polygon, shape as to_shapely

    kind = shape.get("shape_type") or "polygon"
    if kind == "polygon":
        return "mask", Polygon(_points(shape, at_least=3))
    if kind == "oriented_rectangle":
        return "mask", Polygon(_points(shape, count=4))
    if kind == "rectangle":
        (x0, y0), (x1, y1) = _points(shape, count=2)
        return "box", Polygon([(min(x0, x1), min(y0, y1)), (max(x0, x1), min(y0, y1)),
                               (max(x0, x1), max(y0, y1)), (min(x0, x1), max(y0, y1))])
    if kind == "circle":
        (cx, cy), (px, py) = _points(shape, count=2)
        return "mask", Point(cx, cy).buffer(Point(cx, cy).distance(Point(px, py)), quad_segs=16)
    if kind == "line":
        return "mask", LineString(_points(shape, count=2)).buffer(LINE_WIDTH / 2, cap_style="flat")
    if kind == "linestrip":
        return "mask", LineString(_points(shape, at_least=2)).buffer(LINE_WIDTH / 2, cap_style="flat",
                                                                     join_style="round")
    if kind == "point":
        return "mask", Point(_points(shape, count=1)[0]).buffer(POINT_RADIUS, quad_segs=4)
    if kind == "mask":
        return "mask", to_shapely(_mask_shape(shape, _points(shape, count=2)))
    raise ValueError(f"unknown shape type {kind!r}")


def to_geojson(geometry) -> dict:
    """A shapely Polygon / MultiPolygon as GeoJSON with lists (what the geometry validation expects)."""
    from shapely.geometry import mapping

    def rings(poly):
        return [[list(p) for p in ring] for ring in poly]

    data = mapping(geometry)
    if data["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": rings(data["coordinates"])}
    return {"type": "MultiPolygon", "coordinates": [rings(poly) for poly in data["coordinates"]]}


def _polygonal(geometry):
    """A valid, purely polygonal version of a shapely geometry (a bridged ring's cuts are dropped)."""
    from shapely.geometry import MultiPolygon, Polygon
    from shapely.validation import make_valid

    if geometry.is_valid and isinstance(geometry, (Polygon, MultiPolygon)):
        return geometry
    fixed = make_valid(geometry)
    if isinstance(fixed, (Polygon, MultiPolygon)):
        return fixed
    parts = [g for g in getattr(fixed, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    from shapely.ops import unary_union

    return unary_union(parts) if parts else Polygon()


def instances(shapes: list) -> tuple[list[dict], list[str]]:
    """LabelMe's instances: shapes with the same (label, group_id) form one, a shape without group_id is its own;
    `__ignore__` shapes are no instance. Returns ([{"label", "group_id", "kind", "geometry", "shapes"}], problems)
    in the order LabelMe numbers them (first appearance)."""
    from shapely.ops import unary_union

    groups: dict = {}
    problems = []
    drawn = []  # (key, area) in drawing order, __ignore__ included: later shapes cover earlier instances
    for index, shape in enumerate(shapes if isinstance(shapes, list) else []):
        if not isinstance(shape, dict):
            problems.append(f"shape {index}: not an object")
            continue
        label = shape.get("label")
        try:
            kind, area = shape_area(shape)
        except (ValueError, TypeError) as err:
            problems.append(f"shape {index} ({shape.get('shape_type') or 'polygon'}): {err}")
            continue
        group_id = shape.get("group_id")
        key = (label, group_id) if group_id is not None and not isinstance(group_id, bool) else ("shape", index)
        drawn.append((key, _polygonal(area)))
        if label == IGNORE_LABEL:
            continue
        group = groups.setdefault(key, {"label": label, "group_id": group_id, "parts": [], "kinds": set(),
                                        "shapes": []})
        group["parts"].append(len(drawn) - 1)
        group["kinds"].add(kind)
        group["shapes"].append(shape)
    # inklabel's own files (every shape has a region_id) hold regions that may overlap on purpose: kept whole.
    painter = not all(isinstance(s, dict) and "region_id" in s for s in shapes)
    out = []
    for key, group in groups.items():
        parts = []
        for position in group["parts"]:  # what LabelMe's painter leaves of this shape: later shapes of others win
            covering = [area for other, area in drawn[position + 1:] if other != key] if painter else []
            area = drawn[position][1]
            parts.append(area.difference(unary_union(covering)) if covering else area)
        merged = _polygonal(parts[0] if len(parts) == 1 else unary_union(parts))
        if merged.is_empty:
            problems.append(f"shape group {key[1]!r}: no area")
            continue
        kind = "box" if group["kinds"] == {"box"} and len(parts) == 1 and merged.equals(drawn[group["parts"][0]][1]) \
            else "mask"
        out.append({"label": group["label"], "group_id": group["group_id"], "kind": kind,
                    "geometry": to_geojson(merged), "shapes": group["shapes"], "key": key})
    return out, problems
