"""Region geometry: GeoJSON polygons with holes in image pixel coordinates.

Coordinates are pixels of the EXIF-transposed image, x to the right, y down; the pixel in column i and row j covers
the square [i, i+1) x [j, j+1) and its centre is (i + 0.5, j + 0.5). A region is a GeoJSON ``Polygon`` (outer ring
first, holes after it) or ``MultiPolygon``. Everything here is plain Python (shapely 2, OpenCV, numpy), no Flask:
the API, exports, ML pre-fill, assist tools and importers share it.

    validate_geometry(geojson, width, height)     untrusted GeoJSON -> normalised GeoJSON, or GeometryError
    to_shape(geojson) / to_geojson(shape)           GeoJSON <-> shapely
    area_bbox(geojson)                              (area, [x0, y0, x1, y1])
    mask_to_polygons(mask)                          binary mask -> list of Polygon GeoJSON (OpenCV contours)
    union_geometry / difference_geometry            brush and eraser strokes applied to a region
Rasterising (geometry -> mask) is in backend/core/geometry_raster.py.

Validation policy (`validate_geometry`):
- finite real numbers only: booleans, strings, NaN, Infinity, None and nested junk are refused, and so are
  coordinates further than MAX_COORDINATE (1,000,000) px from the origin;
- every ring needs at least 3 distinct points; open rings are closed;
- parts outside the image rectangle [0, width] x [0, height] are clipped away;
- invalid polygons (self-intersections such as a bow-tie, holes crossing the outer ring, overlapping parts) are
  REPAIRED, not refused: every ring is made valid with ``shapely.make_valid`` (polygonal parts kept), then holes are
  subtracted from their outer ring and the parts unioned (see `_repair`); a polygon that is empty after clipping or
  repair (zero area) is refused;
- more than ``max_vertices`` positions (before or after repair) are refused, and so is a polygon whose edges
  cross more than geometry_bounds.MAX_REPAIR_CROSSINGS times (counted before make_valid, whose cost grows with
  the crossings); brush strokes and overlays are bounded there too (backend/core/geometry_bounds.py).
A geometry that is already valid and inside the image comes back with exactly the coordinates it was given (only
an open ring gets its closing point); ring orientation is not changed.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import cv2
import numpy as np
import shapely
import shapely.errors
from shapely.geometry import GeometryCollection, MultiPolygon, Polygon, box

from backend.core.geometry_bounds import (
    MAX_REPAIR_CROSSINGS,
    MAX_STROKE_POINTS,
    TooComplex,
    check_crossings,
    check_overlay,
    stroke_path_shape,
)

__all__ = [
    "GeometryError",
    "DEFAULT_MAX_VERTICES",
    "validate_geometry",
    "to_shape",
    "to_geojson",
    "area_bbox",
    "count_vertices",
    "mask_to_polygons",
    "union_geometry",
    "difference_geometry",
    "stroke_shape",
]

DEFAULT_MAX_VERTICES = 10_000
# Coordinates further than this from the origin are refused rather than clipped: far beyond any image, and large
# enough to overflow the geometry engine's arithmetic.
MAX_COORDINATE = 1_000_000
GEOMETRY_TYPES = ("Polygon", "MultiPolygon")


class GeometryError(ValueError):
    """A geometry that cannot be used; ``str(err)`` is a reason a person can act on."""


# --- validation ---------------------------------------------------------------------------------------------------


def _number(value: Any, where: str) -> int | float:
    # bool is a subclass of int: refuse it explicitly.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GeometryError(f"{where} must be a number, not {type(value).__name__}")
    try:
        ok = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        ok = False
    if not ok:
        raise GeometryError(f"{where} must be a finite number")
    if not -MAX_COORDINATE <= value <= MAX_COORDINATE:
        raise GeometryError(f"{where} is {value:.6g}, further than {MAX_COORDINATE:,} px from the image")
    return value


def _ring(raw: Any, where: str) -> list[list[int | float]]:
    if not isinstance(raw, list):
        raise GeometryError(f"{where} must be a list of [x, y] positions")
    ring: list[list[int | float]] = []
    for k, pos in enumerate(raw):
        # Fast path for the common case; anything unusual gets the precise message below.
        if type(pos) is list and len(pos) == 2:
            x, y = pos
            tx, ty = type(x), type(y)
            if (tx is float or tx is int) and (ty is float or ty is int) and \
                    -MAX_COORDINATE <= x <= MAX_COORDINATE and -MAX_COORDINATE <= y <= MAX_COORDINATE:
                ring.append(pos)
                continue
        if not isinstance(pos, list) or len(pos) != 2:
            raise GeometryError(f"{where}[{k}] must be an [x, y] position")
        ring.append([_number(pos[0], f"{where}[{k}][0]"), _number(pos[1], f"{where}[{k}][1]")])
    if ring and ring[0] != ring[-1]:
        ring.append(list(ring[0]))
    distinct = {(float(x), float(y)) for x, y in ring}
    if len(distinct) < 3:
        raise GeometryError(f"{where} needs at least 3 distinct points (has {len(distinct)})")
    return ring


def _polygon_rings(raw: Any, where: str) -> list[list[list[int | float]]]:
    if not isinstance(raw, list) or not raw:
        raise GeometryError(f"{where} must be a non-empty list of rings (outer ring first, then holes)")
    return [_ring(r, f"{where}[{i}]") for i, r in enumerate(raw)]


def _parse(geojson: Any) -> tuple[str, list[list[list[list[int | float]]]]]:
    """Structural check; returns (type, polygons) with polygons = [[outer, hole, ...], ...]."""
    if not isinstance(geojson, dict):
        raise GeometryError("geometry must be a GeoJSON object with 'type' and 'coordinates'")
    kind = geojson.get("type")
    if kind not in GEOMETRY_TYPES:
        raise GeometryError(f"geometry type must be Polygon or MultiPolygon, not {kind!r}"[:200])
    coords = geojson.get("coordinates")
    if kind == "Polygon":
        return kind, [_polygon_rings(coords, "coordinates")]
    if not isinstance(coords, list) or not coords:
        raise GeometryError("coordinates of a MultiPolygon must be a non-empty list of polygons")
    return kind, [_polygon_rings(p, f"coordinates[{i}]") for i, p in enumerate(coords)]


def count_vertices(geojson: dict) -> int:
    """Number of positions (closing points included) of a Polygon/MultiPolygon GeoJSON."""
    coords = geojson["coordinates"]
    polygons = [coords] if geojson["type"] == "Polygon" else coords
    return sum(len(ring) for poly in polygons for ring in poly)


def _polygonal(geom) -> Polygon | MultiPolygon | None:
    """Only the polygonal parts of any shapely geometry (lines and points from a repair are dropped)."""
    if geom is None or geom.is_empty:
        return None
    if isinstance(geom, (Polygon, MultiPolygon)):
        return geom
    if isinstance(geom, GeometryCollection) or hasattr(geom, "geoms"):
        parts: list[Polygon] = []
        for part in geom.geoms:
            sub = _polygonal(part)
            if sub is not None:
                parts.extend(sub.geoms if isinstance(sub, MultiPolygon) else [sub])
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else MultiPolygon(parts)
    return None


def _repair(polygons: list) -> Polygon | MultiPolygon | None:
    """Repair by structure: outer rings bound area, holes take it away, parts are merged.

    Each ring is made valid on its own (``shapely.make_valid``: a bow-tie becomes its two triangles), each polygon
    is its outer area minus its holes (a hole outside the outer ring removes nothing and adds nothing), and
    overlapping parts of a MultiPolygon are unioned. Lines and points left by collapsed rings are dropped.
    """
    parts = []
    for poly in polygons:
        area = _polygonal(shapely.make_valid(Polygon(poly[0])))
        if area is None:
            continue
        holes = [h for h in (_polygonal(shapely.make_valid(Polygon(r))) for r in poly[1:]) if h is not None]
        if holes:
            area = _polygonal(area.difference(shapely.union_all(holes)))
        if area is not None:
            parts.append(area)
    if not parts:
        return None
    return _polygonal(parts[0] if len(parts) == 1 else shapely.union_all(parts))


def _to_output(kind: str, polygons: list) -> dict:
    if len(polygons) == 1:
        return {"type": "Polygon", "coordinates": polygons[0]}
    return {"type": "MultiPolygon", "coordinates": polygons}


def validate_geometry(geojson: Any, width: float, height: float, max_vertices: int = DEFAULT_MAX_VERTICES) -> dict:
    """Check, clip and repair an untrusted region geometry; return normalised GeoJSON or raise GeometryError.

    The result is a Polygon (one part) or MultiPolygon with closed rings, outer ring first and holes after it,
    inside [0, width] x [0, height] and valid by shapely's rules. See the module docstring for the policy.
    """
    if not (width > 0 and height > 0):
        raise GeometryError("the image has no size")
    kind, polygons = _parse(geojson)
    vertices = sum(len(ring) for poly in polygons for ring in poly)
    if vertices > max_vertices:
        raise GeometryError(f"too many vertices: {vertices} (the limit is {max_vertices} per region)")

    try:
        parts = [Polygon(poly[0], poly[1:]) for poly in polygons]
        shape = parts[0] if len(parts) == 1 else MultiPolygon(parts)
        minx, miny, maxx, maxy = shape.bounds
        inside = minx >= 0 and miny >= 0 and maxx <= width and maxy <= height
        if inside and shape.is_valid and shape.area > 0:
            # Already fine: keep the caller's numbers as they are (exact round trip).
            return _to_output(kind, polygons)

        if shape.is_valid:
            repaired = shape
        else:  # make_valid's cost grows with the crossings: count them first, within a fixed budget
            check_crossings([ring for poly in polygons for ring in poly], MAX_REPAIR_CROSSINGS, "the polygon")
            repaired = _repair(polygons)
        if repaired is not None and not inside:
            repaired = _polygonal(repaired.intersection(box(0, 0, width, height)))
    except shapely.errors.GEOSException as err:  # numerically hopeless input
        raise GeometryError(f"the polygon cannot be repaired ({str(err)[:100]})") from None
    except TooComplex as err:
        raise GeometryError(str(err)) from None
    if repaired is None or repaired.is_empty or repaired.area <= 0:
        reason = "is empty after clipping to the image" if shape.is_valid else "is empty after repair (no area left)"
        raise GeometryError(f"the polygon {reason}")
    result = to_geojson(repaired)
    vertices = count_vertices(result)
    if vertices > max_vertices:
        raise GeometryError(f"too many vertices after repair: {vertices} (the limit is {max_vertices} per region)")
    return result


# --- conversions --------------------------------------------------------------------------------------------------


def to_shape(geojson: dict) -> Polygon | MultiPolygon:
    """A shapely Polygon/MultiPolygon from GeoJSON (no validation: use validate_geometry on untrusted input)."""
    kind, coords = geojson["type"], geojson["coordinates"]
    if kind == "Polygon":
        return Polygon(coords[0], coords[1:])
    if kind == "MultiPolygon":
        return MultiPolygon([Polygon(p[0], p[1:]) for p in coords])
    raise GeometryError(f"geometry type must be Polygon or MultiPolygon, not {kind!r}")


def _ring_coords(ring) -> list[list[float]]:
    return np.asarray(ring.coords, dtype=float).tolist()


def _polygon_coords(poly: Polygon) -> list[list[list[float]]]:
    return [_ring_coords(poly.exterior)] + [_ring_coords(r) for r in poly.interiors]


def to_geojson(shape) -> dict:
    """GeoJSON (lists, closed rings, outer first) from a shapely geometry; non-polygonal parts are dropped.

    Raises GeometryError when nothing polygonal is left.
    """
    shape = _polygonal(shape)
    if shape is None:
        raise GeometryError("the geometry is empty")
    if isinstance(shape, Polygon):
        return {"type": "Polygon", "coordinates": _polygon_coords(shape)}
    polys = [p for p in shape.geoms if not p.is_empty]
    if len(polys) == 1:
        return {"type": "Polygon", "coordinates": _polygon_coords(polys[0])}
    return {"type": "MultiPolygon", "coordinates": [_polygon_coords(p) for p in polys]}


def _polygons_of(geojson: dict) -> list[list[Sequence[Sequence[float]]]]:
    coords = geojson["coordinates"]
    return [coords] if geojson["type"] == "Polygon" else list(coords)


def _ring_area(ring: Sequence[Sequence[float]]) -> float:
    """Shoelace area of a closed ring (absolute value); plain Python for small rings, numpy for large ones."""
    if len(ring) > 256:
        pts = np.asarray(ring, dtype=np.float64)
        x, y = pts[:, 0], pts[:, 1]
        return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    total = 0.0
    px, py = ring[-1]
    for x, y in ring:
        total += px * y - x * py
        px, py = x, y
    return 0.5 * abs(total)


def area_bbox(geojson: dict) -> tuple[float, list[float]]:
    """Area in square pixels (holes subtracted) and bounding box [x0, y0, x1, y1] of a valid geometry."""
    area = 0.0
    x0 = y0 = math.inf
    x1 = y1 = -math.inf
    for poly in _polygons_of(geojson):
        for k, ring in enumerate(poly):
            a = _ring_area(ring)
            if k == 0:
                area += a
                xs = [p[0] for p in ring]
                ys = [p[1] for p in ring]
                x0, y0 = min(x0, min(xs)), min(y0, min(ys))
                x1, y1 = max(x1, max(xs)), max(y1, max(ys))
            else:
                area -= a
    if x0 == math.inf:
        return 0.0, [0.0, 0.0, 0.0, 0.0]
    return max(area, 0.0), [float(x0), float(y0), float(x1), float(y1)]


# --- mask -> polygons ---------------------------------------------------------------------------------------------


def mask_to_polygons(mask: np.ndarray, simplify_tolerance: float = 1.0, min_area: float = 16.0) -> list[dict]:
    """Polygons (GeoJSON, one per connected part, with holes) tracing the non-zero pixels of a 2-D mask.

    OpenCV's contours with a two-level hierarchy (RETR_CCOMP) give outer borders and their holes; they run through
    the centres of the border pixels, so each polygon is grown by half a pixel (holes shrink by as much) to lie on
    the pixel edges, then simplified with ``simplify_tolerance`` pixels (Douglas-Peucker, topology kept; halved
    where that would change more than 1.5 % of a part's area, so thin strokes survive; 0 keeps every contour
    vertex). Parts smaller than ``min_area`` square pixels are dropped. Rasterising the result gives the mask back
    (IoU >= 0.98 on shapes larger than a few pixels; ~1.0 with simplify_tolerance=0).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise GeometryError("mask must be a 2-D array")
    height, width = mask.shape
    binary = np.ascontiguousarray((mask > 0).astype(np.uint8))
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    frame = box(0, 0, width, height)
    out: list[dict] = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole; handled with its parent
            continue
        outer = contour[:, 0, :].astype(np.float64) + 0.5
        holes = []
        child = hierarchy[i][2]
        while child != -1:
            holes.append(contours[child][:, 0, :].astype(np.float64) + 0.5)
            child = hierarchy[child][0]
        shape = _centre_line_shape(outer, holes)
        shape = shape.buffer(0.5, join_style="mitre", mitre_limit=2.0, cap_style="square")
        shape = _simplify(shape, simplify_tolerance)
        shape = _polygonal(shape.intersection(frame))
        if shape is None:
            continue
        for part in getattr(shape, "geoms", [shape]):
            if part.area >= min_area:
                out.append(to_geojson(part))
    return out


# Simplification may move at most this share of a part's area (symmetric difference); thin parts and fine detail
# get a smaller tolerance instead of collapsing.
SIMPLIFY_MAX_CHANGE = 0.015


def _simplify(shape, tolerance: float):
    if tolerance <= 0 or shape.is_empty:
        return shape
    budget = SIMPLIFY_MAX_CHANGE * shape.area
    for tol in (tolerance, tolerance / 2, tolerance / 4):
        simpler = shape.simplify(tol, preserve_topology=True)
        if shape.symmetric_difference(simpler).area <= budget:
            return simpler
    return shape


def _centre_line_shape(outer: np.ndarray, holes: list[np.ndarray]):
    """The border-pixel-centre polygon; thin parts (lines, single pixels) survive as lines or points."""
    if len(outer) == 1:
        return shapely.Point(outer[0])
    if len(outer) == 2:
        return shapely.LineString(outer)
    polygon = Polygon(outer, [h for h in holes if len(h) >= 3])
    if polygon.is_valid and polygon.area > 0:
        return polygon
    # Degenerate (one pixel wide somewhere): keep the repaired area and the outline, so buffering restores width.
    return shapely.union(shapely.make_valid(polygon), shapely.LineString(np.vstack([outer, outer[:1]])))


# --- brush / eraser -----------------------------------------------------------------------------------------------

def stroke_shape(stroke: Any, width: float, height: float, radius: float | None = None,
                 max_vertices: int = DEFAULT_MAX_VERTICES):
    """A brush stroke as a shapely polygon, clipped to the image.

    The stroke is a Polygon/MultiPolygon (validated like a region), or, with a ``radius`` in pixels, a GeoJSON
    LineString (the path of the brush centre) or Point (a dab), buffered by the radius with round ends.
    """
    if isinstance(stroke, dict) and stroke.get("type") in ("LineString", "Point"):
        if radius is None or not (isinstance(radius, (int, float)) and not isinstance(radius, bool)) \
                or not math.isfinite(radius) or radius <= 0:
            raise GeometryError("a LineString or Point stroke needs a brush radius > 0")
        coords = stroke.get("coordinates")
        if stroke["type"] == "Point":
            coords = [coords]
        if not isinstance(coords, list) or not coords or len(coords) > MAX_STROKE_POINTS:
            raise GeometryError(f"a stroke needs 1 to {MAX_STROKE_POINTS} positions")
        points = []
        for k, pos in enumerate(coords):
            if not isinstance(pos, list) or len(pos) != 2:
                raise GeometryError(f"stroke position {k} must be an [x, y] position")
            points.append((_number(pos[0], f"stroke[{k}][0]"), _number(pos[1], f"stroke[{k}][1]")))
        try:
            shape = stroke_path_shape(points, float(radius))
        except TooComplex as err:
            raise GeometryError(str(err)) from None
        shape = _polygonal(shape.intersection(box(0, 0, width, height)))
        if shape is None:
            raise GeometryError("the stroke lies outside the image")
        return shape
    return to_shape(validate_geometry(stroke, width, height, max_vertices))


def _result(shape, width: float, height: float, max_vertices: int) -> dict | None:
    shape = _polygonal(shape)
    if shape is None or shape.area <= 0:
        return None
    return validate_geometry(to_geojson(shape), width, height, max_vertices)


def union_geometry(geojson: dict | None, stroke_geojson: dict, width: float, height: float,
                   max_vertices: int = DEFAULT_MAX_VERTICES, radius: float | None = None) -> dict:
    """The region grown by a brush stroke (see `stroke_shape`); ``geojson`` None starts a new region.

    Both inputs are validated and clipped first; the result is validated like any region.
    """
    stroke = stroke_shape(stroke_geojson, width, height, radius, max_vertices)
    base = None if geojson is None else to_shape(validate_geometry(geojson, width, height, max_vertices))
    if base is not None:
        _check_overlay(base, stroke)
    result = _result(stroke if base is None else base.union(stroke), width, height, max_vertices)
    if result is None:
        raise GeometryError("the stroke left no area")
    return result


def difference_geometry(geojson: dict, stroke_geojson: dict, width: float, height: float,
                        max_vertices: int = DEFAULT_MAX_VERTICES, radius: float | None = None) -> dict | None:
    """The region with an eraser stroke (see `stroke_shape`) cut out; None when nothing is left."""
    if geojson is None:
        raise GeometryError("there is no region to erase from")
    base = to_shape(validate_geometry(geojson, width, height, max_vertices))
    stroke = stroke_shape(stroke_geojson, width, height, radius, max_vertices)
    _check_overlay(base, stroke)
    return _result(base.difference(stroke), width, height, max_vertices)


def _check_overlay(base, stroke) -> None:
    try:
        check_overlay(base, stroke)
    except TooComplex as err:
        raise GeometryError(str(err)) from None
