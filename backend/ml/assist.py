"""Ink-aware assist tools (classical image processing, no model weights): each returns a boolean mask.

    grabcut(rgb, box)              GrabCut initialised from the box [x0, y0, x1, y1]
    wand(rgb, points, tolerance)   flood fill in CIE Lab from one or more seed points [[x, y], ...]
    box_ink(rgb, box)              the ink inside a box: darker than the local skin, or coloured unlike it

`box_ink` estimates the skin from a ring just outside the box, scores every pixel by how much darker it is than
the skin around it (a black-hat: closing minus image, which finds lines and dark shapes) and how far its colour is
from the skin's (a, b chroma, which finds colour fields of any lightness), thresholds the score against the skin's
own noise, removes specks morphologically and keeps the holes that line work leaves. Ink parts that mostly lie in
the box are kept even where they run a little past it (human boxes are not pixel exact), so some of the mask can
fall outside the box. `drafts_from_boxes` turns boxes (e.g. a YOLO import) into assist regions to verify.
"""
from __future__ import annotations

import uuid
from typing import Sequence

import cv2
import numpy as np

GRABCUT_MAX_SIDE = 400  # GrabCut runs on the box's neighbourhood scaled to this long side


def _clip_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    a, b = int(np.clip(np.floor(x0), 0, width)), int(np.clip(np.floor(y0), 0, height))
    c, d = int(np.clip(np.ceil(x1), 0, width)), int(np.clip(np.ceil(y1), 0, height))
    if c - a < 2 or d - b < 2:
        raise ValueError("the box must be at least 2×2 pixels inside the image")
    return a, b, c, d


def _expand(box: tuple[int, int, int, int], frac: float, width: int, height: int, minimum: int = 4):
    a, b, c, d = box
    m = max(minimum, int(round(frac * max(c - a, d - b))))
    return max(0, a - m), max(0, b - m), min(width, c + m), min(height, d + m)


def _remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    return keep[labels]


def _fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    holes = ~mask
    n, labels, stats, _ = cv2.connectedComponentsWithStats(holes.astype(np.uint8), connectivity=4)
    h, w = mask.shape
    fill = np.zeros(n, bool)
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        touches_edge = x == 0 or y == 0 or x + bw == w or y + bh == h
        fill[i] = area <= max_area and not touches_edge
    return mask | fill[labels]


# --- GrabCut -----------------------------------------------------------------------------------------------------

def grabcut(rgb: np.ndarray, box: Sequence[float], iterations: int = 4) -> np.ndarray:
    """Foreground of GrabCut initialised with the box as "probably foreground", outside as background."""
    h, w = rgb.shape[:2]
    a, b, c, d = _clip_box(box, w, h)
    wa, wb, wc, wd = _expand((a, b, c, d), 0.15, w, h, minimum=8)
    roi = rgb[wb:wd, wa:wc]
    scale = min(1.0, GRABCUT_MAX_SIDE / max(roi.shape[:2]))
    small = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else roi
    sh, sw = small.shape[:2]
    rx0, ry0 = int((a - wa) * scale), int((b - wb) * scale)
    rx1, ry1 = min(sw, int(np.ceil((c - wa) * scale))), min(sh, int(np.ceil((d - wb) * scale)))
    rect = (rx0, ry0, max(1, rx1 - rx0), max(1, ry1 - ry0))
    gc_mask = np.zeros((sh, sw), np.uint8)
    if rect[2] >= sw - 1 and rect[3] >= sh - 1:  # box covers the whole image: nothing is known background
        gc_mask[:] = cv2.GC_PR_FGD
        gc_mask[[0, -1], :] = cv2.GC_BGD
        gc_mask[:, [0, -1]] = cv2.GC_BGD
        mode, rect = cv2.GC_INIT_WITH_MASK, None
    else:
        mode = cv2.GC_INIT_WITH_RECT
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR)
    try:
        cv2.grabCut(bgr, gc_mask, rect, bgd, fgd, iterations, mode)
    except cv2.error:  # degenerate input (one colour, tiny box): no foreground found
        return np.zeros((h, w), bool)
    fg = ((gc_mask == cv2.GC_FGD) | (gc_mask == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale < 1:
        fg = cv2.resize(fg, (wc - wa, wd - wb), interpolation=cv2.INTER_NEAREST)
    out = np.zeros((h, w), bool)
    out[wb:wd, wa:wc] = fg > 0
    box_only = np.zeros((h, w), bool)
    box_only[b:d, a:c] = True
    return _remove_small(out & box_only, 6)


# --- magic wand --------------------------------------------------------------------------------------------------

def wand(rgb: np.ndarray, points: Sequence[Sequence[float]], tolerance: float = 14.0) -> np.ndarray:
    """Pixels connected to a seed point whose Lab colour is within `tolerance` (per channel, OpenCV's 8-bit Lab
    units) of the seed's colour; the union over all points."""
    h, w = rgb.shape[:2]
    lab = cv2.cvtColor(cv2.medianBlur(np.ascontiguousarray(rgb), 3), cv2.COLOR_RGB2LAB)
    out = np.zeros((h, w), bool)
    tol = (float(tolerance),) * 3
    for point in points:
        x, y = int(np.floor(point[0])), int(np.floor(point[1]))
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"point {list(point)} lies outside the image")
        if out[y, x]:
            continue
        ff = np.zeros((h + 2, w + 2), np.uint8)
        flags = 8 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
        cv2.floodFill(lab, ff, (x, y), (0, 0, 0), tol, tol, flags)
        out |= ff[1:-1, 1:-1] > 0
    return out


# --- ink inside a box --------------------------------------------------------------------------------------------

def ink_score(rgb: np.ndarray, skin_sample: np.ndarray | None = None, kernel: int = 15) -> np.ndarray:
    """How ink-like each pixel is, in units of "clearly ink" (≥ 1): darker than the local skin (black-hat of the
    lightness) or of another chroma than the skin. `skin_sample` is a boolean mask of skin pixels (default: all)."""
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (3, 3), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    L, ab = lab[..., 0], lab[..., 1:]
    sample = skin_sample if skin_sample is not None and skin_sample.sum() >= 16 else np.ones(L.shape, bool)
    skin_L = float(np.median(L[sample]))
    skin_ab = np.median(ab[sample], axis=0)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel))
    closed = cv2.morphologyEx(L, cv2.MORPH_CLOSE, k)
    local_skin = np.minimum(np.maximum(closed, skin_L - 25), skin_L + 40)
    darker = np.maximum(local_skin - L, skin_L - L)  # dark lines (black-hat) and large dark areas
    chroma = np.linalg.norm(ab - skin_ab, axis=2)
    noise_L = float(np.std(L[sample])) if sample.any() else 5.0
    noise_C = float(np.std(np.linalg.norm(ab[sample] - skin_ab, axis=1))) if sample.any() else 3.0
    t_dark = max(18.0, 3.0 * noise_L)
    t_chroma = max(14.0, 3.0 * noise_C)
    return np.maximum(darker / t_dark, chroma / t_chroma)


def box_ink(rgb: np.ndarray, box: Sequence[float], margin: float = 0.1) -> np.ndarray:
    """The ink inside a box (see the module docstring); a mask of the whole image."""
    h, w = rgb.shape[:2]
    a, b, c, d = _clip_box(box, w, h)
    wa, wb, wc, wd = _expand((a, b, c, d), margin, w, h)
    win = np.ascontiguousarray(rgb[wb:wd, wa:wc])
    wh, ww = win.shape[:2]
    inside = np.zeros((wh, ww), bool)
    inside[b - wb:d - wb, a - wa:c - wa] = True
    ring = ~inside
    if ring.sum() < 0.05 * inside.sum():  # box at the image edges: the box's own border band stands in for skin
        band = max(2, int(0.05 * min(c - a, d - b)))
        ring = inside.copy()
        ring[b - wb + band:d - wb - band, a - wa + band:c - wa - band] = False
    short = min(c - a, d - b)
    kernel = int(np.clip(short * 0.25, 9, 151)) | 1
    score = ink_score(win, ring, kernel)
    # the ring may hold ink too: estimate the skin again from the pixels that do not look like ink
    skin = ring & (score < 0.8)
    if skin.sum() >= 16:
        score = ink_score(win, skin, kernel)
    ink = score >= 1.0
    ink = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)) > 0
    box_area = (c - a) * (d - b)
    ink = _remove_small(ink, max(6, int(box_area * 0.0005)))
    ink = _fill_small_holes(ink, max(2, int(box_area * 0.0002)))
    # keep the parts that mostly lie inside the box
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if n > 1:
        inside_counts = np.bincount(labels[inside], minlength=n)
        keep = np.zeros(n, bool)
        keep[1:] = inside_counts[1:] >= 0.5 * stats[1:, cv2.CC_STAT_AREA]
        ink = keep[labels]
    out = np.zeros((h, w), bool)
    out[wb:wd, wa:wc] = ink
    return out


TOOLS = {"grabcut", "wand", "box"}


def run_tool(rgb: np.ndarray, tool: str, box: Sequence[float] | None = None,
             points: Sequence[Sequence[float]] | None = None, tolerance: float | None = None) -> np.ndarray:
    """Dispatch one assist request; ValueError with a readable reason for missing or bad inputs."""
    if tool == "grabcut":
        if box is None:
            raise ValueError("grabcut needs a box [x0, y0, x1, y1]")
        return grabcut(rgb, box)
    if tool == "box":
        if box is None:
            raise ValueError("box needs a box [x0, y0, x1, y1]")
        return box_ink(rgb, box)
    if tool == "wand":
        if not points:
            raise ValueError("wand needs points [[x, y], ...]")
        return wand(rgb, points, 14.0 if tolerance is None else tolerance)
    raise ValueError(f"unknown tool {tool!r}; use grabcut, wand or box")


def drafts_from_boxes(rgb: np.ndarray, boxes: Sequence[Sequence[float]], scale: float = 1.0,
                      styles: Sequence[str | None] | None = None) -> list[dict]:
    """Assist drafts (source "assist") for boxes in `rgb`'s pixels, e.g. from a YOLO import; `scale` maps them to
    the original image's pixels. Boxes where no ink is found give no region. Regions fit save_document."""
    from .prefill import mask_geometry

    out = []
    for i, box in enumerate(boxes):
        try:
            mask = box_ink(rgb, box)
        except ValueError:
            continue
        geometry = mask_geometry(mask, scale)
        if geometry is None:
            continue
        out.append({"id": uuid.uuid4().hex, "geometry": geometry, "style": styles[i] if styles else None,
                    "motifs": [], "source": "assist", "model_version": None, "confidence": None})
    return out
