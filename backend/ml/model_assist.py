"""Assist tools that use the segmenter: box assist from its probability map, and click-to-segment (no Flask).

    model_box(rgb, box, runner)                      the tattoo inside a box, or None when the model sees no ink there
    box_assist(rgb, box, runner)                     (mask, "model" | "classical"): the answer that fits the box best
    click_segment(rgb, positives, negatives, runner) the tattoo under positive clicks, without the negative ones

Both read the model's probability map on a window around the request (the model sees the box or the clicks with
some context, at its own input size, so the cost does not grow with the photo), then refine it with GrabCut
seeded from the map: sure ink where the model is confident, probable ink / probable skin around its threshold, and
(box) sure background outside the box. GrabCut's colour models pull the edge onto the ink.

Skin-aware: the model was trained on ink on skin, and on top of it the parts that run on past the box's margin as
solid areas — dark clothing, hair, shadow next to the skin — are dropped (assist._keep_boxed_parts), as the
classical box assist does; a click's mask keeps only the parts under a positive click and none under a negative one.

Without a model (`runner=None`), click_segment seeds GrabCut from the classical ink score (assist.ink_score) instead
of the probability map; box assist falls back to assist.box_ink at the caller.
"""
from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Sequence

import cv2
import numpy as np

from backend.ml.cache import ModelCache

from backend.ml.assist import _clip_box, _expand, _keep_boxed_parts, _remove_small, ink_score, wand
from backend.ml.mask_ops import fill_holes

BOX_CONTEXT = 0.1  # the model sees the box plus this share of its long side on each side
CLICK_CONTEXT = 0.18  # a click's window: this share of the photo's long side around the clicks (at least)
GRABCUT_SIDE = {"box": 400, "click": 256}
FOCUS_MARGIN = 0.25  # a click's GrabCut sees the likely ink under the clicks plus this share of its size around it
SURE = 0.3  # probability above threshold + SURE: sure ink for GrabCut


# Per runner (weakly: a runner that is gone takes its maps with it): the last windows' probability maps, keyed by
# the photo's digest and the window. An annotator's clicks on one tattoo ask for the same window again (the window
# is anchored on the first click), so only the first click pays for the model's forward pass.
_MAPS: "weakref.WeakKeyDictionary[object, ModelCache]" = weakref.WeakKeyDictionary()
_MAPS_LOCK = threading.Lock()
MAPS_PER_RUNNER = 8


def _digest(rgb: np.ndarray) -> tuple:
    return rgb.shape, hashlib.blake2b(np.ascontiguousarray(rgb).data, digest_size=16).digest()


def window_probability(runner, rgb: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """The segmenter's probability map of one window (x0, y0, x1, y1) of the image, at the window's size (cached:
    see _MAPS; treat it as read-only)."""
    x0, y0, x1, y1 = window

    def predict() -> np.ndarray:
        probs, _ = runner.predict([np.ascontiguousarray(rgb[y0:y1, x0:x1])])
        probs[0].flags.writeable = False
        return probs[0]

    try:
        with _MAPS_LOCK:
            maps = _MAPS.setdefault(runner, ModelCache(MAPS_PER_RUNNER))
    except TypeError:  # a runner that cannot be referenced weakly: no cache
        return predict()
    return maps.get((_digest(rgb), tuple(int(v) for v in window)), predict)


def _grabcut_from_prob(win: np.ndarray, prob: np.ndarray, threshold: float, allowed: np.ndarray | None,
                       fg_seeds: np.ndarray | None, bg_seeds: np.ndarray | None, max_side: int,
                       iterations: int = 2) -> np.ndarray:
    """GrabCut on `win` initialised from a probability map (see the module docstring); a boolean mask of `win`."""
    h, w = prob.shape
    gc = np.where(prob >= threshold, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    gc[prob >= min(0.95, threshold + SURE)] = cv2.GC_FGD
    if allowed is not None:
        gc[~allowed] = cv2.GC_BGD
    if bg_seeds is not None:
        gc[bg_seeds] = cv2.GC_BGD
    if fg_seeds is not None:
        gc[fg_seeds] = cv2.GC_FGD
    fallback = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    is_fg = fallback
    if is_fg.all() or not is_fg.any():
        return fallback
    scale = min(1.0, max_side / max(h, w))
    if scale < 1:
        small = cv2.resize(win, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gc_small = cv2.resize(gc, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_NEAREST)
    else:
        small, gc_small = win, gc.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0x1C0FFEE)  # deterministic k-means seeding (see assist.grabcut)
    try:
        cv2.grabCut(cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2BGR), gc_small, None, bgd, fgd,
                    iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # one colour only, or a class without samples: keep the map's own answer
        return fallback
    fg = ((gc_small == cv2.GC_FGD) | (gc_small == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale < 1:
        fg = cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST)
    return fg > 0


def model_box(rgb: np.ndarray, box: Sequence[float], runner, refine: bool = True) -> np.ndarray | None:
    """The tattoo inside `box` [x0, y0, x1, y1] from the model (a mask of the whole image, inside the box), or None
    when the model finds no ink in the box (the caller then uses the classical assist)."""
    h, w = rgb.shape[:2]
    a, b, c, d = _clip_box(box, w, h)
    wa, wb, wc, wd = _expand((a, b, c, d), BOX_CONTEXT, w, h)
    win = np.ascontiguousarray(rgb[wb:wd, wa:wc])
    prob = window_probability(runner, rgb, (wa, wb, wc, wd))
    inside = np.zeros(prob.shape, bool)
    inside[b - wb:d - wb, a - wa:c - wa] = True
    threshold = float(getattr(runner, "threshold", 0.5))
    if not (prob[inside] >= threshold).any():
        return None
    if refine:
        # GrabCut sees the whole window (nothing forced to background), so that a part that runs on past the box
        # reaches the window's side and is judged by _keep_boxed_parts
        mask = _grabcut_from_prob(win, prob, threshold, None, None, None, GRABCUT_SIDE["box"])
    else:
        mask = prob >= threshold
    short = min(c - a, d - b)
    mask = _keep_boxed_parts(mask, inside, (wa > 0, wb > 0, wc < w, wd < h), short) & inside
    area = (c - a) * (d - b)
    mask = fill_holes(_remove_small(mask, max(6, int(area * 0.0005))), max(2, int(area * 0.0002)))
    if not mask.any():
        return None
    out = np.zeros((h, w), bool)
    out[wb:wd, wa:wc] = mask
    return out


def box_area(shape: tuple[int, int], box: Sequence[float]) -> np.ndarray:
    """The pixels of a box [x0, y0, x1, y1] (rounded outwards) in an image of `shape` (h, w)."""
    out = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    out[max(0, int(y0)):max(0, int(np.ceil(y1))), max(0, int(x0)):max(0, int(np.ceil(x1)))] = True
    return out


def _fit(mask: np.ndarray, box: Sequence[float]) -> float:
    """IoU of a mask's bounding box with the drawn box (0 for an empty mask)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return 0.0
    x0, y0, x1, y1 = box
    ix = max(0.0, min(x1, xs.max() + 1) - max(x0, xs.min()))
    iy = max(0.0, min(y1, ys.max() + 1) - max(y0, ys.min()))
    inter = ix * iy
    union = (x1 - x0) * (y1 - y0) + (xs.max() + 1 - xs.min()) * (ys.max() + 1 - ys.min()) - inter
    return inter / union if union > 0 else 0.0


def box_assist(rgb: np.ndarray, box: Sequence[float], runner=None) -> tuple[np.ndarray, str]:
    """Box assist as the API answers it: the model's mask (model_box) and the model-free one (assist.box_ink), both
    inside the box, and of the two the one whose bounding box fits the drawn box best — a box is drawn tight around
    the tattoo, so a mask that leaves much of it empty has missed ink or taken in something else. Without a runner,
    or when the model sees no ink in the box, the model-free answer."""
    from backend.ml.assist import box_ink

    inside = box_area(rgb.shape[:2], box)
    classical = box_ink(rgb, box) & inside
    model = model_box(rgb, box, runner) if runner is not None else None
    if model is not None and _fit(model, box) >= _fit(classical, box):
        return model, "model"
    return classical, "classical"


def _discs(shape: tuple[int, int], points, origin: tuple[int, int], radius: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for x, y in points:
        cv2.circle(out, (int(x - origin[0]), int(y - origin[1])), radius, 1, -1)
    return out > 0


def _around(width: int, height: int, points) -> tuple[int, int, int, int]:
    pts = np.asarray(points, np.float64)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    pad = max(CLICK_CONTEXT * max(width, height), 0.35 * max(x1 - x0, y1 - y0))
    return (int(max(0, x0 - pad)), int(max(0, y0 - pad)), int(min(width, np.ceil(x1 + pad))),
            int(min(height, np.ceil(y1 + pad))))


def click_window(width: int, height: int, positives, negatives=()) -> tuple[int, int, int, int]:
    """The window the clicks are answered in: around the first positive click while the others fall well inside it
    (so that refining clicks reuse its probability map), else around all of them."""
    first = _around(width, height, list(positives)[:1])
    x0, y0, x1, y1 = first
    edge = 0.1 * max(x1 - x0, y1 - y0)  # room around a click, except on the photo's own sides
    lo_x, lo_y = x0 + (edge if x0 > 0 else 0), y0 + (edge if y0 > 0 else 0)
    hi_x, hi_y = x1 - (edge if x1 < width else 0), y1 - (edge if y1 < height else 0)
    if all(lo_x <= x <= hi_x and lo_y <= y <= hi_y for x, y in list(positives) + list(negatives)):
        return first
    return _around(width, height, list(positives) + list(negatives))


def _focus(likely: np.ndarray, pos: np.ndarray) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) of the window worth refining: the likely ink connected to the positive clicks (only that
    is kept in the end) with a margin for GrabCut to move its edge, so its cost follows the tattoo's size, not the
    window's."""
    n, labels = cv2.connectedComponents((likely | pos).astype(np.uint8), connectivity=8)
    under = np.isin(labels, np.unique(labels[pos])) & (labels > 0)
    ys, xs = np.nonzero(under)
    h, w = likely.shape
    if not len(xs):
        return 0, 0, h, w
    m = max(8, int(FOCUS_MARGIN * max(xs.max() - xs.min(), ys.max() - ys.min())))
    return max(0, ys.min() - m), max(0, xs.min() - m), min(h, ys.max() + 1 + m), min(w, xs.max() + 1 + m)


def click_segment(rgb: np.ndarray, positives: Sequence[Sequence[float]], negatives: Sequence[Sequence[float]] = (),
                  runner=None) -> np.ndarray:
    """The tattoo under the positive clicks and not under the negative ones (a mask of the whole image; empty
    when nothing ink-like is found there). With a runner the model's map seeds GrabCut, else the ink score."""
    h, w = rgb.shape[:2]
    if not positives:
        raise ValueError("click needs at least one positive point")
    for x, y in list(positives) + list(negatives):
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"point [{x}, {y}] lies outside the image")
    x0, y0, x1, y1 = click_window(w, h, positives, negatives)
    win = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    if runner is not None:
        prob, threshold = window_probability(runner, rgb, (x0, y0, x1, y1)), float(runner.threshold)
    else:
        prob, threshold = np.clip(ink_score(win, kernel=15) * 0.5, 0, 1), 0.5
    radius = max(2, int(0.006 * max(w, h)))
    pos = _discs(prob.shape, positives, (x0, y0), radius)
    neg = _discs(prob.shape, negatives, (x0, y0), radius) & ~pos
    fy0, fx0, fy1, fx1 = _focus(prob >= threshold, pos)
    mask = np.zeros(prob.shape, bool)
    mask[fy0:fy1, fx0:fx1] = _grabcut_from_prob(win[fy0:fy1, fx0:fx1], prob[fy0:fy1, fx0:fx1], threshold, None,
                                                 pos[fy0:fy1, fx0:fx1], neg[fy0:fy1, fx0:fx1], GRABCUT_SIDE["click"])
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    wanted = set(np.unique(labels[pos & mask]).tolist()) - {0}
    unwanted = set(np.unique(labels[neg & mask]).tolist()) - {0}
    keep = np.zeros(n, bool)
    keep[list(wanted - unwanted)] = True
    mask = keep[labels]
    if not mask.any():  # nothing ink-like under the click: the classical wand from the clicked colour
        mask = wand(win, [(x - x0, y - y0) for x, y in positives]) & ~neg
    out = np.zeros((h, w), bool)
    out[y0:y1, x0:x1] = _remove_small(mask, 6)
    return out
