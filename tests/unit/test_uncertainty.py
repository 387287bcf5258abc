"""backend.ml.uncertainty: segmentation entropy, classifier margins, the combined score, k-center greedy."""
import numpy as np
import pytest

from backend.ml.uncertainty import (
    binary_entropy,
    boundary_band,
    classification_margin,
    combined_score,
    k_center_greedy,
    segmentation_uncertainty,
)

SIZE = 96


def _maps():
    blank = np.full((SIZE, SIZE), 0.01)
    confident = blank.copy()
    confident[24:72, 24:72] = 0.99
    soft_edges = confident.copy()
    soft_edges[20:28, 20:76] = 0.5  # a confident tattoo whose top edge the model is unsure about
    unsure = blank.copy()
    unsure[24:72, 24:72] = 0.6
    fog = np.full((SIZE, SIZE), 0.45)  # nothing crosses 0.5, the model is unsure everywhere
    return {"blank": blank, "confident": confident, "soft_edges": soft_edges, "unsure": unsure, "fog": fog}


def test_entropy_bounds():
    e = binary_entropy(np.array([0.0, 0.5, 1.0, 0.11]))
    assert e[0] < 1e-4 and e[2] < 1e-4 and abs(e[1] - 1.0) < 1e-9 and 0.49 < e[3] < 0.51


def test_blank_confident_image_is_the_least_uncertain():
    scores = {name: segmentation_uncertainty(m)["score"] for name, m in _maps().items()}
    assert scores["blank"] == min(scores.values()) and scores["blank"] < 0.01
    assert scores["confident"] < scores["soft_edges"] < scores["unsure"]
    assert scores["fog"] > 0.9  # unsure everywhere is very uncertain even with nothing predicted
    assert all(0.0 <= s <= 1.0 for s in scores.values())


def test_score_is_not_diluted_by_a_large_confident_background():
    small = np.full((400, 400), 0.01)
    small[190:210, 190:210] = 0.6
    large = np.full((60, 60), 0.01)
    large[20:40, 20:40] = 0.6
    a, b = segmentation_uncertainty(small), segmentation_uncertainty(large)
    # Same unsure tattoo; ROI entropy does not care how much confident skin surrounds it.
    assert abs(a["roi_entropy"] - b["roi_entropy"]) < 0.15 and a["roi_entropy"] > 0.5
    assert a["uncertain_share"] < b["uncertain_share"]


def test_parts_and_large_maps_are_strided():
    m = np.full((2000, 1000), 0.01)
    m[500:1500, 250:750] = 0.99
    out = segmentation_uncertainty(m)
    assert set(out) == {"roi_entropy", "uncertain_share", "tattoo_share", "roi_share", "score"}
    assert abs(out["tattoo_share"] - 0.25) < 0.01
    assert segmentation_uncertainty(m[None])["score"] == out["score"]  # a 1×H×W map is accepted


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.zeros(5), np.full((4, 4), np.nan), np.full((4, 4), 2.0),
                                 np.full((4, 4), -0.5)])
def test_bad_probability_maps_are_refused(bad):
    with pytest.raises(ValueError):
        segmentation_uncertainty(bad)


def test_boundary_band_both_sides():
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:15, 5:15] = True
    band = boundary_band(mask, 2)
    assert band[5, 10] and band[3, 10] and band[6, 10] and not band[10, 10] and not band[0, 10]
    assert not band[2, 10] and band[16, 10] and not band[17, 10]
    full = np.ones((8, 8), dtype=bool)
    assert not boundary_band(full, 2).any()  # the image border is not a tattoo boundary


def test_classification_margin():
    assert classification_margin([0.7, 0.2, 0.1]) == pytest.approx(0.5)
    assert classification_margin(np.array([0.34, 0.33, 0.33])) == pytest.approx(0.01)
    assert classification_margin([0.5, 0.5]) == 0.0
    assert classification_margin([0.9]) == pytest.approx(0.9)
    assert classification_margin([]) == 1.0
    with pytest.raises(ValueError):
        classification_margin([0.5, float("nan")])


def test_combined_score_formula():
    seg = segmentation_uncertainty(_maps()["unsure"])
    alone = combined_score(seg, [])
    assert alone["score"] == seg["score"] and alone["classification"] is None and alone["regions"] == 0
    both = combined_score(seg, [0.2, 0.6])
    expected = 0.7 * seg["score"] + 0.3 * (1 - 0.4)
    assert both["score"] == pytest.approx(expected, abs=1e-6)
    assert both["min_margin"] == pytest.approx(0.2) and both["regions"] == 2
    assert both["roi_entropy"] == seg["roi_entropy"] and both["segmentation"] == seg["score"]
    # A tie between two styles makes a confident mask worth labelling; a sure style does not.
    confident = segmentation_uncertainty(_maps()["confident"])
    assert combined_score(confident, [0.0])["score"] > combined_score(confident, [1.0])["score"]
    with pytest.raises(ValueError):
        combined_score(seg, [float("inf")])


def test_k_center_greedy_picks_far_apart_points():
    points = np.array([[0, 0], [0.1, 0], [0.2, 0.1], [10, 0], [10, 0.2], [5, 8]], dtype=float)
    picks = k_center_greedy(points, 3)
    assert picks[0] == 0 and picks[1] in (3, 4) and picks[2] == 5
    assert k_center_greedy(points, 3) == picks  # deterministic
    # With points 0 and 3 already labelled, the next picks cover what is left uncovered.
    assert k_center_greedy(points, 1, already_selected=[0, 3]) == [5]
    assert sorted(k_center_greedy(points, 10)) == list(range(6))
    assert k_center_greedy(points, 0) == [] and k_center_greedy(points, 3, already_selected=range(6)) == []


def test_k_center_greedy_covers_clusters_better_than_the_first_k():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16)) * 10
    points = np.concatenate([c + rng.normal(size=(40, 16)) * 0.1 for c in centres])
    picks = k_center_greedy(points, 5)
    assert sorted({p // 40 for p in picks}) == [0, 1, 2, 3, 4]  # one from each cluster
    with pytest.raises(ValueError):
        k_center_greedy(points[0], 2)
    with pytest.raises(ValueError):
        k_center_greedy(points, 2, already_selected=[999])
