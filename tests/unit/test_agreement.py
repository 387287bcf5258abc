"""Agreement and pre-fill maths on hand-made pairs: mask IoU, Cohen's kappa, image style, region fates."""
import numpy as np
import pytest

from backend.core.workflow.agreement import selected_for_agreement
from backend.core.workflow_stats import cohen_kappa, document_mask, image_style, mask_iou, region_fates, region_iou


def square(x0, y0, x1, y1):
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def test_mask_iou_by_hand():
    a = np.zeros((10, 10), dtype=np.uint8)
    b = np.zeros((10, 10), dtype=np.uint8)
    a[0:4, 0:5] = 255  # 20 pixels
    b[2:6, 0:5] = 255  # 20 pixels, 10 shared
    assert mask_iou(a, b) == pytest.approx(10 / 30)
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, np.zeros_like(a)) == 0.0
    assert mask_iou(np.zeros_like(a), np.zeros_like(a)) == 1.0  # both say "no tattoo": full agreement
    with pytest.raises(ValueError):
        mask_iou(a, np.zeros((5, 5)))


def test_cohen_kappa_two_categories_by_hand():
    # 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    # p_o = 35/50 = 0.7; p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(b, a) == pytest.approx(0.4)


def test_cohen_kappa_three_categories_by_hand():
    a = ["tribal", "tribal", "japanese", "japanese", "fineline", "fineline"]
    b = ["tribal", "japanese", "japanese", "japanese", "fineline", "tribal"]
    # p_o = 4/6; marginals A (2,2,2)/6, B tribal 2, japanese 3, fineline 1 → p_e = (2*2 + 2*3 + 2*1)/36 = 1/3
    assert cohen_kappa(a, b) == pytest.approx((4 / 6 - 1 / 3) / (1 - 1 / 3))


def test_cohen_kappa_edges():
    assert cohen_kappa(["a", "b", "a"], ["a", "b", "a"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["a", "a"], ["a", "a"]) is None  # undefined: one label throughout
    with pytest.raises(ValueError):
        cohen_kappa(["a"], ["a", "b"])


def test_document_mask_scales_large_images_and_keeps_holes():
    ring = [[[0, 0], [2000, 0], [2000, 1000], [0, 1000], [0, 0]], [[500, 250], [1500, 250], [1500, 750], [500, 750], [500, 250]]]
    mask = document_mask([{"geometry": {"type": "Polygon", "coordinates": ring}}], 2000, 1000)
    assert mask.shape == (256, 512)
    inside = (mask > 0).mean()
    assert inside == pytest.approx(0.75, abs=0.01)  # the hole is half of each side: a quarter of the area
    assert not document_mask([], 100, 50).any()
    assert not document_mask([{"geometry": None}, {"id": "x"}], 100, 50).any()


def test_iou_of_two_documents():
    first = [{"geometry": square(0, 0, 40, 40)}]
    second = [{"geometry": square(20, 0, 60, 40)}]
    iou = mask_iou(document_mask(first, 100, 100), document_mask(second, 100, 100))
    assert iou == pytest.approx(800 / 2400, abs=1e-6)


def test_image_style():
    doc = {"regions": [{"geometry": square(0, 0, 10, 10), "style": "tribal"},
                       {"geometry": square(0, 0, 30, 30), "style": "japanese"},
                       {"geometry": square(0, 0, 90, 90), "style": None}],
           "tags": {"styles": ["fineline"]}}
    assert image_style(doc) == "japanese"
    assert image_style({"regions": [], "tags": {"styles": ["fineline"]}}) == "fineline"
    assert image_style({"regions": []}) == "none"


def test_region_fates():
    predicted = [
        {"id": "p1", "geometry": square(0, 0, 20, 20), "style": "tribal"},
        {"id": "p2", "geometry": square(50, 50, 70, 70), "style_probs": {"tribal": 0.2, "japanese": 0.8}},
        {"id": "p3", "geometry": square(80, 0, 95, 15), "style": "fineline"},
        {"geometry": square(0, 80, 20, 100), "style": "watercolor"},
    ]
    final = [
        {"id": "p1", "geometry": square(0, 0, 20, 20), "style": "tribal", "source": "model"},  # kept as suggested
        {"id": "p2", "geometry": square(50, 50, 75, 70), "style": "traditional", "source": "model"},  # edited
        {"id": "h1", "geometry": square(0, 80, 20, 99), "style": "watercolor", "source": "human"},  # redrawn
        {"id": "h2", "geometry": square(30, 30, 40, 40), "style": None, "source": "human"},
    ]
    fates = region_fates(predicted, final)
    assert [f["fate"] for f in fates] == ["unchanged", "edited", "deleted", "edited"]
    assert fates[1]["suggested"] == "japanese" and fates[1]["final_style"] == "traditional"
    assert fates[1]["iou"] == pytest.approx(400 / 500, abs=1e-4)
    assert fates[3]["final_style"] == "watercolor"
    assert region_iou(square(0, 0, 10, 10), square(5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_agreement_sample_is_stable_and_near_the_share():
    import hashlib

    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(20_000)]
    chosen = [h for h in hashes if selected_for_agreement(h, 0.05)]
    assert 0.04 < len(chosen) / len(hashes) < 0.06
    assert chosen == [h for h in hashes if selected_for_agreement(h, 0.05)]
    assert not any(selected_for_agreement(h, 0.0) for h in hashes[:100])
    assert all(selected_for_agreement(h, 1.0) for h in hashes[:100])
