"""Procedural tattoo photos with exact masks and style labels (deterministic by seed).

Each image is a photo-like scene: a patch of skin (tone, lighting gradient, texture, moles, sometimes hair) on a
background of wall or clothing, one or more tattoos in distinct styles, sensor noise and JPEG artefacts. Some
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
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import cv2
import numpy as np
from PIL import Image as PILImage

SYNTH_STYLES = ("fineline", "tribal", "watercolor", "traditional", "japanese", "trash_polka")

SKIN_TONES = np.array(  # albedo in RGB 0..1, light to dark
    [
        (0.96, 0.84, 0.76), (0.93, 0.78, 0.68), (0.87, 0.70, 0.58), (0.80, 0.62, 0.48),
        (0.70, 0.52, 0.38), (0.58, 0.41, 0.29), (0.45, 0.31, 0.22), (0.36, 0.25, 0.18),
    ],
    dtype=np.float32,
)
SATURATED = np.array(
    [(0.80, 0.08, 0.08), (0.95, 0.75, 0.05), (0.05, 0.55, 0.15), (0.05, 0.25, 0.75), (0.85, 0.40, 0.05)],
    dtype=np.float32,
)
WATERCOLOURS = np.array(
    [(0.25, 0.55, 0.95), (0.95, 0.35, 0.65), (0.60, 0.30, 0.90), (0.10, 0.75, 0.70), (0.98, 0.60, 0.15),
     (0.40, 0.85, 0.35)],
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


# --- drawing helpers ---------------------------------------------------------------------------------------------

def _smooth_curve(rng: np.random.Generator, box, n_ctrl: int = 4, samples: int = 80) -> np.ndarray:
    """A smooth open curve (Catmull-Rom through random control points) inside box; float Nx2."""
    x0, y0, x1, y1 = box
    ctrl = np.column_stack([rng.uniform(x0, x1, n_ctrl), rng.uniform(y0, y1, n_ctrl)])
    ctrl = np.vstack([ctrl[0], ctrl, ctrl[-1]])
    out = []
    for i in range(1, len(ctrl) - 2):
        p0, p1, p2, p3 = ctrl[i - 1], ctrl[i], ctrl[i + 1], ctrl[i + 2]
        for t in np.linspace(0, 1, max(2, samples // (n_ctrl - 1)), endpoint=False):
            t2, t3 = t * t, t * t * t
            out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2
                              + (-p0 + 3 * p1 - 3 * p2 + p3) * t3))
    out.append(ctrl[-2])
    return np.asarray(out, dtype=np.float32)


def _pts(points: np.ndarray) -> np.ndarray:
    return np.round(points).astype(np.int32).reshape(-1, 1, 2)


def _tapered_stroke(curve: np.ndarray, max_width: float, spike: bool = True) -> np.ndarray:
    """Polygon around a curve whose width swells in the middle and tapers to points (tribal strokes)."""
    d = np.gradient(curve, axis=0)
    norm = np.linalg.norm(d, axis=1, keepdims=True) + 1e-6
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / norm
    t = np.linspace(0, 1, len(curve))
    width = max_width * (np.sin(np.pi * t) ** (0.6 if spike else 0.3))
    width = np.maximum(width, 0.5)
    left = curve + normal * width[:, None] / 2
    right = curve - normal * width[:, None] / 2
    return np.vstack([left, right[::-1]])


def _shape_polygon(rng: np.random.Generator, kind: str, cx: float, cy: float, r: float) -> np.ndarray:
    if kind == "heart":
        t = np.linspace(0, 2 * np.pi, 80, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        return np.column_stack([cx + x * r / 17, cy + y * r / 17])
    if kind == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            a = -np.pi / 2 + i * np.pi / 5
            pts.append((cx + rad * np.cos(a), cy + rad * np.sin(a)))
        return np.asarray(pts)
    if kind == "diamond":
        return np.asarray([(cx, cy - r), (cx + r * 0.65, cy), (cx, cy + r), (cx - r * 0.65, cy)])
    if kind == "shield":
        return np.asarray([(cx - r * 0.8, cy - r * 0.8), (cx + r * 0.8, cy - r * 0.8), (cx + r * 0.8, cy + r * 0.1),
                           (cx, cy + r), (cx - r * 0.8, cy + r * 0.1)])
    # "blob": a random smooth closed shape
    n = 9
    a = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = r * rng.uniform(0.6, 1.0, n)
    t = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    rr = np.interp(t, np.concatenate([a - 2 * np.pi, a, a + 2 * np.pi]), np.concatenate([rad, rad, rad]))
    return np.column_stack([cx + rr * np.cos(t), cy + rr * np.sin(t)])


class _Layer:
    """One tattoo being drawn: ink colour and a binary ink mask, full image size."""

    def __init__(self, h: int, w: int):
        self.color = np.zeros((h, w, 3), np.float32)
        self.alpha = np.zeros((h, w), np.float32)  # rendered opacity 0..1
        self.mask = np.zeros((h, w), np.uint8)  # exact ink mask 0/1

    def paint(self, draw: Callable[[np.ndarray], None], rgb, opacity: float = 1.0, erase: bool = False) -> None:
        stamp = np.zeros(self.mask.shape, np.uint8)
        draw(stamp)
        sel = stamp > 0
        if erase:
            self.mask[sel] = 0
            self.alpha[sel] = 0
            return
        self.mask[sel] = 1
        self.color[sel] = rgb
        self.alpha[sel] = opacity

    def paint_soft(self, soft: np.ndarray, rgb, threshold: float = 0.4) -> None:
        """A soft field (0..1) of colour, blended over what is there; ink where it is clearly visible."""
        soft = soft.astype(np.float32)
        a = soft[..., None]
        self.color = self.color * (1 - a) + np.asarray(rgb, np.float32) * a
        self.alpha = np.maximum(self.alpha, soft)
        self.mask[soft > threshold] = 1


def _ink_black(rng) -> tuple:
    v = float(rng.uniform(0.03, 0.12))
    return (v, v * rng.uniform(0.95, 1.1), v * rng.uniform(1.0, 1.25))


# --- styles: each draws into a layer inside a box ----------------------------------------------------------------

def _draw_fineline(rng, layer: _Layer, box, short: int) -> list[str]:
    ink = _ink_black(rng)
    thick = 1 if short < 420 else 2
    motifs = []
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
    kind = rng.integers(3)
    if kind == 0:  # flower of petal outlines on a stem
        motifs = ["flower"]
        n = int(rng.integers(5, 9))
        pr = r * 0.45
        for i in range(n):
            a = 2 * np.pi * i / n
            center = (int(cx + np.cos(a) * pr * 0.6), int(cy - r * 0.3 + np.sin(a) * pr * 0.6))
            layer.paint(lambda m, c=center, ang=a: cv2.ellipse(m, c, (int(pr * 0.55), int(pr * 0.25)),
                                                               math.degrees(ang), 0, 360, 1, thick), ink)
        stem = _smooth_curve(rng, (cx - r * 0.2, cy, cx + r * 0.2, y1), 3)
        layer.paint(lambda m: cv2.polylines(m, [_pts(stem)], False, 1, thick), ink)
    elif kind == 1:  # crescent moon and stars
        motifs = ["moon", "star"]
        layer.paint(lambda m: cv2.ellipse(m, (int(cx), int(cy)), (int(r * 0.7), int(r * 0.7)), 0, 60, 300, 1, thick), ink)
        layer.paint(lambda m: cv2.ellipse(m, (int(cx - r * 0.25), int(cy)), (int(r * 0.5), int(r * 0.55)), 0, 80, 280, 1, thick), ink)
        for _ in range(int(rng.integers(2, 5))):
            sx, sy = rng.uniform(x0, x1), rng.uniform(y0, y1)
            star = _shape_polygon(rng, "star", sx, sy, r * rng.uniform(0.08, 0.15))
            layer.paint(lambda m, s=star: cv2.polylines(m, [_pts(s)], True, 1, thick), ink)
    else:  # abstract single-line drawing
        motifs = ["geometric shape"]
        for _ in range(int(rng.integers(3, 6))):
            c = _smooth_curve(rng, box, int(rng.integers(3, 6)))
            layer.paint(lambda m, c=c: cv2.polylines(m, [_pts(c)], False, 1, thick), ink)
        layer.paint(lambda m: cv2.circle(m, (int(cx), int(cy)), int(r * rng.uniform(0.2, 0.4)), 1, thick), ink)
    return motifs


def _draw_tribal(rng, layer: _Layer, box, short: int) -> list[str]:
    ink = _ink_black(rng)
    x0, y0, x1, y1 = box
    size = min(x1 - x0, y1 - y0)
    mirror = rng.random() < 0.5
    cx = (x0 + x1) / 2
    for _ in range(int(rng.integers(2, 5))):
        curve = _smooth_curve(rng, box, int(rng.integers(3, 5)), 90)
        poly = _tapered_stroke(curve, size * rng.uniform(0.08, 0.16))
        layer.paint(lambda m, p=poly: cv2.fillPoly(m, [_pts(p)], 1), ink)
        if mirror:
            mp = poly.copy()
            mp[:, 0] = 2 * cx - mp[:, 0]
            layer.paint(lambda m, p=mp: cv2.fillPoly(m, [_pts(p)], 1), ink)
    return ["geometric shape"] if rng.random() < 0.5 else []


def _draw_watercolor(rng, layer: _Layer, box, short: int) -> list[str]:
    h, w = layer.mask.shape
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
    for _ in range(int(rng.integers(2, 5))):
        field_ = np.zeros((h, w), np.float32)
        bx, by = cx + rng.uniform(-0.4, 0.4) * r, cy + rng.uniform(-0.4, 0.4) * r
        blob = _shape_polygon(rng, "blob", bx, by, r * rng.uniform(0.35, 0.6))
        cv2.fillPoly(field_, [_pts(blob)], 1.0)
        sigma = max(1.5, r * rng.uniform(0.06, 0.12))
        field_ = cv2.GaussianBlur(field_, (0, 0), sigma)
        field_ = np.clip(field_ * rng.uniform(1.4, 1.9), 0, 0.92)
        layer.paint_soft(field_, WATERCOLOURS[rng.integers(len(WATERCOLOURS))])
    ink = _ink_black(rng)
    thick = 1 if short < 420 else 2
    motif = "bird" if rng.random() < 0.5 else "flower"
    outline = _shape_polygon(rng, "blob", cx, cy, r * 0.55)
    layer.paint(lambda m: cv2.polylines(m, [_pts(outline)], True, 1, thick), ink)
    for _ in range(2):
        c = _smooth_curve(rng, (cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.6), 3)
        layer.paint(lambda m, c=c: cv2.polylines(m, [_pts(c)], False, 1, thick), ink)
    return [motif]


def _draw_traditional(rng, layer: _Layer, box, short: int) -> list[str]:
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
    outline = max(3, int(round(short / 90)))
    black = _ink_black(rng)
    kind = ["heart", "star", "diamond", "shield", "ring"][int(rng.integers(5))]
    fill = SATURATED[rng.integers(len(SATURATED))]
    if kind == "ring":  # a rose-like ring: filled annulus with a hole in the middle
        ro, ri = int(r * 0.9), int(r * rng.uniform(0.35, 0.5))
        layer.paint(lambda m: cv2.circle(m, (int(cx), int(cy)), ro, 1, -1), fill)
        layer.paint(lambda m: cv2.circle(m, (int(cx), int(cy)), ro, 1, outline), black)
        layer.paint(lambda m: cv2.circle(m, (int(cx), int(cy)), ri, 1, -1), None, erase=True)
        layer.paint(lambda m: cv2.circle(m, (int(cx), int(cy)), ri + outline // 2, 1, outline), black)
        motifs = ["rose"]
    else:
        poly = _shape_polygon(rng, kind, cx, cy, r * 0.9)
        layer.paint(lambda m: cv2.fillPoly(m, [_pts(poly)], 1), fill)
        layer.paint(lambda m: cv2.polylines(m, [_pts(poly)], True, 1, outline), black)
        # inner highlight line in a second flat colour
        inner = _shape_polygon(rng, kind, cx - r * 0.15, cy - r * 0.15, r * 0.35)
        second = SATURATED[rng.integers(len(SATURATED))]
        layer.paint(lambda m: cv2.fillPoly(m, [_pts(inner)], 1), second)
        layer.paint(lambda m: cv2.polylines(m, [_pts(inner)], True, 1, max(2, outline - 1)), black)
        motifs = {"heart": ["heart"], "star": ["star"], "diamond": ["geometric shape"], "shield": ["banner"]}[kind]
    return motifs


def _draw_japanese(rng, layer: _Layer, box, short: int) -> list[str]:
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
    outline = max(2, int(round(short / 130)))
    black = _ink_black(rng)
    water = np.array((0.10, 0.30, 0.70), np.float32) * rng.uniform(0.8, 1.1)
    field_poly = _shape_polygon(rng, "blob", cx, cy, r * 0.98)
    layer.paint(lambda m: cv2.fillPoly(m, [_pts(field_poly)], 1), water)
    layer.paint(lambda m: cv2.polylines(m, [_pts(field_poly)], True, 1, outline), black)
    # rows of wave scallops: black arcs with un-inked foam curls inside (holes)
    step = max(10, int(r * rng.uniform(0.28, 0.4)))
    for row, yy in enumerate(range(int(y0 + step * 0.8), int(y1), step)):
        for xx in range(int(x0) + (step // 2 if row % 2 else 0), int(x1), step):
            if cv2.pointPolygonTest(_pts(field_poly), (float(xx), float(yy)), True) < step * 0.5:
                continue
            rad = step // 2
            layer.paint(lambda m, c=(xx, yy): cv2.ellipse(m, c, (rad, rad), 0, 180, 360, 1, outline), black)
            layer.paint(lambda m, c=(xx, yy): cv2.ellipse(m, (c[0], c[1] - rad // 4), (rad // 3, rad // 3), 0, 0, 360, 1, -1),
                        None, erase=True)
    motifs = ["wave"]
    if rng.random() < 0.6:  # a red sun / koi colour field
        sr = int(r * rng.uniform(0.2, 0.3))
        sx, sy = int(cx + rng.uniform(-0.3, 0.3) * r), int(cy + rng.uniform(-0.3, 0.3) * r)
        red = np.array((0.80, 0.10, 0.08), np.float32)
        layer.paint(lambda m: cv2.circle(m, (sx, sy), sr, 1, -1), red)
        layer.paint(lambda m: cv2.circle(m, (sx, sy), sr, 1, outline), black)
        motifs.append("koi" if rng.random() < 0.5 else "sun")
    return motifs


def _draw_trash_polka(rng, layer: _Layer, box, short: int) -> list[str]:
    x0, y0, x1, y1 = box
    size = min(x1 - x0, y1 - y0)
    black = _ink_black(rng)
    red = np.array((0.78, 0.05, 0.05), np.float32) * rng.uniform(0.9, 1.1)
    for _ in range(int(rng.integers(2, 4))):  # heavy black shapes
        kind = rng.integers(3)
        if kind == 0:
            w_, h_ = size * rng.uniform(0.2, 0.5), size * rng.uniform(0.1, 0.3)
            rx, ry = rng.uniform(x0, x1 - w_), rng.uniform(y0, y1 - h_)
            rect = cv2.boxPoints(((rx + w_ / 2, ry + h_ / 2), (w_, h_), float(rng.uniform(-40, 40))))
            layer.paint(lambda m, p=rect: cv2.fillPoly(m, [_pts(p)], 1), black)
        elif kind == 1:
            c = (int(rng.uniform(x0 + size * 0.2, x1 - size * 0.2)), int(rng.uniform(y0 + size * 0.2, y1 - size * 0.2)))
            layer.paint(lambda m, c=c: cv2.circle(m, c, int(size * rng.uniform(0.1, 0.2)), 1, -1), black)
        else:
            curve = _smooth_curve(rng, box, 3)
            layer.paint(lambda m, c=curve: cv2.polylines(m, [_pts(c)], False, 1, max(3, int(size * 0.07))), black)
    # red brush stroke and splatter
    stroke = _smooth_curve(rng, box, 3)
    layer.paint(lambda m: cv2.polylines(m, [_pts(stroke)], False, 1, max(3, int(size * rng.uniform(0.06, 0.12)))), red)
    n = int(rng.integers(15, 40))
    xs, ys = rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)
    radii = np.maximum(1, (rng.pareto(2.5, n) * size * 0.015 + 1)).astype(int)
    for x, y, rad in zip(xs, ys, radii):
        layer.paint(lambda m, c=(int(x), int(y)), rr=int(min(rad, size * 0.08)): cv2.circle(m, c, rr, 1, -1), red)
    return ["skull"] if rng.random() < 0.3 else ["geometric shape"]


STYLE_DRAWERS = {
    "fineline": _draw_fineline,
    "tribal": _draw_tribal,
    "watercolor": _draw_watercolor,
    "traditional": _draw_traditional,
    "japanese": _draw_japanese,
    "trash_polka": _draw_trash_polka,
}
# relative size of a style's box against the skin patch (japanese pieces are large)
STYLE_SCALE = {"japanese": (0.6, 0.9), "tribal": (0.45, 0.75), "fineline": (0.35, 0.6)}


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
