"""Procedural tattoos composited onto real skin: the backgrounds are windows of real photos taken outside their
human boxes (so they hold no tattoo), the ink is backend/ml/synth.py's procedural styles, and the masks stay exact.

Where synth.generate_image paints blobs on a generated skin gradient, this teaches what a real photo looks like
around the ink: skin texture, pores, hair, shadows, clothing, jewellery, backgrounds, phone-camera colour. The ink
sits under the skin as in generate_image (soft edges, slightly translucent), and takes the photo's own shading:
its colour is multiplied by the local brightness of the skin under it relative to the window's median skin, so a
tattoo in shadow is darker. Then the camera steps: a lighting gradient, a little blur (focus, motion), sensor
noise and a JPEG round trip at a random quality.

    source = RealBackgrounds.from_folder("../shared/data/real-tattoos", names=train_names)
    sample = generate_on_real(seed=3, source=source)       # a synth.SynthImage (image, mask, tattoos)

Only windows that overlap no box (with a margin) are used, so the photos' own tattoos never enter as unlabelled ink;
keep held-out photos out of `names` when measuring on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np
from backend.ml.synth import (
    SKIN_TONES,
    SYNTH_STYLES,
    SynthImage,
    SynthTattoo,
    _lighting,
    _place_box,
    finish_photo,
    photo_size,
)
from backend.ml.skin import skin_mask
from backend.ml.synth_styles import STYLE_DRAWERS, STYLE_SCALE, _Layer

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_WINDOW = 96  # px of the photo; smaller free areas are skipped
BOX_MARGIN = 0.03  # of the photo's long side: kept clear around every human box
MAX_PHOTO_SIDE = 800  # photos are read at most this large (windows are resized to the output size anyway)


def yolo_boxes(label_file: Path, width: int, height: int) -> list[tuple[float, float, float, float]]:
    """Pixel boxes (x0, y0, x1, y1) of a YOLO label file (`class cx cy w h`, relative); other lines skipped."""
    boxes = []
    if not label_file.is_file():
        return boxes
    for line in label_file.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        try:
            cx, cy, bw, bh = (float(v) for v in parts[1:])
        except ValueError:
            continue
        boxes.append(((cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height))
    return boxes


@dataclass
class RealPhoto:
    name: str
    rgb: np.ndarray
    free: np.ndarray  # bool: pixels at least BOX_MARGIN away from every box


class RealBackgrounds:
    """Real photos and where they are free of tattoos; `window(rng)` draws a tattoo-free window."""

    def __init__(self, photos: list[RealPhoto]):
        self.photos = [p for p in photos if p.free.any()]
        if not self.photos:
            raise ValueError("no real photo has a tattoo-free area to take skin from")

    @classmethod
    def from_folder(cls, folder: str | Path, names: Iterable[str] | None = None) -> "RealBackgrounds":
        """Photos of a YOLO-labelled folder (images/ with a .txt per photo, or the photos at the top level);
        `names` (file names) restricts to a part of them, e.g. the training part. Unlabelled photos are skipped:
        without boxes there is no telling where their tattoos are."""
        folder = Path(folder)
        wanted = set(names) if names is not None else None
        photos = []
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES):
            label = path.with_suffix(".txt")
            if (wanted is not None and path.name not in wanted) or not label.is_file():
                continue
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            h, w = rgb.shape[:2]
            boxes = yolo_boxes(label, w, h)
            scale = min(1.0, MAX_PHOTO_SIDE / max(h, w))
            if scale < 1:
                rgb = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
            photos.append(RealPhoto(path.name, rgb, free_area(rgb.shape[:2], [[v * scale for v in b] for b in boxes])))
        return cls(photos)

    def window(self, rng: np.random.Generator, aspect: float, tries: int = 400) -> np.ndarray | None:
        """A tattoo-free window (RGB) of about the given aspect (width / height), or None when none was found.

        Most tries succeed at once; in photos whose boxes leave little free area many are needed (60 tries failed
        for one of 300 composites of the real photos, which stopped bench_real.py; the images of the seeds that
        found a window are the same with more tries)."""
        for _ in range(tries):
            photo = self.photos[int(rng.integers(len(self.photos)))]
            h, w = photo.free.shape
            side = rng.uniform(0.25, 0.8) * min(h, w)
            ww, wh = int(side * np.sqrt(aspect)), int(side / np.sqrt(aspect))
            if ww < MIN_WINDOW or wh < MIN_WINDOW or ww > w or wh > h:
                continue
            x, y = int(rng.integers(0, w - ww + 1)), int(rng.integers(0, h - wh + 1))
            if photo.free[y:y + wh, x:x + ww].all():
                return photo.rgb[y:y + wh, x:x + ww]
        return None


def free_area(shape: tuple[int, int], boxes: Sequence[Sequence[float]]) -> np.ndarray:
    h, w = shape
    free = np.ones((h, w), bool)
    m = BOX_MARGIN * max(h, w)
    for x0, y0, x1, y1 in boxes:
        free[max(0, int(y0 - m)):max(0, int(np.ceil(y1 + m))), max(0, int(x0 - m)):max(0, int(np.ceil(x1 + m)))] = False
    return free


def generate_on_real(seed: int, source: RealBackgrounds, width: int | None = None, height: int | None = None,
                     styles: list[str] | None = None, n_tattoos: int | None = None, p_empty: float = 0.15,
                     jpeg_quality: tuple[int, int] = (60, 95)) -> SynthImage:
    """One composite: a real tattoo-free window with procedural tattoos on its skin (see the module docstring).
    Where the window has too little skin for a tattoo, it comes back without one (a real negative)."""
    rng = np.random.default_rng(seed)
    w, h = photo_size(rng, width, height, (256, 448))
    window = source.window(rng, w / h)
    if window is None:
        raise ValueError("no tattoo-free window found in the real photos")
    interp = cv2.INTER_AREA if window.shape[1] > w else cv2.INTER_CUBIC
    base = cv2.resize(window, (w, h), interpolation=interp).astype(np.float32) / 255.0
    skin = skin_mask((base * 255).astype(np.uint8))
    short = min(h, w)

    if n_tattoos is None:
        n_tattoos = 0 if rng.random() < p_empty else int(rng.choice([1, 2, 3], p=[0.65, 0.27, 0.08]))
    chosen = list(styles) if styles is not None else \
        [str(s) for s in rng.choice(SYNTH_STYLES, size=min(n_tattoos, len(SYNTH_STYLES)), replace=False)]

    # the photo's shading: brightness relative to its median skin, which the ink takes on
    lum = cv2.GaussianBlur(base.mean(axis=2), (0, 0), max(2.0, short * 0.02))
    ref = float(np.median(lum[skin])) if skin.sum() > 100 else float(np.median(lum))
    shade = np.clip(lum / max(ref, 1e-3), 0.4, 1.4)[..., None]
    tone = np.median(base[skin], axis=0) if skin.sum() > 100 else SKIN_TONES[3]

    img = base.copy()
    tattoos: list[SynthTattoo] = []
    taken: list = []
    soft_skin = cv2.GaussianBlur(skin.astype(np.float32), (0, 0), 1.0)
    for style in chosen:
        frac = STYLE_SCALE.get(style, (0.4, 0.7))
        if len(chosen) > 1:
            frac = (frac[0] * 0.65, frac[1] * 0.65)
        box = _place_box(rng, skin, taken, frac, short, min_skin=0.85, gap_frac=0.06)
        if box is None:
            continue
        layer = _Layer(h, w)
        motifs = STYLE_DRAWERS[style](rng, layer, box, short)
        alpha = cv2.GaussianBlur(layer.alpha * soft_skin, (0, 0), rng.uniform(0.5, 0.9)) * rng.uniform(0.85, 0.97)
        ink = (layer.mask > 0) & skin & (alpha > 0.25)
        if ink.sum() < 20:
            continue
        taken.append(box)
        ys, xs = np.nonzero(ink)
        bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        ink_rgb = (layer.color * 0.88 + tone * 0.12) * shade
        img = img * (1 - alpha[..., None]) + ink_rgb * alpha[..., None]
        tattoos.append(SynthTattoo(style=str(style), mask=ink, bbox=bbox, motifs=motifs))

    img = img * (0.85 + 0.15 * _lighting(rng, h, w))[..., None]
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.2))
    return finish_photo(rng, img, (0.003, 0.015), jpeg_quality, seed, tattoos)


def generate_on_real_images(n: int, source: RealBackgrounds, seed: int = 0, **kwargs) -> Iterator[SynthImage]:
    for i in range(n):
        yield generate_on_real(seed + i, source, **kwargs)
