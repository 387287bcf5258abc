"""The pre-fill fitted to a team's boxes (backend/ml/prefill_calibration.py), the region score it ranks by, and
the box AP50 it measures with (backend/ml/metrics.py, pycocotools)."""
import numpy as np
import pytest

from backend.ml.metrics import box_ap50
from backend.ml.prefill import PrefillSettings, region_score, trace_prefill
from backend.ml.prefill_calibration import MIN_BOXED_IMAGES, BoxedImage, calibrate_prefill


def test_box_ap50_counts_matches_misses_and_ranks_by_score():
    truth = {"a": [(0, 0, 10, 10)], "b": [(0, 0, 10, 10), (50, 50, 60, 60)]}
    perfect = {"a": [((0, 0, 10, 10), 0.9)], "b": [((1, 0, 10, 10), 0.8), ((50, 50, 60, 61), 0.7)]}
    assert box_ap50(truth, perfect) == pytest.approx((1.0, 1.0))
    # a false detection ranked above the true ones costs precision; ranked below them it costs nothing
    false_first = {**perfect, "a": [((30, 30, 40, 40), 0.95), ((0, 0, 10, 10), 0.9)]}
    false_last = {**perfect, "a": [((30, 30, 40, 40), 0.1), ((0, 0, 10, 10), 0.9)]}
    assert box_ap50(truth, false_last)[0] == pytest.approx(1.0)
    assert box_ap50(truth, false_first)[0] < 0.9
    # a box that covers two boxed tattoos matches neither (IoU 0.5 with each is not reached)
    merged = {"a": [((0, 0, 10, 10), 0.9)], "b": [((0, 0, 60, 60), 0.9)]}
    ap, recall = box_ap50(truth, merged)
    assert recall == pytest.approx(1 / 3) and ap < 0.5
    assert box_ap50(truth, {}) == (0.0, 0.0)


def test_region_score_lowers_small_regions_only():
    assert region_score(0.8, 2000, 100_000) == pytest.approx(0.8)  # 2 % of the image: the whole confidence
    assert region_score(0.8, 250, 100_000) == pytest.approx(0.8 * 0.5)  # a quarter of 1 %: half
    assert region_score(0.8, 0, 100_000) == 0.0


def _pair_photo(rng, far: bool):
    """A skin-coloured photo with two ink blobs 20 px apart (one tattoo, boxed as one) or 70 px apart (two tattoos,
    boxed apart); the model's map: the blobs, confident, plus faint noise. (Grouping grows each part by the gap, so
    parts up to twice the gap apart join.)"""
    rgb = np.zeros((200, 200, 3), np.uint8)
    rgb[:] = (205, 150, 125)
    prob = rng.uniform(0.0, 0.3, (200, 200)).astype(np.float32)
    second = 150 if far else 100
    for x0 in (40, second):
        prob[80:120, x0:x0 + 40] = 0.9
        rgb[80:120, x0:x0 + 40] = (40, 40, 50)
    boxes = [(40, 80, 80, 120), (second, 80, second + 40, 120)] if far else [(40, 80, 140, 120)]
    return BoxedImage(prob, rgb, boxes)


@pytest.mark.parametrize("far, gap_ok", [(False, lambda g: 2 * g * 200 >= 20), (True, lambda g: 2 * g * 200 < 70)])
def test_the_fit_groups_as_the_boxes_do(far, gap_ok):
    rng = np.random.default_rng(0)
    items = [_pair_photo(rng, far) for _ in range(MIN_BOXED_IMAGES)]
    fit = calibrate_prefill(items, PrefillSettings(threshold=0.5, group_gap=0.03, on_body=False))
    assert fit["ap50"] == pytest.approx(1.0) and fit["recall50"] == pytest.approx(1.0)
    assert gap_ok(fit["group_gap"]) and 0.3 < fit["threshold"] < 0.9
    assert fit["images"] == MIN_BOXED_IMAGES and fit["boxes"] == MIN_BOXED_IMAGES * (2 if far else 1)
    assert f"{fit['threshold']:g}/{fit['group_gap']:g}" in fit["grid"]


def test_the_base_pair_wins_ties_and_too_few_images_fit_nothing():
    rng = np.random.default_rng(1)
    items = [_pair_photo(rng, far=False) for _ in range(MIN_BOXED_IMAGES)]
    base = PrefillSettings(threshold=0.6, group_gap=0.1, on_body=False)  # not on the grid, and already right
    fit = calibrate_prefill(items, base)
    assert (fit["threshold"], fit["group_gap"]) == (0.6, 0.1) and fit["base_ap50"] == fit["ap50"] == 1.0
    assert calibrate_prefill(items[:MIN_BOXED_IMAGES - 1], base) is None


def test_the_fit_drops_doubtful_specks_that_match_no_box():
    """Small faint blobs (a necklace link, a hem) that match no box: the fit raises the score cut until just before
    a boxed tattoo would be lost, and the pre-fill then does not suggest them."""
    rng = np.random.default_rng(2)
    items = []
    for _ in range(MIN_BOXED_IMAGES):
        item = _pair_photo(rng, far=True)
        item.prob[20:26, 20:26] = 0.55  # 36 px of a 40,000 px image: score 0.55 × sqrt(0.09) ≈ 0.17
        items.append(item)
    fit = calibrate_prefill(items, PrefillSettings(threshold=0.5, group_gap=0.03, on_body=False))
    assert fit["recall50"] == pytest.approx(1.0)
    assert 0.17 < fit["min_score"] <= 0.6 and fit["regions"] == 3 * MIN_BOXED_IMAGES
    assert fit["regions_kept"] == 2 * MIN_BOXED_IMAGES
    settings = PrefillSettings(threshold=fit["threshold"], group_gap=fit["group_gap"], on_body=False)
    assert len(trace_prefill(items[0].prob, settings).regions) == 3
    settings.min_score = fit["min_score"]
    assert len(trace_prefill(items[0].prob, settings).regions) == 2
