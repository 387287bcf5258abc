"""The active-learning queue: leases, exclusivity under concurrency, expiry, strategies, agreement copies."""
from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import numpy as np
from sqlalchemy import select

from backend.db.extensions import db
from backend.ml.uncertainty import combined_score, segmentation_uncertainty
from backend.db.models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    Image,
    ImageScore,
    ModelVersion,
    Prediction,
    utcnow,
)

SQUARE = {"type": "Polygon", "coordinates": [[[10, 10], [50, 10], [50, 50], [10, 50], [10, 10]]]}


# --- helpers shared with test_reviews.py and test_stats.py -------------------------------------------------------------


def seed_images(app, n: int, status: str = "new", flags=None, start: int = 0, width: int = 100,
                height: int = 80) -> list[int]:
    """n Image rows (metadata only), oldest first, with an empty annotation document."""
    with app.app_context():
        now = utcnow()
        images = []
        for i in range(n):
            sha = hashlib.sha256(f"img-{start + i}-{status}".encode()).hexdigest()
            image = Image(sha256=sha, width=width, height=height, format="png", status=status,
                          flags=list(flags or []), created_at=now - timedelta(minutes=n - i))
            image.annotation = Annotation(version=0)
            images.append(image)
        db.session.add_all(images)
        db.session.commit()
        return [im.id for im in images]


def annotate(app, image_id: int, user_id: int, regions=None, styles=(), time_spent_ms: int = 1000,
             status: str | None = None, when=None) -> None:
    """Write a new version of the image's document and its revision, as a save would."""
    with app.app_context():
        annotation = db.session.get(Annotation, image_id)
        version = annotation.version + 1
        document = {"regions": list(regions or []), "tags": {"styles": list(styles), "flags": []}}
        annotation.version, annotation.document, annotation.updated_by = version, document, user_id
        db.session.add(AnnotationRevision(image_id=image_id, version=version, document=document, author_id=user_id,
                                          time_spent_ms=time_spent_ms, created_at=when or utcnow()))
        image = db.session.get(Image, image_id)
        if status is not None:
            image.status = status
        elif image.status == "new":
            image.status = "in_progress"
        db.session.commit()


def set_status(app, image_id: int, status: str) -> None:
    with app.app_context():
        db.session.get(Image, image_id).status = status
        db.session.commit()


def image_row(app, image_id: int) -> dict:
    with app.app_context():
        im = db.session.get(Image, image_id)
        return {"status": im.status, "assignee_id": im.assignee_id, "lock_expires_at": im.lock_expires_at,
                "needs_second_annotator": im.needs_second_annotator}


def region(rid: str, geometry=SQUARE, style=None, source="human", model_version=None) -> dict:
    return {"id": rid, "geometry": geometry, "style": style, "motifs": [], "source": source,
            "model_version": model_version, "confidence": None}


def uid(client) -> int:
    """The id of the client's user (ApiClient.user is detached; ask the API)."""
    if not hasattr(client, "_uid"):
        client._uid = client.get("/api/v1/auth/me").get_json()["user"]["id"]
    return client._uid


def next_image(client, strategy: str = "oldest"):
    return client.post(f"/api/v1/queue/next?strategy={strategy}")


def _error(resp) -> dict:
    body = resp.get_json()
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- basics ----------------------------------------------------------------------------------------------------------


def test_empty_pool_is_a_helpful_404(app, annotator):
    resp = next_image(annotator)
    assert resp.status_code == 404
    err = _error(resp)
    assert err["code"] == "queue_empty" and "import" in err["message"].lower()


def test_lease_is_stored_and_the_same_image_comes_back(app, make_client):
    ids = seed_images(app, 3)
    alice, bob = make_client("annotator"), make_client("annotator")
    first = next_image(alice)
    assert first.status_code == 200
    body = first.get_json()
    assert body["image_id"] == ids[0] and body["kind"] == "annotate" and body["strategy"] == "oldest"
    assert body["lease_expires_at"] and "oldest" in body["reason"].lower()
    row = image_row(app, ids[0])
    assert row["assignee_id"] == uid(alice) and row["lock_expires_at"] is not None
    # Asking again returns the caller's own lease first, renewed.
    again = next_image(alice, "random").get_json()
    assert again["image_id"] == ids[0] and "already working" in again["reason"]
    assert again["lease_expires_at"] >= body["lease_expires_at"]
    # Someone else gets the next image, never the leased one.
    assert next_image(bob).get_json()["image_id"] == ids[1]
    with app.app_context():
        primaries = db.session.scalars(select(Assignment).where(Assignment.kind == "primary")).all()
        assert {(a.image_id, a.user_id) for a in primaries} == {(ids[0], uid(alice)), (ids[1], uid(bob))}


def test_invalid_requests(app, annotator, admin):
    assert next_image(annotator, "bogus").status_code == 422
    assert annotator.post("/api/v1/queue/heartbeat", json={"image_id": "1"}).status_code == 422
    assert annotator.post("/api/v1/queue/heartbeat", json={"image_id": 1, "x": 1}).status_code == 422
    assert annotator.post("/api/v1/queue/release", json={"image_id": 999}).status_code == 404
    assert annotator.post("/api/v1/queue/heartbeat", json={"image_id": 999}).status_code == 404
    assert annotator.post("/api/v1/queue/scores", json={}).status_code == 403
    assert app.test_client().post("/api/v1/queue/next").status_code == 401
    (image_id,) = seed_images(app, 1)
    resp = annotator.post("/api/v1/queue/release", json={"image_id": image_id})
    assert resp.status_code == 409 and _error(resp)["code"] == "not_leased"


def test_flagged_submitted_and_accepted_images_are_skipped(app, annotator):
    seed_images(app, 2, status="submitted", start=0)
    seed_images(app, 2, status="accepted", start=10)
    seed_images(app, 2, status="new", flags=["not_tattoo"], start=20)
    free = seed_images(app, 1, status="new", start=30)
    for strategy in ("oldest", "random", "uncertainty", "diversity"):
        body = next_image(annotator, strategy).get_json()
        assert body["image_id"] == free[0], strategy
    annotator.post("/api/v1/queue/release", json={"image_id": free[0]})
    set_status(app, free[0], "submitted")
    assert next_image(annotator).status_code == 404


# --- leases: concurrency, expiry, heartbeat, release -------------------------------------------------------------------


def _parallel_next(app, clients, strategy="oldest"):
    results = [None] * len(clients)
    barrier = threading.Barrier(len(clients))

    def worker(i):
        barrier.wait()
        resp = clients[i].post(f"/api/v1/queue/next?strategy={strategy}")
        results[i] = (resp.status_code, resp.get_json())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_twenty_concurrent_callers_never_share_an_image(app, make_client):
    ids = seed_images(app, 12)
    clients = [make_client("annotator") for _ in range(20)]
    results = _parallel_next(app, clients)
    granted = [(uid(c), body["image_id"]) for c, (status, body) in zip(clients, results) if status == 200]
    refused = [body for status, body in results if status != 200]
    assert len(granted) == 12, results
    assert len({image_id for _u, image_id in granted}) == 12
    assert all(body["error"]["code"] == "queue_empty" for body in refused) and len(refused) == 8
    with app.app_context():
        stored = dict(db.session.execute(select(Image.id, Image.assignee_id)).all())
    assert all(stored[image_id] == user_id for user_id, image_id in granted)


def test_twenty_concurrent_callers_on_scored_pool(app, make_client, admin):
    ids = seed_images(app, 30)
    _plant_predictions(app, {i: 0.01 * k for k, i in enumerate(ids)})
    assert admin.post("/api/v1/queue/scores", json={}).status_code == 202
    clients = [make_client("annotator") for _ in range(20)]
    results = _parallel_next(app, clients, "uncertainty")
    got = [body["image_id"] for status, body in results if status == 200]
    assert len(got) == 20 and len(set(got)) == 20
    # The twenty most uncertain images went out, none of the ten least uncertain.
    assert set(got) == set(ids[10:])


def test_expired_lease_returns_the_image_to_the_pool(app, make_client):
    (image_id,) = seed_images(app, 1)
    alice, bob = make_client("annotator"), make_client("annotator")
    assert next_image(alice).get_json()["image_id"] == image_id
    assert next_image(bob).status_code == 404
    with app.app_context():
        db.session.get(Image, image_id).lock_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert next_image(bob).get_json()["image_id"] == image_id
    assert image_row(app, image_id)["assignee_id"] == uid(bob)
    # Alice's heartbeat now fails: the image is Bob's.
    resp = alice.post("/api/v1/queue/heartbeat", json={"image_id": image_id})
    assert resp.status_code == 409 and _error(resp)["code"] == "lease_lost"


def test_heartbeat_extends_and_release_frees(app, make_client):
    (image_id,) = seed_images(app, 1)
    alice, bob = make_client("annotator"), make_client("annotator")
    next_image(alice)
    with app.app_context():
        db.session.get(Image, image_id).lock_expires_at = utcnow() + timedelta(seconds=5)
        db.session.commit()
    before = image_row(app, image_id)["lock_expires_at"]
    resp = alice.post("/api/v1/queue/heartbeat", json={"image_id": image_id})
    assert resp.status_code == 200 and resp.get_json()["kind"] == "annotate"
    after = image_row(app, image_id)["lock_expires_at"]
    assert after > before + timedelta(seconds=60)
    assert bob.post("/api/v1/queue/heartbeat", json={"image_id": image_id}).status_code == 409
    assert bob.post("/api/v1/queue/release", json={"image_id": image_id}).status_code == 409
    resp = alice.post("/api/v1/queue/release", json={"image_id": image_id})
    assert resp.status_code == 200 and resp.get_json()["released"] is True
    row = image_row(app, image_id)
    assert row["assignee_id"] is None and row["lock_expires_at"] is None
    assert next_image(bob).get_json()["image_id"] == image_id


def test_queue_overview(app, make_client):
    seed_images(app, 3)
    alice = make_client("annotator")
    leased = next_image(alice).get_json()["image_id"]
    body = alice.get("/api/v1/queue").get_json()
    assert body["pool"] == 2 and body["leased"] == 1
    assert body["mine"] == [{"image_id": leased, "kind": "annotate", "lease_expires_at": body["mine"][0]["lease_expires_at"]}]
    assert body["scored"] == {"uncertainty": 0, "diversity": 0}


# --- strategies on a planted pool ----------------------------------------------------------------------------------------


def _prob_maps() -> dict[str, np.ndarray]:
    size = 64
    blank = np.full((size, size), 0.01)
    confident = blank.copy()
    confident[16:48, 16:48] = 0.99
    unsure = blank.copy()
    unsure[16:48, 16:48] = 0.6
    fog = np.full((size, size), 0.45)
    return {"blank": blank, "confident": confident, "unsure": unsure, "fog": fog}


def _plant_predictions(app, scores: dict[int, float | dict], embeddings: dict[int, list[float]] | None = None,
                       current: bool = True) -> int:
    """A current segmenter and one Prediction per image with the given uncertainty (a score or a dict)."""
    with app.app_context():
        model = ModelVersion(kind="segmenter", name="seg-test", weights_path="seg.safetensors", is_current=current)
        db.session.add(model)
        db.session.flush()
        for image_id, value in scores.items():
            uncertainty = value if isinstance(value, dict) else {"score": value}
            db.session.add(Prediction(image_id=image_id, segmenter_id=model.id, regions=[], uncertainty=uncertainty,
                                      embedding=(embeddings or {}).get(image_id)))
        db.session.commit()
        return model.id


def test_uncertainty_order_on_a_planted_pool_blank_is_not_most_uncertain(app, make_client, admin):
    names = ["blank", "confident", "unsure", "fog"]
    ids = dict(zip(names, seed_images(app, 4)))
    maps = _prob_maps()
    parts = {ids[n]: combined_score(segmentation_uncertainty(maps[n]), []) for n in names}
    _plant_predictions(app, parts)
    resp = admin.post("/api/v1/queue/scores", json={"top_k": 10})
    assert resp.status_code == 202
    job = admin.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()
    assert job["status"] == "succeeded" and job["result"]["scored"] == 4
    with app.app_context():
        stored = dict(db.session.execute(
            select(ImageScore.image_id, ImageScore.score).where(ImageScore.strategy == "uncertainty")).all())
    assert stored[ids["blank"]] == min(stored.values())
    order = []
    for _ in names:
        client = make_client("annotator")
        body = next_image(client, "uncertainty").get_json()
        assert body["strategy"] == "uncertainty" and body["parts"]["segmentation"] is not None
        assert "unsure" in body["reason"]
        order.append(body["image_id"])
    assert order[-1] == ids["blank"]
    assert order.index(ids["unsure"]) < order.index(ids["confident"])
    assert set(order[:2]) == {ids["unsure"], ids["fog"]}


def test_diversity_spreads_a_batch_over_the_embedding_space(app, make_client, admin):
    ids = seed_images(app, 6)
    # Three near-identical, most uncertain photos (cluster A) and three slightly less uncertain ones (cluster B).
    scores = {ids[0]: 0.90, ids[1]: 0.89, ids[2]: 0.88, ids[3]: 0.70, ids[4]: 0.69, ids[5]: 0.68}
    emb = {ids[0]: [1.0, 0.0], ids[1]: [0.99, 0.01], ids[2]: [0.98, 0.02],
           ids[3]: [0.0, 1.0], ids[4]: [0.01, 0.99], ids[5]: [0.7, 0.7]}
    _plant_predictions(app, scores, emb)
    admin.post("/api/v1/queue/scores", json={"top_k": 6})
    by_uncertainty = [next_image(make_client("annotator"), "uncertainty").get_json()["image_id"] for _ in range(2)]
    assert by_uncertainty == [ids[0], ids[1]]
    for image_id in by_uncertainty:  # back to the pool
        set_status(app, image_id, "new")
        with app.app_context():
            db.session.get(Image, image_id).assignee_id = None
            db.session.commit()
    picks = [next_image(make_client("annotator"), "diversity").get_json() for _ in range(3)]
    got = [p["image_id"] for p in picks]
    assert got[0] == ids[0] and got[1] in (ids[3], ids[4]) and got[2] == ids[5]
    assert picks[0]["strategy"] == "diversity" and picks[1]["parts"]["rank"] == 2


def test_uncertainty_without_scores_falls_back_to_oldest_and_says_so(app, annotator):
    ids = seed_images(app, 2)
    body = next_image(annotator, "uncertainty").get_json()
    assert body["image_id"] == ids[0] and body["strategy"] == "oldest" and body["score"] is None
    assert "no uncertainty score" in body["reason"].lower()


def test_scores_job_without_a_current_model_clears_scores(app, admin, annotator):
    ids = seed_images(app, 2)
    _plant_predictions(app, {ids[0]: 0.2, ids[1]: 0.9}, current=False)
    resp = admin.post("/api/v1/queue/scores", json={})
    job = admin.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").get_json()
    assert job["status"] == "succeeded" and job["result"]["scored"] == 0
    assert "no current segmenter" in job["result"]["message"]
    with app.app_context():
        assert db.session.scalar(select(ImageScore).limit(1)) is None


def test_random_strategy_only_hands_out_pool_images(app, make_client):
    pool = set(seed_images(app, 5, start=0))
    seed_images(app, 5, status="accepted", start=100)
    got = {next_image(make_client("annotator"), "random").get_json()["image_id"] for _ in range(5)}
    assert got == pool
    assert next_image(make_client("annotator"), "random").status_code == 404


# --- rework and agreement copies ------------------------------------------------------------------------------------


def test_rejected_image_returns_to_its_annotator_only(app, make_client, reviewer):
    ids = seed_images(app, 2)
    alice, bob = make_client("annotator"), make_client("annotator")
    assert next_image(alice).get_json()["image_id"] == ids[0]
    annotate(app, ids[0], uid(alice), [region("r1")], status="submitted")
    resp = reviewer.post(f"/api/v1/images/{ids[0]}/review", json={"decision": "reject", "comment": "missed the arm"})
    assert resp.status_code == 201
    assert next_image(bob).get_json()["image_id"] == ids[1]
    bob.post("/api/v1/queue/release", json={"image_id": ids[1]})
    back = next_image(alice).get_json()
    assert back["image_id"] == ids[0] and back["kind"] == "rework" and back["comment"] == "missed the arm"
    assert "missed the arm" in back["reason"]
    # Releasing keeps it reserved for Alice.
    alice.post("/api/v1/queue/release", json={"image_id": ids[0]})
    assert next_image(bob).get_json()["image_id"] == ids[1]
    assert image_row(app, ids[0])["assignee_id"] == uid(alice)


def test_agreement_copy_goes_to_a_second_annotator_and_is_stored_apart(app, make_client):
    app.config["AGREEMENT_SHARE"] = 1.0
    ids = seed_images(app, 2)
    alice, bob, carol = (make_client("annotator") for _ in range(3))
    assert next_image(alice).get_json()["image_id"] == ids[0]
    assert image_row(app, ids[0])["needs_second_annotator"] is True
    annotate(app, ids[0], uid(alice), [region("a1", style="tribal")], status="submitted")
    copy = next_image(bob).get_json()
    assert copy["image_id"] == ids[0] and copy["kind"] == "agreement" and "independent" in copy["reason"]
    # Alice never gets a second copy of her own image; Carol does not get Bob's copy.
    assert next_image(alice).get_json()["image_id"] == ids[1]
    assert next_image(carol).status_code == 404
    doc = bob.get(f"/api/v1/images/{ids[0]}/agreement").get_json()
    assert doc["version"] == 0 and doc["regions"] == [] and doc["completed"] is False
    other = {"type": "Polygon", "coordinates": [[[30, 10], [70, 10], [70, 50], [30, 50], [30, 10]]]}
    body = {"base_version": 0, "regions": [region("b1", other, style="japanese")],
            "tags": {"styles": [], "flags": []}, "time_spent_ms": 4000}
    saved = bob.put(f"/api/v1/images/{ids[0]}/agreement", json=body)
    assert saved.status_code == 200 and saved.get_json()["version"] == 1
    stale = bob.put(f"/api/v1/images/{ids[0]}/agreement", json=body)
    # The one conflict answer of every save: stale_version with the current copy to merge into.
    assert stale.status_code == 409 and _error(stale)["code"] == "stale_version"
    assert _error(stale)["details"]["current"]["version"] == 1
    assert _error(stale)["details"]["current"]["regions"][0]["id"] == "b1"
    bad = dict(body, base_version=1, regions=[region("b1", {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]})])
    resp = bob.put(f"/api/v1/images/{ids[0]}/agreement", json=bad)
    assert resp.status_code == 422 and _error(resp)["details"]["region"] == 0
    done = bob.put(f"/api/v1/images/{ids[0]}/agreement", json=dict(body, base_version=1, complete=True))
    assert done.status_code == 200 and done.get_json()["completed"] is True
    assert bob.put(f"/api/v1/images/{ids[0]}/agreement", json=dict(body, base_version=2)).status_code == 409
    assert carol.get(f"/api/v1/images/{ids[0]}/agreement").status_code == 404
    with app.app_context():
        main = db.session.get(Annotation, ids[0])
        assert main.version == 1 and main.document["regions"][0]["id"] == "a1"
        row = db.session.scalar(select(Assignment).where(Assignment.kind == "agreement"))
        assert row.user_id == uid(bob) and row.completed_at is not None and row.time_spent_ms == 8000
        assert row.document["regions"][0]["style"] == "japanese" and row.document["version"] == 2
        assert db.session.get(Image, ids[0]).status == "submitted"


def test_abandoned_agreement_copy_is_handed_to_someone_else(app, make_client):
    app.config["AGREEMENT_SHARE"] = 1.0
    (image_id,) = seed_images(app, 1)
    alice, bob, carol = (make_client("annotator") for _ in range(3))
    next_image(alice)
    annotate(app, image_id, uid(alice), [region("a1")], status="submitted")
    assert next_image(bob).get_json()["kind"] == "agreement"
    assert bob.post("/api/v1/queue/heartbeat", json={"image_id": image_id}).get_json()["kind"] == "agreement"
    with app.app_context():
        row = db.session.scalar(select(Assignment).where(Assignment.kind == "agreement"))
        row.lock_expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    got = next_image(carol).get_json()
    assert got["image_id"] == image_id and got["kind"] == "agreement"
    with app.app_context():
        rows = db.session.scalars(select(Assignment).where(Assignment.kind == "agreement")).all()
        assert [r.user_id for r in rows] == [uid(carol)]
    # Carol releases it: the image waits for a second annotator again.
    assert carol.post("/api/v1/queue/release", json={"image_id": image_id}).get_json()["kind"] == "agreement"
    assert image_row(app, image_id)["needs_second_annotator"] is True


def test_agreement_share_zero_never_marks_images(app, make_client):
    app.config["AGREEMENT_SHARE"] = 0.0
    ids = seed_images(app, 3)
    client = make_client("annotator")
    for image_id in ids:
        assert next_image(client).get_json()["image_id"] == image_id
        annotate(app, image_id, uid(client), [region("x")], status="submitted")
        assert image_row(app, image_id)["needs_second_annotator"] is False


def test_rejected_image_of_a_deleted_annotator_goes_to_anyone(app, make_client, reviewer):
    (image_id,) = seed_images(app, 1)
    alice, bob = make_client("annotator"), make_client("annotator")
    next_image(alice)
    annotate(app, image_id, uid(alice), [region("r1")], status="submitted")
    reviewer.post(f"/api/v1/images/{image_id}/review", json={"decision": "reject", "comment": "redo the outline"})
    assert next_image(bob).status_code == 404  # Alice's to fix
    with app.app_context():
        from backend.db.models import User

        db.session.delete(db.session.get(User, uid(alice)))  # assignee → NULL (ON DELETE SET NULL)
        db.session.commit()
        assert db.session.get(Image, image_id).assignee_id is None
    got = next_image(bob).get_json()
    assert got["image_id"] == image_id and got["kind"] == "rework" and got["comment"] == "redo the outline"
    assert image_row(app, image_id)["assignee_id"] == uid(bob)


def test_scores_command(sqlite_app):
    ids = seed_images(sqlite_app, 3)
    _plant_predictions(sqlite_app, {ids[0]: 0.1, ids[1]: 0.8}, {ids[0]: [1.0, 0.0], ids[1]: [0.0, 1.0]})
    result = sqlite_app.test_cli_runner().invoke(args=["scores", "--top-k", "5"])
    assert result.exit_code == 0, result.output
    assert "scored 2 images" in result.output and "1 pool images have no prediction" in result.output
    with sqlite_app.app_context():
        rows = db.session.execute(select(ImageScore.strategy, ImageScore.image_id, ImageScore.score)
                                  .order_by(ImageScore.strategy, ImageScore.score.desc())).all()
    assert [(r.strategy, r.image_id) for r in rows] == [("diversity", ids[1]), ("diversity", ids[0]),
                                                        ("uncertainty", ids[1]), ("uncertainty", ids[0])]
