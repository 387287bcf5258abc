"""The classifier's crops of a photo (numpy only: the pre-fill's tracing processes import this without torch)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

CROP_MARGIN = 0.1  # as backend/datasets/crops.py: a share of the box's longer side, at least 2 pixels
CROP_BACKGROUND = (124, 116, 104)  # ImageNet mean RGB, what exports paint outside a region with mask_background


def crop_box(rgb: np.ndarray, bbox: Sequence[float], margin: float = CROP_MARGIN,
             mask: np.ndarray | None = None) -> np.ndarray:
    """The bbox [x0, y0, x1, y1] grown by `margin` × its longer side (≥ 2 px), clipped to the image — the same
    crop the export writes for the classifier. With `mask` (H×W bool of the whole image) the pixels outside the
    region are painted with the ImageNet mean (exports made with crops.mask_background)."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = bbox
    pad = max(margin * max(x1 - x0, y1 - y0), 2.0) if margin > 0 else 0.0
    a, b = max(int(np.floor(x0 - pad)), 0), max(int(np.floor(y0 - pad)), 0)
    c, d = min(int(np.ceil(x1 + pad)), w), min(int(np.ceil(y1 + pad)), h)
    c, d = max(c, a + 1), max(d, b + 1)
    crop = np.array(rgb[b:d, a:c], copy=True)
    if mask is not None:
        crop[~mask[b:d, a:c]] = CROP_BACKGROUND
    return crop
