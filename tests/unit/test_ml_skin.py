"""The body a tattoo lies on (backend/ml/skin.py): skin with its ink gaps closed and holes filled, not the clothing
or background around it, less a rim along its outline."""
import cv2
import numpy as np

from backend.ml.mask_ops import fill_holes
from backend.ml.skin import on_body

SKIN = (224, 172, 140)
GREEN = (40, 150, 60)
BLACK = (20, 20, 20)


def _arm_with_tattoo() -> np.ndarray:
    """A skin band (an arm) across a green background, a black sleeve over its right end, a line drawing on it."""
    img = np.full((200, 300, 3), GREEN, np.uint8)
    img[50:150, :] = SKIN
    img[40:160, 240:] = BLACK  # the sleeve: dark, wide, next to the skin
    cv2.circle(img, (120, 100), 30, BLACK, 3)  # the tattoo: line work inside the skin
    cv2.line(img, (95, 100), (145, 100), BLACK, 2)
    return img


def test_the_tattoo_is_on_the_body_and_the_sleeve_and_background_are_not():
    img = _arm_with_tattoo()
    body = on_body(img)
    assert 0.3 < body.skin_share < 0.5
    ys, xs = np.nonzero((img == BLACK).all(axis=2)[:, :240])
    assert body.interior[ys, xs].mean() > 0.95  # the tattoo's ink, gaps in the skin mask, lies inside
    assert not body.interior[:, 250:].any()  # the sleeve
    assert not body.interior[:40].any() and not body.interior[160:].any()  # the background
    assert not body.interior[50:53, 60:200].any()  # the rim along the arm's edge


def test_a_photo_without_skin_has_no_body():
    body = on_body(np.full((120, 160, 3), GREEN, np.uint8))
    assert body.skin_share == 0.0 and not body.interior.any()


def test_fill_holes_fills_only_enclosed_background():
    mask = np.zeros((20, 20), bool)
    mask[2:12, 2:12] = True
    mask[5:8, 5:8] = False  # a hole
    mask[15:, 15:] = True
    filled = fill_holes(mask)
    assert filled[5:8, 5:8].all() and not filled[0, 0] and not filled[13, 13]
    assert not fill_holes(mask, max_area=8)[5:8, 5:8].any()  # a hole of 9 pixels is over the size given
