"""POST /images/<id>/assist with tool "click" (positive/negative clicks) and box assist backed by the current
segmenter: the model answers when there is one (`method: model`), the model-free assist otherwise."""
import numpy as np
import pytest

from backend.core.geometry import validate_geometry
from backend.core.geometry_raster import rasterize

from ..support.models import register_models
from .test_prefill_assist import _iou, _upload
from backend.ml.synth import generate_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sample():
    return generate_image(2, width=320, height=240, styles=["traditional"])


def _center(mask):
    import cv2

    dist = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    y, x = np.unravel_index(int(np.argmax(dist)), mask.shape)
    return [float(x), float(y)]


def test_click_without_a_model_is_the_classical_assist(app, annotator):
    sample = _sample()
    tattoo = sample.tattoos[0]
    image_id = _upload(annotator, sample)
    resp = annotator.post(f"/api/v1/images/{image_id}/assist", json={"tool": "click", "points": [_center(tattoo.mask)]})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["method"] == "classical" and body["model_version"] is None
    assert validate_geometry(body["geometry"], 320, 240) == body["geometry"]
    assert _iou(rasterize([body["geometry"]], 320, 240), tattoo.mask) >= 0.5
    assert body["region"]["kind"] == "mask" and body["region"]["source"] == "assist"


def test_click_refusals(app, annotator):
    image_id = _upload(annotator, _sample())
    url = f"/api/v1/images/{image_id}/assist"
    for bad in ({"tool": "click"}, {"tool": "click", "points": []}, {"tool": "click", "points": [[400, 5]]},
                {"tool": "click", "points": [[5, 5]], "negative_points": [[5, 500]]},
                {"tool": "click", "points": [[5, 5]], "negative_points": [[5]]},
                {"tool": "click", "points": [[5, 5]], "use_model": "yes"}):
        resp = annotator.post(url, json=bad)
        assert resp.status_code == 422, (bad, resp.get_json())


def test_box_and_click_use_the_current_segmenter(app, annotator, tiny_bundles):
    ids = register_models(app, tiny_bundles, classifier=False)
    sample = _sample()
    tattoo = sample.tattoos[0]
    image_id = _upload(annotator, sample)
    url = f"/api/v1/images/{image_id}/assist"
    click = annotator.post(url, json={"tool": "click", "points": [_center(tattoo.mask)]}).get_json()
    assert click["method"] == "model" and click["model_version"] == ids["segmenter"]
    x0, y0, x1, y1 = tattoo.bbox
    box = [x0 - 5, y0 - 5, x1 + 5, y1 + 5]
    body = annotator.post(url, json={"tool": "box", "box": box}).get_json()
    if body["method"] == "model":
        assert body["model_version"] == ids["segmenter"] and body["region"]["model_version"] == ids["segmenter"]
    else:  # the tiny model may see no ink in the box: then the classical answer, which does
        assert body["method"] == "classical" and body["model_version"] is None
    assert body["geometry"], body
    bx0, by0, bx1, by1 = body["bbox"]
    assert bx0 >= box[0] and by0 >= box[1] and bx1 <= box[2] and by1 <= box[3]
    plain = annotator.post(url, json={"tool": "box", "box": box, "use_model": False}).get_json()
    assert plain["method"] == "classical" and plain["model_version"] is None


def test_model_answers_are_traced_and_saveable(app, annotator, monkeypatch):
    """The route's plumbing with a stand-in model whose map is the true ink (tests/unit/test_ml_model_assist.py)."""
    from ..support.runners import MapRunner
    import backend.web.api.models as api_models
    from backend.db.extensions import db
    from backend.db.models import ModelVersion

    sample = _sample()
    tattoo = sample.tattoos[0]
    image_id = _upload(annotator, sample)
    with app.app_context():
        mv = ModelVersion(kind="segmenter", name="stand-in", weights_path="none.safetensors")
        db.session.add(mv)
        db.session.commit()
        mv_id = mv.id
    from PIL import Image
    import io

    decoded = np.asarray(Image.open(io.BytesIO(sample.jpeg_bytes(95))).convert("RGB"))
    runner = MapRunner(decoded, tattoo.mask.astype(np.float32) * 0.9)
    monkeypatch.setattr(api_models, "_assist_segmenter", lambda: (mv_id, runner))
    url = f"/api/v1/images/{image_id}/assist"
    click = annotator.post(url, json={"tool": "click", "points": [_center(tattoo.mask)]}).get_json()
    assert click["method"] == "model" and runner.calls == 1
    assert _iou(rasterize([click["geometry"]], 320, 240), tattoo.mask) >= 0.6  # the clicked part of the tattoo
    x0, y0, x1, y1 = tattoo.bbox
    box = annotator.post(url, json={"tool": "box", "box": [x0, y0, x1, y1]}).get_json()  # drawn tight
    assert box["method"] == "model" and box["model_version"] == mv_id
    assert _iou(rasterize([box["geometry"]], 320, 240), tattoo.mask) >= 0.8
    resp = annotator.put(f"/api/v1/images/{image_id}/annotation",
                         json={"base_version": 0, "regions": [click["region"]], "tags": {"styles": [], "flags": []}})
    assert resp.status_code == 200, resp.get_json()
