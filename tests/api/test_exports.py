"""POST/GET/DELETE /api/v1/exports and the download. (`manage.py export`: tests/ops/test_cli_data.py.)"""
import hashlib
import io
import json
import zipfile
from pathlib import Path

from sqlalchemy import select

from backend.db.extensions import db
from backend.db.models import Export, Job

from ..support.datasets import annotated_images


def _error(resp):
    body = resp.get_json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_create_export_runs_the_job_and_downloads(app, admin):
    annotated_images(app)
    resp = admin.post("/api/v1/exports", json={"formats": ["coco", "masks", "crops"],
                                               "split": {"val": 0.25, "test": 0.25, "seed": 3}})
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"export_id", "job_id"}

    job = admin.get(f"/api/v1/jobs/{body['job_id']}").get_json()
    assert job["status"] == "succeeded" and job["kind"] == "export"
    assert job["result"]["export_id"] == body["export_id"] and job["progress"] == job["total"] == 4

    one = admin.get(f"/api/v1/exports/{body['export_id']}").get_json()
    assert one["status"] == "succeeded" and one["job_id"] == body["job_id"]
    assert sum(one["manifest"]["counts"]["images"].values()) == 4
    assert one["options"]["formats"] == ["coco", "masks", "crops"]
    assert one["download_url"] == f"/api/v1/exports/{body['export_id']}/download"

    listing = admin.get("/api/v1/exports").get_json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == body["export_id"]
    assert listing["items"][0]["manifest"] is None  # the list stays small

    download = admin.get(one["download_url"])
    assert download.status_code == 200 and download.mimetype == "application/zip"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert f"inklabel-export-{body['export_id']}.zip" in download.headers["Content-Disposition"]
    data = download.get_data()
    assert len(data) == one["size_bytes"]
    on_disk = Path(app.config["WORKSPACE"]) / "exports" / f"{body['export_id']}.zip"
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(on_disk.read_bytes()).hexdigest()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        me = admin.get("/api/v1/auth/me").get_json()["user"]
        assert manifest["export_id"] == body["export_id"] and manifest["created_by"] == me["id"]
        assert "coco/train.json" in zf.namelist()


def test_exports_are_admin_only(app, annotator, reviewer):
    with app.app_context():
        db.session.add(Export(id="real", status="succeeded", options={}))
        db.session.commit()
    for client in (annotator, reviewer):
        assert client.post("/api/v1/exports", json={}).status_code == 403
        assert client.get("/api/v1/exports").status_code == 403
        # A route naming an export answers as if it did not exist (backend/web/policy.py: no hint that it does).
        for url in ("/api/v1/exports/real", "/api/v1/exports/real/download"):
            assert client.get(url).status_code == 404
        assert client.delete("/api/v1/exports/real").status_code == 404
    assert app.test_client().get("/api/v1/exports").status_code == 401


def test_export_options_are_validated(app, admin):
    cases = [
        {"formats": ["tiff"]}, {"formats": []}, {"split": {"val": 0.6, "test": 0.4}}, {"split": {"val": -0.1}},
        {"split": {"seed": "0"}}, {"filter": {"status": ["finished"]}}, {"filter": {"status": []}},
        {"unknown": True}, {"crops": {"margin": 2}}, {"images": "yes"},
    ]
    for body in cases:
        resp = admin.post("/api/v1/exports", json=body)
        assert resp.status_code == 422, body
        assert _error(resp)["code"] == "invalid_body"
    nan = admin.post("/api/v1/exports", data='{"split": {"val": NaN}}', content_type="application/json")
    assert nan.status_code == 400
    with app.app_context():
        assert db.session.scalars(select(Export)).all() == [] and db.session.scalars(select(Job)).all() == []


def test_download_states(app, admin):
    assert admin.get("/api/v1/exports/nope").status_code == 404
    assert admin.get("/api/v1/exports/nope/download").status_code == 404
    with app.app_context():
        db.session.add(Export(id="queued1", status="queued", options={}))
        db.session.commit()
    resp = admin.get("/api/v1/exports/queued1/download")
    assert resp.status_code == 409 and _error(resp)["code"] == "not_ready"
    assert admin.delete("/api/v1/exports/queued1").status_code == 409


def test_delete_export_removes_the_file(app, admin):
    annotated_images(app, 2)
    export_id = admin.post("/api/v1/exports", json={"formats": ["coco"]}).get_json()["export_id"]
    path = Path(app.config["WORKSPACE"]) / "exports" / f"{export_id}.zip"
    assert path.is_file()
    assert admin.delete(f"/api/v1/exports/{export_id}").status_code == 200
    assert not path.exists()
    assert admin.get(f"/api/v1/exports/{export_id}").status_code == 404


def test_empty_export_is_valid(app, admin):
    export_id = admin.post("/api/v1/exports", json={}).get_json()["export_id"]
    one = admin.get(f"/api/v1/exports/{export_id}").get_json()
    assert one["status"] == "succeeded"
    assert one["manifest"]["counts"]["images"] == {"train": 0, "val": 0, "test": 0}
    with zipfile.ZipFile(io.BytesIO(admin.get(one["download_url"]).get_data())) as zf:
        assert json.loads(zf.read("coco/val.json"))["images"] == []
