"""Operations on boolean masks shared by the classical tools (assist.py, skin.py)."""
from __future__ import annotations

import cv2
import numpy as np


def fill_holes(mask: np.ndarray, max_area: int | None = None) -> np.ndarray:
    """The mask with its holes filled: background parts that do not reach the image's edge (of at most
    `max_area` pixels when given)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats((~mask).astype(np.uint8), connectivity=4)
    h, w = mask.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    fill = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    if max_area is not None:
        fill &= area <= max_area
    fill[0] = False
    return mask | fill[labels]
