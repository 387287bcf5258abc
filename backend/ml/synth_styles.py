"""The procedural tattoo styles of backend/ml/synth.py: drawing helpers and one drawer a style, each drawing ink
into a layer inside a box and naming its motifs."""
from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np


SATURATED = np.array(
    [(0.80, 0.08, 0.08), (0.95, 0.75, 0.05), (0.05, 0.55, 0.15), (0.05, 0.25, 0.75), (0.85, 0.40, 0.05)],
    dtype=np.float32,
)
WATERCOLOURS = np.array(
    [(0.25, 0.55, 0.95), (0.95, 0.35, 0.65), (0.60, 0.30, 0.90), (0.10, 0.75, 0.70), (0.98, 0.60, 0.15),
     (0.40, 0.85, 0.35)],
    dtype=np.float32,
)


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
