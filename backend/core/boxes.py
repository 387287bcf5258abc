"""Box regions: the weak label, an axis-aligned rectangle around a tattoo (plain Python, no Flask).

A region with ``"kind": "box"`` keeps the GeoJSON shape of every region, a ``Polygon`` whose single ring is the
rectangle in image pixels, always in this order:

    [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]      x0 < x1, y0 < y1

so code that only reads polygons (rasterising, bounding boxes, the editor's hit tests) keeps working, and code that
cares reads the corners back with `box_corners`. Mask regions (``"kind": "mask"``, the default) are the tattoo's
outline; boxes say only "a tattoo is somewhere in here". What learns from boxes: backend/ml (box-supervised
training); what leaves them out: mask IoU in the workflow statistics and the tattoo concentration of pre-fill.

    validate_box(geojson, width, height)   untrusted GeoJSON -> the canonical rectangle, or GeometryError
    box_geometry(x0, y0, x1, y1)           the canonical rectangle
    box_corners(geojson)                   (x0, y0, x1, y1) of a box region's geometry
    region_kind(region)                    "box" or "mask" of a region dict (absent = "mask")
    with_kinds(regions)                    regions of a stored document, each with its "kind" (for output)
    is_box(region) / mask_regions(regions)
"""
from __future__ import annotations

from typing import Any, Iterable

from backend.core.geometry import GeometryError, _ring

REGION_KINDS = ("mask", "box")


def box_geometry(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def box_corners(geojson: dict) -> tuple[float, float, float, float]:
    ring = geojson["coordinates"][0]
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    return min(xs), min(ys), max(xs), max(ys)


def validate_box(geojson: Any, width: float, height: float) -> dict:
    """The canonical rectangle of an untrusted box geometry, clipped to [0, width] x [0, height].

    Accepted: a Polygon with one ring of 4 corners (closed or open, any start corner and direction) whose edges are
    all horizontal or vertical. Refused (GeometryError): anything else — holes, MultiPolygons, slanted or
    self-crossing rings, a rectangle of zero width or height, or one wholly outside the image. Like mask geometry,
    a box reaching past the image edge is clipped to it rather than refused; numbers inside the image are kept as
    given (ints stay ints).
    """
    if not (width > 0 and height > 0):
        raise GeometryError("the image has no size")
    if not isinstance(geojson, dict) or geojson.get("type") != "Polygon":
        raise GeometryError("a box must be a GeoJSON Polygon (one rectangular ring)")
    rings = geojson.get("coordinates")
    if not isinstance(rings, list) or len(rings) != 1:
        raise GeometryError("a box must have exactly one ring (no holes)")
    ring = _ring(rings[0], "coordinates[0]")
    if len(ring) != 5:
        raise GeometryError(f"a box ring has 4 corners, not {len(ring) - 1}")
    for (ax, ay), (bx, by) in zip(ring, ring[1:]):
        if ax != bx and ay != by:
            raise GeometryError("a box's edges must be horizontal or vertical (an axis-aligned rectangle)")
    xs = {p[0] for p in ring}
    ys = {p[1] for p in ring}
    if len(xs) != 2 or len(ys) != 2:
        raise GeometryError("a box must have a non-zero width and height")
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        raise GeometryError("the box is outside the image")
    return box_geometry(x0, y0, x1, y1)


def region_kind(region: dict) -> str:
    return region.get("kind") or "mask"


def is_box(region: dict) -> bool:
    return region_kind(region) == "box"


def mask_regions(regions: Iterable[dict]) -> list[dict]:
    """The regions that outline a tattoo (boxes left out)."""
    return [r for r in regions if isinstance(r, dict) and not is_box(r)]


def with_kinds(regions: list) -> list:
    """Stored regions as output documents show them: documents saved before box regions existed have no "kind",
    and all their regions are masks. The stored dicts are not changed."""
    if all("kind" in r for r in regions):
        return regions
    return [r if "kind" in r else {"id": r.get("id"), "kind": "mask", **r} for r in regions]
