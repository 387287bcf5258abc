"""Active-learning scores from model outputs: pure numpy, no Flask, no torch.

The pre-fill stores `combined_score(segmentation_uncertainty(prob), margins)` in `Prediction.uncertainty` and the
encoder embedding in `Prediction.embedding`; the scores job (backend/jobs/scores.py) turns those into ImageScore
rows, using `k_center_greedy` for the diversity strategy.

Segmentation uncertainty of a tattoo probability map `p` (H×W, values in [0, 1]):

    entropy(p)      = binary entropy in bits, 0 (certain) … 1 (p = 0.5)
    region of interest (ROI) = predicted tattoo (p ≥ 0.5) ∪ a band of ±r pixels around its boundary ∪ the
                               uncertain pixels; r = 5 % of √(tattoo pixels), at least 1 — it scales with the
                               tattoo, not the photo, so the score does not depend on how much skin surrounds it
    roi_entropy     = mean entropy over the ROI (0 when the ROI is empty)
    uncertain_share = share of ALL pixels whose entropy ≥ 0.5 bit (0.11 < p < 0.89)
    score           = 0.6 · roi_entropy + 0.4 · min(1, 4 · uncertain_share)

Averaging over the ROI instead of the whole image keeps a large confident background from diluting an unsure
tattoo, and a blank photo with a confident background scores ~0 (empty ROI, no uncertain pixels). A photo where the
model is unsure everywhere (p ≈ 0.5 all over) scores high even when nothing crosses the threshold.

Combined score with the style classifier (`margins` = top-1 minus top-2 probability of each predicted region):

    classification = 1 − mean(margins)           (None when there are no regions)
    score          = 0.7 · segmentation + 0.3 · classification   (= segmentation when classification is None)

All scores lie in [0, 1]; higher means "more worth labelling".
"""
from __future__ import annotations

from typing import Iterable, Optional

import cv2
import numpy as np

EPS = 1e-6
UNCERTAIN_BITS = 0.5  # a pixel is "uncertain" when its entropy is at least this (0.11 < p < 0.89)
BAND_FRACTION = 0.05  # boundary band half-width, as a share of √(predicted tattoo area)
MAX_SIDE = 512  # larger maps are strided down first: the means do not need every pixel
SEG_WEIGHTS = (0.6, 0.4)  # roi_entropy, uncertain_share term
COMBINED_WEIGHTS = (0.7, 0.3)  # segmentation, classification


def binary_entropy(prob: np.ndarray) -> np.ndarray:
    """Entropy in bits of a Bernoulli(p) per pixel."""
    p = np.clip(np.asarray(prob, dtype=np.float64), EPS, 1.0 - EPS)
    return -(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p))


def boundary_band(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within `radius` (Chebyshev distance) of the mask's boundary, on both sides. The image's edge is not
    a boundary: OpenCV's default border leaves dilation and erosion unaffected by the outside."""
    mask = np.asarray(mask, dtype=bool)
    if radius <= 0:
        return np.zeros_like(mask)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    m = np.ascontiguousarray(mask).view(np.uint8)
    return cv2.dilate(m, kernel).astype(bool) & ~cv2.erode(m, kernel).astype(bool)


def _as_prob_map(prob) -> np.ndarray:
    arr = np.asarray(prob, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"expected an H×W probability map, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("the probability map holds NaN or infinite values")
    if arr.min() < -EPS or arr.max() > 1.0 + EPS:
        raise ValueError("probabilities must lie in [0, 1] (apply the sigmoid first)")
    step = int(np.ceil(max(arr.shape) / MAX_SIDE))
    return arr[::step, ::step] if step > 1 else arr


def segmentation_uncertainty(prob: np.ndarray, threshold: float = 0.5) -> dict:
    """Uncertainty of one tattoo probability map (H×W in [0, 1]); see the module docstring for the formula.

    Returns {"roi_entropy", "uncertain_share", "tattoo_share", "roi_share", "score"} — plain floats in [0, 1].
    """
    p = _as_prob_map(prob)
    entropy = binary_entropy(p)
    tattoo = p >= threshold
    uncertain = entropy >= UNCERTAIN_BITS
    radius = max(1, int(round(BAND_FRACTION * np.sqrt(tattoo.sum()))))
    roi = tattoo | uncertain
    if tattoo.any():
        roi |= boundary_band(tattoo, radius)
    roi_entropy = float(entropy[roi].mean()) if roi.any() else 0.0
    uncertain_share = float(uncertain.mean())
    w_roi, w_share = SEG_WEIGHTS
    score = w_roi * roi_entropy + w_share * min(1.0, 4.0 * uncertain_share)
    return {
        "roi_entropy": round(roi_entropy, 6),
        "uncertain_share": round(uncertain_share, 6),
        "tattoo_share": round(float(tattoo.mean()), 6),
        "roi_share": round(float(roi.mean()), 6),
        "score": round(float(min(1.0, max(0.0, score))), 6),
    }


def classification_margin(probs: np.ndarray) -> float:
    """Top-1 minus top-2 class probability (1 = sure, 0 = a tie). One class: its probability; none: 1.0."""
    arr = np.asarray(probs, dtype=np.float64).ravel()
    if arr.size == 0:
        return 1.0
    if not np.all(np.isfinite(arr)):
        raise ValueError("class probabilities hold NaN or infinite values")
    if arr.size == 1:
        return float(np.clip(arr[0], 0.0, 1.0))
    top2 = np.partition(arr, -2)[-2:]
    return float(np.clip(top2[1] - top2[0], 0.0, 1.0))


def combined_score(seg: dict, margins: Iterable[float] = ()) -> dict:
    """One score from the segmentation uncertainty dict and the classifier margins of the image's regions.

    Returns the segmentation parts plus {"segmentation", "classification", "min_margin", "regions", "score"}.
    """
    margins = [float(m) for m in margins]
    if any(not np.isfinite(m) for m in margins):
        raise ValueError("margins must be finite numbers")
    seg_score = float(seg["score"])
    out = {k: v for k, v in seg.items() if k != "score"}
    out["segmentation"] = round(seg_score, 6)
    if margins:
        classification = 1.0 - float(np.mean(np.clip(margins, 0.0, 1.0)))
        w_seg, w_cls = COMBINED_WEIGHTS
        score = w_seg * seg_score + w_cls * classification
        out["classification"] = round(classification, 6)
        out["min_margin"] = round(float(min(margins)), 6)
    else:
        score = seg_score
        out["classification"] = None
        out["min_margin"] = None
    out["regions"] = len(margins)
    out["score"] = round(float(min(1.0, max(0.0, score))), 6)
    return out


def k_center_greedy(embeddings: np.ndarray, k: int, already_selected: Optional[Iterable[int]] = None) -> list[int]:
    """Pick up to `k` new rows of `embeddings` (N×D), each the farthest (L2) from everything picked so far.

    `already_selected` are row indices that count as picked (e.g. labelled images) but are not returned. With
    nothing selected the first pick is row 0 — callers pass candidates best-first (most uncertain first), so the
    batch starts with the most uncertain image. Ties go to the lower index; the result is deterministic.
    """
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an N×D embedding matrix, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings hold NaN or infinite values")
    n = x.shape[0]
    chosen = sorted({int(i) for i in (already_selected or ())})
    if any(i < 0 or i >= n for i in chosen):
        raise ValueError("already_selected holds an index outside the embedding matrix")
    k = max(0, min(int(k), n - len(chosen)))
    if k == 0:
        return []
    min_dist = np.full(n, np.inf)
    taken = np.zeros(n, dtype=bool)

    def add(index: int) -> None:
        taken[index] = True
        d = np.sqrt(((x - x[index]) ** 2).sum(axis=1))
        np.minimum(min_dist, d, out=min_dist)

    for i in chosen:
        add(i)
    picks: list[int] = []
    if not chosen:
        picks.append(0)
        add(0)
    while len(picks) < k:
        dist = np.where(taken, -1.0, min_dist)
        nxt = int(np.argmax(dist))  # argmax returns the first (lowest) index among ties
        picks.append(nxt)
        add(nxt)
    return picks
