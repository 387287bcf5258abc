"""Fixed bounds on the work one geometry request may cause, checked before the expensive step.

Repairing a self-crossing polygon (``shapely.make_valid``) and overlaying two shapes cost time that grows with the
number of places where edges cross, not with the number of vertices: a 150-vertex zigzag crosses itself about
5,000 times and took 8 s to repair; a 2,000-point random brush path buffered as one line took 90 s. So:

- `check_crossings` counts crossing edge pairs with an R-tree over the edges, a block of edges at a time, and
  gives up (GeometryError) once the edge pairs whose boxes overlap exceed ``MAX_CANDIDATE_PAIRS`` or the crossings
  exceed the caller's limit. Its own cost is bounded by that budget (at most a block x all edges per step).
- `stroke_path_shape` buffers a brush path in pieces of ``PIECE_POINTS`` points and unions the pieces (cheap where
  a path crosses itself: each piece is small, the union merges overlapping blobs), after refusing paths longer
  than ``MAX_STROKE_RADII`` brush radii (the shape's complexity grows with length / radius).

An honest region or stroke stays far below every bound: a 10,000-vertex outline with one crossing has ~30,000
candidate pairs; a smooth 3,000-point stroke is 300 radii long.
"""
from __future__ import annotations

import numpy as np
import shapely

MAX_CANDIDATE_PAIRS = 1_000_000  # edge pairs with overlapping boxes looked at, all blocks together
MAX_REPAIR_CROSSINGS = 200  # self-crossings a repair may resolve (make_valid: 600 crossings ~10 ms, 2,500 ~1.5 s)
MAX_OVERLAY_CROSSINGS = 5_000  # crossings of a region and a brush stroke (overlay is near-linear in them)
MAX_STROKE_POINTS = 2_000
MAX_STROKE_RADII = 10_000  # path length / brush radius
PIECE_POINTS = 64
_BLOCK = 256


class TooComplex(ValueError):
    """Raised with a message a person can act on; geometry.py turns it into a GeometryError."""


def _edges(rings: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edge geometries, ring number of each edge, position of each edge in its ring) of closed rings."""
    starts, ends, ring_of, pos = [], [], [], []
    for k, ring in enumerate(rings):
        pts = np.asarray(ring, dtype=float)[:, :2]
        if len(pts) < 2:
            continue
        starts.append(pts[:-1])
        ends.append(pts[1:])
        ring_of.append(np.full(len(pts) - 1, k))
        pos.append(np.arange(len(pts) - 1))
    if not starts:
        return np.empty(0, dtype=object), np.empty(0, dtype=int), np.empty(0, dtype=int)
    lines = shapely.linestrings(np.stack([np.concatenate(starts), np.concatenate(ends)], axis=1))
    return lines, np.concatenate(ring_of), np.concatenate(pos)


def check_crossings(rings: list, limit: int, what: str) -> int:
    """The number of crossing edge pairs among closed `rings` (adjacent edges of one ring excluded), or TooComplex
    when it exceeds `limit` or counting it would look at more than MAX_CANDIDATE_PAIRS pairs."""
    lines, ring_of, pos = _edges(rings)
    n = len(lines)
    if n < 2:
        return 0
    ring_len = np.bincount(ring_of)[ring_of]  # edges in each edge's ring
    tree = shapely.STRtree(lines)
    candidates = crossings = 0
    for start in range(0, n, _BLOCK):
        left, right = tree.query(lines[start:start + _BLOCK])
        left = left + start
        candidates += len(left)
        if candidates > MAX_CANDIDATE_PAIRS:
            raise TooComplex(f"{what} is too complex to process: its edges overlap in more than "
                             f"{MAX_CANDIDATE_PAIRS:,} places; simplify it or draw it in parts")
        keep = right > left
        left, right = left[keep], right[keep]
        same = ring_of[left] == ring_of[right]
        gap = pos[right] - pos[left]
        adjacent = same & ((gap == 1) | (gap == ring_len[left] - 1))
        left, right = left[~adjacent], right[~adjacent]
        if len(left):
            crossings += int(np.count_nonzero(shapely.intersects(lines[left], lines[right])))
        if crossings > limit:
            raise TooComplex(f"{what}: edges cross in more than {limit:,} places; draw it without "
                             "zigzags or in parts")
    return crossings


def polygon_rings(shape) -> list[np.ndarray]:
    """Every ring (outer and holes) of a shapely Polygon/MultiPolygon as coordinate arrays."""
    polys = getattr(shape, "geoms", [shape])
    rings = []
    for poly in polys:
        if poly.is_empty:
            continue
        rings.append(np.asarray(poly.exterior.coords))
        rings.extend(np.asarray(r.coords) for r in poly.interiors)
    return rings


def check_overlay(a, b) -> None:
    """Refuse overlaying two valid shapes whose outlines cross too often (see MAX_OVERLAY_CROSSINGS)."""
    check_crossings(polygon_rings(a) + polygon_rings(b), MAX_OVERLAY_CROSSINGS, "the stroke and the region")


def stroke_path_shape(points: list[tuple[float, float]], radius: float):
    """A brush path buffered by `radius` (round ends), built piecewise; TooComplex for a path too long for its
    brush. `points` has 1 to MAX_STROKE_POINTS positions (checked by the caller)."""
    if len(points) == 1 or len(set(points)) == 1:
        return shapely.Point(points[0]).buffer(radius, quad_segs=8)
    pts = np.asarray(points, dtype=float)
    length = float(np.sum(np.hypot(*np.diff(pts, axis=0).T)))
    if length > MAX_STROKE_RADII * radius:
        raise TooComplex(f"the stroke is {length / radius:,.0f} brush radii long; at most {MAX_STROKE_RADII:,} "
                         "are drawn at once: use a larger brush or shorter strokes")
    pieces = [shapely.LineString(pts[i:i + PIECE_POINTS + 1]) for i in range(0, len(pts) - 1, PIECE_POINTS)]
    return shapely.union_all(shapely.buffer(pieces, radius, quad_segs=8))
