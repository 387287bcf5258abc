"""Issue 18 item 11 (the parts outside the import formats): each was accepted, or a 500, before."""
from __future__ import annotations

import io

import pytest

from backend import create_app
from backend.db.extensions import db
from backend.db.models import ModelVersion

from ..support.world import png_bytes


def test_a_sidecar_asking_for_two_billion_classes_is_refused_before_building():
    from backend.ml.nets import build_from_architecture

    with pytest.raises(ValueError, match="num_classes"):
        build_from_architecture({"kind": "classifier", "backbone": "resnet18", "num_classes": 2**31})
    with pytest.raises(ValueError, match="decoder_channels"):
        build_from_architecture({"kind": "segmenter", "arch": "Unet", "encoder": "resnet18",
                                 "decoder_channels": [2**31]})


def test_promote_refuses_a_weights_path_outside_the_models_folder(app, make_client):
    admin = make_client("admin")
    with app.app_context():
        planted = ModelVersion(kind="segmenter", name="planted", weights_path="../secret_key", metrics={},
                               architecture={"kind": "segmenter", "arch": "Unet", "encoder": "resnet18"})
        db.session.add(planted)
        db.session.commit()
        model_id = planted.id
    resp = admin.post(f"/api/v1/models/{model_id}/promote")
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "weights_unsafe"
    with app.app_context():
        assert db.session.get(ModelVersion, model_id).is_current is False


def test_user_names_differ_by_more_than_case_in_the_cli_too(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["create-user", "alice", "--role", "annotator", "--password", "correct-horse-9"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=["create-user", "ALICE", "--role", "admin", "--password", "correct-horse-9"])
    assert again.exit_code != 0 and "exists already" in again.output


@pytest.mark.parametrize("password", ["password", "12345678", "aaaaaaaa", "Password1", "mallory-x"])
def test_weak_passwords_are_refused(app, make_client, password):
    admin = make_client("admin")
    resp = admin.post("/api/v1/users", json={"username": "mallory-x", "password": password, "role": "annotator"})
    assert resp.status_code == 422, resp.get_json()
    assert "attacker" in resp.get_json()["error"]["message"]


def test_a_short_secret_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("INKLABEL_SECRET_KEY", "x")
    with pytest.raises(RuntimeError, match="at least 32"):
        create_app({"WORKSPACE": str(tmp_path / "ws")})


def test_too_many_files_names_the_limit_it_hit(app, make_client):
    annotator = make_client("annotator")
    parts = app.config["MAX_FORM_PARTS"]
    data = {"file": [(io.BytesIO(png_bytes(4, 4)), f"f{i}.png") for i in range(parts + 1)]}
    resp = annotator.client.post("/api/v1/images", data=data, content_type="multipart/form-data",
                                 headers={"Authorization": f"Bearer {annotator.token}"})
    assert resp.status_code == 413
    message = resp.get_json()["error"]["message"]
    assert f"at most {parts:,} files" in message and f"{app.config['MAX_CONTENT_LENGTH']:,}" not in message
