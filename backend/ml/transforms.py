"""Image preprocessing shared by training and inference: letterboxing, normalisation, augmentation (numpy/cv2)."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from backend.ml.letterbox import Letterbox, letterbox_geometry
from backend.ml.nets import IMAGENET_MEAN, IMAGENET_STD

PAD_RGB = tuple(int(round(m * 255)) for m in IMAGENET_MEAN)  # normalises to ~0


def letterbox(rgb: np.ndarray, size: int, pad=PAD_RGB) -> tuple[np.ndarray, Letterbox]:
    """Resize so the long side is `size`, keep the aspect ratio, pad to a square with the mean colour."""
    h, w = rgb.shape[:2]
    lb = letterbox_geometry(w, h, size)
    nw, nh = lb.inner
    interp = cv2.INTER_AREA if lb.scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(rgb, (nw, nh), interpolation=interp) if (nw, nh) != (w, h) else rgb
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = pad
    canvas[lb.pad_y:lb.pad_y + nh, lb.pad_x:lb.pad_x + nw] = resized
    return canvas, lb


def letterbox_mask(mask: np.ndarray, lb: Letterbox) -> np.ndarray:
    """The 0/255 mask in letterbox coordinates: area-averaged, then a pixel is ink when at least half of it was
    (a lower cut keeps more of thin lines but teaches the model masks fatter than the ink, which costs far more
    IoU at the edges of every shape); the padding is background."""
    nw, nh = lb.inner
    small = cv2.resize(mask, (nw, nh), interpolation=cv2.INTER_AREA if lb.scale < 1 else cv2.INTER_NEAREST)
    out = np.zeros((lb.size, lb.size), np.uint8)
    out[lb.pad_y:lb.pad_y + nh, lb.pad_x:lb.pad_x + nw] = np.where(small >= 128, 255, 0)
    return out


def normalize(batch_uint8_nhwc: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 NHWC → float NCHW normalised; runs on whatever device the batch is on (upload uint8, it is 4× smaller)."""
    x = batch_uint8_nhwc.permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(m).div_(s)


# --- augmentation ------------------------------------------------------------------------------------------------

def _colour_jitter(rng: np.random.Generator, img: np.ndarray, hue: float) -> np.ndarray:
    out = img.astype(np.float32)
    out = out * rng.uniform(0.75, 1.25)  # brightness
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.75, 1.25) + mean  # contrast
    out = np.clip(out, 0, 255).astype(np.uint8)
    if hue or rng.random() < 0.8:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + int(rng.uniform(-hue, hue))) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.75, 1.25), 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.2:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.0))
    if rng.random() < 0.3:
        noise = rng.normal(0, rng.uniform(2, 8), out.shape)
        out = np.clip(out + noise, 0, 255).astype(np.uint8)
    return out


def _geometric(rng: np.random.Generator, arrays: list[np.ndarray], crop_scale: tuple[float, float]) -> list[np.ndarray]:
    size = arrays[0].shape[0]
    s = rng.uniform(*crop_scale)
    if s < 0.999:
        cs = max(8, int(size * s))
        x, y = int(rng.integers(0, size - cs + 1)), int(rng.integers(0, size - cs + 1))
        arrays = [cv2.resize(a[y:y + cs, x:x + cs], (size, size),
                             interpolation=cv2.INTER_LINEAR if a.ndim == 3 else cv2.INTER_NEAREST) for a in arrays]
    if rng.random() < 0.5:
        arrays = [a[:, ::-1] for a in arrays]
    if rng.random() < 0.2:
        arrays = [a[::-1] for a in arrays]
    k = int(rng.integers(0, 4)) if rng.random() < 0.3 else 0
    if k:
        arrays = [np.rot90(a, k) for a in arrays]
    return [np.ascontiguousarray(a) for a in arrays]


def augment_pair(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segmentation: random crop-zoom, flips, 90° turns (same for image and mask), colour jitter on the image."""
    image, mask = _geometric(rng, [image, mask], (0.6, 1.0))
    return _colour_jitter(rng, image, hue=8), mask


def augment_crop(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Classification: milder crop-zoom and a small hue shift (colour is part of the style)."""
    (image,) = _geometric(rng, [image], (0.75, 1.0))
    return _colour_jitter(rng, image, hue=3)
