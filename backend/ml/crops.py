"""The classifier's crops of a photo (numpy only: the pre-fill's tracing processes import this without torch).

The crop box is the export's (backend/datasets/crops.py), so the classifier sees at inference what it was trained on.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from backend.datasets.crops import BACKGROUND
from backend.datasets.crops import crop_box as export_crop_box

CROP_MARGIN = 0.1  # the export's default: a share of the box's longer side, at least 2 pixels


def crop_box(rgb: np.ndarray, bbox: Sequence[float], margin: float = CROP_MARGIN,
             mask: np.ndarray | None = None) -> np.ndarray:
    """The export's crop of the bbox [x0, y0, x1, y1] (grown by `margin` × its longer side, ≥ 2 px, clipped to the
    image). Where the export would write no crop (a box under 2 px with margin 0) it gets the 2 px padding of a
    margin > 0, and an image under 2 px a side is taken whole. With `mask` (H×W bool of the whole image) the pixels
    outside the region are painted with the ImageNet mean, as exports made with crops.mask_background are."""
    h, w = rgb.shape[:2]
    box = list(bbox)
    c0, r0, c1, r1 = export_crop_box(box, w, h, margin) or export_crop_box(box, w, h, 1e-9) or (0, 0, w, h)
    crop = np.array(rgb[r0:r1, c0:c1], copy=True)
    if mask is not None:
        crop[~mask[r0:r1, c0:c1]] = BACKGROUND
    return crop
