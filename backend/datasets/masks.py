"""Region masks for exports: each region rasterised once, in its own bounding window, with the tool's own
rasteriser (`backend.core.geometry_raster.rasterize`: pixel (i, j) is inside when its centre (i + .5, j + .5) is,
holes empty).

A window is the integer pixel box around the region; the region is moved by whole pixels into it, which leaves the
pixel-centre sampling unchanged, so the window is exactly the full-image mask cut to the box, at a fraction of the
cost. From the windows come the semantic mask (0 / 255), the instance mask (uint16, i + 1 for region i, later
regions win where they overlap, as `rasterize_instances` does), COCO RLE for regions with holes and the
background of masked crops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from backend.core.geometry_raster import rasterize
from backend.datasets.pngio import encode_gray_png, png_from_rows, png_rows


@dataclass
class RegionMask:
    row0: int
    col0: int
    mask: np.ndarray  # bool, the window [row0:row0 + h, col0:col0 + w] of the full-image mask

    def full(self, width: int, height: int, order: str = "C") -> np.ndarray:
        """The whole-image uint8 0/1 mask (Fortran order for pycocotools)."""
        out = np.zeros((height, width), dtype=np.uint8, order=order)
        h, w = self.mask.shape
        out[self.row0:self.row0 + h, self.col0:self.col0 + w] = self.mask
        return out


def _shift(geojson: dict, dx: float, dy: float) -> dict:
    def ring(points):
        return [[x - dx, y - dy] for x, y in points]

    coords = geojson["coordinates"]
    if geojson["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": [ring(r) for r in coords]}
    return {"type": "MultiPolygon", "coordinates": [[ring(r) for r in poly] for poly in coords]}


def region_mask(geojson: dict, bbox: list[float], width: int, height: int) -> RegionMask:
    """The region's pixels inside its bounding window (bbox = [x0, y0, x1, y1] from geometry.area_bbox)."""
    col0 = min(max(int(math.floor(bbox[0])), 0), width)
    row0 = min(max(int(math.floor(bbox[1])), 0), height)
    col1 = min(max(int(math.ceil(bbox[2])) + 1, col0), width)
    row1 = min(max(int(math.ceil(bbox[3])) + 1, row0), height)
    if col1 <= col0 or row1 <= row0:
        return RegionMask(row0, col0, np.zeros((0, 0), dtype=bool))
    window = rasterize([_shift(geojson, col0, row0)], col1 - col0, row1 - row0)
    return RegionMask(row0, col0, window > 0)


def instance_mask(masks: list[RegionMask], width: int, height: int) -> np.ndarray:
    """uint16 label image: 0 background, i + 1 where region i is (later regions win overlaps)."""
    if len(masks) > np.iinfo(np.uint16).max:
        raise ValueError("too many regions for a 16-bit instance mask")
    labels = np.zeros((height, width), dtype=np.uint16)
    for i, rm in enumerate(masks):
        h, w = rm.mask.shape
        if h and w:
            np.copyto(labels[rm.row0:rm.row0 + h, rm.col0:rm.col0 + w], np.uint16(i + 1), where=rm.mask)
    return labels


def semantic_from_instances(labels: np.ndarray) -> np.ndarray:
    """uint8 0 / 255 mask: the union of all regions."""
    return (labels > 0).view(np.uint8) * np.uint8(255)


def encode_masks(masks: list[RegionMask], width: int, height: int) -> tuple[bytes, bytes]:
    """(semantic PNG, 16-bit instance PNG), both of the image's size."""
    if len(masks) >= 256 or not width or not height:
        labels = instance_mask(masks, width, height)
        return encode_gray_png(semantic_from_instances(labels)), encode_gray_png(labels)
    # Fewer than 256 regions: the labels fit in the low byte of each big-endian 16-bit sample, so the regions are
    # painted straight into the instance PNG's scanlines and the semantic scanlines are read from them, without
    # the full-size intermediate arrays (both PNGs of a 1024 x 768 image: 1.71 -> 1.05 ms, issue 22).
    instance_rows = png_rows(height, width, 16)
    labels = instance_rows[:, 2::2]
    for i, rm in enumerate(masks):
        h, w = rm.mask.shape
        if h and w:
            np.copyto(labels[rm.row0:rm.row0 + h, rm.col0:rm.col0 + w], np.uint8(i + 1), where=rm.mask)
    semantic_rows = png_rows(height, width, 8)
    semantic = semantic_rows[:, 1:]
    np.greater(labels, 0, out=semantic.view(bool))
    semantic *= np.uint8(255)
    return png_from_rows(semantic_rows, width, height, 8), png_from_rows(instance_rows, width, height, 16)
