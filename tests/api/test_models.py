"""Model registry and training: the train job through the API, the CLI with --promote-if-better, promotion, the
demo (slow), and the 4xx answers."""
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.db.extensions import db
from backend.ml.synth import write_export_folder
from backend.ml.weights import load_bundle
from backend.db.models import Export, Image, ImageScore, ModelVersion, Prediction, User

from ..support.app import build_app
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
        assert bundle.sidecar.architecture["encoder"] == "resnet18"

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


def test_cli_train_with_promote_if_better(sqlite_app, tmp_path):
    export = tmp_path / "export"
    write_export_folder(export, 12, seed=3, **SMALL_IMAGES)
    runner = sqlite_app.test_cli_runner()
    args = ["train", "segmenter", "--export", str(export), "--epochs", "1", "--input-size", "64", "--batch-size", "4",
            "--device", "cpu", "--promote-if-better", "--no-progress"]
    first = runner.invoke(args=args)
    assert first.exit_code == 0, first.output
    assert "promoted: now the current model" in first.output and "val IoU" in first.output
    second = runner.invoke(args=args + ["--seed", "1"])
    assert second.exit_code == 0, second.output
    assert "scores" in second.output  # compared with the current model on the same validation images
    with sqlite_app.app_context():
        rows = db.session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
        assert len(rows) == 2 and sum(r.is_current for r in rows) == 1
    bad = runner.invoke(args=["train", "segmenter", "--export", "missing-export", "--no-progress"])
    assert bad.exit_code != 0 and "not found" in bad.output
    odd = runner.invoke(args=["train", "segmenter", "--export", str(export), "--input-size", "100"])
    assert odd.exit_code != 0 and "multiple of 32" in odd.output


@pytest.mark.slow
def test_demo_builds_a_workspace(tmp_path):
    app = build_app(tmp_path, "sqlite")
    result = app.test_cli_runner().invoke(args=["demo", "--images", "24", "--epochs", "1", "--no-serve",
                                                "--no-progress", "--password", "demo-password-1"])
    assert result.exit_code == 0, result.output
    assert "login: demo / demo-password-1" in result.output
    with app.app_context():
        images = db.session.scalars(select(Image)).all()
        assert len(images) == 24 and {i.source for i in images} == {"synthetic"}
        accepted = [i for i in images if i.status == "accepted"]
        assert len(accepted) == 14
        current = {m.kind for m in db.session.scalars(select(ModelVersion).where(ModelVersion.is_current.is_(True)))}
        assert current == {"segmenter", "classifier"}
        predicted = set(db.session.scalars(select(Prediction.image_id)))
        assert predicted == {i.id for i in images if i.status == "new"}
        scored = set(db.session.scalars(select(ImageScore.image_id).where(ImageScore.strategy == "uncertainty")))
        assert scored == predicted  # the queue ranks by the demo model's uncertainty from the start
    client = app.test_client()
    assert client.post("/api/v1/auth/login", json={"username": "demo", "password": "demo-password-1"}).status_code == 200
    again = app.test_cli_runner().invoke(args=["demo", "--no-serve", "--no-progress"])
    assert again.exit_code != 0 and "fresh" in again.output


@pytest.mark.slow
def test_demo_with_real_photos_trains_on_their_boxes(tmp_path):
    from backend.db.models import Region

    from ..support.app import REAL_TATTOOS

    photos = sorted((REAL_TATTOOS / "images").glob("*.jpg"))[:3] if REAL_TATTOOS.exists() else []
    if not photos:
        pytest.skip("the shared real photos are absent")
    real = tmp_path / "real"
    real.mkdir()
    for photo in photos:
        (real / photo.name).write_bytes(photo.read_bytes())
        (real / photo.with_suffix(".txt").name).write_bytes(photo.with_suffix(".txt").read_bytes())
    app = build_app(tmp_path, "sqlite")
    result = app.test_cli_runner().invoke(args=["demo", "--images", "12", "--epochs", "1", "--no-serve",
                                                "--no-progress", "--real", str(real)])
    assert result.exit_code == 0, result.output
    assert "3 real photo(s)" in result.output and "composites on their skin" in result.output
    with app.app_context():
        sources = {i.source for i in db.session.scalars(select(Image))}
        assert sources == {"synthetic", "import"}
        boxes = db.session.scalar(select(func.count()).select_from(Region).where(Region.kind == "box"))
        assert boxes >= 3
        seg = db.session.scalars(select(ModelVersion).where(ModelVersion.kind == "segmenter")).one()
        assert seg.metrics["train_box_images"] >= 1
    missing = build_app(tmp_path / "other", "sqlite").test_cli_runner().invoke(
        args=["demo", "--no-serve", "--real", str(tmp_path / "nowhere")])
    assert missing.exit_code != 0 and "does not exist" in missing.output
