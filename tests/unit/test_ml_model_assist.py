"""Model-backed assist (backend/ml/model_assist.py) with a stand-in segmenter whose probability map is known: box
assist keeps the ink in the box and drops dark clothing running past it, clicks pick the tattoo under them."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from backend.ml.model_assist import click_segment, model_box
from backend.ml.synth import generate_image

from ..support.runners import MapRunner


def _iou(a, b):
    a, b = a > 0, b > 0
    return (a & b).sum() / max(1, (a | b).sum())


def _scene():
    sample = generate_image(2, width=320, height=240, styles=["traditional"])
    tattoo = sample.tattoos[0]
    image = sample.image.copy()
    x0, y0, x1, y1 = tattoo.bbox
    # black shorts: a dark solid block from below the box's lower edge into it, running on to the photo's edge,
    # a few pixels of skin away from the ink
    shorts = np.zeros(image.shape[:2], bool)
    shorts[y1 - 6:, max(0, x0 - 20):x1 + 20] = True
    shorts &= ~(cv2.dilate(tattoo.mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    image[shorts] = (25, 25, 30)
    return image, tattoo, shorts


def test_model_box_keeps_ink_and_drops_clothing_past_the_box():
    image, tattoo, shorts = _scene()
    noisy = np.clip(cv2.GaussianBlur(tattoo.mask.astype(np.float32), (0, 0), 1.5) * 0.9 + 0.05, 0, 1)
    noisy[shorts] = 0.8  # the model takes the shorts for ink
    runner = MapRunner(image, noisy)
    x0, y0, x1, y1 = tattoo.bbox
    box = [x0 - 4, y0 - 4, x1 + 4, y1 + 4]
    mask = model_box(image, box, runner)
    assert runner.calls == 1
    assert _iou(mask, tattoo.mask & ~shorts) >= 0.75
    assert not (mask & shorts).sum() > 0.02 * mask.sum()
    inside = np.zeros(mask.shape, bool)
    inside[box[1]:box[3], box[0]:box[2]] = True
    assert not (mask & ~inside).any()


def test_model_box_without_ink_in_the_map_is_none():
    image, tattoo, _ = _scene()
    assert model_box(image, [10, 10, 60, 60], MapRunner(image, np.zeros(image.shape[:2], np.float32))) is None


def _two_tattoos():
    for seed in range(40):
        sample = generate_image(seed, width=360, height=260, styles=["traditional", "tribal"])
        if len(sample.tattoos) == 2:
            return sample
    raise AssertionError("no two-tattoo sample")


def _inside_point(mask):
    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(np.argmax(dist)), mask.shape)
    return [float(x), float(y)]


@pytest.mark.parametrize("with_model", [True, False])
def test_click_picks_the_tattoo_under_the_click(with_model):
    sample = _two_tattoos()
    first, second = sample.tattoos
    runner = MapRunner(sample.image, (sample.mask > 0).astype(np.float32) * 0.9) if with_model else None
    mask = click_segment(sample.image, [_inside_point(first.mask)], [], runner)
    assert _iou(mask, first.mask) >= (0.8 if with_model else 0.5)
    assert (mask & second.mask).sum() < 0.05 * second.mask.sum()


def test_negative_click_removes_a_part():
    sample = _two_tattoos()
    first, second = sample.tattoos
    runner = MapRunner(sample.image, (sample.mask > 0).astype(np.float32) * 0.9)
    both = click_segment(sample.image, [_inside_point(first.mask), _inside_point(second.mask)], [], runner)
    assert (both & second.mask).sum() > 0.5 * second.mask.sum()
    only_first = click_segment(sample.image, [_inside_point(first.mask)], [_inside_point(second.mask)], runner)
    assert (only_first & second.mask).sum() == 0 and (only_first & first.mask).sum() > 0.5 * first.mask.sum()


def test_refining_clicks_reuse_the_first_clicks_probability_map():
    sample = _two_tattoos()
    first, _ = sample.tattoos
    runner = MapRunner(sample.image, (sample.mask > 0).astype(np.float32) * 0.9)
    point = _inside_point(first.mask)
    alone = click_segment(sample.image, [point], [], runner)
    near = [point[0] + 3, point[1] + 2]  # a second click close to the first: the same window
    again = click_segment(sample.image, [point, near], [], runner)
    assert runner.calls == 1 and _iou(again, alone) >= 0.9
    other = sample.image.copy()
    other[0, 0] ^= 0xFF  # another photo (one pixel differs): the model runs again
    click_segment(other, [point], [], runner)
    assert runner.calls == 2


def test_click_outside_the_image_is_refused():
    image = np.zeros((50, 60, 3), np.uint8)
    with pytest.raises(ValueError):
        click_segment(image, [[70, 10]])
    with pytest.raises(ValueError):
        click_segment(image, [])


def test_box_assist_answers_with_the_mask_that_fits_the_box_best():
    from backend.ml.model_assist import box_assist

    image, tattoo, shorts = _scene()
    box = list(tattoo.bbox)
    exact = MapRunner(image, tattoo.mask.astype(np.float32) * 0.9)
    mask, method = box_assist(image, box, exact)
    assert method == "model" and _iou(mask, tattoo.mask) >= 0.8
    plain = generate_image(2, width=320, height=240, styles=["traditional"])
    corner = np.zeros(plain.image.shape[:2], np.float32)
    corner[box[1]:box[1] + 12, box[0]:box[0] + 12] = 0.9  # a model that sees a speck in one corner only
    mask, method = box_assist(plain.image, box, MapRunner(plain.image, corner))
    assert method == "classical" and _iou(mask, plain.tattoos[0].mask) >= 0.7
    assert box_assist(plain.image, box, None)[1] == "classical"
