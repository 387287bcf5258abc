"""Learning masks from boxes: the losses of box-supervised segmentation, and the box side of the data pipeline.

Method: BoxInst (Z. Tian, C. Shen, X. Wang, H. Chen, "BoxInst: High-Performance Instance Segmentation with Box
Annotations", CVPR 2021, arXiv:2012.02310), adapted from instance masks to this tool's one-channel tattoo mask:

- **Projection term.** A tattoo touches every row and every column of its box (the box is tight), so the maximum
  of the mask probability along each column of the box, and along each row, should be 1. BoxInst compares the
  projections of mask and box with the Dice loss; inside the box the box's projection is all ones, so the term is
  ``dice(max over rows of P[box], 1) + dice(max over columns of P[box], 1)`` per box, averaged over boxes.
- **Pairwise colour-affinity term.** Neighbouring pixels of similar colour (in CIE Lab) most likely share a label:
  for each pixel in a box and its 8 neighbours at dilation 2, where the colour similarity
  ``exp(-||lab_i - lab_j|| / 2)`` is at least 0.3, minimise ``-log(P_i P_j + (1 - P_i)(1 - P_j))``. This is what
  pulls the mask to the ink's edges instead of filling the box. Computed at half the input resolution, as BoxInst
  does on its lower-resolution mask output.
- **Background outside the boxes.** An image whose tattoos are all boxed (the annotator boxed every tattoo) has no
  tattoo outside its boxes: those pixels are ordinary background pixels of the mask losses (binary cross-entropy +
  Dice on the pixels whose label is known). Mask-labelled images are known everywhere; a box next to a mask (an
  image with both) is unknown only inside the box and outside the masks.

Mask- and box-labelled images train together in one batch: every image contributes the known-pixel terms, boxed
images add the projection and pairwise terms. No Flask here.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from backend.ml.transforms import _colour_jitter, _geometric

MAX_BOXES = 24  # boxes per image kept for the projection term (more are rare; the rest still mark "unknown")
PAIRWISE_DILATION = 2
PAIRWISE_THRESHOLD = 0.3
PAIRWISE_WEIGHT = 1.0
PROJECTION_WEIGHT = 1.0


# --- data side -------------------------------------------------------------------------------------------------------


def letterbox_boxes(boxes, lb) -> list[tuple[int, int, int, int]]:
    """Image-pixel boxes (x0, y0, x1, y1) in letterbox canvas pixels (rounded outwards, at least one pixel)."""
    out = []
    for x0, y0, x1, y1 in boxes:
        cx0 = int(np.floor(x0 * lb.scale + lb.pad_x))
        cy0 = int(np.floor(y0 * lb.scale + lb.pad_y))
        cx1 = max(cx0 + 1, int(np.ceil(x1 * lb.scale + lb.pad_x)))
        cy1 = max(cy0 + 1, int(np.ceil(y1 * lb.scale + lb.pad_y)))
        out.append((max(0, cx0), max(0, cy0), min(lb.size, cx1), min(lb.size, cy1)))
    return out


def known_map(mask: np.ndarray, boxes) -> np.ndarray:
    """1 where the label is known: everywhere, except inside boxes where there is no mask (uint8 0/1)."""
    known = np.ones(mask.shape, np.uint8)
    for x0, y0, x1, y1 in boxes:
        known[y0:y1, x0:x1] = 0
    known[mask > 0] = 1
    return known


def _box_channels(boxes, size: int) -> list[np.ndarray]:
    channels = []
    for x0, y0, x1, y1 in boxes[:MAX_BOXES]:
        c = np.zeros((size, size), np.uint8)
        c[y0:y1, x0:x1] = 1
        channels.append(c)
    return channels


def _boxes_of(channels: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    out = []
    for c in channels:
        ys = np.flatnonzero(c.any(axis=1))
        xs = np.flatnonzero(c.any(axis=0))
        if len(xs) >= 2 and len(ys) >= 2:  # a box cut down to a sliver by the crop teaches nothing
            out.append((int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1))
    return out


def augment_boxed(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, known: np.ndarray, boxes):
    """augment_pair's geometry (crop-zoom, flips, 90° turns) applied to image, mask, known map and every box alike;
    the boxes come back as the bounding rectangles of where they went (exact: these moves keep rectangles)."""
    channels = _box_channels(boxes, image.shape[0])
    arrays = _geometric(rng, [image, mask, known, *channels], (0.6, 1.0))
    image, mask, known, channels = arrays[0], arrays[1], arrays[2], arrays[3:]
    return _colour_jitter(rng, image, hue=8), mask, known, _boxes_of(channels)


def lab_of(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 CIE Lab with L in 0..100 and a, b around 0 (OpenCV's 8-bit Lab rescaled)."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return lab


def pack_boxes(boxes) -> torch.Tensor:
    """(MAX_BOXES, 4) int32, rows of -1 after the last box (so a batch stacks)."""
    out = torch.full((MAX_BOXES, 4), -1, dtype=torch.int32)
    for i, b in enumerate(boxes[:MAX_BOXES]):
        out[i] = torch.tensor(b, dtype=torch.int32)
    return out


# --- losses ----------------------------------------------------------------------------------------------------------


def known_pixel_loss(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy + soft Dice over the pixels whose label is known (N×1×H×W tensors, target/known 0/1)."""
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=known, reduction="sum") / known.sum().clamp(min=1)
    prob = torch.sigmoid(logits) * known
    inter = (prob * target).sum(dim=(1, 2, 3))
    denom = prob.sum(dim=(1, 2, 3)) + (target * known).sum(dim=(1, 2, 3))
    dice = 1 - (2 * inter + 1) / (denom + 1)
    return bce + dice.mean()


def _dice_to_ones(values: torch.Tensor) -> torch.Tensor:
    # BoxInst's Dice: 1 - 2 sum(a b) / (sum(a^2) + sum(b^2)), with b = 1
    return 1 - 2 * values.sum() / (values.pow(2).sum() + values.numel() + 1e-6)


def projection_loss(prob: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """BoxInst's projection term, averaged over the boxes of the batch (prob N×1×H×W, boxes N×B×4 with -1 rows)."""
    terms = []
    for n in range(prob.shape[0]):
        for x0, y0, x1, y1 in boxes[n].tolist():
            if x0 < 0 or x1 <= x0 or y1 <= y0:
                continue
            window = prob[n, 0, y0:y1, x0:x1]
            terms.append(_dice_to_ones(window.amax(dim=0)) + _dice_to_ones(window.amax(dim=1)))
    if not terms:
        return prob.sum() * 0
    return torch.stack(terms).mean()


def _neighbours(x: torch.Tensor, dilation: int) -> torch.Tensor:
    """N×C×H×W -> N×C×8×H×W: each pixel's 8 neighbours at `dilation` (edges padded by replication)."""
    n, c, h, w = x.shape
    d = dilation
    padded = F.pad(x, (d, d, d, d), mode="replicate")
    shifts = [(dy, dx) for dy in (-d, 0, d) for dx in (-d, 0, d) if (dy, dx) != (0, 0)]
    return torch.stack([padded[:, :, d + dy:d + dy + h, d + dx:d + dx + w] for dy, dx in shifts], dim=2)


def pairwise_loss(logits: torch.Tensor, lab: torch.Tensor, in_box: torch.Tensor) -> torch.Tensor:
    """BoxInst's pairwise term at half resolution. logits N×1×H×W, lab N×3×H×W (float Lab), in_box N×1×H×W 0/1."""
    logits = F.avg_pool2d(logits, 2)
    lab = F.avg_pool2d(lab, 2)
    in_box = F.max_pool2d(in_box, 2)
    similarity = torch.exp(-(lab.unsqueeze(2) - _neighbours(lab, PAIRWISE_DILATION)).norm(dim=1) * 0.5)  # N×8×h×w
    weight = (similarity >= PAIRWISE_THRESHOLD).float() * in_box  # in_box broadcasts over the 8 neighbours
    if float(weight.sum()) == 0:
        return logits.sum() * 0
    log_fg = F.logsigmoid(logits)
    log_bg = F.logsigmoid(-logits)
    nb_fg = _neighbours(log_fg, PAIRWISE_DILATION)[:, 0]
    nb_bg = _neighbours(log_bg, PAIRWISE_DILATION)[:, 0]
    log_same = torch.logaddexp(log_fg + nb_fg, log_bg + nb_bg)  # log P(both ink or both not)
    return -(log_same * weight).sum() / weight.sum()


def box_supervised_loss(logits: torch.Tensor, target: torch.Tensor, known: torch.Tensor, boxes: torch.Tensor,
                        lab: torch.Tensor, pairwise_weight: float = PAIRWISE_WEIGHT) -> tuple[torch.Tensor, dict]:
    """The whole training loss of a mixed batch, and its parts (floats, for the log)."""
    base = known_pixel_loss(logits, target, known)
    if not bool((boxes[..., 0] >= 0).any()):
        return base, {"mask": float(base.detach())}
    prob = torch.sigmoid(logits)
    proj = projection_loss(prob, boxes)
    in_box = (1 - known).clamp(min=0)  # inside boxes and not already known as mask
    pair = pairwise_loss(logits, lab, in_box)
    total = base + PROJECTION_WEIGHT * proj + pairwise_weight * pair
    return total, {"mask": float(base.detach()), "projection": float(proj.detach()), "pairwise": float(pair.detach())}


def box_fill_iou(pred: np.ndarray, boxes) -> tuple[int, int]:
    """Validation on box-labelled images: (intersection, union) of the union of the boxes with the union of the
    bounding rectangles of the predicted mask's connected parts (what a box annotator would have drawn)."""
    truth = np.zeros(pred.shape, bool)
    for x0, y0, x1, y1 in boxes:
        truth[y0:y1, x0:x1] = True
    filled = np.zeros(pred.shape, bool)
    n, _, stats, _ = cv2.connectedComponentsWithStats(pred.astype(np.uint8), connectivity=8)
    for x, y, w, h, area in stats[1:n]:
        if area >= 4:
            filled[y:y + h, x:x + w] = True
    return int(np.count_nonzero(truth & filled)), int(np.count_nonzero(truth | filled))
