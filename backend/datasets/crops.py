"""Region crops for the style classifier: `crops/{split}/{style}/<region_id>.jpg` and `crops/labels.csv`.

A crop is the region's bounding box grown by `margin` (a fraction of the box's longer side, at least 2 pixels) on
every side and clipped to the image. With `mask_background` the pixels outside the region (and in its holes) are
set to the ImageNet mean colour, so the classifier sees only ink and skin of that tattoo. Only regions whose style
is trainable get a crop; the others still count for the segmentation sets.
"""
from __future__ import annotations

import hashlib
import io
import math
import re

import numpy as np
from PIL import Image

from backend.datasets.masks import RegionMask

CSV_COLUMNS = ("path", "split", "region_id", "image", "image_id", "style", "motifs", "x0", "y0", "x1", "y1")
BACKGROUND = (124, 116, 104)  # ImageNet mean RGB: neutral after the usual normalisation
JPEG_QUALITY = 95
MIN_SIDE = 2
_SAFE_STEM = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")


def safe_stem(region_id: str) -> str:
    """A file name stem for a region id: the id itself when it is plain, else a hash of it."""
    if isinstance(region_id, str) and _SAFE_STEM.match(region_id):
        return region_id
    return "r" + hashlib.sha256(str(region_id).encode()).hexdigest()[:32]


def crop_box(bbox: list[float], width: int, height: int, margin: float) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) integer pixel box of the crop, or None when the region is too small to crop."""
    x0, y0, x1, y1 = bbox
    pad = max(margin * max(x1 - x0, y1 - y0), 2.0) if margin > 0 else 0.0
    c0 = max(int(math.floor(x0 - pad)), 0)
    r0 = max(int(math.floor(y0 - pad)), 0)
    c1 = min(int(math.ceil(x1 + pad)), width)
    r1 = min(int(math.ceil(y1 + pad)), height)
    if c1 - c0 < MIN_SIDE or r1 - r0 < MIN_SIDE:
        return None
    return c0, r0, c1, r1


def crop_jpeg(rgb: np.ndarray, box: tuple[int, int, int, int], region: RegionMask | None = None,
              mask_background: bool = False, quality: int = JPEG_QUALITY) -> bytes:
    c0, r0, c1, r1 = box
    crop = np.array(rgb[r0:r1, c0:c1], copy=True)
    if mask_background and region is not None:
        keep = np.zeros(crop.shape[:2], dtype=bool)
        h, w = region.mask.shape
        # The region's window, clipped to the crop box, in crop coordinates.
        top, left = max(region.row0, r0), max(region.col0, c0)
        bottom, right = min(region.row0 + h, r1), min(region.col0 + w, c1)
        if bottom > top and right > left:
            keep[top - r0:bottom - r0, left - c0:right - c0] = \
                region.mask[top - region.row0:bottom - region.row0, left - region.col0:right - region.col0]
        crop[~keep] = BACKGROUND
    out = io.BytesIO()
    Image.fromarray(crop, "RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()
