"""Model registry and training through the API: the train job, promotion, and the 4xx answers. (The train and demo
commands: tests/ops/test_cli_models.py.)"""
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.db.extensions import db
from backend.ml.defaults import SEGMENTER_ENCODER
from backend.ml.weights import load_bundle
from backend.db.models import Export, ModelVersion, User

from ..support.models import SMALL_IMAGES, register_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _labelled_export(app, n=8, fraction=0.75, formats=("masks", "crops")) -> str:
    from backend.web.auth import create_user
    from backend.commands.ml import populate_synthetic
    from backend.datasets.export import create_export

    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "labeller"))
        if user is None:
            user = create_user("labeller", "password123", "admin")
        populate_synthetic(n, fraction, user, seed=100, **SMALL_IMAGES)
        export = create_export({"formats": list(formats), "split": {"val": 0.3, "test": 0.0, "seed": 0},
                                "filter": {"status": ["accepted"]}}, user_id=user.id)
        return export.id


# --- training through the API --------------------------------------------------------------------------------------

def test_train_job_registers_and_promotes(app, admin):
    export_id = _labelled_export(app)
    resp = admin.post("/api/v1/models/train", json={"kind": "segmenter", "export_id": export_id, "epochs": 2,
                                                   "input_size": 64, "batch_size": 4, "device": "cpu"})
    assert resp.status_code == 202, resp.get_json()
    job = admin.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == job["total"] > 0
    result = job["result"]
    assert result["promoted"] is True and result["comparison"]["current_id"] is None
    with app.app_context():
        mv = db.session.get(ModelVersion, result["model_version_id"])
        assert mv.kind == "segmenter" and mv.is_current and mv.export_id == export_id
        assert mv.metrics["val"]["iou"] == result["headline"] and len(mv.metrics["history"]) == 2
        weights = Path(app.config["WORKSPACE"]) / "models" / mv.weights_path
        bundle = load_bundle(weights, root=weights.parent)
        assert bundle.sidecar.export_id == export_id and bundle.sidecar.input_size == 64
        assert bundle.sidecar.architecture["encoder"] == SEGMENTER_ENCODER and mv.metrics["pretrained"] is True

    resp = admin.post("/api/v1/models/train", json={"kind": "classifier", "export_id": export_id, "epochs": 1,
                                                   "input_size": 32, "batch_size": 8, "device": "cpu",
                                                   "promote": "never"})
    job = admin.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()
    assert job["status"] == "succeeded", job["error"]
    listed = admin.get("/api/v1/models").get_json()
    assert listed["total"] == 2
    by_kind = {m["kind"]: m for m in listed["items"]}
    assert by_kind["segmenter"]["is_current"] and not by_kind["classifier"]["is_current"]
    cls = by_kind["classifier"]
    assert cls["headline"]["metric"] == "val_accuracy"
    assert set(cls["metrics"]["val"]["per_style"]) == set(cls["architecture"]["classes"])
    assert admin.get("/api/v1/models?kind=classifier").get_json()["total"] == 1
    assert admin.get("/api/v1/models?current=true").get_json()["total"] == 1


def test_train_refusals(app, admin, annotator):
    export_id = _labelled_export(app, n=4)
    ok = {"kind": "segmenter", "export_id": export_id}
    assert annotator.post("/api/v1/models/train", json=ok).status_code == 403
    assert admin.post("/api/v1/models/train", json={**ok, "export_id": "nope"}).status_code == 404
    for bad in ({**ok, "surprise": 1}, {**ok, "input_size": 100}, {**ok, "encoder": "no-such-encoder"},
                {**ok, "kind": "detector"}, {**ok, "epochs": 0}, {**ok, "epochs": "3"},
                {"kind": "classifier", "export_id": export_id, "backbone": "no_such_net"}):
        resp = admin.post("/api/v1/models/train", json=bad)
        assert resp.status_code == 422, bad
        assert resp.get_json()["error"]["code"]
    with app.app_context():
        db.session.add(Export(id="running1", status="running"))
        db.session.commit()
    resp = admin.post("/api/v1/models/train", json={**ok, "export_id": "running1"})
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "export_not_ready"


def test_export_without_crops_fails_the_job_clearly(app, admin):
    export_id = _labelled_export(app, n=4, formats=("masks",))
    resp = admin.post("/api/v1/models/train", json={"kind": "classifier", "export_id": export_id, "epochs": 1})
    job = admin.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()
    assert job["status"] == "failed" and "crops" in job["error"]
    with app.app_context():
        assert db.session.scalar(select(ModelVersion)) is None


# --- registry ------------------------------------------------------------------------------------------------------

def test_promote_and_get(app, admin, annotator, tiny_bundles):
    first = register_models(app, tiny_bundles, classifier=False)["segmenter"]
    second = register_models(app, tiny_bundles, classifier=False, promote=False)["segmenter"]
    assert annotator.post(f"/api/v1/models/{second}/promote").status_code == 403
    resp = admin.post(f"/api/v1/models/{second}/promote")
    assert resp.status_code == 200 and resp.get_json()["is_current"] is True
    with app.app_context():
        current = db.session.scalars(select(ModelVersion.id).where(ModelVersion.is_current.is_(True))).all()
        assert current == [second]
    model = annotator.get(f"/api/v1/models/{first}").get_json()
    assert model["is_current"] is False and model["architecture"]["kind"] == "segmenter"
    assert annotator.get("/api/v1/models/9999").status_code == 404
    assert admin.post("/api/v1/models/9999/promote").status_code == 404
    (Path(app.config["WORKSPACE"]) / "models" / "tiny-seg.safetensors").unlink()
    resp = admin.post(f"/api/v1/models/{first}/promote")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "weights_missing"
