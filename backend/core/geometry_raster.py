"""Rasterising region geometry: GeoJSON polygons with holes -> pixel masks, by the pixel-centre rule that exports,
statistics and the ML code share (pixel (i, j) is inside when its centre (i + 0.5, j + 0.5) is; holes stay empty).

    rasterize(geometries, width, height)            uint8 mask 0/255 (holes left empty)
    rasterize_instances(geometries, width, height)  uint16 label image (0 background, i + 1 for geometry i)
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from backend.core.geometry import GeometryError, _polygons_of


def _fill_polygon(out: np.ndarray, rings: Iterable[Sequence[Sequence[float]]]) -> None:
    """OR one polygon (outer ring + holes, even-odd rule) into a boolean mask by pixel-centre sampling.

    A pixel is inside when its centre (i + 0.5, j + 0.5) is inside. A centre exactly on the boundary counts when
    the boundary is on its left or above it (x in (x_a, x_b], y in (y_a, y_b]), as pycocotools does for axis-aligned
    edges; elsewhere masks agree with COCO's up to its own sub-pixel approximation (IoU ~0.99 on typical regions).
    """
    height, width = out.shape
    x0s, y0s, x1s, y1s = [], [], [], []
    for ring in rings:
        pts = np.asarray(ring, dtype=np.float64)
        if len(pts) < 3:
            continue
        nxt = np.roll(pts, -1, axis=0)
        x0s.append(pts[:, 0]), y0s.append(pts[:, 1]), x1s.append(nxt[:, 0]), y1s.append(nxt[:, 1])
    if not x0s:
        return
    x0, y0, x1, y1 = (np.concatenate(a) for a in (x0s, y0s, x1s, y1s))
    keep = y0 != y1
    x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
    if len(x0) == 0:
        return
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    row_lo = max(int(math.floor(ylo.min())) - 1, 0)
    row_hi = min(int(math.ceil(yhi.max())) + 1, height)
    if row_lo >= row_hi:
        return
    # Rows whose centre line y = j + 0.5 crosses each edge, ylo < j + 0.5 <= yhi (half-open: a shared vertex
    # counts once).
    first = np.clip(np.floor(ylo - 0.5) + 1, row_lo, row_hi).astype(np.int64)
    last = np.clip(np.floor(yhi - 0.5) + 1, row_lo, row_hi).astype(np.int64)  # exclusive
    counts = last - first
    total = int(counts.sum())
    if total == 0:
        return
    edge = np.repeat(np.arange(len(x0)), counts)
    rows = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(total)
    yc = rows + 0.5
    xc = x0[edge] + (yc - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    # A crossing at xc toggles every pixel whose centre is right of it: from column floor(xc - 0.5) + 1.
    cols = np.clip(np.floor(xc - 0.5) + 1, 0, width).astype(np.int64)
    local_rows = rows - row_lo
    # Column-major toggles: numpy accumulates along axis 0 for all rows at once (vectorised), along axis 1 one
    # row at a time (a 420 x 420 window: 0.37 -> 0.20 ms; exports of masks 7 % faster, issue 22).
    toggles = np.zeros((width + 1, row_hi - row_lo), dtype=np.uint8)
    np.bitwise_xor.at(toggles, (cols, local_rows), 1)
    out[row_lo:row_hi] |= np.bitwise_xor.accumulate(toggles[:width], axis=0).T.view(bool)


def _geometry_mask(geojson: dict, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    for poly in _polygons_of(geojson):
        _fill_polygon(mask, poly)
    return mask


def rasterize(geometries: Iterable[dict], width: int, height: int) -> np.ndarray:
    """Union of the geometries as a (height, width) uint8 mask: 255 inside, 0 outside and in holes."""
    mask = np.zeros((height, width), dtype=bool)
    for geojson in geometries:
        for poly in _polygons_of(geojson):
            _fill_polygon(mask, poly)
    return mask.astype(np.uint8) * 255


def rasterize_instances(geometries: Sequence[dict], width: int, height: int) -> np.ndarray:
    """(height, width) uint16 label image: 0 background, i + 1 where geometry i is; later geometries win overlaps."""
    if len(geometries) > np.iinfo(np.uint16).max:
        raise GeometryError("too many instances for a uint16 label image")
    labels = np.zeros((height, width), dtype=np.uint16)
    for i, geojson in enumerate(geometries):
        labels[_geometry_mask(geojson, height, width)] = i + 1
    return labels
