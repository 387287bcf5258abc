"""Where the skin is in a photo (classical image processing, no model): skin-coloured pixels, and the body they
outline, inside which a tattoo lies.

    skin = skin_mask(rgb)                 # a wide YCrCb rule for light to dark skin, smoothed into areas
    body = on_body(rgb)                   # BodyMask: the body's interior, and how much of the photo is skin

A tattoo's ink is not skin-coloured, so it shows as gaps and holes in the skin mask; closing the mask (gaps
narrower than `close` of the photo's short side) and filling its holes gives the body with its tattoos. Clothing,
hair, furniture and backgrounds around it are outside; a rim along the body's outline (`rim`) is taken off too,
since the shading at a limb's edge and the border of dark clothing are what a model trained on little real data
mistakes for ink most often (issue 21, benchmarks/bench_real.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from backend.ml.mask_ops import fill_holes


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Skin-coloured pixels (a wide YCrCb rule that holds for light to dark skin), smoothed into areas."""
    ycrcb = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)
    y, cr, cb = ycrcb[..., 0], ycrcb[..., 1], ycrcb[..., 2]
    skin = ((cr >= 133) & (cr <= 180) & (cb >= 77) & (cb <= 135) & (y >= 35)).astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    return cv2.morphologyEx(cv2.morphologyEx(skin, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k) > 0


def _disc(diameter: int) -> np.ndarray:
    d = max(1, int(diameter)) | 1
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


@dataclass
class BodyMask:
    interior: np.ndarray  # bool: inside the body (skin with its tattoos), less the rim along its outline
    skin_share: float  # the share of the photo that is skin-coloured


BODY_SIDE = 160  # px of the short side the body's shape is worked out at: it is coarse, and large discs are slow


def on_body(rgb: np.ndarray, close: float = 0.08, rim: float = 0.05) -> BodyMask:
    """The body's interior (module docstring); `close` and `rim` are shares of the photo's short side."""
    skin = skin_mask(rgb)
    h, w = skin.shape
    factor = min(1.0, BODY_SIDE / min(h, w))
    small = skin.astype(np.uint8)
    if factor < 1.0:
        small = cv2.resize(small, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    short = min(small.shape)
    body = cv2.morphologyEx(small, cv2.MORPH_CLOSE, _disc(close * short)) > 0
    body = fill_holes(body)
    interior = cv2.erode(body.astype(np.uint8), _disc(rim * short))
    if factor < 1.0:
        interior = cv2.resize(interior, (w, h), interpolation=cv2.INTER_NEAREST)
    return BodyMask(interior > 0, float(skin.mean()))
