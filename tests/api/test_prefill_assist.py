"""Pre-fill (409 without a model, valid geometry inside the image, caching, stored Prediction, the pool command and
job, upload-time suggestions, a planted pickle refused) and the assist endpoints on procedural images."""
import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from sqlalchemy import select

from backend.db.extensions import db
from backend.core.geometry import validate_geometry
from backend.core.geometry_raster import rasterize
from backend.ml.synth import encode_jpeg, generate_image
from backend.db.models import ModelVersion, Prediction

from ..support.models import register_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _upload(client, sample_or_bytes, name="t.jpg") -> int:
    data = sample_or_bytes if isinstance(sample_or_bytes, bytes) else sample_or_bytes.jpeg_bytes(95)
    resp = client.upload([(data, name)])
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["images"][0]["id"]


def _iou(a, b):
    a, b = a > 0, b > 0
    return (a & b).sum() / max(1, (a | b).sum())


def _tattoo_sample(seed=0, style="japanese", size=96):
    return next(s for s in (generate_image(seed + k, width=size, height=size, styles=[style]) for k in range(50))
                if s.tattoos)


# --- pre-fill --------------------------------------------------------------------------------------------------------

def test_prefill_without_a_model_is_409(app, annotator):
    image_id = _upload(annotator, _tattoo_sample())
    resp = annotator.post(f"/api/v1/images/{image_id}/prefill")
    assert resp.status_code == 409
    error = resp.get_json()["error"]
    assert error["code"] == "no_model" and "manage.py train segmenter" in error["message"]
    assert annotator.post("/api/v1/images/999/prefill").status_code == 404
    assert annotator.get(f"/api/v1/images/{image_id}/prediction").status_code == 404


def test_prefill_regions_are_valid_and_cached(app, annotator, tiny_bundles):
    ids = register_models(app, tiny_bundles)
    sample = _tattoo_sample(1)
    image_id = _upload(annotator, sample)
    resp = annotator.post(f"/api/v1/images/{image_id}/prefill")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["cached"] is False and body["segmenter_id"] == ids["segmenter"]
    assert body["classifier_id"] == ids["classifier"]
    assert body["regions"], "the tiny model finds the large procedural tattoo"
    classes = set(body["style_probs"])
    for region, detail in zip(body["regions"], body["details"]):
        assert region["source"] == "model" and region["model_version"] == ids["segmenter"]
        assert validate_geometry(region["geometry"], 96, 96) == region["geometry"]  # valid and inside the image
        assert region["style"] in classes and 0 <= region["confidence"] <= 1
        assert detail["id"] == region["id"] and set(detail["style_probs"]) == classes
        x0, y0, x1, y1 = detail["bbox"]
        assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 96
    predicted = rasterize([r["geometry"] for r in body["regions"]], 96, 96)
    assert _iou(predicted, sample.mask) > 0.3
    assert body["concentration"] == pytest.approx((predicted > 0).mean(), abs=0.03)
    assert body["low_concentration"] is (body["concentration"] < 0.25)
    assert 0 <= body["uncertainty"]["score"] <= 1

    again = annotator.post(f"/api/v1/images/{image_id}/prefill").get_json()
    assert again["cached"] is True and [r["id"] for r in again["regions"]] == [r["id"] for r in body["regions"]]
    with app.app_context():
        rows = db.session.scalars(select(Prediction).where(Prediction.image_id == image_id)).all()
        assert len(rows) == 1
        row = rows[0]
        assert row.segmenter_id == ids["segmenter"] and row.classifier_id == ids["classifier"]
        assert row.concentration == body["concentration"] and row.uncertainty["score"] == body["uncertainty"]["score"]
        deepest = db.session.get(ModelVersion, ids["segmenter"]).architecture["encoder"]
        width = {"resnet18": 512, "tu-tf_efficientnet_lite0": 320}[deepest]  # the encoder's last feature channels
        assert len(row.embedding) == width and abs(np.linalg.norm(row.embedding) - 1) < 1e-3
        assert row.regions[0]["style_probs"] and row.regions[0]["geometry"] == body["regions"][0]["geometry"]
    fresh = annotator.post(f"/api/v1/images/{image_id}/prefill?refresh=true").get_json()
    assert fresh["cached"] is False
    assert annotator.get(f"/api/v1/images/{image_id}/prediction").get_json()["concentration"] == fresh["concentration"]
    # the regions are in the shape the annotation document takes
    saved = annotator.put(f"/api/v1/images/{image_id}/annotation",
                          json={"base_version": 0, "regions": fresh["regions"], "tags": {"styles": [], "flags": []}})
    assert saved.status_code == 200, saved.get_json()
    assert [r["source"] for r in saved.get_json()["regions"]] == ["model"] * len(fresh["regions"])


def test_low_concentration_threshold_is_configurable(app, annotator, tiny_bundles):
    register_models(app, tiny_bundles, classifier=False)
    image_id = _upload(annotator, _tattoo_sample(2))
    app.config["LOW_CONCENTRATION"] = 1.0
    body = annotator.post(f"/api/v1/images/{image_id}/prefill").get_json()
    assert body["low_concentration"] is True and body["low_concentration_threshold"] == 1.0
    assert body["classifier_id"] is None and all(r["style"] is None for r in body["regions"])
    app.config["LOW_CONCENTRATION"] = 0.0
    assert annotator.post(f"/api/v1/images/{image_id}/prefill").get_json()["low_concentration"] is False


def test_the_on_body_gate_follows_the_setting(app, tiny_bundles):
    from backend.jobs.predictions import load_current

    register_models(app, tiny_bundles, classifier=False)
    with app.app_context():
        assert load_current().settings.on_body is True
        app.config["PREFILL_ON_BODY"] = False  # INKLABEL_PREFILL_ON_BODY=0
        assert load_current().settings.on_body is False


def test_the_prefill_uses_the_settings_fitted_to_the_boxes(app, tiny_bundles):
    """A segmenter trained with box-labelled images carries the pre-fill's fitted threshold and grouping
    (train.fit_prefill); one without keeps its own threshold and the default grouping."""
    from backend.jobs.predictions import clear_model_cache, load_current
    from backend.ml.prefill import PrefillSettings

    register_models(app, tiny_bundles, classifier=False)
    with app.app_context():
        plain = load_current()
        assert plain.settings.threshold == plain.segmenter.threshold
        assert plain.settings.group_gap == PrefillSettings.group_gap
    sidecar = Path(app.config["WORKSPACE"]) / "models" / "tiny-seg.json"
    side = json.loads(sidecar.read_text())
    side["training"]["prefill"] = {"threshold": 0.85, "group_gap": 0.015, "min_score": 0.4}
    sidecar.write_text(json.dumps(side))
    clear_model_cache()
    with app.app_context():
        fitted = load_current()
        assert (fitted.settings.threshold, fitted.settings.group_gap, fitted.settings.min_score) == (0.85, 0.015, 0.4)
        assert fitted.segmenter.threshold == plain.segmenter.threshold  # box assist keeps the model's own cut


def test_planted_pickle_is_refused(app, annotator):
    marker = Path(app.config["WORKSPACE"]) / "pwned"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    models = Path(app.config["WORKSPACE"]) / "models"
    models.mkdir(exist_ok=True)
    torch.save({"evil": Boom()}, models / "evil.pt")
    (models / "evil2.safetensors").write_bytes(pickle.dumps(Boom()))
    image_id = _upload(annotator, _tattoo_sample(3))
    for weights in ("evil.pt", "evil2.safetensors", "../../outside.safetensors"):
        with app.app_context():
            db.session.query(ModelVersion).delete()
            db.session.add(ModelVersion(kind="segmenter", name="evil", weights_path=weights, is_current=True))
            db.session.commit()
        from backend.jobs.predictions import clear_model_cache

        clear_model_cache()
        resp = annotator.post(f"/api/v1/images/{image_id}/prefill")
        assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "model_unavailable", weights
    assert not marker.exists()


def test_prefill_pool_command_job_and_upload_suggestion(app, admin, tiny_bundles):
    from backend.jobs.executor import submit_job
    from backend.jobs.prefill import suggest_on_upload

    ids = [_upload(admin, _tattoo_sample(10 + k, style=style), f"{k}.jpg")
           for k, style in enumerate(["japanese", "tribal", "traditional"])]
    blank = _upload(admin, encode_jpeg(generate_image(99, width=96, height=96, n_tattoos=0, styles=[]).image), "b.jpg")
    runner = app.test_cli_runner()
    no_model = runner.invoke(args=["prefill", "--no-progress"])
    assert no_model.exit_code != 0 and "train a model first" in no_model.output
    with app.app_context():
        assert suggest_on_upload(ids) is None  # no model: nothing queued
    register_models(app, tiny_bundles)
    result = runner.invoke(args=["prefill", "--no-progress", "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert "pre-filled 4 image(s)" in result.output
    with app.app_context():
        assert set(db.session.scalars(select(Prediction.image_id))) == set(ids) | {blank}
    again = runner.invoke(args=["prefill", "--no-progress"])
    assert "pre-filled 0 image(s), skipped 4" in again.output
    with app.app_context():
        job = submit_job("prefill", {"image_ids": ids[:2], "refresh": True})
        assert job.status == "succeeded" and job.result["done"] == 2
        extra = _upload(admin, _tattoo_sample(20), "late.jpg")
        job = suggest_on_upload([extra])
        assert job is not None and job.status == "succeeded"
        pred = db.session.scalar(select(Prediction).where(Prediction.image_id == extra))
        assert pred is not None and pred.concentration is not None
    body = admin.get(f"/api/v1/images/{extra}/prediction").get_json()
    assert body["cached"] is True and "suggested_flags" in body


# --- assist ----------------------------------------------------------------------------------------------------------

ASSIST_BOX_IOU = 0.8  # stated: box / grabcut on a filled procedural tattoo, 5 %-padded true box
ASSIST_WAND_IOU = 0.9


def _geometry_mask(geometry, w, h):
    return rasterize([geometry], w, h) if geometry else np.zeros((h, w), np.uint8)


def test_assist_tools_reach_the_stated_iou(app, annotator):
    sample = generate_image(2, width=320, height=240, styles=["traditional"])
    tattoo = sample.tattoos[0]
    image_id = _upload(annotator, sample)
    x0, y0, x1, y1 = tattoo.bbox
    m = max(3, int(0.05 * max(x1 - x0, y1 - y0)))
    box = [x0 - m, y0 - m, x1 + m, y1 + m]
    for tool, threshold in (("box", ASSIST_BOX_IOU), ("grabcut", ASSIST_BOX_IOU)):
        resp = annotator.post(f"/api/v1/images/{image_id}/assist", json={"tool": tool, "box": box})
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        assert validate_geometry(body["geometry"], 320, 240) == body["geometry"]
        assert body["region"]["source"] == "assist" and body["region"]["geometry"] == body["geometry"]
        assert _iou(_geometry_mask(body["geometry"], 320, 240), tattoo.mask) >= threshold, tool
        assert body["area"] > 0 and len(body["bbox"]) == 4

    plain = generate_image(7, width=200, height=160, n_tattoos=0, styles=[]).image.copy()
    cv2.circle(plain, (90, 80), 30, (200, 30, 30), -1)
    truth = np.zeros((160, 200), np.uint8)
    cv2.circle(truth, (90, 80), 30, 1, -1)
    disk_id = _upload(annotator, encode_jpeg(plain, 95), "disk.jpg")
    resp = annotator.post(f"/api/v1/images/{disk_id}/assist", json={"tool": "wand", "points": [[90, 80]]})
    assert resp.status_code == 200
    assert _iou(_geometry_mask(resp.get_json()["geometry"], 200, 160), truth) >= ASSIST_WAND_IOU


def test_assist_refusals_and_empty_results(app, annotator):
    sample = generate_image(3, width=120, height=100, n_tattoos=0, styles=[])
    image_id = _upload(annotator, sample)
    url = f"/api/v1/images/{image_id}/assist"
    for bad in ({"tool": "box"}, {"tool": "grabcut"}, {"tool": "wand"}, {"tool": "lasso", "box": [0, 0, 9, 9]},
                {"tool": "box", "box": [0, 0, 10]}, {"tool": "box", "box": [200, 200, 300, 300]},
                {"tool": "box", "box": [50, 50, 50, 90]}, {"tool": "wand", "points": [[500, 5]]},
                {"tool": "wand", "points": [[1, 2, 3]]}, {"tool": "box", "box": [0, 0, "9", 9]},
                {"tool": "wand", "points": [[5, 5]], "tolerance": -1}, {"tool": "box", "box": [0, 0, 9, 9], "x": 1}):
        resp = annotator.post(url, json=bad)
        assert resp.status_code == 422, (bad, resp.get_json())
    assert annotator.post("/api/v1/images/999/assist", json={"tool": "box", "box": [0, 0, 9, 9]}).status_code == 404
    # plain skin: no ink in the box, an empty answer rather than an error
    resp = annotator.post(url, json={"tool": "box", "box": [30, 30, 90, 80]})
    assert resp.status_code == 200
    assert resp.get_json()["geometry"] is None and resp.get_json()["area"] == 0
    assert app.test_client().post(url, json={"tool": "box", "box": [0, 0, 9, 9]}).status_code == 401


def _stored_predictions(app) -> dict:
    with app.app_context():
        return {p.image_id: p for p in db.session.scalars(select(Prediction))}


def test_pool_counts_a_broken_file_and_stores_the_rest(sqlite_app, tiny_bundles):
    from backend.db.models import Image
    from backend.media.storage import BlobStore
    from backend.jobs.prefill import prefill_images

    from ..support.app import ApiClient, make_user

    client = ApiClient(sqlite_app, *make_user(sqlite_app, "uploader", "admin"))
    ids = [_upload(client, _tattoo_sample(60 + k), f"{k}.jpg") for k in range(3)]
    register_models(sqlite_app, tiny_bundles)
    with sqlite_app.app_context():
        broken = db.session.get(Image, ids[1])
        BlobStore.from_config(sqlite_app.config).original_path(broken.sha256, broken.format).write_bytes(b"not a jpeg")
        result = prefill_images(ids, batch_size=3)
    assert result["done"] == 2 and result["failed"] == 1
    assert [e["image_id"] for e in result["errors"]] == [ids[1]]
    assert set(_stored_predictions(sqlite_app)) == {ids[0], ids[2]}


def test_pool_counts_an_image_whose_trace_fails(sqlite_app, tiny_bundles, monkeypatch):
    """A map that cannot be traced is reported like a file that cannot be decoded; the batch goes on."""
    import backend.ml.prefill
    from backend.jobs.prefill import prefill_images

    from ..support.app import ApiClient, make_user

    client = ApiClient(sqlite_app, *make_user(sqlite_app, "uploader", "admin"))
    ids = [_upload(client, _tattoo_sample(70 + k), f"{k}.jpg") for k in range(3)]
    register_models(sqlite_app, tiny_bundles)
    trace, calls = backend.ml.prefill.trace_prefill, []

    def trace_failing_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("untraceable")
        return trace(*args, **kwargs)

    monkeypatch.setattr(backend.ml.prefill, "trace_prefill", trace_failing_once)
    with sqlite_app.app_context():
        result = prefill_images(ids, batch_size=3)
    assert result["done"] == 2 and result["failed"] == 1
    assert result["errors"] == [{"image_id": ids[1], "error": "ValueError: untraceable"}]
    assert set(_stored_predictions(sqlite_app)) == {ids[0], ids[2]}


def test_pool_prefill_through_the_api(app, admin, annotator, tiny_bundles):
    ids = [_upload(admin, _tattoo_sample(40 + k), f"{k}.jpg") for k in range(3)]
    assert admin.post("/api/v1/models/prefill", json={}).status_code == 409  # no model yet
    register_models(app, tiny_bundles)
    assert annotator.post("/api/v1/models/prefill", json={}).status_code == 403
    assert admin.post("/api/v1/models/prefill", json={"statuses": ["lost"]}).status_code == 422
    resp = admin.post("/api/v1/models/prefill", json={"batch_size": 2})
    assert resp.status_code == 202 and resp.get_json()["images"] == 3
    for job_id in resp.get_json()["job_ids"]:
        job = admin.get(f"/api/v1/jobs/{job_id}").get_json()
        assert job["status"] == "succeeded" and job["result"]["done"] == 3
    with app.app_context():
        assert set(db.session.scalars(select(Prediction.image_id))) == set(ids)
    again = admin.post("/api/v1/models/prefill", json={"image_ids": ids[:1], "refresh": True}).get_json()
    assert again["images"] == 1
