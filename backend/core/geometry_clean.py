"""Cleaning what the assists and the brush hand back (issue 19 item 8), plain shapely/OpenCV, no Flask.

- `clean_geometry`: near-duplicate vertices (closer than NEAR_DUPLICATE_PX) removed, then Douglas-Peucker
  simplification at a tolerance the caller sees (topology kept), re-validated; returns the vertex counts before and
  after so the editor can say what it did.
- `bound_wand`: the wand's flood stopped at strong edges (Canny) and capped to the neighbourhood of the click — a
  flood that would cover more than WAND_MAX_SHARE of that neighbourhood is reported instead of handed back.
- `drop_specks`: components too small to be a tattoo relative to the request (a box's area, a wand's neighbourhood)
  removed; when nothing is left the answer is "nothing found", never a 26 px² speck.
"""
from __future__ import annotations

import cv2
import numpy as np
import shapely

from backend.core.geometry import DEFAULT_MAX_VERTICES, GeometryError, count_vertices, to_geojson, to_shape, validate_geometry

NEAR_DUPLICATE_PX = 0.05
ASSIST_TOLERANCE = 1.0  # px, the default simplification of an assist answer (the request may set another)
WAND_RADIUS_SHARE = 0.2  # the click neighbourhood: a square of ±20 % of the image's long side around each point
WAND_MIN_RADIUS = 48
WAND_MAX_SHARE = 0.6  # a flood covering more of its neighbourhood found no edge: report, do not return it
SPECK_SHARE = 0.002  # parts under 0.2 % of the request's area (and under MIN_AREA_PX) are specks
MIN_AREA_PX = 64.0


def clean_geometry(geojson: dict, tolerance: float, width: float, height: float,
                   max_vertices: int = DEFAULT_MAX_VERTICES) -> tuple[dict | None, dict]:
    """(cleaned GeoJSON or None when nothing is left, {"vertices_before", "vertices_after", "tolerance"})."""
    before = count_vertices(geojson)
    shape = shapely.remove_repeated_points(to_shape(geojson), NEAR_DUPLICATE_PX)
    if tolerance > 0:
        shape = shape.simplify(tolerance, preserve_topology=True)
    try:
        result = validate_geometry(to_geojson(shape), width, height, max_vertices) if not shape.is_empty else None
    except GeometryError:
        result = None
    stats = {"vertices_before": before, "vertices_after": count_vertices(result) if result else 0,
             "tolerance": tolerance}
    return result, stats


def neighbourhood(points, shape: tuple[int, int]) -> np.ndarray:
    """The squares around the click points (the area a wand answer is measured against)."""
    h, w = shape
    r = max(WAND_MIN_RADIUS, int(WAND_RADIUS_SHARE * max(h, w)))
    out = np.zeros((h, w), bool)
    for x, y in points:
        x, y = int(x), int(y)
        out[max(0, y - r):min(h, y + r + 1), max(0, x - r):min(w, x + r + 1)] = True
    return out


def bound_wand(mask: np.ndarray, rgb: np.ndarray, points) -> tuple[np.ndarray, str | None]:
    """The wand's mask cut at strong edges and kept to the seeds' components inside their neighbourhood; a note
    when the flood found no edge (the mask is then empty)."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    edges = cv2.dilate(cv2.Canny(cv2.GaussianBlur(gray, (5, 5), 0), 60, 150), np.ones((3, 3), np.uint8)) > 0
    near = neighbourhood(points, mask.shape)
    cut = mask & near & ~edges
    for x, y in points:  # the seed itself may sit on an edge pixel: keep it
        cut[int(y), int(x)] = mask[int(y), int(x)]
    count, labels = cv2.connectedComponents(cut.astype(np.uint8), connectivity=4)
    keep = {labels[int(y), int(x)] for x, y in points} - {0}
    out = np.isin(labels, list(keep)) if keep else np.zeros_like(mask)
    if out.sum() > WAND_MAX_SHARE * near.sum():
        share = 100.0 * mask.sum() / mask.size
        return np.zeros_like(mask), (f"the wand found no edge around that point (it would cover {share:.0f} % of "
                                     "the photo): click on the ink itself, lower the tolerance, or use box assist")
    # close the 1-2 px seams the edge cut leaves inside the ink
    out = cv2.morphologyEx(out.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
    return out & near, None


def drop_specks(mask: np.ndarray, request_area: float) -> np.ndarray:
    """Components under max(MIN_AREA_PX, SPECK_SHARE × the request's area) removed."""
    floor = max(MIN_AREA_PX, SPECK_SHARE * request_area)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= floor
    return keep[labels]


def clean_assist_mask(mask: np.ndarray, rgb: np.ndarray, tool: str, box, points) -> tuple[np.ndarray, str | None]:
    """An assist's mask (working pixels) bounded (wand) and without specks; a note when nothing is left."""
    note = None
    if points:  # wand, click: measured against the neighbourhood of the clicks
        if tool == "wand":
            mask, note = bound_wand(mask, rgb, points)
        request_area = float(neighbourhood(points, mask.shape).sum())
    else:
        x0, y0, x1, y1 = box
        request_area = max(1.0, (x1 - x0) * (y1 - y0))
    return drop_specks(mask, request_area), note
