"""Ink-aware assist tools (classical image processing, no model weights): each returns a boolean mask.

    grabcut(rgb, box)              GrabCut initialised from the box [x0, y0, x1, y1]
    wand(rgb, points, tolerance)   flood fill in CIE Lab from one or more seed points [[x, y], ...]
    box_ink(rgb, box)              the ink inside a box: darker than the local skin, or coloured unlike it

`box_ink` takes the skin to be the most common chroma inside the box (a tattoo rarely covers most of its box),
scores every pixel by how much darker it is than the skin around it (a black-hat: closing minus image, which finds
lines and dark shapes but not soft shadows) and how far its colour is from the skin's (a/b chroma, which finds
colour fields of any lightness) in units of the skin's own variation, splits the box's scores in two (Otsu, within
bounds: a drawn box holds both ink and skin), removes specks
morphologically and keeps the holes that line work leaves. Ink parts that mostly lie in the box are kept even where
they run a little past it (human boxes are not pixel exact), so some of the mask can fall outside the box; parts
that run on past the box's margin are taken for clothing, hair or background and dropped. `drafts_from_boxes` turns boxes (e.g. a YOLO import) into assist regions to verify.
"""
from __future__ import annotations

import uuid
from typing import Sequence

import cv2
import numpy as np

from backend.ml.mask_ops import fill_holes

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
    # GrabCut seeds its colour models with k-means on OpenCV's per-thread random generator: the same box on the
    # same photo must give the same mask whatever ran on this thread before.
    cv2.setRNGSeed(0x1C0FFEE)
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

def _robust_threshold(values: np.ndarray, floor: float, k: float = 4.0) -> float:
    """median + k·MAD of a sample (the skin's own variation), at least `floor`."""
    if values.size < 16:
        return floor
    med = float(np.median(values))
    mad = float(np.median(np.abs(values - med))) * 1.4826
    return max(floor, med + k * mad)


# Skin chroma in OpenCV's 8-bit Lab (a, b offset by 128) lies in an orange-ish band for all skin tones; colours
# outside it (blue water, green, saturated red) can be a tattoo covering most of its box but are not the skin.
SKIN_A = (128.0, 172.0)
SKIN_B = (128.0, 180.0)


def skin_model(lab: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """The skin inside `region`: the most common skin-like chroma (peak of the a/b histogram, weighted towards the
    skin band; a tattoo rarely covers most of the skin around it), its lightness, and the pixels that belong to it."""
    ab = lab[..., 1:][region]
    hist, a_edges, b_edges = np.histogram2d(ab[:, 0], ab[:, 1], bins=32, range=[[0, 256], [0, 256]])
    hist = cv2.GaussianBlur(hist.astype(np.float32), (3, 3), 0)
    ac = (a_edges[:-1] + a_edges[1:]) / 2
    bc = (b_edges[:-1] + b_edges[1:]) / 2
    prior = np.where((ac[:, None] >= SKIN_A[0]) & (ac[:, None] <= SKIN_A[1])
                     & (bc[None, :] >= SKIN_B[0]) & (bc[None, :] <= SKIN_B[1]), 1.0, 0.1)
    ia, ib = np.unravel_index(int(np.argmax(hist * prior)), hist.shape)
    peak = np.array([ac[ia], bc[ib]], np.float32)
    near = np.linalg.norm(lab[..., 1:] - peak, axis=2) < 10
    skin = near & region
    if skin.sum() < 16:
        skin = region
    skin_ab = np.median(lab[..., 1:][skin], axis=0)
    return skin_ab, float(np.median(lab[..., 0][skin])), skin


def ink_score(rgb: np.ndarray, region: np.ndarray | None = None, kernel: int = 15) -> np.ndarray:
    """How ink-like each pixel is, in units of "clearly ink" (≥ 1): darker than the skin around it (black-hat of
    the lightness: closing minus image, which finds lines and dark shapes narrower than `kernel` but not soft
    shadows) or of another chroma than the skin (colour fields of any lightness). Thresholds adapt to the skin's
    own variation inside `region` (default: the whole image)."""
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (3, 3), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    region = np.ones(lab.shape[:2], bool) if region is None else region
    skin_ab, _, skin = skin_model(lab, region)
    L = lab[..., 0]
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel, kernel))
    blackhat = cv2.morphologyEx(L, cv2.MORPH_CLOSE, k) - L
    chroma = np.linalg.norm(lab[..., 1:] - skin_ab, axis=2)
    t_dark = _robust_threshold(blackhat[skin], 18.0)
    t_chroma = _robust_threshold(chroma[skin], 14.0)
    return np.maximum(blackhat / t_dark, chroma / t_chroma)


def _thickness(component: np.ndarray) -> float:
    """Mean width of a shape: 2·area / perimeter (a line of width t gives t, a disc of radius r gives r)."""
    area = int(component.sum())
    eroded = cv2.erode(component.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    perimeter = max(1, area - int(eroded.sum()))
    return 2.0 * area / perimeter


def _edge_labels(labels: np.ndarray, open_sides: tuple[bool, bool, bool, bool]) -> np.ndarray:
    """Labels (not 0) on the window sides that are not the photo's edge (left, top, right, bottom flags)."""
    left, top, right, bottom = open_sides
    edges = [labels[0, :]] if top else []
    edges += [labels[-1, :]] if bottom else []
    edges += [labels[:, 0]] if left else []
    edges += [labels[:, -1]] if right else []
    if not edges:
        return np.zeros(0, np.int32)
    found = np.unique(np.concatenate(edges))
    return found[found != 0]


def _keep_boxed_parts(ink: np.ndarray, inside: np.ndarray, open_sides: tuple[bool, bool, bool, bool],
                      short: int) -> np.ndarray:
    """Keep ink parts that mostly lie inside the box. Parts that run on past the box's margin (touch a window side
    that is not the photo's own edge) are clothing, hair, shadow or background when they are solid; thin line work
    that continues beyond the box (a sleeve) is kept, cut at the box."""
    left, top, right, bottom = open_sides
    # solid areas (what survives an opening wider than line work) that reach past the margin are background:
    # take them out first, so that line work touching them is judged on its own
    k = max(9, int(0.05 * short)) | 1
    solid = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN,
                             cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    ns, slabels = cv2.connectedComponents(solid, connectivity=8)
    if ns > 1:
        touching = _edge_labels(slabels, open_sides)
        if touching.size:
            background = np.isin(slabels, touching)
            ink = ink & ~(cv2.dilate(background.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if n <= 1:
        return ink
    inside_counts = np.bincount(labels[inside], minlength=n)
    keep = np.zeros(n, bool)
    keep[1:] = inside_counts[1:] >= 0.5 * stats[1:, cv2.CC_STAT_AREA]
    out = keep[labels]
    touching = _edge_labels(labels, open_sides)
    if touching.size:
        thin = max(8.0, THIN_SHARE * short)
        for label in touching:
            component = labels == label
            out[component] = False
            if _thickness(component) <= thin:
                out |= component & inside
    return out


# The box's own ink/skin split of the score (Otsu) is kept within these bounds: on real photos (issue 21, training
# split of bench_real_assist.py) the fixed split at 1.0 missed faint and small ink, whose scores sit at 0.5-1 where
# the skin's own variation was overestimated (hair, texture, a window taking in other tattoos), and took in skin
# where it was underestimated; bounds keep a box of plain skin or of solid ink from being split in two.
SPLIT_BOUNDS = (0.5, 2.5)
THIN_SHARE = 0.08  # line work up to this share of the box's short side (at least 8 px) may continue past the box


def _split(values: np.ndarray) -> float:
    """The ink/skin threshold of a box's ink scores: Otsu's (a drawn box holds both), within SPLIT_BOUNDS."""
    scaled = (np.clip(values, 0, 4.0) * 63.75).astype(np.uint8).reshape(1, -1)
    t, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(np.clip(t / 63.75, *SPLIT_BOUNDS))


def box_ink(rgb: np.ndarray, box: Sequence[float], margin: float = 0.1) -> np.ndarray:
    """The ink inside a box (see the module docstring); a mask of the whole image."""
    h, w = rgb.shape[:2]
    a, b, c, d = _clip_box(box, w, h)
    wa, wb, wc, wd = _expand((a, b, c, d), margin, w, h)
    win = np.ascontiguousarray(rgb[wb:wd, wa:wc])
    wh, ww = win.shape[:2]
    inside = np.zeros((wh, ww), bool)
    inside[b - wb:d - wb, a - wa:c - wa] = True
    short = min(c - a, d - b)
    kernel = int(np.clip(short * 0.3, 9, 201)) | 1
    score = ink_score(win, None, kernel)
    ink = score >= _split(score[inside])
    ink = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)) > 0
    box_area = (c - a) * (d - b)
    ink = _remove_small(ink, max(6, int(box_area * 0.0005)))
    ink = fill_holes(ink, max(2, int(box_area * 0.0002)))
    ink = _keep_boxed_parts(ink, inside, (wa > 0, wb > 0, wc < w, wd < h), short)
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
    from backend.ml.prefill import image_mask_geometry

    out = []
    for i, box in enumerate(boxes):
        try:
            mask = box_ink(rgb, box)
        except ValueError:
            continue
        bounds = (rgb.shape[1] * scale, rgb.shape[0] * scale)
        geometry = image_mask_geometry(mask, scale, bounds=bounds)
        if geometry is None:
            continue
        out.append({"id": uuid.uuid4().hex, "geometry": geometry, "style": styles[i] if styles else None,
                    "motifs": [], "source": "assist", "model_version": None, "confidence": None})
    return out
