"""Procedural tattoo photos with exact masks and style labels (deterministic by seed).

Each image is a photo-like scene: a patch of skin (tone, lighting gradient, texture, moles, sometimes hair) on a
background of wall or clothing, one or more tattoos in distinct styles (drawn by backend/ml/synth_styles.py), sensor noise and JPEG artefacts. Some
images have no tattoo at all. The mask of a tattoo is the ink that was drawn, so line work keeps its holes.

    sample = generate_image(seed=7)
    sample.image      # HxWx3 uint8 RGB (already through a JPEG round trip)
    sample.mask       # HxW uint8, 255 = tattoo ink
    sample.tattoos    # [SynthTattoo(style, mask, bbox, motifs)]

This feeds the demo, the tests and the learning benchmarks. It is not real data: wherever it enters a workspace
its images are marked `source: synthetic`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np
from PIL import Image as PILImage

from backend.ml.synth_styles import STYLE_DRAWERS, STYLE_SCALE, _Layer

SYNTH_STYLES = ("fineline", "tribal", "watercolor", "traditional", "japanese", "trash_polka")

SKIN_TONES = np.array(  # albedo in RGB 0..1, light to dark
    [
        (0.96, 0.84, 0.76), (0.93, 0.78, 0.68), (0.87, 0.70, 0.58), (0.80, 0.62, 0.48),
        (0.70, 0.52, 0.38), (0.58, 0.41, 0.29), (0.45, 0.31, 0.22), (0.36, 0.25, 0.18),
    ],
    dtype=np.float32,
)


@dataclass
class SynthTattoo:
    style: str
    mask: np.ndarray  # HxW bool
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    motifs: list[str] = field(default_factory=list)


@dataclass
class SynthImage:
    seed: int
    image: np.ndarray  # HxWx3 uint8 RGB
    mask: np.ndarray  # HxW uint8 0/255
    tattoos: list[SynthTattoo]

    @property
    def styles(self) -> list[str]:
        return sorted({t.style for t in self.tattoos})

    @property
    def concentration(self) -> float:
        return float((self.mask > 0).mean())

    def jpeg_bytes(self, quality: int = 92) -> bytes:
        return encode_jpeg(self.image, quality)


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# --- scene -------------------------------------------------------------------------------------------------------

def _lighting(rng, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    grad = (np.cos(a) * (xx / w - 0.5) + np.sin(a) * (yy / h - 0.5)) * rng.uniform(0.2, 0.6)
    lx, ly = rng.uniform(0, w), rng.uniform(0, h)
    spot = np.exp(-(((xx - lx) / w) ** 2 + ((yy - ly) / h) ** 2) / rng.uniform(0.1, 0.5)) * rng.uniform(0, 0.3)
    return (rng.uniform(0.85, 1.1) + grad + spot).astype(np.float32)


def _low_noise(rng, h: int, w: int, scale: int) -> np.ndarray:
    small = rng.standard_normal((max(2, h // scale), max(2, w // scale))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _muted(rng) -> np.ndarray:
    """A clothing / wall colour: any hue, at most moderately saturated (the clutter is not meant to look like ink)."""
    grey = rng.uniform(0.15, 0.9)
    return np.clip(grey + (rng.uniform(0.1, 0.9, 3) - grey) * 0.45, 0, 1).astype(np.float32)


def _background(rng, h: int, w: int) -> np.ndarray:
    kind = rng.integers(3)
    base = _muted(rng)
    bg = np.broadcast_to(base, (h, w, 3)).copy()
    if kind == 1:  # striped clothing with folds
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        period = rng.uniform(8, 30)
        angle = rng.uniform(0, np.pi)
        stripes = (np.sin((np.cos(angle) * xx + np.sin(angle) * yy) / period * 2 * np.pi) > 0).astype(np.float32)
        other = _muted(rng)
        bg = bg * (1 - stripes[..., None]) + other * stripes[..., None]
        bg *= (1 + 0.15 * _low_noise(rng, h, w, 40))[..., None]
    elif kind == 2:  # wall with texture and an edge (door frame, shelf)
        bg *= (1 + 0.05 * _low_noise(rng, h, w, 8))[..., None]
        x = int(rng.uniform(0.1, 0.9) * w)
        bg[:, x:x + int(rng.integers(4, 20))] *= rng.uniform(0.5, 0.8)
    return np.clip(bg, 0, 1)


def _skin_region(rng, h: int, w: int) -> np.ndarray:
    """Where the skin is: a limb / torso shape covering most of the frame, sometimes all of it."""
    mask = np.zeros((h, w), np.uint8)
    if rng.random() < 0.3:
        mask[:] = 1
        return mask
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
    ax, ay = w * rng.uniform(0.45, 0.8), h * rng.uniform(0.45, 0.8)
    cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)), float(rng.uniform(-40, 40)), 0, 360, 1, -1)
    return mask


def _place_box(rng, skin: np.ndarray, taken: list, frac: tuple[float, float], short: int, min_skin: float = 0.97,
               gap_frac: float = 0.08):
    h, w = skin.shape
    for _ in range(40):
        side = int(short * rng.uniform(*frac))
        bw = int(side * rng.uniform(0.8, 1.25))
        bh = int(side * rng.uniform(0.8, 1.25))
        if bw >= w - 4 or bh >= h - 4:
            continue
        x0, y0 = int(rng.integers(2, w - bw - 2)), int(rng.integers(2, h - bh - 2))
        box = (x0, y0, x0 + bw, y0 + bh)
        if skin[y0:y0 + bh, x0:x0 + bw].mean() < min_skin:
            continue
        gap = int(short * gap_frac)
        if any(not (box[2] + gap < t[0] or t[2] + gap < box[0] or box[3] + gap < t[1] or t[3] + gap < box[1])
               for t in taken):
            continue
        return box
    return None


def photo_size(rng: np.random.Generator, width: int | None, height: int | None,
               long_side_range: tuple[int, int]) -> tuple[int, int]:
    """(width, height): the ones given, else a random long side in the range and an aspect of 3:4 to 4:3."""
    if width is None or height is None:
        long_side = int(rng.integers(long_side_range[0], long_side_range[1] + 1))
        aspect = rng.uniform(0.75, 1.33)
        width = width or (long_side if aspect >= 1 else int(long_side * aspect))
        height = height or (int(long_side / aspect) if aspect >= 1 else long_side)
    return int(width), int(height)


def generate_image(
    seed: int,
    width: int | None = None,
    height: int | None = None,
    styles: list[str] | None = None,
    n_tattoos: int | None = None,
    p_empty: float = 0.1,
    jpeg_quality: tuple[int, int] = (70, 95),
) -> SynthImage:
    """One procedural photo. `styles` fixes the styles drawn (in order); `n_tattoos=0` gives an image without ink."""
    rng = np.random.default_rng(seed)
    w, h = photo_size(rng, width, height, (320, 480))
    short = min(h, w)

    skin = _skin_region(rng, h, w)
    tone = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    skin_tex = 1 + 0.04 * _low_noise(rng, h, w, 24) + 0.015 * _low_noise(rng, h, w, 3)
    soft_skin = cv2.GaussianBlur(skin.astype(np.float32), (0, 0), 1.2)[..., None]
    albedo = (tone * skin_tex[..., None] * soft_skin + _background(rng, h, w) * (1 - soft_skin)).astype(np.float32)

    # moles, freckles and the odd hair: skin features that are not ink
    for _ in range(int(rng.integers(0, 6))):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        if skin[y, x]:
            cv2.circle(albedo, (x, y), int(rng.integers(1, 3)), tuple(float(c) for c in tone * 0.55), -1)
    if rng.random() < 0.25:
        hair = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(5, 25))):
            x, y = rng.uniform(0, w), rng.uniform(0, h)
            a = rng.uniform(-0.5, 0.5) + np.pi / 4
            ln = rng.uniform(6, 18)
            cv2.line(hair, (int(x), int(y)), (int(x + np.cos(a) * ln), int(y + np.sin(a) * ln)), 1.0, 1, cv2.LINE_AA)
        albedo = albedo * (1 - 0.35 * hair[..., None] * skin[..., None])

    if n_tattoos is None:
        n_tattoos = 0 if rng.random() < p_empty else int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
    if styles is not None:
        chosen = list(styles)
    else:
        chosen = [str(s) for s in rng.choice(SYNTH_STYLES, size=min(n_tattoos, len(SYNTH_STYLES)), replace=False)]

    tattoos: list[SynthTattoo] = []
    taken: list = []
    for style in chosen:
        frac = STYLE_SCALE.get(style, (0.4, 0.7))
        if len(chosen) > 1:
            frac = (frac[0] * 0.65, frac[1] * 0.65)
        box = _place_box(rng, skin, taken, frac, short)
        if box is None:
            continue
        layer = _Layer(h, w)
        motifs = STYLE_DRAWERS[style](rng, layer, box, short)
        ink = (layer.mask > 0) & (skin > 0)
        if ink.sum() < 20:
            continue
        taken.append(box)
        ys, xs = np.nonzero(ink)
        bbox = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        # ink sits under the skin: soft edges, slightly translucent, a touch of the skin colour mixed in
        alpha = cv2.GaussianBlur(layer.alpha * skin, (0, 0), rng.uniform(0.5, 0.8)) * rng.uniform(0.88, 0.97)
        ink_rgb = layer.color * 0.9 + tone * 0.1
        albedo = albedo * (1 - alpha[..., None]) + ink_rgb * alpha[..., None]
        tattoos.append(SynthTattoo(style=str(style), mask=ink, bbox=bbox, motifs=motifs))

    img = albedo * _lighting(rng, h, w)[..., None]
    return finish_photo(rng, img, (0.005, 0.025), jpeg_quality, seed, tattoos)


def finish_photo(rng, img: np.ndarray, noise: tuple[float, float], jpeg_quality: tuple[int, int], seed: int,
                 tattoos: list[SynthTattoo]) -> SynthImage:
    """The camera's last steps on a float RGB image (0..1): sensor noise and a JPEG round trip; the exact mask."""
    h, w = img.shape[:2]
    img = img + rng.normal(0, rng.uniform(*noise), img.shape).astype(np.float32)
    rgb = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    quality = int(rng.integers(jpeg_quality[0], jpeg_quality[1] + 1))
    rgb = np.asarray(PILImage.open(io.BytesIO(encode_jpeg(rgb, quality))).convert("RGB"))
    mask = np.zeros((h, w), np.uint8)
    for t in tattoos:
        mask[t.mask] = 255
    return SynthImage(seed=seed, image=rgb, mask=mask, tattoos=tattoos)


def generate_images(n: int, seed: int = 0, **kwargs) -> Iterator[SynthImage]:
    """n images with seeds seed, seed+1, … (styles are drawn uniformly, so each is about equally common)."""
    for i in range(n):
        yield generate_image(seed + i, **kwargs)


def write_export_folder(folder, n: int, seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.0,
                        crop_margin: float = 0.1, **kwargs) -> dict:
    """Write n procedural images straight into the export layout (images/, masks/, crops/ + labels.csv,
    manifest.json) without a workspace: for unit tests and quick experiments. Real training data goes through
    the workspace and backend.datasets instead. Returns the manifest."""
    import csv
    import hashlib
    import json
    from pathlib import Path

    from backend.ml.crops import crop_box

    root = Path(folder)
    counts: dict[str, int] = {}
    rows = []
    for i, sample in enumerate(generate_images(n, seed, **kwargs)):
        r = (i * 0.6180339887) % 1.0  # low-discrepancy split assignment: every split gets its share
        split = "val" if r < val_fraction else "test" if r < val_fraction + test_fraction else "train"
        data = sample.jpeg_bytes()
        sha = hashlib.sha256(data).hexdigest()
        for sub in ("images", "masks"):
            (root / sub / split).mkdir(parents=True, exist_ok=True)
        (root / "images" / split / f"{sha}.jpg").write_bytes(data)
        PILImage.fromarray(sample.mask).save(root / "masks" / split / f"{sha}.png")
        counts[split] = counts.get(split, 0) + 1
        for k, tattoo in enumerate(sample.tattoos):
            region_id = f"{sha[:16]}-{k}"
            crop = crop_box(sample.image, tattoo.bbox, crop_margin)
            target = root / "crops" / split / tattoo.style
            target.mkdir(parents=True, exist_ok=True)
            PILImage.fromarray(crop).save(target / f"{region_id}.jpg", quality=92)
            rows.append({"region_id": region_id, "image": sha, "style": tattoo.style,
                         "motifs": "|".join(tattoo.motifs), "bbox": json.dumps(list(tattoo.bbox))})
    (root / "crops").mkdir(parents=True, exist_ok=True)
    with open(root / "crops" / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["region_id", "image", "style", "motifs", "bbox"])
        writer.writeheader()
        writer.writerows(rows)
    manifest = {"export_id": f"synthetic-{seed}-{n}", "source": "synthetic", "counts": counts,
                "split": {"val": val_fraction, "test": test_fraction, "seed": seed}}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
