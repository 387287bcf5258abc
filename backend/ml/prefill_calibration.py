"""Pre-fill settings fitted to how a team boxes its tattoos (issue 21); pure, no torch.

    items = [BoxedImage(prob, rgb, boxes), ...]    # the segmenter's maps at the pre-fill's working resolution
    fit = calibrate_prefill(items, PrefillSettings(threshold=runner.threshold))   # dict, or None: too few images

Annotators box a tattoo as one piece: a line of lettering, a pair of matching ghosts, a sleeve of small flash. How
far apart two blobs of predicted ink may be and still be one tattoo (`group_gap`), and how sure the model must be
of a pixel (`threshold`), decide whether the pre-fill's regions match those boxes; the best values depend on the
model and on the team's photos, not on a constant. Training (backend/ml/train.py) tries each pair of a small grid
on the box-labelled images of its export and keeps the pair whose regions match the boxes best (box AP50 by
pycocotools, regions ranked by prefill.region_score). The probability cut that is best for mask IoU on exact masks
(train.calibrate_threshold) is one of the candidates and wins ties. Then it raises a cut on the region score for
as long as no boxed tattoo that the regions matched is lost: the suggestions an annotator would only delete (small,
doubtful regions) are not made.

Measured with the models of one full bench_real.py run (benchmarks/README.md): fitted on its export's 89
box-labelled photos (202 boxes; the 30 held-out photos are not in the export), the pair went from (0.65, 0.03) to
(0.85, 0.015) and box AP50 on those photos from 0.095 to 0.157; on the held-out photos, from 0.131 to 0.242. The
score cut (0.4) then took the held-out suggestions from 153 to 64, none of the lost ones matching a box. The
model scores no better on its training photos than on unseen ones (their boxes teach it ink, not where one tattoo
ends), which is why the training images serve as well as the validation ones.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from backend.ml.metrics import box_ap50
from backend.ml.prefill import PrefillSettings, body_gate, instance_confidence, prefill_instances

CALIBRATION_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9)
CALIBRATION_GAPS = (0.01, 0.015, 0.02, 0.03, 0.05)  # shares of the image's short side
CALIBRATION_MIN_SCORES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
MIN_BOXED_IMAGES = 8  # fewer box-labelled images than this: the defaults stay
PREFILL_FIT_KEYS = ("threshold", "group_gap", "min_score")  # what the model file keeps (PrefillSettings fields)


@dataclass
class BoxedImage:
    prob: np.ndarray  # float, (h, w), at the pre-fill's working resolution
    rgb: np.ndarray  # uint8, (h, w, 3), the same pixels (for the on-body gate)
    boxes: Sequence[Sequence[float]]  # the human boxes (x0, y0, x1, y1) in those pixels


def _detections(items: Sequence[BoxedImage], gates: list, settings: PrefillSettings) -> dict:
    found = {}
    for i, (item, allowed) in enumerate(zip(items, gates)):
        found[i] = [(inst.bbox, instance_confidence(item.prob, inst)[1])
                    for inst in prefill_instances(item.prob, settings, allowed)]
    return found


def _min_score(truth: dict, found: dict, recall: float) -> tuple[float, int]:
    """The highest region-score cut (of CALIBRATION_MIN_SCORES, else 0) under which no boxed tattoo that the
    regions matched is lost, and how many regions it keeps."""
    chosen, kept = 0.0, sum(len(d) for d in found.values())
    for cut in CALIBRATION_MIN_SCORES:
        above = {k: [(box, score) for box, score in d if score >= cut] for k, d in found.items()}
        if box_ap50(truth, above)[1] < recall - 1e-9:
            break
        chosen, kept = cut, sum(len(d) for d in above.values())
    return chosen, kept


def calibrate_prefill(items: Sequence[BoxedImage], base: PrefillSettings,
                      thresholds: Sequence[float] = CALIBRATION_THRESHOLDS,
                      gaps: Sequence[float] = CALIBRATION_GAPS) -> dict | None:
    """The (threshold, group_gap) whose pre-fill regions match the boxes best, and the min_score under which
    regions are dropped (`_min_score`), with the measurements: a dict of threshold, group_gap, min_score, regions
    and regions_kept (on these images), ap50, recall50, base_ap50 (at `base`'s pair), images, boxes and the grid
    ("threshold/gap" → AP50); None with fewer than MIN_BOXED_IMAGES images."""
    if len(items) < MIN_BOXED_IMAGES:
        return None
    gates = [body_gate(item.rgb, base) for item in items]
    truth = {i: [tuple(map(float, box)) for box in item.boxes] for i, item in enumerate(items)}
    candidates = [(base.threshold, base.group_gap)] + [(t, g) for t in thresholds for g in gaps
                                                        if (t, g) != (base.threshold, base.group_gap)]
    found = {pair: _detections(items, gates, replace(base, threshold=pair[0], group_gap=pair[1]))
             for pair in candidates}
    scores = {pair: box_ap50(truth, found[pair]) for pair in candidates}
    best = max(candidates, key=lambda pair: scores[pair][0])  # max keeps the first of equals: the base pair
    min_score, kept = _min_score(truth, found[best], scores[best][1])
    return {
        "threshold": best[0], "group_gap": best[1], "min_score": min_score,
        "regions": sum(len(d) for d in found[best].values()), "regions_kept": kept,
        "ap50": round(scores[best][0], 4), "recall50": round(scores[best][1], 4),
        "base_ap50": round(scores[candidates[0]][0], 4),
        "images": len(items), "boxes": sum(len(b) for b in truth.values()), "measure": "box_ap50",
        "grid": {f"{t:g}/{g:g}": round(ap, 4) for (t, g), (ap, _) in scores.items()},
    }
