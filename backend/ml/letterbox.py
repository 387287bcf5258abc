"""Where an image sits in the model's square canvas, and the way back (numpy/OpenCV only: the pre-fill's tracing
processes import it without torch). backend/ml/transforms.py makes the canvases."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    """Where the resized image sits in the square canvas."""

    size: int
    scale: float
    pad_x: int
    pad_y: int
    width: int  # original size
    height: int

    @property
    def inner(self) -> tuple[int, int]:
        return max(1, round(self.width * self.scale)), max(1, round(self.height * self.scale))


def letterbox_geometry(width: int, height: int, size: int) -> Letterbox:
    scale = size / max(width, height)
    nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
    return Letterbox(size, scale, (size - nw) // 2, (size - nh) // 2, width, height)


def unletterbox(prob: np.ndarray, lb: Letterbox, width: int | None = None, height: int | None = None) -> np.ndarray:
    """Probability map of the canvas → the original image (or width×height) frame, bilinear."""
    nw, nh = lb.inner
    crop = prob[lb.pad_y:lb.pad_y + nh, lb.pad_x:lb.pad_x + nw]
    width, height = width or lb.width, height or lb.height
    if (width, height) == (nw, nh):
        return np.ascontiguousarray(crop)
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
