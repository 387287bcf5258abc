"""Scores follow the models: a promotion queues a pool pre-fill with the new model, which queues a scores refresh
(API and CLI; coalesced; best effort), and a pool pre-fill refreshes the scores except after an upload (issue 6)."""
import pytest
from sqlalchemy import select

from backend.db.extensions import db
from backend.ml.synth import generate_image
from backend.db.models import ImageScore, Job, ModelVersion, Prediction

from ..support.models import register_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _upload_pool(client, n=3) -> list[int]:
    ids = []
    for k in range(n):
        sample = generate_image(40 + k, width=96, height=96, styles=["tribal"])
        resp = client.upload([(sample.jpeg_bytes(95), f"pool-{k}.jpg")])
        assert resp.status_code == 201, resp.get_json()
        ids.append(resp.get_json()["images"][0]["id"])
    return ids


def _jobs(app, kind=None) -> list[Job]:
    with app.app_context():
        stmt = select(Job).order_by(Job.created_at, Job.id)
        if kind:
            stmt = stmt.where(Job.kind == kind)
        jobs = db.session.scalars(stmt).all()
        db.session.expunge_all()
        return jobs


def _second_segmenter(app, tiny_bundles) -> tuple[int, int]:
    """The tiny bundles registered twice: segmenter `first` current (with its classifier), `second` not."""
    first = register_models(app, tiny_bundles)["segmenter"]
    second = register_models(app, tiny_bundles, classifier=False, promote=False)["segmenter"]
    return first, second


def test_promotion_prefills_the_pool_then_refreshes_scores(app, admin, tiny_bundles):
    ids = _upload_pool(admin)  # no current model yet: the uploads queue nothing
    assert _jobs(app) == []
    first, second = _second_segmenter(app, tiny_bundles)
    resp = admin.post(f"/api/v1/models/{second}/promote")
    assert resp.status_code == 200 and resp.get_json()["is_current"] is True

    prefill = _jobs(app, "prefill")
    assert len(prefill) == 1 and prefill[0].params == {"statuses": ["new", "in_progress"], "reason": "promotion"}
    assert prefill[0].status == "succeeded", prefill[0].error
    assert prefill[0].result["done"] == len(ids) and prefill[0].result["segmenter_id"] == second
    scores = _jobs(app, "scores")
    assert len(scores) == 1 and scores[0].status == "succeeded", scores[0].error
    assert scores[0].id == prefill[0].result["scores_job_id"] and scores[0].result["scored"] == len(ids)
    with app.app_context():
        preds = db.session.scalars(select(Prediction).where(Prediction.segmenter_id == second)).all()
        assert sorted(p.image_id for p in preds) == ids
        rows = db.session.scalars(select(ImageScore)).all()
        assert {r.strategy for r in rows} == {"uncertainty", "diversity"}
        assert {r.model_version_id for r in rows} == {second} and {r.image_id for r in rows} == set(ids)

    # promoting the first segmenter back: its own pre-fill and a refresh from its predictions
    assert admin.post(f"/api/v1/models/{first}/promote").status_code == 200
    assert [j.status for j in _jobs(app, "prefill")] == ["succeeded"] * 2
    assert [j.status for j in _jobs(app, "scores")] == ["succeeded"] * 2
    with app.app_context():
        assert {r.model_version_id for r in db.session.scalars(select(ImageScore))} == {first}


def test_promotion_stands_when_the_prefill_cannot_be_queued(app, admin, tiny_bundles, monkeypatch):
    import backend.jobs.executor

    _upload_pool(admin, 1)
    _first, second = _second_segmenter(app, tiny_bundles)

    def broken(*args, **kwargs):
        raise RuntimeError("broker away")

    monkeypatch.setattr(backend.jobs.executor, "submit_job", broken)
    resp = admin.post(f"/api/v1/models/{second}/promote")
    assert resp.status_code == 200 and resp.get_json()["is_current"] is True
    with app.app_context():
        assert db.session.get(ModelVersion, second).is_current
    assert _jobs(app) == []


def test_a_waiting_promotion_prefill_is_reused(app, admin, tiny_bundles):
    _first, second = _second_segmenter(app, tiny_bundles)
    with app.app_context():
        db.session.add(Job(kind="prefill", status="queued", params={"statuses": ["new"], "reason": "promotion"}))
        db.session.commit()
    assert admin.post(f"/api/v1/models/{second}/promote").status_code == 200
    assert [j.status for j in _jobs(app, "prefill")] == ["queued"]  # the waiting one will load the new model


def test_promoting_a_classifier_without_a_segmenter_queues_nothing(app, admin, tiny_bundles):
    ids = register_models(app, tiny_bundles, promote=False)
    assert admin.post(f"/api/v1/models/{ids['classifier']}/promote").status_code == 200
    assert _jobs(app) == []


def test_cli_promotion_prefills_when_the_command_ends(sqlite_app, tiny_bundles):
    from ..support.app import ApiClient, make_user

    admin = ApiClient(sqlite_app, *make_user(sqlite_app, "boss", "admin"))
    ids = _upload_pool(admin, 2)
    _first, second = _second_segmenter(sqlite_app, tiny_bundles)
    result = sqlite_app.test_cli_runner().invoke(args=["promote", str(second)])
    assert result.exit_code == 0, result.output
    assert "is now current" in result.output and "pool pre-fill succeeded: 2 pre-filled" in result.output
    (prefill,) = _jobs(sqlite_app, "prefill")
    assert prefill.params["reason"] == "promotion" and prefill.result["segmenter_id"] == second
    (scores,) = _jobs(sqlite_app, "scores")
    assert scores.status == "succeeded" and scores.result["scored"] == len(ids)


def test_pool_prefill_refreshes_scores_but_upload_prefill_does_not(app, admin, tiny_bundles):
    from backend.jobs.executor import submit_job
    from backend.jobs.prefill import suggest_on_upload

    register_models(app, tiny_bundles)
    ids = _upload_pool(admin, 2)
    with app.app_context():
        upload = suggest_on_upload(ids)  # the small pre-fill of an upload: no scores refresh
        assert upload.params["reason"] == "upload" and upload.status == "succeeded" and upload.result["done"] == 2
        assert "scores_job_id" not in upload.result
    assert _jobs(app, "scores") == []
    with app.app_context():
        again = submit_job("prefill", {"image_ids": ids})  # nothing new to pre-fill: no refresh
        assert again.result["done"] == 0 and "scores_job_id" not in again.result
        fresh = submit_job("prefill", {"image_ids": ids, "refresh": True})
        assert fresh.result["done"] == 2 and fresh.result["scores_job_id"]
        # a refresh already waiting (not started) is not queued twice
        db.session.add(Job(kind="scores", status="queued", params={"top_k": 1000}))
        db.session.commit()
        third = submit_job("prefill", {"image_ids": ids, "refresh": True})
        assert third.result["done"] == 2 and third.result["scores_job_id"] is None
    assert [j.status for j in _jobs(app, "scores")] == ["succeeded", "queued"]
